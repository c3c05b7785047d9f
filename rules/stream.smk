# Streaming normalization for ARCHS4-scale files (normalization.exact: false):
# the file is cut into sample shards aligned to its chunk width; pass 1 (one
# job per shard) applies QC and sketches each gene's non-zero log10(CP10M+1)
# values; the per-species gather merges the sketches into the gene filters and
# the Binning-By-Gene reference; pass 2 (one job per shard) bins and tokenizes
# the shard. No job holds more than one shard, so memory depends on
# shard_samples and the gene count, not on the number of samples. Included
# instead of rules/ingest.smk, normalize.smk and tokenize.smk (the in-memory
# path); writes the same genes.tsv, bin_reference.h5 and token corpora, and
# log_cp10m_subsample.h5 (normalization.matrix_fraction of the passing
# samples) for the expression-SVD references only.

NORM = config["normalization"]


checkpoint plan_shards:
    input:
        counts=lambda wc: DATASETS[wc.dataset]["path"],
        gene_table=lambda wc: species_gene_table(DATASETS[wc.dataset]["species"]),
    output:
        plan=os.path.join(RESULTS, "stream", "{dataset}", "plan.json"),
    log:
        os.path.join(LOGS, "plan_shards", "{dataset}.log"),
    benchmark:
        os.path.join(BENCH, "plan_shards", "{dataset}.tsv")
    conda:
        ENV_CORE
    params:
        species=lambda wc: DATASETS[wc.dataset]["species"],
        id_type=lambda wc: DATASETS[wc.dataset]["id_type"],
        shard_samples=NORM["shard_samples"],
    script:
        "../workflow_scripts/plan_shards.py"


rule scan_shard:
    input:
        counts=lambda wc: DATASETS[wc.dataset]["path"],
        plan=os.path.join(RESULTS, "stream", "{dataset}", "plan.json"),
        gene_table=lambda wc: species_gene_table(DATASETS[wc.dataset]["species"]),
    output:
        qc=os.path.join(RESULTS, "stream", "{dataset}", "shard_{shard}", "qc.parquet"),
        sketch=os.path.join(
            RESULTS, "stream", "{dataset}", "shard_{shard}", "sketch.h5"
        ),
        # pass 1's log10(CP10M+1) of the vocabulary-biotype genes, read by pass 2
        # instead of inflating the file again; deleted once the shard is binned
        scratch=temp(
            os.path.join(
                RESULTS, "stream", "{dataset}", "shard_{shard}", "scratch.npy"
            )
        ),
    log:
        os.path.join(LOGS, "scan_shard", "{dataset}", "{shard}.log"),
    benchmark:
        os.path.join(BENCH, "scan_shard", "{dataset}", "{shard}.tsv")
    conda:
        ENV_CORE
    resources:
        mem_mb=shard_mem_mb,
    params:
        criteria=config["qc"],
        sketch_points=NORM["sketch_points"],
        biotypes=NORM["biotypes"],
        matrix_fraction=NORM["matrix_fraction"],
        seed=config["seed"],
    script:
        "../workflow_scripts/scan_shard.py"


rule merge_reference_block:
    input:
        sketches=stream_shard_files("sketch.h5", "wildcard"),
    output:
        # read by merge_stream, then deleted
        reference=temp(
            os.path.join(
                RESULTS,
                "stream",
                "merge",
                "{species}",
                "block_{block}_of_{n_blocks}.h5",
            )
        ),
    log:
        os.path.join(
            LOGS, "merge_reference_block", "{species}_{block}_of_{n_blocks}.log"
        ),
    benchmark:
        os.path.join(
            BENCH, "merge_reference_block", "{species}_{block}_of_{n_blocks}.tsv"
        )
    wildcard_constraints:
        block=r"\d+",
        n_blocks=r"\d+",
    conda:
        ENV_CORE
    resources:
        mem_mb=4096,
    params:
        biotypes=NORM["biotypes"],
        min_mean=NORM["min_mean"],
        deduplicate_by=NORM["deduplicate_by"],
        reference_points=NORM["reference_points"],
        n_bins=NORM["n_bins"],
    script:
        "../workflow_scripts/merge_reference_block.py"


