"""Normalization: CP10M + log10, gene filtering, Binning-By-Gene, alternatives.

Method source: GeneRAIN (Su et al. 2024), Methods "Binning-By-Gene
normalization", and the authors' code (``src/data/normalize_each_gene/
4_cal_bins_on_one_chunk_of_genes.py``, ``6_gen_subsamples_for_each_gene...``,
``GetBinsByGeneForNewSamples.py``). Differences from that code, on purpose:

* ties between equal non-zero values of a gene are broken by sample order
  (a stable sort); the original used NumPy's default unstable quicksort, so
  its tie order was arbitrary;
* bins are computed with integer arithmetic, ``r * (n_bins - 1) // (nnz - 1)``,
  so values on a bin boundary are not moved by float rounding;
* new samples are binned against the reference one at a time; the original
  stacked five new samples with the reference, so they changed each other's
  ranks.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import h5py
import numpy as np
import pandas as pd

from .io import decode_strings
from .utils import InputError, atomic_path

log = logging.getLogger(__name__)

Method = Literal["binning", "zscore", "rank_value"]


def cp10m_log10(counts: np.ndarray, *, totals: np.ndarray | None = None) -> np.ndarray:
    """Counts per 10 million then log10(x + 1).

    Parameters
    ----------
    counts : np.ndarray
        uint32, shape (n_genes, n_samples), raw read counts.
    totals : np.ndarray, optional
        int64, shape (n_samples,), library sizes; default the column sums.

    Returns
    -------
    np.ndarray
        float32, shape (n_genes, n_samples), log10(CP10M + 1).

    Raises
    ------
    ValueError
        If a sample has a total of zero.
    """
    totals = counts.sum(axis=0, dtype=np.int64) if totals is None else np.asarray(totals, dtype=np.int64)
    if (totals <= 0).any():
        raise ValueError(f"{int((totals <= 0).sum())} samples have zero total counts")
    scale = 1e7 / totals.astype(np.float64)
    out = np.empty(counts.shape, dtype=np.float32)
    step = max(1, (1 << 19) // max(1, counts.shape[1]))  # ~4 MB float64 blocks of rows: cache-sized, same result
    for a in range(0, counts.shape[0], step):
        x = counts[a:a + step].astype(np.float64)
        x *= scale[None, :]
        x += 1.0
        np.log10(x, out=x)
        out[a:a + step] = x
    return out


def collapse_duplicates(values: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Indices of rows to keep when keys repeat: the row with the highest mean.

    Parameters
    ----------
    values : np.ndarray
        float, shape (n_genes, n_samples).
    keys : np.ndarray
        str, shape (n_genes,), e.g. gene symbols. Empty keys never collapse.

    Returns
    -------
    np.ndarray
        int64 row indices, ascending. Among equal means the first row wins.
    """
    means = values.mean(axis=1)
    keys = np.asarray(keys, dtype=object)
    best: dict[str, int] = {}
    keep = []
    for i, k in enumerate(keys):
        if not k:
            keep.append(i)
            continue
        j = best.get(k)
        if j is None or means[i] > means[j]:
            best[k] = i
    keep.extend(best.values())
    return np.array(sorted(keep), dtype=np.int64)


