"""Rule train_model: train one GeneRAIN model type on a token corpus with PyTorch Lightning."""
from generain.stages import train
from generain.training.fit import TrainSettings
from generain.utils import run_step

sm = snakemake  # noqa: F821
# params hold the settings that change the result; the runtime-only ones come from the config
settings = TrainSettings.from_mapping({**sm.config["train"], **sm.params.train})
run_step(
    sm.log[0], train.train_model,
    model_type=sm.params.model_type, shards=sm.input.shards, index=sm.input.index, vocab=sm.input.vocab,
    model=sm.params.model, length=sm.params.length, settings=settings, seed=sm.params.seed, threads=sm.threads,
    title=f"{sm.wildcards.model} on the {sm.wildcards.corpus} corpus",
    out_checkpoint=sm.output.checkpoint, out_metrics=sm.output.metrics, out_summary=sm.output.summary,
    out_plot=sm.output.plot,
)
