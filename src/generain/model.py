"""Small, readable transformers over gene tokens: GeneRAIN's three model types.

GeneRAIN (Su et al. 2024, Methods "Model architectures"; reference code
suzheng/GeneRAIN ``src/models/GeneExprTransformer.py``) builds its models from
Hugging Face ``transformers``:

- ``gpt``: ``GPT2LMHeadModel`` over gene tokens sorted by bin (causal,
  next-gene prediction). Gene embedding = the token embedding (tied to the
  language-model head).
- ``bert_pred_genes``: ``BertForMaskedLM`` over the same gene tokens, a
  share of them replaced by ``<mask>``; predicts the masked genes. Gene
  embedding = the word (token) embedding.
- ``bert_pred_expr``: ``BertForMaskedLM`` whose tokens are the 100
  within-sample expression bins (0 = masked) and whose *position ids are the
  gene ids*, so the position embedding is the gene embedding; predicts the
  masked bins.

This module re-implements both architectures in plain PyTorch with
:func:`torch.nn.functional.scaled_dot_product_attention`. Parameter layouts
follow the Hugging Face ones closely enough that ``tests/test_model_hf.py``
loads our weights into ``GPT2LMHeadModel`` / ``BertForMaskedLM`` and gets the
same logits within 1e-5 (float32). Like the reference, the activation is
``gelu`` (erf form) and LayerNorm eps 1e-12 by default; BERT's token-type
embedding is not used (all type ids are 0 in GeneRAIN, a constant vector that
the test maps to zero).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import N_EXPR_BINS

#: Label value ignored by the losses (PyTorch's and Hugging Face's convention).
IGNORE_INDEX = -100

#: The model types of the GeneRAIN paper, as named in the output contract.
MODEL_TYPES = ("gpt", "bert_pred_genes", "bert_pred_expr")

_ACTIVATIONS = {"gelu": lambda x: F.gelu(x), "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
                "relu": F.relu}


@dataclass
class ModelConfig:
    """Shape of a model (defaults: the GeneRAIN paper's).

    Attributes
    ----------
    vocab_size : int
        Input/output tokens: the gene vocabulary (gpt, bert_pred_genes) or
        ``N_EXPR_BINS + 1`` expression-bin tokens (bert_pred_expr).
    n_positions : int
        Position-embedding rows: the sequence length (gpt, bert_pred_genes)
        or the gene vocabulary size (bert_pred_expr, positions = gene ids).
    activation : str
        ``gelu`` (erf; GeneRAIN's ``hidden_act``), ``gelu_new`` (tanh, GPT-2's)
        or ``relu`` (Geneformer's).
    layer_norm_eps : float
        LayerNorm epsilon (GeneRAIN: 1e-12 for both GPT and BERT).
    eos_token : int
        0: inputs are the gene tokens as they are (GeneRAIN, Geneformer V1).
        Otherwise the token id of ``<eos>``: every input is framed as
        ``<cls> genes... <eos>`` (Geneformer V2; :func:`generain.inference.model_batch`).
    """

    vocab_size: int
    n_positions: int = 2048
    n_layer: int = 6
    n_head: int = 4
    n_embd: int = 200
    n_inner: int = 800
    dropout: float = 0.05
    activation: str = "gelu"
    layer_norm_eps: float = 1e-12
    eos_token: int = 0

    def __post_init__(self) -> None:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not divisible by n_head {self.n_head}")
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r} is not one of {sorted(_ACTIVATIONS)}")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def _attention(qkv: torch.Tensor, n_head: int, *, causal: bool, key_mask: torch.Tensor | None,
               dropout: float) -> torch.Tensor:
    """Multi-head attention from packed (B, T, 3C) projections to (B, T, C)."""
    B, T, C3 = qkv.shape
    C = C3 // 3
    # (B, T, C) -> (B, n_head, T, head_dim)
    q, k, v = (t.view(B, T, n_head, C // n_head).transpose(1, 2) for t in qkv.split(C, dim=2))
    mask = None if key_mask is None else key_mask[:, None, None, :]  # (B, 1, 1, T), True = attend
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and mask is None,
                                       dropout_p=dropout)
    return y.transpose(1, 2).reshape(B, T, C)


def _attention_probs(qkv: torch.Tensor, n_head: int, *, causal: bool, key_mask: torch.Tensor | None) -> torch.Tensor:
    """Attention probabilities, float32 (B, n_head, T, T): row = query, column = key.

    The explicit form of :func:`_attention` (softmax of q k^T / sqrt(head_dim)
    over the keys a query may see; causal: keys <= query; ``key_mask``: real
    keys only), for the attention analysis; inference only.
    """
    B, T, C3 = qkv.shape
    C = C3 // 3
    q, k, _ = (t.view(B, T, n_head, C // n_head).transpose(1, 2).float() for t in qkv.split(C, dim=2))
    scores = q @ k.transpose(-1, -2) / math.sqrt(C // n_head)  # (B, H, T, T)
    allowed = torch.ones(T, T, dtype=torch.bool, device=qkv.device)
    if causal:
        allowed = torch.tril(allowed)
    allowed = allowed[None, None]
    if key_mask is not None:
        allowed = allowed & key_mask[:, None, None, :]
    return torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1).nan_to_num(0.0)


def _layer_index(layer: int, n_layer: int) -> int:
    """A hidden-state index 0..n_layer from ``layer`` (negative counts from the end, as Python lists).

    Index 0 is the embedding output, k the output of block k; ``-1`` is the
    last block and ``-2`` the second-to-last (Geneformer's choice for cell
    embeddings: Hugging Face's ``hidden_states[-2]``).
    """
    k = layer + n_layer + 1 if layer < 0 else layer
    if not 0 <= k <= n_layer:
        raise ValueError(f"layer {layer} is outside the model's hidden states "
                         f"(-{n_layer + 1}..{n_layer} for {n_layer} layers)")
    return k


def _init_weights(module: nn.Module) -> None:
    """GPT-2/BERT initialisation: N(0, 0.02) weights, zero biases, unit LayerNorms."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def _masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
    """Mean cross-entropy (float32) over positions whose label is not IGNORE_INDEX (0 when there are none)."""
    if labels is None:
        return None
    if not (labels != IGNORE_INDEX).any():
        return logits.sum() * 0.0  # keeps the graph (DDP expects gradients) without a NaN mean
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1),
                           ignore_index=IGNORE_INDEX)


#: positions per chunk of :func:`linear_cross_entropy` (logits of one chunk: chunk x vocab floats)
LOSS_CHUNK = 1024


class _LinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of ``h @ weight.T + bias`` without the (M, vocab) logits (see :func:`linear_cross_entropy`)."""

    @staticmethod
    def forward(ctx, h, weight, bias, labels, chunk):  # type: ignore[override]
        acc = torch.promote_types(h.dtype, torch.float32)  # float32, or float64 for float64 inputs
        n = max(h.shape[0], 1)
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        gh = torch.empty_like(h) if need_h else None
        gw = torch.zeros(weight.shape, dtype=acc, device=h.device) if need_w else None
        gb = torch.zeros(weight.shape[0], dtype=acc, device=h.device) if need_b else None
        total = torch.zeros((), dtype=acc, device=h.device)
        for a in range(0, h.shape[0], chunk):
            hc, yc = h[a:a + chunk], labels[a:a + chunk]
            z = F.linear(hc, weight, bias).to(acc)  # (chunk, vocab): the only logits alive
            lse = torch.logsumexp(z, -1)
            total += (lse - z.gather(1, yc[:, None]).squeeze(1)).sum()
            if gh is None and gw is None and gb is None:
                continue
            # d(sum of losses)/d(logits) of this chunk: softmax - one-hot, entries in [-1, 1]; the products run
            # on it unscaled (under float16 autocast, g / M would underflow) and are divided by M in float32
            g = torch.exp_(z.sub_(lse[:, None]))
            g[torch.arange(len(hc), device=h.device), yc] -= 1.0
            if gh is not None:
                gh[a:a + chunk] = ((g.to(weight.dtype) @ weight).to(acc) / n).to(h.dtype)
            if gw is not None:
                gw += (g.T.to(hc.dtype) @ hc).to(acc) / n
            if gb is not None:
                gb += g.sum(0) / n
        ctx.save_for_backward(*(t for t in (gh, gw, gb) if t is not None))
        ctx.which = (need_h, need_w, need_b)
        ctx.dtypes = (weight.dtype, None if bias is None else bias.dtype)
        return total / n

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        saved = iter(ctx.saved_tensors)
        gh, gw, gb = (next(saved) if need else None for need in ctx.which)
        return (None if gh is None else gh * grad.to(gh.dtype),
                None if gw is None else (gw * grad).to(ctx.dtypes[0]),
                None if gb is None else (gb * grad).to(ctx.dtypes[1]), None, None)


def linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, labels: torch.Tensor,
                         *, chunk: int = LOSS_CHUNK) -> torch.Tensor:
    """Mean cross-entropy of the logits ``h @ weight.T + bias`` at ``labels``, computed in chunks of positions.

    The language-model head's logits are the largest activation of a
    training step (positions x vocabulary floats, kept for the backward
    pass). Here only one chunk of them exists at a time: for each chunk the
    forward forms the logits, their log-sum-exp and, when gradients are
    needed, softmax minus one-hot and from it the gradients of ``h``,
    ``weight`` and ``bias`` (the loss is a scalar, so the backward only
    scales them), as fused linear cross-entropy kernels do. Memory: one
    chunk's logits plus gradients the size of ``h`` and ``weight``; the
    same matmuls as the full path. Same loss and gradients as
    ``F.cross_entropy(F.linear(h, weight, bias).float(), labels)`` within
    float tolerance (tests/test_model.py), under bf16 and float16 autocast too
    (the products run on softmax minus one-hot before the division by M,
    so nothing underflows in float16).

    Parameters
    ----------
    h : torch.Tensor
        float (M, C) hidden states of the M labelled positions.
    weight : torch.Tensor
        float (vocab, C), the head (tied to the token embedding).
    bias : torch.Tensor or None
        float (vocab,).
    labels : torch.Tensor
        int64 (M,) targets, all real (select positions first).
    chunk : int
        positions per chunk.

    Returns
    -------
    torch.Tensor
        float32 scalar (float64 for float64 inputs); 0 (with a graph) when M = 0.
    """
    if h.shape[0] == 0:  # every parameter stays in the graph (DDP expects a gradient for each)
        return (h.sum() + weight.sum() + (bias.sum() if bias is not None else 0.0)) * 0.0
    if not torch.is_grad_enabled():  # validation: no gradient products (needs_input_grad follows requires_grad)
        weight, bias = weight.detach(), None if bias is None else bias.detach()
    return _LinearCrossEntropy.apply(h, weight, bias, labels, chunk)


# ---------------------------------------------------------------------------
# GPT (pre-LayerNorm decoder, as GPT2LMHeadModel)
# ---------------------------------------------------------------------------

class GPTBlock(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_head, self.dropout = cfg.n_head, cfg.dropout
        self.ln_1 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps)
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.attn_proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps)
        self.c_fc = nn.Linear(cfg.n_embd, cfg.n_inner)
        self.mlp_proj = nn.Linear(cfg.n_inner, cfg.n_embd)
        self.act = _ACTIVATIONS[cfg.activation]
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, T, C)
        a = _attention(self.c_attn(self.ln_1(x)), self.n_head, causal=True, key_mask=None,
                       dropout=self.dropout if self.training else 0.0)
        x = x + self.drop(self.attn_proj(a))
        return x + self.drop(self.mlp_proj(self.act(self.c_fc(self.ln_2(x)))))

    def attention_probs(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, H, T, T)
        return _attention_probs(self.c_attn(self.ln_1(x)), self.n_head, causal=True, key_mask=None)


class GPT(nn.Module):
    """Causal language model over gene tokens (GeneRAIN ``gpt``).

    ``forward(idx, labels=None) -> (logits, loss)``: idx int64 (B, T) token
    ids; logits float (B, T, vocab_size) predict the *next* token; labels
    int64 (B, T) are the next tokens with ``IGNORE_INDEX`` where there is no
    real target (padding). The loss counts real positions only (GeneRAIN's
    code also counted padded positions; that flaw is not reproduced).
    With labels and ``return_logits=False`` (training) the logits are not
    materialised: ``(None, loss)`` from :func:`linear_cross_entropy`.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.wte = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.wpe = nn.Embedding(cfg.n_positions, cfg.n_embd)
        self.drop = nn.Dropout(cfg.dropout)
        self.h = nn.ModuleList([GPTBlock(cfg) for _ in range(cfg.n_layer)])
        self.ln_f = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps)
        self.apply(_init_weights)
        for name, p in self.named_parameters():
            if name.endswith("proj.weight"):  # GPT-2's scaled init of residual projections
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    def forward(self, idx: torch.Tensor, labels: torch.Tensor | None = None, *,
                return_logits: bool = True) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        B, T = idx.shape
        if T > self.cfg.n_positions:
            raise ValueError(f"sequence length {T} exceeds n_positions {self.cfg.n_positions}")
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos)[None])  # (B, T, C)
        for block in self.h:
            x = block(x)
        if labels is not None and not return_logits:  # training: the loss without the logits
            keep = labels != IGNORE_INDEX
            return None, linear_cross_entropy(self.ln_f(x[keep]), self.wte.weight, None, labels[keep])
        logits = F.linear(self.ln_f(x), self.wte.weight)  # LM head tied to the token embedding, (B, T, vocab)
        return logits, _masked_lm_loss(logits, labels)

    def gene_embedding(self) -> torch.Tensor:
        """The token-embedding matrix, float (vocab_size, n_embd): row = gene token id."""
        return self.wte.weight.detach()

    def hidden_state(self, idx: torch.Tensor, *, layer: int = -2) -> torch.Tensor:
        """Hidden states at one layer, float (B, T, n_embd), for int64 (B, T) tokens.

        ``layer`` as Hugging Face's ``hidden_states[layer]`` of
        ``GPT2LMHeadModel`` (0: embeddings; n_layer, or -1: the last block's
        output after the final LayerNorm). Causal: position t depends on
        tokens <= t only.
        """
        k = _layer_index(layer, self.cfg.n_layer)
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))[None])
        for block in self.h[:k]:
            x = block(x)
        return self.ln_f(x) if k == self.cfg.n_layer else x

    def attention(self, idx: torch.Tensor) -> Iterator[torch.Tensor]:
        """Per layer (first to last), the attention probabilities, float32 (B, n_head, T, T)."""
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))[None])
        for block in self.h:
            yield block.attention_probs(x)
            x = block(x)


