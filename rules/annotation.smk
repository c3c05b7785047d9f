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
