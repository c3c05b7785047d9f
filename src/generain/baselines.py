"""Baseline gene embeddings and paired comparisons of gene-property AUCs.

A trained gene embedding is only informative relative to simple baselines:

* :func:`random_embedding` - i.i.d. standard Gaussian vectors (chance level);
* :func:`shuffled_embedding` - the trained vectors with gene labels permuted
  within biotype and species (keeps the vectors' distribution, breaks the
  gene-vector link);
* :func:`svd_embedding` - truncated SVD of the per-gene standardized
  expression matrix (the linear co-expression baseline);
* :func:`external_embedding` - a published embedding in word2vec text format
  (e.g. Gene2vec, GenePT), mapped onto the pipeline's genes.

All take and return the embedding table of :mod:`generain.embed` (columns
token, ensembl_id, symbol, biotype, species, embedding; one float32 vector per
row). :func:`compare_aucs` tests per-property AUCs of an embedding against
those of a baseline with a paired Wilcoxon signed-rank test.
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd

from . import embed, io
from .utils import InputError, strip_version

log = logging.getLogger(__name__)

#: Fewest genes an external embedding must share with the table.
MIN_EXTERNAL_MATCHES = 100
#: Fewest paired properties for which :func:`compare_aucs` reports a p-value.
MIN_PAIRS = 10
#: Columns of :func:`compare_aucs`.
COMPARISON_COLUMNS = ("embedding", "baseline", "source", "properties", "median_auc_embedding",
                      "median_auc_baseline", "median_difference", "wins", "statistic", "p_value")
#: Columns of :func:`auc_distribution_table`.
DISTRIBUTION_COLUMNS = ("embedding", "source", "properties", "median", "q25", "q75", "fraction_above_0_7")
#: Label of the rows over all property sources together.
ALL_SOURCES = "all"


def _with_vectors(table: pd.DataFrame, vectors: np.ndarray) -> pd.DataFrame:
    """Copy of ``table`` (index reset) with ``embedding`` replaced by the rows of float32 ``vectors``."""
    out = table.reset_index(drop=True).copy()
    out["embedding"] = list(np.ascontiguousarray(vectors, dtype=np.float32))
    return out


def random_embedding(table: pd.DataFrame, *, dim: int, seed: int) -> pd.DataFrame:
    """Random baseline: i.i.d. standard Gaussian vectors for the same genes.

    Parameters
    ----------
    table : pandas.DataFrame
        Embedding table (:mod:`generain.embed`); only its gene columns are used.
    dim : int
        Length of each vector, >= 1.
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same vectors.

    Returns
    -------
    pandas.DataFrame
        ``table``'s rows, order and columns (index reset); ``embedding`` holds
        float32 arrays of length ``dim`` drawn from N(0, 1).

    Raises
    ------
    ValueError
        If ``dim`` < 1.
    """
    if dim < 1:
        raise ValueError(f"random_embedding: dim must be >= 1, got {dim}")
    rng = np.random.default_rng(seed)
    return _with_vectors(table, rng.standard_normal((len(table), dim), dtype=np.float32))


def shuffled_embedding(table: pd.DataFrame, *, seed: int) -> pd.DataFrame:
    """Permutation null: the trained vectors reassigned to other genes.

    Rows are permuted only among genes of the same (biotype, species), so a
    protein-coding human gene receives the vector of another protein-coding
    human gene; the multiset of vectors in every group is unchanged. Groups of
    one gene keep their vector.

    Parameters
    ----------
    table : pandas.DataFrame
        Embedding table (:mod:`generain.embed`) with biotype, species, embedding.
    seed : int
        Seed of ``numpy.random.default_rng``; groups are permuted in sorted
        (biotype, species) order, so the result depends only on seed and table.

    Returns
    -------
    pandas.DataFrame
        ``table``'s rows, order and columns (index reset); ``embedding`` of row
        i is the float32 vector of another row of the same biotype and species.
    """
    vectors = embed.embedding_matrix(table)
    rng = np.random.default_rng(seed)
    source = np.arange(len(table))
    groups = table.reset_index(drop=True).groupby(["biotype", "species"], sort=True, dropna=False).indices
    for rows in groups.values():
        source[rows] = rows[rng.permutation(len(rows))]
    log.info("shuffled %d gene vectors within %d (biotype, species) groups", len(table), len(groups))
    return _with_vectors(table, vectors[source] if len(table) else vectors)


def svd_embedding(matrix: io.Matrix, table: pd.DataFrame, *, dim: int, seed: int) -> pd.DataFrame:
    """Linear co-expression baseline: truncated SVD of the standardized expression matrix.

    Each gene's row of the normalized matrix is z-scored across samples (mean
    0, population standard deviation 1; genes with zero variance become all
    zeros, scikit-learn's ``StandardScaler`` convention), then
    ``sklearn.decomposition.TruncatedSVD`` (randomized algorithm of Halko et
    al. 2011, seeded) gives Z ~ U S V^T; gene vectors are the rows of U S
    (principal-component scores of the genes over the sample axes). Signs
    follow scikit-learn's deterministic ``svd_flip``.

    Parameters
    ----------
    matrix : generain.io.Matrix
        From :func:`generain.io.read_matrix`: ``matrix`` float32, shape
        (n_genes, n_samples), log10(CP10M+1); ``genes`` with ensembl_id.
    table : pandas.DataFrame
        Embedding table (:mod:`generain.embed`); genes matched on ensembl_id
        (version suffixes ignored).
    dim : int
        Components kept. If ``dim >= min(n_genes, n_samples)`` it is reduced to
        ``min(n_genes, n_samples) - 1`` with a warning.
    seed : int
        ``random_state`` of the randomized SVD.

    Returns
    -------
    pandas.DataFrame
        The rows of ``table`` whose gene is in the matrix, in ``table``'s order
        (index reset), same columns; ``embedding`` float32 of length ``dim``
        (after clipping). Genes absent from the matrix are dropped (logged).

    Raises
    ------
    ValueError
        If ``dim`` < 1.
    InputError
        The matrix has non-finite values, duplicate Ensembl ids, fewer than 2
        genes or samples, or no gene in common with ``table``.
    """
    if dim < 1:
        raise ValueError(f"svd_embedding: dim must be >= 1, got {dim}")
    values = matrix.matrix
    what = f"expression matrix ({matrix.attrs.get('values', 'genes x samples')}, shape {values.shape})"
    if values.ndim != 2 or len(matrix.genes) != values.shape[0]:
        raise InputError(f"{what}: {len(matrix.genes)} gene annotations for a matrix of shape {values.shape}")
    n_max = min(values.shape) - 1
    if n_max < 1:
        raise InputError(f"{what}: an SVD needs at least 2 genes and 2 samples")
    if not np.isfinite(values).all():
        raise InputError(f"{what}: {int((~np.isfinite(values)).sum())} non-finite values")
    ids = pd.Index(matrix.genes["ensembl_id"].astype(str).map(strip_version))
    if ids.has_duplicates:
        dups = ids[ids.duplicated()].unique()
        raise InputError(f"{what}: {len(dups)} duplicate Ensembl ids, e.g. {', '.join(dups[:3])}")
    if dim > n_max:
        log.warning("svd_embedding: dim %d >= min(n_genes, n_samples) = %d; using %d components",
                    dim, n_max + 1, n_max)
        dim = n_max

    row_of = ids.get_indexer(table["ensembl_id"].fillna("").astype(str).map(strip_version))
    keep = row_of >= 0
    if not keep.any():
        raise InputError(f"{what}: none of the {len(table)} genes of the embedding table is in the matrix "
                         f"(e.g. table {table['ensembl_id'].head(3).tolist()}, matrix {ids[:3].tolist()})")
    if not keep.all():
        log.info("svd_embedding: %d of %d table genes are not in the expression matrix and are dropped",
                 int((~keep).sum()), len(table))

    from sklearn.decomposition import TruncatedSVD  # imported where used: most jobs importing this module need neither
    from sklearn.preprocessing import StandardScaler

    # StandardScaler standardizes columns: transpose to samples x genes and back.
    z = StandardScaler().fit_transform(values.T).T
    svd = TruncatedSVD(n_components=dim, algorithm="randomized", random_state=seed)
    scores = svd.fit_transform(z)  # U S, shape (n_genes, dim)
    log.info("svd_embedding: %d components of %d genes x %d samples explain %.1f%% of the variance",
             dim, values.shape[0], values.shape[1], 100 * float(svd.explained_variance_ratio_.sum()))
    return _with_vectors(table.reset_index(drop=True)[keep], scores[row_of[keep]])


def external_embedding(path: str | os.PathLike[str], table: pd.DataFrame, *,
                       min_matched: int = MIN_EXTERNAL_MATCHES) -> pd.DataFrame:
    """A published gene embedding (word2vec text) mapped onto the table's genes.

    Each token is matched to the table's genes by Ensembl id first (version
    suffixes ignored on both sides), otherwise by symbol if exactly one gene
    of the table has that symbol (case-sensitive). A gene matched by several
    tokens keeps the vector of an Ensembl-id token over a symbol token, then of
    the first such token in the file.

    Parameters
    ----------
    path : path-like
        word2vec text file: header ``N D``, then ``token v1 ... vD`` per line
        (read with :func:`generain.embed.read_word2vec`); tokens are gene
        symbols or Ensembl gene ids, with or without version suffix.
    table : pandas.DataFrame
        Embedding table (:mod:`generain.embed`) with ensembl_id and symbol.
    min_matched : int
        Fewest matched genes accepted (keyword only; default 100).

    Returns
    -------
    pandas.DataFrame
        The rows of ``table`` matched by a token, in ``table``'s order (index
        reset), same columns; ``embedding`` the external float32 vector
        (length D).

    Raises
    ------
    InputError
        Unreadable file (see ``read_word2vec``) or fewer than ``min_matched``
        genes matched; the message gives the file, token and match counts and
        three example tokens.
    """
    tokens, vectors = embed.read_word2vec(path)
    tab = table.reset_index(drop=True)
    gene_ids = tab["ensembl_id"].fillna("").astype(str).map(strip_version).to_numpy()
    by_id = {g: rows for g, rows in pd.Series(np.arange(len(tab))).groupby(gene_ids).agg(list).items() if g}
    symbols = tab["symbol"].fillna("").astype(str)
    sym_counts = symbols.value_counts()
    unique_symbols = {s: i for i, s in enumerate(symbols) if s and sym_counts[s] == 1}

    source = np.full(len(tab), -1)  # token row per table row
    by_symbol = 0
    for kind in ("ensembl_id", "symbol"):
        for t, token in enumerate(tokens):
            rows = by_id.get(strip_version(token), []) if kind == "ensembl_id" else (
                [unique_symbols[token]] if token in unique_symbols else [])
            for r in rows:
                if source[r] < 0:
                    source[r] = t
                    by_symbol += kind == "symbol"
    keep = source >= 0
    n_matched = int(keep.sum())
    used = np.unique(source[keep])
    log.info("%s: %d tokens; %d table genes matched (%d by Ensembl id, %d by unique symbol); "
             "%d tokens unused", path, len(tokens), n_matched, n_matched - by_symbol, by_symbol,
             len(tokens) - len(used))
    if n_matched < min_matched:
        used_set = set(used.tolist())
        unused = [tok for i, tok in enumerate(tokens) if i not in used_set]
        examples = ", ".join(repr(x) for x in (unused or tokens)[:3])
        raise InputError(f"{path}: only {n_matched} of {len(tokens)} tokens match a gene of the embedding table "
                         f"(need >= {min_matched}; tokens must be Ensembl gene ids or unique gene symbols, "
                         f"e.g. {tab['ensembl_id'].head(2).tolist()} / {tab['symbol'].head(2).tolist()}); "
                         f"example tokens of the file: {examples}")
    return _with_vectors(tab[keep], vectors[source[keep]])


def _check_aucs(name: str, df: pd.DataFrame) -> pd.DataFrame:
    missing = {"source", "term_id", "auc"} - set(df.columns)
    if missing:
        raise InputError(f"AUC table {name!r}: missing columns {sorted(missing)}")
    if df.duplicated(["source", "term_id"]).any():
        raise InputError(f"AUC table {name!r}: duplicate (source, term_id) rows")
    return df[["source", "term_id", "auc"]].dropna(subset=["auc"])


def _paired_test(diff: np.ndarray) -> tuple[float, float]:
    """(statistic, p_value) of scipy's two-sided Wilcoxon signed-rank test of paired differences."""
    if diff.size < MIN_PAIRS:
        return np.nan, np.nan
    if not np.any(diff != 0):
        return 0.0, 1.0  # the 'wilcox' zero method leaves no pairs: no evidence either way
    from scipy.stats import wilcoxon

    res = wilcoxon(diff, alternative="two-sided", zero_method="wilcox", method="auto")
    return float(res.statistic), float(res.pvalue)


