"""Fine-tuning: planted labels are learned, folds keep genes and studies apart, a crashed run resumes."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from generain import finetune, io
from generain.model import build_model, model_config_for
from generain.stages import finetune as stage
from generain.tokenize import build_vocab, write_token_shards, write_vocab
from generain.training.checkpoint import save_model
from generain.utils import InputError

N_GENES, L, N_SAMPLES = 60, 20, 60
SET_A = np.arange(3, 33)  # token ids of the planted gene set (genes 0..29)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A corpus, a model whose token embedding plants set A on one axis, labels, gene sets, QC and matrix."""
    d = tmp_path_factory.mktemp("ft")
    rng = np.random.default_rng(0)
    ens = [f"ENSG{i:011d}" for i in range(N_GENES)]
    vocab = build_vocab(pd.DataFrame({"ensembl_id": ens, "symbol": [f"G{i}" for i in range(N_GENES)],
                                      "biotype": "protein_coding", "species": "human"}))
    write_vocab(vocab, d / "vocab.tsv")
    label = np.repeat(["x", "y"], N_SAMPLES // 2)
    genes = np.zeros((N_SAMPLES, L), np.int64)
    for i in range(N_SAMPLES):  # "x" samples rank 10 genes of set A first, "y" samples 10 genes of the rest
        first = rng.choice(SET_A, 10, replace=False) if label[i] == "x" else rng.choice(np.arange(33, 63), 10, replace=False)
        rest = rng.permutation(np.setdiff1d(np.arange(3, 63), first))[: L - 10]
        genes[i] = np.concatenate([first, rest])
    expr = np.tile(np.arange(100, 100 - L * 5, -5), (N_SAMPLES, 1))
    ids = np.array([f"s{i}" for i in range(N_SAMPLES)])
    write_token_shards(d / "shards", d / "index.parquet", sample_ids=ids, gene_tokens=genes.astype(np.uint16),
                       expr_tokens=expr.astype(np.uint8), n_tokens=np.full(N_SAMPLES, L),
                       split=np.array(["train"] * N_SAMPLES), shard_size=25)
    torch.manual_seed(0)
    model = build_model("bert_pred_genes", model_config_for("bert_pred_genes", n_genes=len(vocab), length=L,
                                                             n_layer=2, n_head=2, n_embd=16, n_inner=32, dropout=0.0))
    with torch.no_grad():
        model.word_emb.weight[:, 0] = -2.0
        model.word_emb.weight[SET_A, 0] = 2.0
    save_model(model, "bert_pred_genes", d / "model.pt")
    pd.DataFrame({"source": "T", "term_id": "SET:A", "term_name": "a", "ensembl_id": [ens[t - 3] for t in SET_A]}
                 ).to_csv(d / "sets.tsv", sep="\t", index=False)
    series = np.array([f"study{i % 6}" for i in range(N_SAMPLES)])
    pd.DataFrame({"sample_id": ids, "dataset": "d", "series_id": series}).to_parquet(d / "qc.parquet")
    pd.DataFrame({"sample_id": ids, "state": label, "one_study": label}).to_csv(d / "labels.tsv", sep="\t", index=False)
    values = rng.random((N_GENES, N_SAMPLES)).astype(np.float32)
    io.write_matrix(d / "log.h5", values, genes={"ensembl_id": np.array(ens, dtype=object)},
                    samples={"sample_id": ids.astype(object)})
    return d


def _genes(d, out, **kw):
    return stage.finetune_genes(
        checkpoint=d / "model.pt", vocab=d / "vocab.tsv", shards=d / "shards", index=d / "index.parquet",
        gene_sets=[d / "sets.tsv"], task={"name": "a", "positives": "SET:A"},
        settings=stage.FinetuneSettings(**{"gene_epochs": 3, "learning_rate": 0.01, "batch_size": 8, **kw}),
        out_metrics=out / "metrics.json", out_predictions=out / "predictions.parquet", out_model=out / "model.pt",
        out_plot=out / "folds.png")


def _samples(d, out, column="state", **kw):
    return stage.finetune_samples(
        checkpoint=d / "model.pt", shards=d / "shards", index=d / "index.parquet", qc_table=d / "qc.parquet",
        matrix=d / "log.h5", task={"name": "s", "sheet": str(d / "labels.tsv"), "column": column},
        settings=stage.FinetuneSettings(**{"sample_epochs": 20, "learning_rate": 0.01, "batch_size": 8, **kw}),
        out_metrics=out / "metrics.json", out_predictions=out / "predictions.parquet", out_model=out / "model.pt",
        out_plot=out / "folds.png")


def test_gene_task_learns_a_planted_set_and_keeps_genes_apart(run, tmp_path):
    m = _genes(run, tmp_path)
    assert m["positives"] == 30 and m["negatives"] == 30
    assert m["mean"]["finetuned"]["auc"] > 0.95 and m["mean"]["static_embedding"]["auc"] > 0.95
    pred = pd.read_parquet(tmp_path / "predictions.parquet")
    assert pred["ensembl_id"].is_unique and sorted(pred["fold"].unique()) == [0, 1, 2, 3, 4]
    assert (pred.groupby("fold")["label"].sum() == 6).all()  # stratified: 6 of the 30 positives per fold
    assert (pred["n_occurrences"] > 0).all()
    saved = torch.load(tmp_path / "model.pt", weights_only=True)
    assert saved["level"] == "gene" and saved["classes"] == ["negative", "positive"]


def test_sample_task_groups_folds_by_series_and_beats_chance(run, tmp_path):
    m = _samples(run, tmp_path)
    assert m["scheme"] == "grouped_by_series" and m["samples_per_label"] == {"x": 30, "y": 30}
    assert m["mean"]["finetuned"]["auc"] > 0.95
    assert 0.2 < m["mean"]["expression_pca"]["auc"] < 0.8  # the matrix is noise: the baseline is near chance
    pred = pd.read_parquet(tmp_path / "predictions.parquet")
    assert (pred.groupby("series_id")["fold"].nunique() == 1).all()  # no study in two folds
    assert set(pred.columns) >= {"probability_x", "probability_y", "predicted"}


def test_too_few_labels_is_a_clear_error(run, tmp_path):
    labels = pd.read_csv(run / "labels.tsv", sep="\t")
    labels.loc[labels["state"] == "y", "state"] = ""
    labels.loc[labels.index[-3:], "state"] = "y"
    labels.to_csv(tmp_path / "few.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match=r"'s': samples per label \{'x': 30, 'y': 3\}"):
        stage.finetune_samples(checkpoint=run / "model.pt", shards=run / "shards", index=run / "index.parquet",
                               qc_table=run / "qc.parquet", matrix=run / "log.h5",
                               task={"name": "s", "sheet": str(tmp_path / "few.tsv"), "column": "state"},
                               settings=stage.FinetuneSettings(), out_metrics=tmp_path / "m.json",
                               out_predictions=tmp_path / "p.parquet", out_model=tmp_path / "m.pt",
                               out_plot=tmp_path / "f.png")
    with pytest.raises(InputError, match="no column 'nope'"):
        _samples(run, tmp_path, column="nope")


def test_sample_folds_fall_back_to_stratified_within_one_study(caplog):
    y = np.repeat([0, 1], 10)
    folds, scheme = finetune.sample_folds(y, np.array(["one"] * 20), folds=5, seed=0, task="t")
    assert scheme == "stratified" and "span 1 series" in caplog.text
    assert all(np.bincount(y[folds == k]).tolist() == [2, 2] for k in range(5))


def test_a_label_of_one_study_gets_stratified_folds(caplog):
    """Grouped folds would train a fold without the label found in one series only: stratified, with a warning."""
    y = np.repeat([0, 1], 12)
    series = np.array(["a"] * 12 + [f"s{i % 6}" for i in range(12)])  # label 0: one study; label 1: six
    folds, scheme = finetune.sample_folds(y, series, folds=5, seed=0, task="t")
    assert scheme == "stratified" and "a label found in one series only" in caplog.text
    y2 = np.repeat([0, 1], 12)
    series2 = np.array([f"s{i % 6}" for i in range(24)])  # both labels in all six studies
    folds2, scheme2 = finetune.sample_folds(y2, series2, folds=5, seed=0, task="t")
    assert scheme2 == "grouped_by_series"
    assert all(len(set(folds2[series2 == s])) == 1 for s in set(series2))


def test_training_the_last_layer_leaves_the_others_unchanged(run, tmp_path):
    m = _genes(run, tmp_path, train_layers=1, gene_epochs=1)
    assert m["train_layers"] == 1
    before = torch.load(run / "model.pt", weights_only=True)["state_dict"]
    after = torch.load(tmp_path / "model.pt", weights_only=True)["state_dict"]
    assert torch.equal(before["layers.0.qkv.weight"], after["layers.0.qkv.weight"])
    assert torch.equal(before["word_emb.weight"], after["word_emb.weight"])
    assert not torch.equal(before["layers.1.qkv.weight"], after["layers.1.qkv.weight"])


def test_a_crashed_run_resumes_to_the_same_result(run, tmp_path, monkeypatch):
    ref = _samples(run, tmp_path / "ref")
    calls = {"n": 0}
    real_fit = finetune.fit_classifier

    def crash_after_two(*args, **kwargs):
        if calls["n"] == 2:
            raise KeyboardInterrupt("killed")
        calls["n"] += 1
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(finetune, "fit_classifier", crash_after_two)
    with pytest.raises(KeyboardInterrupt):
        _samples(run, tmp_path / "crash")
    assert not (tmp_path / "crash" / "metrics.json").exists()  # nothing half-written
    done = sorted(p.parent.name for p in (tmp_path / "crash" / "checkpoints").glob("*/*/last.ckpt"))
    assert done == ["fold0", "fold1"]
    monkeypatch.setattr(finetune, "fit_classifier", real_fit)
    again = _samples(run, tmp_path / "crash")
    assert again["per_fold"] == ref["per_fold"]
    assert not (tmp_path / "crash" / "checkpoints").exists()  # removed once the job finished
    assert json.loads((tmp_path / "crash" / "metrics.json").read_text())["mean"] == ref["mean"]


def test_metrics_by_hand():
    y = np.array([0, 0, 1, 1])
    prob = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.8, 0.2]])
    m = finetune.metrics(y, prob)
    # predictions 0, 1, 1, 0: accuracy 0.5; F1 0.5 for both classes; AUC: of the 4 (positive, negative) pairs
    # (0.7, 0.1), (0.7, 0.6), (0.2, 0.1) are ranked right and (0.2, 0.6) wrong: 0.75
    assert m == {"accuracy": 0.5, "macro_f1": 0.5, "auc": 0.75}


