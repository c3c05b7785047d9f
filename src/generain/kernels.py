"""Compiled kernels (numba) of the data path: binning against a reference, tokenizing, pass 1's selections and sketch.

Imported only where used: numba compiles each kernel on its first call and
caches the machine code on disk (``cache=True``, in ``__pycache__`` or
``NUMBA_CACHE_DIR``), so later jobs load it instead of compiling.
Each kernel is checked value for value against the NumPy code it replaces
(``tests/test_stream.py``, ``tests/test_tokenize.py``).
"""
from __future__ import annotations

import numba
import numpy as np


#: values searched together by :func:`bin_rows`
_LANES = 64


@numba.njit(cache=True, nogil=True)
def bin_rows(values: np.ndarray, reference: np.ndarray, m: np.ndarray, n_bins: int, out: np.ndarray) -> None:
    """Binning-By-Gene bins of ``values`` against each gene's reference points, in place into ``out``.

    The kernel of :func:`generain.stream.bin_against_reference`. Per gene and
    non-zero value v, the fractional rank is exactly
    ``np.interp(v, xp, np.linspace(0, 1, m))`` with ``xp`` the gene's m
    non-zero reference points (NumPy's ``arr_interp``: the last point <= v
    by binary search; an exact hit takes that point's rank; otherwise the
    slope between the two points; at or beyond the ends, 0 or 1), and the bin
    is ``min(floor(rho * (n_bins - 1) + 1e-9) + 2, n_bins)``; zeros get bin 1.
    One binary search per value in compiled code, 64 values searched in
    lock-step (independent searches overlap in the CPU), instead of one
    ``np.interp`` call per gene: 2x faster on one core (BENCHMARKS.md).

    Parameters
    ----------
    values : np.ndarray
        float32 or float64, shape (n_genes, n_samples), log10(CP10M+1).
    reference : np.ndarray
        float32, shape (n_genes, k): rows ascending, zeros first (padding).
    m : np.ndarray
        int64, shape (n_genes,): non-zero points per row (the last m).
    n_bins : int
    out : np.ndarray
        uint16, shape (n_genes, n_samples), written.
    """
    n_genes, n_samples = values.shape
    k = reference.shape[1]
    lane = np.zeros(_LANES, np.int64)
    val = np.zeros(_LANES, values.dtype)  # float32 against float32 points; float64 values promote them (exact)
    for g in range(n_genes):
        mg = m[g]
        lo0 = k - mg
        step = 1.0 / (mg - 1) if mg > 1 else 0.0
        top = np.float64(reference[g, k - 1])
        bottom = np.float64(reference[g, lo0]) if mg > 0 else 0.0
        for i0 in range(0, n_samples, _LANES):
            w = min(_LANES, n_samples - i0)
            # the last index lo with xp[lo] <= v, for _LANES values at once: their searches are independent, so
            # the CPU overlaps them (one search alone waits on a load per halving); branch-free halvings
            for u in range(w):
                lane[u] = 0
                val[u] = values[g, i0 + u]
            n = mg - 1  # for bottom <= v < top, lo lies in [0, mg - 2]; other values ignore lo
            while n > 1:
                half = n >> 1
                for u in range(w):
                    j = lane[u]
                    lane[u] = j + half if reference[g, lo0 + j + half] <= val[u] else j
                n -= half
            for u in range(w):
                v = np.float64(values[g, i0 + u])
                if v <= 0.0:
                    out[g, i0 + u] = 1
                    continue
                if mg <= 1:  # one reference value: every non-zero value gets bin 2
                    rho = 0.0
                elif v >= top:
                    rho = 1.0  # at or above the last point: fp[-1]
                elif v < bottom:
                    rho = 0.0  # below the first point: fp[0]
                else:
                    lo = lane[u]
                    xj = np.float64(reference[g, lo0 + lo])
                    fj = lo * step  # np.linspace: i * step, the last point exactly 1
                    if xj == v:
                        rho = fj
                    else:
                        fj1 = (lo + 1) * step if lo + 1 < mg - 1 else 1.0
                        rho = (fj1 - fj) / (np.float64(reference[g, lo0 + lo + 1]) - xj) * (v - xj) + fj
                b = np.floor(rho * (n_bins - 1) + 1e-9) + 2
                out[g, i0 + u] = n_bins if b > n_bins else np.uint16(b)


