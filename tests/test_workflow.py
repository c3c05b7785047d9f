"""End-to-end Snakemake runs on the bundled real demo data, and bad-input runs.

The full run uses a reduced config (tiny model, short sequences, 20 properties)
so it takes about two minutes on 2 cores; the data path (QC, Binning-By-Gene,
vocabulary) is the same as the default demo's.
"""
from __future__ import annotations

import copy
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
pytestmark = pytest.mark.e2e


def _config(**overrides) -> dict:
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    for ds in cfg["datasets"]:
        ds["path"] = str(REPO / ds["path"])
    for key in ("gene_table", "orthologs", "hcop_table"):
        cfg["annotation"][key] = str(REPO / cfg["annotation"][key])
    cfg["annotation"]["gene_sets"] = [str(REPO / p) for p in cfg["annotation"]["gene_sets"]]
    for task in cfg["finetune"]["sample_tasks"]:
        task["sheet"] = str(REPO / task["sheet"])
    for section, values in overrides.items():
        if isinstance(values, dict):
            cfg[section].update(values)
        else:
            cfg[section] = values
    return cfg


def _snakemake(workdir: Path, cfg: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    (workdir / "test_config.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile",
           str(workdir / "test_config.yaml"), "-c2", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}")
    return proc


SMALL = dict(
    run_name="e2e",
    tokens={"length": 64},
    model={"n_layer": 1, "n_head": 2, "n_embd": 16, "n_inner": 32},
    train={"epochs": 2, "batch_size": 16},
    sweep={"max_properties": 20, "shards": 2},
    species={"epochs": 2},
)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("demo")
    _snakemake(workdir, _config(**copy.deepcopy(SMALL)))
    return workdir, workdir / "results" / "e2e"


def test_qc_drops_gtex_chr21_with_reason(demo_run):
    _, res = demo_run
    qc = pd.read_parquet(res / "qc" / "samples.parquet")
    assert list(qc.columns) == ["sample_id", "dataset", "total_counts", "detected_genes", "singlecell_probability",
                                "passed", "reason", "series_id", "n_reads", "n_pseudoaligned"]
    # the contract's columns, then series_id, then the FASTQ datasets' read counts (null: these came as counts)
    assert qc["n_reads"].isna().all() and qc["n_pseudoaligned"].isna().all()
    assert pq.read_schema(res / "qc" / "samples.parquet").field("reason").type == pa.string()
    assert len(qc) == 123 and qc["passed"].sum() == 93
    by = qc.groupby("series_id")["passed"].agg(["sum", "count"]).to_dict("index")
    assert by == {"airway_GSE52778": {"sum": 8, "count": 8}, "geuvadis_lcl": {"sum": 85, "count": 85},
                  "gtex_lung_chr21": {"sum": 0, "count": 30}}
    gtex = qc[qc["series_id"] == "gtex_lung_chr21"]
    assert (gtex["detected_genes"] < 2000).all()
    assert set(gtex["reason"]) == {"total_counts < 1000000; detected_genes <= 2000"}
    assert qc.loc[qc["passed"], "reason"].isna().all()
    assert (res / "qc" / "qc.png").stat().st_size > 10_000


def test_vocab_and_tokens(demo_run):
    _, res = demo_run
    vocab = pd.read_csv(res / "tokens" / "vocab.tsv", sep="\t", keep_default_na=False)
    assert list(vocab.columns) == ["token_id", "token", "ensembl_id", "symbol", "biotype", "species"]
    assert vocab["token"].head(3).tolist() == ["<pad>", "<mask>", "<cls>"]
    assert vocab["token_id"].tolist() == list(range(len(vocab)))
    genes = vocab.iloc[3:]
    assert genes["biotype"].value_counts().to_dict() == {"protein_coding": 12547, "lncRNA": 622}
    assert (genes["species"] == "human").all() and genes["token"].str.startswith("ENSG").all()
    index = pd.read_parquet(res / "tokens" / "index.parquet")
    assert (index["split"] == "validation").sum() == 9 and (index["n_tokens"] == 64).all()
    shard = np.load(res / "tokens" / "shards" / "genes_00000.npy")
    assert shard.shape == (93, 64) and shard.min() >= 3
    assert all(len(set(row)) == 64 for row in shard)  # distinct genes in every sequence
    ref = res / "normalize" / "human" / "bin_reference.h5"
    assert ref.exists()


@pytest.mark.parametrize("model", ["gpt", "bert_pred_genes", "bert_pred_expr"])
def test_embeddings_contract(demo_run, model):
    _, res = demo_run
    lines = (res / "embeddings" / f"{model}.w2v.txt").read_text().splitlines()
    assert lines[0] == "13169 16"
    assert len(lines) == 13170 and len(lines[1].split()) == 17
    table = pq.read_table(res / "embeddings" / f"{model}.parquet")
    assert table.column_names == ["token", "ensembl_id", "symbol", "biotype", "species", "embedding"]
    etype = table.schema.field("embedding").type
    assert pa.types.is_list(etype) and etype.value_type == pa.float32()
    assert len(table.column("embedding")[0]) == 16
    assert table.num_rows == 13169


def test_sweep_lncrna_species_and_summary(demo_run):
    workdir, res = demo_run
    auc = pd.read_parquet(res / "sweep" / "gpt" / "auc.parquet")
    assert list(auc.columns) == ["source", "term_id", "term_name", "n_positive", "auc", "average_precision",
                                 "n_iter", "converged"]  # the contract's columns, then the solver's
    assert len(auc) == 20 and auc["auc"].between(0, 1).all() and auc["n_positive"].between(10, 500).all()
    assert auc["converged"].all()
    # two shards (SMALL sets sweep.shards: 2), gathered in catalogue order
    assert sorted(p.name for p in (res / "sweep" / "gpt" / "shards").iterdir()) == ["0.parquet", "1.parquet"]
    cat = pd.read_parquet(res / "sweep" / "gpt" / "properties.parquet")
    assert list(auc["term_id"]) == list(cat.loc[cat["kept"], "term_id"])
    assert cat["kept"].sum() == 20 and cat["reason"].str.startswith("near-duplicate").sum() > 0
    pred = pd.read_parquet(res / "lncrna" / "gpt" / "predictions.parquet")
    assert list(pred.columns) == ["ensembl_id", "symbol", "source", "term_id", "probability"]
    assert len(pred) == 622 * 20 and pred["probability"].between(0, 1).all()
    top = pd.read_csv(res / "lncrna" / "gpt" / "top_predictions.tsv", sep="\t")
    assert len(top) == 622 * 20 and top.groupby("ensembl_id")["rank"].max().eq(20).all()
    # baselines swept on the same properties, and compared with each model
    for name in ("random", "svd", "gpt_shuffled", "bert_pred_expr_shuffled"):
        b = pd.read_parquet(res / "sweep" / name / "auc.parquet")
        assert b["auc"].between(0, 1).all()
        assert list(b["term_id"]) == list(auc["term_id"])  # the gpt model's catalogue (svd, random: the first model)
    cmp_ = pd.read_csv(res / "sweep" / "comparison.tsv", sep="\t")
    overall = cmp_[cmp_["source"] == "all"]
    # 3 models and their 3 contextual embeddings, each against 5 baselines
    assert len(overall) == 6 * 5 and set(overall["baseline"]) == {"random", "svd", "gpt_shuffled",
                                                                  "bert_pred_genes_shuffled",
                                                                  "bert_pred_expr_shuffled"}
    static = overall[~overall["embedding"].str.endswith("_contextual")]
    assert (static["properties"] == 20).all() and static["p_value"].between(0, 1).all()
    # a contextual embedding covers the genes its 64-token sequences hold: properties with fewer than 5
    # members among them have no AUC and drop out of the paired comparison
    contextual = overall[overall["embedding"].str.endswith("_contextual")]
    assert contextual["properties"].between(10, 20).all(), contextual
    ranks = pd.read_parquet(res / "species" / "gpt" / "ortholog_ranks.parquet")
    assert list(ranks.columns) == ["human_ensembl_id", "mouse_ensembl_id", "split", "rank", "cosine",
                                   "shared_token", "setting"]  # the contract's columns, then the setting's
    assert set(ranks["setting"]) == {"pseudo_species", "pseudo_species_shuffled"}
    assert set(ranks["split"]) == {"train", "test"} and ranks["rank"].min() >= 1
    assert len(ranks) > 10_000 and ranks["mouse_ensembl_id"].str.startswith("ENSMUSG").all()
    pseudo_vocab = pd.read_csv(res / "species" / "pseudo_species" / "tokens" / "vocab.tsv", sep="\t",
                               keep_default_na=False)
    assert pseudo_vocab.loc[pseudo_vocab["species"] == "mouse", "token"].str.startswith("m_ENSMUSG").all()
    summary = json.loads((res / "summary.json").read_text())
    assert {"qc", "vocab", "train", "sweep", "lncrna", "species"} <= set(summary)
    assert summary["qc"] == {"samples": 123, "passed": 93, "failed": 30,
                             "failure_reasons": {"total_counts < 1000000": 30, "detected_genes <= 2000": 30},
                             "passed_by_series": {"airway_GSE52778": 8, "geuvadis_lcl": 85, "gtex_lung_chr21": 0}}
    assert summary["vocab"]["size"] == 13172
    assert summary["lncrna"]["gpt"]["predictions"] == 622 * 20
    assert summary["sweep"]["gpt"]["catalogue"]["kept"] == 20 and summary["sweep"]["svd"]["properties"] == 20
    assert len(summary["sweep_comparison"]) == 30
    for model, classes in (("gpt", 13172), ("bert_pred_genes", 13172), ("bert_pred_expr", 101)):
        t = summary["train"][model]
        assert t["model_type"] == model and t["epochs"] == 2 and t["steps"] == 2 * 6  # 84 samples / batch 16
        assert 0 < t["final_val_loss"] < np.log(classes) + 0.5, t  # at most a little above a uniform guess
        assert (res / "models" / "main" / model / "checkpoints" / "last.ckpt").exists()
    assert set(summary["species"]) == {"gpt"}  # species.models: the GPT only
    assert 0 <= summary["species"]["gpt"]["pseudo_species_test"]["top10"] <= 1
    assert summary["species"]["gpt"]["pseudo_species_all"]["pairs"] == len(ranks) // 2
    best = pd.read_parquet(res / "species" / "gpt" / "pseudo_species" / "best_match.parquet")
    assert set(best["species"]) == {"human", "mouse"} and best["cosine"].between(-1, 1).all()
    ingest = summary["ingest"][0]["genes"]
    assert ingest["genes_in_source"] == 52_469 and ingest["matched"] == 52_469


@pytest.mark.parametrize("model", ["gpt", "bert_pred_genes", "bert_pred_expr"])
def test_model_use_outputs(demo_run, model):
    """Sample and contextual embeddings, the demo's perturbation run and the attention analysis, per model."""
    workdir, res = demo_run
    smp = pd.read_parquet(res / "samples" / model / "embeddings.parquet")
    assert list(smp.columns) == ["sample_id", "dataset", "series_id", "species", "split", "embedding"]
    idx = pd.read_parquet(res / "tokens" / "index.parquet")
    assert smp["sample_id"].tolist() == idx["sample_id"].tolist() and len(smp) == 93
    assert {len(e) for e in smp["embedding"]} == {16} and np.isfinite(np.stack(smp["embedding"])).all()
    sil = pd.read_csv(res / "samples" / model / "silhouette.tsv", sep="\t")
    assert set(zip(sil["space"], sil["labels"])) == {(s, lab) for s in ("model", "expression_pca")
                                                     for lab in ("dataset", "series_id")}
    by_series = sil[sil["labels"] == "series_id"].set_index("space")
    assert by_series["n_labels"].eq(2).all() and by_series["silhouette"].between(-1, 1).all()
    assert sil.loc[sil["labels"] == "dataset", "silhouette"].isna().all()  # one dataset: undefined
    ctx = pd.read_parquet(res / "embeddings" / f"{model}_contextual.parquet")
    assert list(ctx.columns) == ["token", "ensembl_id", "symbol", "biotype", "species", "n_samples", "embedding"]
    assert ctx["n_samples"].between(1, 93).all()
    # every gene token of the sequences the model reads, and no other
    genes = np.concatenate([np.load(f) for f in sorted((res / "tokens" / "shards").glob("genes_*.npy"))])
    if model == "gpt":
        genes = genes[:, :-1]
    vocab = pd.read_csv(res / "tokens" / "vocab.tsv", sep="\t", keep_default_na=False)
    counts = np.bincount(genes[genes > 0].astype(np.int64), minlength=len(vocab))
    seen = vocab.loc[counts > 0, "token"]
    assert sorted(ctx["token"]) == sorted(seen)
    assert ctx.set_index("token")["n_samples"].to_dict() == dict(zip(seen, counts[counts > 0]))
    auc = pd.read_parquet(res / "sweep" / f"{model}_contextual" / "auc.parquet")
    assert list(auc["term_id"]) == list(pd.read_parquet(res / "sweep" / model / "auc.parquet")["term_id"])
    g = pd.read_parquet(res / "perturbation" / "hla_dra_overexpress" / model / "gene_shifts.parquet")
    assert list(g.columns) == ["ensembl_id", "symbol", "token", "mean_shift", "null_mean_shift", "excess_shift",
                               "n_samples", "p_value", "fdr", "z_score", "p_value_normal", "fdr_normal",
                               "p_value_less", "fdr_less", "p_value_normal_less", "fdr_normal_less"]
    assert "HLA-DRA" not in set(g["symbol"]) and g["p_value"].between(1 / 101, 1).all()
    assert g["p_value_less"].between(1 / 101, 1).all() and (g["p_value"] + g["p_value_less"] >= 1 + 1 / 101 - 1e-12).all()
    assert g["p_value"].is_monotonic_increasing and (g["fdr"] >= g["p_value"] - 1e-12).all()
    s = pd.read_parquet(res / "perturbation" / "hla_dra_overexpress" / model / "sample_shifts.parquet")
    assert len(s) == 85 and set(s["series_id"]) == {"geuvadis_lcl"} and (s["shift"] >= 0).all()
    heads = pd.read_csv(res / "attention" / model / "heads.tsv", sep="\t")
    assert heads[["layer", "head"]].values.tolist() == [[1, 1], [1, 2]]  # SMALL: 1 layer, 2 heads
    assert heads["set_genes_seen"].gt(10).all() and heads["p_value"].between(1 / 1001, 1).all()
    assert (heads["entropy"] <= heads["uniform_entropy"] + 1e-9).all()
    summary = json.loads((res / "summary.json").read_text())
    assert summary["perturbation"]["hla_dra_overexpress"][model]["samples"] == 85
    steadied = summary["perturbation"]["hla_dra_overexpress"][model]["steadied_genes"]
    assert [r["ensembl_id"] for r in steadied] == list(g.sort_values(["z_score", "excess_shift"], kind="stable")
                                                       .dropna(subset=["z_score"])["ensembl_id"].head(10))
    assert summary["attention"][model]["heads"] == 2
    assert summary["contextual"][model]["genes"] == len(ctx)
    assert set(summary["samples"][model]) == {f"{s}_human_{lab}" for s in ("model", "expression_pca")
                                              for lab in ("dataset", "series_id")}
    # fine-tuning: the demo's gene task and its sex task (one study: stratified folds), beside their baselines
    tf = json.loads((res / "finetune" / model / "transcription_factors" / "metrics.json").read_text())
    sex = json.loads((res / "finetune" / model / "sex" / "metrics.json").read_text())
    assert tf["scheme"] == "stratified_over_genes" and tf["positives"] > 100 and tf["negatives"] > 1000
    assert set(tf["mean"]) == {"finetuned", "static_embedding"} and len(tf["per_fold"]) == 10
    assert all(np.isfinite(r["auc"]) for r in tf["per_fold"])  # every gene occurs where the model reads
    tf_pred = pd.read_parquet(res / "finetune" / model / "transcription_factors" / "predictions.parquet")
    assert (tf_pred["n_occurrences"] > 0).all() and tf_pred["probability"].notna().all()
    assert not (res / "finetune" / model / "transcription_factors" / "checkpoints").exists()
    assert sex["scheme"] == "stratified" and sex["samples_per_label"] == {"female": 41, "male": 44}
    assert set(sex["mean"]) == {"finetuned", "expression_pca"}
    assert sex["mean"]["expression_pca"]["auc"] > 0.8  # Y-chromosome genes separate the sexes in the PCA
    pred = pd.read_parquet(res / "finetune" / model / "sex" / "predictions.parquet")
    assert len(pred) == 85 and pred["fold"].value_counts().eq(17).all()
    assert set(summary["finetune"][model]) == {"transcription_factors", "sex"}


def test_model_analysis_commands_on_the_run(demo_run, tmp_path):
    """generain embed-samples / perturb / attention on a finished run give the workflow's outputs."""
    from generain.cli import main

    workdir, res = demo_run
    assert main(["embed-samples", "--run", str(res), "--model", "bert_pred_genes", "--out", str(tmp_path / "e")]) == 0
    a = pd.read_parquet(tmp_path / "e" / "embeddings.parquet")
    b = pd.read_parquet(res / "samples" / "bert_pred_genes" / "embeddings.parquet")
    np.testing.assert_allclose(np.stack(a["embedding"]), np.stack(b["embedding"]), atol=1e-6)
    assert main(["perturb", "--run", str(res), "--model", "gpt", "--genes", "HLA-DRA", "--mode", "overexpress",
                 "--series", "geuvadis_lcl", "--out", str(tmp_path / "p")]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "p" / "gene_shifts.parquet"),
                                  pd.read_parquet(res / "perturbation" / "hla_dra_overexpress" / "gpt" /
                                                  "gene_shifts.parquet"))
    assert main(["attention", "--run", str(res), "--model", "gpt", "--gene-sets",
                 str(REPO / "resources/annotation/gene_sets.parquet"), "--out", str(tmp_path / "a")]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "a" / "heads.tsv", sep="\t"),
                                  pd.read_csv(res / "attention" / "gpt" / "heads.tsv", sep="\t"))
    # bad input: an unknown gene, a selection with no samples, a run without the model
    assert main(["perturb", "--run", str(res), "--model", "gpt", "--genes", "HLA-DRX", "--mode", "delete",
                 "--out", str(tmp_path / "x")]) == 2
    assert main(["perturb", "--run", str(res), "--model", "gpt", "--genes", "HLA-DRA", "--mode", "delete",
                 "--series", "nope", "--out", str(tmp_path / "y")]) == 2
    assert main(["attention", "--run", str(tmp_path), "--model", "gpt", "--out", str(tmp_path / "z")]) == 2
    # generain finetune: the workflow's sex task (same settings and seed: the same figures) and a bad sheet
    assert main(["finetune", "--run", str(res), "--model", "gpt", "--sample-task",
                 f"{REPO / 'resources/demo/sample_labels.tsv'}:sex", "--out", str(tmp_path / "sex")]) == 0
    got = json.loads((tmp_path / "sex" / "metrics.json").read_text())
    want = json.loads((res / "finetune" / "gpt" / "sex" / "metrics.json").read_text())
    assert got["mean"] == want["mean"] and got["scheme"] == "stratified"
    assert main(["finetune", "--run", str(res), "--model", "gpt", "--sample-task",
                 f"{REPO / 'resources/demo/sample_labels.tsv'}:nope", "--out", str(tmp_path / "bad")]) == 2


