"""Rule embed_samples: sample embeddings and contextual gene embeddings from a model's hidden states.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``). The method is
:mod:`generain.inference`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import annotation, embed, inference, io, normalize, plots, tokenize
from ..training.checkpoint import load_model
from ..utils import InputError, PathLike, atomic_path, timed, write_parquet

log = logging.getLogger(__name__)

SAMPLE_COLUMNS = ("sample_id", "dataset", "series_id", "species", "split", "embedding")


def corpus_samples(index: PathLike, qc_table: PathLike) -> pd.DataFrame:
    """The corpus' samples in index order with their dataset and series (from the QC table).

    Returns
    -------
    pandas.DataFrame
        index.parquet's columns plus dataset and series_id.

    Raises
    ------
    InputError
        If a corpus sample is missing from the QC table.
    """
    idx = pd.read_parquet(index)
    qc = pd.read_parquet(qc_table, columns=["sample_id", "dataset", "series_id"]).drop_duplicates("sample_id")
    out = idx.merge(qc, on="sample_id", how="left", validate="many_to_one")
    if out["dataset"].isna().any():
        missing = out.loc[out["dataset"].isna(), "sample_id"].head(3).tolist()
        raise InputError(f"{index}: {int(out['dataset'].isna().sum())} samples are not in {qc_table} "
                         f"(e.g. {missing})")
    if "species" not in out:
        out["species"] = ""
    out["series_id"] = out["series_id"].fillna("").astype(str)
    return out


def _silhouette(x: np.ndarray, labels: pd.Series) -> float:
    """Cosine silhouette of labelled points; NaN unless there are 2..n-1 labels."""
    from sklearn.metrics import silhouette_score

    k = labels.nunique()
    if not 2 <= k <= len(labels) - 1:
        return float("nan")
    return float(silhouette_score(x, labels.astype(str).to_numpy(), metric="cosine"))


def expression_pca(matrix: io.Matrix, sample_ids: np.ndarray, *, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA scores of samples from a log10(CP10M+1) genes x samples matrix.

    Returns
    -------
    (np.ndarray, np.ndarray)
        The sample ids found in the matrix (in ``sample_ids`` order) and
        their scores, float (n, min(dim, n - 1, n_genes)).
    """
    from sklearn.decomposition import PCA

    col = pd.Index(matrix.samples["sample_id"].astype(str)).get_indexer(pd.Index(sample_ids).astype(str))
    found = col >= 0
    x = matrix.matrix[:, col[found]].T.astype(np.float64)  # samples x genes
    k = max(1, min(dim, x.shape[0] - 1, x.shape[1]))
    return np.asarray(sample_ids)[found], PCA(n_components=k, random_state=seed).fit_transform(x)


def _map(x: np.ndarray, meta: pd.DataFrame) -> pd.DataFrame:
    from sklearn.decomposition import PCA

    xy = PCA(n_components=2).fit_transform(x) if len(x) >= 2 and x.shape[1] >= 2 else np.zeros((len(x), 2))
    return meta[["sample_id", "dataset", "series_id"]].reset_index(drop=True).assign(x=xy[:, 0], y=xy[:, 1])


