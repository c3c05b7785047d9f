"""Procrustes alignment and ortholog ranks on embeddings with a known rotation."""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import special_ortho_group

from generain import species


def _table(h, m, n_extra_mouse=0):
    rows = [{"ensembl_id": f"H{i}", "species": "human", "embedding": v} for i, v in enumerate(h)]
    rows += [{"ensembl_id": f"M{i}", "species": "mouse", "embedding": v} for i, v in enumerate(m)]
    return pd.DataFrame(rows)


def test_rotated_copy_is_recovered_and_shuffle_destroys_it():
    rng = np.random.default_rng(0)
    h = rng.normal(size=(200, 16))
    q = special_ortho_group.rvs(16, random_state=1)
    m = h @ q.T + rng.normal(scale=0.01, size=h.shape)  # mouse = rotated human + noise
    orth = pd.DataFrame({"human_ensembl_id": [f"H{i}" for i in range(200)],
                         "mouse_ensembl_id": [f"M{i}" for i in range(200)]})
    ranks = species.compare_embeddings(_table(h, m), orth, train_fraction=0.9, seed=0)
    assert list(ranks.columns) == list(species.RANK_COLUMNS)
    assert (ranks["split"] == "test").sum() == 20
    s = species.rank_summary(ranks, "test")
    assert s["top1"] == 1.0 and s["pairs"] == 20
    assert ranks["cosine"].min() > 0.99
    null = species.rank_summary(species.compare_embeddings(_table(h, m), orth, train_fraction=0.9, seed=0,
                                                           shuffle=True), "test")
    assert null["top1"] <= 0.1


def test_rank_counts_genes_scored_higher():
    h = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    m = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]])
    pairs = np.array([[0, 0], [1, 1], [2, 2]])
    rank, cos = species.ortholog_ranks(h, m, pairs, np.array(["train", "train", "test"]))
    # pairs 0 and 1 fit the identity map; human gene 2 (45 degrees) has cosine 0.707 to
    # mouse genes 0 and 1 and 0.781 to mouse gene 2, its ortholog, which therefore ranks first
    assert rank.tolist() == [1, 1, 1]
    np.testing.assert_allclose(cos[2], (0.9 + 0.1) / np.sqrt(2) / np.hypot(0.9, 0.1), rtol=1e-5)


def test_ties_count_against_the_pair():
    # pairs 0 and 1 fit the identity map; human gene 2 is a zero vector, so its cosine to every
    # mouse gene is 0: its ortholog ties with all three and ranks last (3), not first
    h = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    m = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    rank, _ = species.ortholog_ranks(h, m, np.array([[0, 0], [1, 1], [2, 2]]), np.array(["train", "train", "test"]))
    assert rank.tolist() == [1, 1, 3]

def test_halves_and_ortholog_split_are_deterministic():
    a = species.split_halves(11, seed=0)
    assert a.sum() == 5 and (a == species.split_halves(11, seed=0)).all()
    s = species.ortholog_split(100, train_fraction=0.95, seed=0)
    assert (s == "train").sum() == 95


def test_pseudo_species_corpus_renames_the_second_half_to_orthologs(tmp_path):
    from generain import io, pipeline, tokenize

    genes = np.array(["ENSG_A", "ENSG_B", "ENSG_C", "ENSG_D"], dtype=object)
    # samples 0-5; within each half, the sample with the larger index is higher for every gene
    values = np.tile(np.arange(1, 7, dtype=np.float32), (4, 1)) * np.array([[4], [3], [2], [1]], dtype=np.float32)
    io.write_matrix(tmp_path / "m.h5", values, genes={"ensembl_id": genes, "symbol": np.array(list("ABCD"), dtype=object),
                                                      "biotype": np.array(["protein_coding"] * 4, dtype=object)},
                    samples={"sample_id": np.array([f"S{i}" for i in range(6)], dtype=object)})
    orth = tmp_path / "orth.tsv"  # rows out of order, mouse ids sorting differently from their human genes
    orth.write_text("human_ensembl_id\tmouse_ensembl_id\tmouse_symbol\nENSG_C\tENSMUSG2\tc\n"
                    "ENSG_A\tENSMUSG3\ta\nENSG_B\tENSMUSG1\tb\n")
    stats = pipeline.make_pseudo_species_corpus(
        matrix=tmp_path / "m.h5", orthologs=orth, method="binning", n_bins=5, length=4, validation_fraction=0.0,
        seed=0, shard_size=10, out_vocab=tmp_path / "vocab.tsv", out_shards=tmp_path / "shards",
        out_index=tmp_path / "index.parquet")
    assert stats == {"human_samples": 3, "mouse_samples": 3, "human_genes": 4, "mouse_genes": 3, "vocab_size": 10}
    vocab = tokenize.read_vocab(tmp_path / "vocab.tsv")
    assert vocab["token"].tolist()[3:] == ["ENSG_A", "ENSG_B", "ENSG_C", "ENSG_D",
                                           "m_ENSMUSG3", "m_ENSMUSG1", "m_ENSMUSG2"]
    assert vocab["symbol"].tolist()[7:] == ["a", "b", "c"]
    index = pd.read_parquet(tmp_path / "index.parquet")
    shards = tokenize.TokenShards(tmp_path / "shards", index)
    token = dict(zip(vocab["token_id"], vocab["token"]))
    to_human = {"m_ENSMUSG3": "ENSG_A", "m_ENSMUSG1": "ENSG_B", "m_ENSMUSG2": "ENSG_C"}
    second = species.split_halves(6, seed=0)
    assert sorted(index.loc[index["species"] == "mouse", "sample_id"]) == sorted(
        f"m_S{i}" for i in np.flatnonzero(second))
    for i, sp in enumerate(index["species"]):
        seq = [token[t] for t in shards[i][0] if t]
        if sp == "human":
            # every gene binned within the human half; ties in bin broken by token id
            assert sorted(seq) == ["ENSG_A", "ENSG_B", "ENSG_C", "ENSG_D"]
        else:
            # ENSG_D has no ortholog and is dropped; the rest are the mouse tokens of their human genes
            assert all(t.startswith("m_") for t in seq) and len(seq) == 3
            assert sorted(to_human[t] for t in seq) == ["ENSG_A", "ENSG_B", "ENSG_C"]
    # the highest sample of the mouse half has bin 5 for all three genes: ties -> token-id order
    top = max(np.flatnonzero(second))
    row = int(np.flatnonzero(index["sample_id"] == f"m_S{top}")[0])
    assert [token[t] for t in shards[row][0] if t] == ["m_ENSMUSG3", "m_ENSMUSG1", "m_ENSMUSG2"]
