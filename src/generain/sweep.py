"""Gene-property classifier sweep and lncRNA transfer predictions.

GeneRAIN (Su et al. 2024, Results "Gene embeddings encode gene properties"):
for each property (gene set), an L2-regularised logistic regression on the
gene embeddings separates member from non-member protein-coding genes; its
cross-validated ROC AUC measures how much the embedding knows. Classifiers
trained on all protein-coding genes are then applied to lncRNAs.

This module is the plain, per-property scikit-learn form; it is the reference
that a batched implementation must agree with.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from joblib import Parallel, delayed, parallel_config
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

log = logging.getLogger(__name__)

CATALOGUE_COLUMNS = ("source", "term_id", "term_name", "n_genes", "n_positive", "kept", "reason")
AUC_COLUMNS = ("source", "term_id", "term_name", "n_positive", "auc", "average_precision")


def property_catalogue(
    gene_sets: pd.DataFrame,
    protein_coding: np.ndarray,
    *,
    min_genes: int = 10,
    max_genes: int = 500,
    max_properties: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Decide which gene sets become properties of the sweep.

    Parameters
    ----------
    gene_sets : pandas.DataFrame
        Long table: source, term_id, term_name, ensembl_id.
    protein_coding : np.ndarray
        str, Ensembl ids of the protein-coding genes in the vocabulary.
    min_genes, max_genes : int
        Inclusive bounds on n_positive, the set's protein-coding genes in the vocabulary.
    max_properties : int, optional
        Keep at most this many of the eligible sets, drawn uniformly with ``seed``.

    Returns
    -------
    pandas.DataFrame
        One row per (source, term_id): n_genes (in the table), n_positive,
        kept (bool), reason (None if kept; else why not), sorted by source, term_id.
    """
    pc = pd.Index(np.asarray(protein_coding, dtype=object))
    gs = gene_sets.assign(in_vocab=gene_sets["ensembl_id"].isin(pc))
    cat = (gs.groupby(["source", "term_id"], sort=True)
             .agg(term_name=("term_name", "first"), n_genes=("ensembl_id", "nunique"), n_positive=("in_vocab", "sum"))
             .reset_index())
    cat["n_positive"] = cat["n_positive"].astype(np.int64)
    reason = np.where(cat["n_positive"] < min_genes, f"fewer than {min_genes} protein-coding genes in vocabulary",
                      np.where(cat["n_positive"] > max_genes, f"more than {max_genes} protein-coding genes in vocabulary", ""))
    eligible = reason == ""
    if max_properties is not None and eligible.sum() > max_properties:
        rng = np.random.default_rng(seed)
        idx = np.flatnonzero(eligible)
        drop = np.setdiff1d(idx, rng.choice(idx, size=max_properties, replace=False))
        reason = reason.astype(object)
        reason[drop] = f"not drawn in the cap of {max_properties} properties (seed {seed})"
    cat["kept"] = reason == ""
    cat["reason"] = pd.Series(np.where(cat["kept"], None, reason), dtype=object)
    return cat[list(CATALOGUE_COLUMNS)]


def _classifier(c: float, seed: int) -> object:
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, solver="newton-cholesky", max_iter=200))


def _cv_one(x: np.ndarray, y: np.ndarray, *, folds: int, c: float, seed: int) -> tuple[float, float]:
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    aucs, aps = [], []
    for tr, te in skf.split(x, y):
        clf = _classifier(c, seed).fit(x[tr], y[tr])
        p = clf.predict_proba(x[te])[:, 1]
        aucs.append(roc_auc_score(y[te], p))
        aps.append(average_precision_score(y[te], p))
    return float(np.mean(aucs)), float(np.mean(aps))


def _memberships(gene_sets: pd.DataFrame, catalogue: pd.DataFrame, genes: np.ndarray) -> list[np.ndarray]:
    kept = catalogue[catalogue["kept"]]
    pos = pd.Index(np.asarray(genes, dtype=object))
    grouped = gene_sets.groupby(["source", "term_id"])["ensembl_id"]
    out = []
    for src, term in zip(kept["source"], kept["term_id"]):
        y = np.zeros(len(pos), dtype=np.int8)
        idx = pos.get_indexer(grouped.get_group((src, term)).unique())
        y[idx[idx >= 0]] = 1
        out.append(y)
    return out


