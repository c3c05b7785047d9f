"""Human-mouse comparison: Procrustes alignment with CSLS refinement, ortholog ranks, best matches.

GeneRAIN-HM (bioRxiv 10.1101/2024.04.01.587517): mouse tokens carry an
``m_`` prefix; the two species' gene embeddings are aligned with a supervised
orthogonal map fitted on known one-to-one orthologs (refined with mutual
nearest neighbours under CSLS, Conneau et al. 2018), then each ortholog pair
is scored by the rank of the true ortholog among all genes of the other
species. The settings (mixed-species model, shared tokens, separate models)
differ only in where the embeddings come from (:mod:`generain.stages.species`).
The pseudo-species control splits human samples in halves and renames the
second half's genes to mouse orthologs: a faithful pipeline should then find
nearly every "ortholog" (published: 99.7% top-1).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
import pandas as pd
from scipy.linalg import orthogonal_procrustes

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

RANK_COLUMNS = ("human_ensembl_id", "mouse_ensembl_id", "split", "rank", "cosine")

SETTING_LABELS = {
    "mixed": "supervised (mixed-species model)",
    "shared": "shared + supervised",
    "separate": "separate models",
    "pseudo_species": "pseudo-species control",
    "expression_svd": "expression SVD per species (no model)",
}
"""The species.settings and their names in GeneRAIN-HM's ortholog-rank table."""


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


BLOCK = 512  # rows of a similarity block: n_other x BLOCK float64 at most at a time (2,048 took the demo's
# pseudo-species alignment to 1.2 GB; 512: 0.76 GB and no slower, identical results; BENCHMARKS.md "Memory")


def _blocks(a: np.ndarray, b: np.ndarray) -> Iterator[tuple[slice, np.ndarray]]:
    """Row blocks of ``a @ b.T``: (rows of ``a``, similarities float64 (block, n_b)); bounds memory."""
    for i in range(0, len(a), BLOCK):
        rows = slice(i, min(i + BLOCK, len(a)))
        yield rows, a[rows] @ b.T


def _fold_column_max(block: np.ndarray, start: int, best: torch.Tensor, where: torch.Tensor) -> None:
    """Fold a row block (rows ``start``...) into each column's running maximum and its row; in place.

    The first row wins a tie, within the block (``torch.max``) and across
    blocks (only a strictly higher value replaces), as one ``np.argmax`` over
    the whole column would.
    """
    import torch

    value, row = torch.from_numpy(block).max(dim=0)
    higher = value > best
    best[higher] = value[higher]
    where[higher] = row[higher] + start


def _topk_mean(a: np.ndarray, b: np.ndarray, k: int) -> np.ndarray:
    """Mean cosine of each row of ``a`` to its ``k`` nearest rows of ``b`` (both unit rows).

    ``torch.topk`` on each similarity block runs on PyTorch's thread pool
    (``np.partition`` is single-threaded and was most of the demo's
    pseudo-species alignment).
    """
    import torch

    k = min(k, len(b))
    out = np.empty(len(a))
    for rows, s in _blocks(a, b):
        out[rows] = torch.from_numpy(s).topk(k, dim=1, sorted=False).values.mean(dim=1).numpy()
    return out


def csls_mutual_neighbours(a: np.ndarray, b: np.ndarray, *, k: int = 10) -> np.ndarray:
    """Pairs of rows that are each other's nearest neighbour under CSLS.

    Cross-domain similarity local scaling (Conneau et al. 2018, "Word translation
    without parallel data", section 2.3): CSLS(x, y) = 2 cos(x, y) - r_b(x) - r_a(y),
    where r_b(x) is the mean cosine of x to its ``k`` nearest rows of ``b`` and
    r_a(y) that of y to its ``k`` nearest rows of ``a``. It penalises "hub"
    genes close to everything.

    Three passes over row blocks of the similarities: each row's
    neighbourhood in the other set (two passes), then one pass over blocks of
    ``a @ b.T`` that gives each ``a`` row its best ``b`` row (row argmax) and
    each ``b`` row its best ``a`` row (a running column maximum; the first row
    wins a tie, as an argmax over the whole column would). Scores are float64;
    the same pairs as four separate passes up to float rounding (a score within
    rounding of a tie may pick the other gene).

    Parameters
    ----------
    a : np.ndarray
        float, shape (n_a, dim), unit rows (e.g. human genes).
    b : np.ndarray
        float, shape (n_b, dim), unit rows (e.g. aligned mouse genes).
    k : int
        Neighbourhood size of the local scaling.

    Returns
    -------
    np.ndarray
        int64, shape (n_pairs, 2): (row of a, row of b) of each mutual nearest pair.

    Raises
    ------
    ValueError
        If ``k`` is below 1.
    """
    import torch

    if k < 1:
        raise ValueError(f"CSLS neighbourhood size k = {k}: it must be at least 1")
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)  # the blocks are updated in place
    r_a = _topk_mean(a, b, k)  # each a row's neighbourhood in b
    r_b = _topk_mean(b, a, k)
    ab = np.empty(len(a), dtype=np.int64)
    ba = torch.zeros(len(b), dtype=torch.int64)
    ba_best = torch.full((len(b),), -torch.inf, dtype=torch.float64)
    for rows, s in _blocks(a, b):
        s *= 2  # a row's (or column's) own term is constant along it and does not move its argmax
        ab[rows] = np.argmax(s - r_b[None, :], axis=1)
        s -= r_a[rows, None]
        _fold_column_max(s, rows.start, ba_best, ba)  # per b row, its best a row
    i = np.flatnonzero(ba.numpy()[ab] == np.arange(len(a)))
    return np.column_stack([i, ab[i]]).astype(np.int64)


