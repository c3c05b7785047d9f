"""Rule merge_reference_block: the merged bin reference of one block of a species' kept genes."""
from generain.stages import stream
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], stream.merge_reference_block,
    sketches=list(sm.input.sketches), block=int(sm.wildcards.block), n_blocks=int(sm.wildcards.n_blocks),
    biotypes=sm.params.biotypes, min_mean=sm.params.min_mean, deduplicate_by=sm.params.deduplicate_by,
    reference_points=sm.params.reference_points, n_bins=sm.params.n_bins, out_reference=sm.output.reference,
)
