"""Rule make_baseline: a baseline embedding (random, shuffled, svd, external) for the sweep."""
from generain.stages import sweep
from generain.utils import run_step

sm = snakemake  # noqa: F821
kind = sm.params.kind
run_step(
    sm.log[0], sweep.make_baseline,
    kind=kind, embedding=sm.input.embedding,
    matrix=sm.input.matrix[0] if sm.input.matrix else None,
    external=sm.input.external[0] if sm.input.external else None,
    seed=sm.params.seed, out_w2v=sm.output.w2v, out_parquet=sm.output.parquet,
)
