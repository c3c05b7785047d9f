"""Do a generated human-mouse run's tokens and embeddings carry the planted modules?

For a run made with ``config/generated_human_mouse.yaml`` (and a size config),
prints, per species, the share of each module gene's 10 nearest genes (cosine,
among the species' ortholog genes) that are in its planted module
(``generated/truth.tsv``):

- ``tokens (PPMI-SVD)``: no model. Positive pointwise mutual information of
  two genes occurring in the same token sequence (``tokens/shards``), reduced
  to 64 dimensions by a truncated SVD: what the corpus itself offers a model
  that learns which genes occur together.
- every embedding table given with ``--embeddings`` (paths relative to the
  run folder), for example ``embeddings/gpt.parquet`` (the main model's input
  embeddings) or ``species/gpt/expression_svd/embedding.parquet``.

Chance is about 1 / (number of modules).

With ``--align SETTING ...`` (for example ``mixed expression_svd``), each
setting's aligned gene table (``species/gpt/<setting>/embedding.parquet``) and
its train/held-out split (``ranks.parquet``) are aligned again four ways, to
see what limits the held-out ortholog ranks: an orthogonal map (Procrustes,
the pipeline's first step, without its CSLS refinement) and a least-squares
linear map, each fitted on all training pairs and on the training pairs that
share their planted module only. Printed: held-out top-10 over all held-out
pairs and over the shared ones (rank of the mouse ortholog among all mouse
genes by cosine to the human gene). Usage::

    python benchmarks/hm_planted_modules.py results/generated_hm_1000 \
        --embeddings embeddings/gpt.parquet species/gpt/expression_svd/embedding.parquet \
        --align mixed expression_svd
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.linalg import orthogonal_procrustes
from sklearn.utils.extmath import randomized_svd

SPECIES = (("human", "human_ensembl_id", "human_module"), ("mouse", "mouse_ensembl_id", "mouse_module"))


def purity10(vectors: np.ndarray, modules: np.ndarray) -> float:
    """Mean share of a module gene's 10 nearest genes (cosine; rows of ``vectors``) in its module (-1: none)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    seen = norms[:, 0] > 0
    x = vectors[seen] / norms[seen]
    mods = modules[seen]
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    nearest = np.argsort(-sim, axis=1)[:, :10]
    inmod = mods >= 0
    return float((mods[nearest][inmod] == mods[inmod, None]).mean())


def token_ppmi_svd(run: Path, n_tokens: int, dim: int = 64) -> np.ndarray:
    """Gene vectors (n_tokens, dim) from the PPMI of within-sequence co-occurrence in the run's token shards."""
    rows, cols = [], []
    offset = 0
    for shard in sorted((run / "tokens" / "shards").glob("genes_*.npy")):
        genes = np.load(shard)
        r = np.repeat(np.arange(genes.shape[0]) + offset, genes.shape[1])
        c = genes.ravel().astype(np.int64)
        keep = c > 2  # <pad>, <mask>, <cls>
        rows.append(r[keep])
        cols.append(c[keep])
        offset += genes.shape[0]
    r, c = np.concatenate(rows), np.concatenate(cols)
    occurrence = sparse.csr_matrix((np.ones(len(r)), (r, c)), shape=(offset, n_tokens))
    counts = (occurrence.T @ occurrence).toarray()
    np.fill_diagonal(counts, 0)
    marginal = counts.sum(axis=1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(counts * counts.sum() / (marginal @ marginal.T))
    ppmi = np.where(np.isfinite(pmi), np.maximum(pmi, 0.0), 0.0)
    u, s, _ = randomized_svd(ppmi, dim, random_state=0)
    return u * np.sqrt(s)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def alignment_ranks(run: Path, setting: str, truth: pd.DataFrame) -> None:
    """Print held-out top-10 of one setting under four alignments (module docstring)."""
    table = pd.read_parquet(run / "species" / "gpt" / setting / "embedding.parquet")
    ranks = pd.read_parquet(run / "species" / "gpt" / setting / "ranks.parquet")
    ranks = ranks[ranks["setting"] == setting]
    human, mouse = table[table["species"] == "human"], table[table["species"] == "mouse"]
    h_vec, m_vec = (_unit(np.stack(t["embedding"]).astype(np.float64)) for t in (human, mouse))
    h_row = pd.Series(np.arange(len(human)), index=human["ensembl_id"].to_numpy())
    m_row = pd.Series(np.arange(len(mouse)), index=mouse["ensembl_id"].to_numpy())
    ranks = ranks[ranks["human_ensembl_id"].isin(h_row.index) & ranks["mouse_ensembl_id"].isin(m_row.index)]
    h = h_row[ranks["human_ensembl_id"]].to_numpy()
    m = m_row[ranks["mouse_ensembl_id"]].to_numpy()
    train = (ranks["split"] == "train").to_numpy()
    shared = ranks.merge(truth, on=["human_ensembl_id", "mouse_ensembl_id"], how="left")["shared"]
    shared = shared.fillna(False).to_numpy().astype(bool)
    held = ~train
    print(f"  {setting}: {held.sum()} held-out pairs, {(held & shared).sum()} of them share their module")
    for fit_name, fit in (("all training pairs", train), ("shared training pairs", train & shared)):
        maps = {"orthogonal": orthogonal_procrustes(m_vec[m[fit]], h_vec[h[fit]])[0],
                "least squares": np.linalg.lstsq(m_vec[m[fit]], h_vec[h[fit]], rcond=None)[0]}
        for map_name, w in maps.items():
            sim = h_vec[h[held]] @ _unit(m_vec @ w).T
            rank = 1 + (sim > sim[np.arange(held.sum()), m[held]][:, None]).sum(axis=1)
            top10 = rank <= 10
            print(f"    {map_name} on {fit_name}: held-out top-10 {100 * top10.mean():.2f}%, "
                  f"shared held-out top-10 {100 * top10[shared[held]].mean():.2f}%")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="results/<run_name> of a generated human-mouse run")
    ap.add_argument("--embeddings", nargs="*", default=[], help="embedding parquet files, relative to the run")
    ap.add_argument("--align", nargs="*", default=[], help="comparison settings to align again (see above)")
    a = ap.parse_args(argv)
    truth = pd.read_csv(a.run / "generated" / "truth.tsv", sep="\t")
    vocab = pd.read_csv(a.run / "tokens" / "vocab.tsv", sep="\t", keep_default_na=False)
    n_modules = int(max(truth["human_module"].max(), truth["mouse_module"].max())) + 1
    print(f"{a.run}: {len(truth)} ortholog pairs, {n_modules} modules (chance ~{1 / n_modules:.3f})")
    tables = {"tokens (PPMI-SVD)": (vocab["ensembl_id"], token_ppmi_svd(a.run, len(vocab)))}
    for name in a.embeddings:
        frame = pd.read_parquet(a.run / name)
        tables[name] = (frame["ensembl_id"], np.stack(frame["embedding"]).astype(np.float64))
    for name, (ids, vectors) in tables.items():
        row = {}
        index = pd.Series(np.arange(len(ids)), index=pd.Index(ids))
        for species, id_column, module_column in SPECIES:
            present = truth[id_column].isin(index.index)
            rows = index[truth.loc[present, id_column]].to_numpy()
            row[species] = purity10(vectors[rows], truth.loc[present, module_column].to_numpy())
        print(f"  {name}: purity10 human {row['human']:.3f}, mouse {row['mouse']:.3f}")
    for setting in a.align:
        alignment_ranks(a.run, setting, truth)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
