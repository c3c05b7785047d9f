"""Tokenization: order, ties, truncation, padding, expression bins, vocab, split, shards."""
from __future__ import annotations

import numpy as np
import pandas as pd

from generain import tokenize


def test_tokenize_order_ties_truncation_and_padding():
    scores = np.array([[5, 2], [9, 0], [1, 0], [9, 7], [7, 0]], dtype=np.uint16)  # 5 genes x 2 samples
    eligible = np.array([[1, 1], [1, 0], [0, 0], [1, 1], [1, 0]], dtype=bool)
    logv = np.array([[0.1, 0.3], [0.5, 0], [0, 0], [0.2, 0.8], [0.9, 0]])
    ids = np.arange(3, 8)
    genes, expr, n = tokenize.tokenize_samples(scores, eligible, logv, ids, length=3)
    # sample 0: bins 9 (tokens 4, 6: tie -> lower token id first), 7 (token 7); 5 (token 3) truncated
    # expression bins from log values 0.5, 0.2, 0.9: ranks 1, 0, 2 -> rank * 100 // 3 + 1 = 34, 1, 67
    # sample 1: two eligible genes, token 6 (bin 7) then 3 (bin 2), then padding
    assert genes.tolist() == [[4, 6, 7], [6, 3, 0]]
    assert expr.tolist() == [[34, 1, 67], [51, 1, 0]]
    assert n.tolist() == [3, 2]
    assert genes.dtype == np.uint16 and expr.dtype == np.uint8


def _tokenize_one_by_one(scores, eligible, log_values, token_ids, length):
    """The definition, sample by sample: eligible genes by score descending, ties by token id (lexsort);
    expression bins from the stable rank of their log values."""
    n_genes, n_samples = scores.shape
    genes = np.zeros((n_samples, length), dtype=np.int64)
    expr = np.zeros((n_samples, length), dtype=np.int64)
    for j in range(n_samples):
        idx = np.flatnonzero(eligible[:, j])
        sel = idx[np.lexsort((token_ids[idx], -scores[idx, j].astype(float)))][:length]
        genes[j, :sel.size] = token_ids[sel]
        rank = np.empty(sel.size, dtype=np.int64)
        rank[np.argsort(log_values[sel, j], kind="stable")] = np.arange(sel.size)
        expr[j, :sel.size] = rank * 100 // max(sel.size, 1) + 1
    return genes, expr


def test_tokenize_blocks_match_the_sample_by_sample_definition():
    """The tokenizer against the definition on random cases with many ties: bins (uint16, the counting-sort
    kernel), other integer scores (int64, a wide range: the kernel in blocks of few samples), float scores
    (the sorting path), arbitrary eligible masks, token ids in any order, odd block sizes."""
    rng = np.random.default_rng(1)
    for trial in range(36):
        n_genes, n_samples, length = int(rng.integers(1, 60)), int(rng.integers(1, 40)), int(rng.integers(1, 70))
        if trial % 3 == 0:
            scores = rng.integers(1, 6, (n_genes, n_samples)).astype(np.uint16)
            eligible = scores > 1
        elif trial % 3 == 1:
            scores = rng.choice([0, 7, 40_000, 65_534], (n_genes, n_samples))
            eligible = rng.random((n_genes, n_samples)) < 0.7
        else:
            scores = rng.integers(0, 4, (n_genes, n_samples)).astype(np.float32)
            eligible = rng.random((n_genes, n_samples)) < 0.7
        log_values = rng.integers(0, 4, (n_genes, n_samples)).astype(np.float32)  # ties in expression too
        ids = rng.permutation(np.arange(3, 3 + n_genes) * int(rng.integers(1, 3)))
        genes, expr, n = tokenize.tokenize_samples(scores, eligible, log_values, ids, length=length,
                                                   block_samples=int(rng.integers(1, 8)))
        want_genes, want_expr = _tokenize_one_by_one(scores, eligible, log_values, ids, length)
        np.testing.assert_array_equal(genes, want_genes)
        np.testing.assert_array_equal(expr, want_expr)
        np.testing.assert_array_equal(n, np.minimum(eligible.sum(axis=0), length))


def test_vocab_special_tokens_and_species_prefix():
    genes = pd.DataFrame({"ensembl_id": ["ENSG1", "ENSMUSG1"], "symbol": ["A", "a"],
                          "biotype": ["protein_coding"] * 2, "species": ["human", "mouse"]})
    v = tokenize.build_vocab(genes)
    assert v["token"].tolist() == ["<pad>", "<mask>", "<cls>", "ENSG1", "m_ENSMUSG1"]
    assert v["token_id"].tolist() == [0, 1, 2, 3, 4]
    assert list(v.columns) == ["token_id", "token", "ensembl_id", "symbol", "biotype", "species"]


def test_split_is_seeded_and_has_both_sides():
    a = tokenize.split_samples(20, validation_fraction=0.1, seed=3)
    assert (a == "validation").sum() == 2
    assert (a == tokenize.split_samples(20, validation_fraction=0.1, seed=3)).all()
    assert (tokenize.split_samples(3, validation_fraction=0.0, seed=0) == "validation").sum() == 1


def test_shards_roundtrip(tmp_path):
    g = np.arange(15, dtype=np.uint16).reshape(5, 3)
    e = (g % 100 + 1).astype(np.uint8)
    idx = tokenize.write_token_shards(tmp_path / "shards", tmp_path / "index.parquet", sample_ids=np.array(list("abcde")),
                                      gene_tokens=g, expr_tokens=e, n_tokens=np.full(5, 3), shard_size=2,
                                      split=np.array(["train"] * 5, dtype=object))
    assert sorted(p.name for p in (tmp_path / "shards").iterdir()) == [
        "expr_00000.npy", "expr_00001.npy", "expr_00002.npy", "genes_00000.npy", "genes_00001.npy", "genes_00002.npy"]
    shards = tokenize.TokenShards(tmp_path / "shards", pd.read_parquet(tmp_path / "index.parquet"))
    genes, expr = shards[4]
    assert genes.tolist() == [12, 13, 14] and expr.tolist() == [13, 14, 15]
    assert idx["shard"].tolist() == [0, 0, 1, 1, 2]
