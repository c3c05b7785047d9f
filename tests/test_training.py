"""Training: batch construction and masking, the seeded sampler, all three model types,
kill-and-resume to the same result, and 2-process DDP on CPU (gloo)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from generain import MASK_ID, PAD_ID
from generain.model import IGNORE_INDEX
from generain.tokenize import write_token_shards
from generain.training.checkpoint import load_model
from generain.training.data import EpochSampler, group_by_length, trim_padding
from generain.training.fit import TrainSettings, fit_model
from generain.training.launch import write_spec
from generain.training.masking import gpt_inputs, mask_expression_bins, mask_gene_tokens

from conftest import schema_defaults

N_GENES, LENGTH = 40, 16


def test_gpt_inputs_shift_and_ignore_padding():
    genes = torch.tensor([[5, 6, 7, 0], [8, 9, 10, 11]])
    out = gpt_inputs(genes)
    assert out["idx"].tolist() == [[5, 6, 7], [8, 9, 10]]
    assert out["labels"].tolist() == [[6, 7, IGNORE_INDEX], [9, 10, 11]]


def test_gene_masking_masks_only_real_positions_at_the_rate():
    torch.manual_seed(0)
    genes = torch.randint(3, 1000, (64, 256))
    genes[:, 200:] = PAD_ID
    out = mask_gene_tokens(genes, 0.15)
    chosen = out["labels"] != IGNORE_INDEX
    assert not chosen[:, 200:].any()  # never padding
    assert (out["idx"][chosen] == MASK_ID).all() and (out["idx"][~chosen] == genes[~chosen]).all()
    assert (out["labels"][chosen] == genes[chosen]).all()
    assert out["key_mask"].tolist() == (genes != PAD_ID).tolist()
    assert chosen[:, :200].float().mean().item() == pytest.approx(0.15, abs=0.01)  # 12,800 draws: sd 0.003


def test_expression_masking_80_10_10():
    torch.manual_seed(0)
    genes = torch.randint(3, 1000, (256, 256))
    expr = torch.randint(1, 101, (256, 256))
    out = mask_expression_bins(genes, expr, 0.15)
    chosen = out["labels"] != IGNORE_INDEX
    assert torch.equal(out["position_ids"], genes)
    assert (out["labels"][chosen] == expr[chosen]).all()
    assert (out["idx"][~chosen] == expr[~chosen]).all()
    n = chosen.sum().item()
    masked = (out["idx"][chosen] == 0).sum().item() / n
    changed = ((out["idx"][chosen] != 0) & (out["idx"][chosen] != expr[chosen])).sum().item() / n
    assert chosen.float().mean().item() == pytest.approx(0.15, abs=0.005)
    assert masked == pytest.approx(0.80, abs=0.01)
    # random bins: 10% drawn, of which 1/100 land on the true bin
    assert changed == pytest.approx(0.10 * 0.99, abs=0.01)
    assert out["idx"].min() >= 0 and out["idx"].max() <= 100


def test_epoch_sampler_is_seeded_sharded_and_skips():
    a = EpochSampler(10, seed=3, shuffle=True)
    b = EpochSampler(10, seed=3, shuffle=True)
    first = list(a)
    assert sorted(first) == list(range(10)) and first == list(b)
    a.set_epoch(1)
    assert list(a) != first  # a new order each epoch
    a.set_epoch(0)
    a.skip = 4
    assert list(a) == first[4:] and list(a) == first  # skip applies to one iteration only
    ranks = [list(EpochSampler(7, seed=0, shuffle=False, num_replicas=2, rank=r)) for r in (0, 1)]
    assert ranks == [[0, 2, 4, 6], [1, 3, 5, 0]]  # wrapped to equal length, dealt round-robin


def test_group_by_length_sorts_within_groups_only():
    lengths = np.array([5, 9, 1, 7, 3, 8, 2, 6])
    order = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    # groups of 4: [0 1 2 3] -> lengths 5 9 1 7 -> 1 3 0 2; [4 5 6 7] -> 3 8 2 6 -> 5 7 4 6
    assert group_by_length(order, lengths, 4).tolist() == [1, 3, 0, 2, 5, 7, 4, 6]
    ties = group_by_length(np.array([3, 2, 1, 0]), np.array([4, 4, 4, 4]), 4)
    assert ties.tolist() == [3, 2, 1, 0]  # stable: equal lengths keep the shuffled order


def test_length_grouped_sampler_is_seeded_resumable_and_pads_less():
    rng = np.random.default_rng(0)
    lengths = rng.integers(10, 2049, 400)
    a = EpochSampler(400, seed=5, shuffle=True, lengths=lengths, group_size=8 * 50)
    first = list(a)
    assert sorted(first) == list(range(400))
    assert first == list(EpochSampler(400, seed=5, shuffle=True, lengths=lengths, group_size=400))
    a.skip = 37
    assert list(a) == first[37:]  # resuming inside the epoch continues the same order
    a.set_epoch(1)
    assert list(a) != first
    plain = list(EpochSampler(400, seed=5, shuffle=True))

    def padding(order):  # share of padded positions when each batch of 8 is cut after its longest
        b = lengths[np.asarray(order)].reshape(-1, 8)
        return 1 - b.sum() / (b.max(1) * 8).sum()

    assert padding(first) < 0.05 < 0.3 < padding(plain)


def test_trim_padding_cuts_after_the_longest_sequence():
    batch = [{"genes": torch.tensor([5, 6, 0, 0, 0]), "expr": torch.tensor([9, 8, 0, 0, 0])},
             {"genes": torch.tensor([7, 8, 9, 0, 0]), "expr": torch.tensor([3, 2, 1, 0, 0])}]
    out = trim_padding(batch)
    assert out["genes"].tolist() == [[5, 6, 0, 0], [7, 8, 9, 0]]  # longest 3, plus one padding column
    assert out["expr"].tolist() == [[9, 8, 0, 0], [3, 2, 1, 0]]
    full = [{"genes": torch.tensor([1, 2]), "expr": torch.tensor([1, 1])}] * 2
    assert trim_padding(full)["genes"].shape == (2, 2)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A small token corpus with structure to learn: 48 samples, genes in a few fixed orders."""
    d = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    orders = [rng.permutation(np.arange(3, N_GENES))[:LENGTH] for _ in range(4)]
    genes = np.stack([orders[i % 4] for i in range(48)]).astype(np.int32)
    genes[::5, 12:] = PAD_ID  # some shorter samples
    expr = np.where(genes > 0, np.tile(np.arange(100, 100 - LENGTH, -1), (48, 1)), 0).astype(np.uint8)
    split = np.array(["validation" if i % 6 == 0 else "train" for i in range(48)], dtype=object)
    write_token_shards(d / "shards", d / "index.parquet", sample_ids=np.array([f"s{i}" for i in range(48)]),
                       gene_tokens=genes, expr_tokens=expr, n_tokens=(genes > 0).sum(1), split=split, shard_size=20)
    return d


