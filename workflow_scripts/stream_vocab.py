"""Rule stream_vocab: the vocabulary from each species' kept genes."""
from generain import pipeline
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], pipeline.stream_vocab,
    genes=list(sm.input.genes), species_names=list(sm.params.species), out_vocab=sm.output.vocab,
)
