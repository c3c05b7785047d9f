"""Quantifying a user's own RNA-seq reads as ARCHS4 does: kallisto pseudoalignment, transcripts summed to genes.

ARCHS4 (Lachmann et al., Nat Commun 2018, Methods; its alignment pipeline
MaayanLab/archs4pipeline) runs ``kallisto quant`` on every sample (paired
reads as pairs; single-end reads with ``--single -l 200 -s 20``), sums the
transcripts' estimated counts (``est_counts``) of each gene and rounds the
sums to whole gene counts. Here the sums use the transcript-to-gene map of
the species' GTF/GFF3 (:mod:`generain.gtf`) and round halves to even
(``numpy.rint``, as R's ``round``); the reads of each FASTQ are counted with
pysam for the QC table.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .utils import InputError, PathLike, strip_version

log = logging.getLogger(__name__)

SAMPLE_SHEET_COLUMNS = ("sample_id", "fastq_1", "fastq_2", "fragment_length", "fragment_sd")
"""Columns of a FASTQ dataset's sample sheet (fastq_2 empty for single-end; fragment_* single-end only)."""


def read_sample_sheet(path: PathLike, *, fragment_length: float, fragment_sd: float) -> pd.DataFrame:
    """Read and check a FASTQ dataset's sample sheet (TSV or CSV).

    Parameters
    ----------
    path : path-like
        Columns sample_id and fastq_1 (required), fastq_2 (paired-end mate;
        empty or absent for single-end), fragment_length and fragment_sd
        (single-end only; empty: the defaults). Relative FASTQ paths are
        relative to the sheet's folder.
    fragment_length, fragment_sd : float
        Single-end defaults (config ``kallisto``; ARCHS4: 200 and 20).

    Returns
    -------
    pandas.DataFrame
        :data:`SAMPLE_SHEET_COLUMNS`, FASTQ paths absolute, fastq_2 "" for
        single-end samples, fragment_length and fragment_sd float (NaN for
        paired-end samples), one row per sample in the sheet's order.

    Raises
    ------
    InputError
        If the sheet is missing or lacks a column, a sample id is empty or
        repeats, a FASTQ file does not exist, or a fragment value is not a
        positive number.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: sample sheet not found")
    sep = "," if path.suffix == ".csv" else "\t"
    sheet = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    missing = [c for c in ("sample_id", "fastq_1") if c not in sheet.columns]
    if missing:
        raise InputError(f"{path}: sample sheet lacks column(s) {missing}; has {list(sheet.columns)}")
    extra = set(sheet.columns) - set(SAMPLE_SHEET_COLUMNS)
    if extra:
        raise InputError(f"{path}: unknown sample sheet column(s) {sorted(extra)}; expected {list(SAMPLE_SHEET_COLUMNS)}")
    if not len(sheet):
        raise InputError(f"{path}: the sample sheet lists no sample")
    for col in SAMPLE_SHEET_COLUMNS:
        if col not in sheet:
            sheet[col] = ""
    ids = sheet["sample_id"].str.strip()
    if (ids == "").any():
        raise InputError(f"{path}: empty sample_id in row(s) {list(np.flatnonzero(ids == '') + 2)}")
    dup = ids[ids.duplicated()].unique().tolist()
    if dup:
        raise InputError(f"{path}: duplicated sample ids {dup[:5]}")
    out = pd.DataFrame({"sample_id": ids})
    for col in ("fastq_1", "fastq_2"):
        resolved = []
        for i, v in enumerate(sheet[col].str.strip()):
            if not v:
                if col == "fastq_1":
                    raise InputError(f"{path}: sample {ids[i]} has no fastq_1")
                resolved.append("")
                continue
            f = Path(v) if os.path.isabs(v) else path.parent / v
            if not f.exists():
                raise InputError(f"{path}: sample {ids[i]}: {col} {f} does not exist")
            resolved.append(str(f.resolve()))
        out[col] = resolved
    single = out["fastq_2"] == ""
    for col, default in (("fragment_length", fragment_length), ("fragment_sd", fragment_sd)):
        raw = sheet[col].str.strip()
        vals = pd.to_numeric(raw.where(raw != "", str(default)), errors="coerce").astype(float)
        bad = single & ~(vals > 0)
        if bad.any():
            raise InputError(f"{path}: {col} must be a positive number for single-end sample(s) "
                             f"{out.loc[bad, 'sample_id'].tolist()[:5]}")
        out[col] = np.where(single, vals, np.nan)
    return out


def count_reads(path: PathLike) -> int:
    """Reads in a FASTQ (plain or gzipped), counted with pysam's FastxFile.

    Raises
    ------
    InputError
        If the file is missing, truncated or not FASTQ (pysam's error named
        with the file and the reads read before it).
    """
    import pysam

    n = 0
    try:
        with pysam.FastxFile(str(path)) as fh:
            for rec in fh:
                if rec.quality is None:
                    raise InputError(f"{path}: record {n + 1} ({rec.name}) has no qualities; not a FASTQ file")
                n += 1
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable or truncated FASTQ after {n} reads ({exc})") from exc
    if n == 0:
        raise InputError(f"{path}: no reads")
    return n


def kallisto_command(
    index: PathLike, fastq_1: PathLike, fastq_2: PathLike | None, out_dir: PathLike, *,
    fragment_length: float | None = None, fragment_sd: float | None = None, threads: int = 1,
) -> list[str]:
    """The ``kallisto quant`` call of one sample, as ARCHS4 runs it.

    Paired-end: both mates. Single-end: ``--single -l fragment_length -s fragment_sd``
    (ARCHS4: 200 and 20). No bootstraps; ``threads`` only changes the speed.
    """
    cmd = ["kallisto", "quant", "-i", str(index), "-o", str(out_dir), "-t", str(int(threads))]
    if fastq_2:
        return cmd + [str(fastq_1), str(fastq_2)]
    return cmd + ["--single", "-l", f"{float(fragment_length):g}", "-s", f"{float(fragment_sd):g}", str(fastq_1)]


def read_abundance(path: PathLike) -> pd.Series:
    """kallisto's ``abundance.tsv``: est_counts (float64) indexed by target_id (as written, with versions).

    Raises
    ------
    InputError
        If the file lacks target_id or est_counts, or a count is negative or not finite.
    """
    try:
        t = pd.read_csv(path, sep="\t", dtype={"target_id": str})
    except (OSError, pd.errors.ParserError) as exc:
        raise InputError(f"{path}: cannot read kallisto's abundance table ({exc})") from exc
    if not {"target_id", "est_counts"} <= set(t.columns):
        raise InputError(f"{path}: not a kallisto abundance.tsv (columns {list(t.columns)})")
    est = t["est_counts"].astype(float)
    if not np.isfinite(est).all() or (est < 0).any():
        raise InputError(f"{path}: est_counts has negative or non-finite values")
    return pd.Series(est.to_numpy(), index=t["target_id"].to_numpy())


def gene_counts(abundances: Sequence[pd.Series], transcripts: pd.DataFrame, *,
                source: str = "kallisto") -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
    """Sum each sample's transcript estimates to genes and round them (ARCHS4's gene counts).

    Parameters
    ----------
    abundances : sequence of pandas.Series
        Per sample, est_counts by target_id (:func:`read_abundance`; all
        samples quantified against one index, so the same targets).
    transcripts : pandas.DataFrame
        transcript_id, ensembl_id (versions stripped; :func:`generain.gtf.read_annotation`).
    source : str
        Named in messages.

    Returns
    -------
    (np.ndarray, np.ndarray, np.ndarray, dict)
        Gene ids (object (n_genes,), sorted), the summed estimates (float64
        (n_genes, n_samples)), the gene counts (uint32 (n_genes, n_samples):
        the sums rounded to whole numbers, halves to even), and a report:
        targets, targets_mapped, targets_unmapped, est_counts_unmapped (per
        sample, the estimates of transcripts the annotation lacks), genes.

    Raises
    ------
    InputError
        If the samples' targets differ, or no target maps to a gene.
    """
    targets = abundances[0].index
    for i, a in enumerate(abundances[1:], start=1):
        if not a.index.equals(targets):
            raise InputError(f"{source}: sample {i} was quantified against other targets than sample 0")
    tx2gene = dict(zip(transcripts["transcript_id"], transcripts["ensembl_id"]))
    gene_of = np.array([tx2gene.get(strip_version(str(t))) for t in targets], dtype=object)
    mapped = np.array([g is not None for g in gene_of])
    if not mapped.any():
        raise InputError(f"{source}: none of kallisto's {len(targets)} targets (first: {list(targets[:3])}) is a "
                         "transcript of the annotation; the transcriptome and annotation.gtf must match")
    est = np.stack([a.to_numpy() for a in abundances], axis=1)  # (n_targets, n_samples)
    genes, inverse = np.unique(gene_of[mapped].astype(str), return_inverse=True)
    sums = np.zeros((len(genes), est.shape[1]), dtype=np.float64)
    np.add.at(sums, inverse, est[mapped])
    report = {"targets": int(len(targets)), "targets_mapped": int(mapped.sum()),
              "targets_unmapped": int((~mapped).sum()), "genes": int(len(genes)),
              "est_counts_unmapped": [float(x) for x in est[~mapped].sum(axis=0)]}
    if (~mapped).any():
        log.warning("%s: %d of %d targets are not transcripts of the annotation (e.g. %s); their estimates are "
                    "left out", source, int((~mapped).sum()), len(targets), list(targets[~mapped][:3]))
    return genes.astype(object), sums, np.rint(sums).astype(np.uint32), report


def read_run_info(path: PathLike) -> dict[str, Any]:
    """kallisto's ``run_info.json`` (n_processed, n_pseudoaligned, kallisto_version, ...)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read kallisto's run_info.json ({exc})") from exc
