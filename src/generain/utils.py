"""Small shared helpers: atomic output, logging, timing, JSON.

Every output of the workflow is written to a temporary name beside its final
path and renamed only when complete, so a failed step never leaves a file that
looks finished.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, ClassVar, Iterator, Mapping, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

PathLike = str | os.PathLike[str]
T = TypeVar("T")
"""A file or folder path, as the stage functions take them."""

log = logging.getLogger("generain")


class InputError(ValueError):
    """Bad input: the message names the file or config key and what was wrong."""


class ConfigSection:
    """Base of the settings dataclasses: one config section, every key a field, no defaults.

    Subclasses are frozen dataclasses naming their section in ``SECTION``;
    fields made with :func:`runtime_field` only change how a job runs.
    """

    SECTION: ClassVar[str] = ""

    @classmethod
    def from_mapping(cls: type[T], values: Mapping[str, Any]) -> T:
        """Build from the config section (validated, defaults filled in by config/schema.yaml).

        Raises
        ------
        InputError
            Naming the section and the keys that are missing or unknown.
        """
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        missing, unknown = names - set(values), set(values) - names
        if missing or unknown:
            raise InputError(f"config {cls.SECTION}: missing keys {sorted(missing)}, "  # type: ignore[attr-defined]
                             f"unknown keys {sorted(unknown)}")
        return cls(**values)


def runtime_field() -> Any:
    """A settings field that only changes how a job runs, never its result (schema: ``runtime: true``)."""
    return dataclasses.field(metadata={"runtime": True})


def runtime_fields(cls: type) -> tuple[str, ...]:
    """The fields of a settings dataclass made with ``metadata={"runtime": True}``.

    They only change how a job runs (schema: ``runtime: true``), never its result.
    """
    return tuple(f.name for f in dataclasses.fields(cls) if f.metadata.get("runtime"))


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    Works for files and directories. On any exception the temporary path is
    removed and the final path is left untouched (absent if it was absent).

    Parameters
    ----------
    path : path-like
        Final output path. Its parent directory is created if needed.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")
    _remove(tmp)
    try:
        yield tmp
        _remove(final)
        os.replace(tmp, final)
    except BaseException:
        _remove(tmp)
        raise


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_parquet(table: pa.Table, path: str | os.PathLike[str]) -> None:
    """Write an Arrow table to parquet atomically (zstd compression)."""
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def write_json(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write ``obj`` as indented JSON atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def setup_logging(log_file: str | os.PathLike[str] | None = None, level: int = logging.INFO) -> None:
    """Send ``generain`` log records to stderr and, if given, to ``log_file``."""
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    root = logging.getLogger()
    root.setLevel(level)
    for h in list(root.handlers):
        root.removeHandler(h)
    stream = logging.StreamHandler()
    stream.setFormatter(fmt)
    root.addHandler(stream)
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        fh = logging.FileHandler(log_file, mode="w")
        fh.setFormatter(fmt)
        root.addHandler(fh)


def run_step(log_file: str | os.PathLike[str] | None, func: Any, /, **kwargs: Any) -> Any:
    """Run one workflow step: set up logging, call ``func(**kwargs)``.

    An :class:`InputError` is logged and turned into ``SystemExit`` with its
    message (no traceback), so the user reads what was wrong and where.
    """
    setup_logging(log_file)
    try:
        return func(**kwargs)
    except InputError as exc:
        log.error("%s", exc)
        raise SystemExit(f"generain: {exc}") from None


@contextlib.contextmanager
def timed(what: str) -> Iterator[None]:
    """Log ``what`` and its elapsed wall time in seconds."""
    start = time.perf_counter()
    log.info("%s ...", what)
    yield
    log.info("%s done in %.1f s", what, time.perf_counter() - start)


def strip_version(ensembl_id: str) -> str:
    """Return an Ensembl id without its version suffix (``ENSG0001.5`` -> ``ENSG0001``).

    GENCODE ``_PAR_Y`` suffixes are kept (they name a different locus).
    """
    head, dot, tail = ensembl_id.partition(".")
    if not dot:
        return ensembl_id
    # ENSG00000002586.20_PAR_Y -> ENSG00000002586_PAR_Y
    _, _, rest = tail.partition("_")
    return f"{head}_{rest}" if rest else head


def release_freed_memory() -> None:
    """Hand memory freed by the C allocator back to the system (glibc ``malloc_trim(0)``; elsewhere a no-op).

    Loops that allocate and free large temporaries (the sweep's batches of
    torch tensors) leave freed blocks in glibc's heaps, and the process's
    resident memory keeps the high-water mark of every batch's mix of sizes:
    on the demo's sweep 0.5 GB more than one batch needs (BENCHMARKS.md,
    "Memory"). Trimming after each batch keeps it at one batch's.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def avoid_huge_page_stalls() -> None:
    """Stop NumPy from asking for transparent huge pages (``madvise``) for new arrays in this process.

    Where the kernel defragments memory for ``madvise`` regions (THP
    ``defrag: madvise``, as on this project's VMs), the first touch of a
    fresh 0.5 GB array in a new process stalls on memory compaction: 1.2-1.6 s
    against 0.27 s with 4 KB pages (BENCHMARKS.md, "ARCHS4 scale"). Streaming
    shard jobs are short-lived processes that allocate a few such arrays, so
    they turn it off; the effect is that of ``NUMPY_MADVISE_HUGEPAGE=0``,
    which only works when set before NumPy is imported. A NumPy without the
    switch is left as it is.
    """
    try:
        from numpy._core.multiarray import _set_madvise_hugepage
    except ImportError:  # pragma: no cover - NumPy < 2 or a build without it
        return
    _set_madvise_hugepage(False)