def fit_alignment(
    human: np.ndarray,
    mouse: np.ndarray,
    pairs: np.ndarray,
    *,
    refine_rounds: int = 0,
    csls_k: int = 10,
) -> tuple[np.ndarray, list[int]]:
    """Orthogonal map of mouse onto human genes: Procrustes on known pairs, then CSLS refinement.

    Step 1 (supervised): R minimises ||M[pairs_m] R - H[pairs_h]||_F over
    orthogonal R (scipy.linalg.orthogonal_procrustes) on the training ortholog
    pairs. Each refinement round (Conneau et al. 2018, section 2.3, as in
    GeneRAIN-HM's alignment step) adds the mutual nearest neighbours under
    CSLS between all human genes and all aligned mouse genes to the training
    pairs (a gene already in a training pair keeps that pair) and refits R.

    Parameters
    ----------
    human : np.ndarray
        float, shape (n_human, dim), unit rows.
    mouse : np.ndarray
        float, shape (n_mouse, dim), unit rows.
    pairs : np.ndarray
        int, shape (n_train, 2): (human row, mouse row) training pairs.
    refine_rounds : int
        CSLS mutual-nearest-neighbour refinement rounds (0: Procrustes only).
    csls_k : int
        Neighbourhood size of CSLS.

    Returns
    -------
    (np.ndarray, list of int)
        R float64 (dim, dim), and the number of pairs each fit used (one entry
        per fit: the supervised one, then one per round).

    Raises
    ------
    ValueError
        With fewer than 2 training pairs.
    """
    if len(pairs) < 2:
        raise ValueError(f"{len(pairs)} training ortholog pairs: too few to fit an alignment")
    r, _ = orthogonal_procrustes(mouse[pairs[:, 1]], human[pairs[:, 0]])
    used = [len(pairs)]
    for _ in range(refine_rounds):
        mnn = csls_mutual_neighbours(human, _unit(mouse @ r), k=csls_k)
        new = mnn[~np.isin(mnn[:, 0], pairs[:, 0]) & ~np.isin(mnn[:, 1], pairs[:, 1])]
        d = np.concatenate([pairs, new])
        r, _ = orthogonal_procrustes(mouse[d[:, 1]], human[d[:, 0]])
        used.append(len(d))
    return r, used


