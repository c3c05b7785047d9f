#!/usr/bin/env bash
# Demo wall time of two checkouts, side by side on one machine: each is run in turn from an
# empty results/ with plain `snakemake` (the demo, no report), nothing else running.
# Usage: bash benchmarks/demo_walltime.sh CHECKOUT_A CHECKOUT_B   (each with its own .venv installed)
# Prints one line per checkout: path, commit, exit code, wall seconds.
set -u
for d in "$@"; do
  (cd "$d" && rm -rf results .snakemake && . .venv/bin/activate &&
   start=$(date +%s.%N) && snakemake > "$d.walltime.log" 2>&1; rc=$?
   echo "$d $(git -C "$d" log --oneline -1 | cut -c1-7) rc=$rc wall_s=$(echo "$(date +%s.%N) - $start" | bc)")
done
