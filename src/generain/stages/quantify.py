"""Rules read_sample_sheet, kallisto_quant and gather_kallisto: FASTQ datasets quantified as ARCHS4 does.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``). The index is
built by the shell rule kallisto_index (``kallisto index``).
"""

from __future__ import annotations

import json
import logging
import subprocess
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .. import quantify
from ..utils import InputError, PathLike, atomic_path, timed, write_json

log = logging.getLogger(__name__)


def check_sample_sheet(*, sheet: PathLike, fragment_length: float, fragment_sd: float,
                       out_samples: PathLike) -> int:
    """Check a FASTQ dataset's sample sheet and write it resolved (:func:`generain.quantify.read_sample_sheet`).

    Output ``out_samples``: TSV of :data:`generain.quantify.SAMPLE_SHEET_COLUMNS`
    with absolute FASTQ paths and the single-end fragment defaults filled in.
    Returns the number of samples.
    """
    samples = quantify.read_sample_sheet(sheet, fragment_length=fragment_length, fragment_sd=fragment_sd)
    with atomic_path(out_samples) as tmp:
        samples.to_csv(tmp, sep="\t", index=False)
    log.info("%s: %d samples (%d paired-end)", sheet, len(samples), int((samples["fastq_2"] != "").sum()))
    return len(samples)


def _sample(samples: PathLike, sample_id: str) -> pd.Series:
    s = pd.read_csv(samples, sep="\t", dtype={"sample_id": str, "fastq_1": str, "fastq_2": str},
                    keep_default_na=False)
    row = s[s["sample_id"] == sample_id]
    if row.empty:
        raise InputError(f"{samples}: no sample {sample_id!r}")
    return row.iloc[0]


def quantify_sample(*, samples: PathLike, sample_id: str, index: PathLike, threads: int,
                    out_dir: PathLike) -> dict[str, Any]:
    """Count a sample's reads (pysam) and quantify them with ``kallisto quant`` (:func:`generain.quantify.kallisto_command`).

    Output ``out_dir`` (written whole or not at all): kallisto's
    ``abundance.tsv``, ``abundance.h5``, ``run_info.json`` and its log
    ``kallisto.log``, and ``reads.json`` (sample_id, n_reads: reads, or read
    pairs, in the FASTQ; n_processed and n_pseudoaligned from kallisto).

    Raises
    ------
    InputError
        If a FASTQ is unreadable or truncated, the mates hold different
        numbers of reads, or kallisto fails (its log's last lines quoted).
    """
    row = _sample(samples, sample_id)
    with timed(f"count the reads of {sample_id}"):
        n_reads = quantify.count_reads(row["fastq_1"])
        if row["fastq_2"]:
            n_mates = quantify.count_reads(row["fastq_2"])
            if n_mates != n_reads:
                raise InputError(f"{row['fastq_2']}: {n_mates} reads, but its mate file {row['fastq_1']} has "
                                 f"{n_reads}; paired FASTQs must hold the same reads")
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        cmd = quantify.kallisto_command(index, row["fastq_1"], row["fastq_2"] or None, tmp,
                                        fragment_length=row["fragment_length"] or None,
                                        fragment_sd=row["fragment_sd"] or None, threads=threads)
        log.info("%s", " ".join(cmd))
        with timed(f"kallisto quant {sample_id}"), open(tmp / "kallisto.log", "w") as klog:
            rc = subprocess.run(cmd, stdout=klog, stderr=subprocess.STDOUT).returncode
        if rc != 0:
            tail = "".join((tmp / "kallisto.log").read_text().splitlines(keepends=True)[-5:])
            raise InputError(f"kallisto quant failed for sample {sample_id} (exit {rc}):\n{tail}")
        info = quantify.read_run_info(tmp / "run_info.json")
        reads = {"sample_id": sample_id, "n_reads": n_reads, "n_processed": int(info["n_processed"]),
                 "n_pseudoaligned": int(info["n_pseudoaligned"]), "kallisto_version": info.get("kallisto_version")}
        write_json(reads, tmp / "reads.json")
    log.info("%s: %d reads, %d pseudoaligned (%.1f%%)", sample_id, n_reads, reads["n_pseudoaligned"],
             100 * reads["n_pseudoaligned"] / max(reads["n_processed"], 1))
    return reads


def gather_quantifications(*, samples: PathLike, quants: Sequence[PathLike], transcripts: PathLike,
                           dataset: str, out_counts: PathLike, out_reads: PathLike,
                           out_report: PathLike) -> dict[str, Any]:
    """Gene counts of a FASTQ dataset: each sample's est_counts summed to genes by the annotation, rounded.

    Outputs: ``out_counts`` (genes x samples TSV, gzipped; first column
    ensembl_id, whole counts; read by ingest_counts as a count table),
    ``out_reads`` (TSV: sample_id, n_reads, n_pseudoaligned) and
    ``out_report`` (JSON: :func:`generain.quantify.gene_counts`'s report and
    the kallisto version).

    Raises
    ------
    InputError
        As :func:`generain.quantify.gene_counts`.
    """
    ids = pd.read_csv(samples, sep="\t", dtype={"sample_id": str}, keep_default_na=False)["sample_id"].tolist()
    quants = [Path(q) for q in quants]
    if [q.name for q in quants] != ids:
        raise InputError(f"{samples}: quantifications {[q.name for q in quants][:3]} do not follow the samples {ids[:3]}")
    abundances = [quantify.read_abundance(q / "abundance.tsv") for q in quants]
    reads = pd.DataFrame([json.loads((q / "reads.json").read_text()) for q in quants])
    tx = pd.read_csv(transcripts, sep="\t", dtype=str)
    genes, _, counts, report = quantify.gene_counts(abundances, tx, source=f"dataset {dataset}")
    table = pd.DataFrame(counts, index=pd.Index(genes, name="ensembl_id"), columns=ids)
    with atomic_path(out_counts) as tmp:
        table.to_csv(tmp, sep="\t", compression="gzip")
    with atomic_path(out_reads) as tmp:
        reads[["sample_id", "n_reads", "n_pseudoaligned"]].to_csv(tmp, sep="\t", index=False)
    report.update({"dataset": dataset, "samples": len(ids), "kallisto_version": reads["kallisto_version"].iloc[0],
                   "counts_total": [int(x) for x in counts.sum(axis=0, dtype=np.int64)]})
    write_json(report, out_report)
    log.info("%s: %d samples, %d genes from %d of %d targets", dataset, len(ids), report["genes"],
             report["targets_mapped"], report["targets"])
    return report