@numba.njit(cache=True, nogil=True)
def top_tokens(scores: np.ndarray, eligible: np.ndarray, log_values: np.ndarray, order: np.ndarray, a: int, b: int,
               width: int, n_keys: int, sel: np.ndarray, vals: np.ndarray, n_sel: np.ndarray) -> None:
    """Each sample's ``width`` eligible genes of highest integer score, by a counting sort, in place.

    The selection of :func:`generain.tokenize.tokenize_samples` for integer
    scores (Binning-By-Gene bins): per sample j in ``[a, b)``, the eligible
    genes by score descending, ties by their place in ``order`` (token-id
    order), the first ``width`` kept: the order of NumPy's stable argsort of
    ``n_keys - 1 - score``, which the tokenizer used before, without sorting.
    The block's scores are first copied sample by sample (row by row of the
    input, so that it is read in order); then, per sample, the genes are
    counted per score, the lowest score that still makes the first
    ``width`` is found, and one more pass places the genes above it.

    Parameters
    ----------
    scores : np.ndarray
        unsigned or signed int, shape (n_genes, n_samples), values in ``[0, n_keys)``, ``n_keys <= 65535``.
    eligible : np.ndarray
        bool, shape (n_genes, n_samples).
    log_values : np.ndarray
        float, shape (n_genes, n_samples): copied to ``vals`` beside each selected gene.
    order : np.ndarray
        int64, shape (n_genes,): rows of the genes in token-id order.
    a, b : int
        The samples (columns) of this call.
    width : int
        Genes kept per sample.
    n_keys : int
        One more than the largest score.
    sel : np.ndarray
        int64, shape (b - a, width): written, positions in ``order`` of the selected genes (rest untouched).
    vals : np.ndarray
        float64, shape (b - a, width): written, their log values (rest untouched).
    n_sel : np.ndarray
        int64, shape (b - a,): written, genes selected per sample (<= width).
    """
    n_genes = order.shape[0]
    nb = b - a
    key = np.empty((nb, n_genes), np.uint16)  # score + 1 where eligible, else 0
    for i in range(n_genes):
        g = order[i]
        for j in range(nb):
            key[j, i] = scores[g, a + j] + 1 if eligible[g, a + j] else 0
    count = np.empty(n_keys + 1, np.int64)
    slot = np.empty(n_keys + 1, np.int64)
    for j in range(nb):
        count[:] = 0
        kj = key[j]
        for i in range(n_genes):
            count[kj[i]] += 1
        pos = 0
        cut = 1  # the lowest key placed
        for k in range(n_keys, 0, -1):  # key 0: not eligible
            slot[k] = pos
            pos += count[k]
            if pos >= width:
                cut = k
                break
        n_sel[j] = min(pos, width)
        for i in range(n_genes):
            k = kj[i]
            if k >= cut:
                p = slot[k]
                if p < width:
                    sel[j, p] = i
                    vals[j, p] = log_values[order[i], a + j]
                    slot[k] = p + 1


@numba.njit(cache=True, nogil=True)
def sample_totals(counts: np.ndarray, total: np.ndarray, detected: np.ndarray) -> None:
    """Per-sample total counts and detected genes in one pass over the rows, in place.

    :func:`generain.qc.sample_stats` (``counts.sum(axis=0)`` and
    ``np.count_nonzero(counts, axis=0)``) without the boolean temporary.

    Parameters
    ----------
    counts : np.ndarray
        unsigned int, shape (n_genes, n_samples), C order.
    total, detected : np.ndarray
        int64, shape (n_samples,): written.
    """
    n_genes, n_samples = counts.shape
    total[:] = 0
    detected[:] = 0
    for g in range(n_genes):
        for j in range(n_samples):
            c = counts[g, j]
            total[j] += c
            detected[j] += c != 0


@numba.njit(cache=True, nogil=True)
def gather_kept(counts: np.ndarray, rows: np.ndarray, slot: np.ndarray, cols: np.ndarray, row_totals: np.ndarray,
                out: np.ndarray) -> None:
    """Row totals over the kept samples, and the kept samples' counts of some rows, in one pass, in place.

    For each i: ``row_totals[i] = counts[rows[i], cols].sum()`` and, where
    ``slot[i] >= 0``, ``out[slot[i]] = counts[rows[i], cols]``: what
    :func:`generain.stream.scan_shard` did with a masked reduction over all
    rows, a row gather and a column selection.

    Parameters
    ----------
    counts : np.ndarray
        unsigned int, shape (n_genes, n_samples).
    rows : np.ndarray
        int64, shape (n_rows,): source rows.
    slot : np.ndarray
        int64, shape (n_rows,): the row of ``out`` for each, -1 for none.
    cols : np.ndarray
        int64, shape (n_kept,): kept samples, ascending.
    row_totals : np.ndarray
        int64, shape (n_rows,): written.
    out : np.ndarray
        same dtype as counts, shape (n_out, n_kept): rows named by ``slot`` written.
    """
    n_kept = cols.shape[0]
    for i in range(rows.shape[0]):
        r = rows[i]
        s = slot[i]
        acc = 0
        if s >= 0:
            for k in range(n_kept):
                c = counts[r, cols[k]]
                out[s, k] = c
                acc += c
        else:
            for k in range(n_kept):
                acc += counts[r, cols[k]]
        row_totals[i] = acc


@numba.njit(cache=True, nogil=True)
def pick_sketch(srt: np.ndarray, frac: np.ndarray, out: np.ndarray, nnz: np.ndarray) -> None:
    """Sketch points of rows already sorted ascending, in place (the picking half of ``sketch_nonzero``).

    :func:`generain.stream.sketch_nonzero` sorts blocks of rows with NumPy and calls this.

    Per row with nnz non-zero values (the last nnz of the sorted row): if
    nnz <= k, all of them ascending, then NaN; else the sorted non-zero
    values at ranks ``np.rint(frac * (nnz - 1))``. Every element of ``out`` is
    written. The NumPy expression it replaces built index and mask arrays of
    the whole (n_rows, k) block (``tests/test_stream.py`` checks the sketch
    against the per-row definition; ``benchmarks/sketch_kernel.py`` against
    the previous code).

    Parameters
    ----------
    srt : np.ndarray
        float32 or float64, shape (n_rows, n), each row sorted ascending, values >= 0.
    frac : np.ndarray
        float64, shape (k,): ``np.linspace(0, 1, k)``.
    out : np.ndarray
        float32, shape (n_rows, k): written.
    nnz : np.ndarray
        int64, shape (n_rows,): written, the count of values > 0 per row.
    """
    n_rows, n = srt.shape
    k = frac.shape[0]
    for i in range(n_rows):
        z = np.searchsorted(srt[i], 0.0, side="right")  # zeros come first
        nz = n - z
        nnz[i] = nz
        if nz <= k:
            for j in range(nz):
                out[i, j] = srt[i, z + j]
            for j in range(nz, k):
                out[i, j] = np.nan
        else:
            for j in range(k):
                out[i, j] = srt[i, z + np.int64(np.rint(frac[j] * (nz - 1)))]
