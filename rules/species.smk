# Human-mouse comparison. pseudo_species: GeneRAIN's control - the run's
# samples split in halves, the second half renamed to mouse orthologs, one
# model on both, Procrustes alignment, rank of the true ortholog.


rule make_pseudo_species:
    input:
        matrix=os.path.join(RESULTS, "normalize", "log_cp10m.h5"),
        orthologs=config["annotation"]["orthologs"],
    output:
        vocab=os.path.join(RESULTS, "species", "pseudo_species", "tokens", "vocab.tsv"),
        shards=directory(
            os.path.join(RESULTS, "species", "pseudo_species", "tokens", "shards")
        ),
        index=os.path.join(RESULTS, "species", "pseudo_species", "tokens", "index.parquet"),
    params:
        method=config["normalization"]["method"],
        n_bins=config["normalization"]["n_bins"],
        length=config["tokens"]["length"],
        validation_fraction=config["tokens"]["validation_fraction"],
        shard_size=config["tokens"]["shard_size"],
        seed=config["seed"],
    log:
        os.path.join(LOGS, "make_pseudo_species.log"),
    conda:
        ENV_CORE
    script:
        "../workflow_scripts/make_pseudo_species.py"


rule compare_species:
    input:
        checkpoint=os.path.join(RESULTS, "models", "pseudo_species", "{model}", "model.pt"),
        vocab=os.path.join(RESULTS, "species", "pseudo_species", "tokens", "vocab.tsv"),
        orthologs=config["annotation"]["orthologs"],
    output:
        embedding=os.path.join(RESULTS, "species", "{model}", "embedding.parquet"),
        w2v=os.path.join(RESULTS, "species", "{model}", "embedding.w2v.txt"),
        ranks=os.path.join(RESULTS, "species", "{model}", "ortholog_ranks.parquet"),
        ranks_shuffled=os.path.join(
            RESULTS, "species", "{model}", "ortholog_ranks_shuffled.parquet"
        ),
        summary=report(
            os.path.join(RESULTS, "species", "{model}", "summary.tsv"),
            caption="../report/species_table.rst",
            category="4. Human-mouse comparison",
        ),
        plot=report(
            os.path.join(RESULTS, "species", "{model}", "ranks.png"),
            caption="../report/species_plot.rst",
            category="4. Human-mouse comparison",
        ),
    params:
        train_fraction=config["species"]["train_fraction"],
        seed=config["seed"],
    log:
        os.path.join(LOGS, "compare_species", "{model}.log"),
    conda:
        ENV_TRAIN
    script:
        "../workflow_scripts/compare_species.py"
