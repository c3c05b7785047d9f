# Shared paths and input functions. RESULTS is results/<run_name>.
import json
import os
import re

import yaml

RESULTS = os.path.join("results", config["run_name"])
LOGS = os.path.join(RESULTS, "logs")
BENCH = os.path.join(RESULTS, "benchmarks")
DATASETS = {d["name"]: d for d in config["datasets"]}
# Files the download rule fetches (path -> {url, sha256}), from datasets with a url and config downloads.
DOWNLOADS = {}
for _d in [d for d in config["datasets"] if d.get("url")] + config["downloads"]:
    _p = os.path.normpath(_d["path"])
    if _p in DOWNLOADS and DOWNLOADS[_p]["url"] != _d["url"]:
        raise ValueError(
            f"config: {_d['path']} is to be downloaded from two URLs ({DOWNLOADS[_p]['url']}, {_d['url']})"
        )
    DOWNLOADS[_p] = {"url": _d["url"], "sha256": _d.get("sha256")}
# Settings that only change how a job runs (schema: runtime: true), per config
# section. They are never params, so changing them re-runs no finished job; the
# scripts read them from the config.
with open(os.path.join(workflow.basedir, "config", "schema.yaml")) as _f:
    RUNTIME_KEYS = {
        _section: {
            _k
            for _k, _spec in _props.get("properties", {}).items()
            if _spec.get("runtime")
        }
        for _section, _props in yaml.safe_load(_f)["properties"].items()
    }


def result_params(section, *keys, **overrides):
    """config[section] without its runtime-only keys (or only ``keys``), with ``overrides``: a job's params.

    Snakemake re-runs a finished job when its params change, so a job's params
    hold exactly the settings that change its result.
    """
    values = {
        k: v
        for k, v in config[section].items()
        if k not in RUNTIME_KEYS.get(section, ())
    }
    if keys:
        values = {k: values[k] for k in keys}
    return {**values, **overrides}


# Species of the run's samples, human first; each is normalized on its own.
SPECIES = sorted(
    {d.get("species", "human") for d in config["datasets"]},
    key=["human", "mouse"].index,
)
MODELS = config["models"]
# Human-mouse comparison settings (species.settings); all but pseudo_species need both species.
# expression_svd needs no model: per-species SVD of the normalized matrix, the linear reference.
SPECIES_SETTINGS = config["species"]["settings"] if config["species"]["enabled"] else []
if set(SPECIES_SETTINGS) - {"pseudo_species"} and SPECIES != ["human", "mouse"]:
    raise ValueError(
        f"config species.settings {SPECIES_SETTINGS}: mixed, shared and separate need human and mouse "
        f"datasets, but the run's datasets are {SPECIES}"
    )


def _stream_mode():
    """normalization.exact resolved: True when the streaming two-pass path normalizes the run."""
    norm = config["normalization"]
    exact = norm["exact"]
    archs4 = all(d["format"] == "archs4" for d in config["datasets"])
    if exact is True:
        return False
    if exact is False:
        bad = [d["name"] for d in config["datasets"] if d["format"] != "archs4"]
        if bad or norm["method"] != "binning" or norm["reference"]:
            raise ValueError(
                "config normalization.exact: false (streaming) needs ARCHS4-format datasets (not "
                f"{bad}), method binning (not {norm['method']}) and no saved reference"
            )
        return True
    if not archs4 or norm["method"] != "binning" or norm["reference"]:
        return False
    total = 0
    for d in config["datasets"]:
        if not os.path.exists(d["path"]):
            return True  # not downloaded yet: ARCHS4 files are large
        try:
            import h5py

            with h5py.File(d["path"], "r") as h5:
                total += h5["data/expression"].shape[1]
        except Exception:
            return False  # unreadable here: ingest_counts reports the problem
    return total > norm["exact_max_samples"]


# normalization.exact resolved for the run: streaming (rules/stream.smk) or in memory.
STREAM = _stream_mode()
# Ranks of a training job: one Slurm task (and on GPUs one GPU) per device and node.
TRAIN_RANKS = config["train"]["devices"] * config["train"]["num_nodes"]
TRAIN_GPUS = TRAIN_RANKS if config["train"]["accelerator"] == "gpu" else 0
# Sweep embeddings: the trained models, then the baselines (name -> kind, the
# trained embedding whose genes (and, for shuffled, vectors) it starts from,
# and for external ones the word2vec file).
BASELINES = {}
for _kind in config["sweep"]["baselines"]:
    if _kind == "shuffled":
        for _m in MODELS:
            BASELINES[f"{_m}_shuffled"] = {"kind": "shuffled", "of": _m}
    else:
        BASELINES[_kind] = {"kind": _kind, "of": MODELS[0]}
