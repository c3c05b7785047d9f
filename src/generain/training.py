"""Training with PyTorch Lightning: batches, masking, the LightningModule and the entry point.

Optimisation follows GeneRAIN (Su et al. 2024, Methods "Model training";
reference code suzheng/GeneRAIN ``src/train/common.py``): AdamW with weight
decay 0.01 (none on biases and LayerNorm weights) and a OneCycle schedule
(max_lr 1e-4, div_factor 5, pct_start 0.2). We step the schedule once per
optimizer step; ``schedule_per="epoch"`` reproduces the reference, which
stepped it once per epoch.

Determinism and resuming. Every random choice of a training step (BERT
masking, dropout) is drawn after seeding the generators with
(seed, epoch, batch, rank), and the sample order of an epoch is a function of
(seed, epoch). The position inside an epoch is saved in each checkpoint, so a
run that is killed and resumed from ``last.ckpt`` takes exactly the steps of
an uninterrupted run with the same seed.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import subprocess
import sys
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from . import MASK_ID, PAD_ID
from .model import IGNORE_INDEX, MODEL_TYPES, N_EXPR_BINS, BertMLM, GPT, ModelConfig, build_model, model_config_for
from .tokenize import TokenShards
from .utils import InputError, atomic_path, setup_logging, write_json

log = logging.getLogger("generain.training")  # also when run as python -m generain.training

#: Share of real positions masked by the BERT models (GeneRAIN: 0.15).
MASK_FRACTION = 0.15


# ---------------------------------------------------------------------------
# batches and masking (pure functions of their inputs and the torch RNG)
# ---------------------------------------------------------------------------

def gpt_inputs(genes: torch.Tensor) -> dict[str, torch.Tensor]:
    """Next-gene prediction inputs from gene tokens.

    Parameters
    ----------
    genes : torch.Tensor
        int64 (B, T) gene token ids sorted by bin, ``PAD_ID`` after the last real token.

    Returns
    -------
    dict
        ``idx`` int64 (B, T-1) = genes[:, :-1]; ``labels`` int64 (B, T-1) =
        genes[:, 1:] with ``IGNORE_INDEX`` where the target is padding.
    """
    labels = genes[:, 1:].clone()
    labels[labels == PAD_ID] = IGNORE_INDEX
    return {"idx": genes[:, :-1], "labels": labels}


def mask_gene_tokens(genes: torch.Tensor, fraction: float = MASK_FRACTION) -> dict[str, torch.Tensor]:
    """GeneRAIN ``bert_pred_genes`` masking: each real position is masked with probability ``fraction``.

    Masked positions become ``MASK_ID`` and are the only labelled ones
    (reference: suzheng/GeneRAIN src/train/common.py, ``Bert_pred_tokens``).

    Parameters
    ----------
    genes : torch.Tensor
        int64 (B, T) gene token ids, ``PAD_ID`` = padding.

    Returns
    -------
    dict
        ``idx`` int64 (B, T), ``labels`` int64 (B, T) (gene id at masked
        positions, ``IGNORE_INDEX`` elsewhere), ``key_mask`` bool (B, T)
        (True at real tokens).
    """
    real = genes != PAD_ID
    chosen = (torch.rand(genes.shape, device=genes.device) < fraction) & real
    idx = genes.masked_fill(chosen, MASK_ID)
    labels = genes.masked_fill(~chosen, IGNORE_INDEX)
    return {"idx": idx, "labels": labels, "key_mask": real}


def mask_expression_bins(genes: torch.Tensor, expr: torch.Tensor, fraction: float = MASK_FRACTION,
                         mask_prob: float = 0.8, random_prob: float = 0.1) -> dict[str, torch.Tensor]:
    """GeneRAIN ``bert_pred_expr`` masking of expression-bin tokens (BERT's 80/10/10).

    Each real position is chosen with probability ``fraction``; a chosen
    position becomes 0 (the mask bin) with probability ``mask_prob``, a
    uniformly drawn bin 1..100 with probability ``random_prob``, and stays
    unchanged otherwise (reference: suzheng/GeneRAIN src/data/BertMasking.py).
    The gene ids are the position ids.

    Parameters
    ----------
    genes : torch.Tensor
        int64 (B, T) gene token ids, ``PAD_ID`` = padding.
    expr : torch.Tensor
        int64 (B, T) within-sample expression bins 1..100 (0 at padding).

    Returns
    -------
    dict
        ``idx`` int64 (B, T) bins after masking, ``position_ids`` = genes,
        ``labels`` int64 (B, T) (true bin at chosen positions, ``IGNORE_INDEX``
        elsewhere), ``key_mask`` bool (B, T).
    """
    real = genes != PAD_ID
    chosen = (torch.rand(genes.shape, device=genes.device) < fraction) & real
    u = torch.rand(genes.shape, device=genes.device)
    random_bins = torch.randint(1, N_EXPR_BINS + 1, genes.shape, device=genes.device)
    idx = torch.where(chosen & (u < mask_prob), torch.zeros_like(expr), expr)
    idx = torch.where(chosen & (u >= mask_prob) & (u < mask_prob + random_prob), random_bins, idx)
    labels = expr.masked_fill(~chosen, IGNORE_INDEX)
    return {"idx": idx, "position_ids": genes, "labels": labels, "key_mask": real}


def model_inputs(model_type: str, batch: dict[str, torch.Tensor], mask_fraction: float = MASK_FRACTION
                 ) -> dict[str, torch.Tensor]:
    """Keyword arguments of the model's forward for one batch of {genes, expr}."""
    if model_type == "gpt":
        return gpt_inputs(batch["genes"])
    if model_type == "bert_pred_genes":
        return mask_gene_tokens(batch["genes"], mask_fraction)
    if model_type == "bert_pred_expr":
        return mask_expression_bins(batch["genes"], batch["expr"], mask_fraction)
    raise ValueError(f"unknown model type {model_type!r}; expected one of {', '.join(MODEL_TYPES)}")


def _seed_for(*parts: int) -> int:
    """A 63-bit seed from integers (stable across processes and Python versions)."""
    digest = hashlib.sha256(",".join(str(int(p)) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


# ---------------------------------------------------------------------------
# data: memory-mapped shards, a seeded per-epoch sampler, a resumable loader
# ---------------------------------------------------------------------------

class SampleDataset(Dataset):
    """One split's samples: item i -> {"genes", "expr"} int64 tensors of shape (length,)."""

    def __init__(self, shards: TokenShards, rows: np.ndarray) -> None:
        self.shards, self.rows = shards, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        genes, expr = self.shards[int(self.rows[i])]
        return {"genes": torch.from_numpy(genes.astype(np.int64)), "expr": torch.from_numpy(expr.astype(np.int64))}


class EpochSampler(Sampler[int]):
    """This rank's share of a seeded permutation per epoch (as DistributedSampler).

    The order of epoch e is ``permutation(seed, e)`` (or 0..n-1 without
    shuffling), padded by wrapping to a multiple of ``num_replicas`` and dealt
    round-robin to ranks. ``skip`` samples are dropped from the start of the
    next iteration only (resuming inside an epoch).
    """

    def __init__(self, n: int, *, seed: int, shuffle: bool, num_replicas: int = 1, rank: int = 0) -> None:
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.num_replicas, self.rank = num_replicas, rank
        self.epoch, self.skip = 0, 0
        self.per_rank = math.ceil(n / num_replicas) if n else 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.per_rank

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        else:
            order = np.arange(self.n)
        total = self.per_rank * self.num_replicas
        order = np.resize(order, total)  # wrap around so every rank gets the same count
        mine = order[self.rank:total:self.num_replicas]
        skip, self.skip = self.skip, 0
        return iter(mine[skip:].tolist())


class ResumableLoader(DataLoader):
    """A DataLoader over an :class:`EpochSampler` whose position in the epoch goes into checkpoints.

    Lightning saves ``state_dict()`` in each checkpoint and calls
    ``load_state_dict()`` before iterating when it resumes; ``batches_done``
    is set by the LightningModule as it consumes batches.
    """

    sampler: EpochSampler

    def __init__(self, dataset: Dataset, sampler: EpochSampler, **kwargs: Any) -> None:
        super().__init__(dataset, sampler=sampler, **kwargs)
        self.batches_done = 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.set_epoch(state["epoch"])
        self.sampler.skip = state["batches_done"] * int(self.batch_size or 1)
        self.batches_done = state["batches_done"]


class TokenDataModule(L.LightningDataModule):
    """Train/validation loaders over token shards written by :mod:`generain.tokenize`.

    Samples come from memory-mapped shards (memory does not grow with the
    corpus); the split is the index's ``split`` column (seeded, fixed for the
    whole run); under DDP each rank reads its share of every epoch.
    """

    def __init__(self, shard_dir: str, index_path: str, *, batch_size: int, seed: int = 0,
                 num_workers: int = 0) -> None:
        super().__init__()
        self.shard_dir, self.index_path = shard_dir, index_path
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers

    def setup(self, stage: str | None = None) -> None:
        index = pd.read_parquet(self.index_path)
        shards = TokenShards(self.shard_dir, index)
        split = index["split"].to_numpy()
        self.train_set = SampleDataset(shards, np.flatnonzero(split == "train"))
        self.val_set = SampleDataset(shards, np.flatnonzero(split == "validation"))
        if len(self.train_set) == 0:
            raise InputError(f"{self.index_path}: no samples in the train split")

    def _sampler(self, dataset: SampleDataset, shuffle: bool) -> EpochSampler:
        world, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer else (1, 0)
        return EpochSampler(len(dataset), seed=self.seed, shuffle=shuffle, num_replicas=world, rank=rank)

    def train_dataloader(self) -> ResumableLoader:
        return ResumableLoader(self.train_set, self._sampler(self.train_set, shuffle=True),
                               batch_size=self.batch_size, num_workers=self.num_workers,
                               pin_memory=torch.cuda.is_available(), persistent_workers=self.num_workers > 0)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, sampler=self._sampler(self.val_set, shuffle=False),
                          batch_size=self.batch_size, num_workers=self.num_workers)


# ---------------------------------------------------------------------------
# the LightningModule
# ---------------------------------------------------------------------------

@dataclass
class OptimConfig:
    """Optimisation settings (defaults: the GeneRAIN paper's).

    ``total_steps`` counts optimizer steps (``schedule_per="step"``) or
    epochs (``schedule_per="epoch"``, the reference implementation's way).
    """

    max_lr: float = 1e-4
    div_factor: float = 5.0
    pct_start: float = 0.2
    weight_decay: float = 0.01
    total_steps: int = 1000
    schedule_per: str = "step"


class GeneRAINModule(L.LightningModule):
    """LightningModule for the three GeneRAIN model types (see :mod:`generain.model`)."""

    def __init__(self, model_type: str, model_cfg: dict[str, Any], optim_cfg: dict[str, Any], *,
                 seed: int = 0, mask_fraction: float = MASK_FRACTION) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model_type, self.seed, self.mask_fraction = model_type, seed, mask_fraction
        self.model = build_model(model_type, ModelConfig(**model_cfg))
        self.optim = OptimConfig(**optim_cfg)
        if self.optim.schedule_per not in ("step", "epoch"):
            raise ValueError(f"schedule_per must be 'step' or 'epoch', not {self.optim.schedule_per!r}")

    def _loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        _, loss = self.model(**model_inputs(self.model_type, batch, self.mask_fraction))
        assert loss is not None
        return loss

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # masking and dropout of this step depend only on (seed, epoch, batch, rank): see the module docstring
        torch.manual_seed(_seed_for(self.seed, self.current_epoch, batch_idx, self.global_rank))
        loader = self.trainer.train_dataloader
        if isinstance(loader, ResumableLoader):
            loader.batches_done = batch_idx + 1

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=batch["genes"].size(0),
                 sync_dist=True)
        return loss

    def on_validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        torch.manual_seed(_seed_for(self.seed, -1, batch_idx, self.global_rank))  # the same masks every epoch

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        loss = self._loss(batch)
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=batch["genes"].size(0), sync_dist=True)

    def configure_optimizers(self) -> Any:
        decay, no_decay = [], []
        for p in self.model.parameters():
            if p.requires_grad:
                (no_decay if p.ndim < 2 else decay).append(p)  # biases and LayerNorm weights: no decay
        opt = torch.optim.AdamW([
            {"params": decay, "weight_decay": self.optim.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ], lr=self.optim.max_lr / self.optim.div_factor)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.optim.max_lr, total_steps=max(self.optim.total_steps, 2),
            pct_start=self.optim.pct_start, div_factor=self.optim.div_factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": self.optim.schedule_per}}


class ThroughputLog(L.Callback):
    """Real (non-padding) tokens per second on the progress bar and in the logs; epoch lines in the log file."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self._t0 = 0.0
        self._tokens = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0, self._tokens = time.perf_counter(), 0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._tokens += int((batch["genes"] != PAD_ID).sum()) * trainer.world_size
        rate = self._tokens / max(time.perf_counter() - self._t0, 1e-9)
        pl_module.log("tokens_per_s", rate, on_step=True, prog_bar=True, rank_zero_only=True)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        m = trainer.callback_metrics
        seconds = time.perf_counter() - self._t0
        log.info("epoch %d step %d: train_loss %.4f val_loss %.4f; %.0f tokens/s (%.0f s elapsed)",
                 trainer.current_epoch, trainer.global_step, float(m.get("train_loss_epoch", float("nan"))),
                 float(m.get("val_loss", float("nan"))), self._tokens / max(seconds, 1e-9),
                 time.perf_counter() - self.start)


# ---------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------

#: train_model arguments that do not change the result (left out of the run fingerprint).
_NOT_IN_FINGERPRINT = ("num_workers", "threads", "progress_bar", "checkpoint_every_n_steps", "resume")


def run_fingerprint(kwargs: dict[str, Any]) -> str:
    """Identity of a training run: the :func:`train_model` arguments that shape it and the token index it reads.

    Arguments left out take :func:`train_model`'s defaults, so the launcher's
    partial kwargs and the rank's full argument list give the same fingerprint.
    """
    bound = inspect.signature(train_model).bind(**kwargs)
    bound.apply_defaults()
    settings = {k: v for k, v in bound.arguments.items() if k not in _NOT_IN_FINGERPRINT}
    h = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode())
    h.update(Path(kwargs["index_path"]).read_bytes())
    return h.hexdigest()[:16]


def checkpoint_dir(checkpoint_path: str | os.PathLike[str]) -> Path:
    """Where the Lightning checkpoints of the model saved at ``checkpoint_path`` go."""
    return Path(checkpoint_path).parent / "checkpoints"


def prepare_resume(kwargs: dict[str, Any]) -> str | None:
    """Decide whether a run with these :func:`train_model` arguments resumes.

    Returns ``last.ckpt`` of an interrupted run with the same fingerprint,
    else None after removing stale checkpoints (of a finished run, or of a run
    with other settings or data). Call it once, before launching the ranks.
    """
    return _resume_point(checkpoint_dir(kwargs["checkpoint_path"]), run_fingerprint(kwargs))


def train_model(
    *,
    model_type: str,
    shard_dir: str | os.PathLike[str],
    index_path: str | os.PathLike[str],
    n_genes: int,
    length: int,
    checkpoint_path: str | os.PathLike[str],
    metrics_path: str | os.PathLike[str],
    summary_path: str | os.PathLike[str],
    model: dict[str, Any],
    epochs: int,
    batch_size: int,
    accumulate_grad_batches: int = 1,
    max_lr: float = 1e-4,
    div_factor: float = 5.0,
    pct_start: float = 0.2,
    weight_decay: float = 0.01,
    schedule_per: str = "step",
    gradient_clip_val: float | None = 1.0,
    mask_fraction: float = MASK_FRACTION,
    seed: int = 0,
    accelerator: str = "auto",
    devices: int = 1,
    num_nodes: int = 1,
    precision: str = "32-true",
    compile: bool = False,
    checkpoint_every_n_steps: int = 500,
    num_workers: int = 0,
    threads: int | None = None,
    progress_bar: bool = True,
    resume: str | None = "auto",
) -> dict[str, Any]:
    """Train one GeneRAIN model on token shards, resuming an interrupted run.

    Parameters
    ----------
    model_type : str
        One of :data:`generain.model.MODEL_TYPES`.
    shard_dir, index_path : path-like
        Token shards and index from :func:`generain.tokenize.write_token_shards`.
    n_genes : int
        Gene vocabulary size including the 3 special tokens.
    length : int
        Gene tokens per sample.
    checkpoint_path : path-like
        Output: ``torch.save`` of {"model_type", "model_config", "state_dict"}.
        Lightning checkpoints (every ``checkpoint_every_n_steps`` optimizer
        steps and ``last.ckpt`` at the end) go to ``checkpoints/`` beside it,
        with ``run.json`` identifying the run; CSV and TensorBoard logs to
        ``lightning_logs/`` and ``tensorboard/``.
    metrics_path : path-like
        Output CSV, one row per epoch: epoch, step, train_loss, val_loss.
    summary_path : path-like
        Output JSON: the returned summary.
    model : dict
        :class:`generain.model.ModelConfig` shape fields (n_layer, n_head,
        n_embd, n_inner, dropout, activation, layer_norm_eps).
    epochs, batch_size, accumulate_grad_batches, devices, num_nodes : int
        Samples per optimizer update = batch_size x devices x num_nodes x
        accumulate_grad_batches (the paper: 12 x 3 x 1 x 5 = 180).
    schedule_per : str
        ``step`` (OneCycle per optimizer step) or ``epoch`` (as the reference code).
    precision : str
        Lightning precision: ``32-true``, ``bf16-mixed`` (GPU), ``16-mixed``.
    compile : bool
        Wrap the model in :func:`torch.compile`.
    resume : str or None
        ``"auto"``: resume an interrupted run with the same settings (see
        :func:`prepare_resume`); a path: resume from that checkpoint; None:
        start afresh (launchers of multi-process runs decide once and pass it).

    Returns
    -------
    dict
        model_type, final_val_loss, final_train_loss, epochs, steps,
        effective_batch, n_parameters, train_samples, validation_samples,
        world_size, resumed_from (null or the checkpoint's file name), seconds
        (empty on ranks other than 0).

    Raises
    ------
    InputError
        If the index has no training samples.
    ValueError
        For an unknown model type or schedule.
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"unknown model type {model_type!r}; expected one of {', '.join(MODEL_TYPES)}")
    fingerprint = run_fingerprint({k: v for k, v in locals().items() if k in _TRAIN_PARAMETERS})
    if resume == "auto":
        resume = _resume_point(checkpoint_dir(checkpoint_path), fingerprint)
    if threads:
        torch.set_num_threads(threads)
    L.seed_everything(seed, workers=True, verbose=False)
    torch.set_float32_matmul_precision("high")
    dm = TokenDataModule(str(shard_dir), str(index_path), batch_size=batch_size, seed=seed, num_workers=num_workers)
    dm.setup()
    world = devices * num_nodes
    batches_per_epoch = math.ceil(math.ceil(len(dm.train_set) / world) / batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / accumulate_grad_batches)
    total_steps = steps_per_epoch * epochs if schedule_per == "step" else epochs
    cfg = model_config_for(model_type, n_genes=n_genes, length=length, **model)
    module = GeneRAINModule(
        model_type, cfg.to_dict(),
        {"max_lr": max_lr, "div_factor": div_factor, "pct_start": pct_start, "weight_decay": weight_decay,
         "total_steps": total_steps, "schedule_per": schedule_per},
        seed=seed, mask_fraction=mask_fraction)
    n_params = sum(p.numel() for p in module.model.parameters())
    effective = batch_size * world * accumulate_grad_batches
    out_dir = Path(checkpoint_path).parent
    ckpt_dir = checkpoint_dir(checkpoint_path)
    log.info("%s: %d parameters; %d train / %d validation samples; world size %d; effective batch %d samples "
             "per update; %d optimizer steps per epoch, %d epochs", model_type, n_params, len(dm.train_set),
             len(dm.val_set), world, effective, steps_per_epoch, epochs)
    if compile:
        module.model = torch.compile(module.model)  # type: ignore[assignment]
    # one log version per attempt (version_0, then version_1 after a resume, ...)
    loggers = [L.pytorch.loggers.CSVLogger(out_dir, name="lightning_logs")]
    try:
        loggers.append(L.pytorch.loggers.TensorBoardLogger(out_dir, name="tensorboard"))
    except ModuleNotFoundError:  # tensorboard is optional
        log.warning("tensorboard is not installed: CSV logs only")
    checkpointing = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=ckpt_dir, filename="step{step:07d}", auto_insert_metric_name=False,
        every_n_train_steps=checkpoint_every_n_steps, save_top_k=1, save_last=True)
    trainer = L.Trainer(
        max_epochs=epochs, accelerator=accelerator, devices=devices, num_nodes=num_nodes, precision=precision,
        strategy="ddp" if world > 1 else "auto", use_distributed_sampler=False,
        accumulate_grad_batches=accumulate_grad_batches, gradient_clip_val=gradient_clip_val,
        logger=loggers, callbacks=[checkpointing, ThroughputLog()], enable_progress_bar=progress_bar,
        enable_model_summary=False, log_every_n_steps=1, num_sanity_val_steps=0,
    )
    if trainer.world_size != world:  # e.g. srun started fewer tasks than devices x nodes
        raise RuntimeError(f"expected {world} training processes (devices {devices} x nodes {num_nodes}) but "
                           f"Lightning sees world size {trainer.world_size}; under Slurm start one task per device "
                           "(srun --ntasks-per-node)")
    start = time.perf_counter()
    trainer.fit(module, datamodule=dm, ckpt_path=resume)
    seconds = time.perf_counter() - start
    trainer.save_checkpoint(ckpt_dir / "last.ckpt")  # the final state (every rank takes part; rank 0 writes)
    if not trainer.is_global_zero:  # under DDP only rank 0 writes the outputs
        return {}
    per_epoch = _per_epoch_metrics(out_dir / "lightning_logs")
    last = per_epoch.dropna(subset=["val_loss"]).iloc[-1] if per_epoch["val_loss"].notna().any() else None
    summary = {
        "model_type": model_type,
        "final_val_loss": None if last is None else round(float(last["val_loss"]), 6),
        "final_train_loss": None if last is None else round(float(last["train_loss"]), 6),
        "epochs": int(epochs),
        "steps": int(trainer.global_step),
        "effective_batch": int(effective),
        "n_parameters": int(n_params),
        "train_samples": len(dm.train_set),
        "validation_samples": len(dm.val_set),
        "world_size": int(trainer.world_size),
        "resumed_from": None if resume is None else Path(resume).name,
        "seconds": round(seconds, 1),
    }
    with atomic_path(metrics_path) as tmp:
        per_epoch.to_csv(tmp, index=False)
    raw = getattr(module.model, "_orig_mod", module.model)
    with atomic_path(checkpoint_path) as tmp:
        torch.save({"model_type": model_type, "model_config": raw.cfg.to_dict(), "state_dict": raw.state_dict()}, tmp)
    write_json(summary, summary_path)
    write_json({"fingerprint": fingerprint, "complete": True}, ckpt_dir / "run.json")
    log.info("%s: %d steps in %.1f s; final val_loss %s", model_type, summary["steps"], seconds,
             summary["final_val_loss"])
    return summary


