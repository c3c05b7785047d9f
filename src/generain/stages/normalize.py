"""Rules normalize_counts, fit_bin_reference and transform_expression: the in-memory data path.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .. import io, normalize, tokenize
from ..utils import InputError, PathLike, atomic_path, timed

log = logging.getLogger(__name__)


def _merge_passing(matrices: Sequence[PathLike], qc_table: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Union of genes over datasets (zero-filled), passing samples only."""
    passing = set(qc_table.loc[qc_table["passed"], "sample_id"])
    parts = []
    for path in matrices:
        m = io.read_matrix(path)
        keep = m.samples["sample_id"].isin(passing).to_numpy()
        if keep.any():
            parts.append((m.matrix[:, keep], m.genes, m.samples.loc[keep].assign(dataset=m.attrs["dataset"])))
    genes = (pd.concat([p[1] for p in parts]).drop_duplicates("ensembl_id")
             .sort_values("ensembl_id").reset_index(drop=True))
    gi = pd.Index(genes["ensembl_id"])
    counts = np.zeros((len(genes), sum(p[0].shape[1] for p in parts)), dtype=np.uint32)
    col = 0
    for mat, g, _ in parts:
        counts[gi.get_indexer(g["ensembl_id"]), col:col + mat.shape[1]] = mat
        col += mat.shape[1]
    samples = pd.concat([p[2] for p in parts], ignore_index=True)
    return counts, genes, samples


def normalize_counts(
    *,
    matrices: Sequence[PathLike],
    qc_table: PathLike,
    biotypes: Sequence[str],
    min_mean: float,
    deduplicate_by: str,
    out_matrix: PathLike,
    out_genes: PathLike,
    vocab: PathLike | None = None,
) -> dict[str, Any]:
    """CP10M + log10, duplicate collapse, gene filtering, for samples passing QC.

    Steps (GeneRAIN, Methods "Data preprocessing"): merge passing samples of
    all datasets (genes missing from a dataset are zero there); CP10M using
    each sample's total counts from QC; log10(x + 1); keep genes whose biotype
    is in ``biotypes``; among those, rows sharing a ``deduplicate_by`` key keep
    the highest mean; keep genes whose mean log10(CP10M+1) over samples is
    > ``min_mean``. With an imported model's ``vocab`` (config ``pretrained``)
    the kept genes are instead exactly the vocabulary's genes that the data
    has: the published model's authors filtered its genes on their own
    compendium, and its new samples are not filtered again.

    Outputs: ``out_matrix`` float32 (n_kept_genes, n_samples) log10(CP10M+1)
    with gene columns ensembl_id, symbol, biotype, mean and sample columns
    sample_id, dataset, series_id; ``out_genes`` TSV of every gene with
    kept (bool) and reason.

    Raises
    ------
    InputError
        If no gene passes the filters.
    """
    table = pd.read_parquet(qc_table)
    with timed("merge passing samples"):
        counts, genes, samples = _merge_passing(matrices, table)
    totals = table.set_index("sample_id").loc[samples["sample_id"], "total_counts"].to_numpy()
    with timed(f"CP10M + log10 of {counts.shape[0]} genes x {counts.shape[1]} samples"):
        values = normalize.cp10m_log10(counts, totals=totals)
    del counts
    genes["mean"] = values.mean(axis=1)
    if vocab is None:
        reason = normalize.gene_filter_reasons(genes, biotypes=list(biotypes), min_mean=min_mean,
                                               deduplicate_by=deduplicate_by)
    else:
        in_vocab = genes["ensembl_id"].isin(set(tokenize.read_vocab(vocab)["ensembl_id"]))
        reason = np.where(in_vocab, "", "not in the imported model's vocabulary").astype(object)
    kept = reason == ""
    genes["kept"] = kept
    genes["reason"] = np.where(kept, "", reason)
    if not kept.any():
        counts_by = pd.Series(reason).value_counts().to_dict()
        raise InputError(f"{qc_table}: no gene passes the normalization filters ({counts_by})")
    with atomic_path(out_genes) as tmp:
        genes.to_csv(tmp, sep="\t", index=False)
    io.write_matrix(out_matrix, values[kept],
                    genes={c: genes.loc[kept, c].to_numpy() for c in ("ensembl_id", "symbol", "biotype", "mean")},
                    samples={c: samples[c].to_numpy(dtype=object) for c in ("sample_id", "dataset", "series_id")},
                    attrs={"values": "log10(CP10M+1)"})
    stats = {"genes_in": int(len(genes)), "genes_kept": int(kept.sum()), "samples": int(values.shape[1]),
             "by_biotype": genes.loc[kept, "biotype"].value_counts().to_dict()}
    log.info("normalized: %s", stats)
    return stats


def fit_bin_reference(*, matrix: PathLike, n_bins: int, fraction: float, min_points: int, out_reference: PathLike) -> None:
    """Fit and save the per-gene Binning-By-Gene reference (:meth:`generain.normalize.BinReference.fit`, ``.save``)."""
    m = io.read_matrix(matrix)
    ref = normalize.BinReference.fit(m.matrix, m.genes["ensembl_id"].to_numpy(), n_bins=n_bins,
                                      fraction=fraction, min_points=min_points)
    ref.save(out_reference)
    log.info("bin reference: %d genes x %d points from %d samples", *ref.values.shape, ref.n_training_samples)


def transform_expression(
    *, matrix: PathLike, method: str, n_bins: int, reference: PathLike | None, out_scores: PathLike
) -> None:
    """Per-sample gene scores used by the tokenizer (bins, |z| or rank values).

    With ``method == "binning"`` and no ``reference``, exact Binning-By-Gene over
    the run's own samples; with a saved ``reference``, the samples are binned
    against it (genes it lacks are dropped). With ``method == "rank_value"``
    and a ``reference`` (``gene_medians.tsv``: ensembl_id, median, an imported
    Geneformer model's), scores are counts per 10,000 over those medians and
    genes without a median are dropped.
    """
    m = io.read_matrix(matrix)
    genes = m.genes
    with timed(f"{method} of {m.matrix.shape[0]} genes x {m.matrix.shape[1]} samples"):
        if method == "binning" and reference:
            ref = normalize.BinReference.load(reference)
            if ref.n_bins != n_bins:
                raise InputError(f"{reference}: the reference has {ref.n_bins} bins but normalization.n_bins "
                                 f"is {n_bins}; set them equal")
            scores, rows = normalize.apply_bin_reference(m.matrix, genes["ensembl_id"].to_numpy(), ref)
            genes = genes.iloc[rows].reset_index(drop=True)
        elif method == "rank_value" and reference:
            med = pd.read_csv(reference, sep="\t").set_index("ensembl_id")["median"]
            rows = np.flatnonzero(genes["ensembl_id"].isin(med.index).to_numpy())
            if rows.size == 0:
                raise InputError(f"{reference}: no gene of {matrix} has a median")
            genes = genes.iloc[rows].reset_index(drop=True)
            scores = normalize.rank_value_scores(m.matrix[rows], med.loc[genes["ensembl_id"]].to_numpy())
        else:
            scores, _ = normalize.gene_scores(m.matrix, method, n_bins=n_bins)  # type: ignore[arg-type]
    io.write_matrix(out_scores, scores, genes={c: genes[c].to_numpy() for c in genes.columns},
                    samples={c: m.samples[c].to_numpy() for c in m.samples.columns},
                    attrs={"method": method, "n_bins": n_bins})
