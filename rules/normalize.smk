# CP10M + log10 and gene filtering; Binning-By-Gene (fit the per-gene
# reference, then transform) or the z-score / rank-value alternatives.


rule normalize_counts:
    input:
        matrices=ingested("h5"),
        qc=os.path.join(RESULTS, "qc", "samples.parquet"),
    output:
        matrix=os.path.join(RESULTS, "normalize", "log_cp10m.h5"),
        genes=os.path.join(RESULTS, "normalize", "genes.tsv"),
    params:
        biotypes=config["normalization"]["biotypes"],
        min_mean=config["normalization"]["min_mean"],
        deduplicate_by=config["normalization"]["deduplicate_by"],
    log:
        os.path.join(LOGS, "normalize_counts.log"),
    benchmark:
        os.path.join(BENCH, "normalize_counts.tsv")
    conda:
        ENV_CORE
    script:
        "../workflow_scripts/normalize_counts.py"


rule fit_bin_reference:
    input:
        matrix=os.path.join(RESULTS, "normalize", "log_cp10m.h5"),
    output:
        reference=os.path.join(RESULTS, "normalize", "bin_reference.h5"),
    params:
        n_bins=config["normalization"]["n_bins"],
        fraction=config["normalization"]["reference_fraction"],
        min_points=config["normalization"]["reference_min_points"],
    log:
        os.path.join(LOGS, "fit_bin_reference.log"),
    conda:
        ENV_CORE
    script:
        "../workflow_scripts/fit_bin_reference.py"


rule transform_expression:
    input:
        matrix=os.path.join(RESULTS, "normalize", "log_cp10m.h5"),
        reference=(
            [config["normalization"]["reference"]]
            if config["normalization"]["reference"]
            else []
        ),
    output:
        scores=os.path.join(RESULTS, "normalize", "scores.h5"),
    params:
        method=config["normalization"]["method"],
        n_bins=config["normalization"]["n_bins"],
    log:
        os.path.join(LOGS, "transform_expression.log"),
    benchmark:
        os.path.join(BENCH, "transform_expression.tsv")
    conda:
        ENV_CORE
    script:
        "../workflow_scripts/transform_expression.py"