def test_rerun_has_nothing_to_do_and_report_builds(demo_run):
    workdir, res = demo_run
    cfg = _config(**copy.deepcopy(SMALL))
    proc = _snakemake(workdir, cfg, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr
    _snakemake(workdir, cfg, "--report", str(res / "report.html"))
    html = (res / "report.html").read_text(errors="ignore")
    assert len(html) > 100_000 and "qc.png" in html


def _runtime_keys() -> dict[str, dict]:
    """The config keys schema.yaml marks ``runtime: true``: section -> {key: its schema entry}."""
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())["properties"]
    return {sec: {k: v for k, v in spec.get("properties", {}).items() if v.get("runtime")}
            for sec, spec in schema.items() if isinstance(spec, dict)}


def _other_value(spec: dict, value):
    """A valid value different from ``value`` for a schema entry."""
    if spec["type"] == "boolean":
        return not value
    if spec["type"] == "integer":
        return value + 1
    if "enum" in spec:
        return next(v for v in spec["enum"] if v != value)
    assert spec.get("pattern", "").startswith("^(cpu|cuda"), spec  # the torch device keys
    return "cuda" if value == "cpu" else "cpu"


def test_runtime_only_settings_rerun_nothing(demo_run):
    """After a finished run, changing every setting marked runtime: true in the schema plans no job."""
    workdir, res = demo_run
    cfg = _config(**copy.deepcopy(SMALL))
    changed = []
    for section, keys in _runtime_keys().items():
        for key, spec in keys.items():
            cfg.setdefault(section, {})
            before = cfg[section].get(key, spec["default"])
            cfg[section][key] = _other_value(spec, before)
            changed.append(f"{section}.{key}: {before!r} -> {cfg[section][key]!r}")
    assert len(changed) >= 9, changed
    proc = _snakemake(workdir, cfg, "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr, "\n".join(changed) + "\n" + proc.stdout[-4000:]
    # and a setting that changes results does plan jobs: the check can fail
    cfg = _config(**copy.deepcopy(SMALL))
    cfg["sweep"]["score_tol"] = 0.1
    proc = _snakemake(workdir, cfg, "-n")
    assert "sweep_properties" in proc.stdout and "Nothing to be done" not in proc.stdout + proc.stderr


def test_readme_lists_the_runtime_only_settings():
    import re

    readme = (REPO / "README.md").read_text()
    section = re.search(r"### Runtime-only settings\n(.*?)\n#", readme, flags=re.S)
    assert section, "README has no 'Runtime-only settings' section"
    listed = set(re.findall(r"^\| `(\w+\.\w+)` \|", section.group(1), flags=re.M))  # the table's first column
    schema = {f"{sec}.{k}" for sec, keys in _runtime_keys().items() for k in keys}
    assert listed == schema


def test_two_process_ddp_through_the_workflow(demo_run):
    """train.devices: 2 on CPU: the train rule starts 2 ranks (gloo) and trains with world size 2."""
    workdir, res = demo_run
    cfg = _config(**copy.deepcopy(SMALL))
    cfg["train"]["devices"] = 2
    _snakemake(workdir, cfg, "results/e2e/models/main/gpt/summary.json")  # params changed: retrains
    s = json.loads((res / "models" / "main" / "gpt" / "summary.json").read_text())
    assert s["world_size"] == 2 and s["effective_batch"] == 32
    assert s["steps"] == 2 * 3  # 84 samples over 2 ranks = 42 each, batch 16: 3 steps per epoch
    log = (res / "logs" / "train_model" / "main_gpt.log").read_text()
    assert "launching 2 training processes" in log and "MEMBER: 2/2" in log


# ---------------------------------------------------------------------------
# bad input: the run stops with a message naming the file or key, and leaves
# no output that looks finished
# ---------------------------------------------------------------------------

def _qc_target(workdir: Path) -> list[str]:
    return ["results/e2e/qc/samples.parquet"]  # relative to the working directory (-d)


def _assert_fails(workdir: Path, cfg: dict, *messages: str, failed_step: str = "ingest") -> str:
    proc = _snakemake(workdir, cfg, *_qc_target(workdir), check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-2000:]
    for m in messages:
        assert m in out, f"{m!r} not in output:\n{out[-4000:]}"
    results = workdir / "results" / "e2e"
    files = [p for p in results.rglob("*") if p.is_file()] if results.exists() else []
    left = [p for p in files if failed_step in p.relative_to(results).parts[:1] or ".tmp" in p.name]
    assert left == [], f"the failed {failed_step} step left outputs behind: {left}"
    return out


def _dataset(path: Path, fmt: str) -> list[dict]:
    return [{"name": "bad", "path": str(path), "format": fmt, "species": "human"}]


def test_missing_hdf5(tmp_path):
    _assert_fails(tmp_path, _config(run_name="e2e", datasets=_dataset(tmp_path / "absent.h5", "archs4")),
                  "absent.h5")


def test_corrupt_hdf5(tmp_path):
    bad = tmp_path / "corrupt.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00garbage" * 200)
    out = _assert_fails(tmp_path, _config(run_name="e2e", datasets=_dataset(bad, "archs4")),
                        "corrupt.h5: not a readable HDF5 file")
    assert not (tmp_path / "results" / "e2e" / "ingest" / "bad.h5").exists(), out


