"""Rules align_species and compare_species: the human-mouse comparison.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import annotation, embed, io, plots, species, tokenize
from ..baselines import svd_embedding
from ..training.checkpoint import load_model
from ..utils import PathLike, atomic_path, write_parquet

log = logging.getLogger(__name__)


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
