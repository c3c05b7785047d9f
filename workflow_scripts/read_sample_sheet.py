"""Checkpoint read_sample_sheet: check a FASTQ dataset's sample sheet and write it resolved."""
from generain.stages import quantify
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], quantify.check_sample_sheet,
    sheet=sm.input.sheet, fragment_length=sm.params.fragment_length, fragment_sd=sm.params.fragment_sd,
    out_samples=sm.output.samples,
)
