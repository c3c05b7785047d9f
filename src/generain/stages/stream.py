"""Rules of the streaming data path (ARCHS4 scale): plan, pass 1, merge, vocabulary, pass 2, gathers.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``).
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

from .. import annotation, io, normalize, qc, species, stream, tokenize
from ..utils import InputError, PathLike, atomic_path, avoid_huge_page_stalls, timed, write_json, write_parquet

log = logging.getLogger(__name__)


def _plan_shard(plan: PathLike, shard: int) -> tuple[dict[str, Any], int, int]:
    p = json.loads(Path(plan).read_text())
    if not 0 <= shard < len(p["shards"]):
        raise InputError(f"{plan}: no shard {shard} (the plan has {len(p['shards'])})")
    start, stop = p["shards"][shard]
    return p, int(start), int(stop)


def plan_stream(
    *,
    path: PathLike,
    name: str,
    species_name: str,
    gene_table: PathLike | None,
    shard_samples: int,
    out_plan: PathLike,
    id_type: str = "auto",
) -> dict[str, Any]:
    """Cut an ARCHS4 file into sample shards for the streaming passes.

    Reads only the file's header and metadata. Output ``out_plan`` (JSON):
    the ingest report's fields (dataset, path, format, species, samples,
    genes: :func:`generain.annotation.matching_report`, whose id_type pass 1
    matches the genes by) plus n_genes, chunk_width and shards, a list of
    [start, stop) sample ranges aligned to the chunk width
    (:func:`generain.stream.shard_bounds`).

    Raises
    ------
    InputError
        If the file is not an ARCHS4 gene-count file, or no gene id matches.
    """
    n_genes, n_samples, width = stream.archs4_shape(path)
    cm = io.read_archs4(path, sample_range=(0, 0), progress=False)  # gene metadata only
    io.require_unique_samples(io.read_archs4_sample_ids(path), path)
    genes = (annotation.read_gene_table(gene_table) if gene_table
             else annotation.gene_table_from_source(cm, source=str(path)))
    mapped, types = annotation.map_gene_ids(cm.gene_ids, genes, id_type)
    report = annotation.matching_report(cm.gene_ids, mapped, types, id_type)
    if report["matched"] == 0:
        raise InputError(annotation.no_match_message(str(path), cm.gene_ids, types, id_type))
    bounds = stream.shard_bounds(n_samples, chunk_width=width, shard_samples=shard_samples)
    plan = {"dataset": name, "path": str(path), "format": "archs4", "species": species_name, "samples": n_samples,
            "genes": report, "n_genes": n_genes, "chunk_width": width, "shards": [list(b) for b in bounds]}
    write_json(plan, out_plan)
    log.info("%s: %d genes x %d samples (chunks of %d samples) in %d shards of up to %d samples",
             path, n_genes, n_samples, width, len(bounds), bounds[0][1] - bounds[0][0] if bounds else 0)
    return plan


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
                                          matrix_fraction=matrix_fraction, seed=seed,
                                          id_type=p["genes"].get("id_type", "auto"))
    stream.write_sketch(sketch, out_sketch)
    stream.write_scratch(sketch, out_scratch)
    write_parquet(pa.Table.from_pandas(table[list(qc.QC_COLUMNS)], schema=qc.QC_SCHEMA, preserve_index=False),
                  out_qc)
    log.info("shard %d: %d of %d samples pass QC; %d of them kept for the matrix", shard, sketch.n_passing,
             len(table), 0 if sketch.matrix_samples is None else len(sketch.matrix_samples))
    return sketch.n_passing


def merge_reference_block(
    *,
    sketches: Sequence[PathLike],
    block: int,
    n_blocks: int,
    biotypes: Sequence[str],
    min_mean: float,
    deduplicate_by: str,
    reference_points: int,
    n_bins: int,
    out_reference: PathLike,
) -> int:
    """Rule merge_reference_block: the merged reference of one block of the kept genes (a parallel merge).

    Each block job applies the gene filters over all sketches (cheap: per-gene
    sums) and merges the points of its ``1 / n_blocks`` of the kept genes
    (:func:`generain.stream.merge_sketches` with ``block``); :func:`merge_stream`
    concatenates the blocks. The work of the merge, which grows with the
    shard count, is split n_blocks ways; the reference is identical.
    Output: a ``bin_reference.h5``-format file of the block's genes. Returns
    the block's gene count.

    Raises
    ------
    InputError
        As :func:`generain.stream.merge_sketches`.
    """
    with timed(f"merge block {block + 1} of {n_blocks} of {len(sketches)} shard sketches"):
        _, ref = stream.merge_sketches(list(sketches), biotypes=list(biotypes), min_mean=min_mean,
                                       deduplicate_by=deduplicate_by, reference_points=reference_points,
                                       n_bins=n_bins, block=(block, n_blocks))
    ref.save(out_reference)
    return len(ref.gene_ids)


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
    reference_blocks: Sequence[PathLike] = (),
) -> dict[str, Any]:
    """Streaming gather for one species: gene filters, merged reference, the subsampled matrix.

    With ``reference_blocks`` (the outputs of :func:`merge_reference_block`
    for blocks 0..n-1, in order) the reference is their concatenation instead
    of a merge here: the same values, computed by parallel jobs.

    Outputs (``genes.tsv`` and ``bin_reference.h5`` at the paths of the
    in-memory path's ``normalize/{species}/``):

    - ``out_genes``: genes.tsv as :func:`generain.stages.normalize.normalize_counts` writes it, plus
      ``source_row`` (the gene's row in the ARCHS4 file); ``mean`` is empty
      for genes outside the vocabulary biotypes (pass 1 does not sketch them);
    - ``out_reference``: the merged per-gene reference
      (:func:`generain.stream.merge_sketches`; values float32 (n_kept,
      reference_points), the non-zero log10(CP10M+1) values at evenly spaced
      ranks; usable as ``normalization.reference`` of another run);
    - ``out_matrix``: log10(CP10M+1) float32 (n_kept, n_selected) of the
      passing samples selected in pass 1 (``normalization.matrix_fraction``),
      gene columns ensembl_id, symbol, biotype, mean (over *all* passing
      samples), sample columns sample_id, dataset, series_id. Only the
      expression-SVD references read it (``log_cp10m_subsample.h5``); every
      token corpus is made from all passing samples (pass 2).

    Raises
    ------
    InputError
        As :func:`generain.stream.merge_sketches`.
    """
    with timed(f"merge {len(sketches)} shard sketches" + (f" ({len(reference_blocks)} gene blocks merged by other "
                                                           "jobs)" if reference_blocks else "")):
        genes, ref = stream.merge_sketches(list(sketches), biotypes=list(biotypes), min_mean=min_mean,
                                           deduplicate_by=deduplicate_by, reference_points=reference_points,
                                           n_bins=n_bins, merge_points=not reference_blocks)
        if reference_blocks:
            parts = [normalize.BinReference.load(p) for p in reference_blocks]
            ids = np.concatenate([b.gene_ids for b in parts])
            if not np.array_equal(ids.astype(str), ref.gene_ids.astype(str)) or any(
                    b.values.shape[1] != reference_points for b in parts):
                raise InputError(f"the reference blocks {reference_blocks[0]} ... do not hold the kept genes of "
                                 f"these {len(sketches)} sketches in order with {reference_points} points: rerun "
                                 "merge_reference_block")
            ref = normalize.BinReference(ref.gene_ids, np.concatenate([b.values for b in parts]), n_bins,
                                         ref.n_training_samples)
    kept = genes[genes["kept"]].reset_index(drop=True)
    with h5py.File(sketches[0], "r") as h5:
        sketch_rows = np.searchsorted(h5["source_rows"][()], kept["source_row"].to_numpy())
    parts = [stream.read_sketch_matrix(p, sketch_rows) for p in sketches]
    counts = np.concatenate([c for c, _ in parts], axis=1)
    samples = pd.concat([s for _, s in parts], ignore_index=True)
    values = normalize.cp10m_log10(counts, totals=samples["total_counts"].to_numpy())
    if not len(samples):
        log.warning("no sample selected for the matrix (normalization.matrix_fraction); the SVD baseline and the "
                    "expression_svd comparison need some")
    with atomic_path(out_genes) as tmp:
        genes.to_csv(tmp, sep="\t", index=False)
    ref.save(out_reference)
    gene_cols = {c: kept[c].to_numpy() for c in ("ensembl_id", "symbol", "biotype", "mean")}
    sample_cols = {c: samples[c].to_numpy(dtype=object) for c in ("sample_id", "dataset", "series_id")}
    io.write_matrix(out_matrix, values, genes=gene_cols, samples=sample_cols, attrs={"values": "log10(CP10M+1)"})
    stats = {"genes_in": int(len(genes)), "genes_kept": int(len(kept)), "samples": int(ref.n_training_samples),
             "matrix_samples": int(len(samples))}
    log.info("streamed normalization: %s", stats)
    return stats


def _kept_genes(path: PathLike) -> pd.DataFrame:
    """The kept rows of a genes.tsv, in file order.

    genes.tsv is written by :func:`generain.stages.normalize.normalize_counts` or :func:`merge_stream`.
    """
    g = pd.read_csv(path, sep="\t", dtype={"symbol": str}, keep_default_na=False)
    return g[g["kept"].astype(str) == "True"].reset_index(drop=True)


def stream_vocab(*, genes: Sequence[PathLike], species_names: Sequence[str], out_vocab: PathLike) -> int:
    """The vocabulary of the streaming path: kept genes of each species' genes.tsv, in order.

    Equal to the vocabulary :func:`generain.stages.tokenize.tokenize_corpus` builds from the in-memory
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
    orthologs: PathLike | None = None,
) -> int:
    """Streaming pass 2 on one shard: bins against the merged reference, then tokens.

    Reads pass 1's ``scratch`` and ``sketch`` (:func:`generain.stream.bin_shard`).
    Output ``out_tokens``: a folder with ``genes.npy`` and ``expr.npy``
    (:func:`generain.tokenize.tokenize_samples` of the shard's passing
    samples, in file order) and ``samples.parquet`` (sample_id, n_tokens,
    species). With ``orthologs`` (the pseudo-species control), also
    ``pseudo_genes.npy`` and ``pseudo_expr.npy``: the same samples tokenized
    over their genes with a one-to-one mouse ortholog, as the mouse tokens of
    :func:`generain.species.pseudo_species_vocab` (``pseudo_n_tokens`` in
    samples.parquet), for :func:`gather_pseudo_species`. Returns the samples
    written.

    Raises
    ------
    InputError
        If the reference's genes differ from genes.tsv's kept genes, or the
        scratch from the sketch or the QC table.
    """
    avoid_huge_page_stalls()
    p, start, stop = _plan_shard(plan, shard)
    kept = _kept_genes(genes)
    ref = normalize.BinReference.load(reference)
    if kept["ensembl_id"].tolist() != list(ref.gene_ids):
        raise InputError(f"{reference}: its genes differ from the kept genes of {genes}; rerun merge_stream")
    v = tokenize.read_vocab(vocab)
    v = v[v["species"] == species_name]
    token_ids = pd.Series(v["token_id"].to_numpy(), index=v["ensembl_id"]).loc[kept["ensembl_id"]].to_numpy()
    with timed(f"bin {p['dataset']} shard {shard} (samples {start}..{stop})"):
        bins, values, samples = stream.bin_shard(scratch, sketch=sketch, qc_table=pd.read_parquet(qc_table),
                                                 source_rows=kept["source_row"].to_numpy(), reference=ref)
    with timed(f"tokenize {bins.shape[1]} samples (length {length})"):
        eligible = normalize.eligible_mask(bins, "binning")
        gt, et, nt = tokenize.tokenize_samples(bins, eligible, values, token_ids, length=length)
    index = pd.DataFrame({"sample_id": samples["sample_id"].to_numpy(dtype=object),
                          "n_tokens": nt, "species": species_name})
    pseudo = None
    if orthologs is not None:
        pvocab, _, as_mouse = species.pseudo_species_vocab(kept, annotation.read_orthologs(orthologs))
        has = as_mouse >= 0
        with timed(f"tokenize {bins.shape[1]} samples over their {int(has.sum())} genes with a mouse ortholog "
                   "(pseudo-species control)"):
            pseudo = tokenize.tokenize_samples(bins[has], eligible[has], values[has], as_mouse[has], length=length)
        index["pseudo_n_tokens"] = pseudo[2]
    with atomic_path(out_tokens) as tmp:
        tmp.mkdir(parents=True)
        np.save(tmp / "genes.npy", gt)
        np.save(tmp / "expr.npy", et)
        if pseudo is not None:
            np.save(tmp / "pseudo_genes.npy", pseudo[0].astype(tokenize.token_dtype(len(pvocab) - 1)))
            np.save(tmp / "pseudo_expr.npy", pseudo[1])
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


def gather_pseudo_species(
    *,
    parts: Sequence[PathLike],
    genes: PathLike,
    vocab: PathLike,
    orthologs: PathLike,
    species_name: str,
    validation_fraction: float,
    seed: int,
    out_vocab: PathLike,
    out_shards: PathLike,
    out_index: PathLike,
) -> dict[str, Any]:
    """The pseudo-species control corpus of the streaming path, from every passing sample's pass-2 tokens.

    The same corpus as :func:`generain.species.pseudo_species_corpus` on the
    in-memory path: the species' passing samples in part order are split in
    seeded halves (:func:`generain.species.split_halves`); the first half
    keeps its tokens (``genes.npy``, re-numbered in the pseudo-species
    vocabulary), the second half takes its ortholog-only tokens
    (``pseudo_genes.npy``, written by :func:`bin_stream_shard` with
    ``orthologs``) and the ``m_`` sample-id prefix. Token shards: the first
    half's samples of each part, then the second half's, parts without such
    samples skipped; one seeded train/validation split over the corpus.

    Parameters
    ----------
    parts : sequence of path-like
        Pass-2 token folders of the species' shards, in dataset then shard order.
    genes, vocab : path-like
        The species' genes.tsv and the main corpus' vocab.tsv.
    species_name : str
        The species of the parts (the run's first species).

    Raises
    ------
    InputError
        If a part lacks its ortholog-only tokens (bin_shard ran without
        orthologs).
    """
    kept = _kept_genes(genes)
    pvocab, as_self, _ = species.pseudo_species_vocab(kept, annotation.read_orthologs(orthologs))
    lookup = tokenize.token_remap(tokenize.read_vocab(vocab), [(species_name, kept["ensembl_id"], as_self)])
    dtype = tokenize.token_dtype(len(pvocab) - 1)
    idx = [pd.read_parquet(Path(p) / "samples.parquet") for p in parts]
    for p, i in zip(parts, idx):
        if len(i) and "pseudo_n_tokens" not in i:
            raise InputError(f"{p}: no ortholog-only tokens for the pseudo-species control; rerun bin_shard")
    second = species.split_halves(sum(map(len, idx)), seed=seed)
    offsets = np.cumsum([0] + [len(i) for i in idx])
    frames = []
    with timed(f"pseudo-species corpus of {len(second)} samples from {len(parts)} shards"), \
            atomic_path(out_shards) as tmp:
        tmp.mkdir(parents=True)
        k = 0
        for renamed in (False, True):
            for part, i, a in zip(map(Path, parts), idx, offsets[:-1]):
                rows = np.flatnonzero(second[a:a + len(i)] == renamed)
                if not len(rows):
                    continue
                if renamed:
                    g = np.load(part / "pseudo_genes.npy", mmap_mode="r")[rows].astype(dtype)
                    e = np.load(part / "pseudo_expr.npy", mmap_mode="r")[rows]
                    n = i["pseudo_n_tokens"].to_numpy()[rows]
                    ids = "m_" + i["sample_id"].to_numpy(dtype=object)[rows]
                else:
                    g = lookup[np.load(part / "genes.npy", mmap_mode="r")[rows]].astype(dtype)
                    e = np.load(part / "expr.npy", mmap_mode="r")[rows]
                    n = i["n_tokens"].to_numpy()[rows]
                    ids = i["sample_id"].to_numpy(dtype=object)[rows]
                np.save(tmp / f"genes_{k:05d}.npy", g)
                np.save(tmp / f"expr_{k:05d}.npy", np.asarray(e))
                frames.append(pd.DataFrame({"sample_id": ids, "shard": np.int32(k),
                                            "row": np.arange(len(rows), dtype=np.int32),
                                            "n_tokens": n.astype(np.int32),
                                            "species": "mouse" if renamed else "human"}))
                k += 1
    index = pd.concat(frames, ignore_index=True)
    index["split"] = tokenize.split_samples(len(index), validation_fraction=validation_fraction, seed=seed)
    index = index[["sample_id", "split", "shard", "row", "n_tokens", "species"]]
    write_parquet(pa.Table.from_pandas(index, preserve_index=False), out_index)
    tokenize.write_vocab(pvocab, out_vocab)
    stats = {"human_samples": int((~second).sum()), "mouse_samples": int(second.sum()),
             "human_genes": int(len(kept)), "mouse_genes": int((pvocab["species"] == "mouse").sum()),
             "vocab_size": int(len(pvocab))}
    log.info("pseudo-species corpus: %s", stats)
    return stats
