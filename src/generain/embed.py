"""Gene-embedding export and import (word2vec text and parquet).

GeneRAIN's gene embedding is the model's input token-embedding matrix
(tied to the LM head for GPT), released as word2vec text ("GeneRAIN-vec").
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from .utils import InputError, atomic_path, write_parquet


def gene_embedding_table(vocab: pd.DataFrame, weights: np.ndarray) -> pd.DataFrame:
    """Attach embedding rows to the vocabulary's gene tokens.

    Parameters
    ----------
    vocab : pandas.DataFrame
        vocab.tsv: token_id, token, ensembl_id, symbol, biotype, species.
    weights : np.ndarray
        float, shape (vocab_size, dim), row i = token_id i.

    Returns
    -------
    pandas.DataFrame
        Gene tokens only (special tokens dropped): token, ensembl_id, symbol,
        biotype, species, embedding (float32 array of length dim).

    Raises
    ------
    ValueError
        If the vocabulary and the weight matrix disagree in size.
    """
    if len(vocab) != weights.shape[0]:
        raise ValueError(f"vocabulary has {len(vocab)} tokens but the embedding matrix {weights.shape[0]} rows")
    genes = vocab[vocab["biotype"] != "special"]
    emb = weights[genes["token_id"].to_numpy()].astype(np.float32)
    out = genes[["token", "ensembl_id", "symbol", "biotype", "species"]].reset_index(drop=True).copy()
    out["embedding"] = list(emb)
    return out


def write_embeddings(table: pd.DataFrame, *, w2v_path: str | os.PathLike[str], parquet_path: str | os.PathLike[str]) -> None:
    """Write an embedding table as word2vec text (header ``N D``) and parquet (list<float32>).

    An ``n_samples`` column (contextual embeddings: samples each gene's vector averages) is kept as int64.
    """
    matrix = embedding_matrix(table)
    write_word2vec(table["token"].tolist(), matrix, w2v_path)
    extra = {"n_samples": pa.array(table["n_samples"].to_numpy(), type=pa.int64())} if "n_samples" in table else {}
    arrow = pa.Table.from_pydict({
        **{c: table[c].astype(str).tolist() for c in ("token", "ensembl_id", "symbol", "biotype", "species")},
        **extra,
        "embedding": pa.array(list(matrix), type=pa.list_(pa.float32())),
    })
    write_parquet(arrow, parquet_path)


def split_by_biotype(table: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The human protein-coding and lncRNA rows of an embedding table.

    The sweep trains its classifiers on the protein-coding genes and applies
    them to the lncRNAs (GeneRAIN, Results "lncRNA function predictions").
    Rows of species "human" or "" (a single-species table) count as human.

    Parameters
    ----------
    table : pandas.DataFrame
        Embedding table (:func:`gene_embedding_table`), one row per gene.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        Protein-coding rows, then lncRNA rows, each in table order with a fresh index.
    """
    human = table[table["species"].isin(["human", ""])]
    return (human[human["biotype"] == "protein_coding"].reset_index(drop=True),
            human[human["biotype"] == "lncRNA"].reset_index(drop=True))


def embedding_matrix(table: pd.DataFrame) -> np.ndarray:
    """Stack the ``embedding`` column into float32 (n_genes, dim)."""
    return np.stack(table["embedding"].to_numpy()).astype(np.float32) if len(table) else np.zeros((0, 0), np.float32)


def write_word2vec(tokens: list[str], vectors: np.ndarray, path: str | os.PathLike[str]) -> None:
    """Write word2vec text format: ``N D`` then ``token v1 ... vD`` per line (``%.6g``)."""
    if len(tokens) != vectors.shape[0]:
        raise ValueError("one token per vector row is required")
    if any((" " in t) or not t for t in tokens):
        raise ValueError("word2vec tokens must be non-empty and contain no spaces")
    with atomic_path(path) as tmp, open(tmp, "w") as fh:
        fh.write(f"{vectors.shape[0]} {vectors.shape[1]}\n")
        for t, v in zip(tokens, vectors):
            fh.write(t + " " + " ".join(f"{x:.6g}" for x in v) + "\n")


def read_word2vec(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
    """Read word2vec text format.

    Returns
    -------
    (list of str, np.ndarray)
        tokens and float32 vectors, shape (N, D).

    Raises
    ------
    InputError
        Missing file, bad header, or a line with the wrong number of values.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: embedding file not found")
    with open(path) as fh:
        header = fh.readline().split()
        if len(header) != 2 or not all(h.isdigit() for h in header):
            raise InputError(f"{path}: first line must be 'N D' (word2vec text format), got {' '.join(header)!r}")
        n, d = map(int, header)
        tokens, rows = [], []
        for lineno, line in enumerate(fh, start=2):
            parts = line.rstrip().split(" ")
            if len(parts) != d + 1:
                raise InputError(f"{path}: line {lineno} has {len(parts) - 1} values, expected {d}")
            tokens.append(parts[0])
            rows.append(np.asarray(parts[1:], dtype=np.float32))
    if len(tokens) != n:
        raise InputError(f"{path}: header says {n} vectors, file has {len(tokens)}")
    return tokens, (np.stack(rows) if rows else np.zeros((0, d), np.float32))


def read_embeddings(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read an embedding parquet written by :func:`write_embeddings`."""
    df = pd.read_parquet(path)
    df["embedding"] = [np.asarray(v, dtype=np.float32) for v in df["embedding"]]
    return df
