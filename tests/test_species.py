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


def test_halves_and_ortholog_split_are_deterministic():
    a = species.split_halves(11, seed=0)
    assert a.sum() == 5 and (a == species.split_halves(11, seed=0)).all()
    s = species.ortholog_split(100, train_fraction=0.95, seed=0)
    assert (s == "train").sum() == 95
