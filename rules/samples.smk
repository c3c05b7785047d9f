# Sample embeddings and contextual gene embeddings: the mean hidden state of
# inference.layer over each sample's real tokens, and over the samples in
# which each gene occurs (Geneformer's cell and gene embeddings).


rule embed_samples:
    input:
        checkpoint=os.path.join(RESULTS, "models", "main", "{model}", "model.pt"),
        vocab=corpus_path("main", "vocab.tsv"),
        shards=corpus_path("main", "shards"),
        index=corpus_path("main", "index.parquet"),
        qc=os.path.join(RESULTS, "qc", "samples.parquet"),
        # the expression PCA the silhouettes are compared with
        matrices=[svd_matrix(sp) for sp in SPECIES],
    output:
        samples=os.path.join(RESULTS, "samples", "{model}", "embeddings.parquet"),
        silhouette=report(
            os.path.join(RESULTS, "samples", "{model}", "silhouette.tsv"),
            caption="../report/samples.rst",
            category="6. Using the models",
            subcategory="Sample embeddings",
        ),
        map=report(
            os.path.join(RESULTS, "samples", "{model}", "map.png"),
            caption="../report/samples.rst",
            category="6. Using the models",
            subcategory="Sample embeddings",
        ),
        w2v=os.path.join(RESULTS, "embeddings", "{model}_contextual.w2v.txt"),
        parquet=os.path.join(RESULTS, "embeddings", "{model}_contextual.parquet"),
    log:
        os.path.join(LOGS, "embed_samples", "{model}.log"),
    benchmark:
        os.path.join(BENCH, "embed_samples", "{model}.tsv")
    conda:
        ENV_CORE
    threads: 2
    resources:
        gpu=INFERENCE_GPUS,
    params:
        layer=config["inference"]["layer"],
        species=SPECIES,
        seed=config["seed"],
    script:
        "../workflow_scripts/embed_samples.py"
