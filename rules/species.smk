# Human-mouse comparison (GeneRAIN-HM), one job per species.settings entry and
# model, gathered into the ortholog-rank table. The comparison corpora hold
# all passing samples, on either data path: shared and separate are made from
# the main corpus' tokens; pseudo_species by make_pseudo_species (in memory,
# rules/tokenize.smk) or gather_pseudo_species (streaming, rules/stream.smk).
#   mixed: the main model, trained on shuffled human and mouse samples;
#   shared: the same samples, species.shared_tokens orthologs sharing one token;
#   separate: one model per species;
#   pseudo_species: GeneRAIN's control - human samples split in halves, the
#     second half renamed to mouse orthologs, one model on both;
#   expression_svd: no model - each species' expression SVD (linear reference).
# Each: orthogonal Procrustes on the training orthologs, CSLS refinement, rank
# of the true ortholog among all genes of the other species, a row-shuffled null.


rule make_comparison_corpus:
    input:
        vocab=corpus_path("main", "vocab.tsv"),
        shards=corpus_path("main", "shards"),
        index=corpus_path("main", "index.parquet"),
        orthologs=lambda wc: [ortholog_table()] if wc.corpus == "shared" else [],
    output:
        vocab=corpus_path("{corpus}", "vocab.tsv"),
        shards=directory(corpus_path("{corpus}", "shards")),
        index=corpus_path("{corpus}", "index.parquet"),
        shared=corpus_path("{corpus}", "shared_tokens.tsv"),
    log:
        os.path.join(LOGS, "make_comparison_corpus", "{corpus}.log"),
    benchmark:
        os.path.join(BENCH, "make_comparison_corpus", "{corpus}.tsv")
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
        validation_fraction=config["tokens"]["validation_fraction"],
        seed=config["seed"],
    script:
        "../workflow_scripts/make_comparison_corpus.py"


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
    benchmark:
        os.path.join(BENCH, "compare_species", "{model}.tsv")
    conda:
        ENV_CORE
    params:
        settings=SPECIES_SETTINGS,
    script:
        "../workflow_scripts/compare_species.py"
