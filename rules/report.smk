# The run's headline figures, one object per stage (keys in the README).


rule summarize_run:
    input:
        ingest=ingest_reports(),
        qc=os.path.join(RESULTS, "qc", "samples.parquet"),
        genes=expand(
            normalized("{species}", "genes.tsv"),
            species=SPECIES,
        ),
        vocab=corpus_path("main", "vocab.tsv"),
        index=corpus_path("main", "index.parquet"),
        train=expand(
            os.path.join(RESULTS, "models", "main", "{model}", "summary.json"),
            model=MODELS,
        ),
        auc=expand(
            os.path.join(RESULTS, "sweep", "{embedding}", "auc.parquet"),
            embedding=SWEEP_EMBEDDINGS,
        ),
        catalogues=expand(
            os.path.join(RESULTS, "sweep", "{embedding}", "properties.parquet"),
            embedding=MODELS,
        ),
        comparison=(
            [os.path.join(RESULTS, "sweep", "comparison.tsv")] if BASELINES else []
        ),
        predictions=expand(
            os.path.join(RESULTS, "lncrna", "{model}", "predictions.parquet"),
            model=MODELS,
        ),
        species=list(species_outputs().values()),
        silhouettes=expand(
            os.path.join(RESULTS, "samples", "{model}", "silhouette.tsv"), model=MODELS
        ),
        contextual=expand(
            os.path.join(RESULTS, "embeddings", "{model}_contextual.parquet"),
            model=MODELS,
        ),
        perturbation=expand(
            os.path.join(
                RESULTS, "perturbation", "{run}", "{model}", "{table}.parquet"
            ),
            run=PERTURBATION_RUNS,
            model=MODELS,
            table=["gene_shifts", "sample_shifts"],
        ),
        attention=(
            expand(
                os.path.join(RESULTS, "attention", "{model}", "heads.tsv"),
                model=MODELS,
            )
            if config["attention"]["enabled"]
            else []
        ),
        finetune=expand(
            os.path.join(RESULTS, "finetune", "{model}", "{task}", "metrics.json"),
            model=MODELS,
            task=[*FINETUNE_GENE_TASKS, *FINETUNE_SAMPLE_TASKS],
        ),
    output:
        summary=os.path.join(RESULTS, "summary.json"),
    log:
        os.path.join(LOGS, "summarize_run.log"),
    benchmark:
        os.path.join(BENCH, "summarize_run.tsv")
    conda:
        ENV_CORE
    params:
        run_name=config["run_name"],
        species=SPECIES,
        models=MODELS,
        embeddings=SWEEP_EMBEDDINGS,
        species_models=list(species_outputs()),
        runs=list(PERTURBATION_RUNS),
        finetune_tasks=[*FINETUNE_GENE_TASKS, *FINETUNE_SAMPLE_TASKS],
    script:
        "../workflow_scripts/summarize_run.py"
