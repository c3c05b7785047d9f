"""Gene-property classifier sweep and lncRNA transfer predictions.

GeneRAIN (Su et al. 2024, Results "Gene embeddings encode gene properties"):
for each property (gene set), an L2-regularised logistic regression on the
gene embeddings separates member from non-member protein-coding genes; its
cross-validated ROC AUC measures how much the embedding knows. Classifiers
trained on all protein-coding genes are then applied to lncRNAs.

This module chooses the properties (:func:`property_catalogue`) and runs the
sweep in batches with the solver of :mod:`generain.classifier`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import polars as pl

import numpy as np
import pandas as pd
from scipy import sparse
from tqdm.auto import tqdm

from .utils import ConfigSection, InputError, release_freed_memory, runtime_field

log = logging.getLogger(__name__)

CATALOGUE_COLUMNS = ("source", "term_id", "term_name", "n_genes", "n_positive", "kept", "reason",
                     "jaccard_duplicate_of")
AUC_COLUMNS = ("source", "term_id", "term_name", "n_positive", "auc", "average_precision")
GENE_SET_COLUMNS = ("source", "term_id", "term_name", "ensembl_id")


def property_catalogue(
    gene_sets: pd.DataFrame,
    protein_coding: np.ndarray,
    *,
    min_genes: int = 10,
    max_genes: int = 500,
    max_jaccard: float = 0.9,
    max_properties: int | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """Decide which gene sets become properties of the sweep.

    Three filters, in this order:

    1. size: n_positive, the number of the set's distinct genes that are in
       ``protein_coding``, must lie in [``min_genes``, ``max_genes``];
    2. near-duplicates: among the size-eligible sets, a set whose Jaccard
       index with an already kept set is >= ``max_jaccard`` is dropped
       (computed on the sets' protein-coding genes in the vocabulary). Sets are
       visited greedily by n_positive descending, then source, then term_id
       ascending, so of two near-duplicates the larger one is kept and of two
       equal-sized ones the first by (source, term_id). A dropped set names
       the kept set it overlaps most (ties: the one visited first). Sets with
       no such gene (possible only with ``min_genes=0``) are never duplicates;
    3. cap: if more than ``max_properties`` sets remain, ``max_properties``
       of them are drawn uniformly at random with ``seed``.

    Parameters
    ----------
    gene_sets : pandas.DataFrame
        Long table, one row per (set, gene), columns source (str), term_id
        (str), term_name (str), ensembl_id (str, unversioned), as returned by
        :func:`generain.annotation.read_gene_sets`. Extra columns are ignored;
        repeated (source, term_id, ensembl_id) rows count once.
    protein_coding : np.ndarray
        str, shape (n_protein_coding,): Ensembl ids of the protein-coding genes
        in the vocabulary (the genes the classifiers are trained on).
    min_genes, max_genes : int
        Inclusive bounds on n_positive.
    max_jaccard : float
        Near-duplicate threshold in (0, 1]: Jaccard index
        ``|A & B| / |A | B|`` at or above which the smaller set is dropped.
        1.0 drops only identical sets.
    max_properties : int, optional
        Keep at most this many of the size-eligible, non-duplicate sets, drawn
        uniformly without replacement with ``numpy.random.default_rng(seed)``.
        None keeps them all.
    seed : int
        Seed of the cap's draw.

    Returns
    -------
    pandas.DataFrame
        One row per (source, term_id), sorted by source, term_id, columns
        :data:`CATALOGUE_COLUMNS`: term_name (first seen), n_genes (int64,
        distinct genes in the table), n_positive (int64), kept (bool),
        reason (str, None if kept; else why not: size, near-duplicate of
        ``source:term_id`` with its Jaccard index, or not drawn in the cap) and
        jaccard_duplicate_of (str ``source:term_id`` of the kept set a
        near-duplicate was dropped for, else None).

    Raises
    ------
    InputError
        If ``gene_sets`` lacks one of the columns source, term_id, term_name,
        ensembl_id, or ``max_jaccard`` is not in (0, 1].

    Notes
    -----
    Method source: GeneRAIN (Su et al. 2024), Methods on gene property
    prediction: gene sets (GO, HPO, ...) with 10-500 genes are the properties.
    The Jaccard de-duplication is our addition: GO and HPO hold many terms
    whose gene sets are (nearly) the same, and each would otherwise be counted
    as a separate property in the AUC summary.

    The Jaccard indices come from a sparse sets x genes membership matrix
    ``M`` (CSR): intersections are ``M @ M.T``, computed in blocks of rows so
    that memory stays bounded; only pairs at or above the threshold are kept.
    """
    import polars as pl  # only the jobs that read gene sets load it (~0.2 s)

    missing = [c for c in GENE_SET_COLUMNS if c not in gene_sets.columns]
    if missing:
        raise InputError(f"gene-set table lacks column(s) {missing}; has {list(gene_sets.columns)}")
    if isinstance(max_jaccard, bool) or not isinstance(max_jaccard, (int, float, np.integer, np.floating)) \
            or not 0.0 < float(max_jaccard) <= 1.0:
        raise InputError(f"max_jaccard must be a number in (0, 1], got {max_jaccard!r}")
    max_jaccard = float(max_jaccard)

    pc = pd.Index(np.asarray(protein_coding, dtype=object)).unique()
    gs = gene_set_frame(gene_sets)
    cat_pl = (gs.group_by(["source", "term_id"], maintain_order=True)
                .agg(pl.col("term_name").first(), pl.col("ensembl_id").n_unique().alias("n_genes"))
                .with_columns(pl.col("source", "term_id", "term_name").cast(pl.String))
                .sort(["source", "term_id"]).with_row_index("row"))
    # membership pairs (set row in cat, protein-coding gene column), each pair once
    genes_pl = _key_frame({"ensembl_id": pc.to_numpy(dtype=object)}, "col")
    n = max(len(pc), 1)
    keys = cat_pl.select(pl.col("source", "term_id").cast(pl.Categorical), "row")
    code = (gs.join(keys, on=["source", "term_id"])
              .join(genes_pl, on="ensembl_id")
              .select((pl.col("row").cast(pl.Int64) * n + pl.col("col")).alias("code"))
              .unique()["code"].sort().to_numpy())
    pairs = np.stack([code // n, code % n]).astype(np.int64)
    cat = cat_pl.drop("row").to_pandas()
    cat["n_genes"] = cat["n_genes"].astype(np.int64)
    cat["n_positive"] = np.bincount(pairs[0], minlength=len(cat)).astype(np.int64)

    n_pos = cat["n_positive"].to_numpy()
    reason = np.where(n_pos < min_genes, f"fewer than {min_genes} protein-coding genes in vocabulary",
                      np.where(n_pos > max_genes, f"more than {max_genes} protein-coding genes in vocabulary",
                               "")).astype(object)
    duplicate_of = np.full(len(cat), None, dtype=object)

    eligible = np.flatnonzero(reason == "")
    if len(eligible) > 1:
        dup_row, kept_row, jac = _near_duplicates(pairs, eligible, n_pos, len(pc), max_jaccard)
        for d, k, j in zip(dup_row, kept_row, jac):
            name = f"{cat.at[k, 'source']}:{cat.at[k, 'term_id']}"
            duplicate_of[d] = name
            reason[d] = f"near-duplicate of {name} (Jaccard {j:.2f})"
        if len(dup_row):
            log.info("property catalogue: %d of %d size-eligible gene sets dropped as near-duplicates "
                     "(Jaccard >= %g)", len(dup_row), len(eligible), max_jaccard)

    remaining = reason == ""
    if max_properties is not None and remaining.sum() > max_properties:
        rng = np.random.default_rng(seed)
        idx = np.flatnonzero(remaining)
        drop = np.setdiff1d(idx, rng.choice(idx, size=max_properties, replace=False))
        reason[drop] = f"not drawn in the cap of {max_properties} properties (seed {seed})"
    cat["kept"] = reason == ""
    cat["reason"] = pd.Series(np.where(cat["kept"], None, reason), dtype=object)
    cat["jaccard_duplicate_of"] = pd.Series(duplicate_of, dtype=object)
    return cat[list(CATALOGUE_COLUMNS)]


def _near_duplicates(
    pairs: np.ndarray, eligible: np.ndarray, n_pos: np.ndarray, n_cols: int, max_jaccard: float,
    *, block: int = 512,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Greedy Jaccard de-duplication of the eligible sets.

    Parameters
    ----------
    pairs : np.ndarray
        int64, shape (2, n_pairs): unique (catalogue row, gene column) memberships.
    eligible : np.ndarray
        int64, ascending catalogue rows (already sorted by source, term_id) to de-duplicate.
    n_pos : np.ndarray
        int64, shape (n_catalogue,): set sizes (= row sums of the membership matrix).
    n_cols : int
        Number of gene columns.
    max_jaccard : float
        Threshold in (0, 1].

    Returns
    -------
    (np.ndarray, np.ndarray, np.ndarray)
        Catalogue rows dropped, the kept row each is a duplicate of, and their Jaccard index.
    """
    n = len(eligible)
    # greedy order: n_positive descending, then catalogue order (source, term_id ascending)
    order = eligible[np.lexsort((eligible, -n_pos[eligible]))]
    rank = np.full(len(n_pos), -1, dtype=np.int64)
    rank[order] = np.arange(n)
    sel = rank[pairs[0]] >= 0
    rows, cols = rank[pairs[0][sel]], pairs[1][sel]
    m = sparse.csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(n, n_cols))
    size = n_pos[order].astype(np.float64)  # non-increasing in greedy rank
    # pairs (i, j) of greedy ranks, j < i, with Jaccard >= max_jaccard. Jaccard >= t needs
    # size_j <= size_i / t, so a block of rows [start, end) only meets columns [lo, end):
    # sizes are sorted, and the bound is a contiguous range of ranks.
    hi_i, hi_j, hi_v = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)], [np.zeros(0)]
    for start in range(0, n, block):
        end = min(start + block, n)
        lo = int(np.searchsorted(-size, -size[start] / max_jaccard * (1 + 1e-9), side="left"))
        inter = (m[start:end] @ m[lo:end].T).tocoo()
        i = inter.row.astype(np.int64) + start
        j = inter.col.astype(np.int64) + lo
        x = inter.data.astype(np.float64)
        jac = x / (size[i] + size[j] - x)
        keep = (jac >= max_jaccard) & (j < i)
        hi_i.append(i[keep])
        hi_j.append(j[keep])
        hi_v.append(jac[keep])
    hi_i, hi_j, hi_v = np.concatenate(hi_i), np.concatenate(hi_j), np.concatenate(hi_v)
    # neighbour lists of each set among those visited before it (lower rank), sorted by (i, j)
    srt = np.lexsort((hi_j, hi_i))
    hi_i, hi_j, hi_v = hi_i[srt], hi_j[srt], hi_v[srt]
    bounds = np.searchsorted(hi_i, np.arange(n + 1))
    kept = np.ones(n, dtype=bool)
    dup, of, jv = [], [], []
    for r in np.flatnonzero(bounds[1:] > bounds[:-1]):
        nb, v = hi_j[bounds[r]:bounds[r + 1]], hi_v[bounds[r]:bounds[r + 1]]
        live = kept[nb]
        if live.any():
            nb, v = nb[live], v[live]
            best = int(np.argmax(v))  # highest Jaccard; ties: first visited (nb ascending)
            kept[r] = False
            dup.append(r)
            of.append(nb[best])
            jv.append(v[best])
    dup_a, of_a = np.asarray(dup, dtype=np.int64), np.asarray(of, dtype=np.int64)
    return order[dup_a], order[of_a], np.asarray(jv, dtype=np.float64)


