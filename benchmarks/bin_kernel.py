"""Pass 2's binning of one ARCHS4 shard: the numba kernel against the np.interp code it replaced, side by side.

One shard's workload: 36,000 vocabulary-biotype genes x 2,000 samples of
log10(CP10M+1) (about 40% zeros), each gene binned against its own
2,000-point reference (the quantiles of its non-zero values). Both
implementations run alternately in one process, after one untimed call each
(the kernel's compile or cache load); the bins must be identical.

    python benchmarks/bin_kernel.py --genes 36000 --samples 2000 --rounds 3
"""
from __future__ import annotations

import argparse
import json
import platform

import numpy as np
from side_by_side import alternate

from generain import stream


def bins_by_np_interp(values: np.ndarray, reference: np.ndarray, n_bins: int) -> np.ndarray:
    """The previous implementation (generain 377c4ad): one np.interp call per gene."""
    k = reference.shape[1]
    m = np.count_nonzero(reference > 0, axis=1)
    out = np.empty(values.shape, dtype=np.uint16)
    block = max(1, (1 << 22) // max(1, values.shape[1]))
    rho = np.empty((block, values.shape[1]))
    fp: dict[int, np.ndarray] = {}
    for a in range(0, values.shape[0], block):
        b = min(a + block, values.shape[0])
        for g in range(a, b):
            mg = int(m[g])
            if mg <= 1:
                rho[g - a] = 0.0
                continue
            if mg not in fp:
                fp[mg] = np.linspace(0.0, 1.0, mg)
            rho[g - a] = np.interp(values[g], reference[g, k - mg:], fp[mg])
        out[a:b] = np.minimum(np.floor(rho[:b - a] * (n_bins - 1) + 1e-9) + 2, n_bins)
    out[values <= 0] = 1
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--genes", type=int, default=36_000)
    ap.add_argument("--samples", type=int, default=2_000)
    ap.add_argument("--points", type=int, default=2_000, help="reference points per gene")
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    rng = np.random.default_rng(0)
    values = rng.gamma(2.0, 0.6, (a.genes, a.samples)).astype(np.float32)
    values[rng.random(values.shape) < 0.4] = 0
    q = np.linspace(0, 1, a.points)
    reference = np.zeros((a.genes, a.points), np.float32)
    for g in range(a.genes):
        nz = values[g][values[g] > 0]
        pts = np.quantile(nz, q[-min(len(nz), a.points):] if len(nz) < a.points else q).astype(np.float32)
        reference[g, a.points - len(pts):] = pts
    impl = {"np_interp": lambda: bins_by_np_interp(values, reference, 2000),
            "numba_kernel": lambda: stream.bin_against_reference(values, reference, n_bins=2000)}
    first = {k: f() for k, f in impl.items()}  # warm-up: compile or load the cached kernel
    assert np.array_equal(first["np_interp"], first["numba_kernel"]), "the kernel's bins differ"
    med = alternate(impl, a.rounds)
    print(json.dumps({"machine": platform.processor() or platform.machine(), "genes": a.genes,
                      "samples": a.samples, "points": a.points, "identical_bins": True,
                      "median_s": {k: round(v, 3) for k, v in med.items()},
                      "speedup": round(med["np_interp"] / med["numba_kernel"], 2)}))


if __name__ == "__main__":
    main()
