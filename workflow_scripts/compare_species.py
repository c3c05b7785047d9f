"""Rule compare_species: Procrustes alignment and ortholog ranks, with a shuffled null."""
from generain import pipeline
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], pipeline.compare_species,
    checkpoint=sm.input.checkpoint, vocab=sm.input.vocab, orthologs=sm.input.orthologs,
    train_fraction=sm.params.train_fraction, seed=sm.params.seed, model_name=sm.wildcards.model,
    out_embedding=sm.output.embedding, out_w2v=sm.output.w2v, out_ranks=sm.output.ranks, out_ranks_shuffled=sm.output.ranks_shuffled,
    out_summary=sm.output.summary, out_plot=sm.output.plot,
)
