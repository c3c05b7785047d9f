"""Length grouping in training: padding fraction and real tokens/s, without and with it, side by side.

A generated token corpus whose samples hold fewer genes than the sequence
length (lengths drawn uniformly from ``--min-length`` to ``--length``, as in
corpora of samples with few detected genes) is trained one epoch at a time,
alternating the two settings ``--rounds`` times in one process so that
machine noise hits both alike. Reported: the share of padded positions in
the batches the model computes on, and real (non-padding) tokens per second
of the training loop (median over rounds), with their ratio.

Usage::

    python benchmarks/length_grouping.py --samples 480 --length 512 --model-type bert_pred_genes --rounds 3
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import schema_defaults  # noqa: E402  (the schema's train defaults)

from generain.tokenize import write_token_shards  # noqa: E402
from generain.training.data import EpochSampler, MEGABATCH_BATCHES  # noqa: E402
from generain.training.fit import TrainSettings, fit_model  # noqa: E402


def padding_fraction(lengths: np.ndarray, order: list[int], batch: int, full: int, cut: bool) -> float:
    """Padded share of the positions of the batches of ``order`` (cut after each batch's longest + 1, or full)."""
    b = [lengths[order[a:a + batch]] for a in range(0, len(order), batch)]
    width = [min(full, int(x.max()) + 1) if cut else full for x in b]
    return 1 - sum(int(x.sum()) for x in b) / sum(w * len(x) for w, x in zip(width, b))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=480)
    ap.add_argument("--length", type=int, default=512)
    ap.add_argument("--min-length", type=int, default=32)
    ap.add_argument("--genes", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--model-type", default="bert_pred_genes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    lengths = rng.integers(args.min_length, args.length + 1, args.samples)
    genes = np.zeros((args.samples, args.length), np.uint16)
    for i, n in enumerate(lengths):
        genes[i, :n] = rng.choice(np.arange(3, args.genes + 3), size=n, replace=False)
    expr = np.where(genes > 0, rng.integers(1, 101, genes.shape), 0).astype(np.uint8)
    tmp = Path(tempfile.mkdtemp())
    write_token_shards(tmp / "shards", tmp / "index.parquet", sample_ids=np.array([f"s{i}" for i in range(args.samples)]),
                       gene_tokens=genes, expr_tokens=expr, n_tokens=lengths.astype(np.int32),
                       split=np.array(["train"] * (args.samples - 8) + ["validation"] * 8, dtype=object))
    train_len = lengths[: args.samples - 8]
    results: dict[str, list[float]] = {"plain": [], "grouped": []}
    pad = {}
    for grouped, name in ((False, "plain"), (True, "grouped")):
        s = EpochSampler(len(train_len), seed=0, shuffle=True,
                         **({"lengths": train_len, "group_size": args.batch * MEGABATCH_BATCHES} if grouped else {}))
        pad[name] = padding_fraction(train_len, list(s), args.batch, args.length, cut=grouped)
    for r in range(args.rounds):
        for grouped, name in ((False, "plain"), (True, "grouped")):
            out = tmp / f"{name}_{r}"
            train = {**schema_defaults("train"), "epochs": 1, "batch_size": args.batch, "accelerator": "cpu",
                     "devices": 1, "progress_bar": False, "checkpoint_every_n_steps": 10_000, "num_workers": 0,
                     "group_by_length": grouped}
            summ = fit_model(model_type=args.model_type, shard_dir=str(tmp / "shards"),
                             index_path=str(tmp / "index.parquet"), n_genes=args.genes + 3, length=args.length,
                             checkpoint_path=str(out / "model.pt"), metrics_path=str(out / "metrics.csv"),
                             summary_path=str(out / "summary.json"),
                             model=dict(n_layer=2, n_head=4, n_embd=64, n_inner=256, dropout=0.05),
                             settings=TrainSettings.from_mapping(train), seed=0, threads=args.threads)
            results[name].append(float(train_len.sum()) / summ["seconds"])
    med = {k: statistics.median(v) for k, v in results.items()}
    print(json.dumps({"machine": platform.processor() or platform.machine(), "threads": args.threads,
                      "samples": int(len(train_len)), "length": args.length, "model_type": args.model_type,
                      "mean_real_tokens": round(float(train_len.mean()), 1),
                      "padding_fraction": {k: round(v, 4) for k, v in pad.items()},
                      "real_tokens_per_s": {k: round(v) for k, v in med.items()},
                      "speedup": round(med["grouped"] / med["plain"], 2)}, indent=1))


if __name__ == "__main__":
    main()
