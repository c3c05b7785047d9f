"""Rule attention_heads: per-head attention to a gene set, and attention entropy.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``). The method is
:mod:`generain.attention`.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .. import annotation, attention, inference, plots, tokenize
from ..training.checkpoint import load_model
from ..utils import InputError, PathLike, atomic_path, strip_version, timed

log = logging.getLogger(__name__)


def gene_set_tokens(vocab: pd.DataFrame, gene_sets: Sequence[PathLike], term_id: str,
                    what: str = "attention.gene_set") -> np.ndarray:
    """bool (vocab_size,): vocabulary tokens (human genes, by Ensembl id) in the gene set ``term_id``.

    ``what`` names the config key in errors.

    Raises
    ------
    InputError
        If no gene-set file holds ``term_id``, or none of its genes is in the vocabulary.
    """
    import polars as pl

    members: set[str] = set()
    for path in gene_sets:
        sets = annotation.read_gene_sets(path).filter(pl.col("term_id").cast(pl.String) == term_id)
        members |= set(sets["ensembl_id"].cast(pl.String).to_list())
    if not members:
        raise InputError(f"{what} {term_id!r} is in none of the gene-set files {list(map(str, gene_sets))}")
    ids = vocab["ensembl_id"].astype(str).map(strip_version)
    in_set = (ids.isin(members) & (vocab["biotype"] != "special") & vocab["species"].isin(["human", ""])).to_numpy()
    if not in_set.any():
        raise InputError(f"{what} {term_id!r}: none of its {len(members)} genes is in the vocabulary")
    return in_set


def attention_heads(
    *,
    checkpoint: PathLike,
    vocab: PathLike,
    shards: PathLike,
    index: PathLike,
    gene_sets: Sequence[PathLike],
    gene_set: str,
    samples: int,
    permutations: int,
    seed: int,
    batch_size: int,
    device: str,
    out_heads: PathLike,
    out_plot: PathLike,
    min_enrichment: float = 1.1,
    model_name: str = "",
) -> dict[str, Any]:
    """Per-head enrichment of attention to a gene set over a seeded sample of sequences.

    Outputs ``out_heads`` (heads.tsv: gene_set, the columns of
    :func:`generain.attention.head_statistics`, and enriched: FDR < 0.05 and
    enrichment >= ``min_enrichment``; one row per layer and head) and
    ``out_plot`` (layer x head heat maps).
    """
    model_type, model = load_model(checkpoint)
    model.to(device)
    v = tokenize.read_vocab(vocab)
    in_set = gene_set_tokens(v, gene_sets, gene_set)
    idx = pd.read_parquet(index)
    rows = np.sort(np.random.default_rng(seed).choice(len(idx), size=min(samples, len(idx)), replace=False))
    genes, expr = inference.read_rows(tokenize.TokenShards(shards, idx), rows)
    with timed(f"attention of {model_name or model_type} over {len(rows)} sequences"):
        heads = attention.attention_heads(model, model_type, genes, expr, in_set, permutations=permutations,
                                          seed=seed, batch_size=batch_size, device=device)
    heads.insert(0, "gene_set", gene_set)
    heads["enriched"] = (heads["fdr"] < 0.05) & (heads["enrichment"] >= min_enrichment)
    enriched = heads["enriched"]
    with atomic_path(out_heads) as tmp:
        heads.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    plots.attention_plot(heads, out_plot, title=f"{model_name or model_type}: attention to {gene_set} "
                                                 f"({int(heads['set_genes_seen'].iloc[0])} genes seen, "
                                                 f"{len(rows)} sequences); * FDR < 0.05 and enrichment >= "
                                                 f"{min_enrichment:g}")
    log.info("attention heads:\n%s", heads.to_string(index=False))
    return {"heads": int(len(heads)), "enriched_heads": int(enriched.sum()),
            "enriched_fraction": round(float(enriched.mean()), 4), "sequences": int(len(rows))}
