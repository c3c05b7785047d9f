"""ARCHS4-scale streaming benchmark: throughput and peak memory of the sharded data path.

Generates an ARCHS4-layout file at the full human dimension (67,186 genes:
the 60,616 genes of the bundled GENCODE table plus unmatched ids, chunks
(1, 2000), gzip) with :func:`generain.simulate.write_archs4` for one block of
2,000 samples, then tiles that block (compressed chunks copied as they are,
new sample ids) into files of each requested size. On each file it runs the
streaming path's jobs one after the other, each in its own process, as the
workflow's Snakemake jobs do: plan, scan_shard (pass 1: read, QC, CP10M,
sketch, scratch) per shard, merge_stream, stream_vocab, bin_shard (pass 2:
scratch, bins, tokens) per shard. Reported per job kind: wall seconds and
peak memory (each job's VmHWM). Next to it, in the same run: a plain h5py
read of the same aligned 2,000-sample blocks (``ds[:, a:b]``, the
decompression limit), our chunk-level reader on the same blocks
(:func:`generain.io.read_deflate_block`) and archs4py's ``data.index`` on a
few samples (run with ``--archs4py-python``, an interpreter where archs4py is
installed; it reads sample by sample with a pool of 16 processes).
``--profile`` adds a cProfile of shard 0's two passes, in-process.

    python benchmarks/archs4_scale.py --samples 4000,16000 --workdir /tmp/a4s \
        --archs4py-python /tmp/a4venv/bin/python --profile
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

REPO = Path(__file__).resolve().parents[1]
GENES = REPO / "resources" / "annotation" / "genes.tsv"
N_GENES = 67_186
BLOCK = 2000


def make_base(path: Path, n_genes: int) -> None:
    from generain import annotation, simulate

    genes = annotation.read_gene_table(GENES)
    extra = max(0, n_genes - len(genes))
    ids = genes["ensembl_id"].tolist()[:n_genes] + [f"ENSG9{i:010d}" for i in range(extra)]
    sym = genes["symbol"].fillna("").tolist()[:n_genes] + [f"UNMATCHED{i}" for i in range(extra)]
    bio = genes["biotype"].tolist()[:n_genes] + ["misc_RNA"] * extra
    rng = np.random.default_rng(0)
    modules = np.where(rng.random(n_genes) < 0.5, rng.integers(0, 50, n_genes), -1)
    simulate.write_archs4(path, gene_ids=ids, symbols=sym, biotypes=bio, modules=modules, n_samples=BLOCK,
                          n_modules=50, chunk_samples=BLOCK, seed=0)


def tile(base: Path, out: Path, n_samples: int) -> None:
    """Copy the base file's 2,000-sample block n_samples / 2,000 times (compressed chunks as they are)."""
    reps = n_samples // BLOCK
    with h5py.File(base, "r") as src, h5py.File(out, "w") as dst:
        src.copy("meta/genes", dst, name="meta/genes")
        for name, ds in src["meta/samples"].items():
            vals = ds[()]
            if name == "geo_accession":
                vals = np.array([f"{v.decode()}_{r}".encode() for r in range(reps) for v in vals])
            else:
                vals = np.concatenate([vals] * reps)
            dst.create_dataset(f"meta/samples/{name}", data=vals)
        s = src["data/expression"]
        d = dst.create_dataset("data/expression", shape=(s.shape[0], n_samples), dtype=s.dtype, chunks=s.chunks,
                               compression=s.compression, compression_opts=s.compression_opts)
        for g in range(s.shape[0]):
            mask, chunk = s.id.read_direct_chunk((g, 0))
            for r in range(reps):
                d.id.write_direct_chunk((g, r * BLOCK), chunk, mask)


HWM = "\nprint([x for x in open('/proc/self/status') if x.startswith('VmHWM')][0], end='')"


def run_job(code: str) -> tuple[float, float]:
    """Run Python code in a fresh process; (wall seconds, peak RSS MiB).

    The peak is the job's own ``VmHWM`` (/proc/self/status), not ``ru_maxrss``:
    Linux carries a parent's high-water mark through fork and exec into the
    child's ``ru_maxrss``, which would report this benchmark's memory instead.
    """
    t = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code + HWM], cwd=REPO, stdout=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"job failed ({proc.returncode}): {code[:200]}")
    kib = int(proc.stdout.strip().splitlines()[-1].split()[1])
    return wall, kib / 1024


