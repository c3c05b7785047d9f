"""One function per workflow stage: paths and parameters in, files out.

The Snakemake scripts in ``workflow_scripts/`` are thin wrappers around these
functions; nothing here reads Snakemake objects or the config file, so every
stage can also be called from Python or a notebook.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Sequence

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pac
import pyarrow.parquet as pq

from . import annotation, embed, io, normalize, plots, qc, species, stream, sweep, tokenize
from .utils import InputError, atomic_path, avoid_huge_page_stalls, timed, write_json, write_parquet

log = logging.getLogger(__name__)
PathLike = str | os.PathLike[str]


# ---------------------------------------------------------------------------
# ingest
# ---------------------------------------------------------------------------

def _require_unique_samples(sample_ids: np.ndarray, path: PathLike) -> None:
    """Raise InputError naming the file and a few repeated sample ids."""
    if len(set(sample_ids)) != len(sample_ids):
        dup = pd.Series(sample_ids).loc[lambda s: s.duplicated()].head(3).tolist()
        raise InputError(f"{path}: duplicated sample ids, e.g. {dup}")


def ingest_dataset(
    *,
    path: PathLike,
    fmt: str,
    name: str,
    species_name: str,
    gene_table: PathLike | None,
    out_matrix: PathLike,
    out_report: PathLike,
    read_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Read one dataset, compute per-sample QC statistics, map genes to Ensembl ids.

    QC statistics (total counts, detected genes) are computed on the source
    matrix before gene harmonisation, as ARCHS4 and GeneRAIN do. With
    ``gene_table=None`` (mouse, by default) the file's own gene annotation is
    the gene table (:func:`generain.annotation.gene_table_from_source`).

    Outputs: ``out_matrix`` (see :func:`generain.io.write_matrix`; uint32
    counts, genes x samples) and ``out_report`` (JSON: dataset, path, format,
    species, samples, and the gene-matching report).
    """
    with timed(f"ingest {name} ({fmt}) from {path}"):
        cm = io.read_counts(path, fmt, **(read_options or {}))
        _require_unique_samples(cm.sample_ids, path)
        total, detected = qc.sample_stats(cm.counts)
        genes = (annotation.read_gene_table(gene_table) if gene_table
                 else annotation.gene_table_from_source(cm, source=str(path)))
        matched, report = annotation.harmonize_genes(cm, genes, source=str(path))
        biotype = genes.set_index("ensembl_id").loc[matched.gene_ids, "biotype"].to_numpy(dtype=object)
        log.info("%s: %d genes x %d samples in; %d genes x %d samples out", name, *cm.shape, *matched.shape)
        io.write_matrix(
            out_matrix, matched.counts,
            genes={"ensembl_id": matched.gene_ids, "symbol": matched.symbols, "biotype": biotype},
            samples={"sample_id": matched.sample_ids, "series_id": matched.series_ids,
                     "singlecell_probability": matched.singlecell_probability,
                     "total_counts": total, "detected_genes": detected},
            attrs={"dataset": name, "species": species_name, "source": str(path), "format": fmt},
        )
    rep = {"dataset": name, "path": str(path), "format": fmt, "species": species_name,
           "samples": int(cm.shape[1]), "genes": report}
    write_json(rep, out_report)
    return rep


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


def select_orthologs(*, hcop: PathLike, min_sources: int, out_orthologs: PathLike) -> int:
    """Write the one-to-one ortholog table chosen from HCOP predictions.

    See :func:`generain.annotation.hcop_one_to_one`; returns the number of pairs.
    """
    pairs = annotation.hcop_one_to_one(annotation.read_hcop(hcop), min_sources)
    with atomic_path(out_orthologs) as tmp:
        pairs.to_csv(tmp, sep="\t", index=False)
    return len(pairs)


# ---------------------------------------------------------------------------
# qc
# ---------------------------------------------------------------------------

def qc_samples(
    *,
    matrices: Sequence[PathLike] = (),
    criteria: qc.QCCriteria,
    out_table: PathLike,
    out_plot: PathLike,
    tables: Sequence[PathLike] = (),
) -> pd.DataFrame:
    """Apply GeneRAIN's sample QC to every ingested dataset.

    ``matrices`` are ingested datasets (QC is evaluated here); ``tables`` are
    QC tables already evaluated by the streaming pass 1 (one per shard,
    :func:`scan_stream_shard`), appended in the order given.

    Output ``out_table``: results/{run}/qc/samples.parquet with the columns of
    :data:`generain.qc.QC_COLUMNS`; ``out_plot``: PNG.

    Raises
    ------
    InputError
        If sample ids repeat across datasets, or no sample passes (the message
        counts each failure reason); nothing is written then.
    """
    frames = []
    for path in matrices:
        s, attrs = io.read_samples(path)
        frames.append(qc.evaluate_samples(
            sample_ids=s["sample_id"].to_numpy(), dataset=np.full(len(s), attrs["dataset"], dtype=object),
            series_id=s["series_id"].to_numpy(), total_counts=s["total_counts"].to_numpy(),
            detected_genes=s["detected_genes"].to_numpy(),
            singlecell_probability=s["singlecell_probability"].to_numpy(), criteria=criteria))
    frames += [pd.read_parquet(p) for p in tables]
    table = pd.concat(frames, ignore_index=True)
    dup = table["sample_id"].duplicated(keep=False)
    if dup.any():
        d = table.loc[dup, ["sample_id", "dataset"]].head(4).to_dict("records")
        raise InputError(f"sample ids repeat across datasets: {d}; rename them in the source files")
    qc.require_passing(table, source=", ".join(map(str, [*matrices, *tables][:3])))
    log.info(qc.failure_summary(table))
    for (ds, series), sub in table.groupby(["dataset", "series_id"]):
        log.info("  %s/%s: %d of %d passed", ds, series, int(sub["passed"].sum()), len(sub))
    write_parquet(pa.Table.from_pandas(table[list(qc.QC_COLUMNS)], schema=qc.QC_SCHEMA, preserve_index=False),
                  out_table)
    plots.qc_plot(table, out_plot, min_total_counts=criteria.min_total_counts,
                  min_detected_genes=criteria.min_detected_genes)
    return table


# ---------------------------------------------------------------------------
# normalize
# ---------------------------------------------------------------------------

def _merge_passing(matrices: Sequence[PathLike], qc_table: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame, pd.DataFrame]:
    """Union of genes over datasets (zero-filled), passing samples only."""
    passing = set(qc_table.loc[qc_table["passed"], "sample_id"])
    parts = []
    for path in matrices:
        m = io.read_matrix(path)
        keep = m.samples["sample_id"].isin(passing).to_numpy()
        if keep.any():
            parts.append((m.matrix[:, keep], m.genes, m.samples.loc[keep].assign(dataset=m.attrs["dataset"])))
    genes = (pd.concat([p[1] for p in parts]).drop_duplicates("ensembl_id")
             .sort_values("ensembl_id").reset_index(drop=True))
    gi = pd.Index(genes["ensembl_id"])
    counts = np.zeros((len(genes), sum(p[0].shape[1] for p in parts)), dtype=np.uint32)
    col = 0
    for mat, g, _ in parts:
        counts[gi.get_indexer(g["ensembl_id"]), col:col + mat.shape[1]] = mat
        col += mat.shape[1]
    samples = pd.concat([p[2] for p in parts], ignore_index=True)
    return counts, genes, samples


