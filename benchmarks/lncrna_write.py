"""Time and memory of writing every lncRNA x property prediction, and of the per-lncRNA top-k.

Random but seeded inputs of the full GeneRAIN shape (13,030 lncRNAs x 4,797
properties, embedding dimension 200: 62.5 million predictions): a standard
normal lncRNA embedding, classifier weights N(0, 0.15^2) and intercepts
N(-3, 1), so that probabilities spread over (0, 1) with most calls low, as in
a real sweep. Phases, in order:

1. ``generain.lncrna.write_predictions`` to ``OUT/predictions.parquet``
   (deleted at the end unless ``--keep``);
2. ``top_predictions(k)`` without precision;
3. ``precision_at_thresholds`` on random out-of-fold probabilities of
   ``--pc`` protein-coding genes (float32, pc x properties) and memberships;
4. ``top_predictions(k)`` with those precision estimates.

For each phase it reports wall time and the process's resident memory
(RSS): at the start of the phase and the highest value sampled every 0.2 s
from /proc/self/status (VmRSS) during it; ``ru_maxrss`` (the process's
high-water mark) is reported right after phase 1, before the out-of-fold
arrays exist. Results are printed as a markdown table.

Usage::

    python benchmarks/lncrna_write.py                      # full scale
    python benchmarks/lncrna_write.py --properties 1199    # a quarter of the properties
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import resource
import shlex
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from generain import lncrna


def rss_mib() -> float:
    """Current resident set size (VmRSS) of this process in MiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler(threading.Thread):
    """Background thread recording (time, RSS MiB) every ``interval`` seconds."""

    def __init__(self, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append((time.perf_counter(), rss_mib()))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def peak(self, t0: float, t1: float) -> float:
        inside = [r for t, r in self.samples if t0 <= t <= t1]
        return max(inside, default=float("nan"))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pc", type=int, default=19_000, help="protein-coding genes (out-of-fold arrays)")
    ap.add_argument("--lnc", type=int, default=13_030, help="lncRNAs")
    ap.add_argument("--properties", type=int, default=4_797)
    ap.add_argument("--dim", type=int, default=200)
    ap.add_argument("--properties-per-batch", type=int, default=256)
    ap.add_argument("--k", type=int, default=20, help="top-k per lncRNA")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="/tmp/lncrna_bench", help="directory for predictions.parquet")
    ap.add_argument("--keep", action="store_true", help="keep the parquet file (it is large)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    rng = np.random.default_rng(args.seed)
    n_prop, n_lnc, dim = args.properties, args.lnc, args.dim
    x = rng.standard_normal((n_lnc, dim), dtype=np.float32)
    coef = (0.15 * rng.standard_normal((n_prop, dim), dtype=np.float32)).astype(np.float32)
    intercept = (rng.standard_normal(n_prop, dtype=np.float32) - 3).astype(np.float32)
    sources = np.array(["GO_BP", "GO_CC", "GO_MF", "KEGG", "Reactome"])
    props = pd.DataFrame({
        "source": sources[np.arange(n_prop) * len(sources) // max(n_prop, 1)],
        "term_id": [f"TERM:{i:07d}" for i in range(n_prop)],
        "term_name": [f"random property {i}" for i in range(n_prop)],
        "n_positive": rng.integers(10, 501, n_prop),
    })
    ids = np.array([f"ENSG{i + 200_000_000:011d}" for i in range(n_lnc)])
    symbols = np.array([f"LINC{i:05d}" for i in range(n_lnc)])
    kw = dict(coef=coef, intercept=intercept, properties=props, lnc_embedding=x, lnc_ids=ids, lnc_symbols=symbols)
    out_dir = Path(args.out)
    path = out_dir / "predictions.parquet"

    sampler = RssSampler(0.2)
    sampler.start()
    results: list[dict] = []

    def phase(name: str, fn):
        r0, t0 = rss_mib(), time.perf_counter()
        value = fn()
        t1 = time.perf_counter()
        time.sleep(0.25)  # let the sampler take one more reading
        results.append({"phase": name, "wall_s": t1 - t0, "rss_start": r0, "t0": t0, "t1": t1,
                        "rss_peak": max(sampler.peak(t0, t1 + 0.25), r0)})
        return value

    rows = phase("write_predictions", lambda: lncrna.write_predictions(
        path, properties_per_batch=args.properties_per_batch, **kw))
    maxrss_after_write = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = path.stat().st_size
    n_groups = pq.ParquetFile(path).metadata.num_row_groups
    if not args.keep:
        path.unlink()
        with contextlib.suppress(OSError):
            out_dir.rmdir()  # only if now empty

    phase(f"top_predictions(k={args.k})", lambda: lncrna.top_predictions(
        k=args.k, properties_per_batch=args.properties_per_batch, **kw))
    oof = rng.random((args.pc, n_prop), dtype=np.float32)
    rate = (2 * props["n_positive"].to_numpy() / args.pc).astype(np.float32)  # about n_positive members each
    y = rng.random((args.pc, n_prop), dtype=np.float32) < oof * rate
    phase("precision_at_thresholds(0.5, 0.7, 0.9)", lambda: lncrna.precision_at_thresholds(oof, y))
    top = phase(f"top_predictions(k={args.k}, precision)", lambda: lncrna.top_predictions(
        k=args.k, precision=(oof, y), properties_per_batch=args.properties_per_batch, **kw))
    sampler.stop()
    maxrss_end = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print()
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs; torch {torch.__version__} ({torch.get_num_threads()} threads),"
          f" pyarrow {pa.__version__}, numpy {np.__version__}")
    print(f"command: python {shlex.join(['benchmarks/lncrna_write.py', *sys.argv[1:]])}")
    print(f"shape: {n_lnc:,} lncRNAs x {n_prop:,} properties, dim {dim}, {args.properties_per_batch} properties"
          f" per batch; out-of-fold arrays {args.pc:,} x {n_prop:,} float32 ({oof.nbytes / 2**20:,.0f} MiB)")
    print(f"rows written: {rows:,}; row groups: {n_groups}; file: {size / 2**20:,.1f} MiB"
          f" ({size / max(rows, 1):.2f} bytes/row); write rate {rows / results[0]['wall_s'] / 1e6:.2f} M rows/s")
    print(f"ru_maxrss: {maxrss_after_write:,.0f} MiB after write_predictions, {maxrss_end:,.0f} MiB at the end;"
          f" top-k table {len(top):,} rows")
    w0, w1 = results[0]["t0"], results[0]["t1"]
    quarters = [sampler.peak(w0 + (w1 - w0) * i / 4, w0 + (w1 - w0) * (i + 1) / 4) for i in range(4)]
    print("write_predictions peak RSS by quarter of its run (MiB): " + " / ".join(f"{q:,.0f}" for q in quarters))
    print()
    print("| phase | wall s | RSS at start MiB | peak RSS MiB (0.2 s samples) | peak - start MiB |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['phase']} | {r['wall_s']:.1f} | {r['rss_start']:,.0f} | {r['rss_peak']:,.0f} |"
              f" {r['rss_peak'] - r['rss_start']:,.0f} |")


if __name__ == "__main__":
    main()