def _kwargs(corpus: Path, out: Path, model_type: str = "gpt", **settings) -> dict:
    """fit_model arguments: the schema's train defaults with the test's settings (and ``settings`` overriding)."""
    train = {**schema_defaults("train"), "epochs": 3, "batch_size": 4, "accumulate_grad_batches": 1, "max_lr": 3e-3,
             "accelerator": "cpu", "devices": 1, "progress_bar": False, "checkpoint_every_n_steps": 2,
             "num_workers": 0, **settings}
    return dict(model_type=model_type, shard_dir=str(corpus / "shards"), index_path=str(corpus / "index.parquet"),
                n_genes=N_GENES, length=LENGTH, checkpoint_path=str(out / "model.pt"),
                metrics_path=str(out / "metrics.csv"), summary_path=str(out / "summary.json"),
                model=dict(n_layer=1, n_head=2, n_embd=16, n_inner=32, dropout=0.1),
                settings=TrainSettings.from_mapping(train), seed=7, threads=1)


@pytest.mark.parametrize("model_type", ["gpt", "bert_pred_genes", "bert_pred_expr"])
def test_each_model_type_trains_and_exports(corpus, tmp_path, model_type):
    s = fit_model(**_kwargs(corpus, tmp_path, model_type, epochs=4))
    assert s["model_type"] == model_type and s["steps"] == 4 * 10  # 40 train samples / batch 4
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert metrics["epoch"].tolist() == [0, 1, 2, 3]
    assert metrics["val_loss"].iloc[-1] < metrics["val_loss"].iloc[0]
    n_classes = 101 if model_type == "bert_pred_expr" else N_GENES
    assert metrics["val_loss"].iloc[0] < np.log(n_classes) + 0.5  # starts near a uniform guess
    mt, model = load_model(tmp_path / "model.pt")
    assert mt == model_type and model.gene_embedding().shape == (N_GENES, 16)
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()
    assert json.loads((tmp_path / "checkpoints" / "run.json").read_text())["complete"] is True
    assert list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))


def test_schedule_per_epoch_steps_once_per_epoch(corpus, tmp_path):
    fit_model(**_kwargs(corpus, tmp_path, schedule_per="epoch", epochs=5, pct_start=0.4))
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert ckpt["lr_schedulers"][0]["last_epoch"] == 5  # one scheduler step per epoch, 5 epochs