def normalize_counts(
    *,
    matrices: Sequence[PathLike],
    qc_table: PathLike,
    biotypes: Sequence[str],
    min_mean: float,
    deduplicate_by: str,
    out_matrix: PathLike,
    out_genes: PathLike,
) -> dict[str, Any]:
    """CP10M + log10, duplicate collapse, gene filtering, for samples passing QC.

    Steps (GeneRAIN, Methods "Data preprocessing"): merge passing samples of
    all datasets (genes missing from a dataset are zero there); CP10M using
    each sample's total counts from QC; log10(x + 1); keep genes whose biotype
    is in ``biotypes``; among those, rows sharing a ``deduplicate_by`` key keep
    the highest mean; keep genes whose mean log10(CP10M+1) over samples is
    > ``min_mean``.

    Outputs: ``out_matrix`` float32 (n_kept_genes, n_samples) log10(CP10M+1)
    with gene columns ensembl_id, symbol, biotype, mean and sample columns
    sample_id, dataset, series_id; ``out_genes`` TSV of every gene with
    kept (bool) and reason.

    Raises
    ------
    InputError
        If no gene passes the filters.
    """
    table = pd.read_parquet(qc_table)
    with timed("merge passing samples"):
        counts, genes, samples = _merge_passing(matrices, table)
    totals = table.set_index("sample_id").loc[samples["sample_id"], "total_counts"].to_numpy()
    with timed(f"CP10M + log10 of {counts.shape[0]} genes x {counts.shape[1]} samples"):
        values = normalize.cp10m_log10(counts, totals=totals)
    del counts
    genes["mean"] = values.mean(axis=1)
    reason = normalize.gene_filter_reasons(genes, biotypes=list(biotypes), min_mean=min_mean,
                                           deduplicate_by=deduplicate_by)
    kept = reason == ""
    genes["kept"] = kept
    genes["reason"] = np.where(kept, "", reason)
    if not kept.any():
        counts_by = pd.Series(reason).value_counts().to_dict()
        raise InputError(f"{qc_table}: no gene passes the normalization filters ({counts_by})")
    with atomic_path(out_genes) as tmp:
        genes.to_csv(tmp, sep="\t", index=False)
    io.write_matrix(out_matrix, values[kept],
                    genes={c: genes.loc[kept, c].to_numpy() for c in ("ensembl_id", "symbol", "biotype", "mean")},
                    samples={c: samples[c].to_numpy(dtype=object) for c in ("sample_id", "dataset", "series_id")},
                    attrs={"values": "log10(CP10M+1)"})
    stats = {"genes_in": int(len(genes)), "genes_kept": int(kept.sum()), "samples": int(values.shape[1]),
             "by_biotype": genes.loc[kept, "biotype"].value_counts().to_dict()}
    log.info("normalized: %s", stats)
    return stats


def fit_bin_reference(*, matrix: PathLike, n_bins: int, fraction: float, min_points: int, out_reference: PathLike) -> None:
    """Fit and save the per-gene Binning-By-Gene reference (HDF5: genes, values, attrs)."""
    m = io.read_matrix(matrix)
    ref = normalize.fit_bin_reference(m.matrix, m.genes["ensembl_id"].to_numpy(), n_bins=n_bins,
                                      fraction=fraction, min_points=min_points)
    save_bin_reference(ref, out_reference)
    log.info("bin reference: %d genes x %d points from %d samples", *ref.values.shape, ref.n_training_samples)


def save_bin_reference(ref: normalize.BinReference, path: PathLike) -> None:
    """Write a :class:`generain.normalize.BinReference` to HDF5 atomically.

    The values are stored uncompressed: every streaming pass-2 job reads the
    whole reference (~290 MB at 36,000 genes x 2,000 points), and inflating
    it took ~1.3 s per job.
    """
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset("gene_ids", data=ref.gene_ids.astype(object), dtype=h5py.string_dtype())
        h5.create_dataset("values", data=ref.values)
        h5.attrs["n_bins"] = ref.n_bins
        h5.attrs["n_training_samples"] = ref.n_training_samples


def load_bin_reference(path: PathLike) -> normalize.BinReference:
    """Read a reference written by :func:`save_bin_reference`."""
    if not Path(path).exists():
        raise InputError(f"{path}: binning reference not found")
    with h5py.File(path, "r") as h5:
        return normalize.BinReference(io.decode_strings(h5["gene_ids"][()]), h5["values"][()],
                                      int(h5.attrs["n_bins"]), int(h5.attrs["n_training_samples"]))


def transform_expression(
    *, matrix: PathLike, method: str, n_bins: int, reference: PathLike | None, out_scores: PathLike
) -> None:
    """Per-sample gene scores used by the tokenizer (bins, |z| or rank values).

    With ``method == "binning"`` and no ``reference``, exact Binning-By-Gene over
    the run's own samples; with a saved ``reference``, the samples are binned
    against it (genes it lacks are dropped).
    """
    m = io.read_matrix(matrix)
    genes = m.genes
    with timed(f"{method} of {m.matrix.shape[0]} genes x {m.matrix.shape[1]} samples"):
        if method == "binning" and reference:
            ref = load_bin_reference(reference)
            if ref.n_bins != n_bins:
                raise InputError(f"{reference}: the reference has {ref.n_bins} bins but normalization.n_bins "
                                 f"is {n_bins}; set them equal")
            scores, rows = normalize.apply_bin_reference(m.matrix, genes["ensembl_id"].to_numpy(), ref)
            genes = genes.iloc[rows].reset_index(drop=True)
        else:
            scores, _ = normalize.gene_scores(m.matrix, method, n_bins=n_bins)  # type: ignore[arg-type]
    io.write_matrix(out_scores, scores, genes={c: genes[c].to_numpy() for c in genes.columns},
                    samples={c: m.samples[c].to_numpy() for c in m.samples.columns},
                    attrs={"method": method, "n_bins": n_bins})


# ---------------------------------------------------------------------------
# streaming normalization (ARCHS4 scale): plan, pass 1, gather, pass 2
# ---------------------------------------------------------------------------

def plan_stream(
    *,
    path: PathLike,
    name: str,
    species_name: str,
    gene_table: PathLike | None,
    shard_samples: int,
    out_plan: PathLike,
) -> dict[str, Any]:
    """Cut an ARCHS4 file into sample shards for the streaming passes.

    Reads only the file's header and metadata. Output ``out_plan`` (JSON):
    the ingest report's fields (dataset, path, format, species, samples,
    genes: :func:`generain.annotation.matching_report`) plus n_genes,
    chunk_width and shards, a list of [start, stop) sample ranges aligned to
    the chunk width (:func:`generain.stream.shard_bounds`).

    Raises
    ------
    InputError
        If the file is not an ARCHS4 gene-count file, or no gene id matches.
    """
    n_genes, n_samples, width = stream.archs4_shape(path)
    cm = io.read_archs4(path, sample_range=(0, 0), progress=False)  # gene metadata only
    _require_unique_samples(io.read_archs4_sample_ids(path), path)
    genes = (annotation.read_gene_table(gene_table) if gene_table
             else annotation.gene_table_from_source(cm, source=str(path)))
    report = annotation.matching_report(cm.gene_ids, annotation.map_gene_ids(cm.gene_ids, genes))
    if report["matched"] == 0:
        raise InputError(f"{path}: none of its {n_genes} gene ids match the annotation's Ensembl ids or symbols "
                         f"(first ids: {', '.join(map(str, cm.gene_ids[:5]))})")
    bounds = stream.shard_bounds(n_samples, chunk_width=width, shard_samples=shard_samples)
    plan = {"dataset": name, "path": str(path), "format": "archs4", "species": species_name, "samples": n_samples,
            "genes": report, "n_genes": n_genes, "chunk_width": width, "shards": [list(b) for b in bounds]}
    write_json(plan, out_plan)
    log.info("%s: %d genes x %d samples (chunks of %d samples) in %d shards of up to %d samples",
             path, n_genes, n_samples, width, len(bounds), bounds[0][1] - bounds[0][0] if bounds else 0)
    return plan


def _plan_shard(plan: PathLike, shard: int) -> tuple[dict[str, Any], int, int]:
    p = json.loads(Path(plan).read_text())
    if not 0 <= shard < len(p["shards"]):
        raise InputError(f"{plan}: no shard {shard} (the plan has {len(p['shards'])})")
    start, stop = p["shards"][shard]
    return p, int(start), int(stop)


