"""Rule perturb_genes: one in-silico perturbation run on one model."""
import torch

from generain.stages import perturb
from generain.utils import run_step

sm = snakemake  # noqa: F821
torch.set_num_threads(max(1, sm.threads))
run_step(
    sm.log[0], perturb.perturb_genes,
    checkpoint=sm.input.checkpoint, vocab=sm.input.vocab, shards=sm.input.shards, index=sm.input.index,
    qc_table=sm.input.qc, run=dict(sm.params.run), layer=sm.params.layer,
    null_draws=sm.params.perturbation["null_draws"], null_window=sm.params.perturbation["null_window"],
    seed=sm.params.seed, batch_size=sm.config["inference"]["batch_size"], device=sm.config["inference"]["device"],
    out_genes=sm.output.genes, out_samples=sm.output.samples, out_plot=sm.output.plot, model_name=sm.wildcards.model,
)
