"""word2vec text format round trip and errors; embedding table from the vocabulary."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from generain import embed
from generain.utils import InputError


def test_word2vec_roundtrip_and_format(tmp_path):
    vecs = np.array([[0.5, -1.25], [1e-7, 3.0]], dtype=np.float32)
    embed.write_word2vec(["ENSG1", "m_ENSMUSG1"], vecs, tmp_path / "e.txt")
    text = (tmp_path / "e.txt").read_text().splitlines()
    assert text == ["2 2", "ENSG1 0.5 -1.25", "m_ENSMUSG1 1e-07 3"]
    tokens, back = embed.read_word2vec(tmp_path / "e.txt")
    assert tokens == ["ENSG1", "m_ENSMUSG1"]
    np.testing.assert_array_equal(back, vecs)


@pytest.mark.parametrize("content,message", [
    ("ENSG1 0.1 0.2\n", "first line must be 'N D'"),
    ("2 2\nENSG1 0.1 0.2\n", "header says 2 vectors, file has 1"),
    ("1 3\nENSG1 0.1 0.2\n", "line 2 has 2 values, expected 3"),
])
def test_word2vec_errors(tmp_path, content, message):
    (tmp_path / "e.txt").write_text(content)
    with pytest.raises(InputError, match=message):
        embed.read_word2vec(tmp_path / "e.txt")


def test_embedding_table_drops_special_tokens_and_parquet_roundtrip(tmp_path):
    vocab = pd.DataFrame({"token_id": [0, 1, 2, 3, 4], "token": ["<pad>", "<mask>", "<cls>", "ENSG1", "ENSG2"],
                          "ensembl_id": ["", "", "", "ENSG1", "ENSG2"], "symbol": ["", "", "", "A", "B"],
                          "biotype": ["special"] * 3 + ["protein_coding", "lncRNA"], "species": [""] * 3 + ["human"] * 2})
    w = np.arange(10, dtype=np.float32).reshape(5, 2)
    table = embed.gene_embedding_table(vocab, w)
    assert table["token"].tolist() == ["ENSG1", "ENSG2"]
    embed.write_embeddings(table, w2v_path=tmp_path / "m.w2v.txt", parquet_path=tmp_path / "m.parquet")
    back = embed.read_embeddings(tmp_path / "m.parquet")
    np.testing.assert_array_equal(embed.embedding_matrix(back), [[6, 7], [8, 9]])
    assert list(back.columns) == ["token", "ensembl_id", "symbol", "biotype", "species", "embedding"]
    with pytest.raises(ValueError, match="vocabulary has 5 tokens"):
        embed.gene_embedding_table(vocab, w[:4])
