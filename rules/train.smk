# Train a model on a token corpus (main: the run's samples; pseudo_species:
# the human-mouse control corpus) and export its gene embeddings.


rule train_model:
    input:
        vocab=lambda wc: corpus_path(wc.corpus, "vocab.tsv"),
        shards=lambda wc: corpus_path(wc.corpus, "shards"),
        index=lambda wc: corpus_path(wc.corpus, "index.parquet"),
    output:
        checkpoint=os.path.join(RESULTS, "models", "{corpus}", "{model}", "model.pt"),
        metrics=os.path.join(RESULTS, "models", "{corpus}", "{model}", "metrics.csv"),
        summary=os.path.join(RESULTS, "models", "{corpus}", "{model}", "summary.json"),
        plot=report(
            os.path.join(RESULTS, "models", "{corpus}", "{model}", "loss.png"),
            caption="../report/loss.rst",
            category="2. Training",
            subcategory="{corpus}",
        ),
    log:
        os.path.join(LOGS, "train_model", "{corpus}_{model}.log"),
    benchmark:
        os.path.join(BENCH, "train_model", "{corpus}_{model}.tsv")
    conda:
        ENV_TRAIN
    threads: 2
    resources:
        # one task per device; on GPUs also one GPU per task (Slurm: --gpus, --ntasks-per-gpu)
        nodes=config["train"]["num_nodes"],
        tasks=TRAIN_RANKS,
        gpu=TRAIN_GPUS,
        tasks_per_gpu=1,
    params:
        model_type=lambda wc: wc.model,
        model=config["model"],
        length=config["tokens"]["length"],
        # settings that change the result; the comparison corpora may train for species.epochs
        train=lambda wc: result_params(
            "train",
            epochs=(
                config["species"]["epochs"] or config["train"]["epochs"]
                if wc.corpus != "main"
                else config["train"]["epochs"]
            ),
        ),
        seed=config["seed"],
    script:
        "../workflow_scripts/train_model.py"


rule export_embeddings:
    input:
        checkpoint=os.path.join(RESULTS, "models", "main", "{model}", "model.pt"),
        vocab=corpus_path("main", "vocab.tsv"),
    output:
        w2v=os.path.join(RESULTS, "embeddings", "{model}.w2v.txt"),
        parquet=os.path.join(RESULTS, "embeddings", "{model}.parquet"),
    log:
        os.path.join(LOGS, "export_embeddings", "{model}.log"),
    benchmark:
        os.path.join(BENCH, "export_embeddings", "{model}.tsv")
    conda:
        ENV_CORE
    script:
        "../workflow_scripts/export_embeddings.py"
