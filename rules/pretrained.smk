# Start from published models (config pretrained): the model's gene index
# becomes the run's vocabulary and its reference bins (GeneRAIN) or ranks
# (Geneformer) the run's samples; each listed model type is imported instead
# of trained, and every later stage runs on it unchanged.


rule import_vocabulary:
    input:
        gene_index=PRETRAINED_SOURCE["gene_index"],
        reference=PRETRAINED_SOURCE["reference"],
        symbols=(
            [
                re.sub(r"\.npy$", ".gene_symbols.txt", PRETRAINED_SOURCE["reference"]),
            ]
            if PRETRAINED_SOURCE["format"] == "generain"
            else []
        ),
        gene_table=gene_table(),
    output:
        vocab=pretrained_path("vocab.tsv"),
        gene_map=pretrained_path("gene_map.tsv"),
        token_rows=pretrained_path("token_rows.tsv"),
        reference=pretrained_reference()[0],
        summary=pretrained_path("vocabulary.json"),
    log:
        os.path.join(LOGS, "import_vocabulary.log"),
    benchmark:
        os.path.join(BENCH, "import_vocabulary.tsv")
    conda:
        ENV_CORE
    params:
        format=PRETRAINED_SOURCE["format"],
    script:
        "../workflow_scripts/import_vocabulary.py"


rule import_model:
    input:
        checkpoint=lambda wc: PRETRAINED[wc.model]["checkpoint"],
        token_rows=pretrained_path("token_rows.tsv"),
    output:
        checkpoint=os.path.join(RESULTS, "models", "main", "{model}", "model.pt"),
        summary=os.path.join(RESULTS, "models", "main", "{model}", "summary.json"),
    log:
        os.path.join(LOGS, "import_model", "{model}.log"),
    benchmark:
        os.path.join(BENCH, "import_model", "{model}.tsv")
    wildcard_constraints:
        model="|".join(PRETRAINED),
    conda:
        ENV_TRAIN
    params:
        format=PRETRAINED_SOURCE["format"],
        length=config["tokens"]["length"],
        n_head=lambda wc: PRETRAINED[wc.model]["n_head"],
    script:
        "../workflow_scripts/import_model.py"


ruleorder: import_model > train_model
