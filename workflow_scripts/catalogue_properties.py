"""Rule catalogue_properties: which gene sets become properties of the sweep, and why."""
from generain import pipeline
from generain.utils import run_step

sm = snakemake  # noqa: F821
s = sm.params.sweep
run_step(
    sm.log[0], pipeline.catalogue_properties,
    embedding=sm.input.embedding, gene_sets=list(sm.input.gene_sets), gene_table=sm.input.gene_table,
    min_genes=s["min_genes"], max_genes=s["max_genes"], max_jaccard=s["max_jaccard"],
    max_properties=s["max_properties"], folds=s["folds"], seed=sm.params.seed, out_catalogue=sm.output.catalogue,
)
