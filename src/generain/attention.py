"""Attention analysis: which heads attend a gene set more than its share of positions, and how focused each head is.

After Geneformer (Theodoris et al., Nature 2023, "attention weights ...
transcription factors": about 20% of its heads attended transcription
factors significantly more than other genes). Per layer and head, over a
set of sequences:

- ``attention``: the attention all real query positions pay to the set's
  genes, as a share of all their attention;
- ``share``: the share of that attention that uniform attention over the
  keys each query may see would give the set (each query's visible real
  keys: all of them for BERT, those at or before the query for the causal
  GPT);
- ``enrichment = attention / share`` (1: no preference);
- a gene-label permutation test: the same statistic for random gene sets
  drawn from the genes seen, with the sequences and attention fixed, matched
  to the set on where its genes sit (as many genes from each tenth of the
  genes ordered by mean relative position in their sequences as the set has
  there: a head that only attends highly ranked genes does not pass for
  attending the set); one-sided p = (1 + #permutations with enrichment >=
  observed) / (1 + permutations), Benjamini-Hochberg FDR over heads;
- ``entropy``: each head's mean attention entropy over real queries (nats),
  beside ``uniform_entropy``, the mean log of the visible keys (the entropy
  of uniform attention).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from .inference import Batch, autocast, model_batch, unframe
from .model import BertMLM, GPT
from .perturb import benjamini_hochberg

log = logging.getLogger(__name__)


@torch.no_grad()
def accumulate_attention(model: GPT | BertMLM, batch: Batch, received: torch.Tensor, expected: torch.Tensor,
                         totals: torch.Tensor, rank_sum: torch.Tensor | None = None,
                         occurrences: torch.Tensor | None = None) -> None:
    """Add one batch's attention received per gene token into running sums.

    Parameters
    ----------
    batch : Batch
        From :func:`generain.inference.model_batch`.
    received : torch.Tensor
        float64 (n_layer, n_head, vocab_size): attention received by each gene
        token, summed over real queries (updated in place).
    expected : torch.Tensor
        float64 (vocab_size,): the same under uniform attention over visible keys (in place).
    totals : torch.Tensor
        float64 (n_layer, n_head, 3): real queries, summed entropy, summed
        uniform entropy (in place).
    rank_sum, occurrences : torch.Tensor, optional
        float64 (vocab_size,): per gene token, the sum of its relative
        positions t / (n_real - 1) and its occurrences (in place).
    """
    real = batch.real
    B, T = real.shape
    causal = isinstance(model, GPT)
    if causal:
        visible = real.cumsum(1).double()  # real keys at or before each query (padding only at the end)
    else:
        visible = real.sum(1, keepdim=True).double().expand(B, T)
    q_real = real.double()
    # uniform attention: each real query gives 1/visible to each visible real key
    w = torch.where(real, 1.0 / visible.clamp(min=1), torch.zeros_like(visible))  # (B, T) per query
    if causal:
        exp_key = torch.flip(torch.cumsum(torch.flip(w, [1]), 1), [1])  # sum over queries i >= j
    else:
        exp_key = w.sum(1, keepdim=True).expand(B, T)
    tok = batch.positions[real]
    expected.index_add_(0, tok, exp_key[real])
    if rank_sum is not None and occurrences is not None:
        rel = torch.arange(T, device=real.device, dtype=torch.float64)[None, :] / (
            real.sum(1, keepdim=True).double() - 1).clamp(min=1)
        rank_sum.index_add_(0, tok, rel.expand(B, T)[real])
        occurrences.index_add_(0, tok, torch.ones_like(rel.expand(B, T)[real]))
    log_visible = torch.log(visible.clamp(min=1)) * q_real
    with autocast(real.device):
        for layer, probs in enumerate(model.attention(**batch.kwargs)):  # (B, H, T, T)
            if batch.frame:  # genes only: drop <cls>/<eos> and renormalise each query over the gene keys
                probs = unframe(probs.double(), batch, dims=(2, 3)) * real[:, None, None, :].double()
                probs = probs / probs.sum(-1, keepdim=True).clamp(min=1e-30)
            probs = probs.double() * q_real[:, None, :, None]  # real queries only
            got = probs.sum(2)  # (B, H, T): attention received per key position
            received[layer].index_add_(1, tok, got.permute(1, 0, 2)[:, real])
            ent = -(probs * torch.log(probs.clamp(min=1e-30))).sum(-1)  # (B, H, T)
            totals[layer, :, 0] += q_real.sum()
            totals[layer, :, 1] += ent.sum((0, 2))
            totals[layer, :, 2] += log_visible.sum()


def head_statistics(received: np.ndarray, expected: np.ndarray, totals: np.ndarray, in_set: np.ndarray, *,
                    permutations: int, seed: int, mean_rank: np.ndarray | None = None,
                    strata: int = 10) -> pd.DataFrame:
    """Per-head enrichment of a gene set with its permutation test, and entropies.

    Parameters
    ----------
    received : np.ndarray
        float (n_layer, n_head, vocab_size) from :func:`accumulate_attention`.
    expected : np.ndarray
        float (vocab_size,).
    totals : np.ndarray
        float (n_layer, n_head, 3).
    in_set : np.ndarray
        bool (vocab_size,): gene tokens of the set.
    permutations : int
        Random sets drawn (seeded), each of the set's size among the genes seen.
    mean_rank : np.ndarray, optional
        float (vocab_size,): each gene's mean relative position. Given, the
        random sets match the set's genes per ``strata`` quantile bins of it.

    Returns
    -------
    pandas.DataFrame
        layer (1-based), head (1-based), set_genes_seen, attention, share,
        enrichment, p_value, fdr, entropy, uniform_entropy.
    """
    n_layer, n_head, _ = received.shape
    seen = np.flatnonzero(expected > 0)
    member = in_set[seen]
    a = received[:, :, seen].reshape(n_layer * n_head, -1)  # (LH, G)
    e = expected[seen]
    total_a = a.sum(1)
    total_e = e.sum()

    def enrichment(mask: np.ndarray) -> np.ndarray:  # mask (P, G) float -> (P, LH)
        att = (mask @ a.T) / np.maximum(total_a, 1e-300)[None, :]
        share = (mask @ e) / max(total_e, 1e-300)
        return att / share[:, None]

    k = int(member.sum())
    obs = enrichment(member[None, :].astype(float))[0] if k else np.full(n_layer * n_head, np.nan)
    rng = np.random.default_rng(seed)
    if k and permutations:
        if mean_rank is None:
            stratum = np.zeros(len(seen), int)
        else:  # quantile bins of the genes' mean relative position
            r = mean_rank[seen]
            edges = np.quantile(r, np.linspace(0, 1, strata + 1)[1:-1])
            stratum = np.searchsorted(edges, r, side="right")
        perm = np.zeros((permutations, len(seen)))
        groups = [(np.flatnonzero(stratum == g), int(member[stratum == g].sum())) for g in np.unique(stratum)]
        for i in range(permutations):
            for pool, n in groups:
                if n:
                    perm[i, rng.choice(pool, size=n, replace=False)] = 1.0
        null = enrichment(perm)
        p = (1 + (null >= obs[None, :]).sum(0)) / (1 + permutations)
    else:
        p = np.full(n_layer * n_head, np.nan)
    q = totals.reshape(n_layer * n_head, 3)
    att = (member.astype(float) @ a.T) / np.maximum(total_a, 1e-300)
    return pd.DataFrame({
        "layer": np.repeat(np.arange(1, n_layer + 1), n_head), "head": np.tile(np.arange(1, n_head + 1), n_layer),
        "set_genes_seen": k, "attention": att, "share": float(member @ e / max(total_e, 1e-300)),
        "enrichment": obs, "p_value": p, "fdr": benjamini_hochberg(p),
        "entropy": q[:, 1] / np.maximum(q[:, 0], 1), "uniform_entropy": q[:, 2] / np.maximum(q[:, 0], 1)})


def attention_heads(model: GPT | BertMLM, model_type: str, genes: np.ndarray, expr: np.ndarray,
                    in_set: np.ndarray, *, permutations: int, seed: int, batch_size: int = 8,
                    device: str = "cpu") -> pd.DataFrame:
    """:func:`head_statistics` of a model over sequences (int (N, L) gene tokens and expression bins).

    ``in_set`` is bool (vocab_size,) over the gene-token vocabulary. The
    permutations are matched on the genes' mean relative position (10 strata).
    """
    vocab_size = len(in_set)
    n_layer, n_head = model.cfg.n_layer, model.cfg.n_head
    received = torch.zeros(n_layer, n_head, vocab_size, dtype=torch.float64, device=device)
    expected = torch.zeros(vocab_size, dtype=torch.float64, device=device)
    totals = torch.zeros(n_layer, n_head, 3, dtype=torch.float64, device=device)
    rank_sum = torch.zeros(vocab_size, dtype=torch.float64, device=device)
    occurrences = torch.zeros(vocab_size, dtype=torch.float64, device=device)
    for a in range(0, len(genes), batch_size):
        b = model_batch(model_type, genes[a:a + batch_size], expr[a:a + batch_size], device,
                        eos_token=model.cfg.eos_token)
        accumulate_attention(model, b, received, expected, totals, rank_sum, occurrences)
    occ = occurrences.cpu().numpy()
    mean_rank = np.where(occ > 0, rank_sum.cpu().numpy() / np.maximum(occ, 1), np.nan)
    return head_statistics(received.cpu().numpy(), expected.cpu().numpy(), totals.cpu().numpy(),
                           np.asarray(in_set, bool), permutations=permutations, seed=seed, mean_rank=mean_rank)