def ortholog_ranks(
    human: np.ndarray,
    mouse: np.ndarray,
    pairs: np.ndarray,
    split: np.ndarray,
    *,
    refine_rounds: int = 0,
    csls_k: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Align mouse onto human (:func:`fit_alignment`); rank each pair's true ortholog.

    Rows are L2-normalised; the map is fitted on the ``"train"`` pairs. For each
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
    refine_rounds, csls_k
        See :func:`fit_alignment`.

    Returns
    -------
    (np.ndarray, np.ndarray)
        rank int64 (n_pairs,) and cosine float32 (n_pairs,) of the true pair.
    """
    h = _unit(human)
    m = _unit(mouse)
    r, _ = fit_alignment(h, m, pairs[split == "train"], refine_rounds=refine_rounds, csls_k=csls_k)
    return _ranks(h, _unit(m @ r), pairs)


def _ranks(h: np.ndarray, m_aligned: np.ndarray, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rank (ties against) and cosine of each pair's mouse gene among all aligned mouse genes (unit rows)."""
    rank = np.empty(len(pairs), dtype=np.int64)
    true = np.empty(len(pairs), dtype=np.float32)
    for rows, sims in _blocks(h[pairs[:, 0]], m_aligned):
        t = sims[np.arange(sims.shape[0]), pairs[rows, 1]]
        rank[rows] = (sims >= t[:, None]).sum(axis=1)
        true[rows] = t
    return rank, true


def best_matches(
    human: np.ndarray, mouse: np.ndarray, rotation: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each gene's most similar gene of the other species after alignment (cosine).

    Parameters
    ----------
    human : np.ndarray
        float, shape (n_human, dim).
    mouse : np.ndarray
        float, shape (n_mouse, dim).
    rotation : np.ndarray
        float, shape (dim, dim): mouse -> human map of :func:`fit_alignment`.

    Returns
    -------
    (np.ndarray, np.ndarray, np.ndarray, np.ndarray)
        For human genes: best mouse row int64 (n_human,) and its cosine
        float32; for mouse genes: best human row int64 (n_mouse,) and cosine.
    """
    import torch

    h = _unit(human)
    m = _unit(_unit(mouse) @ rotation)
    h_idx = np.empty(len(h), dtype=np.int64)
    h_cos = np.empty(len(h), dtype=np.float32)
    m_idx = torch.zeros(len(m), dtype=torch.int64)
    m_cos = torch.full((len(m),), -torch.inf, dtype=torch.float64)
    for rows, sims in _blocks(h, m):  # one pass: row maxima for human genes, running column maxima for mouse
        h_idx[rows] = np.argmax(sims, axis=1)
        h_cos[rows] = sims[np.arange(sims.shape[0]), h_idx[rows]]
        _fold_column_max(sims, rows.start, m_cos, m_idx)
    return h_idx, h_cos, m_idx.numpy(), m_cos.numpy().astype(np.float32)


def rank_summary(ranks: pd.DataFrame, split: str = "test") -> dict[str, float]:
    """top-1, top-10 (fractions) and mean reciprocal rank of one split's pairs ("all": every pair)."""
    sel = ranks if split == "all" else ranks.loc[ranks["split"] == split]
    r = sel["rank"].to_numpy()
    if r.size == 0:
        return {"pairs": 0, "top1": float("nan"), "top10": float("nan"), "mrr": float("nan")}
    return {"pairs": int(r.size), "top1": float((r <= 1).mean()), "top10": float((r <= 10).mean()),
            "mrr": float((1.0 / r).mean())}


def ortholog_pairs(human_ids: Sequence[str], mouse_ids: Sequence[str], orthologs: pd.DataFrame) -> pd.DataFrame:
    """The one-to-one ortholog pairs whose genes are both present, in a fixed order (by human id).

    Returns
    -------
    pandas.DataFrame
        human_ensembl_id, mouse_ensembl_id, human_row, mouse_row (int64 row
        indices into ``human_ids`` / ``mouse_ids``), sorted by human_ensembl_id.
    """
    hi = pd.Index(list(human_ids)).get_indexer(orthologs["human_ensembl_id"])
    mi = pd.Index(list(mouse_ids)).get_indexer(orthologs["mouse_ensembl_id"])
    ok = (hi >= 0) & (mi >= 0)
    out = pd.DataFrame({"human_ensembl_id": orthologs["human_ensembl_id"].to_numpy()[ok],
                        "mouse_ensembl_id": orthologs["mouse_ensembl_id"].to_numpy()[ok],
                        "human_row": hi[ok].astype(np.int64), "mouse_row": mi[ok].astype(np.int64)})
    return out.sort_values("human_ensembl_id", kind="stable").reset_index(drop=True)


def shared_token_pairs(pairs: pd.DataFrame, n_shared: int, *, train_fraction: float, seed: int) -> np.ndarray:
    """Which ortholog pairs share one token in the shared-token model: bool (n_pairs,).

    The first ``n_shared`` training pairs of :func:`ortholog_split`'s seeded
    order, so shared pairs are never held out and the held-out pairs are the
    same as in the other settings.

    Raises
    ------
    ValueError
        If ``n_shared`` exceeds the training pairs.
    """
    n = len(pairs)
    n_train = int(round(train_fraction * n))
    if n_shared > n_train:
        raise ValueError(f"species.shared_tokens = {n_shared} but only {n_train} of {n} ortholog pairs are "
                         "training pairs; lower it")
    order = np.random.default_rng(seed).permutation(n)
    shared = np.zeros(n, dtype=bool)
    shared[order[:n_shared]] = True
    return shared


def pseudo_species_vocab(genes: pd.DataFrame, orthologs: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """The pseudo-species control's vocabulary and each gene's two token ids.

    The species' genes keep their tokens; each gene with a one-to-one mouse
    ortholog gets a second token, its mouse gene's (``m_<mouse Ensembl id>``,
    species "mouse"), in the order of the genes.

    Parameters
    ----------
    genes : pandas.DataFrame
        ensembl_id, symbol, biotype of the species' genes, in token order.
    orthologs : pandas.DataFrame
        One-to-one pairs: human_ensembl_id, mouse_ensembl_id (mouse_symbol optional).

    Returns
    -------
    (pandas.DataFrame, np.ndarray, np.ndarray)
        The vocabulary (:func:`generain.tokenize.build_vocab`: the genes, then
        the renamed ones), and int64 (n_genes,) token ids of each gene as
        itself and as its mouse ortholog (-1 for genes without one).
    """
    from . import tokenize

    h2m = orthologs.set_index("human_ensembl_id")
    hum_genes = genes[["ensembl_id", "symbol", "biotype"]].reset_index(drop=True)
    has_orth = hum_genes["ensembl_id"].isin(h2m.index).to_numpy()
    with_orth = hum_genes.loc[has_orth, "ensembl_id"]
    mou_genes = pd.DataFrame({
        "ensembl_id": h2m.loc[with_orth, "mouse_ensembl_id"].to_numpy(),
        "symbol": h2m.loc[with_orth, "mouse_symbol"].to_numpy() if "mouse_symbol" in h2m else "",
        "biotype": hum_genes.loc[has_orth, "biotype"].to_numpy(),
    })
    vocab, (ids_h, ids_m) = tokenize.corpus_vocab([("human", hum_genes), ("mouse", mou_genes)])
    as_mouse = np.full(len(hum_genes), -1, dtype=np.int64)
    as_mouse[has_orth] = ids_m
    return vocab, ids_h, as_mouse


def pseudo_species_corpus(
    scores: np.ndarray,
    eligible: np.ndarray,
    log_values: np.ndarray,
    genes: pd.DataFrame,
    sample_ids: np.ndarray,
    orthologs: pd.DataFrame,
    *,
    length: int,
    seed: int,
) -> dict[str, Any]:
    """GeneRAIN-HM's pseudo-species control corpus from one species' samples.

    Samples are split in seeded halves (:func:`split_halves`). The first half
    keeps its tokens. In the second half every gene with a one-to-one mouse
    ortholog is renamed to the mouse gene (token ``m_<mouse Ensembl id>``,
    species "mouse") and its sample id gets the ``m_`` prefix; its genes
    without an ortholog are removed, as a mouse sample cannot contain them,
    and the sequence is filled from the next-ranked genes that have one. Both
    halves are ranked by their bins against the species' reference of all
    passing samples (the main corpus' bins), so the in-memory and the
    streaming path build the same corpus. Method: GeneRAIN-HM (bioRxiv
    10.1101/2024.04.01.587517), the pseudo-species control.

    Parameters
    ----------
    scores, eligible, log_values : np.ndarray
        shape (n_genes, n_samples): bins (or scores), the genes that may
        become tokens, and log10(CP10M+1), as for
        :func:`generain.tokenize.tokenize_samples`.
    genes : pandas.DataFrame
        ensembl_id, symbol, biotype of the rows.
    sample_ids : np.ndarray
        str, shape (n_samples,).
    orthologs : pandas.DataFrame
        One-to-one pairs: human_ensembl_id, mouse_ensembl_id (mouse_symbol optional).
    length : int
        Gene tokens per sample.
    seed : int
        Seed of the halves.

    Returns
    -------
    dict
        vocab (:func:`pseudo_species_vocab`), gene_tokens and expr_tokens
        (uint16/uint8 (n_samples, length), first half's samples first),
        n_tokens (int (n_samples,)), sample_ids (object (n_samples,)),
        species (object (n_samples,): "human" or "mouse"), and the counts
        human_samples, mouse_samples, human_genes, mouse_genes.
    """
    from . import tokenize

    second = split_halves(scores.shape[1], seed=seed)
    vocab, ids_h, ids_m = pseudo_species_vocab(genes, orthologs)
    has = ids_m >= 0
    first = tokenize.tokenize_samples(scores[:, ~second], eligible[:, ~second], log_values[:, ~second], ids_h,
                                      length=length)
    renamed = tokenize.tokenize_samples(scores[has][:, second], eligible[has][:, second],
                                        log_values[has][:, second], ids_m[has], length=length)
    dtype = tokenize.token_dtype(len(vocab) - 1)
    sample_ids = np.asarray(sample_ids)
    return {
        "vocab": vocab,
        "gene_tokens": np.concatenate([first[0], renamed[0]]).astype(dtype, copy=False),
        "expr_tokens": np.concatenate([first[1], renamed[1]]),
        "n_tokens": np.concatenate([first[2], renamed[2]]),
        "sample_ids": np.concatenate([sample_ids[~second], "m_" + sample_ids[second].astype(object)]),
        "species": np.array(["human"] * int((~second).sum()) + ["mouse"] * int(second.sum()), dtype=object),
        "human_samples": int((~second).sum()), "mouse_samples": int(second.sum()),
        "human_genes": int(len(genes)), "mouse_genes": int(has.sum()),
    }


def _matrix(t: pd.DataFrame) -> np.ndarray:
    return np.stack(t["embedding"].to_numpy()).astype(np.float64) if len(t) else np.zeros((0, 1))


@dataclass
class Alignment:
    """Both species of an embedding table, their ortholog pairs and the fitted mouse -> human map.

    human, mouse: gene tables (ensembl_id, species, embedding, ...) in row
    order; h, m: their unit-row matrices (n, dim); pairs: from
    :func:`ortholog_pairs`; split: train/test per pair; shared: bool per pair
    (shared-token pairs); rotation: (dim, dim) from :func:`fit_alignment`.
    """

    human: pd.DataFrame
    mouse: pd.DataFrame
    h: np.ndarray
    m: np.ndarray
    pairs: pd.DataFrame
    split: np.ndarray
    shared: np.ndarray
    rotation: np.ndarray


def align_embeddings(
    table: pd.DataFrame,
    orthologs: pd.DataFrame,
    *,
    train_fraction: float = 0.95,
    seed: int = 0,
    shuffle: bool = False,
    refine_rounds: int = 0,
    csls_k: int = 10,
    shared: pd.DataFrame | None = None,
) -> Alignment:
    """Split an embedding table by species, find its ortholog pairs and fit the alignment on the training ones.

    Parameters are those of :func:`ortholog_rank_table`.

    Raises
    ------
    ValueError
        If a shared pair falls among the held-out pairs (the shared pairs come
        from another ortholog set or seed), or fewer than 2 training pairs.
    """
    hum = table[table["species"] == "human"].reset_index(drop=True)
    mou = table[table["species"] == "mouse"].reset_index(drop=True)
    if shared is not None and len(shared):
        src = hum.set_index("ensembl_id").loc[shared["human_ensembl_id"]].reset_index()
        mou = pd.concat([mou, src.assign(ensembl_id=shared["mouse_ensembl_id"].to_numpy(), species="mouse",
                                         **({"symbol": ""} if "symbol" in src else {}))], ignore_index=True)
    H, M = _matrix(hum), _matrix(mou)
    if shuffle:
        rng = np.random.default_rng(seed + 1)
        H, M = H[rng.permutation(len(H))], M[rng.permutation(len(M))]
    pairs = ortholog_pairs(hum["ensembl_id"], mou["ensembl_id"], orthologs)
    split = ortholog_split(len(pairs), train_fraction=train_fraction, seed=seed)
    is_shared = np.zeros(len(pairs), dtype=bool)
    if shared is not None and len(shared):
        is_shared = pairs["mouse_ensembl_id"].isin(shared["mouse_ensembl_id"]).to_numpy()
        if (split[is_shared] == "test").any():
            raise ValueError("shared-token pairs fall among the held-out pairs: the corpus and the comparison "
                             "used different ortholog pairs or seeds")
    h, m = _unit(H), _unit(M)
    idx = pairs[["human_row", "mouse_row"]].to_numpy()
    r, _ = fit_alignment(h, m, idx[split == "train"], refine_rounds=refine_rounds, csls_k=csls_k)
    log.info("%d ortholog pairs in both species (%d train, %d test, %d shared tokens)%s", len(pairs),
             (split == "train").sum(), (split == "test").sum(), is_shared.sum(), " [shuffled null]" if shuffle else "")
    return Alignment(hum, mou, h, m, pairs, split, is_shared, r)


def rank_table(al: Alignment) -> pd.DataFrame:
    """Ortholog ranks of an :class:`Alignment`: columns of :data:`RANK_COLUMNS` plus shared_token."""
    rank, cos = _ranks(al.h, _unit(al.m @ al.rotation), al.pairs[["human_row", "mouse_row"]].to_numpy())
    return pd.DataFrame({"human_ensembl_id": al.pairs["human_ensembl_id"].to_numpy(),
                         "mouse_ensembl_id": al.pairs["mouse_ensembl_id"].to_numpy(),
                         "split": al.split, "rank": rank, "cosine": cos, "shared_token": al.shared})


def ortholog_rank_table(
    table: pd.DataFrame,
    orthologs: pd.DataFrame,
    *,
    train_fraction: float = 0.95,
    seed: int = 0,
    shuffle: bool = False,
    refine_rounds: int = 0,
    csls_k: int = 10,
    shared: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Ortholog ranks for an embedding table holding both species' genes.

    Parameters
    ----------
    table : pandas.DataFrame
        Embedding table (generain.embed): ensembl_id, species ("human"/"mouse"), embedding.
    orthologs : pandas.DataFrame
        human_ensembl_id, mouse_ensembl_id (one-to-one).
    shuffle : bool
        Null control: permute the rows of both species' embeddings (seeded)
        so vectors no longer belong to their genes.
    refine_rounds, csls_k
        Alignment refinement, see :func:`fit_alignment`.
    shared : pandas.DataFrame, optional
        human_ensembl_id, mouse_ensembl_id of pairs that shared one token
        (shared-token model): their mouse gene takes the human vector, they
        fit the alignment and are marked ``shared_token``; they are never
        held out.

    Returns
    -------
    pandas.DataFrame
        Columns of :data:`RANK_COLUMNS` plus shared_token (bool), one row per
        ortholog pair present in both species of the table, ordered by human id.

    Raises
    ------
    ValueError
        If a shared pair falls among the held-out pairs (the shared pairs come
        from another ortholog set or seed).
    """
    return rank_table(align_embeddings(table, orthologs, train_fraction=train_fraction, seed=seed, shuffle=shuffle,
                                       refine_rounds=refine_rounds, csls_k=csls_k, shared=shared))


def best_match_frame(al: Alignment) -> pd.DataFrame:
    """Per gene of either species, the most similar gene of the other species under ``al``'s map.

    Returns
    -------
    pandas.DataFrame
        species, ensembl_id, symbol, best_match_ensembl_id, best_match_symbol,
        cosine (float32), ortholog_ensembl_id ("" when the gene has no
        one-to-one ortholog in the table), is_ortholog (bool).
    """
    hb, hc, mb, mc = best_matches(al.h, al.m, al.rotation)
    h2m = dict(zip(al.pairs["human_ensembl_id"], al.pairs["mouse_ensembl_id"]))
    m2h = {v: k for k, v in h2m.items()}
    def sym(t: pd.DataFrame) -> np.ndarray:
        return t["symbol"].fillna("").to_numpy() if "symbol" in t else np.full(len(t), "", dtype=object)

    parts = []
    for sp, me, other, best, cos, orth in (("human", al.human, al.mouse, hb, hc, h2m),
                                           ("mouse", al.mouse, al.human, mb, mc, m2h)):
        ids = me["ensembl_id"].to_numpy()
        match = other["ensembl_id"].to_numpy()[best]
        o = np.array([orth.get(g, "") for g in ids], dtype=object)
        parts.append(pd.DataFrame({"species": sp, "ensembl_id": ids, "symbol": sym(me),
                                   "best_match_ensembl_id": match, "best_match_symbol": sym(other)[best],
                                   "cosine": cos, "ortholog_ensembl_id": o, "is_ortholog": match == o}))
    return pd.concat(parts, ignore_index=True)


def best_match_table(
    table: pd.DataFrame,
    orthologs: pd.DataFrame,
    *,
    train_fraction: float = 0.95,
    seed: int = 0,
    refine_rounds: int = 0,
    csls_k: int = 10,
) -> pd.DataFrame:
    """:func:`best_match_frame` after the alignment :func:`ortholog_rank_table` fits (same training pairs)."""
    return best_match_frame(align_embeddings(table, orthologs, train_fraction=train_fraction, seed=seed,
                                             refine_rounds=refine_rounds, csls_k=csls_k))
