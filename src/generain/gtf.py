"""Gene annotations from GTF or GFF3 files (GENCODE, Ensembl, other releases and species), read with pysam.

A GTF or GFF3 file (plain or gzipped, any record order) is sorted, bgzipped
and tabix-indexed with pysam (:func:`index_annotation`), then read record by
record with pysam's GTF or GFF3 parser (:func:`read_annotation`), giving the
workflow's gene table (:data:`generain.annotation.GENE_TABLE_COLUMNS` plus
chromosome, start, end, strand) and the transcript-to-gene map that sums
kallisto's transcript estimates to genes (:mod:`generain.quantify`).
"""

from __future__ import annotations

import gzip
import logging
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from .utils import InputError, PathLike, strip_version

log = logging.getLogger(__name__)

GENE_COLUMNS = ("ensembl_id", "symbol", "biotype", "entrez_id", "chromosome", "start", "end", "strand")
"""Columns of the gene table read from an annotation (start, end: 1-based, inclusive, as in the file)."""

TRANSCRIPT_COLUMNS = ("transcript_id", "ensembl_id")
"""Columns of the transcript-to-gene map (both ids without version suffix)."""

GENE_FEATURES = ("gene", "ncRNA_gene", "pseudogene")
"""Feature types of gene records (GTF: gene; Ensembl GFF3 also ncRNA_gene and pseudogene)."""

_GENE_ID = re.compile(r"GeneID:(\d+)")


def _is_gff3(path: PathLike) -> bool:
    name = Path(path).name.lower()
    return ".gff3" in name or ".gff" in name


def _open_text(path: Path):
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rt") if magic == b"\x1f\x8b" else open(path)


def index_annotation(path: PathLike, out: PathLike) -> Path:
    """Sort a GTF/GFF3 by contig and start, bgzip it and tabix-index it (pysam).

    Parameters
    ----------
    path : path-like
        GTF or GFF3 (``.gff``/``.gff3`` in the name), plain or gzipped, records
        in any order; ``#`` lines are dropped (the GFF3 ``###`` and FASTA
        sections included).
    out : path-like
        The bgzipped copy (``.gz``); its index is written beside it as ``out + ".tbi"``.

    Returns
    -------
    pathlib.Path
        ``out``.

    Raises
    ------
    InputError
        If the file is missing, unreadable, or a record has fewer than 9
        tab-separated columns or a non-integer start.
    """
    import pysam

    path, out = Path(path), Path(out)
    if not path.exists():
        raise InputError(f"{path}: annotation file not found")
    records = []
    try:
        with _open_text(path) as fh:
            for n, line in enumerate(fh, start=1):
                if line.startswith("##FASTA"):
                    break
                if not line.strip() or line.startswith("#"):
                    continue
                cols = line.rstrip("\n").split("\t")
                if len(cols) < 9 or not cols[3].isdigit():
                    raise InputError(f"{path}: line {n} is not a GTF/GFF3 record (9 tab-separated columns, "
                                     f"integer start): {line[:80]!r}")
                records.append((cols[0], int(cols[3]), line if line.endswith("\n") else line + "\n"))
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise InputError(f"{path}: cannot read the annotation ({exc})") from exc
    contig_order = {c: i for i, c in enumerate(dict.fromkeys(r[0] for r in records))}
    records.sort(key=lambda r: (contig_order[r[0]], r[1]))
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=out.parent, suffix=".sorted", delete=False) as tmp:
        tmp.writelines(r[2] for r in records)
    try:
        pysam.tabix_compress(tmp.name, str(out), force=True)
        pysam.tabix_index(str(out), preset="gff", force=True)
    finally:
        Path(tmp.name).unlink(missing_ok=True)
    log.info("%s: %d records sorted, bgzipped and indexed as %s", path, len(records), out)
    return out


def _entrez(attrs: dict) -> int | None:
    for key in ("entrez_id", "gene_entrez_id"):
        if str(attrs.get(key, "")).isdigit():
            return int(attrs[key])
    m = _GENE_ID.search(str(attrs.get("db_xref", "")) + " " + str(attrs.get("Dbxref", "")))
    return int(m.group(1)) if m else None