rule merge_stream:
    input:
        sketches=stream_shard_files("sketch.h5", "wildcard"),
        blocks=stream_reference_blocks,
    output:
        genes=normalized("{species}", "genes.tsv"),
        reference=normalized("{species}", "bin_reference.h5"),
        matrix=normalized("{species}", "log_cp10m_subsample.h5"),
    log:
        os.path.join(LOGS, "merge_stream", "{species}.log"),
    benchmark:
        os.path.join(BENCH, "merge_stream", "{species}.tsv")
    conda:
        ENV_CORE
    resources:
        mem_mb=4096,
    params:
        biotypes=NORM["biotypes"],
        min_mean=NORM["min_mean"],
        deduplicate_by=NORM["deduplicate_by"],
        reference_points=NORM["reference_points"],
        n_bins=NORM["n_bins"],
    script:
        "../workflow_scripts/merge_stream.py"


rule stream_vocab:
    input:
        genes=expand(normalized("{species}", "genes.tsv"), species=SPECIES),
    output:
        vocab=corpus_path("main", "vocab.tsv"),
    log:
        os.path.join(LOGS, "stream_vocab.log"),
    benchmark:
        os.path.join(BENCH, "stream_vocab.tsv")
    conda:
        ENV_CORE
    params:
        species=SPECIES,
    script:
        "../workflow_scripts/stream_vocab.py"


rule bin_shard:
    input:
        plan=os.path.join(RESULTS, "stream", "{dataset}", "plan.json"),
        qc=os.path.join(RESULTS, "stream", "{dataset}", "shard_{shard}", "qc.parquet"),
        sketch=os.path.join(
            RESULTS, "stream", "{dataset}", "shard_{shard}", "sketch.h5"
        ),
        scratch=os.path.join(
            RESULTS, "stream", "{dataset}", "shard_{shard}", "scratch.npy"
        ),
        genes=lambda wc: normalized(DATASETS[wc.dataset]["species"], "genes.tsv"),
        reference=lambda wc: normalized(
            DATASETS[wc.dataset]["species"], "bin_reference.h5"
        ),
        vocab=corpus_path("main", "vocab.tsv"),
        orthologs=lambda wc: (
            [ortholog_table()]
            if pseudo_species_parts() and DATASETS[wc.dataset]["species"] == SPECIES[0]
            else []
        ),
    output:
        tokens=directory(
            os.path.join(RESULTS, "stream", "{dataset}", "shard_{shard}", "tokens")
        ),
    log:
        os.path.join(LOGS, "bin_shard", "{dataset}", "{shard}.log"),
    benchmark:
        os.path.join(BENCH, "bin_shard", "{dataset}", "{shard}.tsv")
    conda:
        ENV_CORE
    resources:
        mem_mb=shard_mem_mb,
    params:
        species=lambda wc: DATASETS[wc.dataset]["species"],
        length=config["tokens"]["length"],
    script:
        "../workflow_scripts/bin_shard.py"


rule gather_stream_tokens:
    input:
        parts=stream_token_parts,
    output:
        shards=directory(corpus_path("main", "shards")),
        index=corpus_path("main", "index.parquet"),
    log:
        os.path.join(LOGS, "gather_stream_tokens.log"),
    benchmark:
        os.path.join(BENCH, "gather_stream_tokens.tsv")
    conda:
        ENV_CORE
    params:
        validation_fraction=config["tokens"]["validation_fraction"],
        seed=config["seed"],
    script:
        "../workflow_scripts/gather_stream_tokens.py"


rule gather_pseudo_species:
    input:
        parts=lambda wc: stream_shard_files("tokens", SPECIES[0])(wc),
        genes=normalized(SPECIES[0], "genes.tsv"),
        vocab=corpus_path("main", "vocab.tsv"),
        orthologs=ortholog_table(),
    output:
        vocab=corpus_path("pseudo_species", "vocab.tsv"),
        shards=directory(corpus_path("pseudo_species", "shards")),
        index=corpus_path("pseudo_species", "index.parquet"),
    log:
        os.path.join(LOGS, "gather_pseudo_species.log"),
    benchmark:
        os.path.join(BENCH, "gather_pseudo_species.tsv")
    conda:
        ENV_CORE
    params:
        species=SPECIES[0],
        validation_fraction=config["tokens"]["validation_fraction"],
        seed=config["seed"],
    script:
        "../workflow_scripts/gather_pseudo_species.py"
