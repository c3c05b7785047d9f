"""Rule compare_species: the ortholog-rank table (every setting and its shuffled null) and its plot."""
from generain.stages import species
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], species.compare_species,
    ranks=dict(zip(sm.params.settings, sm.input.ranks)), model_name=sm.wildcards.model,
    out_ranks=sm.output.ranks, out_summary=sm.output.summary, out_plot=sm.output.plot,
)