def gene_set_frame(gene_sets: pl.DataFrame | pd.DataFrame) -> pl.DataFrame:
    """A gene-set long table as polars with Categorical source, term_id, term_name, ensembl_id (pandas converted)."""
    import polars as pl  # only the jobs that read gene sets load it (~0.2 s)

    gs = gene_sets if isinstance(gene_sets, pl.DataFrame) else pl.from_pandas(
        pd.DataFrame({c: gene_sets[c].astype(str) for c in GENE_SET_COLUMNS}))
    return gs.select([pl.col(c).cast(pl.String).cast(pl.Categorical) if gs.schema[c] != pl.Categorical
                      else pl.col(c) for c in GENE_SET_COLUMNS])


def _key_frame(keys: dict[str, np.ndarray], index: str) -> pl.DataFrame:
    """Join keys as Categorical columns (joinable with :func:`gene_set_frame`'s) and their Int64 positions."""
    import polars as pl  # only the jobs that read gene sets load it (~0.2 s)

    n = len(next(iter(keys.values())))
    return pl.DataFrame({**{k: np.asarray(v, dtype=object).astype(str) for k, v in keys.items()},
                         index: np.arange(n, dtype=np.int64)},
                        schema={**dict.fromkeys(keys, pl.String), index: pl.Int64}).with_columns(
        pl.col(list(keys)).cast(pl.Categorical))


