"""Rules tokenize_samples and make_pseudo_species: the token corpora.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .. import annotation, io, normalize, species, tokenize
from ..utils import InputError, PathLike, atomic_path, timed

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
    orthologs: PathLike | None = None,
    shared_tokens: int = 0,
    train_fraction: float | None = None,
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
        (:func:`generain.species.shared_token_pairs`; ``train_fraction`` is
        config ``species.train_fraction``) get one token, the human gene's;
        the mouse gene then has no token of its own.
    out_shared : path-like, optional
        TSV of the shared pairs (human_ensembl_id, mouse_ensembl_id); required
        with ``shared_tokens``.

    Raises
    ------
    InputError
        If ``shared_tokens`` is asked for without both species, an ortholog
        table, ``train_fraction`` and ``out_shared``.
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
        if sorted(names) != ["human", "mouse"] or orthologs is None or out_shared is None or train_fraction is None:
            raise InputError(f"species.shared_tokens needs a human and a mouse corpus, an ortholog table and "
                             f"species.train_fraction (got species {names})")
        gh, gm = parts[names.index("human")][3], parts[names.index("mouse")][3]
        pairs = species.ortholog_pairs(gh["ensembl_id"], gm["ensembl_id"], annotation.read_orthologs(orthologs))
        mask = species.shared_token_pairs(pairs, shared_tokens, train_fraction=train_fraction, seed=seed)
        shared = pairs.loc[mask, ["human_ensembl_id", "mouse_ensembl_id"]].reset_index(drop=True)
    vocab, species_token_ids = tokenize.corpus_vocab([(sp, g) for sp, _, _, g in parts], shared=shared)
    genes_all = vocab[vocab["biotype"] != "special"]
    gt, et, nt, ids, sp_col = [], [], [], [], []
    stats: dict[str, Any] = {"species": {}}
    for (sp, s, log_values, genes), token_ids in zip(parts, species_token_ids, strict=True):
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
    c = species.pseudo_species_corpus(m.matrix, m.genes, m.samples["sample_id"].to_numpy(),
                                      annotation.read_orthologs(orthologs), method=method, n_bins=n_bins,
                                      length=length, seed=seed)
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
