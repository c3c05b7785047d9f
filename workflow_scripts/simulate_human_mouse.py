"""Rule simulate_human_mouse: generated human and mouse ARCHS4-layout files with planted modules."""
import os

from generain import simulate
from generain.utils import run_step

sm = snakemake  # noqa: F821
p = sm.params.sim
run_step(
    sm.log[0], simulate.human_mouse_from_tables, out_dir=os.path.dirname(sm.output.human),
    gene_table=sm.input.gene_table, orthologs=sm.input.orthologs, n_pairs=p["pairs"], n_lncrna=p["lncrna"],
    n_samples=(p["human_samples"], p["mouse_samples"]), n_modules=p["modules"], in_modules=p["in_modules"],
    shared_fraction=p["shared_fraction"], gene_factors=p["gene_factors"], module_programs=p["module_programs"],
    seed=p["seed"],
    chunk_samples=p.get("chunk_samples", 2000),
)
