"""The ``generain`` command line on a small hand-made embedding."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from generain import cli, embed


@pytest.fixture
def w2v(tmp_path):
    vec = {"A": [1, 0, 0], "B": [0, 1, 0], "C": [0, 0, 1], "D": [-1, 1, 1], "HLA-A": [1, 0.1, 0], "G": [-1, 0, 0]}
    path = tmp_path / "e.w2v.txt"
    embed.write_word2vec(list(vec), np.asarray(list(vec.values()), dtype=np.float32), path)
    return str(path)


def test_parse_expression_keeps_hyphenated_symbols():
    assert cli.parse_expression(["A - HLA-A + 2*B", "-0.5*C"]) == [(1.0, "A"), (-1.0, "HLA-A"), (2.0, "B"),
                                                                  (-0.5, "C")]
    with pytest.raises(cli.InputError, match="cannot read the term"):
        cli.parse_term("-*")


def test_similar_analogy_combine(w2v, capsys, tmp_path):
    assert cli.main(["-e", w2v, "analogy", "A", "B", "C", "-n", "1"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["rank", "token", "ensembl_id", "symbol", "species", "cosine"]
    assert out[1].split()[:2] == ["1", "D"] and out[1].split()[-1] == "1.0000"
    assert cli.main(["-e", w2v, "combine", "2*A - G", "-n", "1", "--csv", str(tmp_path / "c.csv")]) == 0
    table = pd.read_csv(tmp_path / "c.csv")
    assert table.loc[0, "token"] == "HLA-A" and table.loc[0, "cosine"] == pytest.approx(1 / np.sqrt(1.01), abs=1e-6)
    assert cli.main(["-e", w2v, "similarity", "A", "HLA-A"]) == 0
    assert "cosine(A, HLA-A) = 0.9950; 0 of 6 genes are closer to A, 0 closer to HLA-A" in capsys.readouterr().out


def test_unknown_gene_exits_2_with_close_matches(w2v, capsys):
    assert cli.main(["-e", w2v, "similar", "HLA-B"]) == 2
    err = capsys.readouterr().err
    assert "generain: 'HLA-B' is not in the embedding (6 genes); close matches: HLA-A" in err
    assert cli.main(["-e", w2v + ".missing", "similar", "A"]) == 2
    assert "embedding file not found" in capsys.readouterr().err


@pytest.mark.parametrize("suffix, magic", [("png", b"\x89PNG"), ("svg", b"<?xml")])
def test_plot_writes_the_map(w2v, tmp_path, suffix, magic):
    out = tmp_path / f"map.{suffix}"
    assert cli.main(["-e", w2v, "plot", "--list", "x=A,B,HLA-A", "--list", "y=C,D", "--out", str(out)]) == 0
    assert out.read_bytes().startswith(magic)