def embed_samples(
    *,
    checkpoint: PathLike,
    vocab: PathLike,
    shards: PathLike,
    index: PathLike,
    qc_table: PathLike,
    matrices: dict[str, PathLike],
    layer: int,
    batch_size: int,
    device: str,
    seed: int,
    out_samples: PathLike,
    out_silhouette: PathLike,
    out_map: PathLike,
    out_contextual_w2v: PathLike,
    out_contextual_parquet: PathLike,
    model_name: str = "",
) -> dict[str, Any]:
    """Embed every corpus sample and every gene seen, with silhouettes against the expression PCA.

    Outputs: ``out_samples`` (one row per sample: :data:`SAMPLE_COLUMNS`,
    embedding list<float32>); ``out_silhouette`` (TSV: space, species,
    labels, n_samples, n_labels, silhouette; space ``model`` or
    ``expression_pca``, the PCA of the species' log10(CP10M+1) matrix over the
    same samples, as many components as the model's hidden size);
    ``out_map`` (PNG: 2-D PCA maps of both, by dataset and by series); the
    contextual gene embedding as word2vec text and parquet (the export's
    columns plus n_samples, genes seen in at least one sample).

    ``matrices`` maps each species to its normalized matrix (in memory: all
    passing samples; streaming: the subsample, so the PCA covers those).
    """
    model_type, model = load_model(checkpoint)
    model.to(device)
    v = tokenize.read_vocab(vocab)
    meta = corpus_samples(index, qc_table)
    corpus = tokenize.TokenShards(shards, meta)
    with timed(f"{model_name or model_type}: hidden states (layer {layer}) of {len(meta)} samples"):
        emb = inference.embed_corpus(model, model_type, corpus, np.arange(len(meta)), layer=layer,
                                     vocab_size=len(v), batch_size=batch_size, device=device)
    table = pa.Table.from_pydict({
        **{c: meta[c].astype(str).tolist() for c in SAMPLE_COLUMNS[:-1]},
        "embedding": pa.array(list(emb.samples), type=pa.list_(pa.float32())),
    })
    write_parquet(table, out_samples)

    tokens, vectors = emb.contextual()
    genes = v.set_index("token_id").loc[tokens]
    ctx = genes[["token", "ensembl_id", "symbol", "biotype", "species"]].reset_index(drop=True)
    ctx["n_samples"] = emb.gene_count[tokens]
    ctx["embedding"] = list(vectors)
    ctx = ctx[genes["biotype"].to_numpy() != "special"].reset_index(drop=True)
    embed.write_embeddings(ctx, w2v_path=out_contextual_w2v, parquet_path=out_contextual_parquet)

    rows, maps = [], {f"{model_name or model_type} sample embedding (layer {layer})": _map(emb.samples, meta)}
    groups = [("all", np.ones(len(meta), bool))] if meta["species"].nunique() > 1 else []
    groups += [(sp, (meta["species"] == sp).to_numpy()) for sp in sorted(meta["species"].unique())]
    for sp, m in groups:
        for labels in ("dataset", "series_id"):
            lab = meta.loc[m, labels]
            rows.append({"space": "model", "species": sp, "labels": labels, "n_samples": int(m.sum()),
                         "n_labels": int(lab.nunique()), "silhouette": _silhouette(emb.samples[m], lab)})
        if sp == "all" or sp not in matrices:
            continue
        ids, pcs = expression_pca(io.read_matrix(matrices[sp]), meta.loc[m, "sample_id"].to_numpy(),
                                  dim=model.cfg.n_embd, seed=seed)
        sub = meta.set_index("sample_id").loc[ids].reset_index()
        for labels in ("dataset", "series_id"):
            rows.append({"space": "expression_pca", "species": sp, "labels": labels, "n_samples": len(ids),
                         "n_labels": int(sub[labels].nunique()), "silhouette": _silhouette(pcs, sub[labels])})
        maps[f"expression PCA ({sp}, {pcs.shape[1]} components)"] = _map(pcs, sub)
    sil = pd.DataFrame(rows)
    with atomic_path(out_silhouette) as tmp:
        sil.to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    plots.sample_map_plot(maps, out_map, title=f"{len(meta)} samples")
    log.info("silhouettes:\n%s", sil.to_string(index=False))
    log.info("contextual embedding: %d of %d genes seen (median %d samples each)", len(ctx),
             int((v["biotype"] != "special").sum()), int(np.median(ctx["n_samples"])) if len(ctx) else 0)
    return {"samples": len(meta), "contextual_genes": len(ctx), "silhouette": rows}


def run_reference(run: PathLike) -> tuple[str, Path]:
    """How a finished run scores new samples: ("binning", its bin_reference.h5) or ("rank_value", gene medians).

    An imported model's reference comes first (``pretrained/``), then the
    run's own Binning-By-Gene reference (``normalize/human/bin_reference.h5``).

    Raises
    ------
    InputError
        If the run has neither (z-score or rank-value runs without an imported
        Geneformer model keep no reference for new samples).
    """
    r = Path(run)
    for method, path in (("rank_value", r / "pretrained" / "gene_medians.tsv"),
                         ("binning", r / "pretrained" / "bin_reference.h5")):
        if path.exists():
            return method, path
    scores = r / "normalize" / "human" / "scores.h5"
    method = str(io.read_samples(scores)[1].get("method", "binning")) if scores.exists() else "binning"
    ref = r / "normalize" / "human" / "bin_reference.h5"
    if method != "binning" or not ref.exists():
        raise InputError(f"{run}: no reference to score new samples against (normalization {method}; a binning run "
                         f"keeps normalize/human/bin_reference.h5, an imported Geneformer model its gene medians)")
    return "binning", ref