for _name, _path in config["sweep"]["external"].items():
    BASELINES[_name] = {"kind": "external", "of": MODELS[0], "path": _path}
_builtin = {"random", "svd"} | {f"{m}_shuffled" for m in MODELS}
_clash = (set(config["sweep"]["external"]) & _builtin) | (
    set(BASELINES) & (set(MODELS) | set(config["species"]["models"]))
)
if _clash:
    raise ValueError(
        f"config: baseline names {sorted(_clash)} clash with a model or a built-in baseline "
        "(rename the entry in sweep.external)"
    )
SWEEP_EMBEDDINGS = MODELS + list(BASELINES)
SWEEP_SHARDS = config["sweep"]["shards"]
SWEEP_GPUS = 1 if config["sweep"]["device"].startswith("cuda") else 0
ENV_CORE = "../envs/core.yaml"
ENV_TRAIN = "../envs/train.yaml"
ENV_ANNOTATION = "../envs/annotation.yaml"

if len(DATASETS) != len(config["datasets"]):
    raise ValueError("config datasets: names must be unique")


wildcard_constraints:
    dataset="|".join(map(re.escape, DATASETS)) if DATASETS else "NONE",
    model="|".join(sorted(set(MODELS) | set(config["species"]["models"]))),
    corpus="main|pseudo_species|shared|human|mouse",
    species="human|mouse",
    setting="mixed|shared|separate|pseudo_species|expression_svd",
    baseline="|".join(map(re.escape, BASELINES)) if BASELINES else "NONE",
    embedding="|".join(map(re.escape, SWEEP_EMBEDDINGS)),
    shard=r"\d+",
    download="|".join(map(re.escape, DOWNLOADS)) if DOWNLOADS else "(?!)",


def sweep_catalogue(wildcards):
    """The property catalogue an embedding is swept on: its own (models) or its model's (baselines)."""
    model = (
        BASELINES[wildcards.embedding]["of"]
        if wildcards.embedding in BASELINES
        else wildcards.embedding
    )
    return os.path.join(RESULTS, "sweep", model, "properties.parquet")


def gene_table():
    """The gene table in use: bundled snapshot, or the MyGene.info refresh."""
    if config["annotation"]["source"] == "mygene":
        return os.path.join(RESULTS, "annotation", "genes.tsv")
    return config["annotation"]["gene_table"]


def ortholog_table():
    """The one-to-one ortholog table in use: annotation.orthologs (ensembl) or the HCOP selection."""
    if config["annotation"]["ortholog_source"] == "hcop":
        return os.path.join(RESULTS, "annotation", "orthologs_hcop.tsv")
    return config["annotation"]["orthologs"]


def species_gene_table(species):
    """Gene table of a species: human uses gene_table(); mouse annotation.mouse_gene_table, or none
    (the ARCHS4 file's own gene annotation)."""
    if species == "human":
        return gene_table()
    return config["annotation"]["mouse_gene_table"] or []


def ingested(kind="h5", species=None):
    names = [
        n
        for n, d in DATASETS.items()
        if species is None or d.get("species", "human") == species
    ]
    return expand(os.path.join(RESULTS, "ingest", f"{{dataset}}.{kind}"), dataset=names)


def ingest_reports():
    """Per dataset the ingest report (ingest/{dataset}.json), or the shard plan when streaming."""
    if STREAM:
        return [os.path.join(RESULTS, "stream", n, "plan.json") for n in DATASETS]
    return ingested("json")


def stream_datasets(species=None):
    """Streamed datasets, in config order (all when species is None)."""
    return [
        n
        for n, d in DATASETS.items()
        if species is None or d.get("species", "human") == species
    ]


def stream_shard_files(name, species=None):
    """Input function: file `name` of every shard of the streamed datasets (of one species, or of the
    species wildcard when species is "wildcard"), in dataset then shard order; waits for plan_shards.
    """

    def files(wildcards):
        sp = wildcards.species if species == "wildcard" else species
        out = []
        for ds in stream_datasets(sp):
            plan = checkpoints.plan_shards.get(dataset=ds).output.plan
            with open(plan) as fh:
                n = len(json.load(fh)["shards"])
            out += [
                os.path.join(RESULTS, "stream", ds, f"shard_{k:05d}", name)
                for k in range(n)
            ]
        return out

    return files


