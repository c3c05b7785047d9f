"""Rule predict_lncrna: property classifiers applied to every lncRNA."""
from generain import pipeline
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], pipeline.predict_lncrna,
    embedding=sm.input.embedding, gene_sets=list(sm.input.gene_sets), catalogue=sm.input.catalogue,
    c=sm.params.C, seed=sm.params.seed, threads=sm.threads, out_predictions=sm.output.predictions,
)
