# Sample QC with GeneRAIN's criteria: total counts, single-cell probability,
# detected genes.


rule qc_samples:
    input:
        matrices=[] if STREAM else ingested("h5"),
        tables=stream_shard_files("qc.parquet") if STREAM else [],
    output:
        table=os.path.join(RESULTS, "qc", "samples.parquet"),
        plot=report(
            os.path.join(RESULTS, "qc", "qc.png"),
            caption="../report/qc.rst",
            category="1. Sample QC",
        ),
    log:
        os.path.join(LOGS, "qc_samples.log"),
    benchmark:
        os.path.join(BENCH, "qc_samples.tsv")
    conda:
        ENV_CORE
    params:
        criteria=config["qc"],
    script:
        "../workflow_scripts/qc_samples.py"
