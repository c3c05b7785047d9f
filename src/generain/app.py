"""GeneRAIN-vec's pages over a run's embeddings, as a Streamlit app.

Started by ``generain app --run results/demo --model gpt`` (bound to
127.0.0.1), which passes the run through the environment variables
GENERAIN_RUN and GENERAIN_MODEL (or GENERAIN_EMBEDDING for a bare file).
Query parameters pre-fill the first page: ``?page=similar&gene=RPL11&n=10``.
All logic is in :mod:`generain.explore`; this file only lays out pages.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from generain.cli import parse_expression
from generain.explore import GeneEmbedding, RunAnnotations, perturbation_genes, perturbation_runs, sample_map
from generain.utils import InputError

PAGES = {"similar": "Similar genes", "similarity": "Similarity", "calculator": "Calculator",
         "terms": "Calculator (several terms)", "map": "Visualization", "samples": "Samples",
         "perturbation": "Perturbation"}


@st.cache_resource
def _load(run: str, model: str, path: str) -> tuple[GeneEmbedding, RunAnnotations]:
    if path:
        return GeneEmbedding.load(path), RunAnnotations(None, None)
    return GeneEmbedding.load(Path(run) / "embeddings" / f"{model}.parquet"), RunAnnotations.load(run, model)


def _table(df) -> None:
    # st.table renders plain HTML (readable by any browser and by tests), unlike the canvas of st.dataframe
    st.table(df.style.format({c: "{:.4f}" for c in ("cosine", "probability") if c in df}
                             | {c: "{:.3g}" for c in ("mean_shift", "null_mean_shift", "excess_shift", "p_value",
                                                      "fdr") if c in df}))


def _samples_page(run: str, model: str) -> None:
    import altair as alt

    coords = sample_map(run, model)
    color = st.radio("Colour by", ["series_id", "dataset", "split"], horizontal=True, key="colour")
    chart = alt.Chart(coords).mark_circle(size=40).encode(
        x=alt.X("x", title="PC 1"), y=alt.Y("y", title="PC 2"), color=alt.Color(f"{color}:N"),
        tooltip=["sample_id", "dataset", "series_id", "split"])
    st.altair_chart(chart, width="stretch")
    st.caption(f"{len(coords)} samples: the first two principal components of {model}'s sample embeddings "
               "(mean hidden state over each sample's genes). Hover a point for its sample id and dataset.")


def _perturbation_page(run: str, model: str, n: int) -> None:
    runs = perturbation_runs(run, model)
    if not runs:
        st.info(f"No perturbation results for {model} in {run} (config perturbation.runs).")
        return
    name = st.selectbox("Perturbation run", runs, key="run")
    st.caption("Genes whose hidden state shifted most against perturbing genes of matched rank "
               "(empirical p-value, Benjamini-Hochberg FDR)")
    _table(perturbation_genes(run, model, name, n=n))
    st.caption("Genes whose hidden state shifted least against that null: the perturbation steadied them "
               "(z-score of the mean shift against the null draws; one-sided FDR, normal approximation)")
    try:
        _table(perturbation_genes(run, model, name, n=n, direction="steadied"))
    except InputError as e:
        st.info(str(e))


def _species(emb: GeneEmbedding) -> str | None:
    if not (emb.genes["species"] == "mouse").any():
        return None
    choice = st.sidebar.radio("Species", ["both", "human", "mouse"], key="species")
    return None if choice == "both" else choice


def _predicted(emb: GeneEmbedding, ann: RunAnnotations, gene: str, species: str | None) -> None:
    row = emb.resolve(gene, species=species)
    g = emb.genes.iloc[row]
    st.subheader(f"What the pipeline predicted for {g['symbol'] or g['token']}")
    props = ann.top_properties(emb.vectors[row], k=10)
    if len(props):
        st.caption("Properties whose classifier (refit on all protein-coding genes, so in-sample for a protein-coding "
                   "gene; out-of-sample for an lncRNA) scores this gene highest")
        _table(props)
    orth = ann.orthologs(g["ensembl_id"])
    if len(orth):
        st.caption("Ortholog and its rank after alignment (1 = nearest)")
        _table(orth)
    if not len(props) and not len(orth):
        st.caption("No sweep or species outputs in this run.")


def main() -> None:
    run, model = os.environ.get("GENERAIN_RUN", "results/demo"), os.environ.get("GENERAIN_MODEL", "gpt")
    path = os.environ.get("GENERAIN_EMBEDDING", "")
    st.set_page_config(page_title="GeneRAIN explorer", layout="wide")
    st.title("GeneRAIN explorer")
    try:
        emb, ann = _load(run, model, path)
    except InputError as e:
        st.error(str(e))
        return
    st.sidebar.caption(f"{path or Path(run) / 'embeddings' / (model + '.parquet')}: {len(emb.unit)} genes x "
                       f"{emb.unit.shape[1]} dimensions")
    qp = st.query_params
    keys = list(PAGES)
    page = st.sidebar.radio("Tool", keys, format_func=PAGES.get,
                            index=keys.index(qp["page"]) if qp.get("page") in PAGES else 0)
    species = _species(emb)
    n = st.sidebar.number_input("Genes to list", 1, 500, int(qp.get("n", 10)))
    try:
        if page == "similar":
            gene = st.text_input("Gene (symbol or Ensembl id)", qp.get("gene", ""), key="gene")
            if gene:
                _table(emb.similar(gene, n=n, species=species, query_species=species))
                _predicted(emb, ann, gene, species)
        elif page == "similarity":
            a, b = st.text_input("Gene A", key="a"), st.text_input("Gene B", key="b")
            if a and b:
                r = emb.similarity(a, b)
                st.metric("cosine similarity", f"{r['cosine']:.4f}")
                st.write(f"{r['closer_to_a']} of {r['n_genes']} genes are closer to {a}; "
                         f"{r['closer_to_b']} are closer to {b}.")
        elif page == "calculator":
            c1, c2, c3 = st.columns(3)
            a, b, c = c1.text_input("Gene", key="ca"), c2.text_input("minus gene", key="cb"), \
                c3.text_input("plus gene", key="cc")
            if a and b and c:
                st.write(f"{a} - {b} + {c} =")
                _table(emb.combine([(1.0, a), (-1.0, b), (1.0, c)], n=n, species=species))
        elif page == "terms":
            expr = st.text_input("Sum of genes, e.g. APP - APOE + 0.5*BRCA1", key="expr")
            if expr:
                _table(emb.combine(parse_expression([expr]), n=n, species=species))
        elif page == "samples":
            _samples_page(run, model)
        elif page == "perturbation":
            _perturbation_page(run, model, n)
        else:
            lists = {}
            for i in range(3):
                text = st.text_input(f"Gene list {i + 1} (comma-separated)", key=f"list{i}")
                if text:
                    lists[f"list {i + 1}"] = [g.strip() for g in text.split(",") if g.strip()]
            method = st.selectbox("Method", ["pca", "tsne", "umap"])
            if lists:
                coords = emb.map_2d(lists, method=method, seed=0)
                st.scatter_chart(coords, x="x", y="y", color="list")
                _table(coords)
    except InputError as e:
        st.error(str(e))


main()
