"""Rules make_comparison_corpus, align_species and compare_species: the human-mouse comparison.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import annotation, embed, io, plots, species, tokenize
from ..baselines import svd_embedding
from ..training.checkpoint import load_model
from ..utils import InputError, PathLike, atomic_path, timed, write_parquet

log = logging.getLogger(__name__)


def comparison_corpus(
    *,
    vocab: PathLike,
    shards: PathLike,
    index: PathLike,
    species_names: Sequence[str],
    validation_fraction: float,
    seed: int,
    out_vocab: PathLike,
    out_shards: PathLike,
    out_index: PathLike,
    orthologs: PathLike | None = None,
    shared_tokens: int = 0,
    train_fraction: float | None = None,
    out_shared: PathLike | None = None,
) -> dict[str, Any]:
    """A comparison corpus of GeneRAIN-HM (``separate``: one species; ``shared``) from the main corpus.

    The corpus holds every sample of the main corpus (all passing samples,
    whichever data path made it) of the species in ``species_names``, in the
    main corpus' order, with the same gene tokens re-numbered in its own
    vocabulary (:func:`generain.tokenize.corpus_vocab`: the species' genes in
    the main vocabulary's order) and the same expression bins; its
    train/validation split is drawn as the main corpus' is
    (:func:`generain.tokenize.split_samples` on its own sample count). Token
    shard k holds the corpus' samples of the main corpus' shard k (shards
    without any are skipped). Ties in bin keep the main corpus' order (its
    token ids).

    Parameters
    ----------
    vocab, shards, index : path-like
        The main corpus (``tokens/``): vocab.tsv, the shards folder, index.parquet
        (with its species column).
    species_names : sequence of str
        "human" and/or "mouse": the corpus' species, in vocabulary order.
    orthologs, shared_tokens, train_fraction
        Shared-token model: the first ``shared_tokens`` training ortholog pairs
        (:func:`generain.species.shared_token_pairs`; ``train_fraction`` is
        config ``species.train_fraction``) get one token, the human gene's;
        the mouse gene then has no token of its own.
    out_shared : path-like, optional
        TSV of the shared pairs (human_ensembl_id, mouse_ensembl_id); written
        when given (empty without ``shared_tokens``).

    Returns
    -------
    dict
        Per species genes and samples, vocab_size, shared_tokens, samples,
        train_samples, validation_samples.

    Raises
    ------
    InputError
        If ``shared_tokens`` is asked for without both species, an ortholog
        table, ``train_fraction`` and ``out_shared``, or a species has no
        gene in the main vocabulary.
    """
    main_vocab = tokenize.read_vocab(vocab)
    genes = []
    for sp in species_names:
        g = main_vocab[main_vocab["species"] == sp]
        if g.empty:
            raise InputError(f"{vocab}: no {sp} gene in the main corpus' vocabulary")
        genes.append((sp, g))
    shared = pd.DataFrame(columns=["human_ensembl_id", "mouse_ensembl_id"])
    if shared_tokens:
        names = list(species_names)
        if sorted(names) != ["human", "mouse"] or orthologs is None or out_shared is None or train_fraction is None:
            raise InputError(f"species.shared_tokens needs a human and a mouse corpus, an ortholog table and "
                             f"species.train_fraction (got species {names})")
        gh, gm = genes[names.index("human")][1], genes[names.index("mouse")][1]
        pairs = species.ortholog_pairs(gh["ensembl_id"], gm["ensembl_id"], annotation.read_orthologs(orthologs))
        mask = species.shared_token_pairs(pairs, shared_tokens, train_fraction=train_fraction, seed=seed)
        shared = pairs.loc[mask, ["human_ensembl_id", "mouse_ensembl_id"]].reset_index(drop=True)
    new_vocab, new_ids = tokenize.corpus_vocab([(sp, g[["ensembl_id", "symbol", "biotype"]]) for sp, g in genes],
                                               shared=shared)
    lookup = tokenize.token_remap(main_vocab, [(sp, g["ensembl_id"], ids)
                                               for (sp, g), ids in zip(genes, new_ids, strict=True)])
    dtype = tokenize.token_dtype(len(new_vocab) - 1)
    main_index = pd.read_parquet(index)
    chosen = main_index[main_index["species"].isin(list(species_names))]
    frames = []
    with timed(f"{len(chosen)} of {len(main_index)} samples of the main corpus into the {'+'.join(species_names)} "
               "corpus"), atomic_path(out_shards) as tmp:
        tmp.mkdir(parents=True)
        k = 0
        for shard, rows in chosen.groupby("shard", sort=False):
            g_main = np.load(Path(shards) / f"genes_{int(shard):05d}.npy", mmap_mode="r")
            e_main = np.load(Path(shards) / f"expr_{int(shard):05d}.npy", mmap_mode="r")
            r = rows["row"].to_numpy()
            np.save(tmp / f"genes_{k:05d}.npy", lookup[g_main[r]].astype(dtype))
            np.save(tmp / f"expr_{k:05d}.npy", np.asarray(e_main[r]))
            frames.append(rows.assign(shard=np.int32(k), row=np.arange(len(rows), dtype=np.int32)))
            k += 1
    out = (pd.concat(frames, ignore_index=True) if frames
           else main_index.iloc[:0].reset_index(drop=True))
    out["split"] = tokenize.split_samples(len(out), validation_fraction=validation_fraction, seed=seed)
    write_parquet(pa.Table.from_pandas(out[list(main_index.columns)], preserve_index=False), out_index)
    tokenize.write_vocab(new_vocab, out_vocab)
    if out_shared is not None:
        with atomic_path(out_shared) as tmp:
            shared.to_csv(tmp, sep="\t", index=False)
    stats = {"species": {sp: {"genes": int(len(g)), "samples": int((out["species"] == sp).sum())}
                         for sp, g in genes},
             "vocab_size": int(len(new_vocab)), "shared_tokens": int(len(shared)), "samples": int(len(out)),
             "train_samples": int((out["split"] == "train").sum()),
             "validation_samples": int((out["split"] == "validation").sum())}
    log.info("comparison corpus: %s", stats)
    return stats


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
    if setting == "expression_svd":
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
    null = species.ortholog_rank_table(table, orth, shuffle=True, **kw).assign(setting=f"{setting}_shuffled")
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
        label = species.SETTING_LABELS.get(base, base) + (", row-shuffled null" if setting != base else "")
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
