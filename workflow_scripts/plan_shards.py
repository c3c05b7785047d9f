"""Checkpoint plan_shards: cut an ARCHS4 file into sample shards for the streaming passes."""
from generain.stages import stream
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], stream.plan_stream,
    path=sm.input.counts, name=sm.wildcards.dataset, species_name=sm.params.species,
    gene_table=sm.input.gene_table or None, shard_samples=sm.params.shard_samples, out_plan=sm.output.plan,
    id_type=sm.params.id_type,
)
