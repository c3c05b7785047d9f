# Human-mouse comparison (GeneRAIN-HM), one job per species.settings entry and
# model, gathered into the ortholog-rank table:
#   mixed: the main model, trained on shuffled human and mouse samples;
#   shared: the same samples, species.shared_tokens orthologs sharing one token;
#   separate: one model per species;
#   pseudo_species: GeneRAIN's control - human samples split in halves, the
#     second half renamed to mouse orthologs, one model on both;
#   expression_svd: no model - each species' expression SVD (linear reference).
# Each: orthogonal Procrustes on the training orthologs, CSLS refinement, rank
# of the true ortholog among all genes of the other species, a row-shuffled null.


rule make_pseudo_species:
    input:
        matrix=os.path.join(RESULTS, "normalize", SPECIES[0], "log_cp10m.h5"),
        orthologs=ortholog_table(),
    output:
        vocab=os.path.join(RESULTS, "species", "pseudo_species", "tokens", "vocab.tsv"),
        shards=directory(
            os.path.join(RESULTS, "species", "pseudo_species", "tokens", "shards")
        ),
        index=os.path.join(
            RESULTS, "species", "pseudo_species", "tokens", "index.parquet"
        ),
    log:
        os.path.join(LOGS, "make_pseudo_species.log"),
    conda:
        ENV_CORE
    params:
        method=config["normalization"]["method"],
        n_bins=config["normalization"]["n_bins"],
        length=config["tokens"]["length"],
        validation_fraction=config["tokens"]["validation_fraction"],
        shard_size=config["tokens"]["shard_size"],
        seed=config["seed"],
    script:
        "../workflow_scripts/make_pseudo_species.py"


rule align_species:
    input:
        unpack(comparison_inputs),
    output:
        ranks=os.path.join(RESULTS, "species", "{model}", "{setting}", "ranks.parquet"),
        best_match=os.path.join(
            RESULTS, "species", "{model}", "{setting}", "best_match.parquet"
        ),
        embedding=os.path.join(
            RESULTS, "species", "{model}", "{setting}", "embedding.parquet"
        ),
        w2v=os.path.join(
            RESULTS, "species", "{model}", "{setting}", "embedding.w2v.txt"
        ),
    log:
        os.path.join(LOGS, "align_species", "{model}_{setting}.log"),
    benchmark:
        os.path.join(BENCH, "align_species", "{model}_{setting}.tsv")
    conda:
        ENV_CORE
    params:
        train_fraction=config["species"]["train_fraction"],
        refine_rounds=config["species"]["refine_rounds"],
        csls_k=config["species"]["csls_k"],
        dim=config["model"]["n_embd"],
        seed=config["seed"],
    script:
        "../workflow_scripts/align_species.py"


rule compare_species:
    input:
        ranks=expand(
            os.path.join(
                RESULTS, "species", "{{model}}", "{setting}", "ranks.parquet"
            ),
            setting=SPECIES_SETTINGS,
        ),
    output:
        ranks=os.path.join(RESULTS, "species", "{model}", "ortholog_ranks.parquet"),
        summary=report(
            os.path.join(RESULTS, "species", "{model}", "summary.tsv"),
            caption="../report/species_table.rst",
            category="5. Human-mouse comparison",
        ),
        plot=report(
            os.path.join(RESULTS, "species", "{model}", "ranks.png"),
            caption="../report/species_plot.rst",
            category="5. Human-mouse comparison",
        ),
    log:
        os.path.join(LOGS, "compare_species", "{model}.log"),
    conda:
        ENV_CORE
    params:
        settings=SPECIES_SETTINGS,
    script:
        "../workflow_scripts/compare_species.py"