# ---------------------------------------------------------------------------
# BERT (post-LayerNorm encoder with a masked-LM head, as BertForMaskedLM)
# ---------------------------------------------------------------------------

class BertLayer(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.n_head, self.dropout = cfg.n_head, cfg.dropout
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.attn_out = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.ln_attn = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps)
        self.ffn_in = nn.Linear(cfg.n_embd, cfg.n_inner)
        self.ffn_out = nn.Linear(cfg.n_inner, cfg.n_embd)
        self.ln_ffn = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps)
        self.act = _ACTIVATIONS[cfg.activation]
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:  # (B, T, C)
        a = _attention(self.qkv(x), self.n_head, causal=False, key_mask=key_mask,
                       dropout=self.dropout if self.training else 0.0)
        x = self.ln_attn(x + self.drop(self.attn_out(a)))
        return self.ln_ffn(x + self.drop(self.ffn_out(self.act(self.ffn_in(x)))))

    def attention_probs(self, x: torch.Tensor, key_mask: torch.Tensor | None) -> torch.Tensor:
        return _attention_probs(self.qkv(x), self.n_head, causal=False, key_mask=key_mask)


class BertMLM(nn.Module):
    """Masked language model (GeneRAIN ``bert_pred_genes`` and ``bert_pred_expr``).

    ``forward(idx, position_ids=None, key_mask=None, labels=None) -> (logits, loss)``:
    idx int64 (B, T) tokens; position_ids int64 (B, T) (default 0..T-1; gene
    ids for bert_pred_expr); key_mask bool (B, T), True for real tokens (None:
    all real); labels int64 (B, T) with ``IGNORE_INDEX`` at unmasked positions.
    logits float (B, T, vocab_size); with labels, only the M labelled positions'
    logits are computed, float (M, vocab_size), in row-major (b, t) order (the
    loss needs no others, and the head over a 13K-gene vocabulary dominates
    the cost otherwise). With labels and ``return_logits=False`` (training):
    ``(None, loss)`` from :func:`linear_cross_entropy`, without the logits.

    ``genes_in`` says where the gene embedding lives: ``"tokens"`` (word
    embedding; bert_pred_genes) or ``"positions"`` (position embedding;
    bert_pred_expr).
    """

    def __init__(self, cfg: ModelConfig, genes_in: str = "tokens") -> None:
        super().__init__()
        if genes_in not in ("tokens", "positions"):
            raise ValueError(f"genes_in must be 'tokens' or 'positions', not {genes_in!r}")
        self.cfg, self.genes_in = cfg, genes_in
        self.word_emb = nn.Embedding(cfg.vocab_size, cfg.n_embd)
        self.pos_emb = nn.Embedding(cfg.n_positions, cfg.n_embd)
        self.ln_emb = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps)
        self.drop = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList([BertLayer(cfg) for _ in range(cfg.n_layer)])
        # masked-LM head: dense -> activation -> LayerNorm -> decoder tied to the word embedding (+ bias)
        self.head_dense = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.head_ln = nn.LayerNorm(cfg.n_embd, eps=cfg.layer_norm_eps)
        self.head_bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        self.act = _ACTIVATIONS[cfg.activation]
        self.apply(_init_weights)

    def forward(self, idx: torch.Tensor, position_ids: torch.Tensor | None = None,
                key_mask: torch.Tensor | None = None,
                labels: torch.Tensor | None = None, *,
                return_logits: bool = True) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x = self._embed(idx, position_ids)  # (B, T, C)
        for layer in self.layers:
            x = layer(x, key_mask)
        if labels is not None:  # training: the head only at labelled positions (~15%), logits (M, vocab)
            keep = labels != IGNORE_INDEX
            x, labels = x[keep], labels[keep]
        h = self.head_ln(self.act(self.head_dense(x)))
        if labels is not None and not return_logits:
            return None, linear_cross_entropy(h, self.word_emb.weight, self.head_bias, labels)
        logits = F.linear(h, self.word_emb.weight, self.head_bias)  # (B, T, vocab) or (M, vocab)
        return logits, _masked_lm_loss(logits, labels)

    def gene_embedding(self) -> torch.Tensor:
        """Gene-embedding matrix, float (n_genes, n_embd): word or position embedding (see ``genes_in``)."""
        return (self.word_emb if self.genes_in == "tokens" else self.pos_emb).weight.detach()

    def _embed(self, idx: torch.Tensor, position_ids: torch.Tensor | None) -> torch.Tensor:
        B, T = idx.shape
        if position_ids is None:
            if T > self.cfg.n_positions:
                raise ValueError(f"sequence length {T} exceeds n_positions {self.cfg.n_positions}")
            position_ids = torch.arange(T, device=idx.device)[None].expand(B, T)
        return self.drop(self.ln_emb(self.word_emb(idx) + self.pos_emb(position_ids)))

    def hidden_state(self, idx: torch.Tensor, position_ids: torch.Tensor | None = None,
                     key_mask: torch.Tensor | None = None, *, layer: int = -2) -> torch.Tensor:
        """Hidden states at one layer, float (B, T, n_embd) (inputs as :meth:`forward`).

        ``layer`` as Hugging Face's ``hidden_states[layer]`` of
        ``BertForMaskedLM`` (0: the embedding output; -1: the last layer;
        -2, the default: the second-to-last, Geneformer's cell-embedding layer).
        """
        k = _layer_index(layer, self.cfg.n_layer)
        x = self._embed(idx, position_ids)
        for lay in self.layers[:k]:
            x = lay(x, key_mask)
        return x

    def attention(self, idx: torch.Tensor, position_ids: torch.Tensor | None = None,
                  key_mask: torch.Tensor | None = None) -> Iterator[torch.Tensor]:
        """Per layer (first to last), the attention probabilities, float32 (B, n_head, T, T)."""
        x = self._embed(idx, position_ids)
        for lay in self.layers:
            yield lay.attention_probs(x, key_mask)
            x = lay(x, key_mask)


