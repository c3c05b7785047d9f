"""Sample QC: each criterion, its reason, and the all-fail message."""
from __future__ import annotations

import numpy as np
import pytest

from generain import qc
from generain.utils import InputError


def _evaluate(total, detected, scp):
    n = len(total)
    return qc.evaluate_samples(
        sample_ids=np.array([f"s{i}" for i in range(n)], dtype=object), dataset=np.array(["d"] * n, dtype=object),
        series_id=np.array(["GSE1"] * n, dtype=object), total_counts=np.array(total),
        detected_genes=np.array(detected), singlecell_probability=np.array(scp, dtype=float),
        criteria=qc.QCCriteria())


def test_each_reason_and_boundaries():
    t = _evaluate(
        total=[1_000_000, 999_999, 5_000_000, 5_000_000, 10, 2_000_000],
        detected=[2_001, 5_000, 2_000, 3_000, 100, 3_000],
        scp=[0.49, 0.0, 0.0, 0.5, 0.9, np.nan],
    )
    assert list(t.columns) == ["sample_id", "dataset", "total_counts", "detected_genes", "singlecell_probability",
                               "passed", "reason", "series_id", "n_reads", "n_pseudoaligned"]
    assert t["n_reads"].isna().all() and t["n_pseudoaligned"].isna().all()  # counts, not FASTQs
    assert t["passed"].tolist() == [True, False, False, False, False, True]
    assert t["reason"].tolist() == [
        None,
        "total_counts < 1000000",
        "detected_genes <= 2000",
        "singlecell_probability >= 0.5",
        "total_counts < 1000000; singlecell_probability >= 0.5; detected_genes <= 2000",
        None,  # unknown single-cell probability does not fail the sample
    ]


def test_sample_stats():
    counts = np.array([[0, 3], [2, 0], [5, 1]], dtype=np.uint32)
    total, detected = qc.sample_stats(counts)
    assert total.tolist() == [7, 4] and detected.tolist() == [2, 2]


def test_no_passing_sample_message_counts_reasons():
    t = _evaluate(total=[10, 10, 5_000_000], detected=[100, 100, 100], scp=[0, 0, 0])
    with pytest.raises(InputError, match=r"^x\.h5: 0 of 3 samples passed QC: 3 detected_genes <= 2000, "
                                         r"2 total_counts < 1000000$"):
        qc.require_passing(t, source="x.h5")
