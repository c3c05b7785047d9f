"""Rule compare_embeddings: every embedding's AUCs against every baseline (paired Wilcoxon)."""
from generain.stages import sweep
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], sweep.compare_embeddings,
    aucs=dict(zip(sm.params.embeddings, sm.input.auc)), baselines=sm.params.baselines,
    out_comparison=sm.output.comparison, out_distribution=sm.output.distribution, out_plot=sm.output.plot,
)
