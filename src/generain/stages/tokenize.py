"""Rules tokenize_samples and make_pseudo_species: the token corpora of the in-memory path.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .. import annotation, io, normalize, species, tokenize
from ..utils import PathLike, timed

log = logging.getLogger(__name__)


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
    vocab: PathLike | None = None,
) -> dict[str, Any]:
    """Vocabulary, token shards and index of the run's samples (the main corpus, in-memory path).

    Each species comes normalized against its own per-gene reference
    (``normalize/{species}/``). The vocabulary lists the first species' genes,
    then the second's; mouse tokens carry the ``m_`` prefix (GeneRAIN-HM).
    Samples of both species are pooled and split into train/validation with
    one seeded draw; the training loader shuffles them, so the mixed-species
    model sees human and mouse samples interleaved (the paper's main setting).
    The comparison corpora are made from this one
    (:func:`generain.stages.species.comparison_corpus`).

    Parameters
    ----------
    matrices, scores : sequence of path-like
        Per species (same order as ``species_names``): log10(CP10M+1) matrix and
        its gene scores (bins), genes x samples.
    species_names : sequence of str
        "human" and/or "mouse", one per matrix.
    vocab : path-like, optional
        A fixed vocabulary (an imported model's, one species): its token ids
        are kept, and genes it lacks never become tokens.
    """
    parts = []
    for mpath, spath, sp in zip(matrices, scores, species_names, strict=True):
        m = io.read_matrix(mpath)
        s = io.read_matrix(spath)
        log_values = m.matrix[pd.Index(m.genes["ensembl_id"]).get_indexer(s.genes["ensembl_id"])]
        parts.append((sp, s, s.matrix, log_values, s.genes.assign(species=sp)))
    if vocab is None:
        vocab_table, species_token_ids = tokenize.corpus_vocab([(sp, g) for sp, _, _, _, g in parts])
    else:
        vocab_table = tokenize.read_vocab(vocab)
        tok = pd.Series(vocab_table["token_id"].to_numpy(), index=vocab_table["ensembl_id"])
        species_token_ids = []
        for i, (sp, s, scores_, log_values, genes) in enumerate(parts):
            inside = genes["ensembl_id"].isin(tok.index).to_numpy()
            genes = genes[inside].reset_index(drop=True)
            parts[i] = (sp, s, scores_[inside], log_values[inside], genes)
            species_token_ids.append(tok.loc[genes["ensembl_id"]].to_numpy(dtype=np.int64))
    vocab = vocab_table
    genes_all = vocab[vocab["biotype"] != "special"]
    gt, et, nt, ids, sp_col = [], [], [], [], []
    stats: dict[str, Any] = {"species": {}}
    for (sp, s, scores_, log_values, genes), token_ids in zip(parts, species_token_ids, strict=True):
        method = str(s.attrs["method"])
        with timed(f"tokenize {scores_.shape[1]} {sp} samples (length {length})"):
            g_, e_, n_ = tokenize.tokenize_samples(scores_, normalize.eligible_mask(scores_, method), log_values,
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
    stats.update({"vocab_size": int(len(vocab)), "gene_tokens": int(len(genes_all)),
                  "by_biotype": genes_all["biotype"].value_counts().to_dict(),
                  "samples": int(len(split)), "train_samples": int((split == "train").sum()),
                  "validation_samples": int((split == "validation").sum()),
                  "median_tokens_per_sample": float(np.median(nt_a))})
    log.info("tokens: %s", stats)
    return stats


def make_pseudo_species_corpus(
    *,
    matrix: PathLike,
    scores: PathLike,
    orthologs: PathLike,
    length: int,
    validation_fraction: float,
    seed: int,
    shard_size: int,
    out_vocab: PathLike,
    out_shards: PathLike,
    out_index: PathLike,
) -> dict[str, Any]:
    """GeneRAIN-HM's pseudo-species control corpus from one species' samples (in-memory path).

    All passing samples of the species, ranked by their bins against the
    species' reference (``scores``), split in seeded halves, the second half
    renamed to mouse orthologs (:func:`generain.species.pseudo_species_corpus`);
    the streaming path builds the same corpus from its pass-2 shards
    (:func:`generain.stages.stream.gather_pseudo_species`).

    Parameters
    ----------
    matrix, scores : path-like
        log10(CP10M+1) and bins (genes x samples) of the first species, as
        ``normalize/{species}/`` holds them.
    """
    m = io.read_matrix(matrix)
    s = io.read_matrix(scores)
    log_values = m.matrix[pd.Index(m.genes["ensembl_id"]).get_indexer(s.genes["ensembl_id"])]
    c = species.pseudo_species_corpus(s.matrix, normalize.eligible_mask(s.matrix, str(s.attrs["method"])),
                                      log_values, s.genes, s.samples["sample_id"].to_numpy(),
                                      annotation.read_orthologs(orthologs), length=length, seed=seed)
    vocab, gt, et, nt, sample_ids, sp = (c[k] for k in ("vocab", "gene_tokens", "expr_tokens", "n_tokens",
                                                         "sample_ids", "species"))
    split = tokenize.split_samples(len(sample_ids), validation_fraction=validation_fraction, seed=seed)
    tokenize.write_token_shards(out_shards, out_index, sample_ids=sample_ids, gene_tokens=gt, expr_tokens=et,
                                n_tokens=nt, split=split, shard_size=shard_size, extra={"species": sp})
    tokenize.write_vocab(vocab, out_vocab)
    stats = {k: c[k] for k in ("human_samples", "mouse_samples", "human_genes", "mouse_genes")}
    stats["vocab_size"] = int(len(vocab))
    log.info("pseudo-species corpus: %s", stats)
    return stats
