"""The trained model's file, saved and loaded with torch alone (no Lightning).

``model.pt`` is ``torch.save({"model_type", "model_config", "state_dict"})``
of the bare model (:mod:`generain.model`), written at the end of training;
the stages that only read a model (export_embeddings, align_species) load it
here without importing Lightning.
"""

from __future__ import annotations

import os

import torch

from ..model import BertMLM, GPT, ModelConfig, build_model
from ..utils import InputError, atomic_path


def save_model(model: GPT | BertMLM, model_type: str, path: str | os.PathLike[str]) -> None:
    """Write a model's type, shape and weights to ``path`` atomically.

    Parameters
    ----------
    model : GPT or BertMLM
        The bare model (a ``torch.compile`` wrapper is unwrapped first).
    model_type : str
        One of :data:`generain.model.MODEL_TYPES`.
    path : path-like
        Output file (``models/{corpus}/{model}/model.pt``).
    """
    raw = getattr(model, "_orig_mod", model)
    with atomic_path(path) as tmp:
        torch.save({"model_type": model_type, "model_config": raw.cfg.to_dict(), "state_dict": raw.state_dict()}, tmp)


def load_model(checkpoint_path: str | os.PathLike[str]) -> tuple[str, GPT | BertMLM]:
    """Load a model saved by :func:`save_model`: (model_type, model on CPU in eval mode).

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
