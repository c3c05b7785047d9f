"""lncRNA function predictions from property classifiers, in bounded memory.

GeneRAIN (Su et al. 2024, Results "lncRNA function predictions"): for each
gene property (gene set), a logistic-regression classifier trained on the
embeddings of protein-coding genes is applied to the embeddings of lncRNAs;
its probability is the prediction that the lncRNA has the property. The
precision of such a call is estimated on the protein-coding genes from their
out-of-fold (cross-validated) probabilities.

At full scale (4,797 properties x 13,030 lncRNAs = 62.5 million predictions)
nothing here materialises the whole lncRNA x property table: probabilities
are computed for a batch of properties at a time, streamed into one parquet
file (:func:`write_predictions`) or folded into a running per-lncRNA top-k
(:func:`top_predictions`).

All probabilities are ``sigmoid(x @ coef[p] + intercept[p])`` on the raw
embedding ``x``, computed in float64 and rounded once to float32 by one
shared routine, so :func:`write_predictions` and :func:`top_predictions`
report the same float32 probability for a given lncRNA and property.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from tqdm.auto import tqdm

from generain.utils import InputError, atomic_path

log = logging.getLogger(__name__)

PREDICTION_COLUMNS = ("ensembl_id", "symbol", "source", "term_id", "probability")
TOP_COLUMNS = ("ensembl_id", "symbol", "rank", "source", "term_id", "term_name", "probability",
               "precision_at_probability")

#: Target rows per parquet row group. A batch of properties is cut into row groups
#: of whole properties, each of about this many rows (or fewer), so that row-group
#: statistics on term_id stay narrow and a reader filtering by term_id skips most of the file.
ROWS_PER_ROW_GROUP = 1 << 20


# --------------------------------------------------------------------------- validation


def _check_inputs(coef: np.ndarray, intercept: np.ndarray, properties: pd.DataFrame, lnc_embedding: np.ndarray,
                  lnc_ids: np.ndarray, lnc_symbols: np.ndarray, properties_per_batch: int,
                  columns: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate shapes; return coef (P, D), intercept (P,), embedding (L, D) as float64."""
    coef = np.asarray(coef)
    intercept = np.asarray(intercept)
    x = np.asarray(lnc_embedding)
    if coef.ndim != 2:
        raise InputError(f"coef must be 2-d (properties x dim), got shape {coef.shape}")
    n_prop, dim = coef.shape
    if intercept.shape != (n_prop,):
        raise InputError(f"intercept has shape {intercept.shape}, expected ({n_prop},) to match coef {coef.shape}")
    if len(properties) != n_prop:
        raise InputError(f"properties table has {len(properties)} rows but coef has {n_prop} properties")
    missing = [c for c in columns if c not in properties.columns]
    if missing:
        raise InputError(f"properties table lacks column(s) {missing}; it has {list(properties.columns)}")
    for c in ("source", "term_id"):
        if properties[c].isna().any():
            raise InputError(f"properties column {c!r} has missing values")
    if x.ndim != 2:
        raise InputError(f"lnc_embedding must be 2-d (lncRNAs x dim), got shape {x.shape}")
    if x.shape[1] != dim:
        raise InputError(f"embedding dimension mismatch: lnc_embedding has {x.shape[1]} columns, coef {dim}")
    n_lnc = x.shape[0]
    for name, arr in (("lnc_ids", lnc_ids), ("lnc_symbols", lnc_symbols)):
        if len(arr) != n_lnc:
            raise InputError(f"{name} has {len(arr)} entries but lnc_embedding has {n_lnc} rows")
    if not isinstance(properties_per_batch, (int, np.integer)) or properties_per_batch < 1:
        raise InputError(f"properties_per_batch must be a positive integer, got {properties_per_batch!r}")
    for name, arr in (("coef", coef), ("intercept", intercept), ("lnc_embedding", x)):
        if not np.isfinite(arr).all():
            raise InputError(f"{name} contains NaN or infinite values")
    return coef.astype(np.float64), intercept.astype(np.float64), x.astype(np.float64)


