"""Model inputs of one batch: next-gene targets (GPT) and BERT masking (pure functions of the inputs and the torch RNG).

Masking follows GeneRAIN's reference code (suzheng/GeneRAIN ``src/train/common.py``
and ``src/data/BertMasking.py``); the share of masked positions is the
config key ``train.mask_fraction`` (paper: 0.15).
"""

from __future__ import annotations

import torch

from .. import MASK_ID, N_EXPR_BINS, PAD_ID
from ..model import IGNORE_INDEX, MODEL_TYPES


def gpt_inputs(genes: torch.Tensor) -> dict[str, torch.Tensor]:
    """Next-gene prediction inputs from gene tokens.

    Parameters
    ----------
    genes : torch.Tensor
        int64 (B, T) gene token ids sorted by bin, ``PAD_ID`` after the last real token.

    Returns
    -------
    dict
        ``idx`` int64 (B, T-1) = genes[:, :-1]; ``labels`` int64 (B, T-1) =
        genes[:, 1:] with ``IGNORE_INDEX`` where the target is padding.
    """
    labels = genes[:, 1:].clone()
    labels[labels == PAD_ID] = IGNORE_INDEX
    return {"idx": genes[:, :-1], "labels": labels}


def mask_gene_tokens(genes: torch.Tensor, fraction: float) -> dict[str, torch.Tensor]:
    """GeneRAIN ``bert_pred_genes`` masking: each real position is masked with probability ``fraction``.

    Masked positions become ``MASK_ID`` and are the only labelled ones
    (reference: suzheng/GeneRAIN src/train/common.py, ``Bert_pred_tokens``).

    Parameters
    ----------
    genes : torch.Tensor
        int64 (B, T) gene token ids, ``PAD_ID`` = padding.

    Returns
    -------
    dict
        ``idx`` int64 (B, T), ``labels`` int64 (B, T) (gene id at masked
        positions, ``IGNORE_INDEX`` elsewhere), ``key_mask`` bool (B, T)
        (True at real tokens).
    """
    real = genes != PAD_ID
    chosen = (torch.rand(genes.shape, device=genes.device) < fraction) & real
    idx = genes.masked_fill(chosen, MASK_ID)
    labels = genes.masked_fill(~chosen, IGNORE_INDEX)
    return {"idx": idx, "labels": labels, "key_mask": real}


def mask_expression_bins(genes: torch.Tensor, expr: torch.Tensor, fraction: float,
                         mask_prob: float = 0.8, random_prob: float = 0.1) -> dict[str, torch.Tensor]:
    """GeneRAIN ``bert_pred_expr`` masking of expression-bin tokens (BERT's 80/10/10).

    Each real position is chosen with probability ``fraction``; a chosen
    position becomes 0 (the mask bin) with probability ``mask_prob``, a
    uniformly drawn bin 1..100 with probability ``random_prob``, and stays
    unchanged otherwise (reference: suzheng/GeneRAIN src/data/BertMasking.py).
    The gene ids are the position ids.

    Parameters
    ----------
    genes : torch.Tensor
        int64 (B, T) gene token ids, ``PAD_ID`` = padding.
    expr : torch.Tensor
        int64 (B, T) within-sample expression bins 1..100 (0 at padding).

    Returns
    -------
    dict
        ``idx`` int64 (B, T) bins after masking, ``position_ids`` = genes,
        ``labels`` int64 (B, T) (true bin at chosen positions, ``IGNORE_INDEX``
        elsewhere), ``key_mask`` bool (B, T).
    """
    real = genes != PAD_ID
    chosen = (torch.rand(genes.shape, device=genes.device) < fraction) & real
    u = torch.rand(genes.shape, device=genes.device)
    random_bins = torch.randint(1, N_EXPR_BINS + 1, genes.shape, device=genes.device)
    idx = torch.where(chosen & (u < mask_prob), torch.zeros_like(expr), expr)
    idx = torch.where(chosen & (u >= mask_prob) & (u < mask_prob + random_prob), random_bins, idx)
    labels = expr.masked_fill(~chosen, IGNORE_INDEX)
    return {"idx": idx, "position_ids": genes, "labels": labels, "key_mask": real}


def model_inputs(model_type: str, batch: dict[str, torch.Tensor], mask_fraction: float
                 ) -> dict[str, torch.Tensor]:
    """Keyword arguments of the model's forward for one batch of {genes, expr}."""
    if model_type == "gpt":
        return gpt_inputs(batch["genes"])
    if model_type == "bert_pred_genes":
        return mask_gene_tokens(batch["genes"], mask_fraction)
    if model_type == "bert_pred_expr":
        return mask_expression_bins(batch["genes"], batch["expr"], mask_fraction)
    raise ValueError(f"unknown model type {model_type!r}; expected one of {', '.join(MODEL_TYPES)}")
