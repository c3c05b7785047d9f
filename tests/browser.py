"""Drive headless Chromium over the DevTools protocol: open a page, wait for text, read the DOM, screenshot.

Chromium's one-shot ``--dump-dom`` reads the page when its virtual-time budget
runs out, which for a page that renders over a websocket (Streamlit) is a
race; here the test polls the live DOM until what it waits for is there.
Uses the ``websockets`` package's synchronous client (a Streamlit dependency).
"""
from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from websockets.sync.client import connect

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """Terminate a child process, killing it if it has not exited within 20 s."""
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def render(chromium: str, url: str, *, wait_for: str, profile: Path, timeout: float = 90,
           screenshot: Path | None = None, size: tuple[int, int] = (1400, 1200)) -> str:
    """Open ``url``; return the page's HTML once it contains ``wait_for`` (else raise TimeoutError)."""
    port = free_port()
    proc = subprocess.Popen([chromium, *FLAGS, f"--remote-debugging-port={port}", "--remote-debugging-address=127.0.0.1",
                             f"--user-data-dir={profile}", f"--window-size={size[0]},{size[1]}", "--hide-scrollbars",
                             "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + timeout
        ws_url = None
        while ws_url is None:
            try:
                pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2).read())
                ws_url = next(p["webSocketDebuggerUrl"] for p in pages if p.get("type") == "page")
            except (OSError, StopIteration, ValueError):
                if time.time() > deadline or proc.poll() is not None:
                    raise TimeoutError("chromium's DevTools endpoint did not come up") from None
                time.sleep(0.3)
        return _drive(ws_url, url, wait_for, deadline, screenshot)
    finally:
        stop(proc)


def _drive(ws_url: str, url: str, wait_for: str, deadline: float, screenshot: Path | None) -> str:
    with connect(ws_url, max_size=64 * 1024 * 1024, open_timeout=20) as ws:
        counter = iter(range(1, 1_000_000))

        def call(method: str, **params: object) -> dict:
            i = next(counter)
            ws.send(json.dumps({"id": i, "method": method, "params": params}))
            while True:
                msg = json.loads(ws.recv(timeout=30))
                if msg.get("id") == i:
                    return msg.get("result", {})

        def page_html() -> str:
            r = call("Runtime.evaluate", expression="document.documentElement.outerHTML", returnByValue=True)
            return r.get("result", {}).get("value", "") or ""

        call("Page.navigate", url=url)
        html = ""
        while time.time() < deadline:
            html = page_html()
            if wait_for in html:
                time.sleep(1.0)  # let the rest of the page settle
                html = page_html() or html
                if screenshot is not None:
                    shot = call("Page.captureScreenshot", format="png")
                    screenshot.write_bytes(base64.b64decode(shot["data"]))
                return html
            time.sleep(0.5)
    raise TimeoutError(f"{url}: {wait_for!r} did not appear; page ends with {html[-500:]!r}")
