"""Rules finetune_genes and finetune_samples: cross-validated fine-tuning of a model, with baselines.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``). The method is in
:mod:`generain.finetune`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from .. import finetune, inference, io, plots, tokenize
from ..model import IGNORE_INDEX
from ..training.checkpoint import load_model
from ..utils import InputError, PathLike, atomic_path, runtime_fields, timed, write_json, write_parquet
from .attention import gene_set_tokens
from .samples import corpus_samples, expression_pca

log = logging.getLogger(__name__)


@dataclass
class FinetuneSettings:
    """Config ``finetune`` without its tasks, plus the run's seed; defaults are the schema's (tested).

    ``device`` and ``launcher`` only change how the job runs (schema
    ``runtime: true``); they are not part of the fold checkpoints' key.
    """

    folds: int = 5
    train_layers: int = 0
    gene_epochs: int = 1
    sample_epochs: int = 10
    learning_rate: float = 1e-3
    batch_size: int = 16
    seed: int = 0
    devices: int = 1
    num_nodes: int = 1
    device: str = field(default="cpu", metadata={"runtime": True})
    launcher: str = field(default="auto", metadata={"runtime": True})

    def __post_init__(self) -> None:
        if self.devices * self.num_nodes > 1 and ":" in self.device:
            raise ValueError(f"finetune.device {self.device!r} names one GPU, but devices x num_nodes is "
                             f"{self.devices * self.num_nodes}: write device: cuda (each rank takes its own GPU)")

    def fit(self, epochs: int, batch_size: int | None = None) -> finetune.FitSettings:
        gpu = self.device.startswith("cuda")
        devices: int | list[int] = self.devices
        if gpu and ":" in self.device:  # one named GPU
            devices = [int(self.device.split(":")[1])]
        return finetune.FitSettings(epochs=epochs, learning_rate=self.learning_rate,
                                    batch_size=batch_size or self.batch_size, seed=self.seed,
                                    accelerator="gpu" if gpu else "cpu", devices=devices, num_nodes=self.num_nodes)


def _ckpt_root(out_dir: Path, task: dict[str, Any], settings: FinetuneSettings, checkpoint: PathLike,
               *data: np.ndarray) -> Path:
    """Folder of the folds' Lightning checkpoints, keyed by everything a fold's result depends on.

    The task, the settings that change results, the model file's contents
    (size and modification time) and the labelled data and folds (``data``):
    a resumed job only ever continues the same computation.
    """
    h = hashlib.sha256(json.dumps({"task": task, "settings": {k: v for k, v in asdict(settings).items()
                                                              if k not in runtime_fields(settings)}}, sort_keys=True).encode())
    st = Path(checkpoint).stat()
    h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    for a in data:
        h.update(np.ascontiguousarray(a).tobytes())
    return out_dir / "checkpoints" / h.hexdigest()[:12]


def _done(ckpt_root: Path) -> None:
    """Remove the checkpoints of a finished job: they only serve to resume an interrupted one."""
    shutil.rmtree(ckpt_root.parent, ignore_errors=True)


def _save(clf: finetune.Classifier, classes: list[str], task: dict[str, Any], path: PathLike) -> None:
    with atomic_path(path) as tmp:
        torch.save({"model_type": clf.model_type, "model_config": clf.base.cfg.to_dict(),
                    "state_dict": clf.base.state_dict(), "head": clf.head.state_dict(), "level": clf.level,
                    "classes": classes, "task": task, "train_layers": clf.train_layers}, tmp)


def _summarise(per_fold: pd.DataFrame) -> dict[str, Any]:
    cols = [c for c in per_fold.columns if c not in ("fold", "method")]
    return {m: {c: round(float(g[c].mean()), 4) for c in cols} for m, g in per_fold.groupby("method")}


def finetune_genes(
    *,
    checkpoint: PathLike,
    vocab: PathLike,
    shards: PathLike,
    index: PathLike,
    gene_sets: Sequence[PathLike],
    task: dict[str, Any],
    settings: FinetuneSettings,
    out_metrics: PathLike,
    out_predictions: PathLike,
    out_model: PathLike,
    out_plot: PathLike,
    model_name: str = "",
) -> dict[str, Any]:
    """Gene classification: positives (a gene set) against negatives, cross-validated over genes.

    ``task``: name, positives (a term id of the gene-set files), negatives
    (a term id, or absent: the other protein-coding genes). Genes count when
    they occur in the corpus' sequences. Outputs: ``metrics.json`` (per fold
    and mean AUC of the fine-tuned classifier and of a logistic regression on
    the model's static gene embedding over the same folds), ``predictions.parquet``
    (per gene: ensembl_id, symbol, label, fold, probability, baseline_probability,
    n_occurrences), ``model.pt`` (the model and head fitted on all labelled genes)
    and a per-fold plot.

    Raises
    ------
    InputError
        If a set is unknown, or a class has fewer genes than folds.
    """
    name = task["name"]
    model_type, base = load_model(checkpoint)
    v = tokenize.read_vocab(vocab)
    idx = pd.read_parquet(index)
    genes, expr = inference.read_rows(tokenize.TokenShards(shards, idx), np.arange(len(idx)))
    seen = np.zeros(len(v), bool)  # genes at the positions the model reads (the GPT: all but the last)
    seen[np.unique(inference.model_batch(model_type, genes, expr).positions.numpy())] = True
    seen[0] = False
    pos = gene_set_tokens(v, gene_sets, task["positives"], what=f"finetune task {name!r} positives") & seen
    if task.get("negatives"):
        neg = gene_set_tokens(v, gene_sets, task["negatives"], what=f"finetune task {name!r} negatives") & seen
    else:
        neg = (v["biotype"] == "protein_coding").to_numpy() & seen
    neg &= ~pos
    tokens = np.flatnonzero(pos | neg)
    y = pos[tokens].astype(np.int64)
    folds = finetune.gene_folds(y, folds=settings.folds, seed=settings.seed, task=name)
    static = base.gene_embedding().numpy()[tokens]
    ckpt_root = _ckpt_root(Path(out_model).parent, task, settings, checkpoint, tokens, y, folds, genes)
    frozen = settings.train_layers == 0
    # a step sees batch_size samples: their token states (head only), or the sequences themselves
    fit = settings.fit(settings.gene_epochs, settings.batch_size * genes.shape[1] if frozen else None)
    prob = np.full(len(tokens), np.nan)
    base_prob = np.full(len(tokens), np.nan)
    n_occ = np.zeros(len(tokens), np.int64)
    rows = []
    if frozen:  # the base model's states once; only the head trains
        clf0 = finetune.Classifier(copy.deepcopy(base), model_type, 2, level="gene")
        with timed(f"{model_name or model_type}: last-layer states of {len(genes)} sequences"):
            positions, feats = finetune.last_layer_states(clf0, genes, expr, batch_size=settings.batch_size,
                                                          device=settings.device)

    def fit_on(train_tokens: np.ndarray, train_y: np.ndarray, ckpt: Path) -> finetune.Classifier:
        table = np.full(len(v), IGNORE_INDEX, dtype=np.int64)
        table[train_tokens] = train_y
        clf = finetune.Classifier(copy.deepcopy(base), model_type, 2, level="gene", train_layers=settings.train_layers,
                                  seed=settings.seed)
        if frozen:
            lab = table[positions]
            keep = lab != IGNORE_INDEX
            data = finetune.feature_dataset(feats[keep], lab[keep])
            weights = finetune.balanced_weights(lab, 2)
        else:
            data = finetune.sequence_dataset(genes, expr)
            weights = finetune.balanced_weights(table[genes[genes > 0]], 2)
        return finetune.fit_classifier(clf, data, fit, class_weights=weights, ckpt_dir=str(ckpt),
                                       label_of_token=torch.as_tensor(table))

    def predict(clf: finetune.Classifier, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if frozen:
            pos_, f_ = positions, feats
        else:
            pos_, f_ = finetune.last_layer_states(clf, genes, expr, batch_size=settings.batch_size,
                                                  device=settings.device)
            clf = clf.cpu()
        with torch.no_grad():
            p = torch.softmax(clf.head(torch.as_tensor(f_)), -1)[:, 1].numpy()
        return finetune.gene_probabilities(pos_, p, tokens[which])

    for k in range(settings.folds):
        train, test = folds != k, folds == k
        with timed(f"{name}: fold {k + 1}/{settings.folds} ({int(train.sum())} train, {int(test.sum())} test genes)"):
            clf = fit_on(tokens[train], y[train], ckpt_root / f"fold{k}")
            prob[test], n_occ[test] = predict(clf, test)
        base_prob[test] = finetune.logistic_baseline(static, y, np.flatnonzero(train), np.flatnonzero(test), 2)[:, 1]
        for method, p in (("finetuned", prob[test]), ("static_embedding", base_prob[test])):
            two = np.stack([1 - p, p], 1)
            rows.append({"fold": k, "method": method, **finetune.metrics(y[test], two)})
    per_fold = pd.DataFrame(rows)
    with timed(f"{name}: the final model on all {len(tokens)} genes"):
        clf = fit_on(tokens, y, ckpt_root / "all")
    if not finetune.is_rank_zero():  # under DDP, rank 0 writes the outputs
        return {}
    _save(clf, ["negative", "positive"], task, out_model)
    info = v.set_index("token_id").loc[tokens]
    table = pa.Table.from_pydict({
        "ensembl_id": info["ensembl_id"].astype(str).tolist(), "symbol": info["symbol"].astype(str).tolist(),
        "label": y.tolist(), "fold": folds.tolist(), "probability": prob.astype(np.float32),
        "baseline_probability": base_prob.astype(np.float32), "n_occurrences": n_occ.tolist()})
    write_parquet(table, out_predictions)
    _done(ckpt_root)
    return _finish(name, "gene", per_fold, {"positives": int(y.sum()), "negatives": int((1 - y).sum()),
                                            "scheme": "stratified_over_genes",
                                            "world_size": settings.devices * settings.num_nodes},
                   settings, out_metrics, out_plot, model_name or model_type)


def finetune_samples(
    *,
    checkpoint: PathLike,
    shards: PathLike,
    index: PathLike,
    qc_table: PathLike,
    matrix: PathLike,
    task: dict[str, Any],
    settings: FinetuneSettings,
    out_metrics: PathLike,
    out_predictions: PathLike,
    out_model: PathLike,
    out_plot: PathLike,
    model_name: str = "",
) -> dict[str, Any]:
    """Sample classification from a sample-sheet column, cross-validated (grouped by series where possible).

    ``task``: name, sheet (TSV or CSV with a sample_id column), column (the
    label; empty cells are unlabelled). Outputs: ``metrics.json`` (per fold and
    mean accuracy, macro F1 and AUC of the fine-tuned classifier and of a
    logistic regression on the expression PCA of the same samples, as many
    components as the model's hidden size), ``predictions.parquet`` (per
    labelled sample: sample_id, series_id, label, fold, predicted,
    probability of each label), ``model.pt`` and a per-fold plot.

    Raises
    ------
    InputError
        If the sheet or column is missing, no corpus sample is labelled, or a
        label has fewer samples than folds.
    """
    name = task["name"]
    sheet = Path(task["sheet"])
    if not sheet.exists():
        raise InputError(f"finetune task {name!r}: sample sheet {sheet} not found")
    labels = pd.read_csv(sheet, sep=None, engine="python", dtype=str, keep_default_na=False)
    for col in ("sample_id", task["column"]):
        if col not in labels.columns:
            raise InputError(f"{sheet}: no column {col!r} (finetune task {name!r}); has {list(labels.columns)}")
    labels = labels.loc[labels[task["column"]].str.strip() != "", ["sample_id", task["column"]]].drop_duplicates()
    if labels["sample_id"].duplicated().any():
        dup = labels.loc[labels["sample_id"].duplicated(), "sample_id"].head(3).tolist()
        raise InputError(f"{sheet}: samples with two different labels in column {task['column']!r}, e.g. {dup}")
    meta = corpus_samples(index, qc_table)
    rows_ = meta.reset_index().merge(labels, on="sample_id", how="inner")
    if rows_.empty:
        raise InputError(f"finetune task {name!r}: none of the {len(labels)} labelled samples of {sheet} is in "
                         "the corpus (sample ids must match the counts' sample ids; a config whose datasets "
                         "replace the demo's sets finetune.sample_tasks to its own tasks or [])")
    classes = sorted(rows_[task["column"]].unique())
    y = rows_[task["column"]].map({c: i for i, c in enumerate(classes)}).to_numpy(dtype=np.int64)
    series = rows_["series_id"].astype(str).to_numpy()
    folds, scheme = finetune.sample_folds(rows_[task["column"]].to_numpy(dtype=str), series, folds=settings.folds,
                                          seed=settings.seed, task=name)
    model_type, base = load_model(checkpoint)
    genes, expr = inference.read_rows(tokenize.TokenShards(shards, pd.read_parquet(index)), rows_["index"].to_numpy())
    ids, pcs = expression_pca(io.read_matrix(matrix), rows_["sample_id"].to_numpy(), dim=base.cfg.n_embd,
                              seed=settings.seed)
    if len(ids) != len(rows_):
        raise InputError(f"{matrix}: {len(rows_) - len(ids)} labelled samples are missing from the expression matrix")
    ckpt_root = _ckpt_root(Path(out_model).parent, task, settings, checkpoint, y, folds, genes,
                           rows_["sample_id"].to_numpy(dtype=str))
    fit = settings.fit(settings.sample_epochs)
    K = len(classes)
    frozen = settings.train_layers == 0
    if frozen:
        clf0 = finetune.Classifier(copy.deepcopy(base), model_type, K, level="sample")
        _, feats = finetune.last_layer_states(clf0, genes, expr, batch_size=settings.batch_size,
                                              device=settings.device)

    def fit_on(train: np.ndarray, ckpt: Path) -> finetune.Classifier:
        clf = finetune.Classifier(copy.deepcopy(base), model_type, K, level="sample", train_layers=settings.train_layers,
                                  seed=settings.seed)
        data = (finetune.feature_dataset(feats[train], y[train]) if frozen
                else finetune.sequence_dataset(genes[train], expr[train], y[train]))
        return finetune.fit_classifier(clf, data, fit, class_weights=finetune.balanced_weights(y[train], K),
                                       ckpt_dir=str(ckpt))

    def predict(clf: finetune.Classifier, test: np.ndarray) -> np.ndarray:
        f_ = feats[test] if frozen else finetune.last_layer_states(clf, genes[test], expr[test],
                                                                     batch_size=settings.batch_size,
                                                                     device=settings.device)[1]
        clf = clf.cpu()
        with torch.no_grad():
            return torch.softmax(clf.head(torch.as_tensor(f_)), -1).numpy()

    prob = np.zeros((len(y), K))
    base_prob = np.zeros((len(y), K))
    rows = []
    for k in range(settings.folds):
        train, test = np.flatnonzero(folds != k), np.flatnonzero(folds == k)
        with timed(f"{name}: fold {k + 1}/{settings.folds} ({len(train)} train, {len(test)} test samples)"):
            prob[test] = predict(fit_on(train, ckpt_root / f"fold{k}"), test)
        base_prob[test] = finetune.logistic_baseline(pcs, y, train, test, K)
        for method, p in (("finetuned", prob[test]), ("expression_pca", base_prob[test])):
            rows.append({"fold": k, "method": method, **finetune.metrics(y[test], p)})
    per_fold = pd.DataFrame(rows)
    with timed(f"{name}: the final model on all {len(y)} samples"):
        clf = fit_on(np.arange(len(y)), ckpt_root / "all")
    if not finetune.is_rank_zero():  # under DDP, rank 0 writes the outputs
        return {}
    _save(clf, classes, task, out_model)
    pred = pd.DataFrame({"sample_id": rows_["sample_id"], "series_id": series, "label": rows_[task["column"]],
                         "fold": folds, "predicted": np.asarray(classes, dtype=object)[prob.argmax(1)]})
    for i, c in enumerate(classes):
        pred[f"probability_{c}"] = prob[:, i].astype(np.float32)
    write_parquet(pa.Table.from_pandas(pred, preserve_index=False), out_predictions)
    _done(ckpt_root)
    counts = {c: int((y == i).sum()) for i, c in enumerate(classes)}
    return _finish(name, "sample", per_fold, {"samples_per_label": counts, "series": int(len(np.unique(series))),
                                              "scheme": scheme, "world_size": settings.devices * settings.num_nodes}, settings, out_metrics, out_plot,
                   model_name or model_type)


def _finish(name: str, kind: str, per_fold: pd.DataFrame, extra: dict[str, Any], settings: FinetuneSettings,
            out_metrics: PathLike, out_plot: PathLike, model_name: str) -> dict[str, Any]:
    summary = {"task": name, "kind": kind, **extra, "folds": settings.folds,
               "train_layers": settings.train_layers, "mean": _summarise(per_fold),
               "per_fold": per_fold.round(4).to_dict(orient="records")}
    write_json(summary, out_metrics)
    plots.finetune_plot(per_fold, out_plot, title=f"{model_name}: fine-tuning task {name} ({kind}s, "
                                                  f"{settings.folds} folds)")
    log.info("%s (%s): %s", name, kind, summary["mean"])
    return summary


def launch_finetune(kind: str, *, threads: int | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run :func:`finetune_genes` (``kind`` "genes") or :func:`finetune_samples` ("samples"), on one or many devices.

    One device: in this process. ``settings.devices`` x ``num_nodes`` above
    1: the arguments go to ``finetune_spec.json`` beside ``out_metrics`` and
    the ranks run ``python -m generain.stages.finetune`` on it, started as
    training's are (:func:`generain.training.launch.start_ranks`: ``srun``
    inside a Slurm job, else Lightning's local launcher; ``settings.launcher``
    forces one). Each rank runs the whole task; the classifiers train under
    DDP; rank 0 writes the outputs. A killed job resumes from the folds'
    checkpoints as a one-device job does. ``threads``: torch threads of each
    rank (and of this process for one device); None leaves torch's default.

    Returns
    -------
    dict
        The task's metrics (``metrics.json``).

    Raises
    ------
    ValueError
        For an unknown ``kind`` or launcher, or several nodes without Slurm.
    RuntimeError
        If the ranks fail.
    """
    from ..training.launch import start_ranks, use_srun

    if kind not in _KINDS:
        raise ValueError(f"kind must be one of {sorted(_KINDS)}, not {kind!r}")
    st: FinetuneSettings = kwargs["settings"]
    srun = use_srun(st.launcher, st.devices, st.num_nodes)
    if st.devices * st.num_nodes == 1 and not srun:
        if threads:
            torch.set_num_threads(threads)
        return _KINDS[kind](**kwargs)
    spec_path = Path(kwargs["out_metrics"]).parent / "finetune_spec.json"
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    write_json({"kind": kind, "threads": threads, **kwargs, "settings": asdict(st)}, spec_path)
    start_ranks("generain.stages.finetune", spec_path, devices=st.devices, nodes=st.num_nodes, srun=srun,
                what="fine-tuning")
    spec_path.unlink()
    return json.loads(Path(kwargs["out_metrics"]).read_text())


_KINDS = {"genes": finetune_genes, "samples": finetune_samples}


def main(argv: list[str] | None = None) -> None:
    """``python -m generain.stages.finetune SPEC.json``: one rank of :func:`launch_finetune`."""
    import sys

    from ..utils import setup_logging

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m generain.stages.finetune SPEC.json")
    setup_logging(None)
    spec = json.loads(Path(args[0]).read_text())
    kind, threads = spec.pop("kind"), spec.pop("threads", None)
    spec["settings"] = FinetuneSettings(**spec["settings"])
    if threads:
        torch.set_num_threads(threads)
    if spec["settings"].device.startswith("cuda") and torch.cuda.is_available():
        # this rank's GPU before anything runs on one (Lightning sets it only inside fit)
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK") or os.environ.get("SLURM_LOCALID") or 0))
    _KINDS[kind](**spec)


if __name__ == "__main__":
    main()
