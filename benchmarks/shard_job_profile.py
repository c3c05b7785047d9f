"""Where one shard's two streaming jobs spend their time: imports, then a cProfile of the job's call.

Runs ``scan_stream_shard`` (pass 1) and ``bin_stream_shard`` (pass 2) of one shard in fresh processes, as
Snakemake would, on the files of an ``archs4_scale.py`` run folder (``<workdir>/run_<samples>``), writing
their outputs to a temporary folder. Prints per job: the wall time of the whole process (``/usr/bin/time``-like,
measured from here), the seconds importing ``generain.stages.stream`` and the seconds of the call, and the
call's top functions by own time (``--sort tottime``) or cumulative time.

    python benchmarks/archs4_scale.py --samples 4000 --workdir /tmp/a4s
    python benchmarks/shard_job_profile.py /tmp/a4s/run_4000 --shard 1
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GENES = REPO / "resources" / "annotation" / "genes.tsv"

JOB = """import time
t0 = time.perf_counter()
from generain import qc
from generain.stages import stream as stream_stage
t1 = time.perf_counter()
import cProfile, pstats
prof = cProfile.Profile()
prof.runcall(lambda: {call})
t2 = time.perf_counter()
print(f"import {{t1 - t0:.2f}} s, call {{t2 - t1:.2f}} s")
pstats.Stats(prof).sort_stats({sort!r}).print_stats({top})
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="an archs4_scale.py run folder (plan.json, qc*, sketch*, scratch*, ...)")
    ap.add_argument("--shard", type=int, default=0)
    ap.add_argument("--top", type=int, default=14)
    ap.add_argument("--sort", default="tottime", choices=["tottime", "cumtime"])
    a = ap.parse_args()
    w, k = a.run, a.shard
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        calls = {
            "scan_shard": (f"stream_stage.scan_stream_shard(plan={str(w / 'plan.json')!r}, shard={k}, "
                           f"gene_table={str(GENES)!r}, criteria=qc.QCCriteria(), sketch_points=1000, "
                           f"biotypes=['protein_coding', 'lncRNA'], matrix_fraction=0.01, seed=0, "
                           f"out_qc={str(t / 'qc.parquet')!r}, out_sketch={str(t / 'sketch.h5')!r}, "
                           f"out_scratch={str(t / 'scratch.npy')!r})"),
            "bin_shard": (f"stream_stage.bin_stream_shard(plan={str(w / 'plan.json')!r}, shard={k}, "
                          f"qc_table={str(w / f'qc{k}.parquet')!r}, sketch={str(w / f'sketch{k}.h5')!r}, "
                          f"scratch={str(w / f'scratch{k}.npy')!r}, genes={str(w / 'genes.tsv')!r}, "
                          f"reference={str(w / 'ref.h5')!r}, vocab={str(w / 'vocab.tsv')!r}, species_name='human', "
                          f"length=2048, out_tokens={str(t / 'tokens')!r})"),
        }
        for name, call in calls.items():
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", JOB.format(call=call, sort=a.sort, top=a.top)], cwd=REPO,
                                  stdout=subprocess.PIPE, text=True, check=True)
            print(f"== {name}, shard {k}: process {time.perf_counter() - start:.2f} s")
            print(proc.stdout)


if __name__ == "__main__":
    main()
