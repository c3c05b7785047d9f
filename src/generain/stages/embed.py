"""Rule export_embeddings: a trained model's gene embeddings as word2vec text and parquet.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``).
"""

from __future__ import annotations

import logging

from .. import embed, tokenize
from ..training.checkpoint import load_model
from ..utils import PathLike

log = logging.getLogger(__name__)


def export_embeddings(*, checkpoint: PathLike, vocab: PathLike, out_w2v: PathLike, out_parquet: PathLike) -> int:
    """Export a trained model's gene embeddings for the vocabulary's genes.

    gpt and bert_pred_genes: the token-embedding matrix; bert_pred_expr: the
    position-embedding matrix, whose rows are indexed by gene token id.
    """
    model_type, model = load_model(checkpoint)
    v = tokenize.read_vocab(vocab)
    table = embed.gene_embedding_table(v, model.gene_embedding().numpy())
    embed.write_embeddings(table, w2v_path=out_w2v, parquet_path=out_parquet)
    where = "position (gene) embedding" if model_type == "bert_pred_expr" else "token embedding"
    log.info("exported the %s of %s: %d genes x %d dimensions", where, model_type, len(table), model.cfg.n_embd)
    return len(table)
