"""Rule make_comparison_corpus: a shared-token or one-species corpus from the main corpus."""
from generain.stages import species
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], species.comparison_corpus,
    vocab=sm.input.vocab, shards=sm.input.shards, index=sm.input.index, species_names=list(sm.params.species),
    validation_fraction=sm.params.validation_fraction, seed=sm.params.seed, out_vocab=sm.output.vocab,
    out_shards=sm.output.shards, out_index=sm.output.index,
    orthologs=sm.input.orthologs[0] if sm.input.orthologs else None,
    shared_tokens=sm.params.shared_tokens, train_fraction=sm.params.train_fraction, out_shared=sm.output.shared,
)
