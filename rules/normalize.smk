# Per species: CP10M + log10 and gene filtering; Binning-By-Gene (fit the
# per-gene reference, then transform) or the z-score / rank-value alternatives.
# Each species is normalized against its own per-gene reference (GeneRAIN-HM).


rule normalize_counts:
    input:
        matrices=lambda wc: ingested("h5", wc.species),
        qc=os.path.join(RESULTS, "qc", "samples.parquet"),
        # an imported model's vocabulary replaces the gene filters
        vocab=pretrained_vocab(),
    output:
        matrix=normalized("{species}", "log_cp10m.h5"),
        genes=normalized("{species}", "genes.tsv"),
    log:
        os.path.join(LOGS, "normalize_counts", "{species}.log"),
    benchmark:
        os.path.join(BENCH, "normalize_counts", "{species}.tsv")
    conda:
        ENV_CORE
    params:
        biotypes=config["normalization"]["biotypes"],
        min_mean=config["normalization"]["min_mean"],
        deduplicate_by=config["normalization"]["deduplicate_by"],
    script:
        "../workflow_scripts/normalize_counts.py"


rule fit_bin_reference:
    input:
        matrix=normalized("{species}", "log_cp10m.h5"),
    output:
        reference=normalized("{species}", "bin_reference.h5"),
    log:
        os.path.join(LOGS, "fit_bin_reference", "{species}.log"),
    benchmark:
        os.path.join(BENCH, "fit_bin_reference", "{species}.tsv")
    conda:
        ENV_CORE
    params:
        n_bins=config["normalization"]["n_bins"],
        fraction=config["normalization"]["reference_fraction"],
        min_points=config["normalization"]["reference_min_points"],
    script:
        "../workflow_scripts/fit_bin_reference.py"


rule transform_expression:
    input:
        matrix=normalized("{species}", "log_cp10m.h5"),
        reference=lambda wc: bin_reference_input(wc.species),
    output:
        scores=normalized("{species}", "scores.h5"),
    log:
        os.path.join(LOGS, "transform_expression", "{species}.log"),
    benchmark:
        os.path.join(BENCH, "transform_expression", "{species}.tsv")
    conda:
        ENV_CORE
    params:
        method=config["normalization"]["method"],
        n_bins=config["normalization"]["n_bins"],
    script:
        "../workflow_scripts/transform_expression.py"
