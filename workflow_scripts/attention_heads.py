"""Rule attention_heads: per-head attention to a gene set, and attention entropy."""
import torch

from generain.stages import attention
from generain.utils import run_step

sm = snakemake  # noqa: F821
torch.set_num_threads(max(1, sm.threads))
a = sm.params.attention
run_step(
    sm.log[0], attention.attention_heads,
    checkpoint=sm.input.checkpoint, vocab=sm.input.vocab, shards=sm.input.shards, index=sm.input.index,
    gene_sets=list(sm.input.gene_sets), gene_set=a["gene_set"], samples=a["samples"], permutations=a["permutations"],
    min_enrichment=a["min_enrichment"],
    seed=sm.params.seed, batch_size=sm.config["inference"]["batch_size"], device=sm.config["inference"]["device"],
    out_heads=sm.output.heads, out_plot=sm.output.plot, model_name=sm.wildcards.model,
)
