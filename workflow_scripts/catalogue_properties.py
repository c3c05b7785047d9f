"""Rule catalogue_properties: which gene sets become properties of the sweep, and why."""
from generain.stages import sweep
from generain.sweep import SweepSettings
from generain.utils import run_step

sm = snakemake  # noqa: F821
settings = SweepSettings.from_mapping({**sm.config["sweep"], **sm.params.sweep})
run_step(
    sm.log[0], sweep.catalogue_properties,
    embedding=sm.input.embedding, gene_sets=list(sm.input.gene_sets), gene_table=sm.input.gene_table,
    settings=settings, seed=sm.params.seed, out_catalogue=sm.output.catalogue,
)