def test_negative_and_fractional_counts(tmp_path):
    neg = tmp_path / "neg.tsv.gz"
    with gzip.open(neg, "wt") as fh:
        fh.write("gene\tS1\tS2\nENSG00000000003\t5\t-2\n")
    _assert_fails(tmp_path, _config(run_name="e2e", datasets=_dataset(neg, "table")),
                  "neg.tsv.gz: counts contain negative values")
    frac = tmp_path / "frac.csv"
    frac.write_text("gene,S1\nENSG00000000003,2.5\n")
    _assert_fails(tmp_path, _config(run_name="e2e", datasets=_dataset(frac, "table")),
                  "frac.csv: counts must be whole numbers", "set the dataset's counts: estimated")


def test_gene_ids_matching_nothing(tmp_path):
    t = tmp_path / "mouse_ids.tsv"
    t.write_text("gene\tS1\nENSMUSG00000000001\t5\nFOO\t3\n")
    _assert_fails(tmp_path, _config(run_name="e2e", datasets=_dataset(t, "table")),
                  "mouse_ids.tsv: none of its 2 gene ids match the annotation")


def test_entrez_symbol_entrez_and_estimated_tables_run_through_the_workflow(tmp_path):
    """The demo's own counts (real GEUVADIS samples) written three ways users get count tables: GEO's generated
    matrix (NCBI GeneID rows, id_type auto), a TCGA-style SYMBOL|ENTREZ table (some symbols "?"), and estimated
    counts (Ensembl ids with versions, fractional values within 0.45 of the counts, counts: estimated). Each
    ingests to exactly the demo's counts of the same genes and samples, and the run tokenizes all three."""
    from generain import annotation, io

    cfg = _config(run_name="tables")
    cm = io.read_archs4(cfg["datasets"][0]["path"], progress=False)
    genes = annotation.read_gene_table(cfg["annotation"]["gene_table"])
    demo, _ = annotation.harmonize_genes(cm, genes)
    g = genes.set_index("ensembl_id").loc[demo.gene_ids]
    n_ent = genes["entrez_id"].value_counts()
    unique = (g["entrez_id"].notna() & g["entrez_id"].map(n_ent).eq(1)).to_numpy()
    ent = g["entrez_id"].to_numpy()
    rng = np.random.default_rng(0)
    groups = {"geo_ncbi": slice(0, 12), "tcga": slice(12, 24), "rsem": slice(24, 36)}
    datasets, expected = [], {}
    for name, cols in groups.items():
        counts = demo.counts[:, cols]
        samples = demo.sample_ids[cols]
        if name == "geo_ncbi":
            ids, rows = [str(int(e)) for e in ent[unique]], np.flatnonzero(unique)
            frame = pd.DataFrame(counts[rows], index=pd.Index(ids, name="GeneID"), columns=samples)
            path, opts = tmp_path / "GSE1_raw_counts_GRCh38.p13_NCBI.tsv.gz", {}
        elif name == "tcga":
            rows = np.flatnonzero(unique)
            sym = g["symbol"].to_numpy()[rows].astype(object)
            sym[::7] = "?"  # TCGA's unknown symbols: matched by the Entrez part alone
            ids = [f"{s}|{int(e)}" for s, e in zip(sym, ent[rows])]
            frame = pd.DataFrame(counts[rows], index=pd.Index(ids, name="gene_id"), columns=samples)
            path, opts = tmp_path / "tcga_legacy.tsv", {}
        else:
            rows = np.arange(len(demo.gene_ids))
            est = counts + np.where(counts > 0, rng.uniform(-0.45, 0.45, counts.shape), rng.uniform(0, 0.45, counts.shape))
            frame = pd.DataFrame(est, index=pd.Index([f"{e}.7" for e in demo.gene_ids], name="gene"), columns=samples)
            path, opts = tmp_path / "rsem_expected_counts.tsv", {"counts": "estimated"}
        frame.to_csv(path, sep="\t")
        datasets.append({"name": name, "path": str(path), "format": "table", "species": "human", **opts})
        expected[name] = (demo.gene_ids[rows], counts[rows], samples)
    cfg["datasets"] = datasets
    targets = [f"results/tables/ingest/{n}.json" for n in groups] + ["results/tables/tokens/index.parquet"]
    _snakemake(tmp_path, cfg, *targets)
    res = tmp_path / "results" / "tables"
    for name, (ens, counts, samples) in expected.items():
        m = io.read_matrix(res / "ingest" / f"{name}.h5")
        assert m.samples["sample_id"].tolist() == list(samples)
        assert sorted(m.genes["ensembl_id"]) == sorted(ens), name
        order = pd.Index(m.genes["ensembl_id"]).get_indexer(ens)
        np.testing.assert_array_equal(m.matrix[order], counts, err_msg=name)
    reports = {n: json.loads((res / "ingest" / f"{n}.json").read_text()) for n in groups}
    n_unique = int(unique.sum())
    assert reports["geo_ncbi"]["genes"]["by_id_type"] == {
        "entrez": {"ids": n_unique, "matched": n_unique, "unmatched": 0, "collapsed_duplicates": 0}}
    assert reports["tcga"]["genes"]["by_id_type"] == {
        "symbol_entrez": {"ids": n_unique, "matched": n_unique, "unmatched": 0, "collapsed_duplicates": 0}}
    assert reports["rsem"]["counts"] == "estimated" and reports["rsem"]["genes"]["matched"] == len(demo.gene_ids)
    log = (res / "logs" / "ingest_counts" / "geo_ncbi.log").read_text()
    assert f"gene ids read as {n_unique} NCBI GeneIDs (whole numbers) (id_type: auto)" in log
    index = pd.read_parquet(res / "tokens" / "index.parquet")
    assert len(index) == 36 and index["n_tokens"].min() > 0


