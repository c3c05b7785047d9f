# Optional: refresh the gene table online through MyGene.info
# (annotation.source: mygene). The bundled snapshot is the default.


rule refresh_gene_table:
    input:
        snapshot=config["annotation"]["gene_table"],
    output:
        genes=os.path.join(RESULTS, "annotation", "genes.tsv"),
    log:
        os.path.join(LOGS, "refresh_gene_table.log"),
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
    conda:
        ENV_CORE
    params:
        min_sources=config["annotation"]["hcop_min_sources"],
    script:
        "../workflow_scripts/select_orthologs.py"
