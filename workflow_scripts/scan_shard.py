"""Rule scan_shard: streaming pass 1 (QC and gene sketches) on one shard."""
from generain.qc import QCCriteria
from generain.stages import stream
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], stream.scan_stream_shard,
    plan=sm.input.plan, shard=int(sm.wildcards.shard), gene_table=sm.input.gene_table or None,
    criteria=QCCriteria(**sm.params.criteria), sketch_points=sm.params.sketch_points, biotypes=sm.params.biotypes,
    matrix_fraction=sm.params.matrix_fraction, seed=sm.params.seed, out_qc=sm.output.qc,
    out_sketch=sm.output.sketch, out_scratch=sm.output.scratch,
)
