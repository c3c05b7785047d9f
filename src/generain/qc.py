"""Sample quality control with GeneRAIN's criteria.

Criteria (GeneRAIN's public code, ``scale_by_sample_total_count_log_transform``
and the ARCHS4 filter of the paper, Methods "Data preprocessing"):
total counts >= 1,000,000; ARCHS4 single-cell probability < 0.5; detected
(non-zero) genes > 2,000.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from .utils import InputError

QC_COLUMNS = (
    "sample_id", "dataset", "total_counts", "detected_genes",
    "singlecell_probability", "passed", "reason", "series_id", "n_reads", "n_pseudoaligned",
)
"""Columns of qc/samples.parquet: the output contract's, then series_id (the source study), then n_reads and
n_pseudoaligned (reads in the FASTQs, counted with pysam, and those kallisto pseudoaligned; null for samples
that came as counts)."""

QC_SCHEMA = pa.schema([
    ("sample_id", pa.string()), ("dataset", pa.string()), ("total_counts", pa.int64()),
    ("detected_genes", pa.int64()), ("singlecell_probability", pa.float64()), ("passed", pa.bool_()),
    ("reason", pa.string()), ("series_id", pa.string()), ("n_reads", pa.int64()), ("n_pseudoaligned", pa.int64()),
])


@dataclass(frozen=True)
class QCCriteria:
    """Thresholds of the sample QC (defaults: GeneRAIN's)."""

    min_total_counts: int = 1_000_000
    max_singlecell_probability: float = 0.5
    min_detected_genes: int = 2_000

    def reasons(self) -> tuple[str, str, str]:
        return (
            f"total_counts < {self.min_total_counts}",
            f"singlecell_probability >= {self.max_singlecell_probability:g}",
            f"detected_genes <= {self.min_detected_genes}",
        )


def sample_stats(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample total counts and detected genes.

    Parameters
    ----------
    counts : np.ndarray
        uint32, shape (n_genes, n_samples), raw read counts.

    Returns
    -------
    (np.ndarray, np.ndarray)
        total_counts int64 (n_samples,), detected_genes int64 (n_samples,)
        (genes with a count > 0).
    """
    total = counts.sum(axis=0, dtype=np.int64)
    detected = np.count_nonzero(counts, axis=0).astype(np.int64)
    return total, detected


def evaluate_samples(
    *,
    sample_ids: np.ndarray,
    dataset: np.ndarray,
    series_id: np.ndarray,
    total_counts: np.ndarray,
    detected_genes: np.ndarray,
    singlecell_probability: np.ndarray,
    criteria: QCCriteria,
    n_reads: np.ndarray | None = None,
    n_pseudoaligned: np.ndarray | None = None,
) -> pd.DataFrame:
    """Apply the QC criteria to per-sample statistics.

    All arrays have shape (n_samples,). A NaN single-cell probability (source
    without that field) does not fail the single-cell criterion. ``n_reads``
    and ``n_pseudoaligned`` (FASTQ datasets) are recorded, not judged; null
    when not given.

    Returns
    -------
    pandas.DataFrame
        Columns of :data:`QC_COLUMNS`; ``reason`` joins every failed criterion
        with ``"; "`` and is None for passing samples.
    """
    r_total, r_sc, r_det = criteria.reasons()
    fail_total = total_counts < criteria.min_total_counts
    scp = np.asarray(singlecell_probability, dtype=np.float64)
    fail_sc = np.nan_to_num(scp, nan=-np.inf) >= criteria.max_singlecell_probability
    fail_det = detected_genes <= criteria.min_detected_genes
    reasons = []
    for t, s, d in zip(fail_total, fail_sc, fail_det):
        parts = [r for r, f in ((r_total, t), (r_sc, s), (r_det, d)) if f]
        reasons.append("; ".join(parts) if parts else None)
    passed = ~(fail_total | fail_sc | fail_det)
    return pd.DataFrame({
        "sample_id": np.asarray(sample_ids, dtype=object),
        "dataset": np.asarray(dataset, dtype=object),
        "total_counts": np.asarray(total_counts, dtype=np.int64),
        "detected_genes": np.asarray(detected_genes, dtype=np.int64),
        "singlecell_probability": scp,
        "passed": passed,
        "reason": pd.Series(reasons, dtype=object),
        "series_id": np.asarray(series_id, dtype=object),
        "n_reads": pd.array(n_reads if n_reads is not None else [pd.NA] * len(passed), dtype="Int64"),
        "n_pseudoaligned": pd.array(n_pseudoaligned if n_pseudoaligned is not None else [pd.NA] * len(passed),
                                    dtype="Int64"),
    })


def failure_summary(qc: pd.DataFrame) -> str:
    """One line such as ``"93 of 123 samples passed QC: 30 detected_genes <= 2000"``."""
    counts: Counter[str] = Counter()
    for r in qc["reason"].dropna():
        counts.update(r.split("; "))
    head = f"{int(qc['passed'].sum())} of {len(qc)} samples passed QC"
    if not counts:
        return head
    return head + ": " + ", ".join(f"{n} {r}" for r, n in counts.most_common())


def require_passing(qc: pd.DataFrame, *, source: str) -> None:
    """Raise InputError when no sample passed QC, naming the reasons and counts."""
    if not qc["passed"].any():
        raise InputError(f"{source}: {failure_summary(qc)}")
