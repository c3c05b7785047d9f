"""Gene annotation: the gene table, id harmonisation, gene sets, orthologs.

The bundled snapshot (``resources/annotation``, built by
``resources/build_resources.py``) is the default source. ``refresh_gene_table``
optionally queries MyGene.info through the ``mygene`` client.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import polars as pl

import numpy as np
import pandas as pd

from .io import CountMatrix
from .utils import InputError, strip_version

log = logging.getLogger(__name__)

GENE_TABLE_COLUMNS = ("ensembl_id", "symbol", "biotype", "entrez_id")
GENE_SET_COLUMNS = ("source", "term_id", "term_name", "ensembl_id")


def read_gene_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read the gene table (TSV, optionally gzipped).

    Returns
    -------
    pandas.DataFrame
        One row per gene, columns ensembl_id (unversioned, unique), symbol,
        biotype (GENCODE gene_type), entrez_id (nullable Int64).

    Raises
    ------
    InputError
        Missing file, missing column, or duplicated ensembl_id.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: gene table not found")
    df = pd.read_csv(path, sep="\t", dtype={"ensembl_id": str, "symbol": str, "biotype": str})
    missing = [c for c in GENE_TABLE_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{path}: gene table lacks column(s) {missing}; has {list(df.columns)}")
    if df["ensembl_id"].duplicated().any():
        dup = df.loc[df["ensembl_id"].duplicated(), "ensembl_id"].head(3).tolist()
        raise InputError(f"{path}: duplicated ensembl_id values, e.g. {dup}")
    df["entrez_id"] = df["entrez_id"].astype("Int64")
    df["symbol"] = df["symbol"].fillna("")
    return df[list(GENE_TABLE_COLUMNS)].reset_index(drop=True)


def gene_table_from_source(cm: CountMatrix, *, source: str = "dataset") -> pd.DataFrame:
    """A gene table made of a dataset's own gene annotation (for species without a bundled table).

    ARCHS4 files carry each gene's Ensembl id, symbol and biotype
    (``meta/genes``); the mouse files are annotated this way, as no mouse gene
    table ships with the workflow.

    Parameters
    ----------
    cm : CountMatrix
        A dataset with ``gene_ids`` (Ensembl, maybe versioned), ``symbols`` and ``biotypes``.
    source : str
        Name used in messages.

    Returns
    -------
    pandas.DataFrame
        Columns of :data:`GENE_TABLE_COLUMNS` (entrez_id empty), one row per
        distinct unversioned Ensembl id (the first occurrence's symbol and biotype).

    Raises
    ------
    InputError
        If the dataset has no biotypes or no Ensembl gene ids.
    """
    if cm.biotypes is None:
        raise InputError(f"{source}: no gene biotypes in the file (ARCHS4 meta/genes/biotype) and no gene table "
                         "for its species; set annotation.mouse_gene_table")
    ids = np.array([strip_version(str(g)) for g in cm.gene_ids], dtype=object)
    ens = np.array([bool(ENSEMBL_GENE_ID.match(g)) for g in ids])
    if not ens.any():
        raise InputError(f"{source}: none of its gene ids is an Ensembl gene id (first: {list(cm.gene_ids[:3])}); "
                         "set annotation.mouse_gene_table")
    sym = cm.symbols if cm.symbols is not None else np.full(len(ids), "", dtype=object)
    table = pd.DataFrame({"ensembl_id": ids[ens], "symbol": np.asarray(sym, dtype=object)[ens],
                          "biotype": np.asarray(cm.biotypes, dtype=object)[ens],
                          "entrez_id": pd.array([pd.NA] * int(ens.sum()), dtype="Int64")})
    table["symbol"] = table["symbol"].fillna("").astype(str)
    return table.drop_duplicates("ensembl_id").reset_index(drop=True)


ID_TYPES = ("ensembl", "symbol", "entrez", "symbol_entrez")
"""Gene id types a dataset may use (config ``datasets[].id_type``; ``auto`` classifies each id)."""

_ENTREZ = re.compile(r"^\d+$")
_SYMBOL_ENTREZ = re.compile(r"^[^|]+\|\d+$")


def classify_gene_ids(gene_ids: np.ndarray) -> np.ndarray:
    """The id type of each gene id, as ``id_type: auto`` reads it.

    Ensembl gene ids (``ENS[species]G`` + digits, any version suffix);
    ``SYMBOL|ENTREZ`` (TCGA's legacy ids, ``?`` for an unknown symbol); whole
    numbers (NCBI GeneID, as in GEO's generated count matrices); anything
    else is a symbol.

    Parameters
    ----------
    gene_ids : np.ndarray
        str (n_genes,).

    Returns
    -------
    np.ndarray
        object (n_genes,), values of :data:`ID_TYPES`.
    """
    ids = [str(g) for g in gene_ids]
    return np.array(["ensembl" if ENSEMBL_GENE_ID.match(g) else "symbol_entrez" if _SYMBOL_ENTREZ.match(g)
                     else "entrez" if _ENTREZ.match(g) else "symbol" for g in ids], dtype=object)


def describe_id_types(types: np.ndarray) -> str:
    """One log line on how ``id_type: auto`` read a file's ids, e.g. ``"20530 entrez (NCBI GeneID)"``."""
    labels = {"ensembl": "Ensembl gene ids", "symbol": "symbols", "entrez": "NCBI GeneIDs (whole numbers)",
              "symbol_entrez": "SYMBOL|ENTREZ ids"}
    kinds, counts = np.unique(np.asarray(types, dtype=str), return_counts=True)
    return ", ".join(f"{int(n)} {labels[k]}" for k, n in sorted(zip(kinds, counts), key=lambda t: -t[1]))


def map_gene_ids(
    gene_ids: np.ndarray, genes: pd.DataFrame, id_type: str = "auto"
) -> tuple[list[str | None], np.ndarray]:
    """Unversioned Ensembl id of each source gene id, or None (the matching of :func:`harmonize_genes`).

    By id type: ``ensembl`` ids match after stripping the version suffix;
    ``symbol`` ids match symbols that are unique in the gene table;
    ``entrez`` ids match entrez_id values unique in the gene table;
    ``symbol_entrez`` ids (``SYMBOL|ENTREZ``) match by the Entrez part, and
    by the symbol when that does not match and the symbol is not ``?``.
    With ``id_type="auto"`` each id is read as :func:`classify_gene_ids` says.

    Parameters
    ----------
    gene_ids : np.ndarray
        str (n_genes,): the file's gene ids.
    genes : pandas.DataFrame
        The gene table (:func:`read_gene_table`).
    id_type : str
        ``auto`` or one of :data:`ID_TYPES`.

    Returns
    -------
    (list of str or None, np.ndarray)
        Per id its Ensembl id or None, and its id type (object (n_genes,)).

    Raises
    ------
    InputError
        If ``id_type`` is not ``auto`` or one of :data:`ID_TYPES`.
    """
    if id_type != "auto" and id_type not in ID_TYPES:
        raise InputError(f"unknown gene id type {id_type!r}; expected auto or one of {list(ID_TYPES)}")
    types = classify_gene_ids(gene_ids) if id_type == "auto" else np.full(len(gene_ids), id_type, dtype=object)
    ens_index = set(genes["ensembl_id"])
    sym_counts = genes["symbol"].value_counts()
    unique_sym = genes.loc[genes["symbol"].map(sym_counts) == 1].set_index("symbol")["ensembl_id"].to_dict()
    entrez = genes.dropna(subset=["entrez_id"])
    ent_counts = entrez["entrez_id"].value_counts()
    unique_ent = {str(int(k)): v for k, v in
                  entrez.loc[entrez["entrez_id"].map(ent_counts) == 1].set_index("entrez_id")["ensembl_id"].items()}
    mapped: list[str | None] = []
    for gid, kind in zip(gene_ids, types):
        gid = str(gid)
        if kind == "ensembl":
            sid = strip_version(gid)
            mapped.append(sid if sid in ens_index else None)
        elif kind == "symbol":
            mapped.append(unique_sym.get(gid))
        elif kind == "entrez":
            mapped.append(unique_ent.get(gid.strip()))
        else:
            symbol, _, ent = gid.rpartition("|")
            hit = unique_ent.get(ent.strip())
            mapped.append(hit if hit is not None or symbol in ("", "?") else unique_sym.get(symbol))
    return mapped, types


def largest_per_id(ids: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """Rows to keep when several source rows map to one Ensembl id: the largest total count.

    Parameters
    ----------
    ids : np.ndarray
        str, shape (n_rows,): mapped Ensembl ids (may repeat).
    totals : np.ndarray
        numeric, shape (n_rows,): each row's total count.

    Returns
    -------
    np.ndarray
        int64 row positions, ascending, one per distinct id (ties: the first row).
    """
    ids = np.asarray(ids, dtype=object).astype(str)
    order = np.lexsort((-np.asarray(totals, dtype=np.float64), ids))
    first = np.ones(len(order), dtype=bool)
    first[1:] = ids[order][1:] != ids[order][:-1]
    return np.sort(order[first]).astype(np.int64)


def matching_report(gene_ids: np.ndarray, mapped: list[str | None], types: np.ndarray | None = None,
                    id_type: str = "auto") -> dict[str, Any]:
    """How a file's gene ids matched the annotation (the ingest report's ``genes``).

    Parameters
    ----------
    gene_ids : np.ndarray
        str (n_rows,): the file's gene ids.
    mapped, types
        :func:`map_gene_ids` of them (``types`` None: the report has no
        per-type counts).
    id_type : str
        The dataset's configured id type (reported as given).

    Returns
    -------
    dict
        genes_in_source, matched, unmatched, collapsed_duplicates (matched rows
        beyond the first on one Ensembl id; one row per id is kept),
        examples_unmatched (up to 5 ids); with ``types`` also id_type and
        by_id_type ({type: {ids, matched, unmatched, collapsed_duplicates}}).
    """
    ok = np.array([m is not None for m in mapped], dtype=bool)
    n_matched = int(ok.sum())
    report: dict[str, Any] = {
        "genes_in_source": int(len(mapped)),
        "matched": n_matched,
        "unmatched": int(len(mapped) - n_matched),
        "collapsed_duplicates": n_matched - len({m for m in mapped if m is not None}),
        "examples_unmatched": [str(g) for g in np.asarray(gene_ids, dtype=object)[~ok][:5]],
    }
    if types is not None:
        report["id_type"] = id_type
        report["by_id_type"] = {}
        types = np.asarray(types, dtype=object)
        for kind in ID_TYPES:
            sel = types == kind
            if not sel.any():
                continue
            hits = [m for m, s in zip(mapped, sel) if s and m is not None]
            report["by_id_type"][kind] = {"ids": int(sel.sum()), "matched": len(hits),
                                          "unmatched": int(sel.sum()) - len(hits),
                                          "collapsed_duplicates": len(hits) - len(set(hits))}
    return report


def harmonize_genes(
    cm: CountMatrix, genes: pd.DataFrame, *, source: str = "dataset", id_type: str = "auto",
    annotation_name: str = "the gene table",
) -> tuple[CountMatrix, dict[str, Any]]:
    """Map a dataset's gene ids onto the gene table's unversioned Ensembl ids.

    Ids are matched by their type (:func:`map_gene_ids`: Ensembl ids without
    version, unique symbols, unique Entrez ids, or ``SYMBOL|ENTREZ``; with
    ``id_type="auto"`` read from each id and logged). Rows that match nothing
    are dropped. When several rows map to one Ensembl id, the row with the
    largest total count is kept.

    Parameters
    ----------
    cm : CountMatrix
        counts uint32 (n_genes, n_samples) with source gene ids.
    genes : pandas.DataFrame
        The gene table from :func:`read_gene_table`.
    source : str
        Name used in messages (file path or dataset name).
    id_type : str
        ``auto`` or one of :data:`ID_TYPES` (config ``datasets[].id_type``).
    annotation_name : str
        The gene table's source (a file), named in the error.

    Returns
    -------
    (CountMatrix, dict)
        The matrix restricted to matched genes, ``gene_ids`` replaced by
        Ensembl ids and ``symbols`` by the table's symbols (rows in the order
        of the input), and the report of :func:`matching_report`.

    Raises
    ------
    InputError
        If no gene id matches the annotation.
    """
    mapped, types = map_gene_ids(cm.gene_ids, genes, id_type)
    if id_type == "auto":
        log.info("%s: gene ids read as %s (id_type: auto)", source, describe_id_types(types))
    mapped_arr = np.array(mapped, dtype=object)
    ok = np.array([m is not None for m in mapped], dtype=bool)
    n_in = len(mapped_arr)
    if not ok.any():
        raise InputError(no_match_message(source, cm.gene_ids, types, id_type, annotation_name))
    rows = np.flatnonzero(ok)
    totals = cm.counts[rows].sum(axis=1, dtype=np.uint64)
    keep = rows[largest_per_id(mapped_arr[rows], totals)]
    sym = genes.set_index("ensembl_id").loc[mapped_arr[keep], "symbol"].to_numpy(dtype=object)
    report = matching_report(cm.gene_ids, mapped, types, id_type)
    collapsed = report["collapsed_duplicates"]
    log.info("%s: %d of %d gene ids matched the annotation (%d unmatched, %d duplicates collapsed)",
             source, report["matched"], n_in, report["unmatched"], collapsed)
    out = CountMatrix(
        counts=cm.counts[keep],
        gene_ids=mapped_arr[keep],
        sample_ids=cm.sample_ids,
        symbols=sym,
        series_ids=cm.series_ids,
        singlecell_probability=cm.singlecell_probability,
    )
    return out, report


def no_match_message(source: str, gene_ids: np.ndarray, types: np.ndarray, id_type: str,
                     annotation_name: str = "the gene table") -> str:
    """The error when none of a file's gene ids matches the gene table: the ids, how they were read, what to set."""
    return (f"{source}: none of its {len(gene_ids)} gene ids match the annotation ({annotation_name}; read as "
            f"{describe_id_types(types)}; id_type: {id_type}; first ids: {', '.join(map(str, gene_ids[:5]))}); "
            "set the dataset's id_type (ensembl, symbol, entrez or symbol_entrez) or a gene table of its species")


ENSEMBL_GENE_ID = re.compile(r"^ENS[A-Z]*G\d+")


def read_gene_sets(path: str | os.PathLike[str], *, gene_table: pd.DataFrame | None = None,
                   terms: pd.DataFrame | None = None) -> pl.DataFrame:
    """Read gene-property sets as a long table (polars categoricals: the bundled 1.76M rows in ~30 MB).

    Parameters
    ----------
    path : path-like
        Parquet or TSV with columns source, term_id, term_name, ensembl_id; or a
        GMT file (``.gmt``: term, description, genes...) whose source is the
        file's stem.
    gene_table : pandas.DataFrame, optional
        The gene table (columns ensembl_id, symbol), e.g. from
        :func:`read_gene_table`. Used for GMT files only: their entries that do
        not look like Ensembl gene ids (``^ENS[A-Z]*G\\d+``) are taken as gene
        symbols (as in MSigDB or Enrichr files) and mapped to the Ensembl id
        of the table row with that symbol. Symbols the table does not know, or
        that several Ensembl ids share, are dropped with a warning. Without
        ``gene_table`` GMT entries are kept as given.
    terms : pandas.DataFrame, optional
        source and term_id of the sets wanted: only their rows are kept
        (parquet and TSV are scanned lazily, so the other rows are never held).

    Returns
    -------
    polars.DataFrame
        Columns source, term_id, term_name, ensembl_id (unversioned), all
        Categorical, rows in the file's order. A repeated row (also one
        repeated once versions are stripped) is kept: every consumer counts
        a (set, gene) pair once (:func:`generain.sweep.property_catalogue`,
        :func:`generain.sweep.memberships`), and not de-duplicating 1.76M
        rows saves ~0.3 GB.

    Raises
    ------
    InputError
        Missing file, a table lacking one of the columns, or a ``gene_table``
        without ensembl_id and symbol.
    """
    import polars as pl  # only the jobs that read gene sets load it (~0.2 s)

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: gene-set file not found")
    if path.suffix == ".gmt":
        rows = []
        for line in path.read_text().splitlines():
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                continue
            rows += [(path.stem, parts[0], parts[1], g) for g in parts[2:] if g]
        gmt = pd.DataFrame(rows, columns=list(GENE_SET_COLUMNS))
        if gene_table is not None:
            gmt = _symbols_to_ensembl(gmt, gene_table, source=path.name)
        lf = (pl.from_pandas(gmt.astype(str)) if len(gmt)
              else pl.DataFrame(schema=dict.fromkeys(GENE_SET_COLUMNS, pl.String))).lazy()
    elif path.suffix == ".parquet":
        lf = pl.scan_parquet(path)
    else:
        lf = pl.scan_csv(path, separator="\t", infer_schema=False)
    missing = [c for c in GENE_SET_COLUMNS if c not in lf.collect_schema().names()]
    if missing:
        raise InputError(f"{path}: gene-set table lacks column(s) {missing}")
    if terms is not None:
        wanted = pl.DataFrame({"source": terms["source"].astype(str).to_numpy(),
                               "term_id": terms["term_id"].astype(str).to_numpy()},
                              schema={"source": pl.String, "term_id": pl.String}).lazy()
        lf = (lf.with_columns(pl.col("source", "term_id").cast(pl.String))
                .join(wanted, on=["source", "term_id"], how="semi"))
    df = lf.collect(engine="streaming")
    # strip_version, vectorised: drop the first "." and what follows up to a "_" (ENSG1.5 -> ENSG1,
    # ENSG2.20_PAR_Y -> ENSG2_PAR_Y)
    return df.select([pl.col(c).cast(pl.String).str.replace(r"\.[^_]*", "").cast(pl.Categorical)
                      if c == "ensembl_id" else pl.col(c).cast(pl.Categorical) for c in GENE_SET_COLUMNS])


def _symbols_to_ensembl(df: pd.DataFrame, gene_table: pd.DataFrame, *, source: str) -> pd.DataFrame:
    """Map the non-Ensembl entries of a GMT long table from symbols to Ensembl ids.

    Parameters
    ----------
    df : pandas.DataFrame
        Long table (source, term_id, term_name, ensembl_id) whose ensembl_id
        column holds Ensembl ids or gene symbols.
    gene_table : pandas.DataFrame
        Columns ensembl_id, symbol.
    source : str
        File name used in messages.

    Returns
    -------
    pandas.DataFrame
        ``df`` with symbols replaced by Ensembl ids; rows with unknown or
        ambiguous symbols dropped (logged as a warning with counts and examples).
    """
    missing = [c for c in ("ensembl_id", "symbol") if c not in gene_table.columns]
    if missing:
        raise InputError(f"{source}: gene_table lacks column(s) {missing}; has {list(gene_table.columns)}")
    table = gene_table[["ensembl_id", "symbol"]].dropna().astype(str)
    table = table[table["symbol"] != ""].drop_duplicates()
    n_ids = table.groupby("symbol")["ensembl_id"].nunique()
    unique_sym = table[table["symbol"].map(n_ids) == 1].drop_duplicates("symbol").set_index("symbol")["ensembl_id"]
    entry = df["ensembl_id"].astype(str)
    is_symbol = ~entry.str.match(ENSEMBL_GENE_ID.pattern)
    mapped = entry[is_symbol].map(unique_sym)
    ambiguous = is_symbol & entry.map(n_ids).gt(1)
    unknown = is_symbol & ~entry.isin(n_ids.index)
    n_mapped = int(mapped.notna().sum())
    if ambiguous.any() or unknown.any():
        unk, amb = entry[unknown].unique(), entry[ambiguous].unique()
        log.warning(
            "%s: dropped %d gene-set entries whose symbols could not be mapped to one Ensembl id: "
            "%d unknown symbol(s) (%d entries, e.g. %s), %d ambiguous symbol(s) (%d entries, e.g. %s); "
            "%d symbol entries mapped",
            source, int(unknown.sum() + ambiguous.sum()), len(unk), int(unknown.sum()), ", ".join(unk[:5]) or "-",
            len(amb), int(ambiguous.sum()), ", ".join(amb[:5]) or "-", n_mapped)
    elif n_mapped:
        log.info("%s: %d gene-set entries mapped from symbols to Ensembl ids", source, n_mapped)
    out = df.copy()
    out.loc[is_symbol, "ensembl_id"] = mapped
    return out[out["ensembl_id"].notna()].reset_index(drop=True)


def read_orthologs(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read one-to-one human-mouse orthologs.

    Returns
    -------
    pandas.DataFrame
        Columns human_ensembl_id, mouse_ensembl_id (+ symbols if present);
        each human and each mouse id appears once.

    Raises
    ------
    InputError
        Missing columns or an id that appears in more than one pair.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: ortholog table not found")
    df = pd.read_csv(path, sep="\t", dtype=str)
    for col in ("human_ensembl_id", "mouse_ensembl_id"):
        if col not in df.columns:
            raise InputError(f"{path}: ortholog table lacks column {col!r}")
        if df[col].duplicated().any():
            raise InputError(f"{path}: {col} is not one-to-one (e.g. {df.loc[df[col].duplicated(), col].iloc[0]})")
    return df


HCOP_COLUMNS = ("human_ensembl_id", "human_symbol", "mouse_ensembl_id", "mouse_symbol", "n_sources", "sources")


def read_hcop(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read HCOP human-mouse ortholog predictions (many-to-many).

    Parameters
    ----------
    path : path-like
        TSV (optionally gzip) with columns ``HCOP_COLUMNS``, one row per
        predicted pair, as written by ``resources/build_resources.py``
        (``resources/annotation/orthologs_hcop_human_mouse.tsv.gz``).

    Returns
    -------
    pandas.DataFrame
        The rows; ``n_sources`` int64, the other columns str.

    Raises
    ------
    InputError
        Missing file or column, a non-integer or < 1 ``n_sources``, or a pair
        listed twice.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: HCOP ortholog table not found")
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    missing = [c for c in HCOP_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{path}: HCOP ortholog table lacks column(s) {missing}")
    n = pd.to_numeric(df["n_sources"], errors="coerce")
    bad = n.isna() | (n < 1) | (n != n.round())
    if bad.any():
        raise InputError(
            f"{path}: n_sources must be a positive integer (row {int(np.flatnonzero(bad)[0]) + 2}: "
            f"{df['n_sources'][bad].iloc[0]!r})"
        )
    df["n_sources"] = n.astype("int64")
    dup = df.duplicated(["human_ensembl_id", "mouse_ensembl_id"])
    if dup.any():
        r = df[dup].iloc[0]
        raise InputError(f"{path}: pair {r['human_ensembl_id']}-{r['mouse_ensembl_id']} is listed twice")
    return df


def hcop_one_to_one(hcop: pd.DataFrame, min_sources: int) -> pd.DataFrame:
    """One-to-one human-mouse orthologs from HCOP predictions.

    Keeps the pairs supported by at least ``min_sources`` databases, then the
    pairs whose human gene and whose mouse gene each occur in exactly one of
    the kept pairs (HCOP's usual reading of "one-to-one at this support").
    A stricter threshold can therefore give *more* pairs: it removes weakly
    supported alternatives that made a gene one-to-many.

    Parameters
    ----------
    hcop : pandas.DataFrame
        From :func:`read_hcop`.
    min_sources : int
        Minimum number of supporting databases (1-12 in the bundled table).

    Returns
    -------
    pandas.DataFrame
        Columns human_ensembl_id, human_symbol, mouse_ensembl_id, mouse_symbol,
        n_sources; each human and each mouse id once; sorted by
        human_ensembl_id. The table ``read_orthologs`` accepts.

    Raises
    ------
    InputError
        ``min_sources`` < 1, or no pair is left.
    """
    if min_sources < 1:
        raise InputError(f"annotation.hcop_min_sources must be >= 1, got {min_sources}")
    kept = hcop[hcop["n_sources"] >= min_sources]
    once = ~kept["human_ensembl_id"].duplicated(keep=False) & ~kept["mouse_ensembl_id"].duplicated(keep=False)
    out = kept[once].sort_values("human_ensembl_id", kind="stable")
    if out.empty:
        raise InputError(f"HCOP: no one-to-one pair has at least {min_sources} supporting sources")
    log.info(
        "HCOP: %d pairs with >= %d sources, %d of them one-to-one", len(kept), min_sources, len(out)
    )
    return out[["human_ensembl_id", "human_symbol", "mouse_ensembl_id", "mouse_symbol", "n_sources"]].reset_index(
        drop=True
    )


def refresh_gene_table(
    ensembl_ids: list[str],
    *,
    query: Callable[..., list[dict[str, Any]]] | None = None,
    species: str = "human",
) -> pd.DataFrame:
    """Build a gene table from MyGene.info (optional online refresh).

    Parameters
    ----------
    ensembl_ids : list of str
        Unversioned Ensembl gene ids to look up.
    query : callable, optional
        ``querymany``-compatible function; default ``mygene.MyGeneInfo().querymany``.
        Tests pass a function that replays recorded responses.
    species : str
        MyGene.info species name.

    Returns
    -------
    pandas.DataFrame
        Columns ensembl_id, symbol, biotype, entrez_id; ids MyGene.info does not
        know are kept with empty symbol and biotype.

    Raises
    ------
    InputError
        If the service cannot be reached (with the underlying error).
    """
    if query is None:
        import mygene

        query = mygene.MyGeneInfo().querymany
    try:
        hits = query(ensembl_ids, scopes="ensembl.gene", fields="symbol,type_of_gene,ensembl.type_of_gene,entrezgene",
                     species=species, as_dataframe=False, returnall=False, verbose=False)
    except Exception as exc:
        raise InputError(
            f"MyGene.info query failed ({type(exc).__name__}: {exc}); use annotation.source: bundled offline"
        ) from exc
    best: dict[str, dict[str, Any]] = {}
    for hit in hits:
        q = hit.get("query")
        if q is None or hit.get("notfound") or q in best:
            continue
        ens = hit.get("ensembl") or {}
        if isinstance(ens, list):
            ens = next((e for e in ens if e.get("gene") == q), ens[0] if ens else {})
        entrez = hit.get("entrezgene")
        best[q] = {
            "symbol": hit.get("symbol", ""),
            "biotype": ens.get("type_of_gene") or hit.get("type_of_gene", ""),
            "entrez_id": int(entrez) if entrez not in (None, "") else pd.NA,
        }
    rows = [{"ensembl_id": e, **best.get(e, {"symbol": "", "biotype": "", "entrez_id": pd.NA})} for e in ensembl_ids]
    df = pd.DataFrame(rows, columns=list(GENE_TABLE_COLUMNS))
    df["entrez_id"] = df["entrez_id"].astype("Int64")
    log.info("MyGene.info: %d of %d ids found", len(best), len(ensembl_ids))
    return df
