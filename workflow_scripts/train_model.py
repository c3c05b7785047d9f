"""Rule train_model: train one GeneRAIN model type on a token corpus with PyTorch Lightning."""
from generain import pipeline
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], pipeline.train_model,
    model_type=sm.params.model_type, shards=sm.input.shards, index=sm.input.index, vocab=sm.input.vocab, model=sm.params.model,
    length=sm.params.length, train=sm.params.train, epochs=sm.params.epochs, seed=sm.params.seed,
    threads=sm.threads, title=f"{sm.wildcards.model} on the {sm.wildcards.corpus} corpus",
    out_checkpoint=sm.output.checkpoint, out_metrics=sm.output.metrics, out_summary=sm.output.summary,
    out_plot=sm.output.plot,
)
