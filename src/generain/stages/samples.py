"""Rule embed_samples: sample embeddings and contextual gene embeddings from a model's hidden states.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``). The method is
:mod:`generain.inference`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import embed, inference, io, plots, tokenize
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
