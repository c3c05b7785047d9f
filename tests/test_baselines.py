"""Baseline embeddings (random, shuffled, SVD, external word2vec) and paired AUC comparisons."""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from generain import baselines, embed, io, plots
from generain.utils import InputError

GENE_COLUMNS = ["token", "ensembl_id", "symbol", "biotype", "species"]


def make_table(n: int, *, dim: int = 4, seed: int = 0, biotypes=("protein_coding",), species=("human",),
               symbols: list[str] | None = None) -> pd.DataFrame:
    """Embedding table of n genes ENSG...0 .. with distinct vectors (first value = row number)."""
    rng = np.random.default_rng(seed)
    ids = [f"ENSG{i:011d}" for i in range(n)]
    vecs = rng.standard_normal((n, dim)).astype(np.float32)
    vecs[:, 0] = np.arange(n)
    return pd.DataFrame({
        "token": ids, "ensembl_id": ids, "symbol": symbols or [f"S{i}" for i in range(n)],
        "biotype": [biotypes[i % len(biotypes)] for i in range(n)],
        "species": [species[(i // len(biotypes)) % len(species)] for i in range(n)],
        "embedding": list(vecs),
    })


# ---------------------------------------------------------------------------
# random
# ---------------------------------------------------------------------------

def test_random_embedding_shape_seed_and_distribution():
    table = make_table(500)
    out = baselines.random_embedding(table, dim=64, seed=3)
    pd.testing.assert_frame_equal(out[GENE_COLUMNS], table[GENE_COLUMNS])
    m = embed.embedding_matrix(out)
    assert m.shape == (500, 64) and out["embedding"][0].dtype == np.float32
    np.testing.assert_array_equal(m, embed.embedding_matrix(baselines.random_embedding(table, dim=64, seed=3)))
    assert not np.allclose(m, embed.embedding_matrix(baselines.random_embedding(table, dim=64, seed=4)))
    # 32,000 N(0, 1) draws: standard error of the mean ~0.0056, of the std ~0.004
    assert abs(m.mean()) < 0.03
    assert abs(m.std() - 1.0) < 0.03
    # the trained vectors are not reused
    assert not np.allclose(m[:, :4], embed.embedding_matrix(table))
    with pytest.raises(ValueError, match="dim must be >= 1"):
        baselines.random_embedding(table, dim=0, seed=0)


# ---------------------------------------------------------------------------
# shuffled
# ---------------------------------------------------------------------------

def test_shuffled_embedding_permutes_within_biotype_and_species():
    table = make_table(200, biotypes=("protein_coding", "lncRNA"), species=("human", "mouse"))
    out = baselines.shuffled_embedding(table, seed=7)
    pd.testing.assert_frame_equal(out[GENE_COLUMNS], table[GENE_COLUMNS])
    before, after = embed.embedding_matrix(table), embed.embedding_matrix(out)
    # same multiset of vectors (rows sorted lexicographically)
    np.testing.assert_array_equal(before[np.lexsort(before.T[::-1])], after[np.lexsort(after.T[::-1])])
    # first value of each vector is its original row: the donor has the same biotype and species
    donor = after[:, 0].astype(int)
    np.testing.assert_array_equal(table["biotype"].to_numpy()[donor], table["biotype"].to_numpy())
    np.testing.assert_array_equal(table["species"].to_numpy()[donor], table["species"].to_numpy())
    # a real permutation: most genes get another gene's vector
    assert (donor != np.arange(200)).mean() > 0.9
    np.testing.assert_array_equal(after, embed.embedding_matrix(baselines.shuffled_embedding(table, seed=7)))
    assert not np.array_equal(after, embed.embedding_matrix(baselines.shuffled_embedding(table, seed=8)))


def test_shuffled_embedding_single_gene_group_keeps_its_vector():
    table = make_table(21, biotypes=("protein_coding",))
    table.loc[20, "biotype"] = "snoRNA"
    out = baselines.shuffled_embedding(table, seed=0)
    donor = embed.embedding_matrix(out)[:, 0].astype(int)
    assert donor[20] == 20
    assert sorted(donor[:20]) == list(range(20))


# ---------------------------------------------------------------------------
# SVD
# ---------------------------------------------------------------------------

def planted_matrix(n_genes: int = 60, n_samples: int = 40, *, noise: float = 1e-3, seed: int = 0):
    """Rank-2 expression plus a gene offset; the last gene is constant."""
    rng = np.random.default_rng(seed)
    loadings = rng.standard_normal((n_genes, 2))
    factors = rng.standard_normal((2, n_samples))
    signal = loadings @ factors
    values = rng.uniform(1, 3, (n_genes, 1)) + signal + noise * rng.standard_normal((n_genes, n_samples))
    values[-1] = 2.5
    ids = [f"ENSG{i:011d}" for i in range(n_genes)]
    m = io.Matrix(values.astype(np.float32),
                  pd.DataFrame({"ensembl_id": ids, "symbol": [f"S{i}" for i in range(n_genes)]}),
                  pd.DataFrame({"sample_id": [f"GSM{j}" for j in range(n_samples)]}),
                  {"values": "log10(CP10M+1)"})
    # after z-scoring, gene g's loading is loadings[g] / sd_g (sd of its signal row)
    standardized = loadings / (signal - signal.mean(axis=1, keepdims=True)).std(axis=1, keepdims=True)
    return m, standardized


def _fit_correlations(emb: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares fit target ~ emb @ R; correlation of each fitted column with the target."""
    coef, *_ = np.linalg.lstsq(emb, target, rcond=None)
    fitted = emb @ coef
    return np.array([np.corrcoef(fitted[:, k], target[:, k])[0, 1] for k in range(target.shape[1])])


def test_svd_embedding_recovers_planted_rank2_structure(caplog):
    m, standardized = planted_matrix()
    # the table: genes 5..59 in reverse order plus one gene absent from the matrix
    table = make_table(60).iloc[5:][::-1]
    table = pd.concat([table, make_table(1).assign(ensembl_id="ENSG99999999999", token="ENSG99999999999")])
    with caplog.at_level(logging.INFO, logger="generain.baselines"):
        out = baselines.svd_embedding(m, table, dim=2, seed=0)
    assert "1 of 56 table genes are not in the expression matrix" in caplog.text
    assert out["ensembl_id"].tolist() == [f"ENSG{i:011d}" for i in range(59, 4, -1)]
    emb = embed.embedding_matrix(out)
    assert emb.shape == (55, 2) and out["embedding"][0].dtype == np.float32
    # constant gene (row 59 of the matrix, first of the output) -> zero vector
    np.testing.assert_allclose(emb[0], 0.0, atol=1e-5)
    rows = np.arange(59, 4, -1)[1:]
    corr = _fit_correlations(emb[1:].astype(float), standardized[rows])
    assert np.all(np.abs(corr) > 0.99), corr
    # control: a random 2-d embedding does not explain the planted loadings
    rand = embed.embedding_matrix(baselines.random_embedding(out, dim=2, seed=1))
    assert np.all(np.abs(_fit_correlations(rand[1:].astype(float), standardized[rows])) < 0.9)
    # U S: the column variances are the top squared singular values, in decreasing order
    assert emb[:, 0].var() > emb[:, 1].var() > 0
    # seeded and reproducible
    np.testing.assert_array_equal(emb, embed.embedding_matrix(baselines.svd_embedding(m, table, dim=2, seed=0)))


def test_svd_embedding_clips_dim_with_warning(caplog):
    m, _ = planted_matrix(n_genes=30, n_samples=8)
    table = make_table(30)
    with caplog.at_level(logging.WARNING, logger="generain.baselines"):
        out = baselines.svd_embedding(m, table, dim=20, seed=0)
    assert "dim 20 >= min(n_genes, n_samples) = 8; using 7 components" in caplog.text
    assert embed.embedding_matrix(out).shape == (30, 7)


def test_svd_embedding_errors():
    m, _ = planted_matrix(n_genes=10, n_samples=5)
    with pytest.raises(InputError, match="none of the 3 genes of the embedding table is in the matrix"):
        baselines.svd_embedding(m, make_table(3).assign(ensembl_id=["X1", "X2", "X3"]), dim=2, seed=0)
    m.matrix[0, 0] = np.nan
    with pytest.raises(InputError, match="1 non-finite values"):
        baselines.svd_embedding(m, make_table(10), dim=2, seed=0)


# ---------------------------------------------------------------------------
# external word2vec
# ---------------------------------------------------------------------------

def external_table() -> pd.DataFrame:
    symbols = [f"S{i}" for i in range(120)] + ["DUP", "DUP"]
    symbols[119] = "AC000001.1"  # clone-based symbol with a dot: not a versioned id
    return make_table(122, symbols=symbols)


def test_external_embedding_maps_ids_and_symbols(tmp_path, caplog):
    table = external_table()
    eid = table["ensembl_id"].tolist()
    tokens = ([f"{eid[i]}.{i % 7 + 1}" for i in range(60)]      # versioned Ensembl ids -> genes 0..59
              + [f"S{i}" for i in range(60, 110)]               # unique symbols -> genes 60..109
              + [eid[110], "AC000001.1",                        # unversioned id, dotted symbol (gene 119)
                 "UNKNOWN1", "DUP"])                            # unknown, ambiguous symbol: no match
    tokens = [tokens[k] for k in np.random.default_rng(0).permutation(len(tokens))]  # not in table order
    # gene 0 again by symbol (an Ensembl-id token wins) and gene 1 by a later id token (the first wins)
    tokens = ["S0"] + tokens + [f"{eid[1]}.99"]
    vectors = np.arange(len(tokens) * 3, dtype=np.float32).reshape(-1, 3)
    embed.write_word2vec(tokens, vectors, tmp_path / "ext.txt")
    with caplog.at_level(logging.INFO, logger="generain.baselines"):
        out = baselines.external_embedding(tmp_path / "ext.txt", table)

    matched = list(range(111)) + [119]
    assert out["ensembl_id"].tolist() == [eid[i] for i in matched]
    pd.testing.assert_frame_equal(out[GENE_COLUMNS], table.iloc[matched][GENE_COLUMNS].reset_index(drop=True))
    pos = {t: k for k, t in enumerate(tokens)}
    expected_token = ([f"{eid[i]}.{i % 7 + 1}" for i in range(60)] + [f"S{i}" for i in range(60, 110)]
                      + [eid[110], "AC000001.1"])
    np.testing.assert_array_equal(embed.embedding_matrix(out), vectors[[pos[t] for t in expected_token]])
    assert embed.embedding_matrix(out).shape == (112, 3)
    assert "112 table genes matched (61 by Ensembl id, 51 by unique symbol)" in caplog.text


def test_external_embedding_too_few_matches(tmp_path):
    table = external_table()
    tokens = ["S1", "S2", "S3", "UNKNOWN1", "UNKNOWN2", "DUP", table["ensembl_id"][5] + ".2"]
    embed.write_word2vec(tokens, np.ones((len(tokens), 2), np.float32), tmp_path / "few.txt")
    with pytest.raises(InputError) as err:
        baselines.external_embedding(tmp_path / "few.txt", table)
    msg = str(err.value)
    assert str(tmp_path / "few.txt") in msg
    assert "only 4 of 7 tokens match a gene of the embedding table (need >= 100" in msg
    assert "example tokens of the file: 'UNKNOWN1', 'UNKNOWN2', 'DUP'" in msg
    # the threshold is a keyword
    assert len(baselines.external_embedding(tmp_path / "few.txt", table, min_matched=4)) == 4


# ---------------------------------------------------------------------------
# AUC comparisons
# ---------------------------------------------------------------------------

def auc_frame(sources: list[str], terms: list[str], auc: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"source": sources, "term_id": terms, "term_name": terms,
                         "n_positive": 10, "auc": auc, "average_precision": 0.1})


def comparison_inputs() -> dict[str, pd.DataFrame]:
    sources = ["GO_BP"] * 12 + ["KEGG"] * 8
    terms = [f"T{i}" for i in range(20)]
    base = 0.5 + 0.01 * np.arange(20)
    diff = 0.01 * np.arange(1, 21)          # all positive, distinct: no ties, no zeros
    emb = auc_frame(sources + ["GO_BP"], terms + ["ONLY_IN_EMB"], np.r_[base + diff, 0.99])
    random = auc_frame(sources + ["GO_BP"], terms + ["T_NAN"], np.r_[base, np.nan])
    # the SVD baseline is better on 5 of 20 properties
    svd_diff = np.r_[-0.05 * np.ones(5), 0.02 * np.arange(1, 16)]
    svd = auc_frame(sources, terms, base + diff - svd_diff)
    return {"generain": emb, "random": random, "svd": svd}


def test_compare_aucs_all_wins_exact_p_value():
    res = baselines.compare_aucs(comparison_inputs(), baselines=["random", "svd"])
    assert list(res.columns) == list(baselines.COMPARISON_COLUMNS)
    assert res[["embedding", "baseline", "source"]].values.tolist() == [
        ["generain", "random", "GO_BP"], ["generain", "random", "KEGG"], ["generain", "random", "all"],
        ["generain", "svd", "GO_BP"], ["generain", "svd", "KEGG"], ["generain", "svd", "all"]]
    r = res.set_index(["baseline", "source"])
    a = r.loc[("random", "all")]
    assert a["properties"] == 20                      # ONLY_IN_EMB and the NaN T_NAN are not paired
    assert a["wins"] == 1.0
    assert a["statistic"] == 0.0
    # exact null of the signed-rank statistic: P(W+ = n(n+1)/2) = 2**-n, two-sided doubles it
    assert a["p_value"] == pytest.approx(2 * 0.5 ** 20, rel=1e-9)
    assert a["median_difference"] == pytest.approx((0.10 + 0.11) / 2)
    base = 0.5 + 0.01 * np.arange(20)
    assert a["median_auc_baseline"] == pytest.approx((base[9] + base[10]) / 2)
    assert a["median_auc_embedding"] == pytest.approx((base[9] + 0.10 + base[10] + 0.11) / 2)
    g = r.loc[("random", "GO_BP")]
    assert g["properties"] == 12 and g["p_value"] == pytest.approx(2 * 0.5 ** 12, rel=1e-9)
    assert g["median_difference"] == pytest.approx((0.06 + 0.07) / 2)
    # 8 KEGG pairs < 10: no test
    k = r.loc[("random", "KEGG")]
    assert k["properties"] == 8 and k["wins"] == 1.0
    assert np.isnan(k["p_value"]) and np.isnan(k["statistic"])
    s = r.loc[("svd", "all")]
    assert s["properties"] == 20 and s["wins"] == 0.75
    # differences: five -0.05, then 0.02 .. 0.30; median of the sorted 10th and 11th = 0.10 and 0.12
    assert s["median_difference"] == pytest.approx(0.11)
    # W- = ranks of the five -0.05 among |d| (0.02, 0.04, 0.05 x5, ...): ranks 3..7 average 5 -> 25
    assert s["statistic"] == pytest.approx(25.0)
    assert 0 < s["p_value"] < 0.01


def test_compare_aucs_fewer_than_ten_pairs_and_errors():
    aucs = {k: v.iloc[:9] for k, v in comparison_inputs().items()}
    res = baselines.compare_aucs(aucs, baselines=["random"])
    row = res[res["source"] == "all"].iloc[0]
    assert row["properties"] == 9 and row["wins"] == 1.0 and np.isnan(row["p_value"])
    # all differences zero: no evidence either way
    same = {"a": comparison_inputs()["random"], "b": comparison_inputs()["random"]}
    row = baselines.compare_aucs(same, baselines=["b"]).query("source == 'all'").iloc[0]
    assert row["properties"] == 20 and row["wins"] == 0.0 and row["p_value"] == 1.0
    with pytest.raises(InputError, match=r"baselines \['gene2vec'\] have no AUC table"):
        baselines.compare_aucs(comparison_inputs(), baselines=["gene2vec"])


def test_auc_distribution_table():
    aucs = {"e": auc_frame(["GO_BP"] * 4 + ["KEGG"] * 2, list("abcdef"), np.array([0.6, 0.7, 0.8, 0.9, 0.5, np.nan]))}
    res = baselines.auc_distribution_table(aucs)
    assert list(res.columns) == list(baselines.DISTRIBUTION_COLUMNS)
    assert res["source"].tolist() == ["GO_BP", "KEGG", "all"]
    go = res.iloc[0]
    assert go["properties"] == 4
    assert (go["median"], go["q25"], go["q75"]) == pytest.approx((0.75, 0.675, 0.825))
    assert go["fraction_above_0_7"] == 0.5            # 0.7 itself is not above
    assert res.iloc[1]["properties"] == 1 and res.iloc[1]["median"] == 0.5
    assert res.iloc[2]["properties"] == 5 and res.iloc[2]["fraction_above_0_7"] == pytest.approx(0.4)


def test_embedding_comparison_plot_writes_png(tmp_path):
    path = tmp_path / "fig" / "comparison.png"
    plots.embedding_comparison_plot(comparison_inputs(), path, title="GeneRAIN vs baselines")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
