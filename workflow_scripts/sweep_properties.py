"""Rule sweep_properties: cross-validated classifiers of one shard of the properties."""
from generain import pipeline
from generain.utils import run_step

sm = snakemake  # noqa: F821
s = sm.params.sweep
run_step(
    sm.log[0], pipeline.sweep_properties,
    embedding=sm.input.embedding, gene_sets=list(sm.input.gene_sets), gene_table=sm.input.gene_table,
    catalogue=sm.input.catalogue, shard=int(sm.wildcards.shard), n_shards=sm.params.n_shards, folds=s["folds"],
    c=s["C"], seed=sm.params.seed, batch_size=s["batch_size"], device=s["device"], max_iter=s["max_iter"],
    tol=s["tol"], threads=sm.threads, out_shard=sm.output.shard,
)