def build_model(model_type: str, cfg: ModelConfig) -> GPT | BertMLM:
    """The model for one of :data:`MODEL_TYPES`.

    Raises
    ------
    ValueError
        If ``model_type`` is unknown.
    """
    if model_type == "gpt":
        return GPT(cfg)
    if model_type == "bert_pred_genes":
        return BertMLM(cfg, genes_in="tokens")
    if model_type == "bert_pred_expr":
        return BertMLM(cfg, genes_in="positions")
    raise ValueError(f"unknown model type {model_type!r}; expected one of {', '.join(MODEL_TYPES)}")


def model_config_for(model_type: str, *, n_genes: int, length: int, **shape: object) -> ModelConfig:
    """Vocabulary and position sizes of a model type for a gene vocabulary.

    Parameters
    ----------
    n_genes : int
        Size of the gene-token vocabulary, special tokens included.
    length : int
        Gene tokens per sample sequence.
    **shape
        The remaining :class:`ModelConfig` fields (n_layer, n_head, ...).
    """
    if model_type == "bert_pred_expr":  # swap: bins are the tokens, genes are the positions
        return ModelConfig(vocab_size=N_EXPR_BINS + 1, n_positions=n_genes, **shape)  # type: ignore[arg-type]
    # GPT predicts token t+1 from tokens <= t: its inputs are length - 1 long
    return ModelConfig(vocab_size=n_genes, n_positions=length, **shape)  # type: ignore[arg-type]