def embed_counts(
    *,
    counts: PathLike,
    fmt: str,
    checkpoint: PathLike,
    vocab: PathLike,
    reference: PathLike,
    method: str,
    gene_table: PathLike,
    length: int,
    layer: int,
    batch_size: int,
    device: str,
    out_samples: PathLike,
    id_type: str = "auto",
) -> dict[str, Any]:
    """Embed new samples from a counts table with an existing model, scored against the model's reference.

    The counts go the run's way: genes mapped to Ensembl ids through the gene
    table (:func:`generain.annotation.harmonize_genes`), CP10M of each
    sample's total counts and log10(x + 1), then Binning-By-Gene against the
    saved per-gene ``reference`` (``method="binning"``; each sample binned on
    its own) or rank values over the gene medians (``method="rank_value"``,
    an imported Geneformer model), the top ``length`` genes of the
    vocabulary as tokens, and the mean hidden state of ``layer`` over each
    sample's real tokens (:func:`generain.inference.hidden_states`). No QC
    filter is applied: every sample of the table is embedded.

    Outputs ``out_samples``: parquet sample_id, n_tokens, embedding
    (list<float32>).

    Raises
    ------
    InputError
        If the table cannot be read, no gene matches, or no gene is in the
        vocabulary and the reference.
    """
    cm = io.read_counts(counts, fmt)
    io.require_unique_samples(cm.sample_ids, counts)
    totals = cm.counts.sum(axis=0, dtype=np.int64)
    matched, report = annotation.harmonize_genes(cm, annotation.read_gene_table(gene_table), source=str(counts),
                                                 id_type=id_type)
    v = tokenize.read_vocab(vocab)
    tok = pd.Series(v["token_id"].to_numpy(), index=v["ensembl_id"].astype(str))
    tok = tok[v["biotype"].to_numpy() != "special"]
    inside = np.isin(matched.gene_ids.astype(str), tok.index)
    if not inside.any():
        raise InputError(f"{counts}: none of its {len(matched.gene_ids)} matched genes is in the model's vocabulary")
    gene_ids = matched.gene_ids[inside].astype(str)
    values = normalize.cp10m_log10(matched.counts[inside], totals=totals)
    if method == "binning":
        scores, rows = normalize.apply_bin_reference(values, gene_ids.astype(object), normalize.BinReference.load(reference))
    elif method == "rank_value":
        med = pd.read_csv(reference, sep="\t").set_index("ensembl_id")["median"]
        rows = np.flatnonzero(np.isin(gene_ids, med.index))
        if rows.size == 0:
            raise InputError(f"{reference}: no gene of {counts} has a median")
        scores = normalize.rank_value_scores(values[rows], med.loc[gene_ids[rows]].to_numpy())
    else:
        raise ValueError(f"unknown method {method!r}")
    gt, et, nt = tokenize.tokenize_samples(scores, normalize.eligible_mask(scores, method), values[rows],
                                           tok.loc[gene_ids[rows]].to_numpy(dtype=np.int64), length=length)
    model_type, model = load_model(checkpoint)
    model.to(device)
    emb = np.zeros((len(nt), model.cfg.n_embd), np.float32)
    for a in range(0, len(nt), batch_size):
        b = inference.model_batch(model_type, gt[a:a + batch_size], et[a:a + batch_size], device,
                                  eos_token=model.cfg.eos_token)
        emb[a:a + batch_size] = inference.mean_over_real(inference.hidden_states(model, b, layer=layer),
                                                         b.real).cpu().numpy()
    table = pa.Table.from_pydict({"sample_id": [str(s) for s in matched.sample_ids], "n_tokens": nt.astype(np.int32),
                                  "embedding": pa.array(list(emb), type=pa.list_(pa.float32()))})
    write_parquet(table, out_samples)
    out = {"samples": int(len(nt)), "genes_matched": int(report["matched"]), "genes_scored": int(len(rows)),
           "median_tokens": float(np.median(nt)) if len(nt) else 0.0, "method": method}
    log.info("embedded new samples: %s", out)
    return out
