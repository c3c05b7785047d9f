"""Streaming Binning-By-Gene over sample shards: bounded memory at ARCHS4 scale.

GeneRAIN ranks each gene across *all* samples, which the original did in
memory (285 GB nodes for 410K human samples). Here the samples are cut into
shards (blocks of samples aligned to the file's chunk width), and two passes
over the shards replace the in-memory matrix:

pass 1, one job per shard (:func:`scan_shard`)
    read the shard's counts (inflating the file's chunks once,
    :func:`generain.io.read_deflate_block`), QC its samples (GeneRAIN's
    criteria), and for the samples that pass summarise each source gene row:
    total counts and, for rows of the vocabulary biotypes, the sum of
    log10(CP10M+1), the number of non-zero values and a *quantile sketch* of
    the non-zero values (the sorted values at ``sketch_points`` evenly spaced
    ranks; all values when there are fewer). Those rows' log10(CP10M+1) go
    to a scratch file for pass 2 (:func:`write_scratch`).
gather (:func:`merge_sketches`)
    the gene filters of the in-memory path from the merged sums (collisions
    of source rows on one Ensembl id keep the largest total count, then the
    vocabulary biotypes, duplicate symbols keep the highest mean, mean >
    ``min_mean``), and per kept gene the merged quantiles of its non-zero
    values at ``reference_points`` evenly spaced ranks, each shard's sketch
    point weighted by the values it stands for.
pass 2, one job per shard (:func:`bin_shard`)
    bin the scratch values of the shard's passing samples against the merged
    reference with the exact formula applied to interpolated ranks
    (:func:`bin_against_reference`).

With sketches at least as large as every gene's non-zero count the result is
the exact Binning-By-Gene of :func:`generain.normalize.bin_by_gene` (up to
the order of tied values). Memory of a shard job depends on the shard width
and the gene count; the gather reads the sketches in gene blocks sized to a
fixed budget, so no job's memory grows with the number of samples.
"""
from __future__ import annotations

import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

from . import annotation, normalize, qc
from .io import decode_strings, read_archs4
from .utils import InputError, atomic_path

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]


