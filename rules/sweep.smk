# One cross-validated L2 logistic regression per gene property (10-500
# protein-coding genes in the vocabulary) on each model's gene embeddings.


rule sweep_properties:
    input:
        embedding=os.path.join(RESULTS, "embeddings", "{model}.parquet"),
        gene_sets=config["annotation"]["gene_sets"],
    output:
        auc=os.path.join(RESULTS, "sweep", "{model}", "auc.parquet"),
        catalogue=os.path.join(RESULTS, "sweep", "{model}", "properties.parquet"),
        plot=report(
            os.path.join(RESULTS, "sweep", "{model}", "auc.png"),
            caption="../report/sweep.rst",
            category="3. Property sweep",
        ),
    params:
        sweep=config["sweep"],
        seed=config["seed"],
    threads: 2
    log:
        os.path.join(LOGS, "sweep_properties", "{model}.log"),
    benchmark:
        os.path.join(BENCH, "sweep_properties", "{model}.tsv")
    conda:
        ENV_CORE
    script:
        "../workflow_scripts/sweep_properties.py"