def _buffers(batch: int, n_lnc: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Reusable (batch, L) float64 logits and float32 probabilities for :func:`_probabilities`."""
    return torch.empty((batch, n_lnc), dtype=torch.float64), torch.empty((batch, n_lnc), dtype=torch.float32)


def _probabilities(x64: torch.Tensor, coef64: np.ndarray, intercept64: np.ndarray, lo: int, hi: int,
                   buffers: tuple[torch.Tensor, torch.Tensor]) -> np.ndarray:
    """float32 (hi - lo, L): sigmoid(coef[p] . x[l] + intercept[p]) for properties lo..hi-1, in float64.

    Written into ``buffers`` (from :func:`_buffers`) and returned as a view of
    them, valid until the next call: one allocation for the whole run keeps the
    process's memory flat (fresh tens-of-MB arrays per batch fragment glibc's heap).
    """
    z, p = buffers[0][:hi - lo], buffers[1][:hi - lo]
    torch.matmul(torch.from_numpy(coef64[lo:hi]), x64.T, out=z)
    z += torch.from_numpy(intercept64[lo:hi])[:, None]
    torch.sigmoid(z, out=z)
    p.copy_(z)
    return p.numpy()


def _codes(values: np.ndarray | pd.Series | Sequence[str]) -> tuple[np.ndarray, pa.Array]:
    """Dictionary codes (int32, -1 for missing) and the dictionary (unique strings) of ``values``."""
    codes, uniques = pd.factorize(pd.Series(np.asarray(values, dtype=object)), use_na_sentinel=True)
    return codes.astype(np.int32), pa.array([str(u) for u in uniques], type=pa.string())


def _index_array(indices: np.ndarray) -> pa.Array:
    """Arrow int32 dictionary indices (zero-copy where possible); negative indices become nulls."""
    mask = indices < 0
    return pa.array(indices, type=pa.int32(), mask=mask if mask.any() else None)


# --------------------------------------------------------------------------- writing


def write_predictions(
    path: str | os.PathLike[str],
    *,
    coef: np.ndarray,
    intercept: np.ndarray,
    properties: pd.DataFrame,
    lnc_embedding: np.ndarray,
    lnc_ids: np.ndarray,
    lnc_symbols: np.ndarray,
    properties_per_batch: int = 256,
) -> int:
    """Stream every lncRNA x property probability into one parquet file.

    Method: GeneRAIN (Su et al. 2024), Results "lncRNA function predictions":
    the classifiers trained on protein-coding genes, one per property, applied
    to the lncRNA embeddings.

    Parameters
    ----------
    path : path-like
        Output parquet file (``lncrna/{model}/predictions.parquet``). Written
        under a temporary name in the same directory and renamed at the end;
        on any error nothing is left at ``path`` or at the temporary name.
    coef : np.ndarray
        float32 (P, D), one logistic-regression weight vector per property,
        acting on the raw embedding (no standardisation).
    intercept : np.ndarray
        float32 (P,), the classifiers' intercepts (log-odds units).
    properties : pandas.DataFrame
        P rows, in the order of ``coef``; needs columns source and term_id
        (others are ignored).
    lnc_embedding : np.ndarray
        float32 (L, D), the lncRNA embeddings.
    lnc_ids, lnc_symbols : np.ndarray
        str (L,), Ensembl gene ids and symbols of the lncRNAs (a symbol may be
        missing: None/NaN is written as null).
    properties_per_batch : int
        Properties whose probabilities are computed and written at a time.
        Peak memory is set by one batch (float64 logits and float32
        probabilities, ``properties_per_batch x L x 12`` bytes, allocated once)
        and one row group's index arrays and encoded pages; it does not grow
        with P (about 110 MiB above the inputs at 256 x 13,030 on CPU,
        BENCHMARKS.md).

    Returns
    -------
    int
        Rows written, P x L.

    Notes
    -----
    Columns ensembl_id, symbol, source, term_id (strings, dictionary-encoded
    in parquet, read back as plain strings) and probability (float32, the
    classifier's P(member), in [0, 1]). Rows are ordered by property (in the
    order of ``properties``) and then by lncRNA (in input order). Each batch is
    written as one or more row groups of whole properties (about
    :data:`ROWS_PER_ROW_GROUP` rows each), zstd-compressed, with min/max
    statistics, so ``pyarrow.parquet.read_table(path, filters=[("term_id", "=", t)])``
    reads only the row groups holding ``t`` (narrowest when ``properties`` is
    sorted by term_id, as the sweep's property catalogue is). Progress is shown
    with tqdm; shapes, row groups and elapsed time are logged.

    Raises
    ------
    InputError
        If shapes disagree (coef vs intercept, properties rows, embedding
        dimension, number of ids or symbols), a required properties column is
        missing, source or term_id has missing values, ``properties_per_batch``
        is not a positive integer, or an input holds NaN/inf.
    """
    start = time.perf_counter()
    coef64, int64_, x = _check_inputs(coef, intercept, properties, lnc_embedding, lnc_ids, lnc_symbols,
                                      properties_per_batch, ("source", "term_id"))
    n_prop, n_lnc = coef64.shape[0], x.shape[0]
    log.info("lncRNA predictions: %d lncRNAs x %d properties (dim %d) = %d rows, %d properties per batch -> %s",
             n_lnc, n_prop, x.shape[1], n_prop * n_lnc, properties_per_batch, path)
    id_codes, id_dict = _codes(lnc_ids)
    sym_codes, sym_dict = _codes(lnc_symbols)
    src_codes, src_dict = _codes(properties["source"])
    term_ids = np.asarray(properties["term_id"], dtype=object)
    schema = pa.schema([
        ("ensembl_id", pa.dictionary(pa.int32(), pa.string())),
        ("symbol", pa.dictionary(pa.int32(), pa.string())),
        ("source", pa.dictionary(pa.int32(), pa.string())),
        ("term_id", pa.dictionary(pa.int32(), pa.string())),
        ("probability", pa.float32()),
    ])
    # Properties per row group: a batch is cut into equal groups of whole properties of <= ROWS_PER_ROW_GROUP rows.
    batch = int(min(properties_per_batch, max(n_prop, 1)))
    groups_per_batch = max(1, math.ceil(batch * n_lnc / ROWS_PER_ROW_GROUP))
    per_group = max(1, math.ceil(batch / groups_per_batch))
    # Index arrays shared by every row group (sliced for a shorter last group), and buffers reused by each group.
    id_index = _index_array(np.tile(id_codes, per_group))
    sym_index = _index_array(np.tile(sym_codes, per_group))
    src_buf = np.empty((per_group, n_lnc), dtype=np.int32)
    term_buf = np.empty((per_group, n_lnc), dtype=np.int32)
    x64 = torch.from_numpy(x)
    buffers = _buffers(batch, n_lnc)
    rows = 0
    n_groups = 0
    with atomic_path(path) as tmp:
        # Dictionary pages for the strings only: on the float column a dictionary overflows and costs ~15% in size.
        with pq.ParquetWriter(tmp, schema, compression="zstd", use_dictionary=list(PREDICTION_COLUMNS[:4]),
                              write_statistics=True, store_schema=False) as writer, \
                tqdm(total=n_prop, desc="lncRNA predictions", unit="property", mininterval=5) as bar:
            for lo in range(0, n_prop, batch):
                hi = min(lo + batch, n_prop)
                probs = _probabilities(x64, coef64, int64_, lo, hi, buffers)  # (hi - lo, L), property-major
                for g0 in range(lo, hi, per_group):
                    g1 = min(g0 + per_group, hi)
                    n = (g1 - g0) * n_lnc
                    if n == 0:
                        continue
                    term_codes, term_dict = _codes(term_ids[g0:g1])
                    src_buf[:g1 - g0] = src_codes[g0:g1, None]
                    term_buf[:g1 - g0] = term_codes[:, None]
                    table = pa.Table.from_arrays([
                        pa.DictionaryArray.from_arrays(id_index.slice(0, n), id_dict),
                        pa.DictionaryArray.from_arrays(sym_index.slice(0, n), sym_dict),
                        pa.DictionaryArray.from_arrays(pa.array(src_buf[:g1 - g0].reshape(-1)), src_dict),
                        pa.DictionaryArray.from_arrays(pa.array(term_buf[:g1 - g0].reshape(-1)), term_dict),
                        pa.array(probs[g0 - lo:g1 - lo].reshape(-1), type=pa.float32()),
                    ], schema=schema)
                    writer.write_table(table, row_group_size=n)  # encodes and copies: the buffers are free again
                    del table
                    rows += n
                    n_groups += 1
                bar.update(hi - lo)
    log.info("wrote %d rows (%d lncRNAs x %d properties) in %d row groups to %s in %.1f s",
             rows, n_lnc, n_prop, n_groups, path, time.perf_counter() - start)
    return rows


# --------------------------------------------------------------------------- precision


def precision_at_grid(
    curve: np.ndarray, prop_idx: np.ndarray, probs: np.ndarray, grid: Sequence[float]
) -> np.ndarray:
    """The precision estimated at the grid probability just below each prediction.

    For a prediction of property ``p`` with probability ``q``: ``curve[p, i]``
    for the largest grid value ``grid[i] <= q`` (compared in float32, as the
    probabilities are stored), NaN when ``q < grid[0]``. ``curve`` holds, per
    property, the precision of its out-of-fold calls on protein-coding genes
    at each grid probability (:func:`precision_at_thresholds` on the grid,
    saved by the sweep as the classifiers' ``precision_{t}`` columns), so the
    estimate is the precision the property's classifier reached, out of fold,
    when calling at a threshold at most ``q`` (GeneRAIN, Results "lncRNA
    function predictions"). The sweep keeps this grid rather than every
    gene's out-of-fold probability (n_pc x P floats, ~380 MB at 19,000 genes
    x 5,000 properties), so the estimate is conservative by at most one grid step.

    Parameters
    ----------
    curve : np.ndarray
        float (P, G), precision per property and grid probability (NaN where
        no gene was called).
    prop_idx : np.ndarray
        int (m,), the property (row of ``curve``) of each prediction.
    probs : np.ndarray
        float (m,), the predictions' probabilities.
    grid : sequence of float
        G ascending probabilities.

    Returns
    -------
    np.ndarray
        float64 (m,).

    Raises
    ------
    InputError
        If ``curve`` is not (P, G), the grid does not ascend, or ``prop_idx``
        and ``probs`` differ in length.
    """
    g = np.asarray(grid, dtype=np.float32)
    curve = np.asarray(curve, dtype=np.float64)
    prop_idx, probs = np.asarray(prop_idx), np.asarray(probs)
    if g.ndim != 1 or curve.ndim != 2 or curve.shape[1] != g.size:
        raise InputError(f"precision curve must be (n_properties, {g.size}) for a grid of {g.size}, got {curve.shape}")
    if g.size and not (np.diff(g) > 0).all():
        raise InputError("precision grid must ascend")
    if prop_idx.shape != probs.shape:
        raise InputError(f"prop_idx and probs differ in shape: {prop_idx.shape} and {probs.shape}")
    at = np.searchsorted(g, probs.astype(np.float32, copy=False), side="right") - 1
    if not g.size:
        return np.full(probs.shape, np.nan)
    vals = curve[prop_idx, np.clip(at, 0, None)]
    return np.where(at >= 0, vals, np.nan)


def precision_at_thresholds(oof: np.ndarray, y: np.ndarray,
                            thresholds: Sequence[float] = (0.5, 0.7, 0.9)) -> pd.DataFrame:
    """Per property, precision and number of genes called at fixed probability thresholds.

    For threshold ``t`` and property ``p``: n_called = #genes with
    ``oof[:, p] >= t``; precision = #members among them / n_called (NaN when
    n_called is 0). Out-of-fold probabilities of protein-coding genes, so the
    figures estimate the precision of lncRNA calls at ``t`` (GeneRAIN, Results
    "lncRNA function predictions").

    Parameters
    ----------
    oof : np.ndarray
        float (n_pc, P), out-of-fold probabilities.
    y : np.ndarray
        bool (n_pc, P), memberships.
    thresholds : sequence of float
        Probabilities in [0, 1], compared at the precision of ``oof`` (``>=``:
        a float32 0.7 counts as called at 0.7).

    Returns
    -------
    pandas.DataFrame
        P rows indexed 0..P-1 (the property order of ``oof``; join source and
        term_id from the property table by position), columns
        ``precision_{t}`` (float64) and ``n_called_{t}`` (int64) for each ``t``
        in the given order, ``t`` formatted with ``{:g}`` (``precision_0.5``).

    Raises
    ------
    InputError
        If ``oof`` and ``y`` are not 2-d of the same shape.
    """
    oof = np.asarray(oof)
    y = np.asarray(y, dtype=bool)
    if oof.ndim != 2 or y.shape != oof.shape:
        raise InputError(f"oof and y must be 2-d of the same shape, got {oof.shape} and {y.shape}")
    n_prop = oof.shape[1]
    ts = [float(t) for t in thresholds]
    called = np.zeros((len(ts), n_prop), dtype=np.int64)
    hits = np.zeros((len(ts), n_prop), dtype=np.int64)
    step = 256  # properties at a time: bounds the (n_pc x step) boolean temporaries
    for lo in range(0, n_prop, step):
        o, m = oof[:, lo:lo + step], y[:, lo:lo + step]
        for i, t in enumerate(ts):
            c = o >= (o.dtype.type(t) if np.issubdtype(o.dtype, np.floating) else t)
            called[i, lo:lo + step] = c.sum(axis=0)
            hits[i, lo:lo + step] = (c & m).sum(axis=0)
    cols: dict[str, np.ndarray] = {}
    for i, t in enumerate(ts):
        with np.errstate(invalid="ignore", divide="ignore"):
            prec = hits[i] / called[i].astype(np.float64)
        prec[called[i] == 0] = np.nan
        cols[f"precision_{t:g}"] = prec
        cols[f"n_called_{t:g}"] = called[i]
    return pd.DataFrame(cols, index=pd.RangeIndex(n_prop))


# --------------------------------------------------------------------------- top-k


def top_predictions(
    *,
    coef: np.ndarray,
    intercept: np.ndarray,
    properties: pd.DataFrame,
    lnc_embedding: np.ndarray,
    lnc_ids: np.ndarray,
    lnc_symbols: np.ndarray,
    k: int = 20,
    precision: tuple[Sequence[float], np.ndarray] | None = None,
    properties_per_batch: int = 256,
) -> pd.DataFrame:
    """Each lncRNA's ``k`` highest-probability properties.

    Method: GeneRAIN (Su et al. 2024), Results "lncRNA function predictions".
    Probabilities are computed exactly as in :func:`write_predictions`, a batch
    of properties at a time, and folded into a running top-k per lncRNA, so
    memory is O(L x (k + properties_per_batch)), never L x P.

    Parameters
    ----------
    coef, intercept, properties, lnc_embedding, lnc_ids, lnc_symbols
        As in :func:`write_predictions`; ``properties`` also needs term_name.
    k : int
        Properties kept per lncRNA (>= 1; if larger than P, all P are kept).
    precision : (grid, curve), optional
        G ascending probabilities and float (P, G) precision per property at
        each (the sweep's ``precision_{t}`` columns); when given, each
        prediction gets :func:`precision_at_grid` at its probability.
    properties_per_batch : int
        Properties scored at a time.

    Returns
    -------
    pandas.DataFrame
        L x min(k, P) rows ordered by lncRNA (input order) then rank: ensembl_id,
        symbol, rank (int64, 1 = highest probability), source, term_id,
        term_name, probability (float32), precision_at_probability (float64;
        NaN without ``precision``, below the grid's first probability, or
        where no protein-coding gene was called at that grid probability). Ties in probability rank the property listed first in
        ``properties`` higher.

    Raises
    ------
    InputError
        As :func:`write_predictions`; also if ``k < 1``, or the ``precision``
        curve is not (P, G) (:func:`precision_at_grid`).
    """
    start = time.perf_counter()
    coef64, int64_, x = _check_inputs(coef, intercept, properties, lnc_embedding, lnc_ids, lnc_symbols,
                                      properties_per_batch, ("source", "term_id", "term_name"))
    n_prop, n_lnc = coef64.shape[0], x.shape[0]
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise InputError(f"k must be a positive integer, got {k!r}")
    if precision is not None:
        grid, curve = precision
        curve = np.asarray(curve)
        if curve.ndim != 2 or curve.shape[0] != n_prop:
            raise InputError(f"precision curve must have one row per property ({n_prop}), got shape {curve.shape}")
    kk = min(int(k), n_prop)
    log.info("top %d predictions of %d lncRNAs over %d properties", kk, n_lnc, n_prop)
    # Candidates: columns 0..kk-1 hold the running top-k (-inf while unfilled), the rest one batch of properties.
    # Earlier properties sit to the left and the sort is stable, so ties keep the lower property index.
    batch = int(min(properties_per_batch, max(n_prop, 1)))
    cand_p = torch.full((n_lnc, kk + batch), -math.inf, dtype=torch.float32)
    cand_i = torch.full((n_lnc, kk + batch), -1, dtype=torch.int64)
    sorted_p, sorted_i = torch.empty_like(cand_p), torch.empty_like(cand_i)
    best_i = torch.empty((n_lnc, kk), dtype=torch.int64)
    x64 = torch.from_numpy(x)
    buffers = _buffers(batch, n_lnc)
    with tqdm(total=n_prop, desc="lncRNA top-k", unit="property", mininterval=5) as bar:
        for lo in range(0, n_prop, batch):
            hi = min(lo + batch, n_prop)
            m = hi - lo
            cand_p[:, kk:kk + m] = torch.from_numpy(_probabilities(x64, coef64, int64_, lo, hi, buffers)).T
            cand_i[:, kk:kk + m] = torch.arange(lo, hi)
            if m < batch:  # last, shorter batch: pad
                cand_p[:, kk + m:] = -math.inf
            torch.sort(cand_p, dim=1, descending=True, stable=True, out=(sorted_p, sorted_i))
            torch.gather(cand_i, 1, sorted_i[:, :kk], out=best_i)
            cand_p[:, :kk] = sorted_p[:, :kk]
            cand_i[:, :kk] = best_i
            bar.update(m)
    best_p = cand_p[:, :kk].contiguous()
    prop_idx = best_i.numpy().reshape(-1)
    prob = best_p.numpy().reshape(-1)
    prec = np.full(prob.shape, np.nan)
    if precision is not None and prob.size:
        prec = precision_at_grid(curve, prop_idx, prob, grid)
    props = properties.reset_index(drop=True)
    out = pd.DataFrame({
        "ensembl_id": np.repeat(np.asarray(lnc_ids, dtype=object), kk),
        "symbol": np.repeat(np.asarray(lnc_symbols, dtype=object), kk),
        "rank": np.tile(np.arange(1, kk + 1, dtype=np.int64), n_lnc),
        "source": props["source"].to_numpy(dtype=object)[prop_idx],
        "term_id": props["term_id"].to_numpy(dtype=object)[prop_idx],
        "term_name": props["term_name"].to_numpy(dtype=object)[prop_idx],
        "probability": prob.astype(np.float32),
        "precision_at_probability": prec,
    })
    log.info("top %d predictions: %d rows in %.1f s", kk, len(out), time.perf_counter() - start)
    return out
