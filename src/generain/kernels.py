"""Compiled kernels (numba) of the streaming data path.

Imported only where used: numba compiles each kernel on its first call and
caches the machine code on disk (``cache=True``, in ``__pycache__`` or
``NUMBA_CACHE_DIR``), so later jobs load it instead of compiling.
Each kernel is checked value for value against the NumPy code it replaces
(``tests/test_stream.py``).
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