def _resume_point(ckpt_dir: Path, fingerprint: str) -> str | None:
    """``last.ckpt`` of an interrupted run with the same fingerprint, else None (stale checkpoints are removed)."""
    info_path = ckpt_dir / "run.json"
    info = json.loads(info_path.read_text()) if info_path.exists() else {}
    last = ckpt_dir / "last.ckpt"
    if info.get("fingerprint") == fingerprint and not info.get("complete") and last.exists():
        log.info("resuming the interrupted run from %s", last)
        return str(last)
    if ckpt_dir.exists():
        reason = "a finished run" if info.get("complete") else "a run with other settings or data"
        log.info("removing the checkpoints and logs of %s in %s", reason, ckpt_dir.parent)
        shutil.rmtree(ckpt_dir)
    for logs in ("lightning_logs", "tensorboard"):
        shutil.rmtree(ckpt_dir.parent / logs, ignore_errors=True)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    write_json({"fingerprint": fingerprint, "complete": False}, info_path)
    return None


def _per_epoch_metrics(log_dir: Path) -> pd.DataFrame:
    """One row per epoch (epoch, step, train_loss, val_loss) from Lightning's CSV logs.

    Each attempt of a resumed run logs to its own ``version_N/metrics.csv``;
    they are read in order, and an epoch keeps its last logged values.
    """
    parts = sorted(log_dir.glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    raw = pd.concat([pd.read_csv(p) for p in parts], ignore_index=True)
    cols = {"step": ("step", "max")}
    for name, src in (("train_loss", "train_loss_epoch"), ("val_loss", "val_loss")):
        cols[name] = (src, "last") if src in raw else ("step", lambda s: np.nan)
    return raw.groupby("epoch").agg(**cols).reset_index()


_TRAIN_PARAMETERS = frozenset(inspect.signature(train_model).parameters)


def load_model(checkpoint_path: str | os.PathLike[str]) -> tuple[str, GPT | BertMLM]:
    """Load a model saved by :func:`train_model`: (model_type, model on CPU in eval mode).

    Raises
    ------
    InputError
        If the file is not such a checkpoint.
    """
    try:
        ckpt = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        model_type = ckpt.get("model_type", "gpt")
        model = build_model(model_type, ModelConfig(**ckpt["model_config"]))
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, RuntimeError, AttributeError) as exc:
        raise InputError(f"{checkpoint_path}: not a model checkpoint written by generain ({exc})") from exc
    return model_type, model.eval()


