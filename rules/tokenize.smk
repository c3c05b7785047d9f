# Top genes of each sample as gene tokens (+ within-sample expression bins),
# the vocabulary (mouse tokens prefixed m_), memory-mappable shards and a
# seeded train/validation split. The main corpus holds every species of the
# run; the comparison corpora (species.settings shared and separate) are made
# from the same normalized samples.


rule tokenize_samples:
    input:
        matrices=expand(
            os.path.join(RESULTS, "normalize", "{species}", "log_cp10m.h5"),
            species=SPECIES,
        ),
        scores=expand(
            os.path.join(RESULTS, "normalize", "{species}", "scores.h5"),
            species=SPECIES,
        ),
    output:
        vocab=os.path.join(RESULTS, "tokens", "vocab.tsv"),
        shards=directory(os.path.join(RESULTS, "tokens", "shards")),
        index=os.path.join(RESULTS, "tokens", "index.parquet"),
    log:
        os.path.join(LOGS, "tokenize_samples.log"),
    benchmark:
        os.path.join(BENCH, "tokenize_samples.tsv")
    conda:
        ENV_CORE
    params:
        species=SPECIES,
        length=config["tokens"]["length"],
        validation_fraction=config["tokens"]["validation_fraction"],
        shard_size=config["tokens"]["shard_size"],
        seed=config["seed"],
    script:
        "../workflow_scripts/tokenize_samples.py"


rule tokenize_comparison_corpus:
    input:
        matrices=lambda wc: expand(
            os.path.join(RESULTS, "normalize", "{species}", "log_cp10m.h5"),
            species=corpus_species(wc),
        ),
        scores=lambda wc: expand(
            os.path.join(RESULTS, "normalize", "{species}", "scores.h5"),
            species=corpus_species(wc),
        ),
        orthologs=ortholog_table(),
    output:
        vocab=os.path.join(RESULTS, "species", "{corpus}", "tokens", "vocab.tsv"),
        shards=directory(
            os.path.join(RESULTS, "species", "{corpus}", "tokens", "shards")
        ),
        index=os.path.join(RESULTS, "species", "{corpus}", "tokens", "index.parquet"),
        shared=os.path.join(
            RESULTS, "species", "{corpus}", "tokens", "shared_tokens.tsv"
        ),
    log:
        os.path.join(LOGS, "tokenize_comparison_corpus", "{corpus}.log"),
    wildcard_constraints:
        corpus="shared|human|mouse",
    conda:
        ENV_CORE
    params:
        species=corpus_species,
        shared_tokens=lambda wc: (
            config["species"]["shared_tokens"] if wc.corpus == "shared" else 0
        ),
        train_fraction=config["species"]["train_fraction"],
        length=config["tokens"]["length"],
        validation_fraction=config["tokens"]["validation_fraction"],
        shard_size=config["tokens"]["shard_size"],
        seed=config["seed"],
    script:
        "../workflow_scripts/tokenize_samples.py"
