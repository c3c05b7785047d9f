"""Rule read_gtf: gene table and transcript-to-gene map of a species' GTF/GFF3 (annotation.gtf)."""
from generain.stages import annotation
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], annotation.gene_table_from_gtf,
    gtf_path=sm.input.gtf, out_indexed=sm.output.indexed, out_genes=sm.output.genes,
    out_transcripts=sm.output.transcripts,
)