def scan_stream_shard(
    *,
    plan: PathLike,
    shard: int,
    gene_table: PathLike | None,
    criteria: qc.QCCriteria,
    sketch_points: int,
    biotypes: Sequence[str],
    matrix_fraction: float,
    seed: int,
    out_qc: PathLike,
    out_sketch: PathLike,
    out_scratch: PathLike,
) -> int:
    """Streaming pass 1 on one shard (:func:`generain.stream.scan_shard`).

    Outputs: ``out_qc`` (parquet, columns of :data:`generain.qc.QC_COLUMNS`,
    the shard's samples in file order), ``out_sketch``
    (:func:`generain.stream.write_sketch`; rows of the vocabulary
    ``biotypes`` sketched) and ``out_scratch``
    (:func:`generain.stream.write_scratch`: those rows' log10(CP10M+1) for
    pass 2, float32, 4 bytes per gene and passing sample). Returns the
    passing samples.
    """
    avoid_huge_page_stalls()
    p, start, stop = _plan_shard(plan, shard)
    genes = annotation.read_gene_table(gene_table) if gene_table else None
    with timed(f"scan {p['dataset']} shard {shard} (samples {start}..{stop})"):
        table, sketch = stream.scan_shard(p["path"], start, stop, dataset=p["dataset"], genes=genes,
                                          criteria=criteria, sketch_points=sketch_points, biotypes=list(biotypes),
                                          matrix_fraction=matrix_fraction, seed=seed)
    stream.write_sketch(sketch, out_sketch)
    stream.write_scratch(sketch, out_scratch)
    write_parquet(pa.Table.from_pandas(table[list(qc.QC_COLUMNS)], schema=qc.QC_SCHEMA, preserve_index=False),
                  out_qc)
    log.info("shard %d: %d of %d samples pass QC; %d of them kept for the matrix", shard, sketch.n_passing,
             len(table), 0 if sketch.matrix_samples is None else len(sketch.matrix_samples))
    return sketch.n_passing


def merge_stream(
    *,
    sketches: Sequence[PathLike],
    biotypes: Sequence[str],
    min_mean: float,
    deduplicate_by: str,
    reference_points: int,
    n_bins: int,
    out_genes: PathLike,
    out_reference: PathLike,
    out_matrix: PathLike,
    out_scores: PathLike,
) -> dict[str, Any]:
    """Streaming gather for one species: gene filters, merged reference, the subsampled matrix.

    Outputs, at the paths of the in-memory path's ``normalize/{species}/``:

    - ``out_genes``: genes.tsv as :func:`normalize_counts` writes it, plus
      ``source_row`` (the gene's row in the ARCHS4 file); ``mean`` is empty
      for genes outside the vocabulary biotypes (pass 1 does not sketch them);
    - ``out_reference``: the merged per-gene reference
      (:func:`generain.stream.merge_sketches`; values float32 (n_kept,
      reference_points), the non-zero log10(CP10M+1) values at evenly spaced
      ranks; usable as ``normalization.reference`` of another run);
    - ``out_matrix``: log10(CP10M+1) float32 (n_kept, n_selected) of the
      passing samples selected in pass 1 (``normalization.matrix_fraction``),
      gene columns ensembl_id, symbol, biotype, mean (over *all* passing
      samples), sample columns sample_id, dataset, series_id;
    - ``out_scores``: their bins against the merged reference
      (:func:`generain.stream.bin_against_reference`), same layout.

    Raises
    ------
    InputError
        As :func:`generain.stream.merge_sketches`.
    """
    with timed(f"merge {len(sketches)} shard sketches"):
        genes, ref = stream.merge_sketches(list(sketches), biotypes=list(biotypes), min_mean=min_mean,
                                           deduplicate_by=deduplicate_by, reference_points=reference_points,
                                           n_bins=n_bins)
    kept = genes[genes["kept"]].reset_index(drop=True)
    with h5py.File(sketches[0], "r") as h5:
        sketch_rows = np.searchsorted(h5["source_rows"][()], kept["source_row"].to_numpy())
    parts = [stream.read_sketch_matrix(p, sketch_rows) for p in sketches]
    counts = np.concatenate([c for c, _ in parts], axis=1)
    samples = pd.concat([s for _, s in parts], ignore_index=True)
    values = normalize.cp10m_log10(counts, totals=samples["total_counts"].to_numpy())
    scores = stream.bin_against_reference(values, ref.values, n_bins=n_bins)
    if not len(samples):
        log.warning("no sample selected for the matrix (normalization.matrix_fraction); the SVD baseline and the "
                    "comparison corpora need some")
    with atomic_path(out_genes) as tmp:
        genes.to_csv(tmp, sep="\t", index=False)
    save_bin_reference(ref, out_reference)
    gene_cols = {c: kept[c].to_numpy() for c in ("ensembl_id", "symbol", "biotype", "mean")}
    sample_cols = {c: samples[c].to_numpy(dtype=object) for c in ("sample_id", "dataset", "series_id")}
    io.write_matrix(out_matrix, values, genes=gene_cols, samples=sample_cols, attrs={"values": "log10(CP10M+1)"})
    io.write_matrix(out_scores, scores, genes=gene_cols, samples=sample_cols,
                    attrs={"method": "binning", "n_bins": n_bins})
    stats = {"genes_in": int(len(genes)), "genes_kept": int(len(kept)), "samples": int(ref.n_training_samples),
             "matrix_samples": int(len(samples))}
    log.info("streamed normalization: %s", stats)
    return stats


def _kept_genes(path: PathLike) -> pd.DataFrame:
    """The kept rows of a genes.tsv (:func:`normalize_counts`, :func:`merge_stream`), in file order."""
    g = pd.read_csv(path, sep="\t", dtype={"symbol": str}, keep_default_na=False)
    return g[g["kept"].astype(str) == "True"].reset_index(drop=True)


def stream_vocab(*, genes: Sequence[PathLike], species_names: Sequence[str], out_vocab: PathLike) -> int:
    """The vocabulary of the streaming path: kept genes of each species' genes.tsv, in order.

    Equal to the vocabulary :func:`tokenize_corpus` builds from the in-memory
    path's matrices (kept genes in Ensembl-id order, species in the given order).
    """
    parts = []
    for path, sp in zip(genes, species_names, strict=True):
        parts.append(_kept_genes(path)[["ensembl_id", "symbol", "biotype"]].assign(species=sp))
    vocab = tokenize.build_vocab(pd.concat(parts, ignore_index=True))
    tokenize.write_vocab(vocab, out_vocab)
    return len(vocab)


