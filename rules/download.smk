# Files named with a url in the config (datasets[].url, downloads[]): fetched
# over HTTP with resume of partial transfers and sha256 verification; only a
# verified file is renamed into place. Runs on the submit host under Slurm
# (compute nodes often have no internet access).


localrules:
    download,


rule download:
    output:
        "{download}",
    log:
        os.path.join(LOGS, "download", "{download}.log"),
    benchmark:
        os.path.join(BENCH, "download", "{download}.tsv")
    retries: 0
    conda:
        ENV_CORE
    params:
        url=lambda wc: DOWNLOADS[wc.download]["url"],
        sha256=lambda wc: DOWNLOADS[wc.download]["sha256"],
    script:
        "../workflow_scripts/download.py"
