"""Rules refresh_gene_table, read_gtf and select_orthologs: the gene table and the ortholog table in use.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``).
"""

from __future__ import annotations

import logging
from typing import Any

from .. import annotation, gtf
from ..utils import InputError, PathLike, atomic_path

log = logging.getLogger(__name__)


def refresh_gene_table(*, snapshot: PathLike, out_genes: PathLike, query: Any = None) -> int:
    """Refresh the bundled gene table's symbols, biotypes and Entrez ids from MyGene.info.

    Genes MyGene.info does not return keep their snapshot annotation.
    """
    snap = annotation.read_gene_table(snapshot)
    fresh = annotation.refresh_gene_table(snap["ensembl_id"].tolist(), query=query)
    found = fresh["symbol"] != ""
    out = snap.copy()
    for col in ("symbol", "biotype", "entrez_id"):
        out.loc[found.to_numpy(), col] = fresh.loc[found, col].to_numpy()
    with atomic_path(out_genes) as tmp:
        out.to_csv(tmp, sep="\t", index=False)
    log.info("gene table refreshed: %d of %d genes updated from MyGene.info", int(found.sum()), len(out))
    return int(found.sum())


def gene_table_from_gtf(
    *, gtf_path: PathLike, out_indexed: PathLike, out_genes: PathLike, out_transcripts: PathLike
) -> dict[str, Any]:
    """The gene table and transcript-to-gene map of a GTF/GFF3 (config ``annotation.gtf``).

    Writes ``out_indexed`` (the file sorted, bgzipped and tabix-indexed with
    pysam, :func:`generain.gtf.index_annotation`; ``.tbi`` beside it),
    ``out_genes`` (TSV, :data:`generain.gtf.GENE_COLUMNS`; read by
    :func:`generain.annotation.read_gene_table` like the bundled table) and
    ``out_transcripts`` (TSV, transcript_id, ensembl_id).

    Raises
    ------
    InputError
        If the file is missing or unreadable, has no gene records, or no
        gene of the vocabulary biotypes (protein_coding, lncRNA).
    """
    gtf.index_annotation(gtf_path, out_indexed)
    genes, transcripts = gtf.read_annotation(out_indexed, source=gtf_path)
    if not genes["biotype"].isin(["protein_coding", "lncRNA"]).any():
        raise InputError(f"{gtf_path}: no protein_coding or lncRNA gene (biotypes found: "
                         f"{genes['biotype'].value_counts().head(5).to_dict()})")
    with atomic_path(out_genes) as tmp:
        genes.to_csv(tmp, sep="\t", index=False)
    with atomic_path(out_transcripts) as tmp:
        transcripts.to_csv(tmp, sep="\t", index=False)
    return {"genes": len(genes), "transcripts": len(transcripts)}


def select_orthologs(*, hcop: PathLike, min_sources: int, out_orthologs: PathLike) -> int:
    """Write the one-to-one ortholog table chosen from HCOP predictions.

    See :func:`generain.annotation.hcop_one_to_one`; returns the number of pairs.
    """
    pairs = annotation.hcop_one_to_one(annotation.read_hcop(hcop), min_sources)
    with atomic_path(out_orthologs) as tmp:
        pairs.to_csv(tmp, sep="\t", index=False)
    return len(pairs)
