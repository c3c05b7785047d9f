"""Rule train_model: train a GPT on a token corpus with PyTorch Lightning."""
import pandas as pd

from generain import plots
from generain.tokenize import read_vocab
from generain.training import train_gpt
from generain.utils import run_step

sm = snakemake  # noqa: F821
t = sm.params.train


def main() -> None:
    train_gpt(
        shard_dir=sm.input.shards, index_path=sm.input.index, vocab_size=len(read_vocab(sm.input.vocab)),
        checkpoint_path=sm.output.checkpoint, metrics_path=sm.output.metrics, summary_path=sm.output.summary,
        model={**sm.params.model, "block_size": sm.params.block_size}, epochs=sm.params.epochs, batch_size=t["batch_size"],
        accumulate_grad_batches=t["accumulate_grad_batches"], max_lr=t["max_lr"], div_factor=t["div_factor"],
        pct_start=t["pct_start"], weight_decay=t["weight_decay"], gradient_clip_val=t["gradient_clip_val"],
        seed=sm.params.seed, accelerator=t["accelerator"], devices=t["devices"], precision=t["precision"],
        threads=sm.threads, progress_bar=t["progress_bar"],
    )
    plots.loss_plot(pd.read_csv(sm.output.metrics), sm.output.plot,
                    title=f"{sm.wildcards.model} on {sm.wildcards.corpus} corpus")


run_step(sm.log[0], main)
