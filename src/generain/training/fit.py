"""One training process: :class:`TrainSettings` (config ``train``) and :func:`fit_model`."""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import lightning as L
import numpy as np
import pandas as pd
import torch

from ..model import MODEL_TYPES, model_config_for
from ..utils import ConfigSection, atomic_path, runtime_field, write_json
from .checkpoint import save_model
from .data import TokenDataModule
from .module import GeneRAINModule, ThroughputLog
from .resume import checkpoint_dir, resume_point, run_fingerprint

log = logging.getLogger("generain.training")


@dataclass(frozen=True)
class TrainSettings(ConfigSection):
    """The config section ``train``: every key of config/schema.yaml's ``train``, no defaults here.

    Defaults, ranges and descriptions live once, in the schema. Fields made
    with ``metadata={"runtime": True}`` only change how training runs (the
    keys the schema marks ``runtime: true``): they are not Snakemake params,
    so changing them re-runs no finished job, and they are left out of the
    run fingerprint (:func:`generain.training.resume.run_fingerprint`).

    Samples per optimizer update = batch_size x devices x num_nodes x
    accumulate_grad_batches (the paper: 12 x 3 x 1 x 5 = 180).
    """

    SECTION: ClassVar[str] = "train"

    epochs: int
    batch_size: int
    accumulate_grad_batches: int
    devices: int
    num_nodes: int
    schedule_per: str
    mask_fraction: float
    precision: str
    max_lr: float
    div_factor: float
    pct_start: float
    weight_decay: float
    gradient_clip_val: float | None
    group_by_length: bool
    accelerator: str = runtime_field()
    launcher: str = runtime_field()
    compile: bool = runtime_field()
    checkpoint_every_n_steps: int = runtime_field()
    num_workers: int = runtime_field()
    progress_bar: bool = runtime_field()


def fit_model(
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
    settings: TrainSettings,
    seed: int,
    threads: int | None = None,
    resume: str | None = "auto",
) -> dict[str, Any]:
    """Train one GeneRAIN model on token shards in this process (one rank), resuming an interrupted run.

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
        Output: the trained model (:func:`generain.training.checkpoint.save_model`).
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
    settings : TrainSettings
        The config section ``train``.
    seed : int
        Seed of the initialisation, the sample order, masking and dropout.
    threads : int, optional
        torch threads of this process.
    resume : str or None
        ``"auto"``: resume an interrupted run with the same settings (see
        :func:`generain.training.resume.prepare_resume`); a path: resume from
        that checkpoint; None: start afresh (launchers of multi-process runs
        decide once and pass it).

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
    RuntimeError
        If Lightning's world size is not devices x num_nodes.
    """
    if model_type not in MODEL_TYPES:
        raise ValueError(f"unknown model type {model_type!r}; expected one of {', '.join(MODEL_TYPES)}")
    s = settings
    fingerprint = run_fingerprint(dict(model_type=model_type, shard_dir=shard_dir, index_path=index_path,
                                       n_genes=n_genes, length=length, checkpoint_path=checkpoint_path,
                                       metrics_path=metrics_path, summary_path=summary_path, model=model,
                                       settings=settings, seed=seed))
    if resume == "auto":
        resume = resume_point(checkpoint_dir(checkpoint_path), fingerprint)
    if threads:
        torch.set_num_threads(threads)
    L.seed_everything(seed, workers=True, verbose=False)
    torch.set_float32_matmul_precision("high")
    dm = TokenDataModule(str(shard_dir), str(index_path), batch_size=s.batch_size, seed=seed,
                         num_workers=s.num_workers, group_by_length=s.group_by_length)
    dm.setup()
    world = s.devices * s.num_nodes
    batches_per_epoch = math.ceil(math.ceil(len(dm.train_set) / world) / s.batch_size)
    steps_per_epoch = math.ceil(batches_per_epoch / s.accumulate_grad_batches)
    total_steps = steps_per_epoch * s.epochs if s.schedule_per == "step" else s.epochs
    cfg = model_config_for(model_type, n_genes=n_genes, length=length, **model)
    module = GeneRAINModule(
        model_type, cfg.to_dict(),
        {"max_lr": s.max_lr, "div_factor": s.div_factor, "pct_start": s.pct_start, "weight_decay": s.weight_decay,
         "total_steps": total_steps, "schedule_per": s.schedule_per},
        seed=seed, mask_fraction=s.mask_fraction)
    n_params = sum(p.numel() for p in module.model.parameters())
    effective = s.batch_size * world * s.accumulate_grad_batches
    out_dir = Path(checkpoint_path).parent
    ckpt_dir = checkpoint_dir(checkpoint_path)
    log.info("%s: %d parameters; %d train / %d validation samples; world size %d; effective batch %d samples "
             "per update; %d optimizer steps per epoch, %d epochs", model_type, n_params, len(dm.train_set),
             len(dm.val_set), world, effective, steps_per_epoch, s.epochs)
    if s.compile:
        module.model = torch.compile(module.model)  # type: ignore[assignment]
    # one log version per attempt (version_0, then version_1 after a resume, ...)
    loggers = [L.pytorch.loggers.CSVLogger(out_dir, name="lightning_logs")]
    try:
        loggers.append(L.pytorch.loggers.TensorBoardLogger(out_dir, name="tensorboard"))
    except ModuleNotFoundError:  # tensorboard is optional
        log.warning("tensorboard is not installed: CSV logs only")
    checkpointing = L.pytorch.callbacks.ModelCheckpoint(
        dirpath=ckpt_dir, filename="step{step:07d}", auto_insert_metric_name=False,
        every_n_train_steps=s.checkpoint_every_n_steps, save_top_k=1, save_last=True)
    trainer = L.Trainer(
        max_epochs=s.epochs, accelerator=s.accelerator, devices=s.devices, num_nodes=s.num_nodes,
        precision=s.precision, strategy="ddp" if world > 1 else "auto", use_distributed_sampler=False,
        accumulate_grad_batches=s.accumulate_grad_batches, gradient_clip_val=s.gradient_clip_val,
        logger=loggers, callbacks=[checkpointing, ThroughputLog()], enable_progress_bar=s.progress_bar,
        enable_model_summary=False, log_every_n_steps=1, num_sanity_val_steps=0,
    )
    if trainer.world_size != world:  # e.g. srun started fewer tasks than devices x nodes
        raise RuntimeError(f"expected {world} training processes (devices {s.devices} x nodes {s.num_nodes}) but "
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
        "epochs": int(s.epochs),
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
    save_model(module.model, model_type, checkpoint_path)
    write_json(summary, summary_path)
    write_json({"fingerprint": fingerprint, "complete": True}, ckpt_dir / "run.json")
    log.info("%s: %d steps in %.1f s; final val_loss %s", model_type, summary["steps"], seconds,
             summary["final_val_loss"])
    return summary


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
