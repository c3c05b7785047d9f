"""Tokenization: vocabulary, per-sample gene-token sequences, token shards.

GeneRAIN (Su et al. 2024, Methods "Model input"): each sample becomes the
sequence of its top ``length`` genes by normalized value (Binning-By-Gene bin),
sorted descending, as gene tokens (GPT, BERT_Pred_Genes). BERT_Pred_Expr
instead uses 100 within-sample quantile bins of those genes as tokens and the
gene as the position. Three special tokens come first in the vocabulary.

Shards are plain ``.npy`` arrays, memory-mappable with ``np.load(mmap_mode="r")``:
``genes_NNNNN.npy`` (uint16, or uint32 when the vocabulary exceeds 65,535 ids)
and ``expr_NNNNN.npy`` (uint8), both shape (n_samples_in_shard, length),
padded with 0 (``<pad>``; 0 is also the masked expression bin).
``index.parquet`` maps each sample to its shard, row, token count and split.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from . import MOUSE_PREFIX, N_EXPR_BINS, SPECIAL_TOKENS
from .utils import atomic_path, write_parquet

log = logging.getLogger(__name__)

VOCAB_COLUMNS = ("token_id", "token", "ensembl_id", "symbol", "biotype", "species")


def build_vocab(genes: pd.DataFrame) -> pd.DataFrame:
    """Vocabulary: the special tokens, then one token per gene.

    Parameters
    ----------
    genes : pandas.DataFrame
        Columns ensembl_id, symbol, biotype, species ("human" or "mouse"), one
        row per gene in the order the tokens should get ids.

    Returns
    -------
    pandas.DataFrame
        Columns of :data:`VOCAB_COLUMNS`. token is the Ensembl id, prefixed
        with ``m_`` for mouse genes; token_id 0..2 are ``<pad> <mask> <cls>``.

    Raises
    ------
    ValueError
        If a token repeats.
    """
    special = pd.DataFrame({
        "token_id": np.arange(len(SPECIAL_TOKENS)),
        "token": list(SPECIAL_TOKENS),
        "ensembl_id": "", "symbol": "", "biotype": "special", "species": "",
    })
    tokens = np.where(genes["species"].to_numpy() == "mouse",
                      MOUSE_PREFIX + genes["ensembl_id"].astype(str), genes["ensembl_id"].astype(str))
    body = pd.DataFrame({
        "token_id": np.arange(len(genes)) + len(SPECIAL_TOKENS),
        "token": tokens,
        "ensembl_id": genes["ensembl_id"].to_numpy(),
        "symbol": genes["symbol"].fillna("").to_numpy(),
        "biotype": genes["biotype"].to_numpy(),
        "species": genes["species"].to_numpy(),
    })
    vocab = pd.concat([special, body], ignore_index=True)
    if vocab["token"].duplicated().any():
        raise ValueError(f"duplicated tokens in vocabulary: {vocab.loc[vocab['token'].duplicated(), 'token'].head(3).tolist()}")
    return vocab[list(VOCAB_COLUMNS)]


def corpus_vocab(
    genes: Sequence[tuple[str, pd.DataFrame]],
    *,
    shared: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, list[np.ndarray]]:
    """The vocabulary of a one- or two-species corpus, and each species' gene -> token id map.

    Tokens follow the species in the order given (GeneRAIN-HM: human, then
    mouse with the ``m_`` prefix). In GeneRAIN-HM's shared-token setting the
    mouse gene of each ``shared`` pair has no token of its own: it takes its
    human ortholog's token.

    Parameters
    ----------
    genes : sequence of (str, pandas.DataFrame)
        Per species ("human" or "mouse"): its genes (ensembl_id, symbol,
        biotype) in the order they get tokens.
    shared : pandas.DataFrame, optional
        human_ensembl_id, mouse_ensembl_id of the pairs sharing one token
        (:func:`generain.species.shared_token_pairs`).

    Returns
    -------
    (pandas.DataFrame, list of np.ndarray)
        The vocabulary (:func:`build_vocab`), and per species int64
        (n_genes,) token ids of its genes, in its genes' order.

    Raises
    ------
    KeyError
        If a shared pair's human gene is not among the human genes.
    """
    shared = shared if shared is not None else pd.DataFrame(columns=["human_ensembl_id", "mouse_ensembl_id"])
    shared_mouse = set(shared["mouse_ensembl_id"])
    own = [g.assign(species=sp) if sp != "mouse" else g[~g["ensembl_id"].isin(shared_mouse)].assign(species=sp)
           for sp, g in genes]
    vocab = build_vocab(pd.concat(own, ignore_index=True))
    tok = dict(zip(zip(vocab["species"], vocab["ensembl_id"]), vocab["token_id"]))
    m2h = dict(zip(shared["mouse_ensembl_id"], shared["human_ensembl_id"]))
    ids = [np.array([tok[(sp, g)] if (sp, g) in tok else tok[("human", m2h[g])] for g in gs["ensembl_id"]],
                    dtype=np.int64) for sp, gs in genes]
    return vocab, ids


def token_remap(vocab: pd.DataFrame, genes: Sequence[tuple[str, Sequence[str], np.ndarray]]) -> np.ndarray:
    """Old token id -> new token id, to re-number a corpus's gene tokens in another vocabulary.

    Parameters
    ----------
    vocab : pandas.DataFrame
        The corpus's vocabulary (:func:`build_vocab`).
    genes : sequence of (str, sequence of str, np.ndarray)
        Per species: Ensembl ids of its genes in ``vocab`` and their int64 ids in the new vocabulary.

    Returns
    -------
    np.ndarray
        int64 (max token id + 1,): special tokens keep their ids; tokens of genes not listed map to 0
        (padding; they must not occur in the sequences re-numbered).
    """
    lookup = np.zeros(int(vocab["token_id"].max()) + 1, dtype=np.int64)
    special = vocab["biotype"] == "special"
    lookup[vocab.loc[special, "token_id"]] = vocab.loc[special, "token_id"]
    for sp, ensembl_ids, new_ids in genes:
        v = vocab[vocab["species"] == sp]
        lookup[pd.Series(v["token_id"].to_numpy(), index=v["ensembl_id"]).loc[list(ensembl_ids)].to_numpy()] = new_ids
    return lookup


def read_vocab(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read ``vocab.tsv`` written by :func:`write_vocab`."""
    return pd.read_csv(path, sep="\t", dtype={"token": str, "ensembl_id": str, "symbol": str,
                                              "biotype": str, "species": str}, keep_default_na=False)


