"""Rule finetune_genes: cross-validated gene classification by fine-tuning, beside the static embedding."""
from functools import partial

from generain.stages import finetune
from generain.utils import run_step

sm = snakemake  # noqa: F821
# runtime-only settings come from the config
settings = finetune.FinetuneSettings(**sm.params.settings, seed=sm.params.seed,
                                     device=sm.config["finetune"]["device"],
                                     launcher=sm.config["finetune"]["launcher"])
run_step(
    sm.log[0], partial(finetune.launch_finetune, "genes", threads=max(1, sm.threads)),
    checkpoint=sm.input.checkpoint, vocab=sm.input.vocab, shards=sm.input.shards, index=sm.input.index,
    gene_sets=list(sm.input.gene_sets), task=dict(sm.params.task), settings=settings,
    out_metrics=sm.output.metrics, out_predictions=sm.output.predictions, out_model=sm.output.model,
    out_plot=sm.output.plot, model_name=sm.wildcards.model,
)