def compare_aucs(aucs: dict[str, pd.DataFrame], *, baselines: list[str]) -> pd.DataFrame:
    """Paired comparison of per-property AUCs of embeddings against baselines.

    For every embedding ``e`` of ``aucs`` not in ``baselines`` and every
    baseline ``b``, the properties both tables scored (inner join on source,
    term_id; NaN AUCs dropped) are compared with a two-sided Wilcoxon
    signed-rank test (``scipy.stats.wilcoxon`` of the differences
    auc_e - auc_b; zero differences dropped, Wilcoxon's method; exact null
    distribution for n <= 50 without ties, else a permutation test (n <= 13)
    or the normal approximation, scipy's ``method="auto"``), per property
    source and over all sources.

    Parameters
    ----------
    aucs : dict of str to pandas.DataFrame
        Embedding name -> AUC table with columns source, term_id, auc (one row
        per property, as written by :mod:`generain.sweep`).
    baselines : list of str
        Names in ``aucs`` that are baselines (compared against, not tested).

    Returns
    -------
    pandas.DataFrame
        One row per (embedding, baseline, source), sources sorted then
        ``"all"``: embedding, baseline, source, properties (pairs, int),
        median_auc_embedding, median_auc_baseline, median_difference (median of
        the paired differences), wins (fraction of pairs with embedding AUC >
        baseline AUC), statistic (scipy's two-sided statistic, min(W+, W-)),
        p_value (NaN with fewer than 10 pairs; 1.0 if every difference is 0).

    Raises
    ------
    InputError
        A baseline is not in ``aucs``, or an AUC table lacks columns or has
        duplicate properties.
    """
    missing = [b for b in baselines if b not in aucs]
    if missing:
        raise InputError(f"compare_aucs: baselines {missing} have no AUC table (have {sorted(aucs)})")
    tables = {name: _check_aucs(name, df) for name, df in aucs.items()}
    rows = []
    for e in (n for n in aucs if n not in baselines):
        for b in baselines:
            pair = tables[e].merge(tables[b], on=["source", "term_id"], suffixes=("_e", "_b"))
            if len(pair) < min(len(tables[e]), len(tables[b])):
                log.info("compare_aucs: %s vs %s share %d properties (%d and %d scored)",
                         e, b, len(pair), len(tables[e]), len(tables[b]))
            groups = [(s, pair[pair["source"] == s]) for s in sorted(pair["source"].unique())]
            for source, sub in groups + [(ALL_SOURCES, pair)]:
                x = sub["auc_e"].to_numpy(dtype=float)
                y = sub["auc_b"].to_numpy(dtype=float)
                diff = x - y
                stat, p = _paired_test(diff)
                empty = diff.size == 0
                rows.append({
                    "embedding": e, "baseline": b, "source": source, "properties": int(diff.size),
                    "median_auc_embedding": np.nan if empty else float(np.median(x)),
                    "median_auc_baseline": np.nan if empty else float(np.median(y)),
                    "median_difference": np.nan if empty else float(np.median(diff)),
                    "wins": np.nan if empty else float(np.mean(diff > 0)),
                    "statistic": stat, "p_value": p,
                })
    return pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))