def bin_stream_shard(
    *,
    plan: PathLike,
    shard: int,
    qc_table: PathLike,
    sketch: PathLike,
    scratch: PathLike,
    genes: PathLike,
    reference: PathLike,
    vocab: PathLike,
    species_name: str,
    length: int,
    out_tokens: PathLike,
) -> int:
    """Streaming pass 2 on one shard: bins against the merged reference, then tokens.

    Reads pass 1's ``scratch`` and ``sketch`` (:func:`generain.stream.bin_shard`).
    Output ``out_tokens``: a folder with ``genes.npy`` and ``expr.npy``
    (:func:`generain.tokenize.tokenize_samples` of the shard's passing
    samples, in file order) and ``samples.parquet`` (sample_id, n_tokens,
    species). Returns the samples written.

    Raises
    ------
    InputError
        If the reference's genes differ from genes.tsv's kept genes, or the
        scratch from the sketch or the QC table.
    """
    avoid_huge_page_stalls()
    p, start, stop = _plan_shard(plan, shard)
    kept = _kept_genes(genes)
    ref = load_bin_reference(reference)
    if kept["ensembl_id"].tolist() != list(ref.gene_ids):
        raise InputError(f"{reference}: its genes differ from the kept genes of {genes}; rerun merge_stream")
    v = tokenize.read_vocab(vocab)
    v = v[v["species"] == species_name]
    token_ids = pd.Series(v["token_id"].to_numpy(), index=v["ensembl_id"]).loc[kept["ensembl_id"]].to_numpy()
    with timed(f"bin {p['dataset']} shard {shard} (samples {start}..{stop})"):
        bins, values, samples = stream.bin_shard(scratch, sketch=sketch, qc_table=pd.read_parquet(qc_table),
                                                 source_rows=kept["source_row"].to_numpy(), reference=ref)
    with timed(f"tokenize {bins.shape[1]} samples (length {length})"):
        gt, et, nt = tokenize.tokenize_samples(bins, normalize.eligible_mask(bins, "binning"), values, token_ids,
                                               length=length)
    with atomic_path(out_tokens) as tmp:
        tmp.mkdir(parents=True)
        np.save(tmp / "genes.npy", gt)
        np.save(tmp / "expr.npy", et)
        index = pd.DataFrame({"sample_id": samples["sample_id"].to_numpy(dtype=object),
                              "n_tokens": nt, "species": species_name})
        write_parquet(pa.Table.from_pandas(index, preserve_index=False), tmp / "samples.parquet")
    return len(index)


def gather_stream_tokens(
    *,
    parts: Sequence[PathLike],
    validation_fraction: float,
    seed: int,
    out_shards: PathLike,
    out_index: PathLike,
) -> dict[str, Any]:
    """Token shards and index of the streaming path: one token shard per data shard.

    Shard k of ``out_shards`` is the k-th non-empty part (``genes_{k:05d}.npy``,
    ``expr_{k:05d}.npy``, hard-linked when the file system allows, else
    copied). The index (as :func:`generain.tokenize.write_token_shards`)
    lists the samples in part order with one seeded train/validation split
    (:func:`generain.tokenize.split_samples`), so with the parts in the
    in-memory path's sample order the split is the same.
    """
    frames = []
    with atomic_path(out_shards) as tmp:
        tmp.mkdir(parents=True)
        k = 0
        for part in map(Path, parts):
            idx = pd.read_parquet(part / "samples.parquet")
            if not len(idx):
                continue
            for kind in ("genes", "expr"):
                dst = tmp / f"{kind}_{k:05d}.npy"
                try:
                    os.link(part / f"{kind}.npy", dst)
                except OSError:
                    shutil.copyfile(part / f"{kind}.npy", dst)
            frames.append(idx.assign(shard=np.int32(k), row=np.arange(len(idx), dtype=np.int32)))
            k += 1
    index = pd.concat(frames, ignore_index=True)
    index["split"] = tokenize.split_samples(len(index), validation_fraction=validation_fraction, seed=seed)
    index = index[["sample_id", "split", "shard", "row", "n_tokens", "species"]]
    index["n_tokens"] = index["n_tokens"].astype(np.int32)
    write_parquet(pa.Table.from_pandas(index, preserve_index=False), out_index)
    stats = {"samples": int(len(index)), "shards": k, "train_samples": int((index["split"] == "train").sum()),
             "median_tokens_per_sample": float(index["n_tokens"].median())}
    log.info("tokens: %s", stats)
    return stats


# ---------------------------------------------------------------------------
# tokenize
# ---------------------------------------------------------------------------

def tokenize_corpus(
    *,
    matrices: Sequence[PathLike],
    scores: Sequence[PathLike],
    species_names: Sequence[str],
    length: int,
    validation_fraction: float,
    seed: int,
    shard_size: int,
    out_vocab: PathLike,
    out_shards: PathLike,
    out_index: PathLike,
    orthologs: PathLike | None = None,
    shared_tokens: int = 0,
    train_fraction: float = 0.95,
    out_shared: PathLike | None = None,
) -> dict[str, Any]:
    """Vocabulary, token shards and index for the run's samples, of one species or both.

    Each species comes normalized against its own per-gene reference
    (``normalize/{species}/``). The vocabulary lists the first species' genes,
    then the second's; mouse tokens carry the ``m_`` prefix (GeneRAIN-HM).
    Samples of both species are pooled and split into train/validation with
    one seeded draw; the training loader shuffles them, so the mixed-species
    model sees human and mouse samples interleaved (the paper's main setting).

    Parameters
    ----------
    matrices, scores : sequence of path-like
        Per species (same order as ``species_names``): log10(CP10M+1) matrix and
        its gene scores (bins), genes x samples.
    species_names : sequence of str
        "human" and/or "mouse", one per matrix.
    orthologs, shared_tokens, train_fraction
        Shared-token model: the first ``shared_tokens`` training ortholog pairs
        (:func:`generain.species.shared_token_pairs`) get one token, the human
        gene's; the mouse gene then has no token of its own.
    out_shared : path-like, optional
        TSV of the shared pairs (human_ensembl_id, mouse_ensembl_id); required
        with ``shared_tokens``.

    Raises
    ------
    InputError
        If ``shared_tokens`` is asked for without both species and an ortholog table.
    """
    parts = []
    for mpath, spath, sp in zip(matrices, scores, species_names, strict=True):
        m = io.read_matrix(mpath)
        s = io.read_matrix(spath)
        log_values = m.matrix[pd.Index(m.genes["ensembl_id"]).get_indexer(s.genes["ensembl_id"])]
        parts.append((sp, s, log_values, s.genes.assign(species=sp)))
    shared = pd.DataFrame(columns=["human_ensembl_id", "mouse_ensembl_id"])
    if shared_tokens:
        names = [p[0] for p in parts]
        if sorted(names) != ["human", "mouse"] or orthologs is None or out_shared is None:
            raise InputError(f"species.shared_tokens needs a human and a mouse corpus and an ortholog table "
                             f"(got species {names})")
        gh, gm = parts[names.index("human")][3], parts[names.index("mouse")][3]
        pairs = species.ortholog_pairs(gh["ensembl_id"], gm["ensembl_id"], annotation.read_orthologs(orthologs))
        mask = species.shared_token_pairs(pairs, shared_tokens, train_fraction=train_fraction, seed=seed)
        shared = pairs.loc[mask, ["human_ensembl_id", "mouse_ensembl_id"]].reset_index(drop=True)
    shared_m = set(shared["mouse_ensembl_id"])
    own = [g if sp != "mouse" else g[~g["ensembl_id"].isin(shared_m)] for sp, _, _, g in parts]
    genes_all = pd.concat(own, ignore_index=True)
    vocab = tokenize.build_vocab(genes_all)
    tok = dict(zip(zip(vocab["species"], vocab["ensembl_id"]), vocab["token_id"]))
    m2h = dict(zip(shared["mouse_ensembl_id"], shared["human_ensembl_id"]))
    gt, et, nt, ids, sp_col = [], [], [], [], []
    stats: dict[str, Any] = {"species": {}}
    for sp, s, log_values, genes in parts:
        token_ids = np.array([tok[(sp, g)] if (sp, g) in tok else tok[("human", m2h[g])]
                              for g in genes["ensembl_id"]], dtype=np.int64)
        method = str(s.attrs["method"])
        with timed(f"tokenize {s.matrix.shape[1]} {sp} samples (length {length})"):
            g_, e_, n_ = tokenize.tokenize_samples(s.matrix, normalize.eligible_mask(s.matrix, method), log_values,
                                                   token_ids, length=length)
        gt.append(g_)
        et.append(e_)
        nt.append(n_)
        ids.append(s.samples["sample_id"].to_numpy())
        sp_col.append(np.full(len(s.samples), sp, dtype=object))
        stats["species"][sp] = {"genes": int(len(genes)), "samples": int(len(s.samples)),
                                "by_biotype": genes["biotype"].value_counts().to_dict()}
    gt_a, et_a, nt_a = np.concatenate(gt), np.concatenate(et), np.concatenate(nt)
    split = tokenize.split_samples(len(nt_a), validation_fraction=validation_fraction, seed=seed)
    tokenize.write_token_shards(out_shards, out_index, sample_ids=np.concatenate(ids), gene_tokens=gt_a,
                                expr_tokens=et_a, n_tokens=nt_a, split=split, shard_size=shard_size,
                                extra={"species": np.concatenate(sp_col)})
    tokenize.write_vocab(vocab, out_vocab)
    if out_shared is not None:
        with atomic_path(out_shared) as tmp:
            shared.to_csv(tmp, sep="\t", index=False)
    stats.update({"vocab_size": int(len(vocab)), "gene_tokens": int(len(genes_all)),
                  "shared_tokens": int(len(shared)), "by_biotype": genes_all["biotype"].value_counts().to_dict(),
                  "samples": int(len(split)), "train_samples": int((split == "train").sum()),
                  "validation_samples": int((split == "validation").sum()),
                  "median_tokens_per_sample": float(np.median(nt_a))})
    log.info("tokens: %s", stats)
    return stats


