"""In-silico perturbation: exact perturbed sequences, the rank-matched null, shifts on hand-made models."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from generain import N_EXPR_BINS, perturb
from generain.model import build_model, model_config_for
from generain.utils import InputError

G = np.array([[5, 3, 7, 4],    # full
              [3, 6, 0, 0],    # two real tokens, padding
              [7, 5, 6, 3]])
E = np.array([[90, 10, 50, 70], [20, 80, 0, 0], [25, 50, 75, 100]])


def test_overexpress_moves_a_present_gene_to_the_front():
    p = perturb.perturb_sequences(G, E, np.array([7]), "overexpress")
    assert p.genes.tolist() == [[7, 5, 3, 4], [7, 3, 6, 0], [7, 5, 6, 3]]
    # the gene takes the top expression bin; the others keep theirs; row 1 (absent, not full) grows by one
    assert p.expr.tolist() == [[N_EXPR_BINS, 90, 10, 70], [N_EXPR_BINS, 20, 80, 0], [N_EXPR_BINS, 50, 75, 100]]
    assert p.origin.tolist() == [[-1, 0, 1, 3], [-1, 0, 1, -1], [-1, 1, 2, 3]]
    assert p.changed.tolist() == [True, True, True]  # row 2: same genes, but the gene's bin rose to the top


def test_overexpress_inserts_an_absent_gene_and_drops_the_last_token():
    p = perturb.perturb_sequences(G, E, np.array([6]), "overexpress")
    assert p.genes[0].tolist() == [6, 5, 3, 7]  # full: gene 4 dropped
    assert p.origin[0].tolist() == [-1, 0, 1, 2]
    assert p.genes[1].tolist() == [6, 3, 0, 0]


def test_overexpress_of_two_genes_keeps_the_listed_order_at_the_front():
    p = perturb.perturb_sequences(G, E, np.array([4, 5]), "overexpress")
    assert p.genes[0].tolist() == [4, 5, 3, 7]
    assert p.genes[1].tolist() == [4, 5, 3, 6]
    assert p.origin[0].tolist() == [-1, -1, 1, 2]


def test_delete_removes_the_gene_and_pads_the_end():
    p = perturb.perturb_sequences(G, E, np.array([3]), "delete")
    assert p.genes.tolist() == [[5, 7, 4, 0], [6, 0, 0, 0], [7, 5, 6, 0]]
    assert p.expr.tolist() == [[90, 50, 70, 0], [80, 0, 0, 0], [25, 50, 75, 0]]
    assert p.origin.tolist() == [[0, 2, 3, -1], [1, -1, -1, -1], [0, 1, 2, -1]]
    p = perturb.perturb_sequences(G, E, np.array([4]), "delete")  # absent from rows 1 and 2: unchanged
    assert p.changed.tolist() == [True, False, False]
    assert p.genes[1:].tolist() == G[1:].tolist()
    with pytest.raises(ValueError, match="not one of"):
        perturb.perturb_sequences(G, E, np.array([4]), "knockdown")


def test_null_targets_are_rank_matched_or_absent_genes():
    rng = np.random.default_rng(0)
    genes = np.tile(np.arange(10, 30), (50, 1))  # gene 20 at position 10 everywhere
    draws = np.concatenate([perturb.null_targets(genes, np.full((50, 1), 20), window=2, pool=np.arange(3, 200),
                                                 rng=rng) for _ in range(4)])
    assert set(draws.ravel()) == {18, 19, 21, 22}  # positions 8..12 but not the gene itself
    absent = perturb.null_targets(genes, np.full((50, 1), 150), window=2, pool=np.arange(3, 200), rng=rng)
    assert not np.isin(absent, genes[0]).any() and (absent != 150).all() and (absent >= 3).all()
    two = perturb.null_targets(genes, np.tile([20, 21], (50, 1)), window=1, pool=np.arange(3, 200), rng=rng)
    assert (two[:, 0] != two[:, 1]).all() and not np.isin(two, [20, 21]).any()


def _position_only_gpt():
    """A GPT whose layer-0 state is its position embedding alone (token embedding zero)."""
    torch.manual_seed(0)
    m = build_model("gpt", model_config_for("gpt", n_genes=40, length=12, n_layer=1, n_head=1, n_embd=8,
                                             n_inner=8, dropout=0.0)).eval()
    with torch.no_grad():
        m.wte.weight.zero_()
    return m


def test_shifts_follow_the_positions_that_moved():
    """Layer 0 of a position-only model: a gene's state changes iff its position does. Deleting the gene at
    position 5 moves only the genes after it; the null (window 1) deletes positions 4 or 6, which moves
    nearly the same genes: the genes before position 4 never shift, the genes after 6 always do."""
    genes = np.tile(np.arange(3, 15), (6, 1))  # 12 tokens: genes 3..14, gene 8 at position 5
    expr = np.ones_like(genes)
    res = perturb.perturbation_effects(_position_only_gpt(), "gpt", genes, expr, np.array([8]), "delete", layer=0,
                                       n_draws=20, window=1, pool=np.arange(3, 40), seed=0, batch_size=4)
    shifts = res.genes.set_index("token")
    assert 8 not in shifts.index and len(res.samples) == 6 and res.skipped == 0
    assert (shifts.loc[[3, 4, 5, 6, 7], "mean_shift"].abs() < 1e-6).all()
    assert (shifts.loc[[9, 10, 11, 12, 13], "mean_shift"] > 1e-3).all()
    assert (shifts.loc[[9, 10, 11, 12, 13], "n_samples"] == 6).all()
    assert 14 not in shifts.index  # the GPT reads 11 of the 12 tokens; gene 14 moved to position 10, unread before
    np.testing.assert_allclose(shifts.loc[[3, 4, 5, 6], "p_value"], 1.0)  # never above the null
    assert ((shifts["fdr"] >= shifts["p_value"]) | shifts["fdr"].isna()).all()
    # every null draw shifts each gene alike here (never, or by one place): the normal approximation is undefined
    assert shifts["z_score"].isna().all() and shifts["p_value_normal"].isna().all()


def test_a_gene_the_null_moves_but_the_perturbation_does_not_is_shifted_less():
    """Layer 0 of a position-only GPT, one sequence: deleting gene 8 (position 5) leaves gene 7 (position 4) in
    place, while a null draw that deletes position 3 moves it (window 2: the null deletes position 3, 4, 6 or
    7; at 4 it deletes gene 7 itself, which is then not seen). Gene 7 is never above the null (p_value 1) and
    its p_value_less counts the draws that leave it in place, the ties at zero shift included."""
    genes = np.arange(3, 15)[None, :]
    res = perturb.perturbation_effects(_position_only_gpt(), "gpt", genes, np.ones_like(genes), np.array([8]),
                                       "delete", layer=0, n_draws=30, window=2, pool=np.arange(3, 40), seed=4)
    deleted = np.array([perturb.null_targets(genes, np.array([[8]]), window=2, pool=np.arange(3, 40),
                                             rng=np.random.default_rng([4, d]))[0, 0] for d in range(30)])
    assert set(deleted) <= {6, 7, 9, 10} and (deleted == 6).sum() > 0  # gene 6 sits at position 3
    g7 = res.genes.set_index("token").loc[7]
    seen = deleted != 7
    in_place = np.isin(deleted, [9, 10])
    assert abs(g7["mean_shift"]) < 1e-6 and g7["excess_shift"] < -1e-3
    assert g7["p_value"] == 1.0
    assert g7["p_value_less"] == pytest.approx((1 + in_place.sum()) / (1 + seen.sum()))
    assert g7["p_value_normal_less"] < 0.5 and g7["fdr_less"] >= g7["p_value_less"]
    # gene 5 (position 2) is before every deletion: a tie with every draw, in both directions
    g5 = res.genes.set_index("token").loc[5]
    assert g5["p_value"] == 1.0 and g5["p_value_less"] == 1.0
    top = perturb.steadied_genes(res.genes, 3)
    assert top["token"].iloc[0] == 7 and top["z_score"].is_monotonic_increasing


def test_normal_approximation_of_the_null():
    """A random BERT read at layer 1: every gene's shift depends on the context, so the draws vary; z is the
    excess over the null mean in units of the draws' standard deviation, and its one-sided p-value."""
    from scipy.stats import norm

    torch.manual_seed(3)
    m = build_model("bert_pred_genes", model_config_for("bert_pred_genes", n_genes=60, length=16, n_layer=2,
                                                        n_head=2, n_embd=8, n_inner=16, dropout=0.0)).eval()
    rng = np.random.default_rng(0)
    genes = np.stack([np.r_[30, rng.permutation(np.arange(3, 60)[np.arange(3, 60) != 30])[:15]] for _ in range(8)])
    res = perturb.perturbation_effects(m, "bert_pred_genes", genes, np.ones_like(genes), np.array([30]), "delete",
                                       layer=1, n_draws=40, window=3, pool=np.arange(3, 60), seed=0)
    g = res.genes
    assert g["z_score"].notna().all()
    np.testing.assert_allclose(g["p_value_normal"], norm.sf(g["z_score"]))
    np.testing.assert_allclose(g["p_value_normal_less"], norm.cdf(g["z_score"]))
    np.testing.assert_allclose(g["p_value_normal"] + g["p_value_normal_less"], 1.0)
    assert (np.sign(g["z_score"]) == np.sign(g["excess_shift"])).all()
    assert (g["fdr_normal"] >= g["p_value_normal"] - 1e-12).all()


