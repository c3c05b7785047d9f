"""Planted-module recovery against corpus size: static and contextual gene embeddings and the expression SVD.

For each sample count, a generated ARCHS4-layout file (``generain.simulate``:
``--genes 8000 --modules 40 --in-modules 0.8``) goes through this project's
own steps (CP10M, log10, the mean filter, Binning-By-Gene, tokenization),
each model type of ``--models`` trains at the demo's shape and settings
(config/config.yaml: 2 layers, hidden 64, 512 tokens, 10 epochs), and three
embeddings of the genes are scored on the planted modules:

- ``static``: the model's input gene embedding (what export_embeddings writes);
- ``contextual``: the mean hidden state (``--layer``, default -2) over the samples holding the gene;
- ``svd``: the expression SVD baseline (same dimension).

Scores: ``purity10``, the mean share of a module gene's 10 nearest genes
(cosine, among all embedded genes) that are in its module; ``pair_auc``, the
ROC AUC of cosine similarity separating same-module from other pairs of
module genes; ``pair_auc_centred``, the same after subtracting the mean
vector. Samples failing the planted QC are dropped first.

With ``--perturb`` the largest corpus' models also get the perturbation
check: deleting and overexpressing a module gene (the module gene in the
most sequences) should shift its module-mates more than other genes (AUC,
module-mates vs the rest, of mean_shift, of excess_shift, the shift beyond
the rank-matched null's, and of its z-score; share of module-mates at FDR <
0.05), and perturbing a gene in no module should not (AUC near 0.5). The
one-sided test the other way (``fdr_normal_less``: shifted *less* than the
null) is scored too, as the share of module-mates and of the other genes
it finds at FDR < 0.05.

Usage::

    python benchmarks/learning_curve.py --samples 300 1000 3000 --models gpt --perturb
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from sklearn.metrics import roc_auc_score

from generain import inference, io, normalize, perturb, simulate, tokenize
from generain.baselines import svd_embedding
from generain.training.fit import TrainSettings, fit_model

REPO = Path(__file__).resolve().parents[1]


def scores(vectors: np.ndarray, modules: np.ndarray) -> dict[str, float]:
    """purity10 and pair_auc of embedded genes (rows) with their planted modules (-1: none).

    ``pair_auc_centred`` is pair_auc after subtracting the mean vector over the genes: hidden states can share a
    large common direction (anisotropy) that raises every cosine and crowds the pairs' similarities together;
    centring removes it. purity10 is scored on the vectors as given only.
    """
    inmod = np.flatnonzero(modules >= 0)
    iu = np.triu_indices(len(inmod), 1)
    same = (modules[inmod][:, None] == modules[inmod][None, :])[iu]
    out = {}
    for name, v in (("", vectors), ("_centred", vectors - vectors.mean(0))):
        x = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        sim = x @ x.T
        np.fill_diagonal(sim, -np.inf)
        if not name:
            nn = np.argsort(-sim[inmod], axis=1)[:, :10]
            out["purity10"] = round(float((modules[nn] == modules[inmod, None]).mean()), 4)
        out["pair_auc" + name] = round(float(roc_auc_score(same, sim[np.ix_(inmod, inmod)][iu])), 4)
    return out


def corpus(path: Path, truth: simulate.PlantedArchs4, out: Path, length: int, seed: int):
    """Tokens of the passing samples; returns (vocab, kept genes with module, log matrix, shard dir, index)."""
    cm = io.read_archs4(path, progress=False)
    fails = truth.samples.set_index("sample_id").loc[cm.sample_ids, "fails"].fillna("").to_numpy()
    log = normalize.cp10m_log10(cm.counts[:, fails == ""])
    keep = log.mean(1) > 0.1
    genes = truth.genes[keep].reset_index(drop=True).assign(species="human")
    log = log[keep]
    sc, eligible = normalize.gene_scores(log, "binning", n_bins=2000)
    vocab = tokenize.build_vocab(genes)
    ids = vocab["token_id"].to_numpy()[3:]
    gt, et, nt = tokenize.tokenize_samples(sc, eligible, log, ids, length=length)
    n = gt.shape[0]
    split = tokenize.split_samples(n, validation_fraction=0.1, seed=seed)
    write = dict(sample_ids=np.asarray(cm.sample_ids)[fails == ""], gene_tokens=gt, expr_tokens=et,
                 n_tokens=nt, split=split)
    index = tokenize.write_token_shards(out / "shards", out / "index.parquet", **write)
    return vocab, genes, log, index


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, nargs="+", default=[300, 1000, 3000, 10000])
    ap.add_argument("--models", nargs="+", default=["gpt", "bert_pred_genes", "bert_pred_expr"])
    ap.add_argument("--genes", type=int, default=8000)
    ap.add_argument("--modules", type=int, default=40)
    ap.add_argument("--in-modules", type=float, default=0.8)
    ap.add_argument("--epochs", type=int, default=None, help="default: the demo's train.epochs")
    ap.add_argument("--perturb", action="store_true", help="the perturbation check on the largest corpus")
    ap.add_argument("--perturb-samples", type=int, default=200)
    ap.add_argument("--layer", type=int, default=-2,
                    help="hidden-state layer of the contextual embeddings and the perturbation check (default: -2, "
                         "Geneformer's and the workflow's; -1: the last)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="keep the work here (default: a temporary folder)")
    ap.add_argument("--reuse", action="store_true", help="use the finished models already in --out (no training)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())["properties"]["train"]["properties"]
    train = {**{k: v["default"] for k, v in schema.items() if "default" in v}, **cfg["train"]}
    if a.epochs:
        train["epochs"] = a.epochs
    root = Path(a.out or tempfile.mkdtemp())
    rows, checks = [], []
    for n in a.samples:
        work = root / f"n{n}"
        work.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(a.seed)
        ids = [f"ENSG9{i:010d}" for i in range(a.genes)]
        mods = np.where(rng.random(a.genes) < a.in_modules, rng.integers(0, a.modules, a.genes), -1)
        truth = simulate.write_archs4(work / "counts.h5", gene_ids=ids, symbols=[f"GENE{i}" for i in range(a.genes)],
                                      biotypes=["protein_coding"] * a.genes, modules=mods, n_samples=n,
                                      n_modules=a.modules, seed=a.seed)
        vocab, genes, log, index = corpus(work / "counts.h5", truth, work, cfg["tokens"]["length"], a.seed)
        modules = genes["module"].to_numpy()
        table = vocab.iloc[3:].reset_index(drop=True)[["token", "ensembl_id", "symbol", "biotype", "species"]]
        svd = svd_embedding(io.Matrix(log, genes[["ensembl_id"]], pd.DataFrame(), {}),
                            table.assign(embedding=[np.zeros(1, np.float32)] * len(table)),
                            dim=cfg["model"]["n_embd"], seed=a.seed)
        rows.append({"samples": n, "passing": int(len(index)), "model": "expression SVD", "embedding": "svd",
                     **scores(np.stack(svd["embedding"]), modules)})
        print(json.dumps(rows[-1]), flush=True)
        for model_type in a.models:
            out = work / model_type
            t0 = time.perf_counter()
            if a.reuse and (out / "model.pt").exists() and (out / "summary.json").exists():
                seconds = json.loads((out / "summary.json").read_text())["seconds"]  # the finished model of --out
            else:
                fit_model(model_type=model_type, shard_dir=str(work / "shards"), index_path=str(work / "index.parquet"),
                          n_genes=len(vocab), length=cfg["tokens"]["length"], checkpoint_path=str(out / "model.pt"),
                          metrics_path=str(out / "metrics.csv"), summary_path=str(out / "summary.json"),
                          model=cfg["model"], settings=TrainSettings.from_mapping({**train, "progress_bar": False}),
                          seed=a.seed, threads=a.threads)
                seconds = time.perf_counter() - t0
            from generain.training.checkpoint import load_model

            _, model = load_model(out / "model.pt")
            static = model.gene_embedding().numpy()[3:]
            rows.append({"samples": n, "passing": int(len(index)), "model": model_type, "embedding": "static",
                         "train_s": round(seconds), **scores(static, modules)})
            print(json.dumps(rows[-1]), flush=True)
            shards = tokenize.TokenShards(work / "shards", index)
            emb = inference.embed_corpus(model, model_type, shards, np.arange(len(index)), layer=a.layer,
                                         vocab_size=len(vocab), batch_size=16)
            seen, ctx = emb.contextual()
            rows.append({"samples": n, "passing": int(len(index)), "model": model_type, "embedding": "contextual",
                         "genes_seen": int(len(seen)), **scores(ctx, modules[seen - 3])})
            print(json.dumps(rows[-1]), flush=True)
            if a.perturb and n == max(a.samples):
                checks += perturbation_checks(model, model_type, shards, index, modules, a)
    print(json.dumps({"machine": platform.processor() or platform.machine(), "threads": a.threads, "layer": a.layer,
                      "genes": a.genes, "modules": a.modules, "in_modules": a.in_modules, "epochs": train["epochs"],
                      "table": rows, "perturbation": checks}, indent=1))


def perturbation_checks(model, model_type, shards, index, modules, a) -> list[dict]:
    """Delete and overexpress the module gene in most sequences, and the no-module gene in most sequences."""
    genes, expr = inference.read_rows(shards, np.arange(len(index)))
    counts = np.bincount(genes.ravel(), minlength=len(modules) + 3)[3:]
    out = []
    ref = None  # the module gene's module: the no-module gene is scored on it too (expected AUC ~0.5)
    for kind, pick in (("module gene", modules >= 0), ("no-module gene", modules < 0)):
        g = int(np.flatnonzero(pick)[np.argmax(counts[pick])])
        ref = modules[g] if ref is None else ref
        token = g + 3
        rows = np.flatnonzero((genes == token).any(1))[: a.perturb_samples]
        for mode in ("delete", "overexpress"):
            t0 = time.perf_counter()
            res = perturb.perturbation_effects(model, model_type, genes[rows], expr[rows], np.array([token]), mode,
                                               layer=a.layer, n_draws=100, window=10,
                                               pool=np.arange(3, len(modules) + 3), seed=a.seed, batch_size=32)
            sec = time.perf_counter() - t0
            mates = modules[res.genes["token"].to_numpy() - 3] == ref
            def auc_of(column: str) -> float:
                v = res.genes[column].to_numpy(dtype=float)
                ok = np.isfinite(v)
                m = mates[ok]
                return round(float(roc_auc_score(m, v[ok])), 4) if 0 < m.sum() < len(m) else float("nan")

            def share(rows_mask: np.ndarray, column: str) -> float:
                return round(float((res.genes[column].to_numpy()[rows_mask] < 0.05).mean()), 4)

            out.append({"model": model_type, "gene": kind, "scored_module": int(ref), "mode": mode,
                        "samples": int(len(rows)), "auc_module_vs_rest": auc_of("mean_shift"),
                        # the shift beyond what perturbing a rank-matched gene does (the positional change
                        # of moving or removing a token is in both), and its z-score against the null draws
                        "auc_excess_shift": auc_of("excess_shift"), "auc_z_score": auc_of("z_score"),
                        "module_fdr_0.05": share(mates, "fdr"),
                        "module_fdr_normal_0.05": share(mates, "fdr_normal"),
                        # the one-sided test the other way: module-mates steadied (shifted less than the null)
                        "module_fdr_normal_less_0.05": share(mates, "fdr_normal_less"),
                        "rest_fdr_normal_less_0.05": share(~mates, "fdr_normal_less"),
                        "s_per_1000_samples": round(1000 * sec / len(rows), 1)})
            print(json.dumps(out[-1]), flush=True)
    return out


if __name__ == "__main__":
    main()
