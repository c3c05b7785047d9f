"""Property catalogue and classifier sweep on planted signal."""
from __future__ import annotations

import numpy as np
import pandas as pd

from generain import sweep


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
    auc = sweep.run_sweep(x, genes, sets, cat, folds=5, seed=0).set_index("term_id")
    assert auc.loc["planted", "auc"] > 0.97
    assert 0.35 < auc.loc["random", "auc"] < 0.65
    assert auc.loc["planted", "n_positive"] == len(planted) > 50
    lnc = rng.normal(size=(3, d)).astype(np.float32)
    lnc[0, 0], lnc[1, 0] = 3.0, -3.0
    pred = sweep.predict_lncrna(x, genes, lnc, np.array(["L0", "L1", "L2"]), np.array(["a", "b", "c"]), sets, cat)
    assert len(pred) == 6 and list(pred.columns) == ["ensembl_id", "symbol", "source", "term_id", "probability"]
    p = pred[pred["term_id"] == "planted"].set_index("ensembl_id")["probability"]
    assert p["L0"] > 0.9 and p["L1"] < 0.01
