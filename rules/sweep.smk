# The gene-property sweep: choose the properties (catalogue), fit one
# cross-validated L2 logistic regression per property on each embedding -
# trained models and baselines - in sweep.shards parallel jobs, gather, and
# compare every embedding with every baseline.


rule make_baseline:
    input:
        embedding=lambda w: os.path.join(
            RESULTS, "embeddings", f"{BASELINES[w.baseline]['of']}.parquet"
        ),
        matrix=lambda w: (
            [svd_matrix("human")] if BASELINES[w.baseline]["kind"] == "svd" else []
        ),
        external=lambda w: (
            [BASELINES[w.baseline]["path"]]
            if BASELINES[w.baseline]["kind"] == "external"
            else []
        ),
    output:
        w2v=os.path.join(RESULTS, "embeddings", "{baseline}.w2v.txt"),
        parquet=os.path.join(RESULTS, "embeddings", "{baseline}.parquet"),
    log:
        os.path.join(LOGS, "make_baseline", "{baseline}.log"),
    benchmark:
        os.path.join(BENCH, "make_baseline", "{baseline}.tsv")
    conda:
        ENV_CORE
    params:
        kind=lambda w: BASELINES[w.baseline]["kind"],
        seed=config["seed"],
    script:
        "../workflow_scripts/make_baseline.py"


# One catalogue per trained model; a baseline is swept on the catalogue of the
# model it was made from, so the paired comparison pairs the same properties.
rule catalogue_properties:
    input:
        embedding=os.path.join(RESULTS, "embeddings", "{model}.parquet"),
        gene_sets=config["annotation"]["gene_sets"],
        gene_table=gene_table(),
    output:
        catalogue=os.path.join(RESULTS, "sweep", "{model}", "properties.parquet"),
    log:
        os.path.join(LOGS, "catalogue_properties", "{model}.log"),
    benchmark:
        os.path.join(BENCH, "catalogue_properties", "{model}.tsv")
    conda:
        ENV_CORE
    params:
        sweep=result_params(
            "sweep", "min_genes", "max_genes", "max_jaccard", "max_properties", "folds"
        ),
        seed=config["seed"],
    script:
        "../workflow_scripts/catalogue_properties.py"


rule sweep_properties:
    input:
        embedding=os.path.join(RESULTS, "embeddings", "{embedding}.parquet"),
        gene_sets=config["annotation"]["gene_sets"],
        gene_table=gene_table(),
        catalogue=sweep_catalogue,
    output:
        shard=os.path.join(RESULTS, "sweep", "{embedding}", "shards", "{shard}.parquet"),
    log:
        os.path.join(LOGS, "sweep_properties", "{embedding}", "{shard}.log"),
    benchmark:
        os.path.join(BENCH, "sweep_properties", "{embedding}", "{shard}.tsv")
    conda:
        ENV_CORE
    threads: 2
    resources:
        # sweep.device: cuda -> one GPU for the job (Slurm: --gpus)
        gpu=SWEEP_GPUS,
    params:
        # settings that change the result (not batch_size, device: runtime-only)
        sweep=result_params("sweep", "folds", "C", "max_iter", "score_tol", "shards"),
        seed=config["seed"],
    script:
        "../workflow_scripts/sweep_properties.py"


rule gather_sweep:
    input:
        shards=expand(
            os.path.join(
                RESULTS, "sweep", "{{embedding}}", "shards", "{shard}.parquet"
            ),
            shard=range(SWEEP_SHARDS),
        ),
        catalogue=sweep_catalogue,
    output:
        auc=os.path.join(RESULTS, "sweep", "{embedding}", "auc.parquet"),
        classifiers=os.path.join(RESULTS, "sweep", "{embedding}", "classifiers.parquet"),
        plot=report(
            os.path.join(RESULTS, "sweep", "{embedding}", "auc.png"),
            caption="../report/sweep.rst",
            category="3. Property sweep",
        ),
    log:
        os.path.join(LOGS, "gather_sweep", "{embedding}.log"),
    benchmark:
        os.path.join(BENCH, "gather_sweep", "{embedding}.tsv")
    conda:
        ENV_CORE
    script:
        "../workflow_scripts/gather_sweep.py"


rule compare_embeddings:
    input:
        auc=expand(
            os.path.join(RESULTS, "sweep", "{embedding}", "auc.parquet"),
            embedding=SWEEP_EMBEDDINGS,
        ),
    output:
        comparison=report(
            os.path.join(RESULTS, "sweep", "comparison.tsv"),
            caption="../report/comparison.rst",
            category="3. Property sweep",
        ),
        distribution=os.path.join(RESULTS, "sweep", "auc_distribution.tsv"),
        plot=report(
            os.path.join(RESULTS, "sweep", "comparison.png"),
            caption="../report/comparison.rst",
            category="3. Property sweep",
        ),
    log:
        os.path.join(LOGS, "compare_embeddings.log"),
    benchmark:
        os.path.join(BENCH, "compare_embeddings.tsv")
    conda:
        ENV_CORE
    params:
        embeddings=SWEEP_EMBEDDINGS,
        baselines=list(BASELINES),
    script:
        "../workflow_scripts/compare_embeddings.py"