def test_delete_of_a_gene_no_sample_holds_is_an_error():
    genes = np.tile(np.arange(3, 15), (2, 1))
    with pytest.raises(InputError, match="none of the 2 selected samples"):
        perturb.perturbation_effects(_position_only_gpt(), "gpt", genes, np.ones_like(genes), np.array([30]),
                                     "delete", layer=0, n_draws=2, window=1, pool=np.arange(3, 40), seed=0)


def test_overexpress_shifts_the_sample_embedding_more_than_the_null_for_a_planted_gene():
    """A token-only BERT (positions zero) at layer 0: the sample embedding is the mean of its genes'
    vectors. Overexpressing an absent gene with a huge vector (token 39) inserts it and shifts every sample
    far more than inserting any other absent gene."""
    torch.manual_seed(0)
    m = build_model("gpt", model_config_for("gpt", n_genes=40, length=12, n_layer=1, n_head=1, n_embd=8,
                                             n_inner=8, dropout=0.0)).eval()
    with torch.no_grad():
        m.wpe.weight.zero_()
        m.wte.weight[39] = torch.linspace(-50, 50, 8)
    genes = np.tile(np.arange(3, 15), (5, 1))
    res = perturb.perturbation_effects(m, "gpt", genes, np.ones_like(genes), np.array([39]), "overexpress", layer=0,
                                       n_draws=30, window=2, pool=np.arange(3, 39), seed=1)
    assert (res.samples["shift"] > 5 * res.samples["null_mean_shift"]).all()
    np.testing.assert_allclose(res.samples["p_value"], 1 / 31)
    # gene states at layer 0 of a token-only model do not depend on position: no gene shifts
    assert (res.genes["mean_shift"].abs() < 1e-6).all()


def test_benjamini_hochberg_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.5 (n = 4): 0.04, 0.06, 0.0533, 0.5; then the running minimum from the top
    np.testing.assert_allclose(perturb.benjamini_hochberg(np.array([0.01, 0.04, 0.03, np.nan, 0.5])),
                               [0.04, 0.16 / 3, 0.16 / 3, np.nan, 0.5], rtol=1e-9)
