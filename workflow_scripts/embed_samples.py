"""Rule embed_samples: sample and contextual gene embeddings from a model's hidden states."""
import torch

from generain.stages import samples
from generain.utils import run_step

sm = snakemake  # noqa: F821
torch.set_num_threads(max(1, sm.threads))
run_step(
    sm.log[0], samples.embed_samples,
    checkpoint=sm.input.checkpoint, vocab=sm.input.vocab, shards=sm.input.shards, index=sm.input.index,
    qc_table=sm.input.qc, matrices=dict(zip(sm.params.species, sm.input.matrices)), layer=sm.params.layer,
    # runtime-only settings come from the config, not params
    batch_size=sm.config["inference"]["batch_size"], device=sm.config["inference"]["device"], seed=sm.params.seed,
    out_samples=sm.output.samples, out_silhouette=sm.output.silhouette, out_map=sm.output.map,
    out_contextual_w2v=sm.output.w2v, out_contextual_parquet=sm.output.parquet, model_name=sm.wildcards.model,
)
