"""Rule kallisto_quant: count one sample's reads (pysam) and quantify them with kallisto quant."""
from generain.stages import quantify
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], quantify.quantify_sample,
    samples=sm.input.samples, sample_id=sm.wildcards.sample, index=sm.input.index, threads=sm.threads,
    out_dir=sm.output.quant,
)
