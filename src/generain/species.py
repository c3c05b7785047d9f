"""Human-mouse comparison: pseudo-species control, Procrustes alignment, ortholog ranks.

GeneRAIN-HM (bioRxiv 10.1101/2024.04.01.587517): mouse tokens carry an
``m_`` prefix; the two species' gene embeddings are aligned with a supervised
orthogonal map fitted on known one-to-one orthologs, then each held-out
ortholog pair is scored by the rank of the true ortholog among all genes of the
other species. The pseudo-species control splits human samples in halves and
renames the second half's genes to mouse orthologs: a faithful pipeline should
then find nearly every "ortholog" (published: 99.7% top-1).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.linalg import orthogonal_procrustes

log = logging.getLogger(__name__)

RANK_COLUMNS = ("human_ensembl_id", "mouse_ensembl_id", "split", "rank", "cosine")


def split_halves(n_samples: int, *, seed: int) -> np.ndarray:
    """Seeded split of samples into two halves for the pseudo-species control.

    Returns
    -------
    np.ndarray
        bool (n_samples,), True for the half renamed to "mouse".
    """
    rng = np.random.default_rng(seed)
    second = np.zeros(n_samples, dtype=bool)
    second[rng.permutation(n_samples)[: n_samples // 2]] = True
    return second


def ortholog_split(n_pairs: int, *, train_fraction: float = 0.95, seed: int = 0) -> np.ndarray:
    """Deterministic train/test split of ortholog pairs: the first ``train_fraction`` of a seeded order.

    Returns
    -------
    np.ndarray
        str (n_pairs,), ``"train"`` or ``"test"``.
    """
    order = np.random.default_rng(seed).permutation(n_pairs)
    split = np.full(n_pairs, "test", dtype=object)
    split[order[: int(round(train_fraction * n_pairs))]] = "train"
    return split


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


def ortholog_ranks(
    human: np.ndarray,
    mouse: np.ndarray,
    pairs: np.ndarray,
    split: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Align mouse onto human with orthogonal Procrustes; rank each pair's true ortholog.

    Rows are L2-normalised; the orthogonal map R minimises
    ||M[train] R - H[train]||_F (scipy.linalg.orthogonal_procrustes). For each
    pair (h, m), all mouse genes are scored by cosine to human gene h after
    alignment; the rank of m is the number of mouse genes scored at least as
    high as m (m included), so ties count against the pair and a degenerate
    embedding (all cosines equal) ranks last, not first.

    Parameters
    ----------
    human : np.ndarray
        float, shape (n_human, dim).
    mouse : np.ndarray
        float, shape (n_mouse, dim).
    pairs : np.ndarray
        int, shape (n_pairs, 2): row indices (human, mouse) of one-to-one orthologs.
    split : np.ndarray
        str, shape (n_pairs,): "train" pairs fit the map.

    Returns
    -------
    (np.ndarray, np.ndarray)
        rank int64 (n_pairs,) and cosine float32 (n_pairs,) of the true pair.
    """
    h = _unit(human)
    m = _unit(mouse)
    train = split == "train"
    if train.sum() < 2:
        raise ValueError(f"{int(train.sum())} training ortholog pairs: too few to fit an alignment")
    r, _ = orthogonal_procrustes(m[pairs[train, 1]], h[pairs[train, 0]])
    m_aligned = _unit(m @ r)
    sims = h[pairs[:, 0]] @ m_aligned.T  # (n_pairs, n_mouse)
    true = sims[np.arange(len(pairs)), pairs[:, 1]]
    rank = (sims >= true[:, None]).sum(axis=1)
    return rank.astype(np.int64), true.astype(np.float32)


def rank_summary(ranks: pd.DataFrame, split: str = "test") -> dict[str, float]:
    """top-1, top-10 (fractions) and mean reciprocal rank of one split's pairs."""
    r = ranks.loc[ranks["split"] == split, "rank"].to_numpy()
    if r.size == 0:
        return {"pairs": 0, "top1": float("nan"), "top10": float("nan"), "mrr": float("nan")}
    return {"pairs": int(r.size), "top1": float((r <= 1).mean()), "top10": float((r <= 10).mean()),
            "mrr": float((1.0 / r).mean())}


def compare_embeddings(
    table: pd.DataFrame,
    orthologs: pd.DataFrame,
    *,
    train_fraction: float = 0.95,
    seed: int = 0,
    shuffle: bool = False,
) -> pd.DataFrame:
    """Ortholog ranks for a mixed-species embedding table.

    Parameters
    ----------
    table : pandas.DataFrame
        Embedding table (generain.embed): ensembl_id, species ("human"/"mouse"), embedding.
    orthologs : pandas.DataFrame
        human_ensembl_id, mouse_ensembl_id (one-to-one).
    shuffle : bool
        Null control: permute the rows of both species' embeddings (seeded)
        so vectors no longer belong to their genes.

    Returns
    -------
    pandas.DataFrame
        Columns of :data:`RANK_COLUMNS`, one row per ortholog pair present in
        both species of the table.
    """
    hum = table[table["species"] == "human"].reset_index(drop=True)
    mou = table[table["species"] == "mouse"].reset_index(drop=True)
    H = np.stack(hum["embedding"].to_numpy()) if len(hum) else np.zeros((0, 1))
    M = np.stack(mou["embedding"].to_numpy()) if len(mou) else np.zeros((0, 1))
    if shuffle:
        rng = np.random.default_rng(seed + 1)
        H, M = H[rng.permutation(len(H))], M[rng.permutation(len(M))]
    hi = pd.Index(hum["ensembl_id"]).get_indexer(orthologs["human_ensembl_id"])
    mi = pd.Index(mou["ensembl_id"]).get_indexer(orthologs["mouse_ensembl_id"])
    ok = (hi >= 0) & (mi >= 0)
    orth = orthologs.loc[ok, ["human_ensembl_id", "mouse_ensembl_id"]].sort_values("human_ensembl_id")
    pairs = np.column_stack([pd.Index(hum["ensembl_id"]).get_indexer(orth["human_ensembl_id"]),
                             pd.Index(mou["ensembl_id"]).get_indexer(orth["mouse_ensembl_id"])])
    split = ortholog_split(len(pairs), train_fraction=train_fraction, seed=seed)
    rank, cos = ortholog_ranks(H, M, pairs, split)
    log.info("%d ortholog pairs in both species (%d train, %d test)%s", len(pairs), (split == "train").sum(),
             (split == "test").sum(), " [shuffled null]" if shuffle else "")
    return pd.DataFrame({"human_ensembl_id": orth["human_ensembl_id"].to_numpy(),
                         "mouse_ensembl_id": orth["mouse_ensembl_id"].to_numpy(),
                         "split": split, "rank": rank, "cosine": cos})
