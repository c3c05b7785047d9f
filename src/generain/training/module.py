"""The LightningModule of the three GeneRAIN model types: loss, optimizer, OneCycle schedule, throughput log."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import lightning as L
import torch

from .. import PAD_ID
from ..model import ModelConfig, build_model
from .data import ResumableLoader
from .masking import model_inputs

log = logging.getLogger("generain.training")


def step_seed(*parts: int) -> int:
    """A 63-bit seed from integers (stable across processes and Python versions)."""
    digest = hashlib.sha256(",".join(str(int(p)) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass
class OptimConfig:
    """Optimisation settings (config ``train``; the paper's values are in config/schema.yaml).

    ``total_steps`` counts optimizer steps (``schedule_per="step"``) or
    epochs (``schedule_per="epoch"``, the reference implementation's way).
    """

    max_lr: float
    div_factor: float
    pct_start: float
    weight_decay: float
    total_steps: int
    schedule_per: str


class GeneRAINModule(L.LightningModule):
    """LightningModule for the three GeneRAIN model types (see :mod:`generain.model`)."""

    def __init__(self, model_type: str, model_cfg: dict[str, Any], optim_cfg: dict[str, Any], *,
                 seed: int, mask_fraction: float) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model_type, self.seed, self.mask_fraction = model_type, seed, mask_fraction
        self.model = build_model(model_type, ModelConfig(**model_cfg))
        self.optim = OptimConfig(**optim_cfg)
        if self.optim.schedule_per not in ("step", "epoch"):
            raise ValueError(f"schedule_per must be 'step' or 'epoch', not {self.optim.schedule_per!r}")

    def _loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        # the loss in chunks of positions: the (positions x vocabulary) logits never exist at once
        _, loss = self.model(**model_inputs(self.model_type, batch, self.mask_fraction), return_logits=False)
        assert loss is not None
        return loss

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # masking and dropout of this step depend only on (seed, epoch, batch, rank): see the module docstring
        torch.manual_seed(step_seed(self.seed, self.current_epoch, batch_idx, self.global_rank))
        loader = self.trainer.train_dataloader
        if isinstance(loader, ResumableLoader):
            loader.batches_done = batch_idx + 1

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train_loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=batch["genes"].size(0),
                 sync_dist=True)
        return loss

    def on_validation_batch_start(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        torch.manual_seed(step_seed(self.seed, -1, batch_idx, self.global_rank))  # the same masks every epoch

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

