"""Rule train_model: one model type trained on one token corpus, and its loss plot.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``).
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from .. import N_EXPR_BINS, plots, tokenize
from ..training.fit import TrainSettings
from ..training.launch import launch_training
from ..utils import PathLike

log = logging.getLogger(__name__)


def train_model(
    *,
    model_type: str,
    shards: PathLike,
    index: PathLike,
    vocab: PathLike,
    model: dict[str, Any],
    length: int,
    settings: TrainSettings,
    seed: int,
    threads: int,
    title: str,
    out_checkpoint: PathLike,
    out_metrics: PathLike,
    out_summary: PathLike,
    out_plot: PathLike,
) -> dict[str, Any]:
    """Train one model type on a token corpus and plot its loss curve.

    ``model`` holds the :class:`generain.model.ModelConfig` shape (config key
    ``model``), ``settings`` the config key ``train``; see
    :func:`generain.training.fit.fit_model` for the outputs and
    :func:`generain.training.launch.launch_training` for multi-process runs.
    On CPU with several devices the rule's ``threads`` are shared by the ranks.
    """
    n_genes = len(tokenize.read_vocab(vocab))
    if settings.accelerator == "cpu" and settings.devices > 1:  # the rule's threads are shared by the ranks
        threads = max(1, threads // settings.devices)
    summary = launch_training(dict(
        model_type=model_type, shard_dir=str(shards), index_path=str(index), n_genes=n_genes, length=length,
        checkpoint_path=str(out_checkpoint), metrics_path=str(out_metrics), summary_path=str(out_summary),
        model=dict(model), settings=settings, seed=seed, threads=threads,
    ))
    vocab_size = N_EXPR_BINS + 1 if model_type == "bert_pred_expr" else n_genes  # output classes: bins or genes
    plots.loss_plot(pd.read_csv(out_metrics), out_plot, title=title, vocab_size=vocab_size)
    return summary
