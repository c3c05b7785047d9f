# In-memory path (normalization.exact: true): the top genes of each sample as
# gene tokens (+ within-sample expression bins), the vocabulary (mouse tokens
# prefixed m_), memory-mappable shards and a seeded train/validation split.
# The main corpus holds every species of the run; the pseudo-species control
# corpus is made from the first species' bins. The streaming path writes the
# same files (rules/stream.smk); the other comparison corpora are made from
# the main corpus on either path (rules/species.smk).


rule tokenize_samples:
    input:
        matrices=expand(normalized("{species}", "log_cp10m.h5"), species=SPECIES),
        scores=expand(normalized("{species}", "scores.h5"), species=SPECIES),
        # an imported model's vocabulary (config pretrained) fixes the tokens
        vocab=pretrained_vocab(),
    output:
        vocab=corpus_path("main", "vocab.tsv"),
        shards=directory(corpus_path("main", "shards")),
        index=corpus_path("main", "index.parquet"),
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


rule make_pseudo_species:
    input:
        matrix=normalized(SPECIES[0], "log_cp10m.h5"),
        scores=normalized(SPECIES[0], "scores.h5"),
        orthologs=ortholog_table(),
    output:
        vocab=corpus_path("pseudo_species", "vocab.tsv"),
        shards=directory(corpus_path("pseudo_species", "shards")),
        index=corpus_path("pseudo_species", "index.parquet"),
    log:
        os.path.join(LOGS, "make_pseudo_species.log"),
    benchmark:
        os.path.join(BENCH, "make_pseudo_species.tsv")
    conda:
        ENV_CORE
    params:
        length=config["tokens"]["length"],
        validation_fraction=config["tokens"]["validation_fraction"],
        shard_size=config["tokens"]["shard_size"],
        seed=config["seed"],
    script:
        "../workflow_scripts/make_pseudo_species.py"