# ---------------------------------------------------------------------------
# multi-process launch
# ---------------------------------------------------------------------------

def launch_training(kwargs: dict[str, Any], *, launcher: str = "auto") -> dict[str, Any]:
    """Run :func:`train_model` in this process, or as one process per device.

    Parameters
    ----------
    kwargs : dict
        :func:`train_model` arguments.
    launcher : str
        ``auto``: one device -> in this process; several devices -> ``srun``
        inside a Slurm job (``SLURM_JOB_ID`` set), else Lightning's local DDP
        launcher. ``srun`` / ``local``: force one of them.

    Under Slurm the ranks are started as ``srun --overlap --nodes N --ntasks
    N*D --ntasks-per-node D python -m generain.training spec.json``: the task
    counts are passed explicitly because the environment of the Snakemake job
    step says ``SLURM_NTASKS=1`` (read by srun as ``-n 1``, which silently
    trains on one process), and ``--overlap`` lets the ranks' step share the
    resources that the Snakemake job step itself holds. :func:`train_model`
    stops if Lightning's world size is not devices x nodes.
    The resume decision is taken once here, before the ranks start.

    Returns
    -------
    dict
        The training summary (see :func:`train_model`).

    Raises
    ------
    ValueError
        For an unknown launcher, or several nodes without Slurm.
    RuntimeError
        If the training processes fail.
    """
    if launcher not in ("auto", "srun", "local"):
        raise ValueError(f"launcher must be auto, srun or local, not {launcher!r}")
    devices, nodes = int(kwargs.get("devices", 1)), int(kwargs.get("num_nodes", 1))
    use_srun = launcher == "srun" or (launcher == "auto" and devices * nodes > 1 and "SLURM_JOB_ID" in os.environ)
    if devices * nodes == 1 and not use_srun:
        return train_model(**kwargs)
    if nodes > 1 and not use_srun:
        raise ValueError(f"num_nodes {nodes}: training on several nodes needs Slurm (srun)")
    spec = dict(kwargs)
    if spec.get("resume", "auto") == "auto":
        spec["resume"] = prepare_resume(spec)
    spec_path = Path(spec["checkpoint_path"]).parent / "train_spec.json"
    write_json(spec, spec_path)
    cmd = [sys.executable, "-m", "generain.training", str(spec_path)]
    if use_srun:
        # --overlap: the Snakemake job step already holds the allocation's CPUs; without it the
        # ranks' step waits forever ("step creation temporarily disabled")
        # --ntasks too: the job step's environment carries SLURM_NTASKS=1, which srun reads as -n 1
        cmd = ["srun", "--overlap", f"--nodes={nodes}", f"--ntasks={devices * nodes}",
               f"--ntasks-per-node={devices}", "--kill-on-bad-exit=1", *cmd]
    log.info("launching %d training processes: %s", devices * nodes, " ".join(cmd))
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:  # relay the ranks' output into this step's log
            log.info("| %s", line.rstrip())
    if proc.returncode != 0:
        raise RuntimeError(f"training processes exited with status {proc.returncode}; see the lines above")
    return json.loads(Path(spec["summary_path"]).read_text())


def main(argv: list[str] | None = None) -> None:
    """``python -m generain.training spec.json``: one training rank (see :func:`launch_training`)."""

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m generain.training SPEC.json")
    setup_logging(None)
    train_model(**json.loads(Path(args[0]).read_text()))


if __name__ == "__main__":
    main()
