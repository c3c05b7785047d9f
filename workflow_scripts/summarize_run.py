"""Rule summarize_run: headline figures of every stage -> summary.json."""
from generain.stages import summary
from generain.utils import run_step

sm = snakemake  # noqa: F821
models = sm.params.models
run_step(
    sm.log[0], summary.summarize_run,
    run_name=sm.params.run_name, ingest_reports=list(sm.input.ingest), qc_table=sm.input.qc,
    normalized_genes=dict(zip(sm.params.species, sm.input.genes)), vocab=sm.input.vocab, index=sm.input.index,
    train_summaries=dict(zip(models, sm.input.train)), auc=dict(zip(sm.params.embeddings, sm.input.auc)),
    catalogues=dict(zip(models, sm.input.catalogues)),
    comparison=sm.input.comparison[0] if sm.input.comparison else None,
    predictions=dict(zip(models, sm.input.predictions)),
    species_summaries=dict(zip(sm.params.species_models, sm.input.species)), out_summary=sm.output.summary,
    silhouettes=dict(zip(models, sm.input.silhouettes)), contextual=dict(zip(models, sm.input.contextual)),
    # expand order: run, model, then gene_shifts before sample_shifts
    perturbation={(r, m): (sm.input.perturbation[2 * k], sm.input.perturbation[2 * k + 1])
                  for k, (r, m) in enumerate((r, m) for r in sm.params.runs for m in models)},
    attention=dict(zip(models, sm.input.attention)),
    # expand order: model, then task
    finetune=dict(zip([(m, t) for m in models for t in sm.params.finetune_tasks], sm.input.finetune)),
)
