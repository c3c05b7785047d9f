"""Rule make_pseudo_species: GeneRAIN's pseudo-species control corpus (in-memory path)."""
from generain.stages import tokenize
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], tokenize.make_pseudo_species_corpus,
    matrix=sm.input.matrix, scores=sm.input.scores, orthologs=sm.input.orthologs, length=sm.params.length,
    validation_fraction=sm.params.validation_fraction, seed=sm.params.seed, shard_size=sm.params.shard_size,
    out_vocab=sm.output.vocab, out_shards=sm.output.shards, out_index=sm.output.index,
)
