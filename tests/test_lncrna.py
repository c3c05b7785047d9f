"""lncRNA predictions: streamed parquet, per-lncRNA top-k, precision estimates (hand-computed cases)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from generain import lncrna
from generain.utils import InputError

# Tiny case: D=2, P=3, L=4. Logits z[p, l] = x[l] . coef[p] + intercept[p]:
#   p0 (coef [1, 0],  b 0):    [0, 1, 0, 1]
#   p1 (coef [0, 2],  b -1):   [-1, -1, 1, 1]
#   p2 (coef [-1, 1], b 0.5):  [0.5, -0.5, 1.5, 0.5]
X = np.array([[0, 0], [1, 0], [0, 1], [1, 1]], dtype=np.float32)
COEF = np.array([[1, 0], [0, 2], [-1, 1]], dtype=np.float32)
INTERCEPT = np.array([0, -1, 0.5], dtype=np.float32)
Z = [[0, 1, 0, 1], [-1, -1, 1, 1], [0.5, -0.5, 1.5, 0.5]]
IDS = np.array(["ENSG_L0", "ENSG_L1", "ENSG_L2", "ENSG_L3"])
SYMBOLS = np.array(["LINC1", "LINC2", None, "LINC1"], dtype=object)  # a missing and a repeated symbol
PROPS = pd.DataFrame({"source": ["GO", "GO", "KEGG"], "term_id": ["GO:1", "GO:2", "hsa1"],
                      "term_name": ["first", "second", "third"], "n_positive": [10, 20, 30]})


def sig(z: float) -> np.float32:
    return np.float32(1.0 / (1.0 + math.exp(-z)))


def tiny_kwargs(**over):
    kw = dict(coef=COEF, intercept=INTERCEPT, properties=PROPS, lnc_embedding=X, lnc_ids=IDS, lnc_symbols=SYMBOLS)
    kw.update(over)
    return kw


def expected_long() -> pd.DataFrame:
    rows = [(IDS[g], SYMBOLS[g], PROPS["source"][p], PROPS["term_id"][p], sig(Z[p][g]))
            for p in range(3) for g in range(4)]
    df = pd.DataFrame(rows, columns=list(lncrna.PREDICTION_COLUMNS))
    df["probability"] = df["probability"].astype(np.float32)
    return df


def files_under(d: Path) -> list[Path]:
    return [f for f in d.rglob("*") if f.is_file()] if d.exists() else []


# ---------------------------------------------------------------- write_predictions


def test_write_predictions_tiny_case_exact(tmp_path):
    path = tmp_path / "lncrna" / "gpt" / "predictions.parquet"
    n = lncrna.write_predictions(path, properties_per_batch=2, **tiny_kwargs())
    assert n == 12
    got = pd.read_parquet(path)
    want = expected_long()
    assert got["probability"].dtype == np.float32
    assert got.loc[0, "probability"] == np.float32(0.5) and got.loc[5, "probability"] == sig(-1.0)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert files_under(tmp_path) == [path]  # no temporary left beside it
    f = pq.ParquetFile(path)
    assert f.metadata.num_row_groups == 2  # batches of 2 properties: {p0, p1}, {p2}
    col = {f.metadata.schema.column(i).name: i for i in range(f.metadata.num_columns)}
    rg0, rg1 = f.metadata.row_group(0), f.metadata.row_group(1)
    assert (rg0.num_rows, rg1.num_rows) == (8, 4)
    for name in ("ensembl_id", "symbol", "source", "term_id"):
        assert "RLE_DICTIONARY" in rg0.column(col[name]).encodings
    assert rg0.column(col["probability"]).compression == "ZSTD"
    assert "RLE_DICTIONARY" not in rg0.column(col["probability"]).encodings  # floats stored plain
    s0, s1 = rg0.column(col["term_id"]).statistics, rg1.column(col["term_id"]).statistics
    assert (s0.min, s0.max, s1.min, s1.max) == ("GO:1", "GO:2", "hsa1", "hsa1")
    only = pq.read_table(path, filters=[("term_id", "=", "hsa1")]).to_pandas()
    pd.testing.assert_frame_equal(only, want.iloc[8:].reset_index(drop=True), check_exact=True)


def test_write_predictions_one_batch_gives_same_table(tmp_path):
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    lncrna.write_predictions(a, properties_per_batch=1, **tiny_kwargs())
    lncrna.write_predictions(b, properties_per_batch=256, **tiny_kwargs())
    assert pq.ParquetFile(a).metadata.num_row_groups == 3 and pq.ParquetFile(b).metadata.num_row_groups == 1
    pd.testing.assert_frame_equal(pd.read_parquet(a), pd.read_parquet(b), check_exact=True)


@pytest.mark.parametrize("over, message", [
    ({"lnc_embedding": np.zeros((4, 3), np.float32)}, "embedding dimension mismatch"),
    ({"properties": PROPS.iloc[:2]}, "properties table has 2 rows but coef has 3"),
    ({"intercept": np.zeros(2, np.float32)}, "intercept has shape (2,)"),
    ({"lnc_ids": IDS[:3]}, "lnc_ids has 3 entries"),
    ({"lnc_symbols": SYMBOLS[:2]}, "lnc_symbols has 2 entries"),
    ({"properties": PROPS.drop(columns="term_id")}, "lacks column(s) ['term_id']"),
    ({"coef": np.full((3, 2), np.nan, np.float32)}, "coef contains NaN"),
])
def test_write_predictions_rejects_mismatch_and_leaves_no_file(tmp_path, over, message):
    path = tmp_path / "lncrna" / "gpt" / "predictions.parquet"
    with pytest.raises(InputError) as exc:
        lncrna.write_predictions(path, **tiny_kwargs(**over))
    assert message in str(exc.value)
    assert files_under(tmp_path) == []


def test_write_predictions_failure_mid_write_leaves_no_file(tmp_path, monkeypatch):
    real = lncrna._probabilities
    calls = []

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("simulated failure in the second batch")
        return real(*args, **kwargs)

    monkeypatch.setattr(lncrna, "_probabilities", failing)
    path = tmp_path / "lncrna" / "gpt" / "predictions.parquet"
    with pytest.raises(RuntimeError, match="second batch"):
        lncrna.write_predictions(path, properties_per_batch=2, **tiny_kwargs())
    assert len(calls) == 2  # the first batch had been written to the temporary file
    assert files_under(tmp_path) == []


def test_write_predictions_thousands_of_rows_row_groups_and_values(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    n_prop, n_lnc, dim, batch = 37, 101, 5, 8
    coef = rng.normal(size=(n_prop, dim)).astype(np.float32)
    intercept = rng.normal(size=n_prop).astype(np.float32)
    x = rng.normal(size=(n_lnc, dim)).astype(np.float32)
    props = pd.DataFrame({"source": np.where(np.arange(n_prop) < 20, "GO", "Reactome"),
                          "term_id": [f"T{i:03d}" for i in range(n_prop)]})
    ids = np.array([f"ENSG{i:05d}" for i in range(n_lnc)])
    path = tmp_path / "p.parquet"
    kw = dict(coef=coef, intercept=intercept, properties=props, lnc_embedding=x, lnc_ids=ids, lnc_symbols=ids)
    assert lncrna.write_predictions(path, properties_per_batch=batch, **kw) == n_prop * n_lnc
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups >= math.ceil(n_prop / batch) == 5
    got = pd.read_parquet(path)
    want = 1.0 / (1.0 + np.exp(-(coef.astype(np.float64) @ x.T.astype(np.float64) + intercept[:, None])))
    np.testing.assert_allclose(got["probability"].to_numpy(), want.reshape(-1), rtol=1e-6)
    assert (got["term_id"].to_numpy() == np.repeat(props["term_id"], n_lnc)).all()
    assert (got["ensembl_id"].to_numpy() == np.tile(ids, n_prop)).all()
    assert (got["source"].to_numpy() == np.repeat(props["source"], n_lnc)).all()

    # Row groups smaller than a batch: each batch of 8 properties (808 rows) becomes 4 groups of 2 whole properties.
    monkeypatch.setattr(lncrna, "ROWS_PER_ROW_GROUP", 250)
    small = tmp_path / "small.parquet"
    lncrna.write_predictions(small, properties_per_batch=batch, **kw)
    meta = pq.ParquetFile(small).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sizes == [2 * n_lnc] * 16 + [2 * n_lnc, 2 * n_lnc, n_lnc]  # 4 full batches, then 5 properties
    t = meta.schema.names.index("term_id")
    assert [(meta.row_group(i).column(t).statistics.min, meta.row_group(i).column(t).statistics.max)
            for i in range(2)] == [("T000", "T001"), ("T002", "T003")]
    pd.testing.assert_frame_equal(pd.read_parquet(small), got, check_exact=True)


# ---------------------------------------------------------------- precision

# One property: sorted by oof, 0.95(non-member) 0.9(m) 0.7(m) 0.7(non) 0.5(m) 0.2(m) 0.1(non); 4 members in 7 genes.
OOF_P = np.array([0.9, 0.7, 0.7, 0.5, 0.2, 0.95, 0.1], dtype=np.float32)
Y_P = np.array([1, 1, 0, 1, 1, 0, 0], dtype=bool)


def test_precision_at_grid_hand_computed():
    grid = (0.5, 0.7, 0.9)
    curve = np.array([[0.6, 0.5, 1.0], [0.2, np.nan, np.nan]])  # 2 properties x 3 grid probabilities
    probs = np.array([0.7, 0.69, 0.95, 0.49, 0.5, 0.75, 1.0], dtype=np.float32)
    props = np.array([0, 0, 0, 0, 1, 1, 1])
    got = lncrna.precision_at_grid(curve, props, probs, grid)
    # 0.7 -> grid 0.7; 0.69 -> 0.5; 0.95 -> 0.9; 0.49 -> below the grid; p1: 0.5 -> 0.2, 0.75 and 1.0 -> NaN
    np.testing.assert_array_equal(got, [0.5, 0.6, 1.0, np.nan, 0.2, np.nan, np.nan])
    assert got.dtype == np.float64
    # the grid is compared in float32, as the probabilities are stored: float32(0.7) counts at 0.7
    assert lncrna.precision_at_grid(curve, np.array([0]), np.array([np.float32(0.7)], np.float64), grid) == [0.5]
    with pytest.raises(InputError, match="precision curve"):
        lncrna.precision_at_grid(curve[:, :2], props, probs, grid)
    with pytest.raises(InputError, match="ascend"):
        lncrna.precision_at_grid(curve, props, probs, (0.5, 0.9, 0.7))


def test_precision_at_thresholds_hand_computed():
    oof = np.stack([OOF_P, np.array([0.1, 0.2, 0.3, 0.4, 0.45, 0.49, 0.0], np.float32)], axis=1)
    y = np.stack([Y_P, np.ones(7, bool)], axis=1)
    got = lncrna.precision_at_thresholds(oof, y, thresholds=(0.5, 0.7, 0.9, 0.99))
    assert list(got.columns) == ["precision_0.5", "n_called_0.5", "precision_0.7", "n_called_0.7",
                                 "precision_0.9", "n_called_0.9", "precision_0.99", "n_called_0.99"]
    assert list(got.index) == [0, 1]
    np.testing.assert_array_equal(got.loc[0].to_numpy(), [3 / 5, 5, 2 / 4, 4, 1 / 2, 2, np.nan, 0])
    np.testing.assert_array_equal(got.loc[1].to_numpy(), [np.nan, 0] * 4)  # nobody reaches 0.5
    assert got["n_called_0.7"].dtype == np.int64
    with pytest.raises(InputError, match="same shape"):
        lncrna.precision_at_thresholds(oof, y[:, :1])


# ---------------------------------------------------------------- top_predictions

# Out-of-fold probabilities of 5 protein-coding genes for the tiny case's 3 properties, and the
# precision grid the sweep would save from them.
TINY_OOF = np.array([[0.0, 0.0, 0.0], [0.55, 0.55, 0.55], [0.65, 0.65, 0.65], [0.8, 0.8, 0.8],
                     [0.95, 0.95, 0.81]], dtype=np.float32)
TINY_Y = np.array([[0, 1, 0], [0, 1, 1], [1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=bool)
TINY_GRID = (0.5, 0.6, 0.7, 0.8)
TINY_CURVE = lncrna.precision_at_thresholds(TINY_OOF, TINY_Y, TINY_GRID).filter(like="precision_").to_numpy()


@pytest.mark.parametrize("batch", [1, 2, 3])
def test_top_predictions_tiny_case(batch):
    got = lncrna.top_predictions(k=2, precision=(TINY_GRID, TINY_CURVE), properties_per_batch=batch,
                                 **tiny_kwargs())
    assert list(got.columns) == list(lncrna.TOP_COLUMNS)
    # (lncRNA, property, logit, precision among pc genes with oof >= the grid value at or below the probability)
    want = [(0, 2, 0.5, 2 / 3), (0, 0, 0.0, 2 / 4),  # sigmoid 0.62 -> grid 0.6; 0.5 -> 0.5
            (1, 0, 1.0, 1 / 2), (1, 2, -0.5, np.nan),  # 0.73 -> 0.7; 0.38 is below the grid
            (2, 2, 1.5, 1.0), (2, 1, 1.0, 1.0),  # 0.818 -> 0.8: p2's genes at 0.8 and 0.81 are members
            (3, 0, 1.0, 1 / 2), (3, 1, 1.0, 1.0)]  # tie at logit 1: the earlier property ranks first
    assert got["ensembl_id"].tolist() == [IDS[g] for g, *_ in want]
    assert got["symbol"].tolist() == [SYMBOLS[g] for g, *_ in want]
    assert got["rank"].tolist() == [1, 2] * 4
    assert got["term_id"].tolist() == [PROPS["term_id"][p] for _, p, *_ in want]
    assert got["source"].tolist() == [PROPS["source"][p] for _, p, *_ in want]
    assert got["term_name"].tolist() == [PROPS["term_name"][p] for _, p, *_ in want]
    assert got["probability"].dtype == np.float32
    assert got["probability"].tolist() == [sig(z) for *_, z, _ in want]
    np.testing.assert_array_equal(got["precision_at_probability"].to_numpy(), [q for *_, q in want])


def test_top_predictions_without_precision_and_k_above_p(tmp_path):
    got = lncrna.top_predictions(k=10, **tiny_kwargs())
    assert len(got) == 4 * 3 and got["rank"].tolist() == [1, 2, 3] * 4
    assert got["precision_at_probability"].isna().all()
    # The same probabilities as the written file, row for row once sorted the same way.
    path = tmp_path / "p.parquet"
    lncrna.write_predictions(path, **tiny_kwargs())
    long = pd.read_parquet(path)
    long["order"] = np.tile(np.arange(4), 3) * 10 + np.repeat(np.arange(3), 4)
    long = long.sort_values(["ensembl_id", "probability", "order"], ascending=[True, False, True])
    assert got["term_id"].tolist() == long["term_id"].tolist()
    assert got["probability"].tolist() == long["probability"].tolist()
    with pytest.raises(InputError, match="k must be"):
        lncrna.top_predictions(k=0, **tiny_kwargs())
    with pytest.raises(InputError, match="one row per property"):
        lncrna.top_predictions(k=2, precision=(TINY_GRID, TINY_CURVE[:2]), **tiny_kwargs())


def test_top_predictions_matches_brute_force():
    rng = np.random.default_rng(2)
    n_prop, n_lnc, dim, n_pc, k = 53, 40, 6, 300, 7
    coef = rng.normal(size=(n_prop, dim)).astype(np.float32)
    intercept = rng.normal(size=n_prop).astype(np.float32)
    x = rng.normal(size=(n_lnc, dim)).astype(np.float32)
    props = pd.DataFrame({"source": "GO", "term_id": [f"T{i}" for i in range(n_prop)],
                          "term_name": [f"name {i}" for i in range(n_prop)]})
    ids = np.array([f"L{i}" for i in range(n_lnc)])
    oof = rng.uniform(size=(n_pc, n_prop)).astype(np.float32)
    y = rng.uniform(size=(n_pc, n_prop)) < oof  # members more likely at high oof
    grid = tuple(round(float(v), 2) for v in np.arange(0.05, 1.0, 0.05))
    curve = lncrna.precision_at_thresholds(oof, y, grid).filter(like="precision_").to_numpy()
    got = lncrna.top_predictions(coef=coef, intercept=intercept, properties=props, lnc_embedding=x, lnc_ids=ids,
                                 lnc_symbols=ids, k=k, precision=(grid, curve), properties_per_batch=5)
    full = 1.0 / (1.0 + np.exp(-(x.astype(np.float64) @ coef.T.astype(np.float64) + intercept)))  # (L, P)
    top = np.argsort(-full, axis=1, kind="stable")[:, :k]
    assert got["term_id"].tolist() == [f"T{p}" for p in top.reshape(-1)]
    probs = np.take_along_axis(full, top, axis=1).reshape(-1)
    np.testing.assert_allclose(got["probability"].to_numpy(), probs, rtol=1e-6)
    q = got["probability"].to_numpy()
    g32 = np.array(grid, np.float32)
    below = [g32[g32 <= qi].max() if (g32 <= qi).any() else None for qi in q]  # the grid value at or below q
    brute = [y[oof[:, p] >= t, p].mean() if t is not None and (oof[:, p] >= t).any() else np.nan
             for p, t in zip(top.reshape(-1), below)]
    np.testing.assert_allclose(got["precision_at_probability"].to_numpy(), brute)
