"""Rule tokenize_samples: vocabulary, token shards and the train/validation split."""
from generain import pipeline
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], pipeline.tokenize_corpus,
    matrix=sm.input.matrix, scores=sm.input.scores, species_name=sm.params.species,
    length=sm.params.length, validation_fraction=sm.params.validation_fraction, seed=sm.params.seed,
    shard_size=sm.params.shard_size, out_vocab=sm.output.vocab, out_shards=sm.output.shards,
    out_index=sm.output.index,
)
