"""Rules import_vocabulary and import_model: a published model and its gene index, in this project's formats.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``). The formats and
the conversion are in :mod:`generain.pretrained`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import annotation, pretrained, tokenize
from ..training.checkpoint import save_model
from ..utils import InputError, PathLike, atomic_path, write_json

log = logging.getLogger(__name__)

#: Entries of each status listed in vocabulary.json (all are in gene_map.tsv).
LISTED = 50


def generain_symbols_path(boundaries: PathLike) -> Path:
    """The ``.gene_symbols.txt`` beside GeneRAIN's ``..._0.005_subsampled.npy`` (the released pair)."""
    p = Path(boundaries)
    return p.with_name(p.name[:-len(".npy")] + ".gene_symbols.txt") if p.name.endswith(".npy") else p


def import_vocabulary(
    *,
    fmt: str,
    gene_index: PathLike,
    reference: PathLike,
    gene_table: PathLike,
    out_vocab: PathLike,
    out_gene_map: PathLike,
    out_token_rows: PathLike,
    out_reference: PathLike,
    out_summary: PathLike,
) -> dict[str, Any]:
    """The run's vocabulary from a published gene index, and its normalization reference.

    GeneRAIN (``fmt="generain"``): symbols of the gene-index JSON are mapped
    to Ensembl ids through the gene table (a symbol of several genes is
    ambiguous and dropped; unknown symbols are dropped); the released
    Binning-By-Gene reference becomes ``bin_reference.h5`` over the mapped
    genes. Geneformer (``fmt="geneformer"``): the token dictionary's Ensembl
    ids are kept where the gene table has them; the gene-median dictionary
    becomes ``gene_medians.tsv`` (ensembl_id, median: counts per 10,000).

    Outputs: ``vocab.tsv`` (:func:`generain.tokenize.write_vocab`),
    ``gene_map.tsv`` (every index entry: key, index, ensembl_id, status),
    ``token_rows.tsv`` (token_id, token, source_row: the model's row of each
    token, -1 for none), the reference, and ``vocabulary.json`` (counts per
    status and the first unmapped and ambiguous keys).

    Raises
    ------
    InputError
        If a file is unreadable or no gene maps.
    """
    genes = annotation.read_gene_table(gene_table)
    if fmt == "generain":
        v = pretrained.generain_vocabulary(pretrained.read_generain_gene_index(gene_index), genes)
        ref = pretrained.generain_bin_reference(reference, generain_symbols_path(reference), v.vocab, v.gene_map)
        ref.save(out_reference)
        covered = int(len(ref.gene_ids))
    elif fmt == "geneformer":
        tokens = pretrained.read_pickled_dict(gene_index)
        v = pretrained.geneformer_vocabulary(tokens, genes)
        medians = pretrained.read_pickled_dict(reference)
        ens = v.vocab.loc[v.vocab["biotype"] != "special", "ensembl_id"]
        table = pd.DataFrame({"ensembl_id": ens, "median": [medians.get(g, np.nan) for g in ens]}).dropna()
        if table.empty:
            raise InputError(f"{reference}: no gene of the token dictionary has a median")
        if (table["median"] <= 0).any():
            raise InputError(f"{reference}: gene medians must be positive")
        with atomic_path(out_reference) as tmp:
            table.to_csv(tmp, sep="\t", index=False)
        covered = int(len(table))
    else:
        raise ValueError(f"unknown pretrained format {fmt!r}")
    tokenize.write_vocab(v.vocab, out_vocab)
    with atomic_path(out_gene_map) as tmp:
        v.gene_map.to_csv(tmp, sep="\t", index=False)
    with atomic_path(out_token_rows) as tmp:
        pd.DataFrame({"token_id": v.vocab["token_id"], "token": v.vocab["token"],
                      "source_row": v.rows}).to_csv(tmp, sep="\t", index=False)
    gm = v.gene_map
    summary = {"format": fmt, "gene_index": str(gene_index), "reference": str(reference),
               "entries": int(len(gm)), "by_status": v.counts(), "vocab_size": int(len(v.vocab)),
               "genes_with_reference": covered,
               "unmapped": gm.loc[gm["status"] == "unmapped", "key"].head(LISTED).tolist(),
               "ambiguous": gm.loc[gm["status"] == "ambiguous", "key"].head(LISTED).tolist()}
    write_json(summary, out_summary)
    log.info("imported gene index %s: %s; %d genes in the vocabulary, %d with a reference",
             gene_index, summary["by_status"], len(v.vocab) - 3, covered)
    for status in ("unmapped", "ambiguous"):
        if summary[status]:
            log.warning("%d %s entries (dropped), e.g. %s", summary["by_status"].get(status, 0), status,
                        ", ".join(summary[status][:10]))
    return summary


def import_model(
    *,
    fmt: str,
    model_type: str,
    checkpoint: PathLike,
    token_rows: PathLike,
    length: int,
    n_head: int,
    out_checkpoint: PathLike,
    out_summary: PathLike,
) -> dict[str, Any]:
    """A published checkpoint as ``models/main/{model}/model.pt``, its gene rows in the run's vocabulary.

    Parameters
    ----------
    fmt : {"generain", "geneformer"}
    model_type : str
    checkpoint : path-like
        GeneRAIN's ``.pth`` or Geneformer's model directory.
    token_rows : path-like
        ``token_rows.tsv`` of :func:`import_vocabulary`.
    length : int
        The run's sequence length (config tokens.length); it must fit the
        model's position embedding.
    n_head : int
        GeneRAIN's attention heads (Geneformer's come from its config.json).

    Raises
    ------
    InputError
        If the checkpoint is unreadable or the sequences do not fit the model.
    """
    table = pd.read_csv(token_rows, sep="\t", keep_default_na=False)
    rows = table["source_row"].to_numpy(dtype=np.int64)
    eos = pretrained.eos_token_id(table)
    if fmt == "generain":
        model = pretrained.import_generain_model(checkpoint, model_type, rows, n_head=n_head)
    else:
        model = pretrained.import_geneformer_model(checkpoint, rows, eos_token=eos)
    # the GPT reads length - 1 tokens; a framed (Geneformer V2) input adds <cls> and <eos>
    need = length - 1 if model_type == "gpt" else length + (2 if eos else 0)
    if model_type != "bert_pred_expr" and need > model.cfg.n_positions:
        raise InputError(f"{checkpoint}: the model has {model.cfg.n_positions} positions but tokens.length "
                         f"{length} needs {need}; set tokens.length <= "
                         f"{model.cfg.n_positions + (model_type == 'gpt') - (2 if eos else 0)}")
    save_model(model, model_type, out_checkpoint)
    summary = {"model_type": model_type, "imported": True, "format": fmt, "checkpoint": str(checkpoint),
               "model_config": model.cfg.to_dict(),
               "n_parameters": int(sum(p.numel() for p in model.parameters()))}
    write_json(summary, out_summary)
    log.info("imported %s from %s: %s", model_type, checkpoint, summary["model_config"])
    return summary
