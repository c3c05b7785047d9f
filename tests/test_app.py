"""The explorer web app: through Streamlit's test harness, and in headless Chromium on 127.0.0.1."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from generain import embed

import browser  # tests/browser.py (pytest puts tests/ on sys.path)

APP = Path(__file__).resolve().parents[1] / "src" / "generain" / "app.py"
streamlit_testing = pytest.importorskip("streamlit.testing.v1")


@pytest.fixture
def run_dir(tmp_path):
    """A run with an embedding (A, B, C on the axes; D = B - A + C), a one-property sweep and ortholog ranks."""
    vec = {"A": [1, 0, 0], "B": [0, 1, 0], "C": [0, 0, 1], "D": [-1, 1, 1], "E": [1, 0.1, 0], "G": [-1, 0, 0]}
    table = pd.DataFrame({"token": [f"ENSG{i:011d}" for i in range(6)], "ensembl_id": [f"ENSG{i:011d}" for i in range(6)],
                          "symbol": list(vec), "biotype": "protein_coding", "species": "human",
                          "embedding": [np.asarray(v, dtype=np.float32) for v in vec.values()]})
    run = tmp_path / "run"
    embed.write_embeddings(table, w2v_path=run / "embeddings" / "gpt.w2v.txt",
                           parquet_path=run / "embeddings" / "gpt.parquet")
    (run / "sweep" / "gpt").mkdir(parents=True)
    pd.DataFrame({"source": ["GO_BP"], "term_id": ["GO:1"], "intercept": [0.0],
                  "coef": [np.asarray([5.0, 0, 0], dtype=np.float32)]}).to_parquet(run / "sweep/gpt/classifiers.parquet")
    pd.DataFrame({"source": ["GO_BP"], "term_id": ["GO:1"], "term_name": ["axis one"]}).to_parquet(
        run / "sweep/gpt/properties.parquet")
    (run / "species" / "gpt").mkdir(parents=True)
    pd.DataFrame({"human_ensembl_id": ["ENSG00000000000"], "mouse_ensembl_id": ["ENSMUSG00000000007"],
                  "split": ["test"], "rank": [3], "cosine": [0.5]}).to_parquet(run / "species/gpt/ortholog_ranks.parquet")
    return run


def _app(run_dir, monkeypatch):
    monkeypatch.setenv("GENERAIN_RUN", str(run_dir))
    monkeypatch.setenv("GENERAIN_MODEL", "gpt")
    monkeypatch.delenv("GENERAIN_EMBEDDING", raising=False)
    return streamlit_testing.AppTest.from_file(str(APP), default_timeout=60)


def test_similar_page_with_predictions_and_orthologs(run_dir, monkeypatch):
    at = _app(run_dir, monkeypatch).run()
    assert not at.exception
    at.text_input(key="gene").input("A").run()
    tables = [t.value for t in at.table]
    assert list(tables[0]["symbol"])[:2] == ["E", "B"]  # E (cos 0.995), then B, C tie at 0: vocabulary order
    assert tables[1]["term_name"].tolist() == ["axis one"]  # the sweep's classifier: sigmoid(5 * 1) = 0.993
    assert float(str(tables[1]["probability"].iloc[0])) == pytest.approx(0.9933, abs=1e-4)
    assert tables[2]["mouse_ensembl_id"].tolist() == ["ENSMUSG00000000007"]


def test_calculator_pages_and_errors(run_dir, monkeypatch):
    at = _app(run_dir, monkeypatch).run()
    at.sidebar.radio[0].set_value("calculator").run()
    at.text_input(key="ca").input("B").run()
    at.text_input(key="cb").input("A").run()
    at.text_input(key="cc").input("C").run()
    assert at.table[0].value["symbol"].iloc[0] == "D"  # B - A + C
    at.sidebar.radio[0].set_value("terms").run()
    at.text_input(key="expr").input("2*A - G").run()
    assert at.table[0].value["symbol"].iloc[0] == "E"
    at.sidebar.radio[0].set_value("similar").run()
    at.text_input(key="gene").input("AA").run()
    assert "'AA' is not in the embedding" in at.error[0].value


def test_samples_and_perturbation_pages(run_dir, monkeypatch):
    emb = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.9, 0.2]], dtype=np.float32)
    (run_dir / "samples" / "gpt").mkdir(parents=True)
    pd.DataFrame({"sample_id": ["s1", "s2", "s3", "s4"], "dataset": "d", "series_id": ["x", "x", "y", "y"],
                  "species": "human", "split": "train", "embedding": list(emb)}).to_parquet(
        run_dir / "samples" / "gpt" / "embeddings.parquet")
    (run_dir / "perturbation" / "up_a" / "gpt").mkdir(parents=True)
    pd.DataFrame({"ensembl_id": ["ENSG00000000001", "ENSG00000000002"], "symbol": ["B", "C"], "token": ["t1", "t2"],
                  "mean_shift": [0.2, 0.1], "null_mean_shift": [0.05, 0.09], "excess_shift": [0.15, 0.01],
                  "n_samples": [4, 4], "p_value": [0.0099, 0.4], "fdr": [0.0198, 0.4], "z_score": [3.1, -0.5],
                  "fdr_normal_less": [1.0, 0.62]}).to_parquet(
        run_dir / "perturbation" / "up_a" / "gpt" / "gene_shifts.parquet")
    at = _app(run_dir, monkeypatch).run()
    at.sidebar.radio[0].set_value("samples").run()
    assert not at.exception and not at.error
    chart = next(e for e in at.main if getattr(e, "type", "") == "vega_lite_chart")
    assert '"tooltip"' in chart.proto.spec and "sample_id" in chart.proto.spec  # hover names the sample
    at.sidebar.radio[0].set_value("perturbation").run()
    assert at.selectbox(key="run").value == "up_a"
    assert at.table[0].value["symbol"].tolist() == ["B", "C"]
    assert at.table[1].value["symbol"].tolist() == ["C", "B"]  # steadied: by z-score, smallest first


def test_explore_sample_map_separates_planted_groups(run_dir):
    from generain.explore import sample_map

    rng = np.random.default_rng(0)
    emb = np.r_[rng.normal(0, 0.1, (10, 8)) + 3, rng.normal(0, 0.1, (10, 8)) - 3].astype(np.float32)
    (run_dir / "samples" / "gpt").mkdir(parents=True)
    pd.DataFrame({"sample_id": [f"s{i}" for i in range(20)], "dataset": "d", "series_id": ["a"] * 10 + ["b"] * 10,
                  "species": "human", "split": "train", "embedding": list(emb)}).to_parquet(
        run_dir / "samples" / "gpt" / "embeddings.parquet")
    m = sample_map(run_dir, "gpt")
    a, b = m.loc[m["series_id"] == "a", "x"], m.loc[m["series_id"] == "b", "x"]
    assert (a.min() > b.max()) or (b.min() > a.max())  # PC 1 splits the two planted groups


def test_real_browser_shows_the_neighbours(run_dir, tmp_path):
    """Headless Chromium opens the app on 127.0.0.1, asks for A's neighbours, and the table is in the page."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        if os.environ.get("GENERAIN_REQUIRE_BROWSER") == "1":
            pytest.fail("GENERAIN_REQUIRE_BROWSER=1 but chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("no chromium here (apt-get install chromium)")
    port = browser.free_port()
    env = dict(os.environ, GENERAIN_RUN=str(run_dir), GENERAIN_MODEL="gpt")
    server = subprocess.Popen([sys.executable, "-m", "generain.cli", "app", "--run", str(run_dir), "--port", str(port)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 90
        while True:
            try:
                if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                    break
            except OSError:
                pass
            if time.time() > deadline or server.poll() is not None:
                server.kill()
                raise AssertionError(f"the app did not start:\n{server.stdout.read()}")
            time.sleep(0.5)
        dom = browser.render(chromium, f"http://127.0.0.1:{port}/?page=similar&gene=A&n=3",
                             wait_for="ENSG00000000004", profile=tmp_path / "chrome")
        # the neighbours of A: E (0.9950), then B and C (0.0000), in a table
        assert "<table" in dom, dom[-2000:]
        body = dom[dom.index("<table"):]
        assert body.index("ENSG00000000004") < body.index("ENSG00000000001") < body.index("ENSG00000000002")
        assert "0.9950" in body
    finally:
        browser.stop(server)
