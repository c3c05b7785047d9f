"""Training with PyTorch Lightning: data module, module, and the train entry point.

Optimisation follows GeneRAIN (Su et al. 2024, Methods "Model training"):
AdamW with weight decay 0.01 (none on biases and LayerNorm weights) and a
OneCycle schedule (max_lr 1e-4, div_factor 5, pct_start 0.2). The schedule is
stepped once per optimizer step (GeneRAIN's code stepped it per epoch).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from . import PAD_ID
from .model import GPT, GPTConfig
from .tokenize import TokenShards
from .utils import atomic_path, write_json

log = logging.getLogger(__name__)


class GeneTokenDataset(Dataset):
    """Gene-token sequences of one split: item i -> int64 tensor (length,)."""

    def __init__(self, shards: TokenShards, rows: np.ndarray) -> None:
        self.shards = shards
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> torch.Tensor:
        genes, _ = self.shards[int(self.rows[i])]
        return torch.from_numpy(genes)


class TokenDataModule(L.LightningDataModule):
    """Train/validation loaders over token shards written by :mod:`generain.tokenize`."""

    def __init__(self, shard_dir: str, index_path: str, *, batch_size: int, num_workers: int = 0) -> None:
        super().__init__()
        self.shard_dir = shard_dir
        self.index_path = index_path
        self.batch_size = batch_size
        self.num_workers = num_workers

    def setup(self, stage: str | None = None) -> None:
        index = pd.read_parquet(self.index_path)
        shards = TokenShards(self.shard_dir, index)
        split = index["split"].to_numpy()
        self.train_set = GeneTokenDataset(shards, np.flatnonzero(split == "train"))
        self.val_set = GeneTokenDataset(shards, np.flatnonzero(split == "validation"))

    def train_dataloader(self) -> DataLoader:
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True,
                          num_workers=self.num_workers, drop_last=False)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers)


@dataclass
class OptimConfig:
    """Optimisation settings (defaults: the GeneRAIN paper's)."""

    max_lr: float = 1e-4
    div_factor: float = 5.0
    pct_start: float = 0.2
    weight_decay: float = 0.01
    total_steps: int = 1000


class GPTModule(L.LightningModule):
    """LightningModule wrapping :class:`generain.model.GPT` (next-gene prediction)."""

    def __init__(self, model_cfg: dict[str, Any], optim_cfg: dict[str, Any]) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = GPT(GPTConfig(**model_cfg))
        self.optim = OptimConfig(**optim_cfg)

    def _step(self, batch: torch.Tensor) -> torch.Tensor:
        idx, targets = batch[:, :-1], batch[:, 1:]
        _, loss = self.model(idx, targets)
        assert loss is not None
        return loss

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> torch.Tensor:
        loss = self._step(batch)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=batch.size(0))
        return loss

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        loss = self._step(batch)
        self.log("val_loss", loss, on_epoch=True, prog_bar=True, batch_size=batch.size(0))

    def configure_optimizers(self) -> Any:
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            (no_decay if p.ndim < 2 else decay).append(p)  # biases and LayerNorm weights: no decay
        opt = torch.optim.AdamW([
            {"params": decay, "weight_decay": self.optim.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ], lr=self.optim.max_lr / self.optim.div_factor)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.optim.max_lr, total_steps=max(self.optim.total_steps, 2),
            pct_start=self.optim.pct_start, div_factor=self.optim.div_factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


class _EpochLog(L.Callback):
    """Log losses and elapsed time per epoch (the Snakemake log gets progress too)."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        m = trainer.callback_metrics
        log.info("epoch %d step %d: train_loss %.4f val_loss %.4f (%.0f s)", trainer.current_epoch,
                 trainer.global_step, float(m.get("train_loss_epoch", float("nan"))),
                 float(m.get("val_loss", float("nan"))), time.perf_counter() - self.start)


def train_gpt(
    *,
    shard_dir: str | os.PathLike[str],
    index_path: str | os.PathLike[str],
    vocab_size: int,
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
    gradient_clip_val: float | None = 1.0,
    seed: int = 0,
    accelerator: str = "auto",
    devices: int | str = 1,
    precision: str = "32-true",
    threads: int | None = None,
    progress_bar: bool = True,
) -> dict[str, Any]:
    """Train the GPT model on token shards and save a checkpoint.

    Parameters
    ----------
    shard_dir, index_path : path-like
        Token shards and index from :func:`generain.tokenize.write_token_shards`.
    vocab_size : int
        Number of tokens including the 3 special tokens.
    checkpoint_path : path-like
        Output: ``torch.save`` of {"model_config", "state_dict"}.
    metrics_path : path-like
        Output CSV: epoch, step, train_loss, val_loss (one row per epoch).
    summary_path : path-like
        Output JSON: the returned summary.
    model : dict
        :class:`generain.model.GPTConfig` fields except vocab_size.
    epochs, batch_size, accumulate_grad_batches : int
        Samples per optimizer update = batch_size x devices x accumulation.

    Returns
    -------
    dict
        final_val_loss, final_train_loss, epochs, steps, effective_batch,
        n_parameters, seconds.
    """
    if threads:
        torch.set_num_threads(threads)
    L.seed_everything(seed, workers=True, verbose=False)
    dm = TokenDataModule(str(shard_dir), str(index_path), batch_size=batch_size)
    dm.setup()
    n_devices = devices if isinstance(devices, int) else 1
    steps_per_epoch = max(1, -(-len(dm.train_set) // (batch_size * n_devices * accumulate_grad_batches)))
    total_steps = steps_per_epoch * epochs
    module = GPTModule(
        {**model, "vocab_size": vocab_size},
        {"max_lr": max_lr, "div_factor": div_factor, "pct_start": pct_start,
         "weight_decay": weight_decay, "total_steps": total_steps},
    )
    n_params = sum(p.numel() for p in module.model.parameters())
    effective = batch_size * n_devices * accumulate_grad_batches
    log.info("GPT: %d parameters; %d train / %d validation samples; effective batch %d samples per update; "
             "%d steps", n_params, len(dm.train_set), len(dm.val_set), effective, total_steps)
    out_dir = Path(checkpoint_path).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    logger = L.pytorch.loggers.CSVLogger(out_dir, name="lightning_logs", version=0)
    trainer = L.Trainer(
        max_epochs=epochs, accelerator=accelerator, devices=devices, precision=precision,
        accumulate_grad_batches=accumulate_grad_batches, gradient_clip_val=gradient_clip_val,
        logger=logger, enable_checkpointing=False, enable_progress_bar=progress_bar,
        enable_model_summary=False, log_every_n_steps=1, deterministic=False, callbacks=[_EpochLog()],
        num_sanity_val_steps=0,
    )
    start = time.perf_counter()
    trainer.fit(module, datamodule=dm)
    seconds = time.perf_counter() - start
    if not trainer.is_global_zero:  # under DDP only rank 0 writes the outputs
        return {}
    raw = pd.read_csv(Path(logger.log_dir) / "metrics.csv")
    per_epoch = raw.groupby("epoch").agg(step=("step", "max"), train_loss=("train_loss_epoch", "max"),
                                         val_loss=("val_loss", "max")).reset_index()
    summary = {
        "final_val_loss": float(per_epoch["val_loss"].dropna().iloc[-1]) if per_epoch["val_loss"].notna().any() else None,
        "final_train_loss": float(per_epoch["train_loss"].dropna().iloc[-1]) if per_epoch["train_loss"].notna().any() else None,
        "epochs": int(epochs),
        "steps": int(trainer.global_step),
        "effective_batch": int(effective),
        "n_parameters": int(n_params),
        "train_samples": len(dm.train_set),
        "validation_samples": len(dm.val_set),
        "seconds": round(seconds, 1),
    }
    with atomic_path(metrics_path) as tmp:
        per_epoch.to_csv(tmp, index=False)
    with atomic_path(checkpoint_path) as tmp:
        torch.save({"model_config": module.model.cfg.to_dict(), "state_dict": module.model.state_dict()}, tmp)
    write_json(summary, summary_path)
    log.info("trained %d steps in %.1f s; final val_loss %s", summary["steps"], seconds, summary["final_val_loss"])
    return summary


def load_gpt(checkpoint_path: str | os.PathLike[str]) -> GPT:
    """Load a GPT saved by :func:`train_gpt` (on CPU, eval mode)."""
    ckpt = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    model = GPT(GPTConfig(**ckpt["model_config"]))
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()