def stream_jobs(path: Path, work: Path, shard: int) -> dict[str, list[tuple[float, float]]]:
    work.mkdir(parents=True, exist_ok=True)
    pre = "from generain import qc\nfrom generain.stages import stream as stream_stage\n"
    jobs: dict[str, list[tuple[float, float]]] = {k: [] for k in ("plan", "scan_shard", "merge_stream", "stream_vocab",
                                                                 "bin_shard")}
    plan = work / "plan.json"
    jobs["plan"].append(run_job(pre + f"stream_stage.plan_stream(path={str(path)!r}, name='a4', species_name='human', "
                                f"gene_table={str(GENES)!r}, shard_samples={shard}, out_plan={str(plan)!r})"))
    n = len(json.loads(plan.read_text())["shards"])
    for k in range(n):
        jobs["scan_shard"].append(run_job(pre + (
            f"stream_stage.scan_stream_shard(plan={str(plan)!r}, shard={k}, gene_table={str(GENES)!r}, "
            f"criteria=qc.QCCriteria(), sketch_points=1000, biotypes=['protein_coding', 'lncRNA'], "
            f"matrix_fraction=0.01, seed=0, out_qc={str(work / f'qc{k}.parquet')!r}, "
            f"out_sketch={str(work / f'sketch{k}.h5')!r}, out_scratch={str(work / f'scratch{k}.npy')!r})")))
    sketches = [str(work / f"sketch{k}.h5") for k in range(n)]
    jobs["merge_stream"].append(run_job(pre + (
        f"stream_stage.merge_stream(sketches={sketches!r}, biotypes=['protein_coding', 'lncRNA'], min_mean=0.1, "
        f"deduplicate_by='symbol', reference_points=2000, n_bins=2000, out_genes={str(work / 'genes.tsv')!r}, "
        f"out_reference={str(work / 'ref.h5')!r}, out_matrix={str(work / 'm.h5')!r})")))
    jobs["stream_vocab"].append(run_job(pre + (
        f"stream_stage.stream_vocab(genes=[{str(work / 'genes.tsv')!r}], species_names=['human'], "
        f"out_vocab={str(work / 'vocab.tsv')!r})")))
    for k in range(n):
        jobs["bin_shard"].append(run_job(pre + (
            f"stream_stage.bin_stream_shard(plan={str(plan)!r}, shard={k}, qc_table={str(work / f'qc{k}.parquet')!r}, "
            f"sketch={str(work / f'sketch{k}.h5')!r}, scratch={str(work / f'scratch{k}.npy')!r}, "
            f"genes={str(work / 'genes.tsv')!r}, reference={str(work / 'ref.h5')!r}, "
            f"vocab={str(work / 'vocab.tsv')!r}, species_name='human', length=2048, "
            f"out_tokens={str(work / f'tokens{k}')!r})")))
    return jobs


def profile_shard(work: Path, top: int = 12) -> None:
    """cProfile of pass 1 and pass 2 of shard 0 in this process (after the timed run, page cache warm)."""
    import cProfile
    import pstats

    from generain import qc
    from generain.stages import stream as stream_stage

    calls = {
        "scan_shard": lambda: stream_stage.scan_stream_shard(
            plan=work / "plan.json", shard=0, gene_table=GENES, criteria=qc.QCCriteria(), sketch_points=1000,
            biotypes=["protein_coding", "lncRNA"], matrix_fraction=0.01, seed=0, out_qc=work / "p_qc.parquet",
            out_sketch=work / "p_sketch.h5", out_scratch=work / "p_scratch.npy"),
        "bin_shard": lambda: stream_stage.bin_stream_shard(
            plan=work / "plan.json", shard=0, qc_table=work / "p_qc.parquet", sketch=work / "p_sketch.h5",
            scratch=work / "p_scratch.npy", genes=work / "genes.tsv", reference=work / "ref.h5",
            vocab=work / "vocab.tsv", species_name="human", length=2048, out_tokens=work / "p_tokens"),
    }
    for name, call in calls.items():
        prof = cProfile.Profile()
        prof.runcall(call)
        print(f"\nprofile of {name}, shard 0 (top {top} by own time):")
        pstats.Stats(prof).sort_stats("tottime").print_stats(top)


def plain_read(path: Path) -> float:
    with h5py.File(path, "r") as h5:
        ds = h5["data/expression"]
        t = time.perf_counter()
        for a in range(0, ds.shape[1], BLOCK):
            ds[:, a:a + BLOCK]
        return time.perf_counter() - t


