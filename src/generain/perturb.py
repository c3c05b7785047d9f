"""Zero-shot in-silico perturbation: move genes to the front of a sample's sequence, or delete them.

After Geneformer's in-silico perturbation (Theodoris et al., Nature 2023,
Methods "In silico perturbation"): a sequence orders a sample's genes by
normalized expression, highest first, so

- ``overexpress`` moves each perturbed gene to the front (the first listed
  gene ends first); a gene absent from the sequence is inserted at the front
  and the last token drops (in a sequence that was full, a real gene; else
  padding). For ``bert_pred_expr``, whose tokens are expression bins, the
  gene also takes the top bin (``N_EXPR_BINS``); the other genes keep theirs.
- ``delete`` removes the gene; the genes after it move up one place and
  padding fills the end. A sample without the gene is not perturbed.

The effect is read from the model's hidden states at one layer: per sample,
the cosine shift ``1 - cos(e, e')`` of its sample embedding (mean over real
positions) before and after; per other gene in the perturbed sequence, the
cosine shift of its hidden state at its own position, averaged over the
samples. For the causal ``gpt``, moving a gene to the front shifts every
later position by one and puts the gene in every later position's context,
so every gene's state changes; the null below carries the same change.

The null (what perturbing *some* gene does): the same perturbation applied
to a gene of matched within-sample rank in the same samples: a gene drawn
uniformly from the positions within ``window`` of the perturbed gene's
position (for a gene absent from a sample, a vocabulary gene also absent),
``n_draws`` times, seeded. A gene's empirical p-value is
``(1 + #draws whose mean shift >= observed) / (1 + #draws where it was
seen)``; FDR is Benjamini-Hochberg over the genes. With D draws the
smallest empirical p-value is 1 / (D + 1), so over G genes no gene reaches
FDR q unless about G / (q (D + 1)) genes share it (8,000 genes, 100 draws:
1,584): the tables therefore also give a normal approximation, the z-score
of the observed mean shift against the draws' mean shifts (their mean and
standard deviation), its one-sided p-value and its Benjamini-Hochberg FDR.

Both tests are also given in the other direction (``p_value_less``,
``fdr_less``, ``p_value_normal_less``, ``fdr_normal_less``): genes whose
states move *less* than when a rank-matched gene is perturbed, i.e. genes
the model ties to the perturbed gene closely enough that moving it steadies
them relative to the null. On generated data with planted co-expression
modules (``benchmarks/learning_curve.py``), that is how the models trained
here answer: overexpressing a module gene shifts its module-mates less than
the null does (BENCHMARKS.md, "Learning curve").
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from . import N_EXPR_BINS, PAD_ID
from .inference import hidden_states, mean_over_real, model_batch
from .model import BertMLM, GPT
from .utils import InputError

log = logging.getLogger(__name__)

MODES = ("overexpress", "delete")


@dataclass
class Perturbed:
    """Perturbed sequences (:func:`perturb_sequences`).

    Attributes
    ----------
    genes, expr : np.ndarray
        int64 (N, L): the perturbed gene tokens and expression bins, padded at the end.
    origin : np.ndarray
        int64 (N, L): for each new position, the position its gene held in the
        original sequence; -1 for a perturbed (moved or inserted) gene and for padding.
    changed : np.ndarray
        bool (N,): rows that differ from the original.
    """

    genes: np.ndarray
    expr: np.ndarray
    origin: np.ndarray
    changed: np.ndarray


def _apply_one(genes: np.ndarray, expr: np.ndarray, origin: np.ndarray, target: np.ndarray,
               mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One gene per row (``target`` int64 (N,), PAD_ID = leave the row alone)."""
    n, length = genes.shape
    j = np.arange(length)[None, :]
    hit = (genes == target[:, None]) & (target[:, None] != PAD_ID)
    present = hit.any(1)
    p = np.where(present, hit.argmax(1), length)[:, None]  # the gene's position; L when absent
    active = target != PAD_ID
    if mode == "delete":
        active &= present
        src = np.where(j >= p, j + 1, j)  # L = the padding column
    else:
        src = np.where(j == 0, length, np.where(j <= p, j - 1, j))  # position 0 is filled below
    src = np.where(active[:, None], src, j)
    pad = np.zeros((n, 1), np.int64)
    g = np.take_along_axis(np.concatenate([genes, pad], 1), src, 1)
    e = np.take_along_axis(np.concatenate([expr, pad], 1), src, 1)
    o = np.take_along_axis(np.concatenate([origin, pad - 1], 1), src, 1)
    if mode == "overexpress":
        g[active, 0] = target[active]
        e[active, 0] = N_EXPR_BINS
        o[active, 0] = -1
    return g, e, o


