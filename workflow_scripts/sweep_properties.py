"""Rule sweep_properties: cross-validated classifiers of one shard of the properties."""
from generain.stages import sweep
from generain.sweep import SweepSettings
from generain.utils import run_step

sm = snakemake  # noqa: F821
# params hold the settings that change the result; the runtime-only ones (batch_size, device) come from the config
settings = SweepSettings.from_mapping({**sm.config["sweep"], **sm.params.sweep})
run_step(
    sm.log[0], sweep.sweep_properties,
    embedding=sm.input.embedding, gene_sets=list(sm.input.gene_sets), gene_table=sm.input.gene_table,
    catalogue=sm.input.catalogue, shard=int(sm.wildcards.shard), settings=settings, seed=sm.params.seed,
    threads=sm.threads, out_shard=sm.output.shard,
)
