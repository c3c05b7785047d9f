"""Rule select_orthologs: one-to-one human-mouse pairs from HCOP with enough supporting sources."""
from generain.stages import annotation
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0],
    annotation.select_orthologs,
    hcop=sm.input.hcop,
    min_sources=sm.params.min_sources,
    out_orthologs=sm.output.orthologs,
)
