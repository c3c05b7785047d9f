"""Rule stream_vocab: the vocabulary from each species' kept genes."""
from generain.stages import stream
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], stream.stream_vocab,
    genes=list(sm.input.genes), species_names=list(sm.params.species), out_vocab=sm.output.vocab,
)
