"""Rule transform_expression: Binning-By-Gene bins (or z-scores / rank values)."""
from generain.stages import normalize
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], normalize.transform_expression,
    matrix=sm.input.matrix, method=sm.params.method, n_bins=sm.params.n_bins,
    reference=sm.input.reference[0] if sm.input.reference else None, out_scores=sm.output.scores,
)
