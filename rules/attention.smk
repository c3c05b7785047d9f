# Attention analysis: per layer and head, the attention a gene set receives
# against its share of positions (gene-label permutation test), and entropy.


rule attention_heads:
    input:
        checkpoint=os.path.join(RESULTS, "models", "main", "{model}", "model.pt"),
        vocab=corpus_path("main", "vocab.tsv"),
        shards=corpus_path("main", "shards"),
        index=corpus_path("main", "index.parquet"),
        gene_sets=config["annotation"]["gene_sets"],
    output:
        heads=report(
            os.path.join(RESULTS, "attention", "{model}", "heads.tsv"),
            caption="../report/attention.rst",
            category="6. Using the models",
            subcategory="Attention",
        ),
        plot=report(
            os.path.join(RESULTS, "attention", "{model}", "heads.png"),
            caption="../report/attention.rst",
            category="6. Using the models",
            subcategory="Attention",
        ),
    log:
        os.path.join(LOGS, "attention_heads", "{model}.log"),
    benchmark:
        os.path.join(BENCH, "attention_heads", "{model}.tsv")
    conda:
        ENV_CORE
    threads: 2
    resources:
        gpu=INFERENCE_GPUS,
    params:
        attention=result_params(
            "attention", "gene_set", "samples", "permutations", "min_enrichment"
        ),
        seed=config["seed"],
    script:
        "../workflow_scripts/attention_heads.py"