def chunk_read(path: Path) -> float:
    """Our reader on the same blocks: ``generain.io.read_deflate_block`` (stored chunks inflated with ISA-L)."""
    from generain import io

    with h5py.File(path, "r") as h5:
        ds = h5["data/expression"]
        out = np.empty((ds.shape[0], BLOCK), dtype=ds.dtype)
        out[:] = 0  # touch the pages first, as the h5py read reuses its freed blocks
        t = time.perf_counter()
        for a in range(0, ds.shape[1], BLOCK):
            io.read_deflate_block(ds, a, a + BLOCK, out)
        return time.perf_counter() - t


def archs4py_index(python: str, path: Path, n: int) -> float:
    code = ("import time, archs4py as a4\n"
            f"t = time.perf_counter(); a4.data.index({str(path)!r}, list(range(0, {n * 37}, 37)), silent=True)\n"
            "print(time.perf_counter() - t)")
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", default="4000,16000", help="corpus sizes (multiples of 2,000)")
    ap.add_argument("--genes", type=int, default=N_GENES)
    ap.add_argument("--shard", type=int, default=BLOCK)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/archs4_scale"))
    ap.add_argument("--archs4py-python", default=None, help="interpreter with archs4py installed")
    ap.add_argument("--archs4py-samples", type=int, default=24)
    ap.add_argument("--profile", action="store_true", help="also profile shard 0's two passes in-process")
    args = ap.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    base = args.workdir / f"base_{args.genes}.h5"
    if not base.exists():
        t = time.perf_counter()
        make_base(base, args.genes)
        print(f"generated {base} ({base.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.0f} s")
    cores = os.cpu_count()
    rows = {}
    chunk_rates = {}
    for n in map(int, args.samples.split(",")):
        path = args.workdir / f"archs4_{args.genes}_{n}.h5"
        if not path.exists():
            tile(base, path, n)
        t_read = plain_read(path)
        t_chunk = chunk_read(path)
        jobs = stream_jobs(path, args.workdir / f"run_{n}", args.shard)
        rows[n] = (t_read, jobs, path)
        chunk_rates[n] = n / t_chunk
    print(f"\nmachine: {cores} cores; file: {args.genes} genes, chunks (1, {BLOCK}), gzip; shards of {args.shard}")
    print("\n| samples | job | jobs | wall s (sum) | peak RSS MiB (max) |")
    print("|---|---|---|---|---|")
    for n, (_, jobs, _) in rows.items():
        for kind, runs in jobs.items():
            print(f"| {n:,} | {kind} | {len(runs)} | {sum(w for w, _ in runs):.1f} | {max(m for _, m in runs):.0f} |")
    print("\n| samples | ours end to end, samples/s per core | plain h5py read, samples/s | ours / plain "
          "| our chunk-level read (io.read_deflate_block), samples/s |")
    print("|---|---|---|---|---|")
    for n, (t_read, jobs, _) in rows.items():
        total = sum(w for runs in jobs.values() for w, _ in runs)
        print(f"| {n:,} | {n / total:.1f} | {n / t_read:.1f} | {t_read / total:.1%} | {chunk_rates[n]:.1f} |")
    n_big = max(rows)
    t_read, jobs, path = rows[n_big]
    per_shard = sum(w for k in ("scan_shard", "bin_shard") for w, _ in jobs[k]) / len(jobs["scan_shard"])
    shards_722k = -(-722_425 // args.shard)
    fixed = sum(w for k in ("plan", "merge_stream", "stream_vocab") for w, _ in jobs[k])
    print(f"\nprojection for 722,425 samples on 64 cores: {shards_722k} shards x {per_shard:.1f} s per shard "
          f"(pass 1 + pass 2) / 64 = {shards_722k * per_shard / 64 / 3600:.2f} h, plus the gather "
          f"(measured {fixed:.0f} s at {n_big:,} samples; grows with the shard count)")
    small, big = min(rows), max(rows)
    print(f"\npeak RSS ratio {big:,} / {small:,} samples:")
    for kind in rows[small][1]:
        a = max(m for _, m in rows[small][1][kind])
        b = max(m for _, m in rows[big][1][kind])
        print(f"  {kind}: {a:.0f} -> {b:.0f} MiB ({b / a - 1:+.1%})")
    if args.profile:
        profile_shard(args.workdir / f"run_{n_big}")
    if args.archs4py_python:
        t = archs4py_index(args.archs4py_python, path, args.archs4py_samples)
        print(f"\narchs4py data.index, {args.archs4py_samples} samples (pool of 16 processes on {cores} cores): "
              f"{t:.1f} s = {args.archs4py_samples / t:.2f} samples/s, {args.archs4py_samples / t / cores:.2f} "
              "per core")


if __name__ == "__main__":
    main()