def make_pseudo_species_corpus(
    *,
    matrix: PathLike,
    orthologs: PathLike,
    method: str,
    n_bins: int,
    length: int,
    validation_fraction: float,
    seed: int,
    shard_size: int,
    out_vocab: PathLike,
    out_shards: PathLike,
    out_index: PathLike,
) -> dict[str, Any]:
    """GeneRAIN-HM's pseudo-species control corpus from one species' samples.

    Samples are split in seeded halves. Each half is normalized against its own
    samples (each "species" has its own per-gene reference). In the second half
    every gene with a one-to-one mouse ortholog is renamed to the mouse gene
    (token ``m_<mouse Ensembl id>``, species "mouse"); its genes without an
    ortholog are removed, as a mouse sample cannot contain them.
    """
    m = io.read_matrix(matrix)
    orth = annotation.read_orthologs(orthologs)
    second = species.split_halves(m.matrix.shape[1], seed=seed)
    h2m = orth.set_index("human_ensembl_id")
    hum_genes = m.genes.assign(species="human")[["ensembl_id", "symbol", "biotype", "species"]]
    has_orth = hum_genes["ensembl_id"].isin(h2m.index).to_numpy()
    mou_genes = pd.DataFrame({
        "ensembl_id": h2m.loc[hum_genes.loc[has_orth, "ensembl_id"], "mouse_ensembl_id"].to_numpy(),
        "symbol": (h2m.loc[hum_genes.loc[has_orth, "ensembl_id"], "mouse_symbol"].to_numpy()
                   if "mouse_symbol" in h2m else ""),
        "biotype": hum_genes.loc[has_orth, "biotype"].to_numpy(),
        "species": "mouse",
    })
    vocab = tokenize.build_vocab(pd.concat([hum_genes, mou_genes], ignore_index=True))
    n_h = len(hum_genes)
    ids_h = vocab["token_id"].to_numpy()[3:3 + n_h]
    ids_m = vocab["token_id"].to_numpy()[3 + n_h:]
    parts = []
    for half, rows, ids in ((~second, np.arange(n_h), ids_h), (second, np.flatnonzero(has_orth), ids_m)):
        vals = m.matrix[np.ix_(rows, np.flatnonzero(half))]
        sc, ok = normalize.gene_scores(vals, method, n_bins=n_bins)  # type: ignore[arg-type]
        parts.append(tokenize.tokenize_samples(sc, ok, vals, ids, length=length))
    gt = np.concatenate([parts[0][0], parts[1][0]])
    et = np.concatenate([parts[0][1], parts[1][1]])
    nt = np.concatenate([parts[0][2], parts[1][2]])
    sample_ids = np.concatenate([m.samples["sample_id"].to_numpy()[~second],
                                 "m_" + m.samples["sample_id"].to_numpy()[second].astype(object)])
    sp = np.array(["human"] * int((~second).sum()) + ["mouse"] * int(second.sum()), dtype=object)
    split = tokenize.split_samples(len(sample_ids), validation_fraction=validation_fraction, seed=seed)
    tokenize.write_token_shards(out_shards, out_index, sample_ids=sample_ids, gene_tokens=gt, expr_tokens=et,
                                n_tokens=nt, split=split, shard_size=shard_size, extra={"species": sp})
    tokenize.write_vocab(vocab, out_vocab)
    stats = {"human_samples": int((~second).sum()), "mouse_samples": int(second.sum()),
             "human_genes": int(n_h), "mouse_genes": int(len(mou_genes)), "vocab_size": int(len(vocab))}
    log.info("pseudo-species corpus: %s", stats)
    return stats


# ---------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------

