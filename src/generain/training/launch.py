"""Start training: in this process, or one process per device (Lightning's local DDP launcher or srun).

``python -m generain.training.launch SPEC.json`` runs one rank of a
multi-process run; :func:`launch_training` writes the spec and starts the ranks.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..utils import setup_logging, write_json
from .fit import TrainSettings, fit_model
from .resume import prepare_resume

log = logging.getLogger("generain.training")


def write_spec(kwargs: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Write :func:`~generain.training.fit.fit_model` arguments as JSON (``settings`` as an object)."""
    write_json({**kwargs, "settings": dataclasses.asdict(kwargs["settings"])}, path)


def read_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a spec written by :func:`write_spec` back into fit_model arguments."""
    spec = json.loads(Path(path).read_text())
    spec["settings"] = TrainSettings.from_mapping(spec["settings"])
    return spec


def launch_training(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Run :func:`~generain.training.fit.fit_model` in this process, or as one process per device.

    Parameters
    ----------
    kwargs : dict
        :func:`~generain.training.fit.fit_model` arguments. The settings'
        ``launcher`` says how ranks start: ``auto``: one device -> in this
        process; several devices -> ``srun`` inside a Slurm job
        (``SLURM_JOB_ID`` set), else Lightning's local DDP launcher.
        ``srun`` / ``local``: force one of them.

    Under Slurm the ranks are started as ``srun --overlap --nodes N --ntasks
    N*D --ntasks-per-node D python -m generain.training.launch spec.json``: the task
    counts are passed explicitly because the environment of the Snakemake job
    step says ``SLURM_NTASKS=1`` (read by srun as ``-n 1``, which silently
    trains on one process), and ``--overlap`` lets the ranks' step share the
    resources that the Snakemake job step itself holds. :func:`~generain.training.fit.fit_model`
    stops if Lightning's world size is not devices x nodes.
    The resume decision is taken once here, before the ranks start.

    Returns
    -------
    dict
        The training summary (see :func:`~generain.training.fit.fit_model`).

    Raises
    ------
    ValueError
        For an unknown launcher, or several nodes without Slurm.
    RuntimeError
        If the training processes fail.
    """
    settings: TrainSettings = kwargs["settings"]
    devices, nodes = settings.devices, settings.num_nodes
    srun = use_srun(settings.launcher, devices, nodes)
    if devices * nodes == 1 and not srun:
        return fit_model(**kwargs)
    spec = dict(kwargs)
    if spec.get("resume", "auto") == "auto":
        spec["resume"] = prepare_resume(spec)
    spec_path = Path(spec["checkpoint_path"]).parent / "train_spec.json"
    write_spec(spec, spec_path)
    start_ranks("generain.training.launch", spec_path, devices=devices, nodes=nodes, srun=srun, what="training")
    return json.loads(Path(spec["summary_path"]).read_text())


def use_srun(launcher: str, devices: int, nodes: int) -> bool:
    """Whether the ranks start through ``srun``: launcher ``srun``, or ``auto`` with several ranks inside a Slurm job.

    Raises
    ------
    ValueError
        For an unknown launcher, or several nodes without Slurm.
    """
    if launcher not in ("auto", "srun", "local"):
        raise ValueError(f"launcher must be auto, srun or local, not {launcher!r}")
    srun = launcher == "srun" or (launcher == "auto" and devices * nodes > 1 and "SLURM_JOB_ID" in os.environ)
    if nodes > 1 and not srun:
        raise ValueError(f"num_nodes {nodes}: several nodes need Slurm (srun)")
    return srun


def start_ranks(module: str, spec_path: str | os.PathLike[str], *, devices: int, nodes: int, srun: bool,
                what: str = "training") -> None:
    """Run ``python -m MODULE SPEC`` as the ranks of a DDP job, relaying their output to this process' log.

    Without ``srun`` one process starts and Lightning's local launcher
    re-executes the same command for local ranks 1..devices-1 at its first
    ``fit``. With ``srun`` all devices x nodes ranks start at once (see
    :func:`launch_training` for the options and why).

    Raises
    ------
    RuntimeError
        If the processes exit with a non-zero status.
    """
    cmd = [sys.executable, "-m", module, str(spec_path)]
    if srun:
        # --overlap: the Snakemake job step already holds the allocation's CPUs; without it the
        # ranks' step waits forever ("step creation temporarily disabled")
        # --ntasks too: the job step's environment carries SLURM_NTASKS=1, which srun reads as -n 1
        cmd = ["srun", "--overlap", f"--nodes={nodes}", f"--ntasks={devices * nodes}",
               f"--ntasks-per-node={devices}", "--kill-on-bad-exit=1", *cmd]
    log.info("launching %d %s processes: %s", devices * nodes, what, " ".join(cmd))
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:  # relay the ranks' output into this step's log
            log.info("| %s", line.rstrip())
    if proc.returncode != 0:
        raise RuntimeError(f"{what} processes exited with status {proc.returncode}; see the lines above")


def main(argv: list[str] | None = None) -> None:
    """``python -m generain.training.launch spec.json``: one training rank (see :func:`launch_training`)."""

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m generain.training.launch SPEC.json")
    setup_logging(None)
    fit_model(**read_spec(args[0]))


if __name__ == "__main__":
    main()
