"""Which training run a checkpoint belongs to, and whether a run resumes.

A run's fingerprint hashes the :func:`generain.training.fit.fit_model`
arguments that shape its result (not the runtime settings: workers, progress
bar, checkpoint spacing, device, launcher, threads) and the token index it
reads. ``checkpoints/run.json`` records it; a rerun with the same fingerprint
resumes from ``last.ckpt``, any other starts afresh.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

from ..utils import runtime_fields, write_json

log = logging.getLogger("generain.training")

#: fit_model arguments that are not settings of the run (how it is run, not what it computes).
_NOT_IN_FINGERPRINT = ("threads", "resume")


def run_fingerprint(kwargs: dict[str, Any]) -> str:
    """Identity of a training run: the :func:`~generain.training.fit.fit_model` arguments that shape it and its index.

    Parameters
    ----------
    kwargs : dict
        fit_model's keyword arguments; ``settings`` a
        :class:`~generain.training.fit.TrainSettings`, whose runtime fields
        are left out.

    Returns
    -------
    str
        16 hex digits.
    """
    settings = kwargs["settings"]
    shaping = {k: v for k, v in kwargs.items() if k not in (*_NOT_IN_FINGERPRINT, "settings")}
    shaping["settings"] = {k: v for k, v in dataclasses.asdict(settings).items()
                           if k not in runtime_fields(type(settings))}
    h = hashlib.sha256(json.dumps(shaping, sort_keys=True, default=str).encode())
    h.update(Path(kwargs["index_path"]).read_bytes())
    return h.hexdigest()[:16]


def checkpoint_dir(checkpoint_path: str | os.PathLike[str]) -> Path:
    """Where the Lightning checkpoints of the model saved at ``checkpoint_path`` go."""
    return Path(checkpoint_path).parent / "checkpoints"


def prepare_resume(kwargs: dict[str, Any]) -> str | None:
    """Decide whether a run with these :func:`~generain.training.fit.fit_model` arguments resumes.

    Returns ``last.ckpt`` of an interrupted run with the same fingerprint,
    else None after removing stale checkpoints (of a finished run, or of a run
    with other settings or data). Call it once, before launching the ranks.
    """
    return resume_point(checkpoint_dir(kwargs["checkpoint_path"]), run_fingerprint(kwargs))


def resume_point(ckpt_dir: Path, fingerprint: str) -> str | None:
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