def train_model(
    *,
    model_type: str,
    shards: PathLike,
    index: PathLike,
    vocab: PathLike,
    model: dict[str, Any],
    length: int,
    train: dict[str, Any],
    epochs: int,
    seed: int,
    threads: int,
    title: str,
    out_checkpoint: PathLike,
    out_metrics: PathLike,
    out_summary: PathLike,
    out_plot: PathLike,
) -> dict[str, Any]:
    """Train one model type on a token corpus and plot its loss curve.

    ``model`` holds the :class:`generain.model.ModelConfig` shape (config key
    ``model``), ``train`` the config key ``train``; see
    :func:`generain.training.train_model` for the outputs and
    :func:`generain.training.launch_training` for multi-process runs.
    """
    from .training import launch_training

    n_genes = len(tokenize.read_vocab(vocab))
    kwargs = dict(
        model_type=model_type, shard_dir=str(shards), index_path=str(index), n_genes=n_genes, length=length,
        checkpoint_path=str(out_checkpoint), metrics_path=str(out_metrics), summary_path=str(out_summary),
        model=dict(model), epochs=epochs, seed=seed, threads=threads,
        **{k: train[k] for k in ("batch_size", "accumulate_grad_batches", "max_lr", "div_factor", "pct_start",
                                 "weight_decay", "schedule_per", "gradient_clip_val", "mask_fraction",
                                 "accelerator", "devices", "num_nodes", "precision", "compile",
                                 "checkpoint_every_n_steps", "num_workers", "progress_bar")},
    )
    if train["accelerator"] == "cpu" and train["devices"] > 1:  # the rule's threads are shared by the ranks
        kwargs["threads"] = max(1, threads // train["devices"])
    summary = launch_training(kwargs, launcher=train["launcher"])
    from .model import N_EXPR_BINS

    vocab_size = N_EXPR_BINS + 1 if model_type == "bert_pred_expr" else n_genes  # output classes: bins or genes
    plots.loss_plot(pd.read_csv(out_metrics), out_plot, title=title, vocab_size=vocab_size)
    return summary


# ---------------------------------------------------------------------------
# embeddings, sweep, lncRNA, species
# ---------------------------------------------------------------------------

def export_embeddings(*, checkpoint: PathLike, vocab: PathLike, out_w2v: PathLike, out_parquet: PathLike) -> int:
    """Export a trained model's gene embeddings for the vocabulary's genes.

    gpt and bert_pred_genes: the token-embedding matrix; bert_pred_expr: the
    position-embedding matrix, whose rows are indexed by gene token id.
    """
    from .training import load_model

    model_type, model = load_model(checkpoint)
    v = tokenize.read_vocab(vocab)
    table = embed.gene_embedding_table(v, model.gene_embedding().numpy())
    embed.write_embeddings(table, w2v_path=out_w2v, parquet_path=out_parquet)
    where = "position (gene) embedding" if model_type == "bert_pred_expr" else "token embedding"
    log.info("exported the %s of %s: %d genes x %d dimensions", where, model_type, len(table), model.cfg.n_embd)
    return len(table)


def _read_gene_sets(paths: Sequence[PathLike], gene_table: PathLike | None = None) -> pd.DataFrame:
    genes = annotation.read_gene_table(gene_table) if gene_table else None
    return pd.concat([annotation.read_gene_sets(p, gene_table=genes) for p in paths],
                     ignore_index=True).drop_duplicates()


def _split_embedding(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    human = table[table["species"].isin(["human", ""])]
    return (human[human["biotype"] == "protein_coding"].reset_index(drop=True),
            human[human["biotype"] == "lncRNA"].reset_index(drop=True))


def catalogue_properties(
    *,
    embedding: PathLike,
    gene_sets: Sequence[PathLike],
    gene_table: PathLike | None,
    min_genes: int,
    max_genes: int,
    max_jaccard: float,
    max_properties: int | None,
    folds: int,
    seed: int,
    out_catalogue: PathLike,
) -> dict[str, Any]:
    """Choose the sweep's properties for one embedding's protein-coding genes.

    Output: sweep/{model}/properties.parquet, every gene set with source, term_id,
    term_name, n_genes, n_positive, kept, reason, jaccard_duplicate_of
    (:func:`generain.sweep.property_catalogue`).
    """
    if min_genes < folds:
        raise InputError(f"config sweep.min_genes ({min_genes}) must be at least sweep.folds ({folds}): "
                         "every fold needs a member of the gene set")
    pc, _ = _split_embedding(embed.read_embeddings(embedding))
    sets = _read_gene_sets(gene_sets, gene_table)
    cat = sweep.property_catalogue(sets, pc["ensembl_id"].to_numpy(), min_genes=min_genes, max_genes=max_genes,
                                   max_jaccard=max_jaccard, max_properties=max_properties, seed=seed)
    n_kept = int(cat["kept"].sum())
    if n_kept == 0:
        raise InputError(f"{list(map(str, gene_sets))}: no gene set has {min_genes}-{max_genes} protein-coding "
                         "genes in the vocabulary")
    write_parquet(pa.Table.from_pandas(cat, preserve_index=False), out_catalogue)
    reasons = cat.loc[~cat["kept"], "reason"].str.replace(r" of .*| \(seed.*", "", regex=True).value_counts()
    stats = {"gene_sets": int(len(cat)), "kept": n_kept, "kept_by_source": cat[cat["kept"]].groupby("source").size()
             .astype(int).to_dict(), "dropped": {str(k): int(v) for k, v in reasons.items()}}
    log.info("property catalogue: %s", stats)
    return stats


def sweep_properties(
    *,
    embedding: PathLike,
    gene_sets: Sequence[PathLike],
    gene_table: PathLike | None,
    catalogue: PathLike,
    shard: int,
    n_shards: int,
    folds: int,
    c: float,
    seed: int,
    batch_size: int,
    device: str,
    max_iter: int,
    tol: float,
    threads: int,
    out_shard: PathLike,
) -> int:
    """Cross-validated classifiers of one shard of the kept properties on one embedding.

    The kept properties, in catalogue order, are cut into ``n_shards`` contiguous
    parts; this job fits part ``shard`` (0-based). Output: a parquet with the AUC
    table's columns, n_iter, converged, and the classifier (intercept, coef, and
    the out-of-fold precision columns of :class:`generain.sweep.SweepResult`).
    """
    import torch

    torch.set_num_threads(max(1, threads))
    if not 0 <= shard < n_shards:
        raise InputError(f"shard {shard} is not in 0..{n_shards - 1}")
    pc, _ = _split_embedding(embed.read_embeddings(embedding))
    cat = pd.read_parquet(catalogue)
    kept = cat[cat["kept"]].reset_index(drop=True)
    part = kept.iloc[np.array_split(np.arange(len(kept)), n_shards)[shard]]
    sets = _read_gene_sets(gene_sets, gene_table)
    genes = pc["ensembl_id"].to_numpy()
    # an embedding that covers fewer genes than the catalogue's model (an external one) may leave a
    # property with too few members or non-members for the folds: it gets a row with NaN AUC
    y = sweep.memberships(sets, part, genes)
    n_pos = np.asarray(y.sum(1)).ravel()
    fit = (n_pos >= folds) & (len(genes) - n_pos >= folds)
    if not fit.all():
        log.warning("%d of %d properties have fewer than %d members or non-members among this embedding's %d "
                    "genes: AUC NaN", int((~fit).sum()), len(part), folds, len(genes))
    with timed(f"sweep shard {shard + 1}/{n_shards}: {int(fit.sum())} properties on {len(pc)} protein-coding "
               f"genes x {len(pc['embedding'].iloc[0])} dimensions"):
        res = sweep.run_sweep(embed.embedding_matrix(pc), genes, sets, part[fit], folds=folds, c=c, seed=seed,
                              batch_size=batch_size, device=device, max_iter=max_iter, tol=tol,
                              labels=y[np.flatnonzero(fit)])
    table = res.auc.merge(res.classifiers, on=["source", "term_id"], how="left", validate="one_to_one")
    if not fit.all():
        skipped = part.loc[~fit, ["source", "term_id", "term_name"]].assign(
            n_positive=n_pos[~fit], auc=np.nan, average_precision=np.nan, n_iter=0, converged=False)
        table = pd.concat([table, skipped], ignore_index=True)
        order = part[["source", "term_id"]].reset_index(drop=True).reset_index()
        table = table.merge(order, on=["source", "term_id"]).sort_values("index").drop(columns="index")
    write_parquet(pa.Table.from_pandas(table, preserve_index=False), out_shard)
    return len(table)


def gather_sweep(
    *,
    shards: Sequence[PathLike],
    catalogue: PathLike,
    model_name: str,
    out_auc: PathLike,
    out_classifiers: PathLike,
    out_plot: PathLike,
) -> dict[str, Any]:
    """Join the sweep's shards: sweep/{model}/auc.parquet, classifiers.parquet and the AUC plot.

    ``auc.parquet``: source, term_id, term_name, n_positive, auc,
    average_precision (the contract), then n_iter and converged.
    ``classifiers.parquet``: source, term_id, intercept, coef, precision_{t},
    n_called_{t}.
    """
    parts = pd.concat([t for t in (pd.read_parquet(p) for p in shards) if len(t)], ignore_index=True)
    kept = pd.read_parquet(catalogue).query("kept")
    missing = set(zip(kept["source"], kept["term_id"])) - set(zip(parts["source"], parts["term_id"]))
    if missing or len(parts) != len(kept):
        raise InputError(f"{len(shards)} sweep shards hold {len(parts)} properties, the catalogue {catalogue} keeps "
                         f"{len(kept)} (missing e.g. {sorted(missing)[:3]})")
    auc_cols = [*sweep.AUC_COLUMNS, "n_iter", "converged"]
    auc = parts[auc_cols]
    clf = parts[["source", "term_id", *[c for c in parts.columns if c not in auc_cols]]]
    write_parquet(pa.Table.from_pandas(auc, preserve_index=False), out_auc)
    write_parquet(pa.Table.from_pandas(clf, preserve_index=False), out_classifiers)
    plots.auc_plot(auc, out_plot, title=f"{model_name}: {len(auc)} properties, median AUC {auc['auc'].median():.3f}")
    stats = {"properties": int(len(auc)), "median_auc": float(auc["auc"].median()),
             "not_converged": int((~auc["converged"]).sum()),
             "median_auc_by_source": auc.groupby("source")["auc"].median().round(4).to_dict()}
    log.info("sweep: %s", stats)
    return stats


def predict_lncrna(
    *,
    embedding: PathLike,
    classifiers: PathLike,
    catalogue: PathLike,
    top_k: int,
    properties_per_batch: int,
    out_predictions: PathLike,
    out_top: PathLike,
) -> int:
    """Apply each property's classifier, refit on all protein-coding genes, to every lncRNA.

    Outputs: lncrna/{model}/predictions.parquet (ensembl_id, symbol, source,
    term_id, probability; streamed in row groups of whole properties) and
    lncrna/{model}/top_predictions.tsv (each lncRNA's ``top_k`` properties with
    the precision the cross-validation estimates at that probability: members
    among protein-coding genes whose out-of-fold probability reaches the grid
    value just below it).
    """
    from . import lncrna

    table = embed.read_embeddings(embedding)
    _, lnc = _split_embedding(table)
    if len(lnc) == 0:
        raise InputError(f"{embedding}: the vocabulary has no lncRNA genes to predict")
    clf = pd.read_parquet(classifiers)
    names = pd.read_parquet(catalogue, columns=["source", "term_id", "term_name"])
    props = clf[["source", "term_id"]].merge(names, on=["source", "term_id"], how="left")
    coef = np.stack(clf["coef"].to_numpy()).astype(np.float32)
    icpt = clf["intercept"].to_numpy(np.float32)
    x = embed.embedding_matrix(lnc)
    kw = dict(coef=coef, intercept=icpt, properties=props, lnc_embedding=x, lnc_ids=lnc["ensembl_id"].to_numpy(),
              lnc_symbols=lnc["symbol"].to_numpy(), properties_per_batch=properties_per_batch)
    with timed(f"lncRNA predictions: {len(lnc)} lncRNAs x {len(clf)} properties"):
        rows = lncrna.write_predictions(out_predictions, **kw)
    top = lncrna.top_predictions(k=top_k, **kw)
    # precision at the grid probability just below each prediction (NaN below the grid's first value)
    grid = np.asarray(sweep.PRECISION_GRID, dtype=np.float32)  # compared at the probabilities' precision
    curve = clf.set_index(["source", "term_id"])[sweep.precision_columns()]
    at = np.searchsorted(grid, top["probability"].to_numpy(), side="right") - 1
    pos = curve.index.get_indexer(pd.MultiIndex.from_frame(top[["source", "term_id"]]))
    vals = curve.to_numpy()[pos, np.clip(at, 0, None)]
    top["precision_at_probability"] = np.where(at >= 0, vals, np.nan)
    with atomic_path(out_top) as tmp:
        top.to_csv(tmp, sep="\t", index=False, float_format="%.4g")
    log.info("wrote %d predictions and the top %d properties of %d lncRNAs", rows, top_k, len(lnc))
    return rows


def make_baseline(
    *,
    kind: str,
    embedding: PathLike,
    matrix: PathLike | None,
    external: PathLike | None,
    seed: int,
    out_w2v: PathLike,
    out_parquet: PathLike,
) -> int:
    """Write one baseline embedding for the sweep, on the genes of a trained embedding.

    kind: ``random`` (Gaussian, same dimension), ``shuffled`` (the trained
    vectors with gene rows permuted within biotype), ``svd`` (truncated SVD of
    the normalized gene x sample matrix, same dimension), ``external`` (a
    word2vec text file, restricted to the genes both cover). See
    :mod:`generain.baselines`.
    """
    from . import baselines

    table = embed.read_embeddings(embedding)
    dim = len(table["embedding"].iloc[0])
    if kind == "random":
        out = baselines.random_embedding(table, dim=dim, seed=seed)
    elif kind == "shuffled":
        out = baselines.shuffled_embedding(table, seed=seed)
    elif kind == "svd":
        if matrix is None:
            raise InputError("the svd baseline needs the normalized matrix")
        out = baselines.svd_embedding(io.read_matrix(matrix), table, dim=dim, seed=seed)
    elif kind == "external":
        if external is None:
            raise InputError("the external baseline needs a word2vec file")
        out = baselines.external_embedding(external, table)
    else:
        raise InputError(f"unknown baseline kind {kind!r}")
    embed.write_embeddings(out, w2v_path=out_w2v, parquet_path=out_parquet)
    log.info("%s baseline: %d genes x %d dimensions", kind, len(out), len(out["embedding"].iloc[0]))
    return len(out)


def compare_embeddings(
    *,
    aucs: dict[str, PathLike],
    baselines: Sequence[str],
    out_comparison: PathLike,
    out_distribution: PathLike,
    out_plot: PathLike,
) -> pd.DataFrame:
    """Paired comparison of every embedding's property AUCs against every baseline.

    Outputs: sweep/comparison.tsv (:data:`generain.baselines.COMPARISON_COLUMNS`:
    paired Wilcoxon signed-rank test per source and overall),
    sweep/auc_distribution.tsv (median and quartiles per embedding and source),
    sweep/comparison.png (AUC per source, one box per embedding).
    """
    from . import baselines as bl

    tables = {name: pd.read_parquet(path) for name, path in aucs.items()}
    comparison = bl.compare_aucs(tables, baselines=list(baselines))
    dist = bl.auc_distribution_table(tables)
    with atomic_path(out_comparison) as tmp:
        comparison.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    with atomic_path(out_distribution) as tmp:
        dist.to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    n = min(len(t) for t in tables.values())
    plots.embedding_comparison_plot(tables, out_plot, title=f"ROC AUC per property source ({n}+ properties each)")
    log.info("embedding comparison (all sources):\n%s",
             comparison[comparison["source"] == bl.ALL_SOURCES].to_string(index=False))
    return comparison


SETTING_LABELS = {
    "mixed": "supervised (mixed-species model)",
    "shared": "shared + supervised",
    "separate": "separate models",
    "pseudo_species": "pseudo-species control",
    "expression_svd": "expression SVD per species (no model)",
}
"""The species.settings and their names in GeneRAIN-HM's ortholog-rank table."""


def align_species(
    *,
    setting: str,
    checkpoints: Sequence[PathLike],
    vocabs: Sequence[PathLike],
    orthologs: PathLike,
    train_fraction: float,
    refine_rounds: int,
    csls_k: int,
    seed: int,
    out_ranks: PathLike,
    out_best_match: PathLike,
    out_embedding: PathLike,
    out_w2v: PathLike,
    shared: PathLike | None = None,
    matrices: Sequence[PathLike] = (),
    dim: int = 0,
) -> dict[str, Any]:
    """Align one setting's human and mouse gene embeddings; rank every ortholog pair; its shuffled null.

    Settings (GeneRAIN-HM): ``mixed`` and ``pseudo_species`` (one model whose
    vocabulary holds both species), ``shared`` (one model whose first
    ``species.shared_tokens`` training orthologs share a token; ``shared``
    lists them), ``separate`` (one model per species: ``checkpoints`` and
    ``vocabs`` of the human model, then the mouse one). The alignment is
    :func:`generain.species.fit_alignment` on the training pairs.

    Outputs: ranks parquet (RANK_COLUMNS, shared_token, setting: ``setting``
    and ``{setting}_shuffled``), best-match parquet
    (:func:`generain.species.best_match_table`), the setting's embedding table
    (parquet and word2vec text; for ``separate`` the two models' vectors
    side by side in one table, not aligned). ``expression_svd`` needs no
    model: each species' genes get the truncated SVD of its own standardised
    log10(CP10M+1) matrix (``matrices``: human, then mouse; ``dim``
    components; :func:`generain.baselines.svd_embedding`), a linear
    co-expression reference for what the samples contain.
    """
    from .training import load_model

    if setting == "expression_svd":
        from .baselines import svd_embedding

        tables = []
        for path, sp in zip(matrices, ("human", "mouse"), strict=True):
            mat = io.read_matrix(path)
            g = mat.genes
            stub = pd.DataFrame({"token": ("m_" if sp == "mouse" else "") + g["ensembl_id"].astype(str),
                                 "ensembl_id": g["ensembl_id"], "symbol": g["symbol"], "biotype": g["biotype"],
                                 "species": sp, "embedding": [np.zeros(1, dtype=np.float32)] * len(g)})
            tables.append(svd_embedding(mat, stub, dim=dim, seed=seed))
    else:
        tables = [embed.gene_embedding_table(tokenize.read_vocab(v), load_model(c)[1].gene_embedding().numpy())
                  for c, v in zip(checkpoints, vocabs, strict=True)]
    if setting == "separate":
        if len(tables) != 2:
            raise ValueError("the separate setting needs a human and a mouse model")
        tables = [tables[0][tables[0]["species"] == "human"], tables[1][tables[1]["species"] == "mouse"]]
    table = pd.concat(tables, ignore_index=True)
    embed.write_embeddings(table, w2v_path=out_w2v, parquet_path=out_embedding)
    orth = annotation.read_orthologs(orthologs)
    sh = pd.read_csv(shared, sep="\t", dtype=str) if shared else None
    kw = {"train_fraction": train_fraction, "seed": seed, "refine_rounds": refine_rounds, "csls_k": csls_k,
          "shared": sh}
    al = species.align_embeddings(table, orth, **kw)  # one fit: ranks and best matches share it
    ranks = species.rank_table(al).assign(setting=setting)
    null = species.compare_embeddings(table, orth, shuffle=True, **kw).assign(setting=f"{setting}_shuffled")
    both = pd.concat([ranks, null], ignore_index=True)
    write_parquet(pa.Table.from_pandas(both, preserve_index=False), out_ranks)
    write_parquet(pa.Table.from_pandas(species.best_match_frame(al), preserve_index=False), out_best_match)
    out = {name: species.rank_summary(df[~df["shared_token"]], "test") for name, df in
           ((setting, ranks), (f"{setting}_shuffled", null))}
    log.info("%s: held-out pairs %s", setting, out)
    return out


def compare_species(
    *,
    ranks: dict[str, PathLike],
    model_name: str,
    out_ranks: PathLike,
    out_summary: PathLike,
    out_plot: PathLike,
) -> pd.DataFrame:
    """The ortholog-rank table in GeneRAIN-HM's form, from every setting's ranks.

    Outputs: species/{model}/ortholog_ranks.parquet (RANK_COLUMNS plus
    shared_token and setting: every setting and its shuffled null), the
    summary TSV (setting, label, split test/all, pairs, top1, top10, mrr; pairs
    sharing a token are left out) and a plot of the rank distributions.
    """
    both = pd.concat([pd.read_parquet(p) for p in ranks.values()], ignore_index=True)
    scored = {str(s): df[~df["shared_token"]] for s, df in both.groupby("setting", sort=False)}
    rows = []
    for setting, df in scored.items():
        base = setting.removesuffix("_shuffled")
        label = SETTING_LABELS.get(base, base) + (", row-shuffled null" if setting != base else "")
        for split in ("test", "all"):
            rows.append({"setting": setting, "label": label, "split": split, **species.rank_summary(df, split)})
    summary = pd.DataFrame(rows)
    write_parquet(pa.Table.from_pandas(both, preserve_index=False), out_ranks)
    with atomic_path(out_summary) as tmp:
        summary.to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    plots.rank_plot(scored, out_plot,
                    title=f"{model_name}: rank of the true ortholog among all genes of the other species")
    log.info("ortholog ranks:\n%s", summary.to_string(index=False))
    return summary


# ---------------------------------------------------------------------------
# summary
# ---------------------------------------------------------------------------

def summarize_run(
    *,
    run_name: str,
    ingest_reports: Sequence[PathLike],
    qc_table: PathLike,
    normalized_genes: dict[str, PathLike],
    vocab: PathLike,
    index: PathLike,
    train_summaries: dict[str, PathLike],
    auc: dict[str, PathLike],
    predictions: dict[str, PathLike],
    species_summaries: dict[str, PathLike],
    out_summary: PathLike,
    catalogues: dict[str, PathLike] | None = None,
    comparison: PathLike | None = None,
) -> dict[str, Any]:
    """Collect each stage's headline figures into summary.json (keys in the README).

    ``normalized_genes`` maps each species to its normalize/{species}/genes.tsv.
    """
    q = pd.read_parquet(qc_table)
    reasons: dict[str, int] = {}
    for r in q["reason"].dropna():
        for part in r.split("; "):
            reasons[part] = reasons.get(part, 0) + 1
    genes = pd.concat([pd.read_csv(p, sep="\t").assign(species=sp) for sp, p in normalized_genes.items()],
                      ignore_index=True)
    v = tokenize.read_vocab(vocab)
    idx = pd.read_parquet(index)
    out: dict[str, Any] = {
        "run": run_name,
        "ingest": [json.loads(Path(p).read_text()) for p in ingest_reports],
        "qc": {"samples": int(len(q)), "passed": int(q["passed"].sum()), "failed": int((~q["passed"]).sum()),
               "failure_reasons": reasons,
               "passed_by_series": q.groupby("series_id")["passed"].sum().astype(int).to_dict()},
        "vocab": {"size": int(len(v)), "genes": int((v["biotype"] != "special").sum()),
                  "by_biotype": v.loc[v["biotype"] != "special", "biotype"].value_counts().to_dict(),
                  "genes_after_filters": int(genes["kept"].sum()), "genes_before_filters": int(len(genes)),
                  "by_species": v.loc[v["biotype"] != "special", "species"].value_counts().to_dict(),
                  "train_samples": int((idx["split"] == "train").sum()),
                  "validation_samples": int((idx["split"] == "validation").sum())},
        "train": {}, "sweep": {}, "lncrna": {}, "species": {},
    }
    for model, path in train_summaries.items():
        out["train"][model] = json.loads(Path(path).read_text())
    for model, path in auc.items():
        a = pd.read_parquet(path)
        out["sweep"][model] = {"properties": int(len(a)), "median_auc": round(float(a["auc"].median()), 4),
                               "median_auc_by_source": a.groupby("source")["auc"].median().round(4).to_dict(),
                               "median_average_precision": round(float(a["average_precision"].median()), 4)}
        if "converged" in a:
            out["sweep"][model]["not_converged"] = int((~a["converged"]).sum())
    for model, path in (catalogues or {}).items():
        cat = pd.read_parquet(path)
        out["sweep"].setdefault(model, {})["catalogue"] = {
            "gene_sets": int(len(cat)), "kept": int(cat["kept"].sum()),
            "near_duplicates": int(cat["jaccard_duplicate_of"].notna().sum()),
            "not_drawn": int(cat["reason"].fillna("").str.startswith("not drawn").sum())}
    if comparison is not None:
        cmp_ = pd.read_csv(comparison, sep="\t")
        cmp_ = cmp_[cmp_["source"] == "all"]
        out["sweep_comparison"] = [
            {"embedding": r.embedding, "baseline": r.baseline, "properties": int(r.properties),
             "median_auc_embedding": round(float(r.median_auc_embedding), 4),
             "median_auc_baseline": round(float(r.median_auc_baseline), 4),
             "wins": round(float(r.wins), 4), "p_value": None if pd.isna(r.p_value) else float(r.p_value)}
            for r in cmp_.itertuples()]
    for model, path in predictions.items():
        meta = pq.read_metadata(path)
        lnc = pq.read_table(path, columns=["ensembl_id", "term_id"])
        out["lncrna"][model] = {"predictions": int(meta.num_rows),
                                "lncrnas": int(pac.count_distinct(lnc["ensembl_id"]).as_py()),
                                "properties": int(pac.count_distinct(lnc["term_id"]).as_py())}
    for model, path in species_summaries.items():
        s = pd.read_csv(path, sep="\t")
        out["species"][model] = {f"{r.setting}_{r.split}": {"pairs": int(r.pairs), "top1": round(float(r.top1), 4),
                                                              "top10": round(float(r.top10), 4), "mrr": round(float(r.mrr), 4)}
                                 for r in s.itertuples()}
    write_json(out, out_summary)
    return out
