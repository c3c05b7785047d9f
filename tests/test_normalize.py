"""Binning-By-Gene and the other normalizations on hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest

from generain import normalize


def test_cp10m_log10_hand_computed():
    counts = np.array([[1, 0], [9, 5], [0, 5]], dtype=np.uint32)  # totals 10 and 10
    out = normalize.cp10m_log10(counts)
    # 1 of 10 reads = 1e6 CP10M -> log10(1e6 + 1); 9 of 10 -> 9e6; 5 of 10 -> 5e6
    expected = np.array([[np.log10(1e6 + 1), 0], [np.log10(9e6 + 1), np.log10(5e6 + 1)], [0, np.log10(5e6 + 1)]])
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert out[0, 0] == pytest.approx(6.0, abs=1e-6)


def test_cp10m_uses_given_library_sizes():
    counts = np.array([[10]], dtype=np.uint32)
    assert normalize.cp10m_log10(counts, totals=np.array([100]))[0, 0] == pytest.approx(np.log10(1e6 + 1))


def test_cp10m_rejects_empty_sample():
    with pytest.raises(ValueError, match="zero total"):
        normalize.cp10m_log10(np.zeros((2, 1), dtype=np.uint32))


def test_bin_by_gene_worked_example_2000_bins():
    # one gene over 6 samples; non-zero values ranked with ties in sample order:
    # 0.2 -> r0, 0.5 (sample 1) -> r1, 0.5 (sample 4) -> r2, 0.9 -> r3; nnz = 4
    # bin = floor(r * 1999 / 3) + 2 -> 2, 668, 1334, 2001 (capped to 2000); zeros -> 1
    values = np.array([[0, 0.5, 0.2, 0, 0.5, 0.9]])
    np.testing.assert_array_equal(normalize.bin_by_gene(values, n_bins=2000), [[1, 668, 2, 1, 1334, 2000]])


def test_bin_by_gene_small_bins_and_edge_genes():
    values = np.array([
        [0, 0.5, 0.2, 0, 0.5, 0.9],  # as above with 5 bins: floor(r * 4 / 3) + 2 -> 2, 3, 4, 6 -> 5
        [0, 0, 3.0, 0, 0, 0],        # single non-zero value -> bin 2
        [0, 0, 0, 0, 0, 0],          # never expressed -> all bin 1
        [1, 1, 1, 1, 1, 1],          # all tied: ranks 0..5 in sample order -> floor(r * 4 / 5) + 2
    ])
    bins = normalize.bin_by_gene(values, n_bins=5)
    assert bins.dtype == np.uint16
    np.testing.assert_array_equal(bins, [
        [1, 3, 2, 1, 4, 5],
        [1, 1, 2, 1, 1, 1],
        [1, 1, 1, 1, 1, 1],
        [2, 2, 3, 4, 5, 5],
    ])


def test_bin_by_gene_matches_reference_formula_on_random_data():
    rng = np.random.default_rng(1)
    values = np.where(rng.random((20, 300)) < 0.3, 0, rng.gamma(2.0, 1.0, (20, 300))).round(1)  # many ties
    bins = normalize.bin_by_gene(values, n_bins=2000)
    for g in range(values.shape[0]):
        v = values[g]
        nz = np.flatnonzero(v > 0)
        order = nz[np.argsort(v[nz], kind="stable")]
        expected = np.ones(v.size, dtype=int)
        for r, j in enumerate(order):
            expected[j] = min(r * 1999 // max(len(nz) - 1, 1) + 2, 2000)
        np.testing.assert_array_equal(bins[g], expected)


def test_bin_reference_transform_hand_computed():
    ref = normalize.BinReference(np.array(["g"], dtype=object), np.array([[0, 0, 0.1, 0.3, 0.5, 0.7]], np.float32),
                                 n_bins=5, n_training_samples=6)
    # non-zero reference points m = 4; r = points < v; bin = r * 4 // 4 + 2, capped at 5
    values = np.array([[0.0, 0.05, 0.3, 0.6, 1.0]])
    bins, rows = normalize.apply_bin_reference(values, np.array(["g"]), ref)
    np.testing.assert_array_equal(bins, [[1, 2, 3, 5, 5]])
    np.testing.assert_array_equal(rows, [0])


def test_bin_reference_fit_subsamples_sorted_values_and_drops_unknown_genes():
    values = np.arange(20, dtype=np.float32).reshape(2, 10)[:, ::-1]
    ref = normalize.BinReference.fit(values, np.array(["a", "b"]), n_bins=2000, fraction=0.3, min_points=2)
    # n_points = max(2, int(0.3 * 10)) = 3 at sorted positions linspace(0, 9, 3) -> 0, 4, 9
    np.testing.assert_array_equal(ref.values, [[0, 4, 9], [10, 14, 19]])
    bins, rows = normalize.apply_bin_reference(np.array([[5.0], [1.0]]), np.array(["x", "b"]), ref)
    np.testing.assert_array_equal(rows, [1])
    np.testing.assert_array_equal(bins, [[2]])  # 1.0 is below every reference point of b


def test_transform_with_full_reference_is_close_to_exact_binning():
    rng = np.random.default_rng(0)
    values = np.where(rng.random((30, 500)) < 0.2, 0, rng.gamma(2.0, 1.0, (30, 500)))
    exact = normalize.bin_by_gene(values).astype(int)
    ref = normalize.BinReference.fit(values, np.arange(30).astype(str), n_bins=2000, fraction=1.0, min_points=100)
    binned, _ = normalize.apply_bin_reference(values, np.arange(30).astype(str), ref)
    # the only difference: a value counts itself among the reference points (one rank step ~ 5 bins here)
    assert np.abs(binned.astype(int) - exact).max() <= 6


def test_collapse_duplicates_keeps_highest_mean():
    values = np.array([[1.0, 1.0], [5.0, 5.0], [2.0, 2.0], [3.0, 3.0]])
    keep = normalize.collapse_duplicates(values, np.array(["A", "B", "A", ""], dtype=object))
    np.testing.assert_array_equal(keep, [1, 2, 3])


def test_zscore_and_rank_value():
    values = np.array([[1.0, 3.0], [2.0, 2.0]])
    np.testing.assert_allclose(normalize.zscore_by_gene(values), [[-1, 1], [0, 0]])
    # log10(CP10M+1) of CP10M 9, 99, 0 -> divided by the non-zero median 54
    v = np.log10(np.array([[10.0, 100.0, 1.0]]))
    np.testing.assert_allclose(normalize.rank_value_scores(v), [[9 / 54, 99 / 54, 0]], rtol=1e-5)


def test_gene_scores_eligibility():
    values = np.array([[0.0, 1.0], [2.0, 0.0]])
    bins, ok = normalize.gene_scores(values, "binning")
    np.testing.assert_array_equal(ok, [[False, True], [True, False]])
    _, ok = normalize.gene_scores(values, "zscore")
    assert ok.all()
    with pytest.raises(ValueError, match="unknown normalization"):
        normalize.gene_scores(values, "tpm")  # type: ignore[arg-type]
