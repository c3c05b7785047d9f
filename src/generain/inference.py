"""Running a trained model over token sequences: hidden states, sample and contextual gene embeddings.

The workflow's other stages use only a model's input-embedding table. This
module reads the model itself, as Geneformer does (Theodoris et al., Nature
2023, Methods "Cell and gene embeddings"): the hidden states of one layer
(default the second-to-last), averaged

- over a sample's real (non-padding) positions: the **sample embedding**
  (Geneformer's cell embedding);
- over the samples in which a gene occurs, at that gene's position: the
  gene's **contextual embedding**.

Which position holds which gene depends on the model type (GeneRAIN, Methods
"Model architectures"): ``gpt`` and ``bert_pred_genes`` read gene tokens in
bin order, ``bert_pred_expr`` reads expression-bin tokens whose position ids
are the gene tokens. The GPT reads what it read in training, the first
``length - 1`` tokens (its inputs in next-gene training); it is causal, so
position t depends only on the genes ranked at or above t.

Inference is batched under ``torch.no_grad``; on CUDA it runs in bfloat16
autocast (float32 accumulations).
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import pandas as pd
import torch

from . import CLS_ID, PAD_ID
from .model import BertMLM, GPT
from .tokenize import TokenShards

log = logging.getLogger(__name__)


@dataclass
class Batch:
    """Model inputs of a batch of sequences and which gene token sits at each input position.

    Attributes
    ----------
    kwargs : dict
        Keyword arguments of the model's ``hidden_state`` and ``attention``.
    positions : torch.Tensor
        int64 (B, T): the gene token at each input position (``PAD_ID`` at padding).
    real : torch.Tensor
        bool (B, T): True at real (non-padding) positions.
    frame : bool
        True when the model reads ``<cls> genes... <eos>`` (Geneformer V2):
        its inputs and outputs have one more position at each end, which
        :func:`unframe` drops so that states line up with ``positions``.
    """

    kwargs: dict[str, torch.Tensor]
    positions: torch.Tensor
    real: torch.Tensor
    frame: bool = False


def model_batch(model_type: str, genes: np.ndarray | torch.Tensor, expr: np.ndarray | torch.Tensor,
                device: str | torch.device = "cpu", *, eos_token: int = 0) -> Batch:
    """Unmasked inputs of a model type for sequences of gene tokens and expression bins.

    Parameters
    ----------
    model_type : str
        ``gpt``, ``bert_pred_genes`` or ``bert_pred_expr``.
    genes, expr : array-like
        int (B, L) gene tokens in bin order, padded with ``PAD_ID`` at the end,
        and their within-sample expression bins 1..100 (0 at padding), as in the
        token shards.
    eos_token : int
        The model's ``cfg.eos_token``: when not 0 (Geneformer V2, bert_pred_genes
        only), each sequence is framed as ``<cls> genes... <eos>`` (the
        ``<eos>`` right after the last real gene, padding after it), as
        Geneformer V2's tokenizer writes it; ``positions`` and ``real`` stay
        those of the genes.

    Returns
    -------
    Batch
        gpt: idx = genes[:, :L-1] (the GPT's training inputs); bert_pred_genes:
        idx = genes with the real-key mask; bert_pred_expr: idx = expr,
        position_ids = genes, with the real-key mask.

    Raises
    ------
    ValueError
        If ``model_type`` is unknown.
    """
    g = torch.as_tensor(np.asarray(genes, dtype=np.int64), device=device)
    e = torch.as_tensor(np.asarray(expr, dtype=np.int64), device=device)
    if eos_token and model_type != "bert_pred_genes":
        raise ValueError(f"framed inputs (<cls> ... <eos>) are for bert_pred_genes models, not {model_type}")
    if model_type == "gpt":
        g = g[:, :-1]
        return Batch({"idx": g}, g, g != PAD_ID)
    real = g != PAD_ID
    if model_type == "bert_pred_genes" and eos_token:
        B, L = g.shape
        framed = torch.zeros(B, L + 2, dtype=g.dtype, device=g.device)
        framed[:, 0] = CLS_ID
        framed[:, 1:L + 1] = g
        framed[torch.arange(B, device=g.device), real.sum(1) + 1] = eos_token
        return Batch({"idx": framed, "key_mask": framed != PAD_ID}, g, real, frame=True)
    if model_type == "bert_pred_genes":
        return Batch({"idx": g, "key_mask": real}, g, real)
    if model_type == "bert_pred_expr":
        return Batch({"idx": e, "position_ids": g, "key_mask": real}, g, real)
    raise ValueError(f"unknown model type {model_type!r}")


def autocast(device: str | torch.device) -> contextlib.AbstractContextManager[None]:
    """bfloat16 autocast on CUDA; nothing on CPU (float32)."""
    if torch.device(device).type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def unframe(x: torch.Tensor, batch: Batch, dims: tuple[int, ...] = (1,)) -> torch.Tensor:
    """Drop the ``<cls>`` and ``<eos>`` positions of a framed batch along ``dims`` (nothing if not framed).

    States (B, T + 2, C) become (B, T, C), lined up with ``batch.positions``:
    the ``<eos>`` state lands on a padding position or is cut.
    """
    if not batch.frame:
        return x
    for d in dims:
        x = x.narrow(d, 1, x.shape[d] - 2)
    return x


@torch.no_grad()
def hidden_states(model: GPT | BertMLM, batch: Batch, *, layer: int) -> torch.Tensor:
    """Hidden states of one layer, float32 (B, T, n_embd), zero at padding positions (and, framed, without
    the ``<cls>``/``<eos>`` positions)."""
    with autocast(batch.positions.device):
        h = unframe(model.hidden_state(**batch.kwargs, layer=layer), batch)
    return h.float() * batch.real[..., None]


def mean_over_real(h: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean of (B, T, C) states over each row's real positions: float32 (B, C) (zeros for an empty row)."""
    n = real.sum(1, keepdim=True).clamp(min=1)
    return (h * real[..., None]).sum(1) / n


def read_rows(shards: TokenShards, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gene tokens and expression bins of index rows ``rows``: two int64 (len(rows), L) arrays, in ``rows`` order."""
    idx = shards.index.iloc[np.asarray(rows, dtype=np.int64)]
    shard_of, row_of = idx["shard"].to_numpy(), idx["row"].to_numpy()
    genes = expr = None
    for k in np.unique(shard_of):
        g, e = shards._shard(int(k))
        if genes is None:
            genes = np.zeros((len(idx), g.shape[1]), np.int64)
            expr = np.zeros((len(idx), g.shape[1]), np.int64)
        m = shard_of == k
        genes[m], expr[m] = g[row_of[m]], e[row_of[m]]
    if genes is None:
        return np.zeros((0, 0), np.int64), np.zeros((0, 0), np.int64)
    return genes, expr


def iter_batches(shards: TokenShards, rows: np.ndarray, batch_size: int
                 ) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(rows, genes, expr) of consecutive batches of index rows."""
    for a in range(0, len(rows), batch_size):
        r = rows[a:a + batch_size]
        yield (r, *read_rows(shards, r))


@dataclass
class CorpusEmbedding:
    """Sample and contextual gene embeddings of a corpus (:func:`embed_corpus`).

    Attributes
    ----------
    samples : np.ndarray
        float32 (n_samples, n_embd): mean hidden state over each sample's real positions.
    gene_sum : np.ndarray
        float64 (vocab_size, n_embd): per gene token, the sum of its hidden states over samples.
    gene_count : np.ndarray
        int64 (vocab_size,): samples in whose (model input) sequence the gene occurs.
    """

    samples: np.ndarray
    gene_sum: np.ndarray
    gene_count: np.ndarray

    def contextual(self) -> tuple[np.ndarray, np.ndarray]:
        """Token ids of genes seen at least once and their mean hidden states, float32 (n, n_embd)."""
        seen = np.flatnonzero(self.gene_count > 0)
        seen = seen[seen != PAD_ID]
        return seen, (self.gene_sum[seen] / self.gene_count[seen, None]).astype(np.float32)


@torch.no_grad()
def embed_corpus(model: GPT | BertMLM, model_type: str, shards: TokenShards, rows: np.ndarray, *,
                 layer: int, vocab_size: int, batch_size: int = 16, device: str = "cpu",
                 progress_every: int = 50) -> CorpusEmbedding:
    """Sample embeddings and contextual gene embeddings of corpus rows in one pass.

    Parameters
    ----------
    model : GPT or BertMLM
        In eval mode, on ``device``.
    shards : TokenShards
        The corpus; ``rows`` are positions in its index.
    layer : int
        Hidden-state index (see :meth:`generain.model.GPT.hidden_state`; -2:
        second-to-last).
    vocab_size : int
        Gene-token vocabulary size (rows of ``gene_sum``).

    Returns
    -------
    CorpusEmbedding
        Rows of ``samples`` follow ``rows``.
    """
    n_embd = model.cfg.n_embd
    samples = np.zeros((len(rows), n_embd), np.float32)
    gene_sum = torch.zeros(vocab_size, n_embd, dtype=torch.float64, device=device)
    gene_count = torch.zeros(vocab_size, dtype=torch.int64, device=device)
    done = 0
    for k, (r, g, e) in enumerate(iter_batches(shards, rows, batch_size)):
        b = model_batch(model_type, g, e, device, eos_token=model.cfg.eos_token)
        h = hidden_states(model, b, layer=layer)
        samples[done:done + len(r)] = mean_over_real(h, b.real).cpu().numpy()
        tok = b.positions[b.real]
        gene_sum.index_add_(0, tok, h[b.real].double())
        gene_count.index_add_(0, tok, torch.ones_like(tok))
        done += len(r)
        if progress_every and (k + 1) % progress_every == 0:
            log.info("embedded %d of %d samples", done, len(rows))
    return CorpusEmbedding(samples, gene_sum.cpu().numpy(), gene_count.cpu().numpy())


def select_samples(meta: pd.DataFrame, *, datasets: list[str] | None = None, series: list[str] | None = None,
                   sample_ids: list[str] | None = None) -> np.ndarray:
    """Rows of a sample table (sample_id, dataset, series_id) that match every filter given.

    An empty or missing filter does not restrict. Returns int64 row positions.
    """
    keep = np.ones(len(meta), bool)
    for col, values in (("dataset", datasets), ("series_id", series), ("sample_id", sample_ids)):
        if values:
            keep &= meta[col].astype(str).isin([str(v) for v in values]).to_numpy()
    return np.flatnonzero(keep)
