"""Reading bulk RNA-seq counts: ARCHS4 HDF5, GEO-style count tables, AnnData.

All readers return a :class:`CountMatrix` with genes as rows and samples as
columns (the ARCHS4 orientation). ARCHS4 files are read in blocks of samples
aligned to the dataset's chunk width: reading one sample column at a time
decompresses a whole chunk row per gene and is ~1,000x slower (DATA.md).
Unlike archs4py, a read error is raised, never returned as zeros.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp
from isal import isal_zlib
from tqdm.auto import tqdm

from .utils import InputError, atomic_path

log = logging.getLogger(__name__)

#: ARCHS4 field-name variants, in order of preference (DATA.md).
ARCHS4_GENE_FIELDS = {
    "ensembl_id": ("ensembl_gene_id", "ensembl_gene"),
    "symbol": ("symbol", "gene_symbol"),
    "biotype": ("biotype",),
}
ARCHS4_SAMPLE_FIELDS = {
    "sample_id": ("geo_accession",),
    "series_id": ("series_id",),
    "singlecell_probability": ("singlecellprobability",),
}


@dataclass
class CountMatrix:
    """Raw read counts of one dataset, genes x samples.

    Attributes
    ----------
    counts : np.ndarray
        uint32, shape (n_genes, n_samples), raw read counts.
    gene_ids : np.ndarray
        str, shape (n_genes,), gene ids as in the source (Ensembl, maybe versioned).
    sample_ids : np.ndarray
        str, shape (n_samples,), unique sample ids.
    symbols : np.ndarray or None
        str, shape (n_genes,), gene symbols if the source has them.
    series_ids : np.ndarray
        str, shape (n_samples,), the study each sample comes from ("" if unknown).
    singlecell_probability : np.ndarray
        float32, shape (n_samples,), ARCHS4's single-cell probability; NaN where
        the source does not provide it (the QC criterion is then not applied).
    biotypes : np.ndarray or None
        str, shape (n_genes,), gene biotypes if the source has them (ARCHS4's
        ``meta/genes/biotype``); used when a species has no gene table.
    """

    counts: np.ndarray
    gene_ids: np.ndarray
    sample_ids: np.ndarray
    symbols: np.ndarray | None = None
    series_ids: np.ndarray = field(default_factory=lambda: np.array([], dtype=object))
    singlecell_probability: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.float32))
    biotypes: np.ndarray | None = None

    def __post_init__(self) -> None:
        n_genes, n_samples = self.counts.shape
        if len(self.series_ids) == 0:
            self.series_ids = np.full(n_samples, "", dtype=object)
        if len(self.singlecell_probability) == 0:
            self.singlecell_probability = np.full(n_samples, np.nan, dtype=np.float32)
        if len(self.gene_ids) != n_genes or len(self.sample_ids) != n_samples:
            raise ValueError(
                f"CountMatrix: counts shape {self.counts.shape} does not match "
                f"{len(self.gene_ids)} gene ids and {len(self.sample_ids)} sample ids"
            )

    @property
    def shape(self) -> tuple[int, int]:
        return self.counts.shape  # type: ignore[return-value]


def require_unique_samples(sample_ids: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Raise if a counts file repeats a sample id.

    Parameters
    ----------
    sample_ids : np.ndarray
        str, shape (n_samples,), the file's sample ids in file order.
    path : path-like
        The file, named in the error.

    Raises
    ------
    InputError
        Naming the file and up to three repeated ids.
    """
    if len(set(sample_ids)) != len(sample_ids):
        dup = pd.Series(sample_ids).loc[lambda s: s.duplicated()].head(3).tolist()
        raise InputError(f"{path}: duplicated sample ids, e.g. {dup}")


def decode_strings(values: np.ndarray) -> np.ndarray:
    """HDF5 strings (bytes or str) -> object array of str."""
    if values.dtype.kind == "S" or (values.dtype == object and len(values) and isinstance(values[0], bytes)):
        return np.array([v.decode("utf-8") for v in values], dtype=object)
    return values.astype(object)


def _field(group: h5py.Group, names: tuple[str, ...], path: str, *, required: bool,
           rows: slice = slice(None)) -> np.ndarray | None:
    for name in names:
        if name in group:
            ds = group[name]
            values = ds[rows] if ds.shape else ds[()]  # a shard reads only its samples' slice
            return decode_strings(values) if ds.dtype.kind in "SOU" else values
    if required:
        raise InputError(f"{path}: ARCHS4 file has none of {', '.join(group.name + '/' + n for n in names)}")
    return None


