"""Fine-tuning a pretrained model for gene and sample classification (Geneformer's recipe).

Geneformer (Theodoris et al., Nature 2023, Methods "Fine-tuning"; its
``classifier.py``): a classification head on the pretrained model's hidden
states, trained with few labels, the pretrained layers frozen or the last
few trained too; gene classification for 1 epoch, cell classification for
10; AdamW with linear warmup and decay. Here, for any model of the run
(trained here or imported):

- **gene classification**: a linear head on each token's last-layer hidden
  state; the labelled genes' tokens carry the labels (the other positions are
  ignored); a gene's prediction is the mean probability over the samples in
  which it occurs. Cross-validated over genes (stratified folds: no gene in
  both train and test), beside a logistic regression on the model's static
  gene embedding over the same folds (the property sweep's classifier).
- **sample classification**: a linear head on the mean last-layer hidden
  state over a sample's real tokens. Cross-validated with folds grouped by
  series (no study in both train and test) when the labelled samples span at
  least as many series as folds, otherwise stratified folds (with a logged
  warning), beside a logistic regression on the expression PCA of the same
  samples over the same folds.

With ``train_layers = 0`` (only the head trains) the base model's hidden
states are computed once (``torch.no_grad``) and the head is trained on them;
with ``train_layers = k`` the last k layers train too, on token batches.
Training runs in Lightning (:func:`fit_classifier`); the loss is
cross-entropy with balanced class weights (gene tasks are dominated by
negatives).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .inference import mean_over_real, model_batch, unframe
from .model import IGNORE_INDEX, BertMLM, GPT
from .training.module import step_seed
from .utils import InputError

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------
# Folds
# ---------------------------------------------------------------------------

def gene_folds(labels: np.ndarray, *, folds: int, seed: int, task: str) -> np.ndarray:
    """Stratified fold of each gene: int (n_genes,) in 0..folds-1 (seeded).

    Raises
    ------
    InputError
        If a class has fewer genes than folds (the message names the task and counts).
    """
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(labels, minlength=2)
    if counts.min() < folds:
        raise InputError(f"fine-tuning task {task!r}: {counts[1]} positive and {counts[0]} negative genes in the "
                         f"vocabulary's sequences; each class needs at least {folds} (finetune.folds)")
    out = np.empty(len(labels), dtype=np.int64)
    for k, (_, test) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(labels, labels)):
        out[test] = k
    return out


def sample_folds(labels: np.ndarray, series: np.ndarray, *, folds: int, seed: int, task: str) -> tuple[np.ndarray, str]:
    """Fold of each labelled sample (``labels`` (n,), any values), grouped by series where possible: (int (n,), scheme).

    ``scheme`` is ``grouped_by_series`` (scikit-learn's StratifiedGroupKFold:
    no series in two folds) when the samples span at least ``folds`` series
    and every label spans at least 2 (so that no fold trains without a
    label), else ``stratified`` (StratifiedKFold; logged as a warning:
    samples of one study then sit in train and test).

    Raises
    ------
    InputError
        If a class has fewer samples than folds.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2 or counts.min() < folds:
        raise InputError(f"fine-tuning task {task!r}: samples per label "
                         f"{dict(zip(classes.tolist(), counts.tolist()))}; needs 2 or more labels with at least "
                         f"{folds} samples each (finetune.folds)")
    out = np.empty(len(labels), dtype=np.int64)
    n_series = len(np.unique(series))
    # each label must span 2 series or more, or a fold would train without it
    per_label = min(len(np.unique(series[labels == c])) for c in classes)
    if n_series >= folds and per_label >= 2:
        split = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(labels, labels, groups=series)
        scheme = "grouped_by_series"
    else:
        why = (f"span {n_series} series, fewer than {folds} folds" if n_series < folds
               else "include a label found in one series only")
        log.warning("fine-tuning task %r: the labelled samples %s: stratified folds, so samples of one study are "
                    "in both train and test", task, why)
        split = StratifiedKFold(folds, shuffle=True, random_state=seed).split(labels, labels)
        scheme = "stratified"
    for k, (_, test) in enumerate(split):
        out[test] = k
    return out, scheme


# ---------------------------------------------------------------------------
# The classifier
# ---------------------------------------------------------------------------

