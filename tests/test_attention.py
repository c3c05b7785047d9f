"""Attention analysis: exact values for uniform attention, and a planted head found by the permutation test."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from generain import attention
from generain.model import build_model, model_config_for

SHAPE = dict(n_layer=2, n_head=2, n_embd=8, n_inner=8, dropout=0.0)


def _uniform(model_type):
    """Zero query/key projections: every query attends its visible real keys uniformly."""
    torch.manual_seed(0)
    m = build_model(model_type, model_config_for(model_type, n_genes=30, length=9, **SHAPE)).eval()
    with torch.no_grad():
        for block in (m.h if model_type == "gpt" else m.layers):
            w = block.c_attn if model_type == "gpt" else block.qkv
            w.weight[: 2 * 8].zero_()
            w.bias[: 2 * 8].zero_()
    return m


@pytest.mark.parametrize("model_type", ["gpt", "bert_pred_genes", "bert_pred_expr"])
def test_uniform_attention_has_enrichment_one_and_maximal_entropy(model_type):
    rng = np.random.default_rng(0)
    genes = np.stack([rng.permutation(np.arange(3, 30))[:9] for _ in range(6)])
    genes[2, 6:] = 0  # padding
    expr = np.where(genes > 0, 50, 0)
    in_set = np.zeros(30, bool)
    in_set[3:12] = True
    t = attention.attention_heads(_uniform(model_type), model_type, genes, expr, in_set, permutations=50, seed=0,
                                  batch_size=4)
    assert len(t) == 4 and t[["layer", "head"]].values.tolist() == [[1, 1], [1, 2], [2, 1], [2, 2]]
    np.testing.assert_allclose(t["enrichment"], 1.0, atol=1e-9)
    np.testing.assert_allclose(t["entropy"], t["uniform_entropy"], atol=1e-6)
    np.testing.assert_allclose(t["attention"], t["share"], atol=1e-9)
    if model_type != "gpt":  # all real keys visible: the share is the set's share of real positions
        real = genes[genes > 0]
        np.testing.assert_allclose(t["share"].iloc[0], np.isin(real, np.arange(3, 12)).mean(), atol=1e-12)


def test_permutation_test_finds_a_planted_head():
    """Head (1, 1) gives the set's genes 3x their uniform share; head (1, 2) ignores the set."""
    v, rng = 200, np.random.default_rng(1)
    expected = rng.uniform(1, 2, v)
    expected[:3] = 0  # special tokens never seen
    in_set = np.zeros(v, bool)
    in_set[3:23] = True
    received = np.stack([expected * np.where(in_set, 3.0, 1.0), expected * rng.uniform(0.9, 1.1, v)])[None]
    received[0, 1, in_set] *= 1e-3
    totals = np.ones((1, 2, 3))
    t = attention.head_statistics(received, expected, totals, in_set, permutations=200, seed=0)
    share = expected[in_set].sum() / expected.sum()
    assert t["set_genes_seen"].tolist() == [20, 20]
    np.testing.assert_allclose(t["share"], share)
    np.testing.assert_allclose(t["enrichment"].iloc[0], 3 / (3 * share + (1 - share)), rtol=1e-9)
    assert t["p_value"].iloc[0] == pytest.approx(1 / 201) and t["fdr"].iloc[0] < 0.05
    assert t["enrichment"].iloc[1] < 0.01 and t["p_value"].iloc[1] == 1.0


def test_permutations_matched_on_position_do_not_credit_a_head_that_only_attends_the_top_ranks():
    """A head that gives 5x attention to genes near the front, and a set drawn from such genes: random sets
    of any genes call the head enriched; sets matched on mean position do not."""
    v, rng = 203, np.random.default_rng(2)
    expected = np.r_[np.zeros(3), rng.uniform(1, 2, v - 3)]
    mean_rank = np.r_[np.full(3, np.nan), rng.uniform(0, 1, v - 3)]
    front = np.nan_to_num(mean_rank, nan=1.0) < 0.2
    in_set = front & (np.arange(v) % 2 == 0)
    received = (expected * np.where(front, 5.0, 1.0))[None, None, :]
    totals = np.ones((1, 1, 3))
    plain = attention.head_statistics(received, expected, totals, in_set, permutations=300, seed=0)
    matched = attention.head_statistics(received, expected, totals, in_set, permutations=300, seed=0,
                                        mean_rank=mean_rank)
    assert plain["enrichment"].iloc[0] > 2 and plain["p_value"].iloc[0] < 0.01
    assert matched["enrichment"].iloc[0] == plain["enrichment"].iloc[0] and matched["p_value"].iloc[0] > 0.05
