"""Rule refresh_gene_table: the gene table refreshed through MyGene.info (online)."""
from generain.stages import annotation
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(sm.log[0], annotation.refresh_gene_table, snapshot=sm.input.snapshot, out_genes=sm.output.genes)
