"""The gene-property sweep.

Rules make_baseline, catalogue_properties, sweep_properties, gather_sweep and compare_embeddings.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import polars as pl

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import annotation, baselines, embed, io, plots, sweep
from ..baselines import ALL_SOURCES, auc_distribution_table, compare_aucs
from ..utils import InputError, PathLike, atomic_path, timed, write_parquet

log = logging.getLogger(__name__)


def _read_gene_sets(paths: Sequence[PathLike], gene_table: PathLike | None = None,
                    terms: pd.DataFrame | None = None) -> pl.DataFrame:
    import polars as pl

    genes = annotation.read_gene_table(gene_table) if gene_table else None
    return pl.concat([annotation.read_gene_sets(p, gene_table=genes, terms=terms) for p in paths])


def make_baseline(
    *,
    kind: str,
    embedding: PathLike,
    matrix: PathLike | None,
    external: PathLike | None,
    seed: int,
    out_w2v: PathLike,
    out_parquet: PathLike,
) -> int:
    """Write one baseline embedding for the sweep, on the genes of a trained embedding.

    kind: ``random`` (Gaussian, same dimension), ``shuffled`` (the trained
    vectors with gene rows permuted within biotype), ``svd`` (truncated SVD of
    the normalized gene x sample matrix, same dimension), ``external`` (a
    word2vec text file, restricted to the genes both cover). See
    :mod:`generain.baselines`.
    """
    table = embed.read_embeddings(embedding)
    dim = len(table["embedding"].iloc[0])
    if kind == "random":
        out = baselines.random_embedding(table, dim=dim, seed=seed)
    elif kind == "shuffled":
        out = baselines.shuffled_embedding(table, seed=seed)
    elif kind == "svd":
        if matrix is None:
            raise InputError("the svd baseline needs the normalized matrix")
        out = baselines.svd_embedding(io.read_matrix(matrix), table, dim=dim, seed=seed)
    elif kind == "external":
        if external is None:
            raise InputError("the external baseline needs a word2vec file")
        out = baselines.external_embedding(external, table)
    else:
        raise InputError(f"unknown baseline kind {kind!r}")
    embed.write_embeddings(out, w2v_path=out_w2v, parquet_path=out_parquet)
    log.info("%s baseline: %d genes x %d dimensions", kind, len(out), len(out["embedding"].iloc[0]))
    return len(out)


def catalogue_properties(
    *,
    embedding: PathLike,
    gene_sets: Sequence[PathLike],
    gene_table: PathLike | None,
    settings: sweep.SweepSettings,
    seed: int,
    out_catalogue: PathLike,
) -> dict[str, Any]:
    """Choose the sweep's properties for one embedding's protein-coding genes.

    Output: sweep/{model}/properties.parquet, every gene set with source, term_id,
    term_name, n_genes, n_positive, kept, reason, jaccard_duplicate_of
    (:func:`generain.sweep.property_catalogue`).
    """
    min_genes, max_genes, folds = settings.min_genes, settings.max_genes, settings.folds
    if min_genes < folds:
        raise InputError(f"config sweep.min_genes ({min_genes}) must be at least sweep.folds ({folds}): "
                         "every fold needs a member of the gene set")
    pc, _ = embed.split_by_biotype(embed.read_embeddings(embedding))
    sets = _read_gene_sets(gene_sets, gene_table)
    cat = sweep.property_catalogue(sets, pc["ensembl_id"].to_numpy(), min_genes=min_genes, max_genes=max_genes,
                                   max_jaccard=settings.max_jaccard, max_properties=settings.max_properties,
                                   seed=seed)
    n_kept = int(cat["kept"].sum())
    if n_kept == 0:
        raise InputError(f"{list(map(str, gene_sets))}: no gene set has {min_genes}-{max_genes} protein-coding "
                         "genes in the vocabulary")
    write_parquet(pa.Table.from_pandas(cat, preserve_index=False), out_catalogue)
    reasons = cat.loc[~cat["kept"], "reason"].str.replace(r" of .*| \(seed.*", "", regex=True).value_counts()
    stats = {"gene_sets": int(len(cat)), "kept": n_kept, "kept_by_source": cat[cat["kept"]].groupby("source").size()
             .astype(int).to_dict(), "dropped": {str(k): int(v) for k, v in reasons.items()}}
    log.info("property catalogue: %s", stats)
    return stats


def sweep_properties(
    *,
    embedding: PathLike,
    gene_sets: Sequence[PathLike],
    gene_table: PathLike | None,
    catalogue: PathLike,
    shard: int,
    settings: sweep.SweepSettings,
    seed: int,
    threads: int,
    out_shard: PathLike,
) -> int:
    """Cross-validated classifiers of one shard of the kept properties on one embedding.

    The kept properties, in catalogue order, are cut into ``settings.shards``
    contiguous parts; this job fits part ``shard`` (0-based). Output: a parquet with the AUC
    table's columns, n_iter, converged, and the classifier (intercept, coef, and
    the out-of-fold precision columns of :class:`generain.sweep.SweepResult`).
    """
    import torch  # here, not at the top: the stage's other jobs start ~1 s faster without it

    from .. import classifier

    torch.set_num_threads(max(1, threads))
    n_shards = settings.shards
    if not 0 <= shard < n_shards:
        raise InputError(f"shard {shard} is not in 0..{n_shards - 1}")
    pc, _ = embed.split_by_biotype(embed.read_embeddings(embedding))
    cat = pd.read_parquet(catalogue)
    kept = cat[cat["kept"]].reset_index(drop=True)
    part = kept.iloc[np.array_split(np.arange(len(kept)), n_shards)[shard]]
    # seconds of compiling, largely waiting: under the reading of the gene sets; the solver waits for it
    compiling = (classifier.solver_passes_in_background(settings.device, len(pc))
                 if settings.compile and len(part) else None)
    try:
        return _sweep_shard(pc, part, gene_sets, gene_table, shard, settings, seed, out_shard)
    finally:
        if compiling is not None:
            compiling.join()  # a daemon thread still inside inductor at exit would be stopped mid-way


def _sweep_shard(pc: pd.DataFrame, part: pd.DataFrame, gene_sets: Sequence[PathLike], gene_table: PathLike | None,
                 shard: int, settings: sweep.SweepSettings, seed: int, out_shard: PathLike) -> int:
    """:func:`sweep_properties` after its inputs are read: fit the properties of ``part`` on ``pc``."""
    n_shards, folds = settings.shards, settings.folds
    sets = _read_gene_sets(gene_sets, gene_table, terms=part)  # only this shard's sets
    genes = pc["ensembl_id"].to_numpy()
    # an embedding that covers fewer genes than the catalogue's model (an external one) may leave a
    # property with too few members or non-members for the folds: it gets a row with NaN AUC
    y = sweep.memberships(sets, part, genes)
    n_pos = np.asarray(y.sum(1)).ravel()
    fit = (n_pos >= folds) & (len(genes) - n_pos >= folds)
    if not fit.all():
        log.warning("%d of %d properties have fewer than %d members or non-members among this embedding's %d "
                    "genes: AUC NaN", int((~fit).sum()), len(part), folds, len(genes))
    with timed(f"sweep shard {shard + 1}/{n_shards}: {int(fit.sum())} properties on {len(pc)} protein-coding "
               f"genes x {len(pc['embedding'].iloc[0])} dimensions"):
        res = sweep.run_sweep(embed.embedding_matrix(pc), genes, sets, part[fit], folds=folds, c=settings.C,
                              seed=seed, batch_size=settings.batch_size, device=settings.device,
                              compile=settings.compile,
                              max_iter=settings.max_iter, score_tol=settings.score_tol,
                              labels=y[np.flatnonzero(fit)])
    table = res.auc.merge(res.classifiers, on=["source", "term_id"], how="left", validate="one_to_one")
    if not fit.all():
        skipped = part.loc[~fit, ["source", "term_id", "term_name"]].assign(
            n_positive=n_pos[~fit], auc=np.nan, average_precision=np.nan, n_iter=0, converged=False)
        table = pd.concat([table, skipped], ignore_index=True)
        order = part[["source", "term_id"]].reset_index(drop=True).reset_index()
        table = table.merge(order, on=["source", "term_id"]).sort_values("index").drop(columns="index")
    write_parquet(pa.Table.from_pandas(table, preserve_index=False), out_shard)
    return len(table)


def gather_sweep(
    *,
    shards: Sequence[PathLike],
    catalogue: PathLike,
    model_name: str,
    out_auc: PathLike,
    out_classifiers: PathLike,
    out_plot: PathLike,
) -> dict[str, Any]:
    """Join the sweep's shards: sweep/{model}/auc.parquet, classifiers.parquet and the AUC plot.

    ``auc.parquet``: source, term_id, term_name, n_positive, auc,
    average_precision (the contract), then n_iter and converged.
    ``classifiers.parquet``: source, term_id, intercept, coef, precision_{t},
    n_called_{t}.
    """
    parts = pd.concat([t for t in (pd.read_parquet(p) for p in shards) if len(t)], ignore_index=True)
    kept = pd.read_parquet(catalogue).query("kept")
    missing = set(zip(kept["source"], kept["term_id"])) - set(zip(parts["source"], parts["term_id"]))
    if missing or len(parts) != len(kept):
        raise InputError(f"{len(shards)} sweep shards hold {len(parts)} properties, the catalogue {catalogue} keeps "
                         f"{len(kept)} (missing e.g. {sorted(missing)[:3]})")
    auc_cols = [*sweep.AUC_COLUMNS, "n_iter", "converged"]
    auc = parts[auc_cols]
    clf = parts[["source", "term_id", *[c for c in parts.columns if c not in auc_cols]]]
    write_parquet(pa.Table.from_pandas(auc, preserve_index=False), out_auc)
    write_parquet(pa.Table.from_pandas(clf, preserve_index=False), out_classifiers)
    plots.auc_plot(auc, out_plot, title=f"{model_name}: {len(auc)} properties, median AUC {auc['auc'].median():.3f}")
    stats = {"properties": int(len(auc)), "median_auc": float(auc["auc"].median()),
             "not_converged": int((~auc["converged"]).sum()),
             "median_auc_by_source": auc.groupby("source")["auc"].median().round(4).to_dict()}
    log.info("sweep: %s", stats)
    return stats


def compare_embeddings(
    *,
    aucs: dict[str, PathLike],
    baselines: Sequence[str],
    out_comparison: PathLike,
    out_distribution: PathLike,
    out_plot: PathLike,
) -> pd.DataFrame:
    """Paired comparison of every embedding's property AUCs against every baseline.

    Outputs: sweep/comparison.tsv (:data:`generain.baselines.COMPARISON_COLUMNS`:
    paired Wilcoxon signed-rank test per source and overall),
    sweep/auc_distribution.tsv (median and quartiles per embedding and source),
    sweep/comparison.png (AUC per source, one box per embedding).
    """
    tables = {name: pd.read_parquet(path) for name, path in aucs.items()}
    comparison = compare_aucs(tables, baselines=list(baselines))
    dist = auc_distribution_table(tables)
    with atomic_path(out_comparison) as tmp:
        comparison.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    with atomic_path(out_distribution) as tmp:
        dist.to_csv(tmp, sep="\t", index=False, float_format="%.4f")
    n = min(len(t) for t in tables.values())
    plots.embedding_comparison_plot(tables, out_plot, title=f"ROC AUC per property source ({n}+ properties each)")
    log.info("embedding comparison (all sources):\n%s",
             comparison[comparison["source"] == ALL_SOURCES].to_string(index=False))
    return comparison
