# Each property's classifier, refit on all protein-coding genes, applied to
# every lncRNA of the vocabulary.


rule predict_lncrna:
    input:
        embedding=os.path.join(RESULTS, "embeddings", "{model}.parquet"),
        gene_sets=config["annotation"]["gene_sets"],
        catalogue=os.path.join(RESULTS, "sweep", "{model}", "properties.parquet"),
    output:
        predictions=os.path.join(RESULTS, "lncrna", "{model}", "predictions.parquet"),
    params:
        C=config["sweep"]["C"],
        seed=config["seed"],
    threads: 2
    log:
        os.path.join(LOGS, "predict_lncrna", "{model}.log"),
    benchmark:
        os.path.join(BENCH, "predict_lncrna", "{model}.tsv")
    conda:
        ENV_CORE
    script:
        "../workflow_scripts/predict_lncrna.py"