def test_a_killed_job_resumes_to_the_same_weights(run, tmp_path):
    """SIGKILL in the middle of training the last layer, then the same call again: the figures of an
    uninterrupted run (per-epoch checkpoints, sample order from (seed, epoch), dropout from (seed, epoch, batch))."""
    import os
    import signal
    import subprocess
    import sys
    import time

    kw = {"train_layers": 1, "sample_epochs": 12}
    ref = _samples(run, tmp_path / "ref", **kw)
    script = tmp_path / "go.py"
    script.write_text(
        "import sys\nfrom pathlib import Path\nsys.path.insert(0, %r)\nimport test_finetune as t\n"
        "t._samples(Path(%r), Path(%r), train_layers=1, sample_epochs=12)\n"
        % (str(Path(__file__).parent), str(run), str(tmp_path / "kill")))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not list((tmp_path / "kill").glob("checkpoints/*/fold1/last.ckpt")) and time.time() < deadline:
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.02)
    time.sleep(0.3)  # into fold 1's next epochs
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "kill" / "metrics.json").exists()
    again = _samples(run, tmp_path / "kill", **kw)
    assert again["per_fold"] == ref["per_fold"]
    a = torch.load(tmp_path / "ref" / "model.pt", weights_only=True)
    b = torch.load(tmp_path / "kill" / "model.pt", weights_only=True)
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_two_process_ddp_matches_one_process_with_the_same_global_batch(run, tmp_path, monkeypatch):
    """2 CPU ranks (gloo) of batch 4 deal each step's 8 samples of the seeded order between them; the planted
    task's labels are balanced in every fold (class weights 1), so the averaged gradients are those of one
    process with batch 8: the same probabilities, written once by rank 0."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    ref = _samples(run, tmp_path / "one", batch_size=8, sample_epochs=5)
    out = tmp_path / "two"
    m = stage.launch_finetune(
        "samples", checkpoint=run / "model.pt", shards=run / "shards", index=run / "index.parquet",
        qc_table=run / "qc.parquet", matrix=run / "log.h5",
        task={"name": "s", "sheet": str(run / "labels.tsv"), "column": "state"},
        settings=stage.FinetuneSettings(sample_epochs=5, learning_rate=0.01, batch_size=4, devices=2,
                                        launcher="local"),
        out_metrics=out / "metrics.json", out_predictions=out / "predictions.parquet", out_model=out / "model.pt",
        out_plot=out / "folds.png")
    assert ref["world_size"] == 1 and m["world_size"] == 2
    assert not (out / "finetune_spec.json").exists() and not (out / "checkpoints").exists()
    a, b = pd.read_parquet(tmp_path / "one" / "predictions.parquet"), pd.read_parquet(out / "predictions.parquet")
    assert a["sample_id"].tolist() == b["sample_id"].tolist()
    np.testing.assert_allclose(a["probability_x"], b["probability_x"], atol=1e-5)
    assert m["mean"]["finetuned"]["auc"] == pytest.approx(ref["mean"]["finetuned"]["auc"], abs=1e-4)
    ha = torch.load(tmp_path / "one" / "model.pt", weights_only=True)["head"]
    hb = torch.load(out / "model.pt", weights_only=True)["head"]
    assert all(torch.allclose(ha[k], hb[k], atol=1e-5) for k in ha)
    assert m["mean"]["finetuned"]["auc"] > 0.9


def test_settings_refuse_one_named_gpu_for_several_ranks():
    with pytest.raises(ValueError, match="names one GPU"):
        stage.FinetuneSettings(device="cuda:1", devices=2)
    assert stage.FinetuneSettings(device="cuda:1").fit(1).devices == [1]
