"""Rule ingest_counts: one counts dataset in, its matrix and ingest report out.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from .. import annotation, io, qc
from ..utils import InputError, PathLike, timed, write_json

log = logging.getLogger(__name__)


def ingest_dataset(
    *,
    path: PathLike,
    fmt: str,
    name: str,
    species_name: str,
    gene_table: PathLike | None,
    out_matrix: PathLike,
    out_report: PathLike,
    id_type: str,
    counts: str,
    read_options: dict[str, Any] | None = None,
    annotation_name: str = "the gene table",
    reads: PathLike | None = None,
) -> dict[str, Any]:
    """Read one dataset, compute per-sample QC statistics, map genes to Ensembl ids.

    ``id_type`` (config ``datasets[].id_type``) says how gene ids are matched
    (:func:`generain.annotation.map_gene_ids`); ``counts`` whether they must be
    whole numbers or are estimates to round (:data:`generain.io.COUNT_KINDS`).
    A FASTQ dataset (``fmt="fastq"``) arrives as the gene-count table its
    quantification wrote (:func:`generain.stages.quantify.gather_quantifications`)
    with ``reads`` (TSV sample_id, n_reads, n_pseudoaligned), which become
    sample columns of ``out_matrix`` and of the QC table.

    QC statistics (total counts, detected genes) are computed on the source
    matrix before gene harmonisation, as ARCHS4 and GeneRAIN do. With
    ``gene_table=None`` (mouse, by default) the file's own gene annotation is
    the gene table (:func:`generain.annotation.gene_table_from_source`).

    Outputs: ``out_matrix`` (see :func:`generain.io.write_matrix`; uint32
    counts, genes x samples) and ``out_report`` (JSON: dataset, path, format,
    species, samples, and the gene-matching report).
    """
    with timed(f"ingest {name} ({fmt}) from {path}"):
        cm = io.read_counts(path, "table" if fmt == "fastq" else fmt, counts=counts, **(read_options or {}))
        io.require_unique_samples(cm.sample_ids, path)
        total, detected = qc.sample_stats(cm.counts)
        genes = (annotation.read_gene_table(gene_table) if gene_table
                 else annotation.gene_table_from_source(cm, source=str(path)))
        matched, report = annotation.harmonize_genes(cm, genes, source=str(path), id_type=id_type,
                                                    annotation_name=annotation_name)
        biotype = genes.set_index("ensembl_id").loc[matched.gene_ids, "biotype"].to_numpy(dtype=object)
        log.info("%s: %d genes x %d samples in; %d genes x %d samples out", name, *cm.shape, *matched.shape)
        extra = {}
        if reads is not None:
            r = pd.read_csv(reads, sep="\t", dtype={"sample_id": str}).set_index("sample_id")
            missing = [s for s in matched.sample_ids if s not in r.index]
            if missing:
                raise InputError(f"{reads}: no read counts for samples {missing[:5]}")
            extra = {c: r.loc[list(matched.sample_ids), c].to_numpy(dtype=np.int64)
                     for c in ("n_reads", "n_pseudoaligned")}
        io.write_matrix(
            out_matrix, matched.counts,
            genes={"ensembl_id": matched.gene_ids, "symbol": matched.symbols, "biotype": biotype},
            samples={"sample_id": matched.sample_ids, "series_id": matched.series_ids,
                     "singlecell_probability": matched.singlecell_probability,
                     "total_counts": total, "detected_genes": detected, **extra},
            attrs={"dataset": name, "species": species_name, "source": str(path), "format": fmt},
        )
    rep = {"dataset": name, "path": str(path), "format": fmt, "species": species_name, "counts": counts,
           "samples": int(cm.shape[1]), "genes": report}
    write_json(rep, out_report)
    return rep