def hf_state_dict(model: GPT | BertMLM) -> dict[str, torch.Tensor]:
    """The model's weights under Hugging Face ``transformers`` names.

    ``GPT`` -> ``GPT2LMHeadModel`` (Conv1D weights are stored transposed,
    (in, out)); ``BertMLM`` -> ``BertForMaskedLM`` (the packed q/k/v
    projection split in three; the token-type embedding, which GeneRAIN never
    varies, as a zero row of shape (1, n_embd)). Load the result with
    ``load_state_dict(..., strict=False)``: position-id buffers are not
    included. Used to prove logit equivalence (tests/test_model_hf.py) and to
    benchmark against the reference implementation; needs no ``transformers``.

    Returns
    -------
    dict
        name -> detached float tensor copy.
    """
    if isinstance(model, GPT):
        sd = {"transformer.wte.weight": model.wte.weight, "transformer.wpe.weight": model.wpe.weight,
              "transformer.ln_f.weight": model.ln_f.weight, "transformer.ln_f.bias": model.ln_f.bias,
              "lm_head.weight": model.wte.weight}
        for i, b in enumerate(model.h):
            p = f"transformer.h.{i}."
            for ours, theirs in [(b.ln_1, "ln_1"), (b.ln_2, "ln_2")]:
                sd[p + theirs + ".weight"], sd[p + theirs + ".bias"] = ours.weight, ours.bias
            for ours, theirs in [(b.c_attn, "attn.c_attn"), (b.attn_proj, "attn.c_proj"),
                                 (b.c_fc, "mlp.c_fc"), (b.mlp_proj, "mlp.c_proj")]:
                sd[p + theirs + ".weight"], sd[p + theirs + ".bias"] = ours.weight.t(), ours.bias
        return {k: v.detach().clone() for k, v in sd.items()}
    C = model.cfg.n_embd
    e = "bert.embeddings."
    sd = {e + "word_embeddings.weight": model.word_emb.weight, e + "position_embeddings.weight": model.pos_emb.weight,
          e + "token_type_embeddings.weight": torch.zeros(1, C),
          e + "LayerNorm.weight": model.ln_emb.weight, e + "LayerNorm.bias": model.ln_emb.bias,
          "cls.predictions.transform.dense.weight": model.head_dense.weight,
          "cls.predictions.transform.dense.bias": model.head_dense.bias,
          "cls.predictions.transform.LayerNorm.weight": model.head_ln.weight,
          "cls.predictions.transform.LayerNorm.bias": model.head_ln.bias,
          "cls.predictions.bias": model.head_bias, "cls.predictions.decoder.weight": model.word_emb.weight,
          "cls.predictions.decoder.bias": model.head_bias}
    for i, layer in enumerate(model.layers):
        p = f"bert.encoder.layer.{i}."
        for part, w, b in zip(("query", "key", "value"), layer.qkv.weight.split(C), layer.qkv.bias.split(C)):
            sd[p + f"attention.self.{part}.weight"], sd[p + f"attention.self.{part}.bias"] = w, b
        for ours, theirs in [(layer.attn_out, "attention.output.dense"), (layer.ln_attn, "attention.output.LayerNorm"),
                             (layer.ffn_in, "intermediate.dense"), (layer.ffn_out, "output.dense"),
                             (layer.ln_ffn, "output.LayerNorm")]:
            sd[p + theirs + ".weight"], sd[p + theirs + ".bias"] = ours.weight, ours.bias
    return {k: v.detach().clone() for k, v in sd.items()}
