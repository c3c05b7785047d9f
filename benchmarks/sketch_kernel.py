"""Pass 1's sketch of one ARCHS4 shard: block sort + picking kernel against the whole-shard NumPy code it replaced.

One shard's workload: log10(CP10M+1) values (float32, gamma-distributed, 40%
zeros) of 36,833 vocabulary-biotype genes x 2,000 passing samples, sketched to
1,000 points per gene. Both implementations run alternately in one process,
after one untimed call each (the kernel's compile or cache load); points and
non-zero counts must be identical.

    python benchmarks/sketch_kernel.py --genes 36833 --samples 2000 --rounds 3
"""
from __future__ import annotations

import argparse
import json
import platform

import numpy as np
from side_by_side import alternate

from generain import stream


def sketch_by_whole_sort(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The previous implementation (generain 1dc1d3a): sort a full copy, then index and mask arrays per row block."""
    n_genes, n = values.shape
    out = np.full((n_genes, k), np.nan, dtype=np.float32)
    nnz = np.count_nonzero(values > 0, axis=1).astype(np.int64)
    srt = np.sort(values, axis=1)
    cols = np.arange(k)
    frac = np.linspace(0.0, 1.0, k)
    step = max(1, (1 << 18) // k)
    for a in range(0, n_genes, step):
        nz = nnz[a:a + step, None]
        small = nz <= k
        idx = np.where(small, cols[None, :], np.rint(frac[None, :] * (nz - 1)).astype(np.int64))
        idx += n - nz
        vals = np.take_along_axis(srt[a:a + step], np.minimum(idx, n - 1), axis=1)
        out[a:a + step] = np.where(~small | (cols[None, :] < nz), vals, np.nan)
    return out, nnz


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--genes", type=int, default=36_833)
    ap.add_argument("--samples", type=int, default=2_000)
    ap.add_argument("--points", type=int, default=1_000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    values = rng.gamma(1.0, 1.0, (a.genes, a.samples)).astype(np.float32)
    values[rng.random(values.shape) < 0.4] = 0
    values[: a.genes // 8, a.samples * 2 // 5:] = 0  # some genes with fewer non-zero values than points
    impl = {"whole_sort": lambda: sketch_by_whole_sort(values, a.points),
            "block_sort_kernel": lambda: stream.sketch_nonzero(values, a.points)}
    first = {k: f() for k, f in impl.items()}  # warm-up: compile or load the cached kernel
    for x, y in zip(first["whole_sort"], first["block_sort_kernel"]):
        assert np.array_equal(x, y, equal_nan=True), "the kernel's sketch differs"
    med = alternate(impl, a.rounds)
    print(json.dumps({"machine": platform.processor() or platform.machine(), "genes": a.genes,
                      "samples": a.samples, "points": a.points, "identical_sketch": True,
                      "median_s": {k: round(v, 3) for k, v in med.items()},
                      "speedup": round(med["whole_sort"] / med["block_sort_kernel"], 2)}))


if __name__ == "__main__":
    main()
