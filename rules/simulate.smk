# Generated inputs with planted truth (config simulate: ...): a human and a
# mouse ARCHS4-layout file whose one-to-one orthologs share co-expression
# modules in a chosen fraction, for testing the human-mouse comparison.

SIM = config["simulate"]


rule simulate_human_mouse:
    input:
        gene_table=config["annotation"]["gene_table"],
        orthologs=SIM["orthologs"],
    output:
        human=os.path.join(SIM["out_dir"], "human.h5"),
        mouse=os.path.join(SIM["out_dir"], "mouse.h5"),
        orthologs=os.path.join(SIM["out_dir"], "orthologs.tsv"),
        truth=os.path.join(SIM["out_dir"], "truth.tsv"),
    log:
        os.path.join(LOGS, "simulate_human_mouse.log"),
    benchmark:
        os.path.join(BENCH, "simulate_human_mouse.tsv")
    conda:
        ENV_CORE
    params:
        sim=SIM,
    script:
        "../workflow_scripts/simulate_human_mouse.py"
