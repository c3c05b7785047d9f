# Optional: refresh the gene table online through MyGene.info
# (annotation.source: mygene). The bundled snapshot is the default.


rule refresh_gene_table:
    input:
        snapshot=config["annotation"]["gene_table"],
    output:
        genes=os.path.join(RESULTS, "annotation", "genes.tsv"),
    log:
        os.path.join(LOGS, "refresh_gene_table.log"),
    benchmark:
        os.path.join(BENCH, "refresh_gene_table.tsv")
    conda:
        ENV_ANNOTATION
    script:
        "../workflow_scripts/refresh_gene_table.py"


# annotation.ortholog_source: hcop -- one-to-one pairs from HCOP's predictions
# with at least annotation.hcop_min_sources supporting databases.
rule select_orthologs:
    input:
        hcop=config["annotation"]["hcop_table"],
    output:
        orthologs=os.path.join(RESULTS, "annotation", "orthologs_hcop.tsv"),
    log:
        os.path.join(LOGS, "select_orthologs.log"),
    benchmark:
        os.path.join(BENCH, "select_orthologs.tsv")
    conda:
        ENV_CORE
    params:
        min_sources=config["annotation"]["hcop_min_sources"],
    script:
        "../workflow_scripts/select_orthologs.py"


# annotation.gtf: {species: GTF or GFF3} -- the species' gene table (and the
# transcript-to-gene map of kallisto quantification) from the user's annotation,
# sorted, bgzipped and tabix-indexed with pysam, instead of the bundled table.
rule read_gtf:
    input:
        gtf=lambda wc: config["annotation"]["gtf"][wc.species],
    output:
        indexed=gtf_path("{species}", "annotation.gz"),
        index=gtf_path("{species}", "annotation.gz.tbi"),
        genes=gtf_path("{species}", "genes.tsv"),
        transcripts=gtf_path("{species}", "transcripts.tsv"),
    log:
        os.path.join(LOGS, "read_gtf", "{species}.log"),
    benchmark:
        os.path.join(BENCH, "read_gtf", "{species}.tsv")
    conda:
        ENV_ANNOTATION
    script:
        "../workflow_scripts/read_gtf.py"