def gene_filter_reasons(genes: pd.DataFrame, *, biotypes: list[str], min_mean: float, deduplicate_by: str) -> np.ndarray:
    """Why each gene is dropped by GeneRAIN's gene filters ("" for kept genes).

    In order: biotype not in ``biotypes``; among the allowed genes, rows
    sharing a ``deduplicate_by`` key keep the highest mean
    (:func:`collapse_duplicates`); mean log10(CP10M+1) not above ``min_mean``.

    Parameters
    ----------
    genes : pandas.DataFrame
        One row per gene with columns biotype, ``deduplicate_by`` and mean
        (mean log10(CP10M+1) over the samples).

    Returns
    -------
    np.ndarray
        object (n_genes,): the first reason that drops each gene, or "".
    """
    means = genes["mean"].to_numpy()
    reason = np.full(len(genes), "", dtype=object)
    allowed = genes["biotype"].isin(list(biotypes)).to_numpy()
    reason[~allowed] = "biotype not in vocabulary biotypes"
    rows = np.flatnonzero(allowed)  # duplicates compete only among genes of the allowed biotypes
    keys = genes[deduplicate_by].fillna("").to_numpy(dtype=object)[rows]
    dup = np.ones(len(rows), dtype=bool)
    dup[collapse_duplicates(means[rows, None], keys)] = False
    reason[rows[dup]] = f"duplicate {deduplicate_by} with a lower mean"
    reason[(reason == "") & ~(means > min_mean)] = f"mean log10(CP10M+1) <= {min_mean:g}"
    return reason


def bin_by_gene(values: np.ndarray, *, n_bins: int = 2000) -> np.ndarray:
    """Exact Binning-By-Gene of a genes x samples matrix.

    For each gene, zeros get bin 1; the gene's nnz non-zero values are ranked
    r = 0..nnz-1 (ascending; ties in sample order) and get
    ``bin = floor(r * (n_bins - 1) / (nnz - 1)) + 2`` capped at ``n_bins``
    (``bin = 2`` when nnz == 1).

    Parameters
    ----------
    values : np.ndarray
        float, shape (n_genes, n_samples), non-negative (log10(CP10M+1)).
    n_bins : int
        Number of bins including the zero bin (GeneRAIN: 2,000).

    Returns
    -------
    np.ndarray
        uint16, shape (n_genes, n_samples), bins in 1..n_bins.
    """
    if n_bins < 3 or n_bins > np.iinfo(np.uint16).max:
        raise ValueError(f"n_bins must be in 3..65535, got {n_bins}")
    if values.size and values.min() < 0:
        raise ValueError("bin_by_gene expects non-negative values")
    n_genes, n_samples = values.shape
    order = np.argsort(values, axis=1, kind="stable")
    pos = np.empty_like(order)
    np.put_along_axis(pos, order, np.arange(n_samples)[None, :].repeat(n_genes, axis=0), axis=1)
    nonzero = values > 0
    nnz = nonzero.sum(axis=1).astype(np.int64)
    rank = pos - (n_samples - nnz)[:, None]  # zeros sort first, so non-zero ranks start at 0
    denom = np.maximum(nnz - 1, 1)[:, None]
    bins = rank * (n_bins - 1) // denom + 2
    bins = np.minimum(bins, n_bins)
    bins[~nonzero] = 1
    return bins.astype(np.uint16)