def run_sweep(
    embedding: np.ndarray,
    genes: np.ndarray,
    gene_sets: pd.DataFrame,
    catalogue: pd.DataFrame,
    *,
    folds: int = 5,
    c: float = 1.0,
    seed: int = 0,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Cross-validated AUC of one logistic regression per kept property.

    Parameters
    ----------
    embedding : np.ndarray
        float32, shape (n_genes, dim): protein-coding gene embeddings.
    genes : np.ndarray
        str, shape (n_genes,), their Ensembl ids.
    gene_sets, catalogue : pandas.DataFrame
        From :func:`generain.annotation.read_gene_sets` and :func:`property_catalogue`.
    folds : int
        Stratified K-fold splits (shuffled with ``seed``).
    c : float
        Inverse L2 regularisation strength (scikit-learn's C) on standardised embeddings.

    Returns
    -------
    pandas.DataFrame
        Columns of :data:`AUC_COLUMNS`: mean over folds of ROC AUC and average precision.
    """
    kept = catalogue[catalogue["kept"]].reset_index(drop=True)
    ys = _memberships(gene_sets, catalogue, genes)
    x = np.asarray(embedding, dtype=np.float64)
    # one BLAS thread per worker: n_jobs workers x OMP_NUM_THREADS threads would oversubscribe the cores
    with parallel_config(backend="loky", inner_max_num_threads=1):
        results = Parallel(n_jobs=n_jobs)(
            delayed(_cv_one)(x, y, folds=folds, c=c, seed=seed)
            for y in tqdm(ys, desc="properties", unit="property", mininterval=5)
        )
    out = kept[["source", "term_id", "term_name", "n_positive"]].copy()
    out["auc"] = [r[0] for r in results]
    out["average_precision"] = [r[1] for r in results]
    return out


def predict_lncrna(
    pc_embedding: np.ndarray,
    pc_genes: np.ndarray,
    lnc_embedding: np.ndarray,
    lnc_genes: np.ndarray,
    lnc_symbols: np.ndarray,
    gene_sets: pd.DataFrame,
    catalogue: pd.DataFrame,
    *,
    c: float = 1.0,
    seed: int = 0,
    n_jobs: int = 1,
) -> pd.DataFrame:
    """Fit each property's classifier on all protein-coding genes; score lncRNAs.

    Parameters
    ----------
    pc_embedding : np.ndarray
        float32 (n_pc, dim). pc_genes: str (n_pc,).
    lnc_embedding : np.ndarray
        float32 (n_lnc, dim). lnc_genes, lnc_symbols: str (n_lnc,).

    Returns
    -------
    pandas.DataFrame
        n_lnc x n_properties rows: ensembl_id, symbol, source, term_id,
        probability (float32, the classifier's P(member)).
    """
    kept = catalogue[catalogue["kept"]].reset_index(drop=True)
    ys = _memberships(gene_sets, catalogue, pc_genes)
    x = np.asarray(pc_embedding, dtype=np.float64)
    xl = np.asarray(lnc_embedding, dtype=np.float64)

    def fit_predict(y: np.ndarray) -> np.ndarray:
        return _classifier(c, seed).fit(x, y).predict_proba(xl)[:, 1].astype(np.float32)

    with parallel_config(backend="loky", inner_max_num_threads=1):
        probs = Parallel(n_jobs=n_jobs)(delayed(fit_predict)(y)
                                        for y in tqdm(ys, desc="lncRNA", unit="property", mininterval=5))
    n_lnc, n_prop = len(lnc_genes), len(kept)
    return pd.DataFrame({
        "ensembl_id": np.tile(np.asarray(lnc_genes, dtype=object), n_prop),
        "symbol": np.tile(np.asarray(lnc_symbols, dtype=object), n_prop),
        "source": np.repeat(kept["source"].to_numpy(), n_lnc),
        "term_id": np.repeat(kept["term_id"].to_numpy(), n_lnc),
        "probability": np.concatenate(probs) if probs else np.zeros(0, np.float32),
    })