class Classifier(nn.Module):
    """A pretrained model with a linear classification head.

    Parameters
    ----------
    base : GPT or BertMLM
        The pretrained model (its weights are trained only in the last
        ``train_layers`` layers).
    model_type : str
    n_classes : int
    level : {"gene", "sample"}
        ``gene``: logits per input position, float (B, T, n_classes);
        ``sample``: logits of the mean last-layer state over real positions, (B, n_classes).
    train_layers : int
        0: the head only; k: also the last k transformer layers (and the
        GPT's final LayerNorm).
    seed : int
        The head starts from N(0, 0.02) weights drawn from this seed and zero
        biases (BERT's initialisation), whatever the global random state.
    """

    def __init__(self, base: GPT | BertMLM, model_type: str, n_classes: int, *, level: str, train_layers: int = 0,
                 seed: int = 0) -> None:
        super().__init__()
        if level not in ("gene", "sample"):
            raise ValueError(f"level must be 'gene' or 'sample', not {level!r}")
        self.base, self.model_type, self.level, self.train_layers = base, model_type, level, train_layers
        self.head = nn.Linear(base.cfg.n_embd, n_classes)
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(self.head.weight.shape, generator=torch.Generator().manual_seed(seed))
                                   * 0.02)
            self.head.bias.zero_()
        blocks = base.h if isinstance(base, GPT) else base.layers
        if not 0 <= train_layers <= len(blocks):
            raise ValueError(f"train_layers {train_layers} is outside 0..{len(blocks)}")
        for p in base.parameters():
            p.requires_grad_(False)
        for block in list(blocks)[len(blocks) - train_layers:]:
            for p in block.parameters():
                p.requires_grad_(True)
        if train_layers and isinstance(base, GPT):
            for p in base.ln_f.parameters():
                p.requires_grad_(True)

    def features(self, genes: torch.Tensor, expr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Last-layer states (B, T, C), the gene token at each position (B, T) and the real-position mask (B, T)."""
        b = model_batch(self.model_type, genes, expr, device=genes.device, eos_token=self.base.cfg.eos_token)
        h = unframe(self.base.hidden_state(**b.kwargs, layer=-1), b)
        return h, b.positions, b.real

    def pool(self, h: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        """What the head reads: (B, T, C) per position (gene level) or (B, C) means (sample level)."""
        return h if self.level == "gene" else mean_over_real(h, real)

    def forward(self, genes: torch.Tensor, expr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(logits, positions, real) for int64 (B, L) gene tokens and expression bins (as in the token shards)."""
        h, positions, real = self.features(genes, expr)
        return self.head(self.pool(h, real)), positions, real


class FinetuneModule(L.LightningModule):
    """Lightning wrapper: cross-entropy with class weights, AdamW, linear warmup then linear decay.

    Batches are dicts: ``x`` (features, head only) and ``y``; or ``genes``,
    ``expr`` and ``y`` (sample labels (B,)), or ``genes``, ``expr`` and a
    token label table (gene labels: ``label_of_token`` int64 (vocab,)).
    """

    def __init__(self, clf: Classifier, *, lr: float, weight_decay: float, total_steps: int,
                 warmup_fraction: float, class_weights: torch.Tensor, label_of_token: torch.Tensor | None = None,
                 seed: int = 0, data: Dataset | None = None, batch_size: int = 1) -> None:
        super().__init__()
        self.clf, self.lr, self.weight_decay, self.seed = clf, lr, weight_decay, seed
        self.data, self.batch_size = data, batch_size
        self.total_steps, self.warmup_fraction = max(total_steps, 1), warmup_fraction
        self.register_buffer("class_weights", class_weights.float())
        self.register_buffer("label_of_token", label_of_token if label_of_token is not None else torch.zeros(0, dtype=torch.long))

    def train_dataloader(self) -> DataLoader:
        """This rank's share of the seeded per-epoch order (:class:`generain.training.data.EpochSampler`)."""
        from .training.data import EpochSampler

        assert self.data is not None
        return DataLoader(self.data, batch_size=self.batch_size,
                          sampler=EpochSampler(len(self.data), seed=self.seed, shuffle=True,
                                               num_replicas=self.trainer.world_size, rank=self.trainer.global_rank))

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # dropout of this step depends only on (seed, epoch, batch, rank): a resumed run repeats it exactly
        torch.manual_seed(step_seed(self.seed, self.current_epoch, batch_idx) + 7919 * self.global_rank)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if "x" in batch:
            logits, y = self.clf.head(batch["x"]), batch["y"]
        else:
            logits, positions, real = self.clf(batch["genes"], batch["expr"])
            y = batch["y"] if self.clf.level == "sample" else self.label_of_token[positions].masked_fill(~real, IGNORE_INDEX)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1), weight=self.class_weights,
                               ignore_index=IGNORE_INDEX)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self) -> Any:
        params = [p for p in self.clf.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        warm = max(1, int(self.warmup_fraction * self.total_steps))

        def factor(step: int) -> float:  # Geneformer's linear warmup and decay
            if step < warm:
                return (step + 1) / warm
            return max(0.0, (self.total_steps - step) / max(1, self.total_steps - warm))

        return {"optimizer": opt, "lr_scheduler": {"scheduler": torch.optim.lr_scheduler.LambdaLR(opt, factor),
                                                   "interval": "step"}}


class _Sequences(Dataset):
    def __init__(self, genes: np.ndarray, expr: np.ndarray, y: np.ndarray | None) -> None:
        self.genes, self.expr, self.y = genes, expr, y

    def __len__(self) -> int:
        return len(self.genes)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        out = {"genes": torch.as_tensor(self.genes[i], dtype=torch.long), "expr": torch.as_tensor(self.expr[i], dtype=torch.long)}
        if self.y is not None:
            out["y"] = torch.as_tensor(self.y[i], dtype=torch.long)
        return out


@dataclass
class FitSettings:
    """How one classifier is trained (config ``finetune``)."""

    epochs: int
    learning_rate: float
    batch_size: int
    weight_decay: float = 0.001
    warmup_fraction: float = 0.1
    accelerator: str = "cpu"
    seed: int = 0
    devices: int | list[int] = 1
    num_nodes: int = 1

    @property
    def world_size(self) -> int:
        """Ranks of the run: devices per node x nodes."""
        return (len(self.devices) if isinstance(self.devices, list) else self.devices) * self.num_nodes


def is_rank_zero() -> bool:
    """True outside DDP, and on global rank 0 of a DDP job: the one process that writes outputs."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def balanced_weights(y: np.ndarray, n_classes: int) -> torch.Tensor:
    """n / (n_classes * n_c) per class c of the labels ``y`` (ignored labels left out); 0 for an absent class."""
    y = y[y != IGNORE_INDEX]
    counts = np.bincount(y, minlength=n_classes).astype(np.float64)
    w = np.divide(len(y), n_classes * counts, out=np.zeros(n_classes), where=counts > 0)
    return torch.as_tensor(w, dtype=torch.float32)


def fit_classifier(clf: Classifier, data: Dataset, settings: FitSettings, *, class_weights: torch.Tensor,
                   label_of_token: torch.Tensor | None = None, ckpt_dir: str | None = None) -> Classifier:
    """Train ``clf`` (in place) on ``data`` with Lightning; returns it in eval mode on the CPU.

    With ``ckpt_dir`` Lightning writes ``last.ckpt`` there at every epoch's
    end, and a run that finds one resumes from it (a killed job continues).
    The sample order of an epoch depends only on (seed, epoch)
    (:class:`generain.training.data.EpochSampler`) and the dropout of a step
    only on (seed, epoch, batch, rank), so a resumed run ends with the weights
    of an uninterrupted one.

    With ``settings.devices`` x ``num_nodes`` above 1 this runs under
    Lightning's DDP strategy: each rank trains on its round-robin share of
    every epoch's order, ``batch_size`` samples per rank and step, gradients
    averaged over ranks: a step sees ``batch_size`` x world size samples,
    and equals one process' step of that batch when the ranks' batches hold
    equal numbers of labelled items and the class weights are 1 (otherwise
    each rank's mean counts equally; an epoch of n samples not divisible by
    the world size repeats a few, as ``EpochSampler`` wraps around).
    Every rank of the job must call this with the same arguments (see
    :func:`generain.stages.finetune.launch_finetune`).

    Raises
    ------
    RuntimeError
        If Lightning's world size is not devices x nodes.
    """
    L.seed_everything(settings.seed, workers=True, verbose=False)
    world = settings.world_size
    # every rank takes ceil(n / world) samples per epoch (EpochSampler wraps around)
    total = math.ceil(math.ceil(len(data) / world) / settings.batch_size) * settings.epochs
    module = FinetuneModule(clf, lr=settings.learning_rate, weight_decay=settings.weight_decay, total_steps=total,
                            warmup_fraction=settings.warmup_fraction, class_weights=class_weights,
                            label_of_token=label_of_token, seed=settings.seed, data=data,
                            batch_size=settings.batch_size)
    callbacks, resume = [], None
    if ckpt_dir is not None:
        from pathlib import Path

        callbacks.append(L.pytorch.callbacks.ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0,
                                                             every_n_epochs=1))
        last = Path(ckpt_dir) / "last.ckpt"
        resume = str(last) if last.exists() else None
    trainer = L.Trainer(max_epochs=settings.epochs, accelerator=settings.accelerator, devices=settings.devices,
                        num_nodes=settings.num_nodes, strategy="ddp" if world > 1 else "auto",
                        use_distributed_sampler=False, logger=False, callbacks=callbacks,
                        enable_checkpointing=ckpt_dir is not None, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0)
    if trainer.world_size != world:  # e.g. srun started fewer tasks than devices x nodes
        raise RuntimeError(f"expected {world} fine-tuning processes (devices x nodes) but Lightning sees world size "
                           f"{trainer.world_size}; under Slurm start one task per device (srun --ntasks-per-node)")
    clf.train()  # dropout where the base model has it (the frozen layers too, as in Geneformer's fine-tuning)
    trainer.fit(module, ckpt_path=resume)
    return clf.cpu().eval()


# ---------------------------------------------------------------------------
# Predictions
# ---------------------------------------------------------------------------

@torch.no_grad()
def last_layer_states(clf: Classifier, genes: np.ndarray, expr: np.ndarray, *, batch_size: int,
                      device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Pooled last-layer states of every sequence: gene level (positions (N,), states (N, C) of every real
    position, in row-major order) or sample level (row ids (n,), means (n, C))."""
    clf = clf.to(device).eval()
    pos_out, feat_out = [], []
    for a in range(0, len(genes), batch_size):
        g = torch.as_tensor(genes[a:a + batch_size], dtype=torch.long, device=device)
        e = torch.as_tensor(expr[a:a + batch_size], dtype=torch.long, device=device)
        h, positions, real = clf.features(g, e)
        if clf.level == "gene":
            pos_out.append(positions[real].cpu().numpy())
            feat_out.append(h[real].float().cpu().numpy())
        else:
            pos_out.append(np.arange(a, a + len(g)))
            feat_out.append(mean_over_real(h, real).float().cpu().numpy())
    return np.concatenate(pos_out), np.concatenate(feat_out)


def gene_probabilities(positions: np.ndarray, probs: np.ndarray, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean probability per gene token over its occurrences: (mean (len(tokens),), occurrences (len(tokens),))."""
    order = pd.Series(probs).groupby(positions)
    mean, n = order.mean(), order.size()
    return mean.reindex(tokens).to_numpy(), n.reindex(tokens).fillna(0).to_numpy(dtype=np.int64)


def metrics(y: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """accuracy, macro F1 and AUC (binary: of class 1; more classes: one-vs-rest macro) of class probabilities (n, K)."""
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    pred = prob.argmax(1)
    out = {"accuracy": float(accuracy_score(y, pred)), "macro_f1": float(f1_score(y, pred, average="macro"))}
    try:
        out["auc"] = float(roc_auc_score(y, prob[:, 1]) if prob.shape[1] == 2
                           else roc_auc_score(y, prob, multi_class="ovr", average="macro",
                                              labels=np.arange(prob.shape[1])))
    except ValueError:  # a fold with one class
        out["auc"] = float("nan")
    return out


def logistic_baseline(x: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, n_classes: int) -> np.ndarray:
    """Class probabilities (len(test), n_classes) of an L2 logistic regression (C = 1) on standardised ``x``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    model.fit(x[train], y[train])
    prob = np.zeros((len(test), n_classes))
    prob[:, model.classes_] = model.predict_proba(x[test])
    return prob


def feature_dataset(x: np.ndarray, y: np.ndarray) -> TensorDataset:
    """Head-only training data: dicts of ``x`` float32 features and ``y`` labels."""
    return _DictTensors(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long))


class _DictTensors(TensorDataset):
    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:  # type: ignore[override]
        x, y = super().__getitem__(i)
        return {"x": x, "y": y}


def sequence_dataset(genes: np.ndarray, expr: np.ndarray, y: np.ndarray | None = None) -> Dataset:
    """Token-batch training data (``train_layers > 0``): dicts of genes, expr and (sample tasks) y."""
    return _Sequences(genes, expr, y)