def write_vocab(vocab: pd.DataFrame, path: str | os.PathLike[str]) -> None:
    """Write the vocabulary as TSV, atomically."""
    with atomic_path(path) as tmp:
        vocab.to_csv(tmp, sep="\t", index=False)


def tokenize_samples(
    scores: np.ndarray,
    eligible: np.ndarray,
    log_values: np.ndarray,
    token_ids: np.ndarray,
    *,
    length: int = 2048,
    block_samples: int = 256,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Turn each sample into its top-``length`` gene tokens and expression bins.

    Parameters
    ----------
    scores : np.ndarray
        shape (n_genes, n_samples): the normalized values used to rank genes
        (Binning-By-Gene bins, |z|, or rank-value scores).
    eligible : np.ndarray
        bool, shape (n_genes, n_samples): genes that may become tokens.
    log_values : np.ndarray
        float, shape (n_genes, n_samples): log10(CP10M+1), for expression bins.
    token_ids : np.ndarray
        int, shape (n_genes,): each gene's token id (distinct).
    length : int
        Sequence length (GeneRAIN: 2,048).
    block_samples : int
        Samples sorted at once; memory is about ``block_samples * n_genes * 10``
        bytes. Does not change the result.

    Returns
    -------
    (gene_tokens, expr_tokens, n_tokens)
        gene_tokens uint16/uint32 (n_samples, length): token ids by score
        descending, ties by ascending token id, padded with 0;
        expr_tokens uint8 (n_samples, length): within-sample quantile bins
        1..100 of the selected genes' log10(CP10M+1) (rank ascending, ties by
        sequence position: ``bin = rank * 100 // n + 1``), 0 at padding;
        n_tokens int32 (n_samples,).

    Notes
    -----
    Genes are put in token-id order once, then each block of samples is
    sorted by a stable sort on the score, descending, which keeps ties in
    token-id order. Integer scores below 65,535 (Binning-By-Gene bins) are
    selected by a counting sort (:func:`generain.kernels.top_tokens`, numba;
    the same order as the stable sort without sorting every gene: about
    2x faster on one ARCHS4 shard's 36,000 genes, BENCHMARKS.md).
    """
    n_genes, n_samples = scores.shape
    token_ids = np.asarray(token_ids, dtype=np.int64)
    dtype = token_dtype(int(token_ids.max(initial=0)))
    gene_tokens = np.zeros((n_samples, length), dtype=dtype)
    expr_tokens = np.zeros((n_samples, length), dtype=np.uint8)
    n_tokens = np.zeros(n_samples, dtype=np.int32)
    if n_genes == 0 or n_samples == 0:
        return gene_tokens, expr_tokens, n_tokens
    by_id = np.argsort(token_ids, kind="stable")
    if np.array_equal(by_id, np.arange(n_genes)):
        by_id = slice(None)  # already in token-id order (the usual case): views, no copies
    ids = token_ids[by_id]
    small_ints = scores.dtype.kind in "ui" and 0 <= scores.min() and scores.max() < 65535
    width = min(length, n_genes)
    cols = np.arange(width)
    if small_ints:
        from .kernels import top_tokens

        n_keys = int(scores.max()) + 1
        order = np.arange(n_genes, dtype=np.int64) if isinstance(by_id, slice) else by_id.astype(np.int64)
        for a in range(0, n_samples, block_samples):
            b = min(a + block_samples, n_samples)
            sel = np.zeros((b - a, width), np.int64)
            vals = np.full((b - a, width), np.inf)  # padding ranks after every selected gene
            n = np.zeros(b - a, np.int64)
            top_tokens(scores, eligible, log_values, order, a, b, width, n_keys, sel, vals, n)
            _write_block(gene_tokens, expr_tokens, n_tokens, a, b, ids, sel, vals, n, cols)
        return gene_tokens, expr_tokens, n_tokens
    for a in range(0, n_samples, block_samples):
        b = min(a + block_samples, n_samples)
        ok = eligible[by_id, a:b].T  # (block, n_genes), genes in token-id order
        key = -scores[by_id, a:b].T.astype(np.float64)
        key[~ok] = np.inf
        sel = np.argsort(key, axis=1, kind="stable")[:, :width]  # (block, width)
        n = np.minimum(ok.sum(axis=1), width)
        vals = np.take_along_axis(log_values[by_id, a:b].T.astype(np.float64), sel, axis=1)
        vals[cols[None, :] >= n[:, None]] = np.inf  # padding ranks after every selected gene
        _write_block(gene_tokens, expr_tokens, n_tokens, a, b, ids, sel, vals, n, cols)
    return gene_tokens, expr_tokens, n_tokens


def _write_block(gene_tokens: np.ndarray, expr_tokens: np.ndarray, n_tokens: np.ndarray, a: int, b: int,
                 ids: np.ndarray, sel: np.ndarray, vals: np.ndarray, n: np.ndarray, cols: np.ndarray) -> None:
    """Write samples [a, b) of :func:`tokenize_samples`' outputs: sel (block, width) positions of the selected
    genes in token-id order (``ids``), vals their float64 log values (inf at padding), n genes per sample."""
    valid = cols[None, :] < n[:, None]
    gene_tokens[a:b, :cols.size] = np.where(valid, ids[sel], 0)
    rank = np.empty(sel.shape, dtype=np.int64)
    np.put_along_axis(rank, np.argsort(vals, axis=1, kind="stable"), cols[None, :], axis=1)
    expr = rank * N_EXPR_BINS // np.maximum(n, 1)[:, None] + 1
    expr_tokens[a:b, :cols.size] = np.where(valid, expr, 0).astype(np.uint8)
    n_tokens[a:b] = n


def token_dtype(max_token_id: int) -> type:
    """The dtype of gene-token arrays: uint16 when every id fits (vocabularies up to 65,536 tokens), else uint32."""
    return np.uint16 if max_token_id <= np.iinfo(np.uint16).max else np.uint32


def split_samples(n_samples: int, *, validation_fraction: float, seed: int) -> np.ndarray:
    """Seeded train/validation split.

    Returns
    -------
    np.ndarray
        str (n_samples,), ``"train"`` or ``"validation"``; at least one sample
        in each when n_samples >= 2.
    """
    rng = np.random.default_rng(seed)
    n_val = int(round(validation_fraction * n_samples))
    if n_samples >= 2:
        n_val = min(max(n_val, 1), n_samples - 1)
    split = np.full(n_samples, "train", dtype=object)
    split[rng.permutation(n_samples)[:n_val]] = "validation"
    return split


def write_token_shards(
    out_dir: str | os.PathLike[str],
    index_path: str | os.PathLike[str],
    *,
    sample_ids: np.ndarray,
    gene_tokens: np.ndarray,
    expr_tokens: np.ndarray,
    n_tokens: np.ndarray,
    split: np.ndarray,
    shard_size: int = 10_000,
    extra: dict[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Write token shards and their index atomically.

    Returns
    -------
    pandas.DataFrame
        The index: sample_id, split, shard, row, n_tokens (+ ``extra`` columns).
    """
    n = len(sample_ids)
    shard = np.arange(n) // shard_size
    row = np.arange(n) % shard_size
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        for k in range(int(shard.max(initial=-1)) + 1):
            sl = slice(k * shard_size, min((k + 1) * shard_size, n))
            np.save(tmp / f"genes_{k:05d}.npy", gene_tokens[sl])
            np.save(tmp / f"expr_{k:05d}.npy", expr_tokens[sl])
    index = pd.DataFrame({"sample_id": np.asarray(sample_ids, dtype=object), "split": split,
                          "shard": shard.astype(np.int32), "row": row.astype(np.int32),
                          "n_tokens": n_tokens.astype(np.int32), **(extra or {})})
    write_parquet(pa.Table.from_pandas(index, preserve_index=False), index_path)
    return index


class TokenShards:
    """Memory-mapped access to token shards: ``shards[i] -> (genes, expr)`` for index row i."""

    def __init__(self, shard_dir: str | os.PathLike[str], index: pd.DataFrame) -> None:
        self.dir = Path(shard_dir)
        self.index = index.reset_index(drop=True)
        self._genes: dict[int, np.ndarray] = {}
        self._expr: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.index)

    def _shard(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k not in self._genes:
            self._genes[k] = np.load(self.dir / f"genes_{k:05d}.npy", mmap_mode="r")
            self._expr[k] = np.load(self.dir / f"expr_{k:05d}.npy", mmap_mode="r")
        return self._genes[k], self._expr[k]

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        rec = self.index.iloc[i]
        g, e = self._shard(int(rec["shard"]))
        r = int(rec["row"])
        return np.asarray(g[r], dtype=np.int64), np.asarray(e[r], dtype=np.int64)
