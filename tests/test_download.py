"""Verified, resumable downloads against a local HTTP server on 127.0.0.1.

The server serves a 3 MiB file that supports byte ranges; ``/cut`` announces
the full length but closes the connection after the first ``cut`` bytes of
each response (every request, or only the first), ``/bad`` serves a copy with
one flipped byte and ``/norange`` ignores Range headers.
"""
from __future__ import annotations

import hashlib
import http.server
import logging
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import yaml

from generain.download import DownloadError, download

PAYLOAD = np.random.default_rng(0).integers(0, 256, 3 * 2**20, dtype=np.uint8).tobytes()
SHA = hashlib.sha256(PAYLOAD).hexdigest()
BAD = PAYLOAD[:1000] + bytes([PAYLOAD[1000] ^ 0xFF]) + PAYLOAD[1001:]
REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "resources" / "demo" / "demo_counts.h5"
FILES = {"/good": PAYLOAD, "/bad": BAD, "/cut": PAYLOAD, "/norange": PAYLOAD, "/demo.h5": DEMO.read_bytes()}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        srv = self.server
        srv.requests.append((self.path, self.headers.get("Range")))
        if self.path not in FILES:
            self.send_error(404)
            return
        body = FILES[self.path]
        start = 0
        m = re.match(r"bytes=(\d+)-$", self.headers.get("Range") or "")
        if m and self.path != "/norange":
            start = int(m.group(1))
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("Connection", "close")
        self.end_headers()
        send = body[start:]
        if self.path == "/cut" and srv.cuts_left > 0:
            srv.cuts_left -= 1
            send = send[: srv.cut]
        self.wfile.write(send)
        self.wfile.flush()
        self.close_connection = True


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.requests, srv.cut, srv.cuts_left = [], 2**20, 0
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


def test_download_verifies_and_renames(server, tmp_path):
    dest = tmp_path / "sub" / "file.h5"
    assert download(f"{server.url}/good", dest, sha256=SHA.upper(), progress=False) == SHA
    assert dest.read_bytes() == PAYLOAD
    assert sorted(p.name for p in dest.parent.iterdir()) == ["file.h5"]


def test_cut_transfer_resumes_within_one_call(server, tmp_path):
    server.cuts_left = 1
    dest = tmp_path / "file.h5"
    download(f"{server.url}/cut", dest, sha256=SHA, wait=0, progress=False)
    assert dest.read_bytes() == PAYLOAD
    # first request whole, second one resumes exactly where the cut left off
    assert server.requests == [("/cut", None), ("/cut", f"bytes={2**20}-")]


def test_partial_transfer_is_kept_and_resumed_by_the_next_run(server, tmp_path, caplog):
    server.cuts_left = 2  # both attempts of the first run are cut
    dest = tmp_path / "file.h5"
    with pytest.raises(DownloadError, match=r"transfer incomplete after 2 attempts \(2097152 bytes in .*file.h5.part; "
                                            "run again to resume\\)"):
        download(f"{server.url}/cut", dest, sha256=SHA, retries=1, wait=0, progress=False)
    assert not dest.exists() and (tmp_path / "file.h5.part").read_bytes() == PAYLOAD[: 2 * 2**20]
    with caplog.at_level(logging.INFO, logger="generain.download"):
        download(f"{server.url}/cut", dest, sha256=SHA, wait=0, progress=False)
    assert dest.read_bytes() == PAYLOAD and not (tmp_path / "file.h5.part").exists()
    assert server.requests[-1] == ("/cut", f"bytes={2 * 2**20}-")
    assert "resuming from byte 2097152" in caplog.text


