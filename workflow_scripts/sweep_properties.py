"""Rule sweep_properties: cross-validated classifier AUC per gene property."""
from generain import pipeline
from generain.utils import run_step

sm = snakemake  # noqa: F821
s = sm.params.sweep
run_step(
    sm.log[0], pipeline.sweep_properties,
    embedding=sm.input.embedding, gene_sets=list(sm.input.gene_sets), min_genes=s["min_genes"],
    max_genes=s["max_genes"], max_properties=s["max_properties"], folds=s["folds"], c=s["C"],
    seed=sm.params.seed, threads=sm.threads, out_auc=sm.output.auc, out_catalogue=sm.output.catalogue,
    out_plot=sm.output.plot, model_name=sm.wildcards.model,
)