def test_gtf_annotation_runs_through_the_workflow(tmp_path):
    """annotation.gtf.human = GENCODE v36's gene records as GTF (tests/data): read_gtf makes the gene table with
    pysam, and the demo tokenizes to the same vocabulary as with the bundled table built from the same release."""
    gtf = REPO / "tests" / "data" / "gencode.v36.genes.gtf.gz"
    cfg = _config(run_name="gtf", annotation={"gtf": {"human": str(gtf)}})
    base = _config(run_name="bundled")
    _snakemake(tmp_path, cfg, "results/gtf/tokens/vocab.tsv")
    _snakemake(tmp_path, base, "results/bundled/tokens/vocab.tsv")
    res = tmp_path / "results" / "gtf"
    assert (res / "tokens" / "vocab.tsv").read_text() == (tmp_path / "results" / "bundled" / "tokens" /
                                                          "vocab.tsv").read_text()
    genes = pd.read_csv(res / "annotation" / "human" / "genes.tsv", sep="\t")
    assert len(genes) == 60_616 and list(genes.columns) == ["ensembl_id", "symbol", "biotype", "entrez_id",
                                                            "chromosome", "start", "end", "strand"]
    assert (res / "annotation" / "human" / "annotation.gz.tbi").exists()
    # a GTF whose genes match none of the dataset's ids: the error names the GTF
    other = tmp_path / "other_species.gtf"
    other.write_text('1\tx\tgene\t1\t10\t.\t+\t.\tgene_id "ENSDARG00000000001"; gene_name "z"; '
                     'gene_type "protein_coding";\n')
    bad = _config(run_name="e2e", annotation={"gtf": {"human": str(other)}})
    _assert_fails(tmp_path, bad, "none of its 52469 gene ids match the annotation (" + str(other))


def test_unknown_config_key(tmp_path):
    cfg = _config(run_name="e2e")
    cfg["qc"]["min_total_count"] = 5  # typo of min_total_counts
    _assert_fails(tmp_path, cfg, "min_total_count", "was unexpected")


