"""The streaming gather at ARCHS4's shard count: one merge job against the merge split over gene blocks.

ARCHS4 human v2.2 makes 362 shards of 2,000 samples. This writes that many
pass-1 sketch files of a small gene count (generated values, 1,000 points per
gene and shard, as `normalization.sketch_points`), then times, in this
process, one after the other:

- ``merge_stream`` merging every gene's 362 sketches itself (one job);
- ``merge_reference_block`` for each of ceil(362 / 32) = 12 gene blocks (the
  parallel jobs the workflow starts), then ``merge_stream`` concatenating
  them. Critical path = the slowest block + the final job.

The two references must be identical. Job start-up (~1 s per job under
Snakemake) is not included.

    python benchmarks/stream_merge.py --shards 362 --genes 500 --per-job 32
"""
from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from generain import normalize, stream
from generain.stages import stream as stream_stage

SETTINGS = dict(biotypes=["protein_coding"], min_mean=0.0, deduplicate_by="symbol", reference_points=2000,
                n_bins=2000)


def write_sketches(work: Path, n_shards: int, n_genes: int, samples: int, points: int, seed: int) -> list[Path]:
    """Sketch files of generated shards: per gene a log-normal level, ~25% zeros."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"ENSG{i:011d}" for i in range(n_genes)], dtype=object)
    level = rng.normal(1.0, 0.5, n_genes)
    files = []
    for s in range(n_shards):
        values = np.maximum(rng.normal(level[:, None], 0.4, (n_genes, samples)), 0).astype(np.float32)
        values[rng.random(values.shape) < 0.25] = 0
        pts, nnz = stream.sketch_nonzero(values, points)
        sk = stream.ShardSketch(gene_ids=ids, source_rows=np.arange(n_genes), totals=values.sum(1).astype(np.float64),
                                sums=values.sum(1).astype(np.float64), nnz=nnz, points=pts, n_passing=samples,
                                symbols=np.array([f"G{i}" for i in range(n_genes)], dtype=object),
                                biotypes=np.array(["protein_coding"] * n_genes, dtype=object))
        path = work / f"sketch_{s:05d}.h5"
        stream.write_sketch(sk, path)
        files.append(path)
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shards", type=int, default=362)
    ap.add_argument("--genes", type=int, default=500)
    ap.add_argument("--samples", type=int, default=2000, help="samples per shard")
    ap.add_argument("--points", type=int, default=1000, help="sketch points per gene and shard")
    ap.add_argument("--per-job", type=int, default=32, help="normalization.merge_shards_per_job")
    ap.add_argument("--workdir", type=Path, default=None)
    a = ap.parse_args()
    work = a.workdir or Path(tempfile.mkdtemp(prefix="stream_merge_"))
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    files = write_sketches(work, a.shards, a.genes, a.samples, a.points, seed=0)
    t_write = time.perf_counter() - t
    out = {}

    t = time.perf_counter()
    stream_stage.merge_stream(sketches=files, **SETTINGS, out_genes=work / "one_genes.tsv",
                              out_reference=work / "one_ref.h5", out_matrix=work / "one_m.h5")
    out["one job: merge_stream (s)"] = round(time.perf_counter() - t, 1)

    n_blocks = math.ceil(a.shards / a.per_job)
    blocks, block_s = [], []
    for b in range(n_blocks):
        t = time.perf_counter()
        stream_stage.merge_reference_block(sketches=files, block=b, n_blocks=n_blocks, **SETTINGS,
                                           out_reference=work / f"block_{b}.h5")
        block_s.append(time.perf_counter() - t)
        blocks.append(work / f"block_{b}.h5")
    t = time.perf_counter()
    stream_stage.merge_stream(sketches=files, **SETTINGS, out_genes=work / "tree_genes.tsv",
                              out_reference=work / "tree_ref.h5", out_matrix=work / "tree_m.h5",
                              reference_blocks=blocks)
    final = time.perf_counter() - t
    same = np.array_equal(normalize.BinReference.load(work / "one_ref.h5").values,
                          normalize.BinReference.load(work / "tree_ref.h5").values)
    out.update({
        "blocks": n_blocks,
        "block jobs: slowest / median / sum (s)": [round(max(block_s), 1), round(float(np.median(block_s)), 1),
                                                   round(sum(block_s), 1)],
        "final merge_stream with blocks (s)": round(final, 1),
        "critical path: slowest block + final (s)": round(max(block_s) + final, 1),
        "reference identical": bool(same),
    })
    out["speedup of the critical path"] = round(out["one job: merge_stream (s)"]
                                                / out["critical path: slowest block + final (s)"], 2)
    print(json.dumps({"shards": a.shards, "genes": a.genes, "samples_per_shard": a.samples, "points": a.points,
                      "writing the sketches (s)": round(t_write, 1), **out}, indent=1))


if __name__ == "__main__":
    main()
