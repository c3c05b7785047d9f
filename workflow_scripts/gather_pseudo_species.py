"""Rule gather_pseudo_species: the pseudo-species control corpus from the pass-2 shards (streaming path)."""
from generain.stages import stream
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], stream.gather_pseudo_species,
    parts=list(sm.input.parts), genes=sm.input.genes, vocab=sm.input.vocab, orthologs=sm.input.orthologs,
    species_name=sm.params.species, validation_fraction=sm.params.validation_fraction, seed=sm.params.seed,
    out_vocab=sm.output.vocab, out_shards=sm.output.shards, out_index=sm.output.index,
)
