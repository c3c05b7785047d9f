"""Rule align_species: align one setting's human and mouse embeddings; ortholog ranks and best matches."""
from generain.stages import species
from generain.utils import run_step

sm = snakemake  # noqa: F821
run_step(
    sm.log[0], species.align_species,
    setting=sm.wildcards.setting, checkpoints=list(sm.input.checkpoints), vocabs=list(sm.input.vocabs),
    orthologs=sm.input.orthologs, shared=sm.input.get("shared") or None, train_fraction=sm.params.train_fraction,
    refine_rounds=sm.params.refine_rounds, csls_k=sm.params.csls_k, seed=sm.params.seed,
    out_ranks=sm.output.ranks, out_best_match=sm.output.best_match, out_embedding=sm.output.embedding,
    out_w2v=sm.output.w2v, matrices=list(sm.input.get("matrices", [])), dim=sm.params.dim,
)