@dataclass
class BinReference:
    """Per-gene reference for binning new samples (the "fit" of Binning-By-Gene).

    Attributes
    ----------
    gene_ids : np.ndarray
        str, shape (n_genes,).
    values : np.ndarray
        float32, shape (n_genes, n_points): each gene's training values
        (log10(CP10M+1), zeros included) sorted ascending and taken at
        ``n_points`` evenly spaced ranks, as GeneRAIN's 0.5% subsample.
    n_bins : int
    n_training_samples : int
    """

    gene_ids: np.ndarray
    values: np.ndarray
    n_bins: int
    n_training_samples: int

    @classmethod
    def fit(
        cls,
        values: np.ndarray,
        gene_ids: np.ndarray,
        *,
        n_bins: int,
        fraction: float,
        min_points: int,
    ) -> BinReference:
        """Fit the per-gene reference used to bin new samples.

        Sorted values of each gene are subsampled at
        ``linspace(0, n_samples - 1, n_points).astype(int)`` with
        ``n_points = min(n_samples, max(min_points, int(fraction * n_samples)))``
        (GeneRAIN: fraction 0.005 of ~410K samples, ~2,054 points;
        ``normalization.reference_fraction`` and ``reference_min_points``).

        Parameters
        ----------
        values : np.ndarray
            float, shape (n_genes, n_samples), log10(CP10M+1) of training samples.
        gene_ids : np.ndarray
            str, shape (n_genes,).
        n_bins : int
            Binning-By-Gene bins the reference is for.
        fraction : float
            Share of the samples kept as points per gene.
        min_points : int
            At least this many points per gene (capped at n_samples).
        """
        n_genes, n_samples = values.shape
        n_points = int(min(n_samples, max(min_points, int(fraction * n_samples))))
        idx = np.linspace(0, n_samples - 1, n_points).astype(np.int64)
        ref = np.sort(values, axis=1)[:, idx].astype(np.float32)
        return cls(np.asarray(gene_ids, dtype=object), ref, n_bins, n_samples)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the reference to HDF5 atomically (datasets gene_ids, values; attrs n_bins, n_training_samples).

        The values are stored uncompressed: every streaming pass-2 job reads the
        whole reference (~290 MB at 36,000 genes x 2,000 points), and inflating
        it took ~1.3 s per job.
        """
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
            h5.create_dataset("gene_ids", data=self.gene_ids.astype(object), dtype=h5py.string_dtype())
            h5.create_dataset("values", data=self.values)
            h5.attrs["n_bins"] = self.n_bins
            h5.attrs["n_training_samples"] = self.n_training_samples

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BinReference:
        """Read a reference written by :meth:`save` (``bin_reference.h5`` of a run).

        Raises
        ------
        InputError
            If the file does not exist or lacks the reference's datasets.
        """
        if not Path(path).exists():
            raise InputError(f"{path}: binning reference not found")
        with h5py.File(path, "r") as h5:
            if "gene_ids" not in h5 or "values" not in h5:
                raise InputError(f"{path}: not a binning reference (needs datasets gene_ids and values)")
            return cls(decode_strings(h5["gene_ids"][()]), h5["values"][()], int(h5.attrs["n_bins"]),
                       int(h5.attrs["n_training_samples"]))


def apply_bin_reference(values: np.ndarray, gene_ids: np.ndarray, reference: BinReference) -> tuple[np.ndarray, np.ndarray]:
    """Bin new samples against a fitted reference (the "transform").

    A non-zero value v of a gene whose reference has m non-zero points gets
    rank r = number of reference points < v and
    ``bin = floor(r * (n_bins - 1) / m) + 2`` capped at n_bins (bin 2 if
    m == 0): the exact formula applied to the reference plus this one value.
    Zeros get bin 1. Each sample is binned independently.

    Parameters
    ----------
    values : np.ndarray
        float, shape (n_genes, n_samples), log10(CP10M+1) of new samples.
    gene_ids : np.ndarray
        str, shape (n_genes,).
    reference : BinReference

    Returns
    -------
    (np.ndarray, np.ndarray)
        bins uint16 shape (n_kept, n_samples) and the int64 row indices of
        ``values`` that the reference covers (genes it lacks are dropped).

    Raises
    ------
    InputError
        If no gene is covered by the reference.
    """
    ref_index = {g: i for i, g in enumerate(reference.gene_ids)}
    rows = np.array([i for i, g in enumerate(gene_ids) if g in ref_index], dtype=np.int64)
    if rows.size == 0:
        raise InputError("none of the dataset's genes is in the binning reference")
    n_bins = reference.n_bins
    out = np.empty((rows.size, values.shape[1]), dtype=np.uint16)
    for k, i in enumerate(rows):
        ref = reference.values[ref_index[gene_ids[i]]]
        nz = ref[ref > 0]
        v = values[i]
        m = nz.size
        r = np.searchsorted(nz, v, side="left").astype(np.int64)
        b = r * (n_bins - 1) // max(m, 1) + 2 if m else np.full(v.shape, 2, dtype=np.int64)
        b = np.minimum(b, n_bins)
        b[v <= 0] = 1
        out[k] = b
    dropped = len(gene_ids) - rows.size
    if dropped:
        log.info("binning reference lacks %d of %d genes; they are dropped", dropped, len(gene_ids))
    return out, rows


def zscore_by_gene(values: np.ndarray) -> np.ndarray:
    """Per-gene z-score over samples (GeneRAIN's ZScore alternative).

    Parameters
    ----------
    values : np.ndarray
        float, shape (n_genes, n_samples), log10(CP10M+1).

    Returns
    -------
    np.ndarray
        float32, same shape; genes with zero variance get 0.
    """
    mean = values.mean(axis=1, keepdims=True)
    std = values.std(axis=1, keepdims=True)
    z = np.divide(values - mean, std, out=np.zeros_like(values, dtype=np.float64), where=std > 0)
    return z.astype(np.float32)


def rank_value_scores(values: np.ndarray, medians: np.ndarray | None = None) -> np.ndarray:
    """Geneformer's rank-value normalization scores.

    Each gene's normalized count is divided by the gene's median over samples
    where it is non-zero (Theodoris et al. 2023, Methods "Rank value
    encoding"; Geneformer's ``TranscriptomeTokenizer``: counts / total * 10,000
    / median); genes are then ranked by this score within each sample by the
    tokenizer.

    Parameters
    ----------
    values : np.ndarray
        float, shape (n_genes, n_samples), log10(CP10M+1).
    medians : np.ndarray, optional
        float, shape (n_genes,): each gene's non-zero median in counts per
        10,000 (a published model's gene-median dictionary); scores are then
        counts per 10,000 / median, as Geneformer's. None: medians of these
        samples' CP10M (the ranks within a sample are the same at any scale).

    Returns
    -------
    np.ndarray
        float32, same shape; 0 where the gene is not expressed.
    """
    cp10m = np.power(10.0, values.astype(np.float64)) - 1.0
    if medians is not None:
        med = np.asarray(medians, dtype=np.float64)[:, None]
        if med.shape[0] != values.shape[0] or not (np.isfinite(med) & (med > 0)).all():
            raise ValueError("medians must be positive and finite, one per gene")
        return np.where(cp10m > 0, cp10m / 1000.0 / med, 0.0).astype(np.float32)
    masked = np.where(cp10m > 0, cp10m, np.nan)
    with np.errstate(all="ignore"):
        med = np.nanmedian(masked, axis=1, keepdims=True)
    med = np.where(np.isfinite(med) & (med > 0), med, 1.0)
    return np.where(cp10m > 0, cp10m / med, 0.0).astype(np.float32)


def gene_scores(values: np.ndarray, method: Method, *, n_bins: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample gene scores used to rank genes, and which genes may be tokens.

    Parameters
    ----------
    values : np.ndarray
        float, shape (n_genes, n_samples), log10(CP10M+1).
    method : {"binning", "zscore", "rank_value"}

    Returns
    -------
    (np.ndarray, np.ndarray)
        scores (uint16 bins for binning, float32 otherwise) and a bool mask of
        eligible genes, both shape (n_genes, n_samples). Binning and rank_value
        exclude unexpressed genes; zscore ranks every gene by |z|.
    """
    if method == "binning":
        scores: np.ndarray = bin_by_gene(values, n_bins=n_bins)
    elif method == "zscore":
        scores = np.abs(zscore_by_gene(values))
    elif method == "rank_value":
        scores = rank_value_scores(values)
    else:
        raise ValueError(f"unknown normalization method {method!r}")
    return scores, eligible_mask(scores, method)


def eligible_mask(scores: np.ndarray, method: str) -> np.ndarray:
    """Genes that may become tokens, from their scores: bool, same shape as ``scores``.

    Expressed genes for binning (bin > 1) and rank_value (score > 0); every
    gene for zscore.
    """
    if method == "binning":
        return scores > 1
    if method == "rank_value":
        return scores > 0
    return np.ones(scores.shape, dtype=bool)
