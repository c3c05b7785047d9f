"""Rule fit_bin_reference: save the per-gene Binning-By-Gene reference."""
from generain import pipeline
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], pipeline.fit_bin_reference,
    matrix=sm.input.matrix, n_bins=sm.params.n_bins, fraction=sm.params.fraction,
    min_points=sm.params.min_points, out_reference=sm.output.reference,
)