def memberships(gene_sets: pl.DataFrame | pd.DataFrame, properties: pd.DataFrame,
                genes: np.ndarray) -> sparse.csr_matrix:
    """Membership matrix of the given properties over the given genes.

    Parameters
    ----------
    gene_sets : polars.DataFrame or pandas.DataFrame
        Long table: source, term_id, term_name, ensembl_id
        (:func:`generain.annotation.read_gene_sets`).
    properties : pandas.DataFrame
        Rows with source and term_id (for example the kept rows of the catalogue).
    genes : np.ndarray
        str, shape (n_genes,): Ensembl ids, in the order of the embedding's rows.

    Returns
    -------
    scipy.sparse.csr_matrix
        bool, shape (n_properties, n_genes); ``.toarray()`` of a row block gives the dense labels.
    """

    gs = gene_set_frame(gene_sets)
    props = _key_frame({"source": properties["source"].to_numpy(), "term_id": properties["term_id"].to_numpy()},
                       "row")
    cols = _key_frame({"ensembl_id": np.asarray(genes)}, "col")
    hits = gs.join(props, on=["source", "term_id"]).join(cols, on="ensembl_id").select("row", "col")
    row, col = hits["row"].to_numpy(), hits["col"].to_numpy()
    y = sparse.csr_matrix((np.ones(len(row), dtype=bool), (row, col)),
                          shape=(len(properties), len(genes)), dtype=bool)
    y.sum_duplicates()
    return y