def perturb_sequences(genes: np.ndarray, expr: np.ndarray, targets: np.ndarray, mode: str) -> Perturbed:
    """Overexpress or delete genes in each sequence (rules in the module docstring).

    Parameters
    ----------
    genes, expr : np.ndarray
        int (N, L): gene tokens in bin order (highest first) padded with
        ``PAD_ID`` at the end, and their expression bins (0 at padding).
    targets : np.ndarray
        int (N, K) or (K,): the gene tokens perturbed in each row, together
        (``PAD_ID`` entries are skipped). With ``overexpress`` the first
        column ends at position 0.
    mode : str
        ``overexpress`` or ``delete``.

    Returns
    -------
    Perturbed

    Raises
    ------
    ValueError
        If ``mode`` is unknown or the shapes disagree.
    """
    if mode not in MODES:
        raise ValueError(f"perturbation mode {mode!r} is not one of {', '.join(MODES)}")
    genes = np.asarray(genes, dtype=np.int64)
    expr = np.asarray(expr, dtype=np.int64)
    if genes.shape != expr.shape or genes.ndim != 2:
        raise ValueError(f"genes {genes.shape} and expr {expr.shape} must be the same (N, L) shape")
    targets = np.asarray(targets, dtype=np.int64)
    if targets.ndim == 1:
        targets = np.broadcast_to(targets, (len(genes), len(targets)))
    if targets.shape[0] != len(genes):
        raise ValueError(f"targets has {targets.shape[0]} rows for {len(genes)} sequences")
    origin = np.where(genes != PAD_ID, np.arange(genes.shape[1])[None, :], -1)
    g, e, o = genes, expr, origin
    order = range(targets.shape[1] - 1, -1, -1) if mode == "overexpress" else range(targets.shape[1])
    for k in order:
        g, e, o = _apply_one(g, e, o, targets[:, k], mode)
    changed = (g != genes).any(1) | (e != expr).any(1)
    return Perturbed(g, e, o, changed)


