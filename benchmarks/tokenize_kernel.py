"""Pass 2's tokenizing of one ARCHS4 shard: the counting-sort kernel against the radix sort it replaced, side by side.

One shard's workload: Binning-By-Gene bins (uint16, 1..2,000; about 40% of
values at bin 1, not expressed, hence not eligible) of 36,000
vocabulary-biotype genes x 2,000 samples, with their log10(CP10M+1), turned
into each sample's top 2,048 gene tokens and expression bins. Both
implementations run alternately in one process, after one untimed call each
(the kernel's compile or cache load); tokens, expression bins and counts must
be identical.

    python benchmarks/tokenize_kernel.py --genes 36000 --samples 2000 --rounds 3
"""
from __future__ import annotations

import argparse
import json
import platform

import numpy as np
from side_by_side import alternate

from generain import N_EXPR_BINS, tokenize


def tokenize_by_radix_sort(scores: np.ndarray, eligible: np.ndarray, log_values: np.ndarray, token_ids: np.ndarray,
                           *, length: int, block_samples: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The previous implementation (generain 0cfc1a8) for integer scores in token-id order: per block of
    samples, a stable argsort (NumPy's radix sort on uint16 keys) of every gene."""
    n_genes, n_samples = scores.shape
    gene_tokens = np.zeros((n_samples, length), dtype=tokenize.token_dtype(int(token_ids.max())))
    expr_tokens = np.zeros((n_samples, length), dtype=np.uint8)
    n_tokens = np.zeros(n_samples, dtype=np.int32)
    width = min(length, n_genes)
    cols = np.arange(width)
    for a in range(0, n_samples, block_samples):
        b = min(a + block_samples, n_samples)
        ok = eligible[:, a:b].T
        key = (65534 - scores[:, a:b].T).astype(np.uint16)
        key[~ok] = 65535
        sel = np.argsort(key, axis=1, kind="stable")[:, :width]
        n = np.minimum(ok.sum(axis=1), width)
        valid = cols[None, :] < n[:, None]
        gene_tokens[a:b, :width] = np.where(valid, token_ids[sel], 0)
        vals = np.take_along_axis(log_values[:, a:b].T.astype(np.float64), sel, axis=1)
        vals[~valid] = np.inf
        rank = np.empty(sel.shape, dtype=np.int64)
        np.put_along_axis(rank, np.argsort(vals, axis=1, kind="stable"), cols[None, :], axis=1)
        expr = rank * N_EXPR_BINS // np.maximum(n, 1)[:, None] + 1
        expr_tokens[a:b, :width] = np.where(valid, expr, 0).astype(np.uint8)
        n_tokens[a:b] = n
    return gene_tokens, expr_tokens, n_tokens


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--genes", type=int, default=36_000)
    ap.add_argument("--samples", type=int, default=2_000)
    ap.add_argument("--length", type=int, default=2_048)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    log_values = rng.gamma(2.0, 0.6, (a.genes, a.samples)).astype(np.float32)
    log_values[rng.random(log_values.shape) < 0.4] = 0
    bins = np.where(log_values > 0, rng.integers(2, 2001, log_values.shape), 1).astype(np.uint16)
    eligible = bins > 1
    ids = np.arange(3, 3 + a.genes, dtype=np.int64)
    impl = {"radix_sort": lambda: tokenize_by_radix_sort(bins, eligible, log_values, ids, length=a.length),
            "counting_kernel": lambda: tokenize.tokenize_samples(bins, eligible, log_values, ids, length=a.length)}
    first = {k: f() for k, f in impl.items()}  # warm-up: compile or load the cached kernel
    for x, y in zip(first["radix_sort"], first["counting_kernel"]):
        assert np.array_equal(x, y), "the kernel's tokens differ"
    med = alternate(impl, a.rounds)
    print(json.dumps({"machine": platform.processor() or platform.machine(), "genes": a.genes,
                      "samples": a.samples, "length": a.length, "identical_tokens": True,
                      "median_s": {k: round(v, 3) for k, v in med.items()},
                      "speedup": round(med["radix_sort"] / med["counting_kernel"], 2)}))


if __name__ == "__main__":
    main()
