# Fine-tuning (Geneformer's recipe): per model and task, a classification head
# (and optionally the last layers) trained in cross-validation, beside a
# baseline on the same folds; then fitted on all labels and saved.


rule finetune_genes:
    input:
        checkpoint=os.path.join(RESULTS, "models", "main", "{model}", "model.pt"),
        vocab=corpus_path("main", "vocab.tsv"),
        shards=corpus_path("main", "shards"),
        index=corpus_path("main", "index.parquet"),
        gene_sets=config["annotation"]["gene_sets"],
    output:
        **finetune_outputs("../report/finetune_genes.rst"),
    log:
        os.path.join(LOGS, "finetune", "{model}_{task}.log"),
    benchmark:
        os.path.join(BENCH, "finetune", "{model}_{task}.tsv")
    wildcard_constraints:
        task="|".join(map(re.escape, FINETUNE_GENE_TASKS)) or "^$",
    conda:
        ENV_TRAIN
    threads: 2
    resources:
        # one task per device, as train_model (Slurm: --gpus, --ntasks-per-gpu)
        nodes=config["finetune"]["num_nodes"],
        tasks=FINETUNE_RANKS,
        gpu=FINETUNE_GPUS,
        tasks_per_gpu=1,
    params:
        task=lambda wc: FINETUNE_GENE_TASKS[wc.task],
        settings=result_params("finetune", *FINETUNE_RESULT_KEYS),
        seed=config["seed"],
    script:
        "../workflow_scripts/finetune_genes.py"


rule finetune_samples:
    input:
        checkpoint=os.path.join(RESULTS, "models", "main", "{model}", "model.pt"),
        shards=corpus_path("main", "shards"),
        index=corpus_path("main", "index.parquet"),
        qc=os.path.join(RESULTS, "qc", "samples.parquet"),
        sheet=lambda wc: FINETUNE_SAMPLE_TASKS[wc.task]["sheet"],
        # the expression PCA of the baseline
        matrix=svd_matrix(SPECIES[0]),
    output:
        **finetune_outputs("../report/finetune_samples.rst"),
    log:
        os.path.join(LOGS, "finetune", "{model}_{task}.log"),
    benchmark:
        os.path.join(BENCH, "finetune", "{model}_{task}.tsv")
    wildcard_constraints:
        task="|".join(map(re.escape, FINETUNE_SAMPLE_TASKS)) or "^$",
    conda:
        ENV_TRAIN
    threads: 2
    resources:
        # one task per device, as train_model (Slurm: --gpus, --ntasks-per-gpu)
        nodes=config["finetune"]["num_nodes"],
        tasks=FINETUNE_RANKS,
        gpu=FINETUNE_GPUS,
        tasks_per_gpu=1,
    params:
        task=lambda wc: FINETUNE_SAMPLE_TASKS[wc.task],
        settings=result_params("finetune", *FINETUNE_RESULT_KEYS),
        seed=config["seed"],
    script:
        "../workflow_scripts/finetune_samples.py"
