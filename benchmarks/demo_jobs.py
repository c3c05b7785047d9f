"""Where a demo run's time went: the jobs' own seconds per rule, from Snakemake's benchmark files.

Sums the first column (s) of every file under ``RESULTS/benchmarks/`` by rule,
and the total of the job set the demo ran on 2026-12-03 (issue 21, item 4):
every job except those the analyses and fine-tuning added since
(embed_samples, perturb_genes, attention_heads, finetune_*, and the
``{model}_contextual`` sweeps).

    python benchmarks/demo_jobs.py results/demo
"""
from __future__ import annotations

import argparse
import collections
from pathlib import Path

import pandas as pd

ADDED_SINCE_2026_12_03 = ("embed_samples", "perturb_genes", "attention_heads", "finetune")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results", help="the run's results folder, e.g. results/demo")
    root = Path(ap.parse_args().results) / "benchmarks"
    per_rule: dict[str, list[float]] = collections.defaultdict(list)
    earlier_set = 0.0
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        seconds = float(pd.read_csv(f, sep="\t")["s"].iloc[0])
        rel = f.relative_to(root).as_posix()
        rule = rel.split("/")[0].removesuffix(".tsv")
        per_rule[rule].append(seconds)
        if not (rule.startswith(ADDED_SINCE_2026_12_03) or "_contextual" in rel):
            earlier_set += seconds
    print("| rule | jobs | seconds |\n|---|---|---|")
    for rule, v in sorted(per_rule.items(), key=lambda kv: -sum(kv[1])):
        print(f"| {rule} | {len(v)} | {sum(v):.1f} |")
    total = sum(sum(v) for v in per_rule.values())
    print(f"\nall jobs: {total:.1f} s; the 2026-12-03 job set: {earlier_set:.1f} s")


if __name__ == "__main__":
    main()
