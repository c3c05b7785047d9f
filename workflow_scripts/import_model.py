"""Rule import_model: a published checkpoint as the run's model.pt (no training)."""
from generain.stages import pretrained
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], pretrained.import_model,
    fmt=sm.params.format, model_type=sm.wildcards.model, checkpoint=sm.input.checkpoint,
    token_rows=sm.input.token_rows, length=sm.params.length, n_head=sm.params.n_head,
    out_checkpoint=sm.output.checkpoint, out_summary=sm.output.summary,
)
