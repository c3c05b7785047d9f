"""Rule summarize_run: the headline figures of every stage in summary.json.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import pyarrow.compute as pac
import pyarrow.parquet as pq

from .. import tokenize
from ..utils import PathLike, write_json

log = logging.getLogger(__name__)


def summarize_run(
    *,
    run_name: str,
    ingest_reports: Sequence[PathLike],
    qc_table: PathLike,
    normalized_genes: dict[str, PathLike],
    vocab: PathLike,
    index: PathLike,
    train_summaries: dict[str, PathLike],
    auc: dict[str, PathLike],
    predictions: dict[str, PathLike],
    species_summaries: dict[str, PathLike],
    out_summary: PathLike,
    catalogues: dict[str, PathLike] | None = None,
    comparison: PathLike | None = None,
    silhouettes: dict[str, PathLike] | None = None,
    contextual: dict[str, PathLike] | None = None,
    perturbation: dict[tuple[str, str], tuple[PathLike, PathLike]] | None = None,
    attention: dict[str, PathLike] | None = None,
    finetune: dict[tuple[str, str], PathLike] | None = None,
) -> dict[str, Any]:
    """Collect each stage's headline figures into summary.json (keys in the README).

    ``normalized_genes`` maps each species to its normalize/{species}/genes.tsv;
    ``perturbation`` maps (run, model) to its gene_shifts and sample_shifts tables; ``finetune``
    maps (model, task) to its metrics.json.
    """
    q = pd.read_parquet(qc_table)
    reasons: dict[str, int] = {}
    for r in q["reason"].dropna():
        for part in r.split("; "):
            reasons[part] = reasons.get(part, 0) + 1
    genes = pd.concat([pd.read_csv(p, sep="\t").assign(species=sp) for sp, p in normalized_genes.items()],
                      ignore_index=True)
    v = tokenize.read_vocab(vocab)
    idx = pd.read_parquet(index)
    out: dict[str, Any] = {
        "run": run_name,
        "ingest": [json.loads(Path(p).read_text()) for p in ingest_reports],
        "qc": {"samples": int(len(q)), "passed": int(q["passed"].sum()), "failed": int((~q["passed"]).sum()),
               "failure_reasons": reasons,
               "passed_by_series": q.groupby("series_id")["passed"].sum().astype(int).to_dict()},
        "vocab": {"size": int(len(v)), "genes": int((v["biotype"] != "special").sum()),
                  "by_biotype": v.loc[v["biotype"] != "special", "biotype"].value_counts().to_dict(),
                  "genes_after_filters": int(genes["kept"].sum()), "genes_before_filters": int(len(genes)),
                  "by_species": v.loc[v["biotype"] != "special", "species"].value_counts().to_dict(),
                  "train_samples": int((idx["split"] == "train").sum()),
                  "validation_samples": int((idx["split"] == "validation").sum())},
        "train": {}, "sweep": {}, "lncrna": {}, "species": {},
    }
    for model, path in train_summaries.items():
        out["train"][model] = json.loads(Path(path).read_text())
    for model, path in auc.items():
        a = pd.read_parquet(path)
        out["sweep"][model] = {"properties": int(len(a)), "median_auc": round(float(a["auc"].median()), 4),
                               "median_auc_by_source": a.groupby("source")["auc"].median().round(4).to_dict(),
                               "median_average_precision": round(float(a["average_precision"].median()), 4)}
        if "converged" in a:
            out["sweep"][model]["not_converged"] = int((~a["converged"]).sum())
    for model, path in (catalogues or {}).items():
        cat = pd.read_parquet(path)
        out["sweep"].setdefault(model, {})["catalogue"] = {
            "gene_sets": int(len(cat)), "kept": int(cat["kept"].sum()),
            "near_duplicates": int(cat["jaccard_duplicate_of"].notna().sum()),
            "not_drawn": int(cat["reason"].fillna("").str.startswith("not drawn").sum())}
    if comparison is not None:
        cmp_ = pd.read_csv(comparison, sep="\t")
        cmp_ = cmp_[cmp_["source"] == "all"]
        out["sweep_comparison"] = [
            {"embedding": r.embedding, "baseline": r.baseline, "properties": int(r.properties),
             "median_auc_embedding": round(float(r.median_auc_embedding), 4),
             "median_auc_baseline": round(float(r.median_auc_baseline), 4),
             "wins": round(float(r.wins), 4), "p_value": None if pd.isna(r.p_value) else float(r.p_value)}
            for r in cmp_.itertuples()]
    for model, path in predictions.items():
        meta = pq.read_metadata(path)
        lnc = pq.read_table(path, columns=["ensembl_id", "term_id"])
        out["lncrna"][model] = {"predictions": int(meta.num_rows),
                                "lncrnas": int(pac.count_distinct(lnc["ensembl_id"]).as_py()),
                                "properties": int(pac.count_distinct(lnc["term_id"]).as_py())}
    for model, path in species_summaries.items():
        s = pd.read_csv(path, sep="\t")
        out["species"][model] = {f"{r.setting}_{r.split}": {"pairs": int(r.pairs), "top1": round(float(r.top1), 4),
                                                              "top10": round(float(r.top10), 4), "mrr": round(float(r.mrr), 4)}
                                 for r in s.itertuples()}
    out["samples"] = {}
    for model, path in (silhouettes or {}).items():
        sil = pd.read_csv(path, sep="\t")
        out["samples"][model] = {
            f"{r.space}_{r.species}_{r.labels}": None if pd.isna(r.silhouette) else round(float(r.silhouette), 4)
            for r in sil.itertuples()}
    out["contextual"] = {}
    for model, path in (contextual or {}).items():
        n = pq.read_table(path, columns=["n_samples"])["n_samples"].to_numpy()
        out["contextual"][model] = {"genes": int(len(n)), "median_samples_per_gene": float(np.median(n)) if len(n) else 0}
    out["perturbation"] = {}
    if perturbation:
        from ..perturb import steadied_genes  # imports torch: only when there are perturbation runs
    for (run, model), (genes_path, samples_path) in (perturbation or {}).items():
        g = pd.read_parquet(genes_path)
        smp = pd.read_parquet(samples_path)
        top = g.head(10)
        out["perturbation"].setdefault(run, {})[model] = {
            "samples": int(len(smp)), "genes": int(len(g)), "genes_fdr_0.05": int((g["fdr"] < 0.05).sum()),
            "genes_fdr_normal_0.05": int((g["fdr_normal"] < 0.05).sum()),
            "genes_fdr_normal_less_0.05": int((g["fdr_normal_less"] < 0.05).sum()),
            "median_sample_shift": round(float(smp["shift"].median()), 6),
            "median_null_sample_shift": round(float(smp["null_mean_shift"].median()), 6),
            "top_genes": [{"symbol": r.symbol, "ensembl_id": r.ensembl_id, "mean_shift": round(float(r.mean_shift), 6),
                           "excess_shift": round(float(r.excess_shift), 6), "fdr": round(float(r.fdr), 4),
                           "fdr_normal": None if pd.isna(r.fdr_normal) else round(float(r.fdr_normal), 6)}
                          for r in top.itertuples()],
            "steadied_genes": [{"symbol": r.symbol, "ensembl_id": r.ensembl_id,
                                "mean_shift": round(float(r.mean_shift), 6),
                                "excess_shift": round(float(r.excess_shift), 6),
                                "fdr_normal_less": round(float(r.fdr_normal_less), 6)}
                               for r in steadied_genes(g, 10).itertuples()]}
    out["attention"] = {}
    for model, path in (attention or {}).items():
        h = pd.read_csv(path, sep="\t")
        enriched = h["enriched"].astype(bool)
        out["attention"][model] = {"gene_set": str(h["gene_set"].iloc[0]), "heads": int(len(h)),
                                   "enriched_heads": int(enriched.sum()),
                                   "enriched_fraction": round(float(enriched.mean()), 4),
                                   "median_entropy_ratio": round(float((h["entropy"] / h["uniform_entropy"]).median()), 4)}
    out["finetune"] = {}
    for (model, task), path in (finetune or {}).items():
        m = json.loads(Path(path).read_text())
        out["finetune"].setdefault(model, {})[task] = {k: m[k] for k in m if k != "per_fold"}
    write_json(out, out_summary)
    return out
