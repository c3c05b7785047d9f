# Top genes of each sample as gene tokens (+ within-sample expression bins),
# the vocabulary, memory-mappable shards and a seeded train/validation split.


rule tokenize_samples:
    input:
        matrix=os.path.join(RESULTS, "normalize", "log_cp10m.h5"),
        scores=os.path.join(RESULTS, "normalize", "scores.h5"),
    output:
        vocab=os.path.join(RESULTS, "tokens", "vocab.tsv"),
        shards=directory(os.path.join(RESULTS, "tokens", "shards")),
        index=os.path.join(RESULTS, "tokens", "index.parquet"),
    params:
        species=corpus_species,
        length=config["tokens"]["length"],
        validation_fraction=config["tokens"]["validation_fraction"],
        shard_size=config["tokens"]["shard_size"],
        seed=config["seed"],
    log:
        os.path.join(LOGS, "tokenize_samples.log"),
    benchmark:
        os.path.join(BENCH, "tokenize_samples.tsv")
    conda:
        ENV_CORE
    script:
        "../workflow_scripts/tokenize_samples.py"
