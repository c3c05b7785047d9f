"""Figures of the report: QC, loss curve, AUC distributions, ortholog ranks."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd

from .utils import atomic_path


def _pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, imported on first use: data-path jobs that never plot start
    ~0.5 s faster, which adds up over hundreds of streaming shard jobs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike[str], *, fmt: str = "png", dpi: int = 120) -> None:
    plt = _pyplot()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format=fmt)
    plt.close(fig)


def qc_plot(qc: pd.DataFrame, path: str | os.PathLike[str], *, min_total_counts: int, min_detected_genes: int) -> None:
    """Scatter of total counts vs detected genes per sample, by series, failing samples marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    groups = qc["series_id"].where(qc["series_id"] != "", qc["dataset"])
    for name, sub in qc.groupby(groups):
        for passed, marker in ((True, "o"), (False, "x")):
            s = sub[sub["passed"] == passed]
            if len(s):
                ax.scatter(s["total_counts"], s["detected_genes"], marker=marker, s=18, alpha=0.8,
                           label=f"{name} ({'pass' if passed else 'fail'}, n={len(s)})")
    ax.axvline(min_total_counts, color="grey", ls="--", lw=1)
    ax.axhline(min_detected_genes, color="grey", ls=":", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("total counts (reads)")
    ax.set_ylabel("detected genes (count > 0)")
    ax.set_title(f"Sample QC: {int(qc['passed'].sum())} of {len(qc)} samples pass")
    ax.legend(fontsize=7, loc="best")
    _save(fig, path)


def loss_plot(metrics: pd.DataFrame, path: str | os.PathLike[str], *, title: str, vocab_size: int | None = None) -> None:
    """Train and validation loss per epoch; with ``vocab_size``, the loss of a uniform guess, ln(V)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    if vocab_size:
        ax.axhline(np.log(vocab_size), color="grey", ls="--", lw=1, label=f"uniform guess, ln({vocab_size})")
    for col in ("train_loss", "val_loss"):
        if col in metrics and metrics[col].notna().any():
            ax.plot(metrics["epoch"], metrics[col], marker="o", ms=3, label=col.replace("_", " "))
    ax.set_xlabel("epoch")
    ax.set_ylabel("cross-entropy (nats per token)")
    ax.set_title(title)
    ax.legend()
    _save(fig, path)


def auc_plot(auc: pd.DataFrame, path: str | os.PathLike[str], *, title: str) -> None:
    """Box plot of cross-validated ROC AUC per property source; 0.5 = chance."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    sources = sorted(auc["source"].unique())
    data = [auc.loc[auc["source"] == s, "auc"].to_numpy() for s in sources]
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(range(1, len(sources) + 1), [f"{s}\n(n={len(d)})" for s, d in zip(sources, data)])
    ax.axhline(0.5, color="grey", ls="--", lw=1)
    ax.set_ylabel("ROC AUC (5-fold CV)")
    ax.set_title(title)
    _save(fig, path)


def rank_plot(ranks: dict[str, pd.DataFrame], path: str | os.PathLike[str], *, title: str) -> None:
    """Rank distributions of the true ortholog: cumulative fraction of pairs with rank <= k.

    Two panels, held-out pairs and all pairs; one line per setting (``ranks``
    maps a name to a table with split and rank); shuffled nulls dashed.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    bases = list(dict.fromkeys(n.removesuffix("_shuffled") for n in ranks))
    for ax, split in zip(axes, ("test", "all")):
        for name, df in ranks.items():
            r = np.sort((df if split == "all" else df.loc[df["split"] == split])["rank"].to_numpy())
            if r.size:
                base = name.removesuffix("_shuffled")
                ax.step(r, np.arange(1, r.size + 1) / r.size, where="post", label=f"{name} (n={r.size})",
                        color=colors[bases.index(base) % len(colors)], ls="--" if name != base else "-")
        ax.set_xscale("log")
        ax.set_xlabel("rank of the true ortholog")
        ax.set_title("held-out pairs" if split == "test" else "all pairs")
        ax.axvline(10, color="grey", lw=0.6, ls=":")
    axes[0].set_ylabel("fraction of pairs with rank <= k")
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    _save(fig, path)


def embedding_comparison_plot(aucs: dict[str, pd.DataFrame], path: str | os.PathLike[str], *, title: str) -> None:
    """Grouped box plots of ROC AUC per property source, one box per embedding; 0.5 = chance.

    ``aucs`` maps embedding name -> AUC table (source, term_id, auc); NaN AUCs
    are left out. Boxes of one source sit side by side in the order of ``aucs``.
    """
    plt = _pyplot()
    sources = sorted(set().union(*(df["source"].unique() for df in aucs.values()))) if aucs else []
    names = list(aucs)
    width = 0.8 / max(len(names), 1)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.0 + 0.45 * len(sources) * max(len(names), 1)), 4.5))
    for j, name in enumerate(names):
        df = aucs[name]
        data, positions = [], []
        for i, s in enumerate(sources):
            a = df.loc[df["source"] == s, "auc"].dropna().to_numpy()
            if a.size:
                data.append(a)
                positions.append(i + (j - (len(names) - 1) / 2) * width)
        color = colors[j % len(colors)]
        if data:
            ax.boxplot(data, positions=positions, widths=width * 0.9, patch_artist=True, showfliers=True,
                       boxprops={"facecolor": color, "alpha": 0.6}, medianprops={"color": "black"},
                       flierprops={"markersize": 2, "markeredgecolor": color})
        ax.plot([], [], marker="s", ls="", color=color, alpha=0.6, label=f"{name} (n={int(df['auc'].notna().sum())})")
    ax.set_xticks(range(len(sources)), sources)
    ax.set_xlim(-0.6, len(sources) - 0.4)
    ax.axhline(0.5, color="grey", ls="--", lw=1)
    ax.set_xlabel("property source")
    ax.set_ylabel("ROC AUC (cross-validated)")
    ax.set_title(title)
    if names:
        ax.legend(fontsize=7, loc="best")
    _save(fig, path)


def gene_map_plot(coords: pd.DataFrame, path: str | os.PathLike[str], *, title: str) -> None:
    """Scatter of a 2-D gene map (columns list, symbol or token, x, y), coloured by list, genes labelled.

    The format follows the file suffix (``.png`` or ``.svg``).
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 5))
    for name, sub in coords.groupby("list", sort=False):
        ax.scatter(sub["x"], sub["y"], s=28, alpha=0.85, label=f"{name} (n={len(sub)})")
        for r in sub.itertuples():
            ax.annotate(r.symbol or r.token, (r.x, r.y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("dimension 1")
    ax.set_ylabel("dimension 2")
    ax.set_title(title)
    ax.legend(fontsize=8)
    suffix = os.fspath(path).rsplit(".", 1)[-1].lower()
    if suffix not in ("png", "svg"):
        plt.close(fig)
        raise ValueError(f"{path}: the map is saved as .png or .svg")
    _save(fig, path, fmt=suffix, dpi=150)


def sample_map_plot(maps: dict[str, pd.DataFrame], path: str | os.PathLike[str], *, title: str) -> None:
    """2-D sample maps side by side (one row per map: e.g. the model's sample embedding and the expression PCA),
    coloured by dataset (left) and by series (right).

    ``maps``: name -> frame with x, y, dataset, series_id.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(len(maps), 2, figsize=(10, 4.2 * len(maps)), squeeze=False)
    for row, (name, m) in zip(axes, maps.items()):
        for ax, col in zip(row, ("dataset", "series_id")):
            for label, sub in m.groupby(m[col].astype(str), sort=True):
                ax.scatter(sub["x"], sub["y"], s=14, alpha=0.8, label=f"{label} (n={len(sub)})")
            ax.set_title(f"{name}, by {col.replace('_id', '')}", fontsize=9)
            ax.set_xlabel("PC 1")
            ax.set_ylabel("PC 2")
            ax.legend(fontsize=6, loc="best", markerscale=1.5)
    fig.suptitle(title, fontsize=10)
    _save(fig, path)


def perturbation_plot(genes: pd.DataFrame, path: str | os.PathLike[str], *, title: str, top: int = 25) -> None:
    """Two bar panels of a gene-shift table, each gene's bar beside its rank-matched null's mean (dots).

    Left: its first ``top`` genes (its order: by p-value, then shift above the null), red where ``fdr`` <
    0.05. Right: the ``top`` genes shifted furthest below the null (:func:`generain.perturb.steadied_genes`),
    red where ``fdr_normal_less`` < 0.05.
    """
    from .perturb import steadied_genes

    plt = _pyplot()
    panels = ((genes.head(top), "fdr", "shifted most (red: FDR < 0.05)"),
              (steadied_genes(genes, top), "fdr_normal_less", "shifted least vs the null (red: FDR < 0.05)"))
    n = max(len(t) for t, _, _ in panels)
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.22 * n + 1.8))
    for ax, (t, fdr, label) in zip(axes, panels):
        t = t.iloc[::-1]
        y = np.arange(len(t))
        labels = [s or e for s, e in zip(t["symbol"].fillna(""), t["ensembl_id"])]
        colors = ["C3" if f < 0.05 else "C0" for f in t[fdr].fillna(1.0)]
        ax.barh(y, t["mean_shift"], color=colors, label=label)
        ax.scatter(t["null_mean_shift"], y, color="black", s=10, zorder=3, label="rank-matched null (mean)")
        ax.set_yticks(y, labels, fontsize=7)
        ax.set_xlabel("mean cosine shift of the gene's hidden state (1 - cos)")
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


def attention_plot(heads: pd.DataFrame, path: str | os.PathLike[str], *, title: str) -> None:
    """Layer x head heat maps: log2 enrichment of attention to the gene set (heads ``enriched`` starred), and
    entropy relative to uniform attention."""
    plt = _pyplot()
    n_layer, n_head = int(heads["layer"].max()), int(heads["head"].max())
    enr = np.full((n_layer, n_head), np.nan)
    ent = np.full((n_layer, n_head), np.nan)
    star = np.zeros((n_layer, n_head), bool)
    for r in heads.itertuples():
        enr[r.layer - 1, r.head - 1] = np.log2(r.enrichment) if r.enrichment > 0 else np.nan
        ent[r.layer - 1, r.head - 1] = r.entropy / r.uniform_entropy if r.uniform_entropy > 0 else np.nan
        star[r.layer - 1, r.head - 1] = bool(r.enriched)
    fig, axes = plt.subplots(1, 2, figsize=(2.2 + 1.1 * n_head * 2, 1.2 + 0.55 * n_layer))
    lim = float(np.nanmax(np.abs(enr))) if np.isfinite(enr).any() else 1.0
    for ax, m, cmap, label, vmin, vmax in ((axes[0], enr, "RdBu_r", "log2 enrichment", -lim, lim),
                                             (axes[1], ent, "viridis", "entropy / uniform", 0, 1)):
        im = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
        ax.set_xticks(range(n_head), [str(h + 1) for h in range(n_head)])
        ax.set_yticks(range(n_layer), [str(layer + 1) for layer in range(n_layer)])
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        fig.colorbar(im, ax=ax, label=label, shrink=0.8)
    for i, j in zip(*np.nonzero(star)):
        axes[0].text(j, i, "*", ha="center", va="center", fontsize=12)
    axes[0].set_title("attention to the set vs its share", fontsize=9)
    axes[1].set_title("attention entropy", fontsize=9)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)


def finetune_plot(per_fold: pd.DataFrame, path: str | os.PathLike[str], *, title: str) -> None:
    """Per-fold AUC (and, where given, accuracy and macro F1) of the fine-tuned classifier beside its baseline."""
    plt = _pyplot()
    metrics = [m for m in ("auc", "accuracy", "macro_f1") if m in per_fold and per_fold[m].notna().any()]
    methods = list(dict.fromkeys(per_fold["method"]))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.2), squeeze=False)
    for ax, m in zip(axes[0], metrics):
        for i, method in enumerate(methods):
            vals = per_fold.loc[per_fold["method"] == method, m].to_numpy(dtype=float)
            ax.scatter(np.full(len(vals), i) + np.linspace(-0.1, 0.1, len(vals)), vals, s=18)
            ax.hlines(np.nanmean(vals), i - 0.25, i + 0.25, color="black")
        ax.set_xticks(range(len(methods)), methods, fontsize=8)
        ax.set_xlim(-0.6, len(methods) - 0.4)
        ax.set_ylim(0, 1.02)
        ax.set_ylabel(m.replace("_", " "))
        if m == "auc":
            ax.axhline(0.5, color="grey", lw=0.6, ls=":")
    fig.suptitle(title, fontsize=9)
    _save(fig, path)