def null_targets(genes: np.ndarray, targets: np.ndarray, *, window: int, pool: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """One draw of rank-matched null genes for each row's perturbed genes.

    Parameters
    ----------
    genes : np.ndarray
        int (N, L) original sequences.
    targets : np.ndarray
        int (N, K) perturbed genes (``PAD_ID``: none).
    window : int
        A present target at position p is replaced by the gene at a position
        drawn uniformly from ``[p - window, p + window]`` within the real
        positions, other than the targets' (and the draws already made for the row).
    pool : np.ndarray
        int: gene tokens an absent target's null is drawn from (uniformly,
        among those absent from the row and not drawn yet).

    Returns
    -------
    np.ndarray
        int64 (N, K): the null genes (``PAD_ID`` where the target is ``PAD_ID``
        or no candidate exists).
    """
    n, length = genes.shape
    out = np.zeros(targets.shape, np.int64)
    n_real = (genes != PAD_ID).sum(1)
    for i in range(n):
        row = genes[i]
        taken = set(int(t) for t in targets[i] if t != PAD_ID)
        in_row = set(row[:n_real[i]].tolist())
        for k, t in enumerate(targets[i]):
            if t == PAD_ID:
                continue
            pos = np.flatnonzero(row == t)
            if len(pos):
                p = int(pos[0])
                cand = [q for q in range(max(0, p - window), min(int(n_real[i]), p + window + 1))
                        if int(row[q]) not in taken]
                if not cand:
                    continue
                choice = int(row[cand[int(rng.integers(len(cand)))]])
            else:
                choice = PAD_ID
                for _ in range(1000):  # rejection sampling: the pool is much larger than a sequence
                    c = int(pool[int(rng.integers(len(pool)))])
                    if c not in in_row and c not in taken:
                        choice = c
                        break
                if choice == PAD_ID:
                    continue
            out[i, k] = choice
            taken.add(choice)
    return out


def _pair_shifts(h0: torch.Tensor, h1: torch.Tensor, origin: np.ndarray, tokens1: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine shifts of the genes kept by a perturbation: (gene tokens (M,), shifts (M,)) on h's device.

    h0, h1: float (B, T, C) original and perturbed hidden states; origin int
    (B, L >= T); tokens1 int64 (B, T) the perturbed inputs' gene tokens.
    """
    T = h1.shape[1]
    o = torch.as_tensor(origin[:, :T], device=h1.device)
    valid = (o >= 0) & (o < T)
    rows, k = torch.nonzero(valid, as_tuple=True)
    a, b = h1[rows, k], h0[rows, o[rows, k]]
    return tokens1[rows, k], 1.0 - torch.nn.functional.cosine_similarity(a, b, dim=-1, eps=1e-12)


@dataclass
class PerturbationResult:
    """Effects of one perturbation (:func:`perturbation_effects`).

    Attributes
    ----------
    samples : pandas.DataFrame
        One row per perturbed sample: row (position in the input arrays),
        shift (cosine shift of the sample embedding), null_mean_shift,
        p_value (share of null draws shifting the sample at least as much).
    genes : pandas.DataFrame
        One row per gene token seen in the perturbed sequences (the perturbed
        genes excluded): token, mean_shift, null_mean_shift, excess_shift
        (mean_shift - null_mean_shift), n_samples, p_value, fdr (empirical),
        z_score, p_value_normal, fdr_normal (normal approximation), and the
        same four tests for a shift below the null's: p_value_less,
        fdr_less, p_value_normal_less, fdr_normal_less; sorted by p_value,
        then excess_shift, largest first.
    skipped : int
        Rows left alone (delete: the genes are in none of their positions).
    """

    samples: pd.DataFrame
    genes: pd.DataFrame
    skipped: int


def steadied_genes(genes: pd.DataFrame, top: int) -> pd.DataFrame:
    """The ``top`` genes shifted furthest below the null: a gene-shift table ordered by z_score, smallest first.

    Parameters
    ----------
    genes : pandas.DataFrame
        A gene-shift table (:class:`PerturbationResult` ``genes``, or a
        ``gene_shifts.parquet``) with z_score and excess_shift columns.
    top : int
        Rows kept.

    Returns
    -------
    pandas.DataFrame
        Its rows with a finite z_score, by z_score (that is, by
        p_value_normal_less), then excess_shift, smallest first.
    """
    t = genes[np.isfinite(genes["z_score"].to_numpy(dtype=float))]
    return t.sort_values(["z_score", "excess_shift"], kind="stable").head(top)


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (``scipy.stats.false_discovery_control``); NaN stays NaN."""
    from scipy.stats import false_discovery_control

    p = np.asarray(p, dtype=float)
    out = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        out[ok] = false_discovery_control(p[ok], method="bh")
    return out


@torch.no_grad()
def perturbation_effects(model: GPT | BertMLM, model_type: str, genes: np.ndarray, expr: np.ndarray,
                         targets: np.ndarray, mode: str, *, layer: int, n_draws: int, window: int,
                         pool: np.ndarray, seed: int, batch_size: int = 16, device: str = "cpu",
                         vocab_size: int | None = None) -> PerturbationResult:
    """Perturb genes in every sequence and measure the shifts against a rank-matched null.

    Parameters
    ----------
    model : GPT or BertMLM
        In eval mode on ``device``.
    genes, expr : np.ndarray
        int (N, L) the selected samples' sequences (token shards' layout).
    targets : np.ndarray
        int (K,) gene tokens perturbed together.
    mode : str
        ``overexpress`` or ``delete``.
    layer : int
        Hidden-state index (-2: second-to-last).
    n_draws : int
        Null draws (>= 1; the workflow asks for at least 100).
    window : int
        Rank window of the null (see :func:`null_targets`).
    pool : np.ndarray
        Gene tokens an absent gene's null is drawn from.
    seed : int
        Seeds the null draws (draw d uses ``default_rng([seed, d])``).

    Returns
    -------
    PerturbationResult

    Raises
    ------
    InputError
        If no sample can be perturbed (delete: none holds the genes).
    """
    genes = np.asarray(genes, dtype=np.int64)
    expr = np.asarray(expr, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64).ravel()
    if vocab_size is None:
        vocab_size = int(max(genes.max(initial=0), targets.max(initial=0), np.max(pool, initial=0))) + 1
    rows = np.arange(len(genes))
    if mode == "delete":
        rows = rows[np.isin(genes, targets).any(1)]
        if len(rows) == 0:
            raise InputError(f"delete: none of the {len(genes)} selected samples has gene token(s) "
                             f"{targets.tolist()} in its sequence")
    tgt = np.broadcast_to(targets, (len(rows), len(targets)))
    nulls = np.stack([null_targets(genes[rows], tgt, window=window, pool=pool,
                                   rng=np.random.default_rng([seed, d])) for d in range(n_draws)])  # (D, N, K)

    obs_sum = torch.zeros(vocab_size, dtype=torch.float64, device=device)
    obs_cnt = torch.zeros(vocab_size, dtype=torch.float64, device=device)
    null_sum = torch.zeros(n_draws, vocab_size, dtype=torch.float64, device=device)
    null_cnt = torch.zeros(n_draws, vocab_size, dtype=torch.float64, device=device)
    shift = np.zeros(len(rows))
    null_shift = np.zeros((n_draws, len(rows)))

    def run(g: np.ndarray, e: np.ndarray, t: np.ndarray, h0: torch.Tensor, e0: torch.Tensor
            ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        pert = perturb_sequences(g, e, t, mode)
        b = model_batch(model_type, pert.genes, pert.expr, device, eos_token=model.cfg.eos_token)
        h1 = hidden_states(model, b, layer=layer)
        s = 1.0 - torch.nn.functional.cosine_similarity(mean_over_real(h1, b.real), e0, dim=-1, eps=1e-12)
        tok, gs = _pair_shifts(h0, h1, pert.origin, b.positions)
        return tok, gs.double(), s.cpu().numpy()

    n_batches = -(-len(rows) // batch_size)
    for k, a in enumerate(range(0, len(rows), batch_size)):
        sl = slice(a, a + batch_size)
        g, e = genes[rows[sl]], expr[rows[sl]]
        b0 = model_batch(model_type, g, e, device, eos_token=model.cfg.eos_token)
        h0 = hidden_states(model, b0, layer=layer)
        e0 = mean_over_real(h0, b0.real)
        tok, gs, s = run(g, e, tgt[sl], h0, e0)
        obs_sum.index_add_(0, tok, gs)
        obs_cnt.index_add_(0, tok, torch.ones_like(gs))
        shift[sl] = s
        for d in range(n_draws):
            tok, gs, s = run(g, e, nulls[d, sl], h0, e0)
            null_sum[d].index_add_(0, tok, gs)
            null_cnt[d].index_add_(0, tok, torch.ones_like(gs))
            null_shift[d, sl] = s
        log.info("perturbation batch %d/%d: %d samples, %d null draws", k + 1, n_batches, len(g), n_draws)

    obs_cnt_np, obs_sum_np = obs_cnt.cpu().numpy(), obs_sum.cpu().numpy()
    seen = np.flatnonzero(obs_cnt_np > 0)
    seen = seen[~np.isin(seen, targets)]
    mean = obs_sum_np[seen] / obs_cnt_np[seen]
    ncnt = null_cnt.cpu().numpy()[:, seen]
    with np.errstate(invalid="ignore", divide="ignore"):
        nmean = np.where(ncnt > 0, null_sum.cpu().numpy()[:, seen] / ncnt, np.nan)  # (D, G)
    valid = np.isfinite(nmean)
    n_valid = valid.sum(0)
    p = (1 + ((nmean >= mean[None, :]) & valid).sum(0)) / (1 + n_valid)
    p_less = (1 + ((nmean <= mean[None, :]) & valid).sum(0)) / (1 + n_valid)
    with np.errstate(invalid="ignore", divide="ignore"):
        null_mean = np.where(valid, nmean, 0.0).sum(0) / n_valid  # NaN for a gene no draw saw
        null_var = np.where(valid, (nmean - null_mean[None, :]) ** 2, 0.0).sum(0) / (n_valid - 1)
        z = np.where((n_valid >= 2) & (null_var > 0), (mean - null_mean) / np.sqrt(null_var), np.nan)
    from scipy.stats import norm

    p_normal, p_normal_less = norm.sf(z), norm.cdf(z)
    gene_table = pd.DataFrame({
        "token": seen, "mean_shift": mean, "null_mean_shift": null_mean, "excess_shift": mean - null_mean,
        "n_samples": obs_cnt_np[seen].astype(np.int64), "p_value": p, "fdr": benjamini_hochberg(p),
        "z_score": z, "p_value_normal": p_normal, "fdr_normal": benjamini_hochberg(p_normal),
        "p_value_less": p_less, "fdr_less": benjamini_hochberg(p_less),
        "p_value_normal_less": p_normal_less, "fdr_normal_less": benjamini_hochberg(p_normal_less)})
    gene_table = gene_table.sort_values(["p_value", "excess_shift", "token"], ascending=[True, False, True],
                                        kind="stable", na_position="last")
    sample_table = pd.DataFrame({"row": rows, "shift": shift, "null_mean_shift": null_shift.mean(0),
                                 "p_value": (1 + (null_shift >= shift[None, :]).sum(0)) / (1 + n_draws)})
    return PerturbationResult(sample_table, gene_table.reset_index(drop=True), len(genes) - len(rows))
