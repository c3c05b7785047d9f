"""Rule gather_kallisto: a FASTQ dataset's gene counts from its samples' kallisto estimates."""
from generain.stages import quantify
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], quantify.gather_quantifications,
    samples=sm.input.samples, quants=list(sm.input.quants), transcripts=sm.input.transcripts,
    dataset=sm.wildcards.dataset, out_counts=sm.output.counts, out_reads=sm.output.reads,
    out_report=sm.output.report,
)