def auc_distribution_table(aucs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Summary of each embedding's AUC distribution per property source.

    Parameters
    ----------
    aucs : dict of str to pandas.DataFrame
        Embedding name -> AUC table with columns source, term_id, auc.

    Returns
    -------
    pandas.DataFrame
        One row per (embedding, source), sources sorted then ``"all"``:
        embedding, source, properties (non-NaN AUCs, int), median, q25, q75
        (``numpy.quantile``, linear interpolation), fraction_above_0_7
        (fraction with auc > 0.7).

    Raises
    ------
    InputError
        An AUC table lacks columns or has duplicate properties.
    """
    rows = []
    for name, df in aucs.items():
        t = _check_aucs(name, df)
        groups = [(s, t[t["source"] == s]) for s in sorted(t["source"].unique())]
        for source, sub in groups + [(ALL_SOURCES, t)]:
            a = sub["auc"].to_numpy(dtype=float)
            q25, med, q75 = np.quantile(a, [0.25, 0.5, 0.75]) if a.size else (np.nan,) * 3
            rows.append({"embedding": name, "source": source, "properties": int(a.size), "median": float(med),
                         "q25": float(q25), "q75": float(q75),
                         "fraction_above_0_7": float(np.mean(a > 0.7)) if a.size else np.nan})
    return pd.DataFrame(rows, columns=list(DISTRIBUTION_COLUMNS))