def stream_token_parts(wildcards):
    """Pass-2 token folders of every shard, species in SPECIES order (the in-memory sample order)."""
    out = []
    for sp in SPECIES:
        out += stream_shard_files("tokens", sp)(wildcards)
    return out


def normalized(species, name):
    """A per-species normalization output (log_cp10m.h5, genes.tsv, bin_reference.h5, scores.h5)."""
    return os.path.join(RESULTS, "normalize", species, name)


def bin_reference_input(species):
    """normalization.reference for a species: one path (single-species runs) or {species: path}."""
    ref = config["normalization"]["reference"]
    if isinstance(ref, dict):
        ref = ref.get(species)
    elif ref and len(SPECIES) > 1:
        raise ValueError(
            "config normalization.reference: give one reference per species ({human: ..., mouse: ...})"
        )
    return [ref] if ref else []


def comparison_inputs(wildcards):
    """Checkpoints and vocabularies (and the shared-token list) of one species setting."""
    m = wildcards.model
    if wildcards.setting == "expression_svd":
        return {
            "checkpoints": [],
            "vocabs": [],
            "orthologs": ortholog_table(),
            "matrices": [normalized(sp, "log_cp10m.h5") for sp in SPECIES],
        }
    corpora = {
        "mixed": ["main"],
        "pseudo_species": ["pseudo_species"],
        "shared": ["shared"],
        "separate": ["human", "mouse"],
    }[wildcards.setting]
    out = {
        "checkpoints": [
            os.path.join(RESULTS, "models", c, m, "model.pt") for c in corpora
        ],
        "vocabs": [os.path.join(corpus_dir(c), "vocab.tsv") for c in corpora],
        "orthologs": ortholog_table(),
    }
    if wildcards.setting == "shared":
        out["shared"] = os.path.join(corpus_dir("shared"), "shared_tokens.tsv")
    return out


def corpus_dir(corpus):
    """Token directory of a training corpus."""
    if corpus == "main":
        return os.path.join(RESULTS, "tokens")
    return os.path.join(RESULTS, "species", corpus, "tokens")


def corpus_species(wildcards):
    """Species whose samples a token corpus holds (main and shared: all; human, mouse: one)."""
    return [wildcards.corpus] if wildcards.corpus in ("human", "mouse") else SPECIES


def species_outputs():
    if not SPECIES_SETTINGS:
        return {}
    return {
        m: os.path.join(RESULTS, "species", m, "summary.tsv")
        for m in config["species"]["models"]
    }


def final_outputs():
    out = [
        os.path.join(RESULTS, "summary.json"),
        os.path.join(RESULTS, "qc", "samples.parquet"),
        os.path.join(RESULTS, "tokens", "vocab.tsv"),
    ]
    if config["normalization"]["method"] == "binning":
        out += [normalized(sp, "bin_reference.h5") for sp in SPECIES]
    for m in MODELS:
        out += [
            os.path.join(RESULTS, "embeddings", f"{m}.w2v.txt"),
            os.path.join(RESULTS, "embeddings", f"{m}.parquet"),
            os.path.join(RESULTS, "sweep", m, "auc.parquet"),
            os.path.join(RESULTS, "lncrna", m, "predictions.parquet"),
            os.path.join(RESULTS, "lncrna", m, "top_predictions.tsv"),
        ]
    for b in BASELINES:
        out.append(os.path.join(RESULTS, "sweep", b, "auc.parquet"))
    if BASELINES:
        out.append(os.path.join(RESULTS, "sweep", "comparison.tsv"))
    for m in species_outputs():
        out.append(os.path.join(RESULTS, "species", m, "ortholog_ranks.parquet"))
    return out


def shard_mem_mb(wildcards, input, attempt):
    """Memory of a shard job: the shard's counts, values, sort buffer and bins (measured peak about
    15 bytes per gene of the file and sample, BENCHMARKS.md; 20 asked), 1 GB of headroom, doubled on
    each retry."""
    with open(input.plan) as fh:
        plan = json.load(fh)
    start, stop = plan["shards"][int(wildcards.shard)]
    return int(
        (1024 + plan["n_genes"] * (stop - start) * 20 / 2**20) * 2 ** (attempt - 1)
    )
