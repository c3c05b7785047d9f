# Each property's classifier, refit on all protein-coding genes, applied to
# every lncRNA of the vocabulary (trained models only).


rule predict_lncrna:
    input:
        embedding=os.path.join(RESULTS, "embeddings", "{model}.parquet"),
        classifiers=os.path.join(RESULTS, "sweep", "{model}", "classifiers.parquet"),
        catalogue=os.path.join(RESULTS, "sweep", "{model}", "properties.parquet"),
    output:
        predictions=os.path.join(RESULTS, "lncrna", "{model}", "predictions.parquet"),
        top=report(
            os.path.join(RESULTS, "lncrna", "{model}", "top_predictions.tsv"),
            caption="../report/lncrna.rst",
            category="4. lncRNA predictions",
        ),
    log:
        os.path.join(LOGS, "predict_lncrna", "{model}.log"),
    benchmark:
        os.path.join(BENCH, "predict_lncrna", "{model}.tsv")
    conda:
        ENV_CORE
    params:
        lncrna=result_params("lncrna"),
    script:
        "../workflow_scripts/predict_lncrna.py"