def _run_worker(kwargs: dict, path: Path) -> subprocess.Popen:
    write_spec(kwargs, path)
    return subprocess.Popen([sys.executable, "-m", "generain.training.launch", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.parametrize("grouped", [False, True], ids=["plain", "group_by_length"])
def test_killed_run_resumes_to_the_same_result(corpus, tmp_path, grouped):
    ref = fit_model(**_kwargs(corpus, tmp_path / "ref", epochs=6, group_by_length=grouped))
    out = tmp_path / "killed"
    kwargs = _kwargs(corpus, out, epochs=6, group_by_length=grouped)
    proc = _run_worker(kwargs, tmp_path / "spec.json")
    ckpt_dir = out / "checkpoints"
    deadline = time.time() + 120
    # kill after a mid-epoch checkpoint (every 2 steps, 10 steps per epoch) past the first epoch
    while time.time() < deadline:
        done = sorted(ckpt_dir.glob("step*.ckpt"))
        if done and int(done[-1].stem[4:]) >= 14:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "model.pt").exists()
    resumed = fit_model(**kwargs)
    assert resumed["resumed_from"] == "last.ckpt"
    assert resumed["steps"] == ref["steps"] == 60
    assert resumed["final_val_loss"] == pytest.approx(ref["final_val_loss"], abs=1e-6)
    a = load_model(out / "model.pt")[1].state_dict()
    b = load_model(tmp_path / "ref" / "model.pt")[1].state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics["epoch"].tolist() == list(range(6))


@pytest.mark.parametrize("model_type", ["gpt", "bert_pred_genes", "bert_pred_expr"])
def test_each_model_type_trains_on_length_grouped_batches(corpus, tmp_path, model_type):
    s = fit_model(**_kwargs(corpus, tmp_path, model_type, epochs=2, group_by_length=True))
    assert s["steps"] == 20 and np.isfinite(s["final_val_loss"])


def test_changed_settings_start_afresh(corpus, tmp_path):
    fit_model(**_kwargs(corpus, tmp_path, epochs=1))
    s = fit_model(**_kwargs(corpus, tmp_path, epochs=2))  # finished run and other settings: no resume
    assert s["resumed_from"] is None and s["steps"] == 20


def test_two_process_ddp_on_cpu(corpus, tmp_path):
    """Lightning's DDP launcher re-executes the command: run it as a subprocess, as the workflow does."""
    kwargs = _kwargs(corpus, tmp_path, devices=2, epochs=2)
    kwargs["resume"] = None
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    write_spec(kwargs, tmp_path / "spec.json")
    proc = subprocess.run([sys.executable, "-m", "generain.training.launch", str(tmp_path / "spec.json")],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    s = json.loads((tmp_path / "summary.json").read_text())
    assert s["world_size"] == 2
    assert s["steps"] == 2 * 5  # 40 samples over 2 ranks, batch 4: 5 steps per epoch
    assert s["effective_batch"] == 8
    assert "world_size=2" in proc.stdout + proc.stderr or "MEMBER: 2/2" in proc.stdout + proc.stderr


def test_bf16_mixed_precision_path_runs_on_cpu(corpus, tmp_path):
    """The GPU setting (bf16 autocast) on CPU: the loss stays finite and close to the float32 one."""
    ref = fit_model(**_kwargs(corpus, tmp_path / "fp32", "bert_pred_genes", epochs=1))
    s = fit_model(**_kwargs(corpus, tmp_path / "bf16", "bert_pred_genes", epochs=1, precision="bf16-mixed"))
    assert np.isfinite(s["final_val_loss"])
    assert s["final_val_loss"] == pytest.approx(ref["final_val_loss"], abs=0.05)


def test_fingerprint_tracks_result_settings_only(corpus, tmp_path):
    from dataclasses import replace

    from generain.training.resume import run_fingerprint

    kw = _kwargs(corpus, tmp_path)
    st = kw["settings"]
    assert run_fingerprint({**kw, "threads": 2, "resume": None}) == run_fingerprint(kw)  # how it runs, not what
    for runtime in ({"num_workers": 3}, {"progress_bar": True}, {"checkpoint_every_n_steps": 9},
                    {"accelerator": "gpu"}, {"launcher": "srun"}, {"compile": True}):
        assert run_fingerprint({**kw, "settings": replace(st, **runtime)}) == run_fingerprint(kw), runtime
    for result in ({"max_lr": 1e-3}, {"epochs": 4}, {"precision": "bf16-mixed"}, {"devices": 2}):
        assert run_fingerprint({**kw, "settings": replace(st, **result)}) != run_fingerprint(kw), result
    assert run_fingerprint({**kw, "seed": 8}) != run_fingerprint(kw)


def test_train_settings_are_the_schema_section():
    """TrainSettings has exactly the schema's train keys, and the same runtime-only ones."""
    import dataclasses

    import yaml

    from conftest import REPO
    from generain.utils import runtime_fields

    spec = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())["properties"]["train"]["properties"]
    assert {f.name for f in dataclasses.fields(TrainSettings)} == set(spec)
    assert set(runtime_fields(TrainSettings)) == {k for k, v in spec.items() if v.get("runtime")}
    with pytest.raises(Exception, match=r"config train: missing keys \['epochs'\], unknown keys \['epoch'\]"):
        TrainSettings.from_mapping({**{k: v for k, v in schema_defaults("train").items() if k != "epochs"},
                                    "epoch": 3})