def shard_bounds(n_samples: int, *, chunk_width: int, shard_samples: int) -> list[tuple[int, int]]:
    """Sample ranges [start, stop) of the shards of a file.

    Parameters
    ----------
    n_samples : int
        Samples in the file.
    chunk_width : int
        The HDF5 chunk width along samples (1 for contiguous data).
    shard_samples : int
        Requested samples per shard; rounded up to a multiple of ``chunk_width``
        so that no chunk is decompressed by two jobs.

    Returns
    -------
    list of (int, int)
        Consecutive ranges covering 0..n_samples; the last may be shorter.
    """
    if shard_samples < 1 or chunk_width < 1:
        raise ValueError(f"shard_samples and chunk_width must be >= 1 (got {shard_samples}, {chunk_width})")
    width = -(-shard_samples // chunk_width) * chunk_width
    return [(s, min(s + width, n_samples)) for s in range(0, n_samples, width)]


def archs4_shape(path: PathLike) -> tuple[int, int, int]:
    """(n_genes, n_samples, chunk width along samples) of an ARCHS4 file's data/expression."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    try:
        with h5py.File(path, "r") as h5:
            ds = h5["data/expression"]
            n_genes, n_samples = ds.shape
            return int(n_genes), int(n_samples), int(ds.chunks[1]) if ds.chunks else 1
    except (OSError, KeyError) as exc:
        raise InputError(f"{path}: not an ARCHS4 gene-count file ({exc})") from exc


def sketch_nonzero(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Quantile sketch of each row's non-zero values.

    Parameters
    ----------
    values : np.ndarray
        float, shape (n_genes, n_samples), non-negative.
    k : int
        Points per gene (>= 2).

    Returns
    -------
    (np.ndarray, np.ndarray)
        points float32 (n_genes, k): a row with nnz <= k non-zero values holds
        all of them ascending, then NaN; a row with nnz > k holds its sorted
        non-zero values at ranks ``round(linspace(0, nnz - 1, k))``.
        nnz int64 (n_genes,).
    """
    if k < 2:
        raise ValueError(f"sketch points must be >= 2, got {k}")
    n_genes, n = values.shape
    nnz = np.zeros(n_genes, dtype=np.int64)
    if n == 0:
        return np.full((n_genes, k), np.nan, dtype=np.float32), nnz
    from .kernels import pick_sketch

    out = np.empty((n_genes, k), dtype=np.float32)  # every element written by pick_sketch
    frac = np.linspace(0.0, 1.0, k)
    step = max(1, min(n_genes, (1 << 20) // n))  # rows per block: a 4-8 MB sort buffer, reused
    buf = np.empty((step, n), dtype=values.dtype if values.dtype in (np.float32, np.float64) else np.float64)
    for a in range(0, n_genes, step):
        m = min(step, n_genes - a)
        block = buf[:m]
        block[...] = values[a:a + m]
        block.sort(axis=1)  # zeros first; NumPy's vectorised sort
        pick_sketch(block, frac, out[a:a + m], nnz[a:a + m])
    return out, nnz


def merge_quantiles(points: np.ndarray, nnz: np.ndarray, k: int) -> np.ndarray:
    """Merge per-shard sketches of genes into one reference of ``k`` points.

    Parameters
    ----------
    points : np.ndarray
        float32, shape (n_shards, n_genes, k_sketch), from :func:`sketch_nonzero`
        (NaN padded).
    nnz : np.ndarray
        int64, shape (n_shards, n_genes): non-zero values each sketch stands for.
    k : int
        Reference points per gene.

    Returns
    -------
    np.ndarray
        float32, shape (n_genes, k): per gene the merged non-zero values at
        ranks ``round(linspace(0, N - 1, k))`` of its N = sum(nnz) values,
        ascending; a gene with N <= k gets all values (exact) right-aligned
        after leading zeros (zeros are not reference points, see
        :func:`bin_against_reference`).

    Notes
    -----
    A sketch point of a shard with n non-zero values and m points stands for
    n / m values; the merged value at rank t is the point where the weighted
    cumulative count first exceeds t. When every shard's sketch is exact
    (m == n) this is the exact order statistic.
    """
    n_shards, n_genes, ks = points.shape
    out = np.zeros((n_genes, k), dtype=np.float32)
    flat = points.transpose(1, 0, 2).reshape(n_genes, n_shards * ks)
    m = np.sum(~np.isnan(points), axis=2)  # (n_shards, n_genes)
    w = np.where(m > 0, nnz / np.maximum(m, 1), 0.0).T  # (n_genes, n_shards)
    weights = np.repeat(w, ks, axis=1)
    weights[np.isnan(flat)] = 0.0
    order = np.argsort(np.where(np.isnan(flat), np.inf, flat), axis=1, kind="stable")
    srt = np.take_along_axis(flat, order, axis=1)
    cum = np.cumsum(np.take_along_axis(weights, order, axis=1), axis=1)
    total = nnz.sum(axis=0)
    for g in range(n_genes):
        n = int(total[g])
        if n == 0:
            continue
        kk = min(k, n)
        ranks = np.rint(np.linspace(0.0, n - 1, kk)) if kk > 1 else np.zeros(1)
        pos = np.searchsorted(cum[g], ranks + 0.5, side="left")
        out[g, k - kk:] = srt[g, np.minimum(pos, srt.shape[1] - 1)]
    return out


def bin_against_reference(values: np.ndarray, reference: np.ndarray, *, n_bins: int = 2000) -> np.ndarray:
    """Binning-By-Gene of samples that belong to the reference's population.

    For each gene the reference holds its non-zero values at evenly spaced
    ranks (zeros in ``reference`` are padding). A non-zero value v gets the
    fractional rank ``rho = interp(v, reference_nonzero, linspace(0, 1, m))``
    (0 at the smallest, 1 at the largest reference value) and
    ``bin = floor(rho * (n_bins - 1)) + 2`` capped at ``n_bins``: the exact
    formula ``floor(r * (n_bins - 1) / (nnz - 1)) + 2`` with r / (nnz - 1)
    estimated from the reference. Zeros get bin 1.

    Unlike :func:`generain.normalize.apply_bin_reference`, which bins *new*
    samples (the reference plus one value), this is for the samples the
    reference was built from, so an exact reference gives exact bins.

    Parameters
    ----------
    values : np.ndarray
        float, shape (n_genes, n_samples), log10(CP10M+1).
    reference : np.ndarray
        float32, shape (n_genes, k), rows ascending (from :func:`merge_quantiles`).
    n_bins : int

    Returns
    -------
    np.ndarray
        uint16, shape (n_genes, n_samples).
    """
    if values.shape[0] != reference.shape[0]:
        raise ValueError(f"values have {values.shape[0]} genes, the reference {reference.shape[0]}")
    m = np.count_nonzero(reference > 0, axis=1)  # rows ascending: the m non-zero points are the last m
    out = np.empty(values.shape, dtype=np.uint16)
    from .kernels import bin_rows  # numba: compiled (and cached) on first use

    bin_rows(np.ascontiguousarray(values), np.ascontiguousarray(reference), m.astype(np.int64), n_bins, out)
    return out


# ---------------------------------------------------------------------------
# pass 1
# ---------------------------------------------------------------------------

@dataclass
class ShardSketch:
    """Pass-1 summary of one shard, per matched source gene row.

    Attributes
    ----------
    gene_ids : np.ndarray
        str (n_rows,): unversioned Ensembl ids (may repeat: collisions).
    source_rows : np.ndarray
        int64 (n_rows,): row in the source file, ascending (pass 2 and the gather
        look rows up by binary search).
    totals : np.ndarray
        float64 (n_rows,): counts summed over the shard's passing samples.
    sums : np.ndarray
        float64 (n_rows,): log10(CP10M+1) summed over passing samples (NaN
        for rows not sketched).
    nnz : np.ndarray
        int64 (n_rows,): passing samples with a non-zero count (0 for rows
        not sketched).
    points : np.ndarray
        float32 (n_sketched, k): :func:`sketch_nonzero` of the passing
        samples, for the rows ``sketched``.
    n_passing : int
    sketched : np.ndarray
        int64 (n_sketched,), ascending: the rows (positions in ``gene_ids``)
        with sketches, those of the vocabulary biotypes (default all rows).
    values : np.ndarray
        float32 (n_sketched, n_passing): the sketched rows' log10(CP10M+1)
        of the passing samples, kept for pass 2 (:func:`write_scratch`); not
        part of the sketch file.
    """

    gene_ids: np.ndarray
    source_rows: np.ndarray
    totals: np.ndarray
    sums: np.ndarray
    nnz: np.ndarray
    points: np.ndarray
    n_passing: int
    symbols: np.ndarray | None = None
    biotypes: np.ndarray | None = None
    matrix_counts: np.ndarray | None = None
    matrix_samples: pd.DataFrame | None = None
    dataset: str = ""
    sketched: np.ndarray | None = None
    values: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.sketched is None:
            self.sketched = np.arange(len(self.gene_ids), dtype=np.int64)


def matrix_sample_mask(sample_ids: np.ndarray, *, fraction: float, seed: int) -> np.ndarray:
    """Seeded selection of samples for the streaming path's kept log10(CP10M+1) matrix.

    A sample is selected when ``crc32(f"{seed}:{sample_id}") / 2**32 < fraction``,
    so the selection depends only on the sample id and the seed, never on the
    sharding (a rerun with other shard sizes keeps the same samples).

    Parameters
    ----------
    sample_ids : np.ndarray
        str (n_samples,).
    fraction : float
        Expected fraction selected, 0..1 (1 selects every sample).
    seed : int

    Returns
    -------
    np.ndarray
        bool (n_samples,).
    """
    if fraction >= 1:
        return np.ones(len(sample_ids), dtype=bool)
    h = np.fromiter((zlib.crc32(f"{seed}:{s}".encode()) for s in sample_ids), dtype=np.uint64, count=len(sample_ids))
    return h < np.uint64(int(fraction * 2**32))


def _matched_rows(gene_ids: np.ndarray, genes: pd.DataFrame, source: PathLike,
                  id_type: str = "auto") -> tuple[np.ndarray, np.ndarray]:
    """Source rows whose id maps to the gene table, and their Ensembl ids (as :func:`harmonize_genes`)."""
    mapped, types = annotation.map_gene_ids(gene_ids, genes, id_type)
    rows = np.flatnonzero(np.array([m is not None for m in mapped], dtype=bool))
    if rows.size == 0:
        raise InputError(annotation.no_match_message(str(source), gene_ids, types, id_type))
    return rows, np.asarray([mapped[i] for i in rows], dtype=object)


def scan_shard(
    path: PathLike,
    start: int,
    stop: int,
    *,
    dataset: str,
    genes: pd.DataFrame | None,
    criteria: qc.QCCriteria,
    sketch_points: int,
    biotypes: list[str] | None = None,
    matrix_fraction: float = 0.0,
    seed: int = 0,
    id_type: str = "auto",
) -> tuple[pd.DataFrame, ShardSketch]:
    """Pass 1 on samples [start, stop) of an ARCHS4 file: QC table and gene sketch.

    Parameters
    ----------
    path : path-like
        ARCHS4 gene-count file.
    start, stop : int
        The shard's sample range.
    dataset : str
        Dataset name for the QC table.
    genes : pandas.DataFrame or None
        Gene table (ensembl_id, symbol, biotype); None: the file's own gene
        annotation (:func:`generain.annotation.gene_table_from_source`).
    criteria : QCCriteria
        GeneRAIN's sample QC.
    sketch_points : int
        Quantile-sketch points per gene.
    biotypes : list of str, optional
        Sketch (and keep values for pass 2) only rows of these biotypes, the
        vocabulary biotypes: no other gene can become a token. Every matched
        row still gets its total count (source-row collisions compare them).
        Default: every row.
    matrix_fraction, seed
        Passing samples selected by :func:`matrix_sample_mask` keep their
        counts (every matched gene row) in the sketch, for the subsampled
        log10(CP10M+1) matrix of the gather.

    Returns
    -------
    (pandas.DataFrame, ShardSketch)
        The QC table of the shard's samples (columns of
        :data:`generain.qc.QC_COLUMNS`) and the sketch of its passing samples
        (with ``values`` for :func:`write_scratch`).

    Raises
    ------
    InputError
        Unreadable file, or no gene id matching the annotation.
    """
    cm = read_archs4(path, sample_range=(start, stop), progress=False)
    if genes is None:
        genes = annotation.gene_table_from_source(cm, source=str(path))
    from .kernels import gather_kept, sample_totals

    total, detected = np.empty(cm.shape[1], np.int64), np.empty(cm.shape[1], np.int64)
    sample_totals(cm.counts, total, detected)  # qc.sample_stats in one pass (BENCHMARKS.md, issue 21 item 1)
    scp = cm.singlecell_probability if cm.singlecell_probability.size else np.full(cm.shape[1], np.nan, np.float32)
    series = cm.series_ids if cm.series_ids.size else np.full(cm.shape[1], "", dtype=object)
    table = qc.evaluate_samples(sample_ids=cm.sample_ids, dataset=np.full(cm.shape[1], dataset, dtype=object),
                                series_id=series, total_counts=total, detected_genes=detected,
                                singlecell_probability=scp, criteria=criteria)
    rows, ids = _matched_rows(cm.gene_ids, genes, path, id_type)
    annot = genes.drop_duplicates("ensembl_id").set_index("ensembl_id")
    row_biotypes = annot.loc[ids, "biotype"].to_numpy(dtype=object)
    sketched = (np.arange(rows.size, dtype=np.int64) if biotypes is None
                else np.flatnonzero(np.isin(row_biotypes, list(biotypes))).astype(np.int64))
    keep = table["passed"].to_numpy()
    # each matched row's total over the passing samples, and the passing samples' counts of the sketched rows
    slot = np.full(rows.size, -1, np.int64)
    slot[sketched] = np.arange(sketched.size)
    sel = np.empty((sketched.size, int(keep.sum())), dtype=cm.counts.dtype)
    row_totals = np.empty(rows.size, np.int64)
    gather_kept(cm.counts, rows.astype(np.int64), slot, np.flatnonzero(keep).astype(np.int64), row_totals, sel)
    totals = row_totals.astype(np.float64)
    values = normalize.cp10m_log10(sel, totals=total[keep])  # (n_sketched, 0) when no sample passed
    del sel
    points, nnz_sk = sketch_nonzero(values, sketch_points)
    sums = np.full(rows.size, np.nan)
    sums[sketched] = values.sum(axis=1, dtype=np.float64)
    nnz = np.zeros(rows.size, dtype=np.int64)
    nnz[sketched] = nnz_sk
    pick = keep & matrix_sample_mask(cm.sample_ids, fraction=matrix_fraction, seed=seed)
    sketch = ShardSketch(gene_ids=ids, source_rows=rows.astype(np.int64), totals=totals, sums=sums,
                         nnz=nnz, points=points, n_passing=int(keep.sum()),
                         symbols=annot.loc[ids, "symbol"].fillna("").to_numpy(dtype=object),
                         biotypes=row_biotypes,
                         matrix_counts=cm.counts[np.ix_(rows, np.flatnonzero(pick))],
                         matrix_samples=table.loc[pick, ["sample_id", "series_id", "total_counts"]].reset_index(drop=True),
                         dataset=dataset, sketched=sketched, values=values)
    return table, sketch


def write_sketch(sketch: ShardSketch, path: PathLike) -> None:
    """Write a :class:`ShardSketch` to HDF5 atomically (points uncompressed, chunked by gene rows).

    The points are not compressed: gzip level 1 took seconds per
    2,000-sample shard and saved little (218 MB against 269 MB uncompressed
    at 67,186 genes; BENCHMARKS.md, "ARCHS4 scale").
    """
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset("gene_ids", data=sketch.gene_ids.astype(object), dtype=h5py.string_dtype())
        for name in ("source_rows", "totals", "sums", "nnz", "sketched"):
            h5.create_dataset(name, data=getattr(sketch, name))
        rows = max(1, min(len(sketch.sketched), (1 << 20) // max(1, 4 * sketch.points.shape[1])))  # ~1 MB chunks
        h5.create_dataset("points", data=sketch.points,
                          chunks=(rows, sketch.points.shape[1]) if sketch.points.size else None)
        h5.attrs["n_passing"] = sketch.n_passing
        h5.attrs["dataset"] = sketch.dataset
        for name in ("symbols", "biotypes"):
            if getattr(sketch, name) is not None:
                h5.create_dataset(name, data=getattr(sketch, name).astype(object), dtype=h5py.string_dtype())
        if sketch.matrix_counts is not None and sketch.matrix_samples is not None:
            g = h5.create_group("matrix")
            g.create_dataset("counts", data=sketch.matrix_counts, compression="gzip", compression_opts=1)
            for c in ("sample_id", "series_id"):
                g.create_dataset(c, data=sketch.matrix_samples[c].astype(str).to_numpy(dtype=object),
                                 dtype=h5py.string_dtype())
            g.create_dataset("total_counts", data=sketch.matrix_samples["total_counts"].to_numpy(dtype=np.float64))


def write_scratch(sketch: ShardSketch, path: PathLike) -> None:
    """Write pass 1's values of the sketched rows for pass 2, atomically.

    ``path`` is a ``.npy`` file: float32 (n_sketched, n_passing), the
    log10(CP10M+1) of the rows ``sketch.sketched`` (in that order) for the
    shard's passing samples. Pass 2 reads it instead of inflating the ARCHS4
    file a second time (:func:`bin_shard`).
    """
    if sketch.values is None:
        raise ValueError("the sketch carries no values (scan_shard keeps them)")
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, np.ascontiguousarray(sketch.values, dtype=np.float32))


def read_sketch_matrix(path: PathLike, rows: np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
    """The counts a sketch file keeps for its selected samples (see :func:`scan_shard`).

    Parameters
    ----------
    path : path-like
        A :func:`write_sketch` file.
    rows : np.ndarray
        int64, positions among the sketch's gene rows to read (any order).

    Returns
    -------
    (np.ndarray, pandas.DataFrame)
        counts uint32 (len(rows), n_selected) and the samples (sample_id,
        dataset, series_id, total_counts); no columns when the file keeps no samples.
    """
    with h5py.File(path, "r") as h5:
        if "matrix" not in h5:
            return np.zeros((len(rows), 0), dtype=np.uint32), pd.DataFrame(
                {"sample_id": [], "dataset": [], "series_id": [], "total_counts": []})
        g = h5["matrix"]
        samples = pd.DataFrame({"sample_id": decode_strings(g["sample_id"][()]),
                                "dataset": str(h5.attrs.get("dataset", "")),
                                "series_id": decode_strings(g["series_id"][()]),
                                "total_counts": g["total_counts"][()]})
        counts = g["counts"][()][np.asarray(rows, dtype=np.int64)]
    return counts, samples


def _read_meta(path: PathLike, *, strings: bool = True) -> dict[str, np.ndarray]:
    """A sketch file's per-row arrays; ``strings=False`` skips the gene ids, symbols and biotypes."""
    with h5py.File(path, "r") as h5:
        out = {name: h5[name][()] for name in ("source_rows", "totals", "sums", "nnz")}
        if strings:
            out["gene_ids"] = decode_strings(h5["gene_ids"][()])
            for name in ("symbols", "biotypes"):
                out[name] = decode_strings(h5[name][()]) if name in h5 else None
        out["sketched"] = h5["sketched"][()] if "sketched" in h5 else np.arange(len(out["totals"]), dtype=np.int64)
        out["n_passing"] = int(h5.attrs["n_passing"])
        out["k"] = int(h5["points"].shape[1])
    return out


# ---------------------------------------------------------------------------
# gather
# ---------------------------------------------------------------------------

def merge_sketches(
    sketches: list[PathLike],
    *,
    genes: pd.DataFrame | None = None,
    biotypes: list[str],
    min_mean: float,
    deduplicate_by: str,
    reference_points: int,
    n_bins: int = 2000,
    memory_mb: float = 256.0,
    block: tuple[int, int] | None = None,
    merge_points: bool = True,
) -> tuple[pd.DataFrame, normalize.BinReference]:
    """Gather of pass 1: gene filters and the merged per-gene binning reference.

    Parameters
    ----------
    sketches : list of path-like
        :func:`write_sketch` files of every shard of one species (same source
        gene rows in each).
    genes : pandas.DataFrame, optional
        Gene table (ensembl_id, symbol, biotype); default: the symbols and
        biotypes the sketches carry (from the table pass 1 used).
    biotypes, min_mean, deduplicate_by
        As in :func:`generain.stages.normalize.normalize_counts`.
    reference_points : int
        Points per gene in the reference.
    n_bins : int
        Bins of the reference (GeneRAIN: 2,000).
    memory_mb : float
        Budget for the sketch block held at once; genes are merged in blocks
        of ``memory_mb / (n_shards * k_sketch * 40 bytes)`` (the merge holds about
        40 bytes per sketch point).
    block : (int, int), optional
        ``(b, n_blocks)``: merge only block b of the kept genes
        (:func:`gene_block`), for one of n_blocks parallel jobs; each gene's
        points do not depend on the other genes, so the blocks' references
        concatenated in order are the whole reference exactly.
    merge_points : bool
        False: the gene table only (the reference's values have 0 columns),
        for a gather whose blocks were merged by other jobs.

    Returns
    -------
    (pandas.DataFrame, BinReference)
        Every matched gene with ensembl_id, source_row (its row in the file),
        symbol, biotype, mean (NaN for genes pass 1 did not sketch: other
        biotypes), kept, reason (as ``normalize_counts`` writes
        ``genes.tsv``), ascending ensembl_id, and the
        reference of the kept genes (values float32 (n_kept, reference_points));
        with ``block``, of that block's kept genes.

    Raises
    ------
    InputError
        Shards that disagree on the source genes, no passing sample, or no gene left.
    """
    # one shard at a time, keeping running sums and the sketched rows' non-zero counts: memory grows by
    # 4 bytes per sketched gene and shard, not with each shard's metadata
    first = _read_meta(sketches[0])
    rows0, sketched, k_sketch = first["source_rows"], first["sketched"], first["k"]
    totals = np.zeros(rows0.size)
    sums = np.zeros(rows0.size)
    nnz = np.zeros((len(sketches), sketched.size), dtype=np.int32)  # per shard, sketched rows
    n_passing = 0
    for i, p in enumerate(sketches):
        m = first if i == 0 else _read_meta(p, strings=False)
        if (not np.array_equal(m["source_rows"], rows0) or m["k"] != k_sketch
                or not np.array_equal(m["sketched"], sketched)):
            raise InputError(f"{p}: its genes or sketch size differ from {sketches[0]}'s; all shards of a "
                             "species must come from files with the same genes")
        totals += m["totals"]
        sums += m["sums"]
        nnz[i] = m["nnz"][sketched]
        n_passing += m["n_passing"]
    if n_passing == 0:
        raise InputError(f"no sample passes QC in any of {len(sketches)} shards")
    ids = first["gene_ids"]
    means = sums / n_passing
    rows = annotation.largest_per_id(ids, totals)  # source rows colliding on one Ensembl id
    if genes is not None:
        table = genes.drop_duplicates("ensembl_id").set_index("ensembl_id")
        symbols = table.loc[ids[rows], "symbol"].to_numpy(dtype=object)
        gene_biotypes = table.loc[ids[rows], "biotype"].to_numpy(dtype=object)
    elif first["symbols"] is not None and first["biotypes"] is not None:
        symbols, gene_biotypes = first["symbols"][rows], first["biotypes"][rows]
    else:
        raise InputError(f"{sketches[0]}: the sketch carries no gene annotation; pass a gene table")
    out = pd.DataFrame({"ensembl_id": ids[rows], "source_row": rows0[rows],
                        "symbol": symbols, "biotype": gene_biotypes, "mean": means[rows]})
    out = out.sort_values("ensembl_id", kind="stable")
    rows = rows[out.index.to_numpy()]
    out = out.reset_index(drop=True)
    allowed = rows[out["biotype"].isin(list(biotypes)).to_numpy()]
    unsketched = ~np.isin(allowed, sketched)
    if unsketched.any():
        raise InputError(f"{sketches[0]}: {int(unsketched.sum())} genes of the vocabulary biotypes (e.g. "
                         f"{ids[allowed[unsketched][0]]}) have no sketch: pass 1 sketched other biotypes; "
                         "rerun scan_shard with these biotypes")
    reason = normalize.gene_filter_reasons(out, biotypes=biotypes, min_mean=min_mean, deduplicate_by=deduplicate_by)
    kept = reason == ""
    out["kept"] = kept
    out["reason"] = np.where(kept, "", reason)
    if not kept.any():
        raise InputError(f"no gene passes the normalization filters ({pd.Series(reason).value_counts().to_dict()})")
    kept_rows = rows[kept]  # positions in the sketch files
    pos = np.searchsorted(sketched, kept_rows)  # their rows among the sketched rows
    kept_ids = out.loc[kept, "ensembl_id"].to_numpy(dtype=object)
    if block is not None:
        part = gene_block(len(pos), *block)
        pos, kept_ids = pos[part], kept_ids[part]
    if not merge_points:
        return out, normalize.BinReference(kept_ids, np.zeros((pos.size, 0), np.float32), n_bins, n_passing)
    rows_per_read = max(1, int(memory_mb * 2**20 // (len(sketches) * k_sketch * 40)))  # ~40 B per point merged
    ref = np.zeros((pos.size, reference_points), dtype=np.float32)
    handles = [h5py.File(p, "r") for p in sketches]
    try:
        for b in range(0, pos.size, rows_per_read):
            sel = pos[b:b + rows_per_read]
            asc = np.sort(sel)  # h5py reads rows in increasing order; the genes are in Ensembl-id order
            pts = np.stack([h["points"][asc] for h in handles])[:, np.searchsorted(asc, sel)]
            ref[b:b + sel.size] = merge_quantiles(pts, nnz[:, sel], reference_points)
    finally:
        for h in handles:
            h.close()
    log.info("merged %d shard sketches: %d passing samples, %d of %d genes kept, reference %d points%s",
             len(sketches), n_passing, int(kept.sum()), len(out), reference_points,
             "" if block is None else f" (block {block[0] + 1} of {block[1]}: {len(pos)} genes)")
    return out, normalize.BinReference(kept_ids, ref, n_bins, n_passing)


def gene_block(n: int, block: int, n_blocks: int) -> slice:
    """The kept genes of merge block ``block`` of ``n_blocks``: contiguous, sizes differing by at most one.

    Raises
    ------
    ValueError
        If ``block`` is not in 0..n_blocks-1.
    """
    if not 0 <= block < n_blocks:
        raise ValueError(f"merge block {block} is outside 0..{n_blocks - 1}")
    return slice(block * n // n_blocks, (block + 1) * n // n_blocks)


# ---------------------------------------------------------------------------
# pass 2
# ---------------------------------------------------------------------------

def bin_shard(
    scratch: PathLike,
    *,
    sketch: PathLike,
    qc_table: pd.DataFrame,
    source_rows: np.ndarray,
    reference: normalize.BinReference,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Pass 2 on one shard: bins of its passing samples against the merged reference.

    Reads pass 1's values (:func:`write_scratch`), not the ARCHS4 file, so
    the file is inflated once.

    Parameters
    ----------
    scratch : path-like
        The shard's :func:`write_scratch` file.
    sketch : path-like
        The shard's :func:`write_sketch` file (which source rows the scratch holds).
    qc_table : pandas.DataFrame
        Pass 1's QC table of this shard (sample_id, passed, series_id).
    source_rows : np.ndarray
        int64 (n_kept_genes,): the file row of each reference gene
        (``source_row`` of the kept genes from :func:`merge_sketches`).
    reference : BinReference
        From :func:`merge_sketches`.

    Returns
    -------
    (np.ndarray, np.ndarray, pandas.DataFrame)
        bins uint16 (n_kept_genes, n_passing_samples) in the reference's gene
        order, their log10(CP10M+1) values float32 (same shape; for the
        expression tokens), and the passing samples (sample_id, series_id).

    Raises
    ------
    InputError
        If the scratch does not match the sketch or the QC table, or lacks a
        reference gene.
    """
    with h5py.File(sketch, "r") as h5:
        held = h5["source_rows"][()][h5["sketched"][()]]
    arr = np.load(scratch, mmap_mode="r")
    keep = qc_table["passed"].to_numpy()
    if arr.shape != (held.size, int(keep.sum())):
        raise InputError(f"{scratch}: shape {arr.shape}, but {sketch} sketches {held.size} genes and the QC table "
                         f"passes {int(keep.sum())} samples; rerun scan_shard for this shard")
    at = np.minimum(np.searchsorted(held, source_rows), max(held.size - 1, 0))  # held ascends: sorted source rows
    if not held.size or not np.array_equal(held[at], source_rows):
        raise InputError(f"{scratch}: lacks some of the reference's genes; rerun scan_shard with the same biotypes")
    asc = np.argsort(at, kind="stable")  # read the rows in file order, then put them in the reference's order
    values = np.empty((at.size, arr.shape[1]), dtype=np.float32)
    values[asc] = arr[at[asc]]
    bins = bin_against_reference(values, reference.values, n_bins=reference.n_bins)
    samples = qc_table.loc[keep, ["sample_id", "series_id"]].reset_index(drop=True)
    return bins, values, samples