def read_archs4_sample_ids(path: str | os.PathLike[str]) -> np.ndarray:
    """All sample ids (``meta/samples/geo_accession``) of an ARCHS4 file: object array of str.

    Raises
    ------
    InputError
        If the file cannot be read or has no sample ids.
    """
    try:
        with h5py.File(path, "r") as h5:
            samples = h5.get("meta/samples")
            if samples is None:
                raise InputError(f"{path}: missing group meta/samples")
            return _field(samples, ARCHS4_SAMPLE_FIELDS["sample_id"], str(path), required=True)
    except OSError as exc:
        raise InputError(f"{path}: not a readable HDF5 file ({exc})") from exc


def _deflate_only(ds: h5py.Dataset) -> bool:
    """Whether ``ds`` is chunked with the deflate (gzip) filter alone, the ARCHS4 layout."""
    if ds.chunks is None or ds.compression != "gzip" or ds.dtype.byteorder == ">":
        return False
    return ds.id.get_create_plist().get_nfilters() == 1


def read_deflate_block(ds: h5py.Dataset, first: int, last: int, out: np.ndarray) -> None:
    """Read columns [first, last) of a 2-D deflate-compressed dataset chunk by chunk into ``out``.

    Reads each chunk's stored bytes (``read_direct_chunk``) and inflates them
    with ISA-L (``isal.isal_zlib``, same output as zlib), skipping HDF5's
    filter pipeline: on ARCHS4's (1, 2000) chunks this is 2.1-2.4x as fast as
    ``ds[:, first:last]`` (BENCHMARKS.md, "ARCHS4 scale").

    Parameters
    ----------
    ds : h5py.Dataset
        2-D, chunked, deflate as its only filter (:func:`_deflate_only`).
    first, last : int
        Column range.
    out : np.ndarray
        shape (ds.shape[0], last - first), ds.dtype; filled in place.

    Raises
    ------
    OSError, RuntimeError, isal_zlib.error
        A chunk that cannot be read or inflated, or one never written (no
        storage, RuntimeError; the caller falls back to h5py, which applies
        the fill value).
    """
    n_rows = ds.shape[0]
    cr, cw = ds.chunks
    dsid, dtype, inflate = ds.id, ds.dtype, isal_zlib.decompress
    for cs in range((first // cw) * cw, last, cw):
        a, b = max(first, cs), min(last, cs + cw)
        for r in range(0, n_rows, cr):
            mask, raw = dsid.read_direct_chunk((r, cs))
            chunk = np.frombuffer(inflate(raw) if mask == 0 else raw, dtype=dtype).reshape(cr, cw)
            rows = min(cr, n_rows - r)
            out[r:r + rows, a - first:b - first] = chunk[:rows, a - cs:b - cs]


def read_archs4(
    path: str | os.PathLike[str],
    *,
    block_samples: int | None = None,
    sample_range: tuple[int, int] | None = None,
    progress: bool = True,
) -> CountMatrix:
    """Read an ARCHS4 gene-count HDF5 file (v2.x layout) into memory.

    Parameters
    ----------
    path : path-like
        ARCHS4 file: ``data/expression`` uint32, shape (n_genes, n_samples);
        ``meta/genes/{ensembl_gene_id|ensembl_gene, symbol|gene_symbol, biotype}``;
        ``meta/samples/{geo_accession, series_id, singlecellprobability}``.
    block_samples : int, optional
        Samples read per block. Rounded up to a multiple of the dataset's chunk
        width along samples; default 2,000 rounded that way.
    sample_range : (int, int), optional
        Read only samples [start, stop) (a shard); sample metadata is sliced
        to match. Default: all samples.
    progress : bool
        Show a tqdm bar over blocks.

    Returns
    -------
    CountMatrix
        counts uint32 (n_genes, n_samples).

    Raises
    ------
    InputError
        If the file is missing or not HDF5, a required field is absent, field
        lengths disagree with the matrix, or a block cannot be read (corrupt
        data), naming the file and the block.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    try:
        h5 = h5py.File(path, "r")
    except OSError as exc:
        raise InputError(f"{path}: not a readable HDF5 file ({exc})") from exc
    with h5:
        if "data/expression" not in h5:
            raise InputError(f"{path}: no dataset data/expression (not the ARCHS4 gene-count layout)")
        ds = h5["data/expression"]
        if ds.ndim != 2:
            raise InputError(f"{path}: data/expression has {ds.ndim} dimensions, expected 2 (genes x samples)")
        n_genes, n_samples = ds.shape
        genes = h5.get("meta/genes")
        samples = h5.get("meta/samples")
        if genes is None or samples is None:
            raise InputError(f"{path}: missing group meta/genes or meta/samples")
        ens = _field(genes, ARCHS4_GENE_FIELDS["ensembl_id"], str(path), required=False)
        sym = _field(genes, ARCHS4_GENE_FIELDS["symbol"], str(path), required=ens is None)
        bio = _field(genes, ARCHS4_GENE_FIELDS["biotype"], str(path), required=False)
        gene_ids = ens if ens is not None else sym
        if ens is not None and sym is not None and len(sym) == len(ens):
            # genes without an Ensembl id in the file fall back to their symbol
            gene_ids = np.where(np.asarray(ens, dtype=object) == "", np.asarray(sym, dtype=object), ens)
        first, last = sample_range if sample_range is not None else (0, n_samples)
        if not 0 <= first <= last <= n_samples:
            raise InputError(f"{path}: sample range {first}..{last} is outside 0..{n_samples}")
        for key, names in ARCHS4_SAMPLE_FIELDS.items():  # lengths from the shapes: a shard reads only its slice
            name = next((n for n in names if n in samples), None)
            if name is not None and samples[name].shape[:1] != (n_samples,):
                what = "sample ids" if key == "sample_id" else name
                raise InputError(f"{path}: {samples[name].shape[0]} {what} in meta but data/expression has "
                                 f"{n_samples} samples")
        sel = slice(first, last)
        sample_ids = _field(samples, ARCHS4_SAMPLE_FIELDS["sample_id"], str(path), required=True, rows=sel)
        series = _field(samples, ARCHS4_SAMPLE_FIELDS["series_id"], str(path), required=False, rows=sel)
        scp = _field(samples, ARCHS4_SAMPLE_FIELDS["singlecell_probability"], str(path), required=False, rows=sel)
        if len(gene_ids) != n_genes:
            raise InputError(f"{path}: {len(gene_ids)} gene ids in meta but data/expression has {n_genes} genes")
        for what, arr in (("symbols", sym), ("biotypes", bio)):
            if arr is not None and len(arr) != n_genes:
                raise InputError(f"{path}: {len(arr)} {what} but {n_genes} genes")
        width = ds.chunks[1] if ds.chunks else 1
        block = block_samples or 2000
        block = max(width, -(-block // width) * width)
        counts = np.empty((n_genes, last - first), dtype=np.uint32)
        starts = range(first, last, block)
        log.info("%s: reading %d genes x samples %d..%d in blocks of %d (chunks %s)",
                 path, n_genes, first, last, block, ds.chunks)
        fast = _deflate_only(ds)
        for start in tqdm(starts, desc=f"read {path.name}", unit="block", disable=not progress):
            stop = min(start + block, last)
            if fast:
                try:
                    read_deflate_block(ds, start, stop, counts[:, start - first:stop - first])
                    continue
                except (OSError, RuntimeError, ValueError, isal_zlib.error) as exc:
                    log.warning("%s: chunk-level read of samples %d..%d failed (%s); reading through HDF5",
                                path, start, stop - 1, exc)
            try:
                counts[:, start - first:stop - first] = ds[:, start:stop]
            except (OSError, RuntimeError) as exc:
                raise InputError(f"{path}: cannot read samples {start}..{stop - 1} of data/expression ({exc})") from exc
    return CountMatrix(
        counts=counts,
        gene_ids=np.asarray(gene_ids, dtype=object),
        sample_ids=np.asarray(sample_ids, dtype=object),
        symbols=None if sym is None else np.asarray(sym, dtype=object),
        series_ids=np.asarray(series, dtype=object) if series is not None else np.array([], dtype=object),
        singlecell_probability=(np.asarray(scp, dtype=np.float32) if scp is not None
                                else np.array([], dtype=np.float32)),
        biotypes=None if bio is None else np.asarray(bio, dtype=object),
    )


COUNT_KINDS = ("integer", "estimated")
"""Config ``datasets[].counts``: whole read counts, or estimated counts (RSEM, salmon, kallisto) to round."""


def _check_counts(values: np.ndarray, path: Path, counts: str = "integer") -> np.ndarray:
    """Validate a float/int matrix as non-negative, finite counts -> uint32.

    ``counts="integer"``: every value must be a whole number. ``"estimated"``
    (RSEM's expected counts, salmon's NumReads, kallisto's est_counts, at gene
    level): values are rounded to the nearest whole number, halves to even
    (``numpy.rint``; R's ``round``, IEC 60559), as ARCHS4 rounds the sums of
    kallisto's transcript estimates to gene counts (Lachmann et al., Nat
    Commun 2018, Methods).
    """
    if counts not in COUNT_KINDS:
        raise InputError(f"{path}: unknown counts kind {counts!r}; expected one of {list(COUNT_KINDS)}")
    if values.dtype.kind in "iu":
        if values.size and values.min() < 0:
            raise InputError(f"{path}: counts contain negative values (min {values.min()})")
        if values.size and values.max() > np.iinfo(np.uint32).max:
            raise InputError(f"{path}: counts exceed the uint32 range")
        return values.astype(np.uint32)
    if values.dtype.kind != "f":
        raise InputError(f"{path}: counts are not numeric (dtype {values.dtype})")
    if not np.isfinite(values).all():
        bad = int((~np.isfinite(values)).sum())
        raise InputError(f"{path}: counts contain {bad} missing or non-finite values")
    if values.size and values.min() < 0:
        raise InputError(f"{path}: counts contain negative values (min {values.min():g})")
    frac = values != np.round(values)
    if frac.any() and counts == "estimated":
        log.info("%s: %d of %d estimated counts rounded to whole numbers (halves to even)", path, int(frac.sum()),
                 values.size)
        values = np.rint(values)
    elif frac.any():
        i, j = np.argwhere(frac)[0]
        raise InputError(
            f"{path}: counts must be whole numbers of reads; {int(frac.sum())} values are not "
            f"(first: {values[i, j]:g} at row {i}, column {j}). For estimated counts (RSEM, salmon, kallisto) "
            "set the dataset's counts: estimated to round them; normalized values (TPM, FPKM) are not accepted"
        )
    if values.size and values.max() > np.iinfo(np.uint32).max:
        raise InputError(f"{path}: counts exceed the uint32 range")
    return values.astype(np.uint32)


def read_count_table(path: str | os.PathLike[str], *, sep: str | None = None, counts: str = "integer") -> CountMatrix:
    """Read a GEO-style count matrix: genes x samples, first column gene ids.

    Parameters
    ----------
    path : path-like
        ``.tsv``/``.txt``/``.csv``, optionally ``.gz``. Header row holds the
        sample ids; each following row a gene id then one count per sample.
    sep : str, optional
        Field separator; default ``,`` for ``.csv[.gz]``, tab otherwise.
    counts : str
        ``integer`` (whole numbers required) or ``estimated`` (rounded;
        :data:`COUNT_KINDS`).

    Returns
    -------
    CountMatrix
        counts uint32 (n_genes, n_samples).

    Raises
    ------
    InputError
        Missing file, unparsable table, non-numeric, negative, non-integer or
        missing counts, duplicated sample ids.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    if sep is None:
        sep = "," if ".csv" in path.suffixes else "\t"
    try:
        df = pd.read_csv(path, sep=sep, index_col=0)
        raw_header = pd.read_csv(path, sep=sep, header=None, nrows=1).iloc[0, 1:].astype(str).tolist()
    except Exception as exc:  # pandas raises many types for bad files
        raise InputError(f"{path}: cannot parse as a {sep!r}-separated count table ({exc})") from exc
    dups = sorted({h for h in raw_header if raw_header.count(h) > 1})
    if dups:
        raise InputError(f"{path}: duplicated sample ids in the header: {dups[:5]}")
    summary_rows = df.index.astype(str).str.startswith("__")
    if summary_rows.any():  # HTSeq-count's __no_feature, __ambiguous, ... are not genes
        log.info("%s: dropping %d summary rows (%s)", path, int(summary_rows.sum()),
                 ", ".join(df.index[summary_rows].astype(str)[:5]))
        df = df.loc[~summary_rows]
    if df.shape[1] == 0:
        raise InputError(f"{path}: no sample columns found (separator {sep!r})")
    non_numeric = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if non_numeric:
        raise InputError(f"{path}: sample columns are not numeric: {', '.join(map(str, non_numeric[:5]))}")
    values = _check_counts(df.to_numpy(), path, counts)
    return CountMatrix(
        counts=values,
        gene_ids=df.index.astype(str).to_numpy(dtype=object),
        sample_ids=df.columns.astype(str).to_numpy(dtype=object),
    )


def read_h5ad(path: str | os.PathLike[str], *, gene_id_column: str | None = None,
              counts: str = "integer") -> CountMatrix:
    """Read raw counts from an AnnData ``.h5ad`` file (samples x genes in ``X``).

    Parameters
    ----------
    path : path-like
        AnnData file; ``X`` holds whole-number counts, obs are samples.
    gene_id_column : str, optional
        Column of ``var`` holding gene ids; default ``var_names``.
    counts : str
        ``integer`` or ``estimated`` (as :func:`read_count_table`).

    Returns
    -------
    CountMatrix
        counts uint32 (n_genes, n_samples) — transposed from AnnData's layout.

    Raises
    ------
    InputError
        Missing/unreadable file, missing column, invalid counts.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    try:
        import anndata as ad  # only this reader needs it; keeps other jobs' start-up short

        adata = ad.read_h5ad(path)
    except Exception as exc:
        raise InputError(f"{path}: not a readable AnnData file ({exc})") from exc
    x = adata.X
    x = x.toarray() if sp.issparse(x) else np.asarray(x)
    values = _check_counts(x.T, path, counts)
    if gene_id_column is None:
        gene_ids = adata.var_names.to_numpy(dtype=object)
    elif gene_id_column in adata.var:
        gene_ids = adata.var[gene_id_column].astype(str).to_numpy(dtype=object)
    else:
        raise InputError(f"{path}: var has no column {gene_id_column!r} (has {list(adata.var.columns)})")
    return CountMatrix(counts=values, gene_ids=gene_ids, sample_ids=adata.obs_names.to_numpy(dtype=object))


def read_counts(path: str | os.PathLike[str], fmt: str, counts: str = "integer", **kwargs: object) -> CountMatrix:
    """Dispatch on ``fmt`` (``archs4``, ``table``, ``h5ad``) to the readers above.

    ``counts`` (:data:`COUNT_KINDS`) goes to the table and AnnData readers;
    ARCHS4 files hold whole counts (integer datasets) already.
    """
    readers = {"archs4": read_archs4, "table": read_count_table, "h5ad": read_h5ad}
    if fmt not in readers:
        raise InputError(f"unknown dataset format {fmt!r}; expected one of {sorted(readers)}")
    if fmt != "archs4":
        kwargs["counts"] = counts
    return readers[fmt](path, **kwargs)  # type: ignore[operator]


# ---------------------------------------------------------------------------
# The workflow's own gene x sample matrix files (HDF5)
# ---------------------------------------------------------------------------

def write_matrix(
    path: str | os.PathLike[str],
    matrix: np.ndarray,
    *,
    genes: dict[str, np.ndarray],
    samples: dict[str, np.ndarray],
    attrs: dict[str, object] | None = None,
) -> None:
    """Write a genes x samples matrix with gene and sample annotations, atomically.

    Layout: ``/matrix`` (shape (n_genes, n_samples)), ``/genes/<column>`` and
    ``/samples/<column>`` (strings as UTF-8, numbers as is), attributes on ``/``.
    """
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w", track_order=True) as h5:
            chunks = (min(matrix.shape[0], 256), min(matrix.shape[1], 2000)) if matrix.size else None
            h5.create_dataset("matrix", data=matrix, chunks=chunks, compression="gzip" if matrix.size else None,
                              compression_opts=1 if matrix.size else None)
            for group, cols in (("genes", genes), ("samples", samples)):
                g = h5.create_group(group)
                for name, values in cols.items():
                    values = np.asarray(values)
                    if values.dtype.kind in "OUS":
                        g.create_dataset(name, data=values.astype(object), dtype=h5py.string_dtype())
                    else:
                        g.create_dataset(name, data=values)
            for k, v in (attrs or {}).items():
                h5.attrs[k] = v


@dataclass
class Matrix:
    """A genes x samples matrix read back from :func:`write_matrix`."""

    matrix: np.ndarray
    genes: pd.DataFrame
    samples: pd.DataFrame
    attrs: dict[str, object]


def read_matrix(path: str | os.PathLike[str]) -> Matrix:
    """Read a file written by :func:`write_matrix`."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: file not found")
    with h5py.File(path, "r") as h5:
        return Matrix(h5["matrix"][()], _group_frame(h5["genes"]), _group_frame(h5["samples"]), dict(h5.attrs))


def _group_frame(group: h5py.Group) -> pd.DataFrame:
    return pd.DataFrame({k: (decode_strings(v[()]) if v.dtype.kind in "SOU" else v[()]) for k, v in group.items()})


def read_samples(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, dict[str, object]]:
    """The sample table and file attributes of a :func:`write_matrix` file, without the matrix."""
    if not Path(path).exists():
        raise InputError(f"{path}: file not found")
    with h5py.File(path, "r") as h5:
        return _group_frame(h5["samples"]), dict(h5.attrs)
