"""Property catalogue and classifier sweep on planted signal."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from generain import sweep
from generain.utils import InputError


def _sets(members: dict[str, list[str]]) -> pd.DataFrame:
    rows = [("GO_BP", t, f"name {t}", g) for t, gs in members.items() for g in gs]
    return pd.DataFrame(rows, columns=["source", "term_id", "term_name", "ensembl_id"])


def test_catalogue_bounds_and_cap():
    pc = np.array([f"G{i}" for i in range(100)])
    sets = _sets({"small": [f"G{i}" for i in range(9)] + ["L1", "L2"],  # 9 protein-coding in vocab
                  "ok1": [f"G{i}" for i in range(10)], "ok2": [f"G{i}" for i in range(50)],
                  "big": [f"G{i}" for i in range(60)]})
    cat = sweep.property_catalogue(sets, pc, min_genes=10, max_genes=50)
    got = cat.set_index("term_id")
    assert got["n_positive"].to_dict() == {"big": 60, "ok1": 10, "ok2": 50, "small": 9}
    assert got["n_genes"].to_dict()["small"] == 11
    assert got["kept"].to_dict() == {"big": False, "ok1": True, "ok2": True, "small": False}
    assert got.loc["small", "reason"] == "fewer than 10 protein-coding genes in vocabulary"
    capped = sweep.property_catalogue(sets, pc, min_genes=10, max_genes=50, max_properties=1, seed=0)
    assert capped["kept"].sum() == 1
    assert capped.loc[~capped["kept"] & capped["term_id"].str.startswith("ok"), "reason"].iloc[0].startswith("not drawn")


def test_sweep_finds_planted_property_and_not_random_one():
    rng = np.random.default_rng(0)
    n, d = 600, 8
    genes = np.array([f"G{i}" for i in range(n)])
    x = rng.normal(size=(n, d)).astype(np.float32)
    planted = np.flatnonzero(x[:, 0] > 1.0)  # members: all genes above a threshold on dimension 0
    random = rng.choice(n, 60, replace=False)
    sets = _sets({"planted": list(genes[planted]), "random": list(genes[random])})
    cat = sweep.property_catalogue(sets, genes, min_genes=10, max_genes=500)
    res = sweep.run_sweep(x, genes, sets, cat[cat["kept"]], folds=5, seed=0)
    auc = res.auc.set_index("term_id")
    assert list(res.auc.columns[:6]) == list(sweep.AUC_COLUMNS)
    assert auc.loc["planted", "auc"] > 0.97
    assert 0.35 < auc.loc["random", "auc"] < 0.65
    assert auc.loc["planted", "n_positive"] == len(planted) > 50
    assert auc["converged"].all()
    # the refit classifier separates along dimension 0, on the raw embedding
    clf = res.classifiers.set_index("term_id")
    coef = clf.loc["planted", "coef"]
    assert coef.shape == (d,) and coef[0] > 5 * np.abs(coef[1:]).max()
    p_hi = 1 / (1 + np.exp(-(np.array([3.0] + [0.0] * (d - 1)) @ coef + clf.loc["planted", "intercept"])))
    assert p_hi > 0.9
    # out-of-fold precision: calls at >= 0.5 are mostly members for the planted set, NaN-free counts
    assert clf.loc["planted", "precision_0.5"] > 0.8 and clf.loc["planted", "n_called_0.5"] > 30


def test_sweep_does_not_depend_on_batching():
    rng = np.random.default_rng(1)
    n = 400
    genes = np.array([f"G{i}" for i in range(n)])
    x = rng.normal(size=(n, 6)).astype(np.float32)
    sets = _sets({f"T{j}": list(rng.choice(genes, 20 + 5 * j, replace=False)) for j in range(7)})
    cat = sweep.property_catalogue(sets, genes, min_genes=10, max_genes=500)
    one = sweep.run_sweep(x, genes, sets, cat[cat["kept"]], batch_size=7)
    many = sweep.run_sweep(x, genes, sets, cat[cat["kept"]], batch_size=2)
    pd.testing.assert_frame_equal(one.auc.drop(columns="n_iter"), many.auc.drop(columns="n_iter"), atol=1e-6)
    pd.testing.assert_frame_equal(one.classifiers.drop(columns="coef"), many.classifiers.drop(columns="coef"),
                                  atol=1e-5)
    np.testing.assert_allclose(np.stack(one.classifiers["coef"]), np.stack(many.classifiers["coef"]), atol=1e-5)



def test_sweep_passes_its_compile_setting_to_the_solver(monkeypatch):
    from generain import classifier

    seen = []
    orig = classifier.cross_validate

    def spy(*args, **kwargs):
        seen.append(kwargs["compile"])
        return orig(*args, **kwargs)

    monkeypatch.setattr(classifier, "cross_validate", spy)
    rng = np.random.default_rng(2)
    genes = np.array([f"G{i}" for i in range(300)])
    x = rng.normal(size=(300, 4)).astype(np.float32)
    sets = _sets({f"T{j}": list(rng.choice(genes, 20, replace=False)) for j in range(3)})
    cat = sweep.property_catalogue(sets, genes, min_genes=10, max_genes=500)
    for flag in (False, True):
        sweep.run_sweep(x, genes, sets, cat[cat["kept"]], batch_size=2, compile=flag)
    assert seen == [False, False, True, True]

PC = np.array([f"G{i}" for i in range(200)])  # the vocabulary's protein-coding genes


def _src_sets(members: dict[tuple[str, str], list[str]]) -> pd.DataFrame:
    rows = [(src, t, f"name {t}", g) for (src, t), gs in members.items() for g in gs]
    return pd.DataFrame(rows, columns=["source", "term_id", "term_name", "ensembl_id"])


def _g(*ranges: range) -> list[str]:
    """Gene ids G<i> for every i in the given ranges."""
    return [f"G{i}" for r in ranges for i in r]


def test_catalogue_drops_near_duplicate_keeps_larger():
    sets = _sets({"A": _g(range(20)),                           # 20 genes
                  "B": _g(range(19)) + ["L1", "L2"],             # A minus G19, + 2 genes outside the vocabulary
                  "C": _g(range(17), range(100, 103))})          # shares 17 of 20 with A: 17/23 = 0.739
    out = sweep.property_catalogue(sets, PC, min_genes=10, max_genes=500)
    assert list(out.columns) == list(sweep.CATALOGUE_COLUMNS) and sweep.CATALOGUE_COLUMNS[-1] == "jaccard_duplicate_of"
    cat = out.set_index("term_id")
    assert cat["kept"].to_dict() == {"A": True, "B": False, "C": True}
    assert cat.loc["B", "n_genes"] == 21 and cat.loc["B", "n_positive"] == 19
    # Jaccard on protein-coding genes in the vocabulary only: 19 / 20
    assert cat.loc["B", "reason"] == "near-duplicate of GO_BP:A (Jaccard 0.95)"
    assert cat.loc["B", "jaccard_duplicate_of"] == "GO_BP:A"
    assert cat.loc["A", "reason"] is None and cat.loc["A", "jaccard_duplicate_of"] is None
    assert cat.loc["C", "jaccard_duplicate_of"] is None
    # the threshold is inclusive: 0.95 still drops B, 0.96 keeps it; C is dropped from 17/23 down
    at = sweep.property_catalogue(sets, PC, min_genes=10, max_genes=500, max_jaccard=0.95)
    assert at.set_index("term_id")["kept"].to_dict() == {"A": True, "B": False, "C": True}
    above = sweep.property_catalogue(sets, PC, min_genes=10, max_genes=500, max_jaccard=0.96)
    assert above["kept"].all() and above["jaccard_duplicate_of"].isna().all()
    low = sweep.property_catalogue(sets, PC, min_genes=10, max_genes=500, max_jaccard=17 / 23)
    assert low.set_index("term_id")["jaccard_duplicate_of"].to_dict() == {"A": None, "B": "GO_BP:A", "C": "GO_BP:A"}


def test_catalogue_duplicates_only_among_size_eligible_sets():
    # BIG is above max_genes, so it takes no part in the de-duplication and cannot remove S
    sets = _sets({"BIG": _g(range(60)), "S": _g(range(58))})    # J = 58/60 = 0.967
    cat = sweep.property_catalogue(sets, PC, min_genes=10, max_genes=59).set_index("term_id")
    assert cat.loc["BIG", "reason"] == "more than 59 protein-coding genes in vocabulary"
    assert cat.loc["BIG", "jaccard_duplicate_of"] is None
    assert cat.loc["S", "kept"]


def test_catalogue_identical_sets_tie_broken_by_source_then_term_id():
    same = _g(range(30))
    sets = _src_sets({("HPO", "HP:1"): same, ("GO_BP", "T2"): same, ("GO_BP", "T10"): same,
                      ("GO_BP", "other"): _g(range(100, 130))})
    cat = sweep.property_catalogue(sets, PC, min_genes=10, max_genes=500)
    got = dict(zip(cat["source"] + ":" + cat["term_id"], cat["jaccard_duplicate_of"]))
    # "T10" < "T2" as strings and "GO_BP" < "HPO": GO_BP:T10 is kept
    assert got == {"GO_BP:T10": None, "GO_BP:T2": "GO_BP:T10", "GO_BP:other": None, "HPO:HP:1": "GO_BP:T10"}
    assert cat.loc[cat["term_id"] == "HP:1", "reason"].item() == "near-duplicate of GO_BP:T10 (Jaccard 1.00)"
    # rows stay sorted by source, term_id whatever the input order
    assert list(cat["term_id"]) == ["T10", "T2", "other", "HP:1"]
    shuffled = sweep.property_catalogue(sets.sample(frac=1.0, random_state=1), PC, min_genes=10, max_genes=500)
    pd.testing.assert_frame_equal(shuffled, cat)


def test_catalogue_greedy_compares_with_kept_sets_only():
    # A (100) kept; B (90) has J(A, B) = 0.9 -> dropped; D (81): J(B, D) = 0.9 but J(A, D) = 0.81,
    # and B was not kept, so D stays
    sets = _sets({"A": _g(range(100)), "B": _g(range(90)), "D": _g(range(81))})
    cat = sweep.property_catalogue(sets, PC, min_genes=10, max_genes=500, max_jaccard=0.9).set_index("term_id")
    assert cat["kept"].to_dict() == {"A": True, "B": False, "D": True}
    assert cat.loc["B", "reason"] == "near-duplicate of GO_BP:A (Jaccard 0.90)"


def test_catalogue_names_the_kept_set_with_the_highest_jaccard():
    # Ka (10..109) and Kb (0..99) both 100 genes, J = 90/110 = 0.82 < 0.85: both kept, Ka visited first.
    # S (3..101, 99 genes): J(S, Kb) = 97/102 = 0.95, J(S, Ka) = 92/107 = 0.86; both >= 0.85, Kb is named
    sets = _sets({"Ka": _g(range(10, 110)), "Kb": _g(range(100)), "S": _g(range(3, 102))})
    cat = sweep.property_catalogue(sets, PC, min_genes=10, max_genes=500, max_jaccard=0.85).set_index("term_id")
    assert cat["kept"].to_dict() == {"Ka": True, "Kb": True, "S": False}
    assert cat.loc["S", "reason"] == "near-duplicate of GO_BP:Kb (Jaccard 0.95)"


def test_catalogue_dedupes_before_the_cap():
    sets = _sets({"A": _g(range(20)), "B": _g(range(19)), "C": _g(range(40, 60)), "D": _g(range(80, 100))})
    # 4 size-eligible, 3 after de-duplication: a cap of 3 draws nothing
    cat = sweep.property_catalogue(sets, PC, min_genes=10, max_genes=500, max_properties=3, seed=0)
    assert cat.set_index("term_id")["kept"].to_dict() == {"A": True, "B": False, "C": True, "D": True}
    assert not cat["reason"].dropna().str.startswith("not drawn").any()
    # a cap of 2 draws 2 of the 3 non-duplicates; B keeps its near-duplicate reason
    for seed in range(5):
        cat = sweep.property_catalogue(sets, PC, min_genes=10, max_genes=500, max_properties=2, seed=seed)
        got = cat.set_index("term_id")
        assert got["kept"].sum() == 2 and not got.loc["B", "kept"]
        assert got.loc["B", "reason"].startswith("near-duplicate of GO_BP:A")
        not_drawn = got.index[got["reason"].fillna("").str.startswith("not drawn")].tolist()
        assert len(not_drawn) == 1 and not_drawn[0] in {"A", "C", "D"}
        again = sweep.property_catalogue(sets, PC, min_genes=10, max_genes=500, max_properties=2, seed=seed)
        pd.testing.assert_frame_equal(again, cat)


def test_catalogue_rejects_bad_input():
    sets = _sets({"A": _g(range(20))})
    with pytest.raises(InputError, match=r"lacks column\(s\) \['term_name'\]"):
        sweep.property_catalogue(sets.drop(columns="term_name"), PC)
    for bad in (0, 0.0, -0.5, 1.01, float("nan")):
        with pytest.raises(InputError, match=r"max_jaccard must be a number in \(0, 1\]"):
            sweep.property_catalogue(sets, PC, max_jaccard=bad)
    assert sweep.property_catalogue(sets, PC, max_jaccard=1)["kept"].all()


def test_catalogue_of_categorical_columns_lists_only_real_sets():
    """Parquet gene-set tables often come back with categorical columns: no empty source x term combinations."""
    sets = _src_sets({("GO_BP", "T1"): _g(range(20)), ("HPO", "H1"): _g(range(30))})
    cat = sweep.property_catalogue(sets.astype("category"), PC, min_genes=10, max_genes=500)
    plain = sweep.property_catalogue(sets, PC, min_genes=10, max_genes=500)
    assert len(cat) == 2 and list(cat["term_id"].astype(str)) == list(plain["term_id"])


def test_sweep_job_compiles_on_a_thread_it_joins_and_not_for_an_empty_shard(monkeypatch, tmp_path):
    """The job starts the solver's compile before reading its gene sets and joins it before it ends; a shard
    with no properties compiles nothing; the AUCs are those of the eager solver within its tolerance."""
    import time

    from generain import classifier, embed
    from generain.stages import sweep as stage

    rng = np.random.default_rng(5)
    genes = [f"ENSG{i:011d}" for i in range(400)]
    x = rng.normal(size=(400, 6)).astype(np.float32)
    embed.write_embeddings(pd.DataFrame({"token": genes, "ensembl_id": genes, "symbol": genes,
                                         "biotype": "protein_coding", "species": "human", "embedding": list(x)}),
                           w2v_path=tmp_path / "e.w2v.txt", parquet_path=tmp_path / "e.parquet")
    members = {f"T{j}": [genes[i] for i in np.flatnonzero(x[:, j] > 0.8)] for j in range(3)}  # planted
    _sets(members).to_parquet(tmp_path / "sets.parquet")
    settings = sweep.SweepSettings(min_genes=10, max_genes=500, max_jaccard=0.9, max_properties=None, folds=3, C=1.0,
                                   shards=4, max_iter=100, score_tol=0.03, baselines=[], external={}, batch_size=64,
                                   device="cpu", compile=True)
    io = {"embedding": tmp_path / "e.parquet", "gene_sets": [tmp_path / "sets.parquet"], "gene_table": None,
          "settings": settings, "seed": 0}
    stage.catalogue_properties(**io, out_catalogue=tmp_path / "cat.parquet")
    threads = []
    orig = classifier.solver_passes_in_background

    def spy(device, n_genes):
        threads.append(orig(device, n_genes))
        return threads[-1]

    monkeypatch.setattr(classifier, "solver_passes_in_background", spy)
    run = {**io, "catalogue": tmp_path / "cat.parquet", "threads": 1}
    # 3 kept properties in 4 shards: shard 3 has none
    assert stage.sweep_properties(**run, shard=3, out_shard=tmp_path / "s3.parquet") == 0 and threads == []
    assert stage.sweep_properties(**run, shard=0, out_shard=tmp_path / "s0.parquet") == 1
    assert len(threads) == 1 and not threads[0].is_alive()
    got = pd.read_parquet(tmp_path / "s0.parquet")
    eager = dataclasses.replace(settings, compile=False)
    assert stage.sweep_properties(**{**run, "settings": eager}, shard=0, out_shard=tmp_path / "e0.parquet") == 1
    assert len(threads) == 1  # compile: false starts no thread
    want = pd.read_parquet(tmp_path / "e0.parquet")
    assert got["auc"].iloc[0] > 0.9 and abs(got["auc"].iloc[0] - want["auc"].iloc[0]) <= 2.5e-3
    # a job failing while the compile still runs joins it before the error leaves the job
    def slow_compile(device, n_genes, key):
        time.sleep(0.5)
        classifier._PASSES[key] = classifier._EagerPasses
        return classifier._EagerPasses

    def unreadable(*args, **kwargs):
        raise InputError("sets.parquet: not a gene-set table")

    monkeypatch.setattr(classifier, "_PASSES", {})
    monkeypatch.setattr(classifier, "_compile_passes", slow_compile)
    monkeypatch.setattr(stage, "_read_gene_sets", unreadable)
    with pytest.raises(InputError, match="not a gene-set table"):
        stage.sweep_properties(**run, shard=0, out_shard=tmp_path / "s1.parquet")
    assert len(threads) == 2 and not threads[1].is_alive() and not (tmp_path / "s1.parquet").exists()