def test_qc_that_passes_no_sample(tmp_path):
    out = _assert_fails(tmp_path, _config(run_name="e2e", qc={"min_total_counts": 10**12}),
                        "0 of 123 samples passed QC: 123 total_counts < 1000000000000, 30 detected_genes <= 2000",
                        failed_step="qc")
    assert "Traceback" not in out.split("0 of 123 samples passed QC")[0][-300:]


# ---------------------------------------------------------------------------
# workflow hygiene
# ---------------------------------------------------------------------------

def _job_counts(text: str) -> dict[str, int]:
    block = text.split("Job stats:")[1].split("total")[0]
    rows = [line.split() for line in block.splitlines()[3:] if line.strip()]
    return {r[0]: int(r[1]) for r in rows}


def test_hcop_orthologs_feed_the_species_rules(tmp_path):
    """annotation.ortholog_source: hcop puts select_orthologs in front of every rule that reads orthologs."""
    cfg = _config(run_name="hcop", annotation={"ortholog_source": "hcop", "hcop_min_sources": 8})
    plan = _snakemake(tmp_path, cfg, "-n").stdout
    table = "results/hcop/annotation/orthologs_hcop.tsv"
    pseudo = plan[plan.index("rule make_pseudo_species:"):].split("\n")[1]
    assert pseudo.startswith("    input:") and table in pseudo
    _snakemake(tmp_path, cfg, table)
    pairs = pd.read_csv(tmp_path / table, sep="\t")
    assert len(pairs) == 16_407 and pairs["n_sources"].min() == 8  # as in test_annotation
    assert not pairs["human_ensembl_id"].duplicated().any() and not pairs["mouse_ensembl_id"].duplicated().any()


