"""Rule normalize_counts: CP10M + log10 and gene filtering of passing samples."""
from generain.stages import normalize
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], normalize.normalize_counts,
    matrices=list(sm.input.matrices), qc_table=sm.input.qc, biotypes=sm.params.biotypes,
    min_mean=sm.params.min_mean, deduplicate_by=sm.params.deduplicate_by,
    out_matrix=sm.output.matrix, out_genes=sm.output.genes,
    vocab=sm.input.vocab[0] if sm.input.vocab else None,
)
