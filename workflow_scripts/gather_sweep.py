"""Rule gather_sweep: the sweep's shards joined into auc.parquet and classifiers.parquet."""
from generain.stages import sweep
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], sweep.gather_sweep,
    shards=list(sm.input.shards), catalogue=sm.input.catalogue, model_name=sm.wildcards.embedding,
    out_auc=sm.output.auc, out_classifiers=sm.output.classifiers, out_plot=sm.output.plot,
)