def read_annotation(path: PathLike, *, source: PathLike | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Genes and transcripts of a bgzipped, tabix-indexed GTF or GFF3 (:func:`index_annotation`).

    Gene records (features :data:`GENE_FEATURES`) give the gene table:
    ensembl_id (``gene_id``, or the GFF3 ``ID`` without ``gene:``; version
    stripped), symbol (``gene_name`` or ``Name``), biotype (``gene_type`` as
    GENCODE, ``gene_biotype`` as Ensembl's GTF, ``biotype`` as Ensembl's
    GFF3), entrez_id (``entrez_id`` or ``GeneID:`` in ``db_xref``/``Dbxref``;
    empty when absent), chromosome, start and end (1-based, inclusive) and
    strand. GENCODE's ``_PAR_Y`` copies of the chrX pseudoautosomal genes are
    dropped (as in the bundled table). Transcript records (feature
    ``transcript``, or a GFF3 record whose ``ID`` is its ``transcript_id``)
    give the transcript-to-gene map.

    Parameters
    ----------
    path : path-like
        The indexed ``.gz`` (its ``.tbi`` beside it).
    source : path-like, optional
        The user's file, named in messages (default ``path``).

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        Genes (:data:`GENE_COLUMNS`, one row per gene, sorted by ensembl_id;
        entrez_id nullable Int64) and transcripts (:data:`TRANSCRIPT_COLUMNS`,
        sorted by transcript_id).

    Raises
    ------
    InputError
        If the file has no gene records, or a gene id repeats.
    """
    import pysam

    source = source or path
    parser = pysam.asGFF3() if _is_gff3(source) else pysam.asGTF()
    genes, transcripts = [], []
    with pysam.TabixFile(str(path), parser=parser) as tbx:
        for contig in tbx.contigs:
            for rec in tbx.fetch(contig):
                attrs = rec.to_dict()
                feature = rec.feature
                if feature in GENE_FEATURES:
                    gid = attrs.get("gene_id") or str(attrs.get("ID", "")).removeprefix("gene:")
                    genes.append((strip_version(str(gid)), str(attrs.get("gene_name", attrs.get("Name", ""))),
                                  str(attrs.get("gene_type", attrs.get("gene_biotype", attrs.get("biotype", "")))),
                                  _entrez(attrs), rec.contig, rec.start + 1, rec.end, rec.strand))
                elif "transcript_id" in attrs and (
                        feature == "transcript"
                        or str(attrs.get("ID", "")).removeprefix("transcript:") == str(attrs["transcript_id"])):
                    gid = attrs.get("gene_id") or str(attrs.get("Parent", "")).removeprefix("gene:")
                    transcripts.append((strip_version(str(attrs["transcript_id"])), strip_version(str(gid))))
    if not genes:
        raise InputError(f"{source}: no gene records (features {', '.join(GENE_FEATURES)}); the gene table is "
                         "made of them")
    g = pd.DataFrame(genes, columns=list(GENE_COLUMNS))
    par_y = g["ensembl_id"].str.endswith("_PAR_Y")
    if par_y.any():
        log.info("%s: %d _PAR_Y gene records dropped (copies of chrX genes)", source, int(par_y.sum()))
        g = g[~par_y]
    dup = g["ensembl_id"].duplicated()
    if dup.any():
        raise InputError(f"{source}: gene ids repeat after removing versions, e.g. "
                         f"{g.loc[dup, 'ensembl_id'].head(3).tolist()}")
    g["entrez_id"] = pd.array(g["entrez_id"].tolist(), dtype="Int64")
    g = g.sort_values("ensembl_id", kind="stable").reset_index(drop=True)
    t = (pd.DataFrame(transcripts, columns=list(TRANSCRIPT_COLUMNS)).drop_duplicates()
         .sort_values("transcript_id", kind="stable").reset_index(drop=True))
    log.info("%s: %d genes (%s), %d transcripts", source, len(g),
             ", ".join(f"{n} {b}" for b, n in g["biotype"].value_counts().head(3).items()), len(t))
    return g, t


def transcript_gene_index(transcript_ids: np.ndarray, transcripts: pd.DataFrame) -> np.ndarray:
    """Each transcript's gene: the Ensembl id (object), or None when the map lacks it (versions stripped)."""
    m = dict(zip(transcripts["transcript_id"], transcripts["ensembl_id"]))
    return np.array([m.get(strip_version(str(t))) for t in transcript_ids], dtype=object)