def test_rules_are_formatted_with_snakefmt():
    proc = subprocess.run([sys.executable, "-m", "snakefmt", "--check", "Snakefile", "rules"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"run snakefmt Snakefile rules/:\n{proc.stdout}{proc.stderr}"


# Runs snakemake's command line in this process with every file open recorded: Python-level opens through
# the "open" audit event, HDF5 files through h5py.File (the HDF5 library opens them in C).
_RECORD_OPENS = """
import json, os, sys
import h5py
opened = []
def hook(event, args):
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        opened.append(os.path.abspath(os.fsdecode(args[0])))
sys.addaudithook(hook)
_init = h5py.File.__init__
def init(self, name, *a, **k):
    opened.append(os.path.abspath(os.fsdecode(name)))
    return _init(self, name, *a, **k)
h5py.File.__init__ = init
from snakemake.cli import main
try:
    main(sys.argv[2:])
finally:
    with open(sys.argv[1], "w") as fh:
        json.dump(opened, fh)
"""


@pytest.mark.parametrize("exact", [True, False])
def test_parsing_opens_no_input_file(tmp_path, exact):
    """Planning a run opens none of its count files (in memory or streaming), so the plan cannot depend on them."""
    cfg = _config(run_name="e2e", normalization={"exact": exact})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    log = tmp_path / "opened.json"
    proc = subprocess.run([sys.executable, "-c", _RECORD_OPENS, str(log), "-s", str(REPO / "Snakefile"), "-d",
                           str(tmp_path), "--configfile", str(tmp_path / "c.yaml"), "-n", "-c1"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    opened = set(json.loads(log.read_text()))
    assert any(p.endswith("schema.yaml") for p in opened)  # the recording works
    inputs = {str(Path(d["path"]).resolve()) for d in cfg["datasets"]}
    assert not opened & inputs, sorted(opened & inputs)
    planned = "plan_shards" if not exact else "normalize_counts"
    assert planned in proc.stdout, proc.stdout[-3000:]


def test_generated_config_plans_from_a_clean_results_folder(tmp_path):
    """The documented generated human-mouse run plans from an empty folder: the files do not exist yet, and the
    in-memory path (normalization.exact: true, the default) is planned whatever the files will hold."""
    for folder in ("config", "resources"):  # the config's relative paths, as in a fresh checkout
        (tmp_path / folder).symlink_to(REPO / folder)
    proc = subprocess.run([*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--configfile",
                           str(REPO / "config" / "generated_human_mouse.yaml"), "-n", "-c2"],
                          capture_output=True, text=True, timeout=600, cwd=REPO)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "simulate_human_mouse" in out and "normalize_counts" in out and "scan_shard" not in out, out[-3000:]


@pytest.mark.parametrize("configfile", [None, "config/archs4_mouse.yaml", "config/geneformer.yaml"])
def test_lint_is_clean(configfile):
    """The demo; the streaming rules; Geneformer's preset."""
    extra = ["--configfile", configfile] if configfile else []
    proc = subprocess.run([*SNAKEMAKE, "--lint", *extra], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "Lints for" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_slurm_profile_plans_the_same_jobs(tmp_path):
    """Dry runs with the local and the Slurm profile schedule the same jobs.

    The Slurm profile turns conda on for clusters; conda is not installed on the
    development machines, so the test uses a copy without that one line.
    """
    profile = tmp_path / "slurm"
    shutil.copytree(REPO / "profiles" / "slurm", profile)
    text = (profile / "config.yaml").read_text()
    (profile / "config.yaml").write_text(text.replace("software-deployment-method: conda", ""))
    common = ["-n", "-F", "--nolock", "--config", "run_name=dryrun_test"]
    local = subprocess.run([*SNAKEMAKE, *common, "-c2"], cwd=REPO, capture_output=True, text=True, timeout=300)
    slurm = subprocess.run([*SNAKEMAKE, *common, "--profile", str(profile)], cwd=REPO, capture_output=True,
                           text=True, timeout=300)
    assert local.returncode == 0, local.stderr[-3000:]
    assert slurm.returncode == 0, slurm.stderr[-3000:]
    a, b = _job_counts(local.stdout + local.stderr), _job_counts(slurm.stdout + slurm.stderr)
    assert a == b and a["train_model"] == 4 and a["ingest_counts"] == 1
    # 3 models, their 3 contextual embeddings, random, svd, 3 shuffled; 1 shard
    assert a["sweep_properties"] == 11 and a["make_baseline"] == 5
    assert a["embed_samples"] == a["perturb_genes"] == a["attention_heads"] == 3
    assert a["finetune_genes"] == a["finetune_samples"] == 3


def test_sweep_agrees_with_sklearn_on_the_demo_embedding(demo_run):
    """A sample of the e2e run's properties refit with scikit-learn on the same folds: |dAUC| <= 0.01."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from generain import annotation, classifier, embed, sweep

    _, res = demo_run
    table = embed.read_embeddings(res / "embeddings" / "gpt.parquet")
    pc = table[table["biotype"] == "protein_coding"].reset_index(drop=True)
    x, genes = embed.embedding_matrix(pc), pc["ensembl_id"].to_numpy()
    auc = pd.read_parquet(res / "sweep" / "gpt" / "auc.parquet").iloc[::4]  # 5 of the 20
    cfg = _config(**copy.deepcopy(SMALL))
    sets = pl.concat([annotation.read_gene_sets(p) for p in cfg["annotation"]["gene_sets"]]).unique()
    y = sweep.memberships(sets, auc, genes).toarray()
    seed = cfg["seed"]
    seeds = np.array([classifier.property_seed(seed, s, t) for s, t in zip(auc["source"], auc["term_id"])])
    folds = classifier.stratified_folds(y, n_folds=5, seeds=seeds)
    for j, row in enumerate(auc.itertuples()):
        ref = []
        for f in range(5):
            tr, te = folds[j] != f, folds[j] == f
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-8))
            ref.append(roc_auc_score(y[j, te], clf.fit(x[tr], y[j, tr]).predict_proba(x[te])[:, 1]))
        assert abs(np.mean(ref) - row.auc) <= 0.01, (row.term_id, np.mean(ref), row.auc)


def test_generated_human_mouse_config_runs_every_comparison(tmp_path):
    """config/generated_human_mouse.yaml, shrunk: generated files -> mixed-species run -> every setting,
    normalized by the streaming path (2 shards per species; the exact path runs in the demo e2e).

    The planted truth is checked on the model-free expression SVD setting (the
    tiny CPU models learn little in a test's time; tests/test_species.py has the
    thresholds and their reasons): orthologs planted to share their module and
    factors are found, the others are not.
    """
    cfg = _config(**copy.deepcopy(SMALL))
    gen = yaml.safe_load((REPO / "config" / "generated_human_mouse.yaml").read_text())
    cfg["run_name"] = "hm"
    cfg["simulate"] = {**gen["simulate"], "out_dir": "generated", "pairs": 2500, "lncrna": 200,
                       "human_samples": 200, "mouse_samples": 200, "modules": 40, "chunk_samples": 100,
                       "orthologs": cfg["annotation"]["orthologs"]}
    cfg["datasets"] = [{**d, "path": d["path"].replace("results/generated_hm/generated", "generated")}
                       for d in gen["datasets"]]
    cfg["models"] = ["gpt"]
    cfg["model"].update({"n_embd": 32, "n_inner": 64})  # expression_svd keeps n_embd components: 16 miss modules
    cfg["sweep"].update({"baselines": [], "max_properties": 10, "shards": 1})
    cfg["species"].update({"settings": gen["species"]["settings"], "shared_tokens": 300})
    cfg["perturbation"].update(gen["perturbation"])  # none: the demo's run names the Geuvadis LCL series
    cfg["finetune"].update(gen["finetune"])  # none: the demo's sample task names its samples
    # the streaming path end to end: 2 shards per species; 80% of the passing samples kept for the expression SVD
    # (at 50% its planted-truth top-1 falls to 0.68 with 100 samples per species)
    cfg["normalization"].update({"exact": False, "shard_samples": 100, "matrix_fraction": 0.8})
    _snakemake(tmp_path, cfg)
    res = tmp_path / "results" / "hm"
    # the mixed model's hidden states: samples of both species, silhouettes per species and over both
    smp = pd.read_parquet(res / "samples" / "gpt" / "embeddings.parquet")
    assert set(smp["species"]) == {"human", "mouse"}
    sil = pd.read_csv(res / "samples" / "gpt" / "silhouette.tsv", sep="\t")
    assert set(sil["species"]) == {"all", "human", "mouse"}
    assert set(sil.loc[sil["species"] == "all", "space"]) == {"model"}  # no expression PCA across species
    ctx = pd.read_parquet(res / "embeddings" / "gpt_contextual.parquet")
    assert set(ctx["species"]) == {"human", "mouse"}
    assert len(pd.read_csv(res / "attention" / "gpt" / "heads.tsv", sep="\t")) == 2  # 1 layer x 2 heads
    vocab = pd.read_csv(res / "tokens" / "vocab.tsv", sep="\t", keep_default_na=False)
    mouse = vocab[vocab["species"] == "mouse"]
    assert len(mouse) > 1000 and mouse["token"].str.startswith("m_ENSMUSG").all()
    index = pd.read_parquet(res / "tokens" / "index.parquet")
    assert set(index["species"]) == {"human", "mouse"}
    for sp in ("human", "mouse"):  # each species binned against its own reference
        assert (res / "normalize" / sp / "bin_reference.h5").exists()
    # every training corpus holds every passing sample (the subsample is for the expression SVD only)
    qc = pd.read_parquet(res / "qc" / "samples.parquet")
    passing = {sp: sorted(qc.loc[qc["passed"] & (qc["dataset"] == f"generated_{sp}"), "sample_id"])
               for sp in ("human", "mouse")}
    assert sorted(index["sample_id"]) == sorted(passing["human"] + passing["mouse"])
    for corpus, expected in [("shared", passing["human"] + passing["mouse"]), ("human", passing["human"]),
                             ("mouse", passing["mouse"])]:
        ci = pd.read_parquet(res / "species" / corpus / "tokens" / "index.parquet")
        assert sorted(ci["sample_id"]) == sorted(expected), corpus
    pi = pd.read_parquet(res / "species" / "pseudo_species" / "tokens" / "index.parquet")
    assert sorted(pi["sample_id"].str.removeprefix("m_")) == passing["human"]
    from generain import io

    svd = io.read_matrix(res / "normalize" / "human" / "log_cp10m_subsample.h5")
    assert 0.65 < svd.matrix.shape[1] / len(passing["human"]) < 0.95
    shared = pd.read_csv(res / "species" / "shared" / "tokens" / "shared_tokens.tsv", sep="\t")
    assert len(shared) == 300
    sv = pd.read_csv(res / "species" / "shared" / "tokens" / "vocab.tsv", sep="\t", keep_default_na=False)
    assert not sv["ensembl_id"].isin(shared["mouse_ensembl_id"]).any()  # no own token for shared mouse genes
    table = pd.read_csv(res / "species" / "gpt" / "summary.tsv", sep="\t")
    assert set(table["setting"]) == {s + t for s in gen["species"]["settings"] for t in ("", "_shuffled")}
    ranks = pd.read_parquet(res / "species" / "gpt" / "ortholog_ranks.parquet")
    truth = pd.read_csv(tmp_path / "generated" / "truth.tsv", sep="\t")
    svd = ranks[ranks["setting"] == "expression_svd"].merge(truth, on=["human_ensembl_id", "mouse_ensembl_id"])
    top1_shared = (svd.loc[svd["shared"], "rank"] == 1).mean()
    top10_other = (svd.loc[~svd["shared"], "rank"] <= 10).mean()
    assert top1_shared > 0.8 and top10_other < 0.03, (top1_shared, top10_other)
    summary = json.loads((res / "summary.json").read_text())
    assert summary["vocab"]["by_species"]["mouse"] == len(mouse)
    assert [len(i["shards"]) for i in summary["ingest"]] == [2, 2]


# ---------------------------------------------------------------------------
# streaming normalization (normalization.exact: false)
# ---------------------------------------------------------------------------

STREAM_TARGETS = ["results/{run}/tokens/index.parquet", "results/{run}/qc/samples.parquet",
                  "results/{run}/normalize/human/bin_reference.h5", "results/{run}/species/pseudo_species/tokens/index.parquet"]


def _stream_config(run: str, data: Path, **normalization) -> dict:
    cfg = _config(run_name=run, datasets=[{"name": "sim", "path": str(data), "format": "archs4"}])
    cfg["normalization"].update(normalization)
    return cfg


@pytest.fixture(scope="module")
def stream_runs(tmp_path_factory, generated_archs4):
    """The generated 3,000-gene x 2,400-sample ARCHS4-layout file (chunks of 200 samples; conftest) through
    the workflow's streaming path in 4 shards (600 samples; 100-point sketches, 250-point reference) and
    through the exact in-memory path."""
    workdir = tmp_path_factory.mktemp("stream")
    data = generated_archs4
    # merge_shards_per_job 2: the 4 shards' merge runs as 2 parallel gene-block jobs
    stream_cfg = _stream_config("stream", data, exact=False, shard_samples=600, sketch_points=100,
                                reference_points=250, matrix_fraction=0.5, merge_shards_per_job=2)
    _snakemake(workdir, stream_cfg, *[t.format(run="stream") for t in STREAM_TARGETS],
               "results/stream/normalize/human/log_cp10m_subsample.h5")
    _snakemake(workdir, _stream_config("exact", data, exact=True), *[t.format(run="exact") for t in STREAM_TARGETS],
               "results/exact/normalize/human/scores.h5")
    return workdir, data, stream_cfg


def test_streaming_tokens_match_the_exact_path(stream_runs):
    """4 shards through the workflow: same QC, vocabulary, samples and split as the exact path; the gene
    token at each position has an exact bin within the tolerance (median |dbin| <= 5, p99 <= 40 of 2,000)."""
    from generain import io, tokenize
    from generain import normalize

    workdir, _, _ = stream_runs
    s_res, e_res = workdir / "results" / "stream", workdir / "results" / "exact"
    plan = json.loads((s_res / "stream" / "sim" / "plan.json").read_text())
    assert plan["shards"] == [[0, 600], [600, 1200], [1200, 1800], [1800, 2400]] and plan["samples"] == 2400
    assert plan["genes"]["matched"] == 3000
    pd.testing.assert_frame_equal(pd.read_parquet(s_res / "qc" / "samples.parquet"),
                                  pd.read_parquet(e_res / "qc" / "samples.parquet"))
    assert (s_res / "tokens" / "vocab.tsv").read_text() == (e_res / "tokens" / "vocab.tsv").read_text()
    si, ei = pd.read_parquet(s_res / "tokens" / "index.parquet"), pd.read_parquet(e_res / "tokens" / "index.parquet")
    pd.testing.assert_frame_equal(si.drop(columns=["shard", "row"]), ei.drop(columns=["shard", "row"]))
    assert si["shard"].nunique() == 4
    exact = io.read_matrix(e_res / "normalize" / "human" / "scores.h5")  # exact bins, genes x samples
    vocab = tokenize.read_vocab(e_res / "tokens" / "vocab.tsv")
    row_of = pd.Series(np.arange(len(exact.genes)), index=exact.genes["ensembl_id"])
    token_row = np.full(vocab["token_id"].max() + 1, -1)
    genes_v = vocab[vocab["biotype"] != "special"]
    token_row[genes_v["token_id"]] = row_of.loc[genes_v["ensembl_id"]].to_numpy()
    st, et = tokenize.TokenShards(s_res / "tokens" / "shards", si), tokenize.TokenShards(e_res / "tokens" / "shards", ei)
    diffs, same = [], []
    for j in range(len(ei)):
        n = int(ei["n_tokens"][j])
        gs, ge = st[j][0][:n], et[j][0][:n]
        diffs.append(np.abs(exact.matrix[token_row[gs], j].astype(int) - exact.matrix[token_row[ge], j].astype(int)))
        same.append((gs == ge).mean())
    d = np.concatenate(diffs)
    assert np.median(d) <= 5 and np.percentile(d, 99) <= 40, (np.median(d), np.percentile(d, 99))
    assert np.mean(same) < 1  # the sketches do approximate: a broken merge would not be seen otherwise
    # the kept log10(CP10M+1) subsample: about half the passing samples, chosen by sample id
    m = io.read_matrix(s_res / "normalize" / "human" / "log_cp10m_subsample.h5")
    assert 0.4 < m.matrix.shape[1] / len(ei) < 0.6 and m.genes["ensembl_id"].tolist() == exact.genes["ensembl_id"].tolist()
    full = io.read_matrix(e_res / "normalize" / "human" / "log_cp10m.h5")
    cols = pd.Index(full.samples["sample_id"]).get_indexer(m.samples["sample_id"])
    np.testing.assert_allclose(m.matrix, full.matrix[:, cols], rtol=1e-6)
    ref = normalize.BinReference.load(s_res / "normalize" / "human" / "bin_reference.h5")
    assert ref.values.shape == (len(exact.genes), 250) and ref.n_training_samples == len(ei)
    # the merge ran as 2 gene-block jobs, whose temporary outputs are gone
    assert sorted(p.name for p in (s_res / "logs" / "merge_reference_block").iterdir()) == [
        "human_0_of_2.log", "human_1_of_2.log"]
    assert not list((s_res / "stream").glob("merge/human/block_*"))
    # the pseudo-species corpus holds every passing sample on both paths: same halves, split and lengths
    sp_, ep_ = (pd.read_parquet(r / "species" / "pseudo_species" / "tokens" / "index.parquet") for r in (s_res, e_res))
    pd.testing.assert_frame_equal(sp_.drop(columns=["shard", "row"]), ep_.drop(columns=["shard", "row"]))
    assert sorted(sp_["sample_id"].str.removeprefix("m_")) == sorted(ei["sample_id"])
    assert 0.45 < (sp_["species"] == "mouse").mean() <= 0.5 and sp_["shard"].nunique() == 8
    sv, ev = (tokenize.read_vocab(r / "species" / "pseudo_species" / "tokens" / "vocab.tsv") for r in (s_res, e_res))
    pd.testing.assert_frame_equal(sv, ev)
    n_mouse = int((sv["species"] == "mouse").sum())
    assert 1000 < n_mouse < len(exact.genes)  # the generated genes' one-to-one orthologs
    sps = tokenize.TokenShards(s_res / "species" / "pseudo_species" / "tokens" / "shards", sp_)
    eps = tokenize.TokenShards(e_res / "species" / "pseudo_species" / "tokens" / "shards", ep_)
    mouse_ids = set(sv.loc[sv["species"] == "mouse", "token_id"])
    overlap = []
    for j in range(len(ep_)):
        n = int(ep_["n_tokens"][j])
        gs, ge = sps[j][0][:n], eps[j][0][:n]
        assert (set(gs) <= mouse_ids) == (set(ge) <= mouse_ids) == (ep_["species"][j] == "mouse")
        overlap.append(len(set(gs) & set(ge)) / max(n, 1))
    assert np.mean(overlap) > 0.95, np.mean(overlap)  # the same genes, up to the sketches' approximation


def _stream_outputs(res: Path) -> dict[str, object]:
    from generain import normalize

    out: dict[str, object] = {}
    for p in sorted((res / "tokens" / "shards").iterdir()):
        out[p.name] = p.read_bytes()
    for name in ("tokens/index.parquet", "qc/samples.parquet"):
        out[name] = pd.read_parquet(res / name)
    out["vocab"] = (res / "tokens" / "vocab.tsv").read_text()
    out["genes"] = (res / "normalize" / "human" / "genes.tsv").read_text()
    out["reference"] = normalize.BinReference.load(res / "normalize" / "human" / "bin_reference.h5").values
    return out


def test_killed_streaming_run_resumes_to_identical_results(stream_runs, tmp_path):
    """Kill the whole workflow (SIGKILL to its process group) in pass 1 and again in pass 2; after each
    kill `--unlock`, then the rerun with --rerun-incomplete (as the README says); the last one finishes
    with results identical to the uninterrupted run."""
    import os
    import signal
    import time

    workdir, data, cfg = stream_runs
    cfg = {**cfg, "run_name": "killed"}
    (tmp_path / "test_config.yaml").write_text(yaml.safe_dump(cfg))
    res = tmp_path / "results" / "killed"
    targets = [t.format(run="killed") for t in STREAM_TARGETS]
    cmd = [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(tmp_path), "--configfile",
           str(tmp_path / "test_config.yaml"), "-c1", *targets]
    for marker in ("stream/sim/shard_00001/sketch.h5", "stream/sim/shard_00001/tokens"):
        subprocess.run([*cmd, "--unlock"], capture_output=True, check=True, timeout=300)
        log = tmp_path / f"{Path(marker).name}.log"
        with log.open("w") as fh:
            proc = subprocess.Popen([*cmd, "--rerun-incomplete"], stdout=fh, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        deadline = time.time() + 600
        while not (res / marker).exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, f"the run ended before {marker} appeared: {log.read_text()[-3000:]}"
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert not (res / "tokens" / "index.parquet").exists()
    subprocess.run([*cmd, "--unlock"], capture_output=True, check=True, timeout=300)
    done = subprocess.run([*cmd, "--rerun-incomplete"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    got, want = _stream_outputs(res), _stream_outputs(workdir / "results" / "stream")
    assert got.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(got[key], value)
        elif isinstance(value, np.ndarray):
            np.testing.assert_array_equal(got[key], value)
        else:
            assert got[key] == value, key


def _fixture_release(workdir: Path) -> None:
    """The published models' fixtures (tests/pretrained_fixtures.py) under workdir/fixtures, as the config expects."""
    subprocess.run([sys.executable, str(REPO / "tests" / "pretrained_fixtures.py"), str(workdir / "fixtures"),
                    "--gene-table", str(REPO / "resources" / "annotation" / "genes.tsv")],
                   check=True, capture_output=True, cwd=workdir)


def _demo_counts_table(path: Path, columns: slice) -> list[str]:
    """Some demo samples as a plain counts table (genes x samples, Ensembl ids), as a user would bring them."""
    import h5py

    with h5py.File(REPO / "resources" / "demo" / "demo_counts.h5") as f:
        genes = [g.decode() for g in f["meta/genes/ensembl_gene_id"][()]]
        ids = [s.decode() for s in f["meta/samples/geo_accession"][()]][columns]
        counts = f["data/expression"][:, columns]
    pd.DataFrame(counts, index=pd.Index(genes, name="gene_id"), columns=ids).to_csv(path, sep="\t")
    return ids


def _embeds_like_the_run(tmp_path: Path, res: Path, model: str) -> None:
    """`generain embed-samples --counts` on demo samples gives the run's own embeddings of them: the run scored
    its samples against the same imported reference, so nothing differs."""
    from generain import cli

    ids = _demo_counts_table(tmp_path / "new.tsv", slice(0, 4))
    assert cli.main(["embed-samples", "--run", str(res), "--model", model, "--counts", str(tmp_path / "new.tsv"),
                     "--gene-table", str(REPO / "resources" / "annotation" / "genes.tsv"),
                     "--out", str(tmp_path / "new")]) == 0
    new = pd.read_parquet(tmp_path / "new" / "embeddings.parquet").set_index("sample_id")
    run = pd.read_parquet(res / "samples" / model / "embeddings.parquet").set_index("sample_id")
    assert list(new.index) == ids
    np.testing.assert_allclose(np.stack(new["embedding"]), np.stack(run.loc[ids, "embedding"]), atol=1e-5)


def test_imported_generain_models_run_every_stage(tmp_path):
    """config/pretrained_fixture.yaml, shrunk: GeneRAIN's three released formats imported, nothing trained,
    and every later stage (export, sweep, lncRNA, sample embeddings, perturbation, attention) runs on them."""
    pytest.importorskip("transformers")
    import torch

    _fixture_release(tmp_path)
    cfg = _config(**copy.deepcopy(SMALL))
    fixture = yaml.safe_load((REPO / "config" / "pretrained_fixture.yaml").read_text())
    cfg.update(run_name="pf", pretrained=fixture["pretrained"])
    cfg["species"]["enabled"] = False
    cfg["attention"].update({"samples": 8, "permutations": 100})
    _snakemake(tmp_path, cfg)
    res = tmp_path / "results" / "pf"
    assert not (res / "benchmarks" / "train_model").exists()  # imported, not trained
    vocab_info = json.loads((res / "pretrained" / "vocabulary.json").read_text())
    assert vocab_info["unmapped"] == ["NOT_A_GENE_1", "NOT_A_GENE_2"] and vocab_info["by_status"]["ambiguous"] > 0
    summary = json.loads((res / "summary.json").read_text())
    assert all(summary["train"][m]["imported"] for m in ("gpt", "bert_pred_genes", "bert_pred_expr"))
    # the exported gene embedding is the released matrix's row of each gene (BERT_Pred_Expr: its position
    # row plus the constant token-type row, folded in on import)
    index = json.loads(Path(tmp_path / cfg["pretrained"]["gpt"]["gene_index"]).read_text())
    for model, key in [("gpt", "gene_expr_transformer.gpt.transformer.wte.weight"),
                       ("bert_pred_expr", "gene_expr_transformer.bert_for_masked_lm_model.bert.embeddings."
                                          "position_embeddings.weight")]:
        sd = torch.load(tmp_path / cfg["pretrained"][model]["checkpoint"], weights_only=True)["model_state_dict"]
        released = sd[key].numpy()
        if model == "bert_pred_expr":
            released = released + sd[key.replace("position_embeddings", "token_type_embeddings")][0].numpy()
        emb = pd.read_parquet(res / "embeddings" / f"{model}.parquet")
        for _, row in emb.sample(5, random_state=0).iterrows():
            np.testing.assert_array_equal(np.asarray(row["embedding"], dtype=np.float32), released[index[row["symbol"]]])
    # tokens only from the imported vocabulary; samples binned against the released reference
    vocab = pd.read_csv(res / "tokens" / "vocab.tsv", sep="\t")
    assert len(vocab) == vocab_info["vocab_size"]
    shards = sorted((res / "tokens" / "shards").glob("genes_*.npy"))
    assert np.load(shards[0]).max() < len(vocab)
    for m in ("gpt", "bert_pred_genes", "bert_pred_expr"):
        for out in (f"samples/{m}/embeddings.parquet", f"sweep/{m}/auc.parquet", f"sweep/{m}_contextual/auc.parquet",
                    f"lncrna/{m}/predictions.parquet", f"attention/{m}/heads.tsv",
                    f"perturbation/hla_dra_overexpress/{m}/gene_shifts.parquet",
                    f"finetune/{m}/transcription_factors/metrics.json", f"finetune/{m}/sex/metrics.json"):
            assert (res / out).exists(), out
    _embeds_like_the_run(tmp_path, res, "bert_pred_expr")


@pytest.mark.parametrize("version", ["V1", "V2"])
def test_imported_geneformer_model_ranks_samples_by_its_medians(tmp_path, version):
    """A Geneformer fixture directory (V1; V2 with <cls> ... <eos> framing): rank-value tokens by the model's
    gene medians, its token order, the model imported, and sample embeddings from it."""
    pytest.importorskip("transformers")
    import pickle

    _fixture_release(tmp_path)
    gf = tmp_path / "fixtures" / ("geneformer" if version == "V1" else "geneformer_v2")
    model_dir = gf / ("Geneformer-V1-10M" if version == "V1" else "Geneformer-V2-104M")
    cfg = _config(**copy.deepcopy(SMALL))
    cfg.update(run_name="gf", models=["bert_pred_genes"],
               pretrained={"bert_pred_genes": {"format": "geneformer", "checkpoint": str(model_dir),
                                               "gene_index": str(gf / "token_dictionary.pkl"),
                                               "gene_medians": str(gf / "gene_median_dictionary.pkl")}})
    cfg["normalization"]["method"] = "rank_value"
    res = tmp_path / "results" / "gf"
    _snakemake(tmp_path, cfg, "results/gf/samples/bert_pred_genes/embeddings.parquet")
    medians = pickle.loads((gf / "gene_median_dictionary.pkl").read_bytes())
    from generain import io

    sc, lg = io.read_matrix(res / "normalize" / "human" / "scores.h5"), io.read_matrix(res / "normalize" / "human" / "log_cp10m.h5")
    assert sc.attrs["method"] == "rank_value"
    genes = list(sc.genes["ensembl_id"])
    log_row = {g: i for i, g in enumerate(lg.genes["ensembl_id"])}
    scores, logv = sc.matrix[:, 0], lg.matrix[:, 0]
    # hand-computed for the first sample: counts per 10,000 over the model's median
    for k in (0, 100, 1000):
        g = genes[k]
        cp10k = (10 ** float(logv[log_row[g]]) - 1) / 1000
        assert scores[k] == pytest.approx(cp10k / float(medians[g]), rel=1e-5)
    vocab = pd.read_csv(res / "tokens" / "vocab.tsv", sep="\t")
    genes_only = vocab[vocab["biotype"] != "special"]
    assert list(vocab["token"][:3]) == ["<pad>", "<mask>", "<cls>"] and genes_only["ensembl_id"].is_monotonic_increasing
    assert (vocab["token"].iloc[-1] == "<eos>") == (version == "V2")
    model = json.loads((res / "models" / "main" / "bert_pred_genes" / "summary.json").read_text())
    assert (model["model_config"]["eos_token"] == len(vocab) - 1) if version == "V2" else \
        model["model_config"]["eos_token"] == 0
    assert len(pd.read_parquet(res / "samples" / "bert_pred_genes" / "embeddings.parquet")) > 0
    _embeds_like_the_run(tmp_path, res, "bert_pred_genes")


@pytest.mark.parametrize("pretrained, message", [
    ({"gpt": {"checkpoint": "x.pth", "gene_index": "i.json", "boundaries": "b.npy"}},
     "config pretrained.gpt: gpt is not in `models`"),
    ({"bert_pred_genes": {"checkpoint": "x.pth", "gene_index": "i.json"}},
     "a generain model needs `boundaries`"),
    ({"bert_pred_genes": {"checkpoint": "x.pth", "gene_index": "i.json", "boundaries": "b.npy"},
      "bert_pred_expr": {"checkpoint": "y.pth", "gene_index": "other.json", "boundaries": "b.npy"}},
     "must share format, gene_index"),
])
def test_pretrained_config_errors_name_the_key(tmp_path, pretrained, message):
    cfg = _config(run_name="bad", models=["bert_pred_genes", "bert_pred_expr"], pretrained=pretrained)
    proc = _snakemake(tmp_path, cfg, "-n", check=False)
    assert proc.returncode != 0 and message in proc.stdout + proc.stderr
