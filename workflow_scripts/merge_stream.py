"""Rule merge_stream: gene filters, merged bin reference and subsampled matrix of one species."""
from generain.stages import stream
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], stream.merge_stream,
    sketches=list(sm.input.sketches), biotypes=sm.params.biotypes, min_mean=sm.params.min_mean,
    deduplicate_by=sm.params.deduplicate_by, reference_points=sm.params.reference_points,
    n_bins=sm.params.n_bins, out_genes=sm.output.genes, out_reference=sm.output.reference,
    out_matrix=sm.output.matrix, reference_blocks=list(sm.input.blocks),
)