def test_corrupted_copy_is_kept_aside_with_both_hashes(server, tmp_path):
    dest = tmp_path / "file.h5"
    bad_sha = hashlib.sha256(BAD).hexdigest()
    with pytest.raises(DownloadError, match=f"sha256 mismatch for {re.escape(str(dest))}: expected {SHA}, "
                                            f"got {bad_sha}; the file is kept aside as .*file.h5.sha256-mismatch"):
        download(f"{server.url}/bad", dest, sha256=SHA, progress=False)
    assert not dest.exists() and not (tmp_path / "file.h5.part").exists()
    assert (tmp_path / "file.h5.sha256-mismatch").read_bytes() == BAD
    # the next run starts from scratch, not from the bad file
    download(f"{server.url}/good", dest, sha256=SHA, progress=False)
    assert server.requests[-1] == ("/good", None)


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    part = tmp_path / "file.h5.part"
    part.write_bytes(b"x" * 1000)  # stale bytes that must not survive
    download(f"{server.url}/norange", tmp_path / "file.h5", sha256=SHA, progress=False)
    assert (tmp_path / "file.h5").read_bytes() == PAYLOAD
    assert server.requests == [("/norange", "bytes=1000-")]


def test_complete_part_file_is_verified_without_refetching(server, tmp_path):
    (tmp_path / "file.h5.part").write_bytes(PAYLOAD)
    download(f"{server.url}/good", tmp_path / "file.h5", sha256=SHA, progress=False)
    assert (tmp_path / "file.h5").read_bytes() == PAYLOAD
    assert server.requests == [("/good", f"bytes={len(PAYLOAD)}-")]  # answered 416: nothing left


def test_http_error_and_bad_hash_argument(server, tmp_path):
    with pytest.raises(DownloadError, match="HTTP 404"):
        download(f"{server.url}/missing", tmp_path / "f", retries=0, progress=False)
    with pytest.raises(DownloadError, match="is not 64 hex digits"):
        download(f"{server.url}/good", tmp_path / "f", sha256="abc", progress=False)
    assert list(tmp_path.iterdir()) == []  # nothing written for a failed request


def test_no_hash_logs_the_computed_one(server, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="generain.download"):
        download(f"{server.url}/good", tmp_path / "f", progress=False)
    assert f"this file's sha256 is {SHA}" in caplog.text
    assert Path(tmp_path / "f").read_bytes() == PAYLOAD


def _workflow(tmp_path, url, sha256):
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["run_name"] = "dl"
    cfg["datasets"] = [{"name": "demo", "path": "data/demo_counts.h5", "format": "archs4", "url": url,
                        "sha256": sha256}]
    for key in ("gene_table", "orthologs", "hcop_table"):
        cfg["annotation"][key] = str(REPO / cfg["annotation"][key])
    cfg["annotation"]["gene_sets"] = [str(REPO / p) for p in cfg["annotation"]["gene_sets"]]
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(tmp_path),
                           "--configfile", str(tmp_path / "c.yaml"), "-c1", "results/dl/ingest/demo.json"],
                          capture_output=True, text=True, timeout=600)


def test_workflow_downloads_a_dataset_before_ingesting_it(server, tmp_path):
    """A dataset with a url is fetched by the download rule; a wrong sha256 stops the run before ingest."""
    demo_sha = hashlib.sha256(FILES["/demo.h5"]).hexdigest()
    proc = _workflow(tmp_path, f"{server.url}/demo.h5", "0" * 64)
    assert proc.returncode != 0
    log = (tmp_path / "results" / "dl" / "logs" / "download" / "data" / "demo_counts.h5.log").read_text()
    assert f"expected {'0' * 64}, got {demo_sha}" in log
    assert not (tmp_path / "data" / "demo_counts.h5").exists() and not (tmp_path / "results" / "dl" / "ingest").exists()
    assert (tmp_path / "data" / "demo_counts.h5.sha256-mismatch").stat().st_size == DEMO.stat().st_size
    proc = _workflow(tmp_path, f"{server.url}/demo.h5", demo_sha)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "data" / "demo_counts.h5").read_bytes() == FILES["/demo.h5"]
    assert (tmp_path / "results" / "dl" / "ingest" / "demo.json").exists()
