# Zero-shot in-silico perturbation (perturbation.runs): each run's genes are
# moved to the front of (overexpress) or removed from (delete) the selected
# samples' sequences; gene and sample shifts against a rank-matched null.


rule perturb_genes:
    input:
        checkpoint=os.path.join(RESULTS, "models", "main", "{model}", "model.pt"),
        vocab=corpus_path("main", "vocab.tsv"),
        shards=corpus_path("main", "shards"),
        index=corpus_path("main", "index.parquet"),
        qc=os.path.join(RESULTS, "qc", "samples.parquet"),
    output:
        genes=os.path.join(
            RESULTS, "perturbation", "{run}", "{model}", "gene_shifts.parquet"
        ),
        samples=os.path.join(
            RESULTS, "perturbation", "{run}", "{model}", "sample_shifts.parquet"
        ),
        plot=report(
            os.path.join(RESULTS, "perturbation", "{run}", "{model}", "top_genes.png"),
            caption="../report/perturbation.rst",
            category="6. Using the models",
            subcategory="In-silico perturbation",
        ),
    log:
        os.path.join(LOGS, "perturb_genes", "{run}_{model}.log"),
    benchmark:
        os.path.join(BENCH, "perturb_genes", "{run}_{model}.tsv")
    conda:
        ENV_CORE
    threads: 2
    resources:
        gpu=INFERENCE_GPUS,
    params:
        run=lambda wc: PERTURBATION_RUNS[wc.run],
        layer=config["inference"]["layer"],
        perturbation=result_params("perturbation", "null_draws", "null_window"),
        seed=config["seed"],
    script:
        "../workflow_scripts/perturb_genes.py"
