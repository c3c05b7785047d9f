# Read each configured dataset (ARCHS4 HDF5, count table or AnnData), compute
# per-sample QC statistics and map genes to unversioned Ensembl ids.


rule ingest_counts:
    input:
        counts=lambda wc: counts_input(wc.dataset),
        reads=lambda wc: (
            [fastq_path(wc.dataset, "reads.tsv")]
            if DATASETS[wc.dataset]["format"] == "fastq"
            else []
        ),
        gene_table=lambda wc: species_gene_table(DATASETS[wc.dataset]["species"]),
    output:
        matrix=os.path.join(RESULTS, "ingest", "{dataset}.h5"),
        report=os.path.join(RESULTS, "ingest", "{dataset}.json"),
    log:
        os.path.join(LOGS, "ingest_counts", "{dataset}.log"),
    benchmark:
        os.path.join(BENCH, "ingest_counts", "{dataset}.tsv")
    conda:
        ENV_CORE
    params:
        fmt=lambda wc: DATASETS[wc.dataset]["format"],
        species=lambda wc: DATASETS[wc.dataset]["species"],
        id_type=lambda wc: DATASETS[wc.dataset]["id_type"],
        counts=lambda wc: DATASETS[wc.dataset]["counts"],
        annotation=lambda wc: annotation_label(DATASETS[wc.dataset]["species"]),
        read_options=lambda wc: (
            {"gene_id_column": DATASETS[wc.dataset]["gene_id_column"]}
            if "gene_id_column" in DATASETS[wc.dataset]
            else {}
        ),
    script:
        "../workflow_scripts/ingest_counts.py"
