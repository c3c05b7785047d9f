"""Rule tokenize_samples: vocabulary, token shards, train/validation split (in-memory path)."""
from generain.stages import tokenize
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], tokenize.tokenize_corpus,
    matrices=list(sm.input.matrices), scores=list(sm.input.scores), species_names=list(sm.params.species),
    length=sm.params.length, validation_fraction=sm.params.validation_fraction, seed=sm.params.seed,
    shard_size=sm.params.shard_size, out_vocab=sm.output.vocab, out_shards=sm.output.shards,
    out_index=sm.output.index, vocab=sm.input.vocab[0] if sm.input.vocab else None,
)
