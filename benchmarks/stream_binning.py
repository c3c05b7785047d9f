"""Streaming Binning-By-Gene (generain.stream) against the exact in-memory bins.

Writes a generated ARCHS4-layout file (planted modules, QC failures), runs the
in-memory path (ingest, QC, normalize, exact bin_by_gene), then the two-pass
sharded path for each sketch size x reference size, and prints the
distribution of |streaming bin - exact bin| over non-zero entries (zeros are
exact by construction), and the wall time of each streaming run.

    python benchmarks/stream_binning.py --samples 20000 --genes 3000 --shard 2000 \\
        --sketch 250,1000,2000 --reference 250,500,1000,2000
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from generain import annotation, io, normalize, qc, simulate, stream
from generain.stages import ingest as ingest_stage, normalize as normalize_stage, qc as qc_stage

REPO = Path(__file__).resolve().parents[1]
GENES = REPO / "resources" / "annotation" / "genes.tsv"
BIOTYPES = ["protein_coding", "lncRNA"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=20_000)
    ap.add_argument("--genes", type=int, default=3_000, help="genes in the file (> 2,000 so samples pass QC)")
    ap.add_argument("--shard", type=int, default=2_000, help="samples per shard")
    ap.add_argument("--chunk", type=int, default=500, help="HDF5 chunk width along samples")
    ap.add_argument("--sketch", default="250,1000,2000", help="sketch points per gene and shard")
    ap.add_argument("--reference", default="250,500,1000,2000", help="reference points per gene")
    ap.add_argument("--workdir", type=Path, default=None)
    args = ap.parse_args()
    out = args.workdir or Path(tempfile.mkdtemp(prefix="stream_binning_"))
    out.mkdir(parents=True, exist_ok=True)
    genes = annotation.read_gene_table(GENES)
    g = genes[genes["biotype"].isin(BIOTYPES)].iloc[: args.genes]
    rng = np.random.default_rng(0)
    modules = np.where(rng.random(len(g)) < 0.7, rng.integers(0, 40, len(g)), -1)
    path = out / "generated.h5"
    simulate.write_archs4(path, gene_ids=g["ensembl_id"].tolist(), symbols=g["symbol"].tolist(),
                          biotypes=g["biotype"].tolist(), modules=modules, n_samples=args.samples, n_modules=40,
                          chunk_samples=args.chunk, seed=1)
    t0 = time.perf_counter()
    ingest_stage.ingest_dataset(path=path, fmt="archs4", name="sim", species_name="human", gene_table=GENES,
                                id_type="auto", counts="integer",
                            out_matrix=out / "ingest.h5", out_report=out / "ingest.json")
    qc_stage.qc_samples(matrices=[out / "ingest.h5"], criteria=qc.QCCriteria(), out_table=out / "qc.parquet",
                        out_plot=out / "qc.png")
    normalize_stage.normalize_counts(matrices=[out / "ingest.h5"], qc_table=out / "qc.parquet", biotypes=BIOTYPES,
                              min_mean=0.1, deduplicate_by="symbol", out_matrix=out / "norm.h5",
                              out_genes=out / "genes.tsv")
    m = io.read_matrix(out / "norm.h5")
    exact = normalize.bin_by_gene(m.matrix)
    print(f"exact in-memory path: {exact.shape[0]} genes x {exact.shape[1]} passing samples, "
          f"{time.perf_counter() - t0:.1f} s")
    _, n, width = stream.archs4_shape(path)
    bounds = stream.shard_bounds(n, chunk_width=width, shard_samples=args.shard)
    print("| sketch points | reference points | shards | median abs dbin | p90 | p99 | max | mean | s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k in map(int, args.sketch.split(",")):
        t1 = time.perf_counter()
        tables, files = [], []
        for i, (a, b) in enumerate(bounds):
            table, sketch = stream.scan_shard(path, a, b, dataset="sim", genes=genes, criteria=qc.QCCriteria(),
                                              sketch_points=k)
            stream.write_sketch(sketch, out / f"sketch{i}.h5")
            tables.append(table)
            files.append(out / f"sketch{i}.h5")
        t_scan = time.perf_counter() - t1
        for r in map(int, args.reference.split(",")):
            t2 = time.perf_counter()
            table, ref = stream.merge_sketches(files, genes=genes, biotypes=BIOTYPES, min_mean=0.1,
                                               deduplicate_by="symbol", reference_points=r)
            kept = table[table["kept"]]
            parts = [stream.bin_shard(path, a, b, qc_table=t, source_rows=kept["source_row"].to_numpy(),
                                      reference=ref) for (a, b), t in zip(bounds, tables)]
            bins = np.concatenate([p[0] for p in parts], axis=1)
            samples = pd.concat([p[2] for p in parts])
            assert kept["ensembl_id"].tolist() == m.genes["ensembl_id"].tolist()
            assert samples["sample_id"].tolist() == m.samples["sample_id"].tolist()
            assert ((bins == 1) == (exact == 1)).all()
            d = np.abs(bins.astype(np.int64) - exact.astype(np.int64))[exact > 1]
            print(f"| {k} | {r} | {len(bounds)} | {np.median(d):.0f} | {np.percentile(d, 90):.0f} | "
                  f"{np.percentile(d, 99):.0f} | {d.max()} | {d.mean():.2f} | "
                  f"{t_scan + time.perf_counter() - t2:.1f} |", flush=True)


if __name__ == "__main__":
    main()
