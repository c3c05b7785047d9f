# FASTQ datasets (format: fastq; the dataset's path is its sample sheet),
# quantified as ARCHS4 quantifies: kallisto quant per sample against an index
# of the species' transcriptome (kallisto.transcriptome), transcripts' estimated
# counts summed to genes through the species' GTF/GFF3 (annotation.gtf) and
# rounded; the gene counts then go through ingest_counts with the other datasets.


checkpoint read_sample_sheet:
    input:
        sheet=lambda wc: DATASETS[wc.dataset]["path"],
    output:
        samples=fastq_path("{dataset}", "samples.tsv"),
    log:
        os.path.join(LOGS, "read_sample_sheet", "{dataset}.log"),
    benchmark:
        os.path.join(BENCH, "read_sample_sheet", "{dataset}.tsv")
    conda:
        ENV_KALLISTO
    params:
        fragment_length=config["kallisto"]["fragment_length"],
        fragment_sd=config["kallisto"]["fragment_sd"],
    script:
        "../workflow_scripts/read_sample_sheet.py"


rule kallisto_index:
    input:
        transcriptome=lambda wc: config["kallisto"]["transcriptome"][wc.species],
    output:
        index=os.path.join(RESULTS, "kallisto", "{species}", "transcripts.kidx"),
    log:
        os.path.join(LOGS, "kallisto_index", "{species}.log"),
    benchmark:
        os.path.join(BENCH, "kallisto_index", "{species}.tsv")
    conda:
        ENV_KALLISTO
    shell:
        "kallisto index -i {output.index} {input.transcriptome} > {log} 2>&1"


rule kallisto_quant:
    input:
        samples=fastq_path("{dataset}", "samples.tsv"),
        index=lambda wc: os.path.join(
            RESULTS, "kallisto", DATASETS[wc.dataset]["species"], "transcripts.kidx"
        ),
        fastqs=fastq_files,
    output:
        quant=directory(fastq_path("{dataset}", "quant", "{sample}")),
    log:
        os.path.join(LOGS, "kallisto_quant", "{dataset}", "{sample}.log"),
    benchmark:
        os.path.join(BENCH, "kallisto_quant", "{dataset}", "{sample}.tsv")
    conda:
        ENV_KALLISTO
    threads: config["kallisto"]["threads"]
    script:
        "../workflow_scripts/kallisto_quant.py"


rule gather_kallisto:
    input:
        samples=fastq_path("{dataset}", "samples.tsv"),
        quants=fastq_quants,
        transcripts=lambda wc: gtf_path(
            DATASETS[wc.dataset]["species"], "transcripts.tsv"
        ),
    output:
        counts=fastq_path("{dataset}", "gene_counts.tsv.gz"),
        reads=fastq_path("{dataset}", "reads.tsv"),
        report=fastq_path("{dataset}", "quantification.json"),
    log:
        os.path.join(LOGS, "gather_kallisto", "{dataset}.log"),
    benchmark:
        os.path.join(BENCH, "gather_kallisto", "{dataset}.tsv")
    conda:
        ENV_KALLISTO
    script:
        "../workflow_scripts/gather_kallisto.py"