@dataclass(frozen=True)
class SweepSettings(ConfigSection):
    """The config section ``sweep``: every key of config/schema.yaml's ``sweep``, no defaults here.

    Defaults and descriptions live once, in the schema. ``batch_size`` and
    ``device`` only change how the solver runs (schema ``runtime: true``,
    ``metadata={"runtime": True}`` here): they are not Snakemake params, so
    changing them re-runs no finished job. ``shards``, ``baselines`` and
    ``external`` shape the workflow's jobs.
    """

    SECTION: ClassVar[str] = "sweep"


    min_genes: int
    max_genes: int
    max_jaccard: float
    max_properties: int | None
    folds: int
    C: float
    shards: int
    max_iter: int
    score_tol: float
    baselines: list[str]
    external: dict[str, str]
    batch_size: int = runtime_field()
    device: str = runtime_field()
    compile: bool = runtime_field()


@dataclass
class SweepResult:
    """Output of :func:`run_sweep`.

    auc: one row per property, columns :data:`AUC_COLUMNS` plus n_iter and converged.
    classifiers: one row per property: source, term_id, intercept (float32),
    coef (float32 vector of length dim, on the raw embedding), and for each
    probability t in :data:`PRECISION_GRID` the columns ``precision_{t:g}`` (the
    fraction of protein-coding genes with out-of-fold probability >= t that are
    members; NaN if none reaches t) and ``n_called_{t:g}`` (how many reach it),
    from :func:`generain.lncrna.precision_at_thresholds`.
    """

    auc: pd.DataFrame
    classifiers: pd.DataFrame


PRECISION_GRID = tuple(round(float(v), 2) for v in np.arange(0.05, 1.0, 0.05))


def precision_columns(grid: tuple[float, ...] = PRECISION_GRID) -> list[str]:
    """Names of the precision columns of the classifiers table, one per grid probability."""
    return [f"precision_{t:g}" for t in grid]


