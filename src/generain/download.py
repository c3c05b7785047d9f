"""Verified, resumable HTTP downloads (ARCHS4 HDF5 files or any URL in the config).

A transfer is written to ``<dest>.part``; an interrupted transfer is resumed
from the bytes already there with an HTTP ``Range`` request (a server that
ignores it restarts the file from zero). When the transfer is complete the
file's sha256 is checked against the expected one; only a file that matches
is renamed to ``dest`` (atomic, same directory). A mismatch moves the file
aside to ``<dest>.sha256-mismatch`` and raises an error that shows both
hashes, so a bad file is never used and never resumed.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from pathlib import Path

import requests
from tqdm import tqdm

from .utils import InputError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class DownloadError(InputError):
    """A download that could not be completed or verified."""


def sha256_file(path: str | os.PathLike[str], *, chunk: int = CHUNK) -> str:
    """Hex sha256 of a file, read in ``chunk``-byte blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _total_size(response: requests.Response, offset: int) -> int | None:
    """The full file size from Content-Range (206) or Content-Length (200)."""
    if response.status_code == 206:
        m = re.match(r"bytes (\d+)-(\d+)/(\d+|\*)", response.headers.get("Content-Range", ""))
        if not m or int(m.group(1)) != offset:
            raise DownloadError(f"{response.url}: server answered the range request from byte {offset} with "
                                f"Content-Range {response.headers.get('Content-Range')!r}")
        return int(m.group(3)) if m.group(3) != "*" else None
    length = response.headers.get("Content-Length")
    return int(length) if length is not None else None


def _transfer(url: str, part: Path, *, timeout: float, progress: bool) -> bool:
    """One HTTP request appending to ``part``; True if the file is complete.

    Returns False when the connection ended before the announced size (the
    bytes received so far stay in ``part`` for the next attempt).
    """
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    with requests.get(url, headers=headers, stream=True, timeout=timeout) as r:
        if r.status_code == 416 and offset:  # nothing left to send: the part file is complete
            return True
        if r.status_code not in (200, 206):
            raise DownloadError(f"{url}: HTTP {r.status_code} {r.reason}")
        if r.status_code == 200 and offset:
            log.info("%s: the server ignored the range request; restarting from byte 0", url)
            offset = 0
        total = _total_size(r, offset)
        received = offset
        mode = "ab" if offset else "wb"
        bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, desc=part.name[:-5],
                   disable=not progress, mininterval=5)
        try:
            with open(part, mode) as fh:
                for block in r.iter_content(CHUNK):
                    fh.write(block)
                    received += len(block)
                    bar.update(len(block))
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            log.warning("%s: transfer cut off after %d bytes (%s)", url, received, exc)
            return False
        finally:
            bar.close()
    if total is not None and received < total:
        log.warning("%s: transfer cut off after %d of %d bytes", url, received, total)
        return False
    if total is not None and received > total:
        raise DownloadError(f"{url}: received {received} bytes, more than the announced {total}")
    return True


def download(
    url: str,
    dest: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    retries: int = 5,
    wait: float = 2.0,
    timeout: float = 60.0,
    progress: bool = True,
) -> str:
    """Download ``url`` to ``dest``, resuming partial transfers, and verify its sha256.

    Parameters
    ----------
    url : str
        http(s) URL.
    dest : path-like
        Final path; written only once the file is complete and verified.
    sha256 : str, optional
        Expected lowercase hex sha256. ``None``: not checked; the computed
        hash is logged so it can be pinned in the config.
    retries : int
        Further attempts (each resuming from the bytes received) after a
        transfer is cut off or a connection fails.
    wait : float
        Seconds between attempts, doubled after each one.
    timeout : float
        Seconds to wait for the server to connect or send the next block.
    progress : bool
        Show a tqdm progress bar (stderr, at most every 5 s).

    Returns
    -------
    str
        The file's sha256.

    Raises
    ------
    DownloadError
        A malformed ``sha256``, an HTTP error status, a transfer still
        incomplete after ``retries`` attempts (``<dest>.part`` is kept and the
        next call resumes from it), or a sha256 mismatch (the file is moved to
        ``<dest>.sha256-mismatch``; the message shows both hashes).
    """
    dest = Path(dest)
    if sha256 is not None:
        sha256 = sha256.lower()
        if not SHA256.match(sha256):
            raise DownloadError(f"{dest}: expected sha256 {sha256!r} is not 64 hex digits")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if part.exists():
        log.info("%s: resuming from byte %d of the partial transfer %s", url, part.stat().st_size, part)
    for attempt in range(retries + 1):
        try:
            if _transfer(url, part, timeout=timeout, progress=progress):
                break
        except (requests.ConnectionError, requests.Timeout) as exc:
            log.warning("%s: attempt %d failed: %s", url, attempt + 1, exc)
        if attempt < retries:
            time.sleep(wait * 2**attempt)
    else:
        got = part.stat().st_size if part.exists() else 0
        raise DownloadError(f"{url}: transfer incomplete after {retries + 1} attempts ({got} bytes in {part}; "
                            "run again to resume)")
    actual = sha256_file(part)
    if sha256 is not None and actual != sha256:
        bad = dest.with_name(dest.name + ".sha256-mismatch")
        os.replace(part, bad)
        raise DownloadError(f"{url}: sha256 mismatch for {dest}: expected {sha256}, got {actual}; "
                            f"the file is kept aside as {bad} and not used")
    if sha256 is None:
        log.warning("%s: no sha256 given to check; this file's sha256 is %s (pin it in the config)", url, actual)
    os.replace(part, dest)
    log.info("%s -> %s (%d bytes, sha256 %s)", url, dest, dest.stat().st_size, actual)
    return actual
