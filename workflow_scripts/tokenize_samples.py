"""Rules tokenize_samples and tokenize_comparison_corpus: vocabulary, token shards, train/validation split."""
from generain.stages import tokenize
from generain.utils import run_step

sm = snakemake  # noqa: F821
shared = sm.params.get("shared_tokens", 0)
run_step(
    sm.log[0], tokenize.tokenize_corpus,
    matrices=list(sm.input.matrices), scores=list(sm.input.scores), species_names=list(sm.params.species),
    length=sm.params.length, validation_fraction=sm.params.validation_fraction, seed=sm.params.seed,
    shard_size=sm.params.shard_size, out_vocab=sm.output.vocab, out_shards=sm.output.shards,
    out_index=sm.output.index, orthologs=sm.input.get("orthologs"), shared_tokens=shared,
    train_fraction=sm.params.get("train_fraction"), out_shared=sm.output.get("shared"),
)