def run_sweep(
    embedding: np.ndarray,
    genes: np.ndarray,
    gene_sets: pd.DataFrame,
    properties: pd.DataFrame,
    *,
    folds: int = 5,
    c: float = 1.0,
    seed: int = 0,
    batch_size: int = 32,
    device: str = "cpu",
    compile: bool = True,
    max_iter: int = 100,
    score_tol: float = 0.03,
    labels: sparse.csr_matrix | None = None,
    grad_tol: float | None = None,
) -> SweepResult:
    """Cross-validated L2 logistic regression of every property, solved in batches.

    GeneRAIN (Su et al. 2024, Results "Gene embeddings encode gene properties"):
    one classifier per property on the protein-coding genes' embeddings, scored
    by cross-validated ROC AUC. Solved with :func:`generain.classifier.cross_validate`,
    ``batch_size`` properties (each with its folds and a refit on all genes) at a
    time; each property's folds come from its own seed, so results do not depend
    on the batch size or on sharding.

    Parameters
    ----------
    embedding : np.ndarray
        float32, shape (n_genes, dim): protein-coding gene embeddings.
    genes : np.ndarray
        str, shape (n_genes,), their Ensembl ids.
    gene_sets : pandas.DataFrame
        Long table from :func:`generain.annotation.read_gene_sets`.
    properties : pandas.DataFrame
        The properties to fit: source, term_id, term_name (the kept rows of :func:`property_catalogue`).
    folds : int
        Stratified K-fold splits.
    c : float
        Inverse L2 regularisation strength (scikit-learn's C) on standardised embeddings.
    batch_size : int
        Properties solved together.
    device : str
        torch device ("cpu", "cuda").
    compile : bool
        Compile the solver's elementwise passes with torch.compile (:func:`generain.classifier.solver_passes`;
        the same fits within the solver's tolerance).
    max_iter, score_tol
        The solver's iteration cap and stopping rule (:func:`generain.classifier.fit_logistic`'s
        ``max_iter`` and ``tol``).
    labels : scipy.sparse.csr_matrix, optional
        The memberships of ``properties`` over ``genes``, if the caller already has them
        (:func:`memberships`); else computed from ``gene_sets``.
    grad_tol : float, optional
        Stop on the gradient instead (scikit-learn's lbfgs rule; the solver's rule before
        2026-12-05): for comparisons only.

    Returns
    -------
    SweepResult

    Raises
    ------
    InputError
        If a property has fewer members (or non-members) among ``genes`` than folds.
    """
    from . import classifier, lncrna

    props = properties[["source", "term_id", "term_name"]].reset_index(drop=True)
    gm = classifier.GeneMatrix(embedding, device=device)
    seeds = np.array([classifier.property_seed(seed, s, t) for s, t in zip(props["source"], props["term_id"])],
                     dtype=np.uint64)
    npos, aucs, aps, iters, conv, coefs, icpt, prec = [], [], [], [], [], [], [], []
    y_all = memberships(gene_sets, props, genes) if labels is None else labels
    with tqdm(total=len(props), desc="properties", unit="property", mininterval=5) as bar:
        for start in range(0, len(props), batch_size):
            batch = props.iloc[start:start + batch_size]
            y = y_all[start:start + batch_size].toarray()
            bad = np.flatnonzero((y.sum(1) < folds) | ((~y).sum(1) < folds))
            if bad.size:
                b0 = batch.iloc[bad[0]]
                raise InputError(f"property {b0['source']}:{b0['term_id']} has {int(y[bad[0]].sum())} member genes "
                                 f"among {len(genes)}: fewer than sweep.folds ({folds})")
            cv = classifier.cross_validate(gm, y, seeds[start:start + batch_size], n_folds=folds, c=c,
                                           max_iter=max_iter, tol=score_tol, grad_tol=grad_tol,
                                           compile=compile)
            npos.append(y.sum(1)), aucs.append(cv.auc), aps.append(cv.average_precision), iters.append(cv.n_iter)
            conv.append(cv.converged), coefs.append(cv.coef), icpt.append(cv.intercept)
            prec.append(lncrna.precision_at_thresholds(cv.oof.T, y.T, PRECISION_GRID))
            del cv
            release_freed_memory()
            bar.update(len(batch))
    n_prop = len(props)
    cat = (lambda xs, dtype: np.concatenate(xs).astype(dtype) if xs else np.zeros(0, dtype))  # noqa: E731
    auc = props.copy()
    auc["n_positive"] = cat(npos, np.int64)
    auc["auc"] = cat(aucs, np.float64)
    auc["average_precision"] = cat(aps, np.float64)
    auc["n_iter"] = cat(iters, np.int64)
    auc["converged"] = cat(conv, bool)
    not_conv = int((~auc["converged"]).sum())
    if not_conv:
        log.warning("%d of %d properties did not converge in %d iterations (score_tol %g): their AUC is from the "
                    "last iterate", not_conv, n_prop, max_iter, score_tol)
    clf = props[["source", "term_id"]].copy()
    clf["intercept"] = cat(icpt, np.float32)
    clf["coef"] = list(np.concatenate(coefs).astype(np.float32)) if coefs else []
    if prec:
        clf = pd.concat([clf, pd.concat(prec, ignore_index=True)], axis=1)
    return SweepResult(auc=auc, classifiers=clf)
