"""Rule perturb_genes: one in-silico perturbation run on one model.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``). The method is
:mod:`generain.perturb`.
"""

from __future__ import annotations

import difflib
import logging
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import inference, perturb, plots, tokenize
from ..training.checkpoint import load_model
from ..utils import InputError, PathLike, strip_version, timed, write_parquet
from .samples import corpus_samples

log = logging.getLogger(__name__)


def resolve_genes(vocab: pd.DataFrame, genes: Sequence[str], *, what: str) -> np.ndarray:
    """Token ids of genes named by token, Ensembl id (version ignored) or symbol (exact, then any case).

    Raises
    ------
    InputError
        A gene not in the vocabulary (with close symbols), or a symbol that
        names several tokens; the message starts with ``what``.
    """
    body = vocab[vocab["biotype"] != "special"]
    by_token = dict(zip(body["token"].astype(str), body["token_id"]))
    by_id = dict(zip(body["ensembl_id"].astype(str).map(strip_version), body["token_id"]))
    out = []
    for g in genes:
        if g in by_token:
            out.append(by_token[g])
            continue
        if strip_version(g) in by_id:
            out.append(by_id[strip_version(g)])
            continue
        hits = body[body["symbol"] == g]
        if hits.empty:
            hits = body[body["symbol"].str.upper() == g.upper()]
        if len(hits) == 1:
            out.append(int(hits["token_id"].iloc[0]))
            continue
        if len(hits) > 1:
            raise InputError(f"{what}: gene {g!r} names {len(hits)} vocabulary tokens "
                             f"({', '.join(hits['token'].astype(str).head(5))}); give the token or Ensembl id")
        close = difflib.get_close_matches(g, body["symbol"].astype(str).unique().tolist(), n=3)
        raise InputError(f"{what}: gene {g!r} is not in the model's vocabulary ({len(body)} genes)"
                         + (f"; close symbols: {', '.join(close)}" if close else ""))
    if len(set(out)) != len(out):
        raise InputError(f"{what}: genes {list(genes)} name the same token twice")
    return np.asarray(out, dtype=np.int64)


def perturb_genes(
    *,
    checkpoint: PathLike,
    vocab: PathLike,
    shards: PathLike,
    index: PathLike,
    qc_table: PathLike,
    run: Mapping[str, Any],
    layer: int,
    null_draws: int,
    null_window: int,
    seed: int,
    batch_size: int,
    device: str,
    out_genes: PathLike,
    out_samples: PathLike,
    out_plot: PathLike,
    model_name: str = "",
) -> dict[str, Any]:
    """Perturb a run's genes in its samples and write the shifts.

    ``run``: name, genes, mode, samples ({datasets, series, sample_ids}, each
    optional; every filter given must match). Outputs: ``out_genes``
    (gene_shifts.parquet: ensembl_id, symbol, token, mean_shift,
    null_mean_shift, excess_shift, n_samples, p_value, fdr, z_score,
    p_value_normal, fdr_normal, p_value_less, fdr_less, p_value_normal_less,
    fdr_normal_less; by p_value, then excess_shift, largest first);
    ``out_samples`` (sample_shifts.parquet: sample_id, dataset, series_id,
    position (the first gene's position in the original sequence, -1 if
    absent), shift, null_mean_shift, p_value); ``out_plot`` (top genes).

    Raises
    ------
    InputError
        A gene not in the vocabulary, a selection with no samples, or (delete)
        no selected sample holding the genes; each names the run.
    """
    name = run["name"]
    what = f"perturbation run {name!r}"
    model_type, model = load_model(checkpoint)
    model.to(device)
    v = tokenize.read_vocab(vocab)
    targets = resolve_genes(v, run["genes"], what=what)
    meta = corpus_samples(index, qc_table)
    sel = run.get("samples") or {}
    rows = inference.select_samples(meta, datasets=sel.get("datasets"), series=sel.get("series"),
                                    sample_ids=sel.get("sample_ids"))
    if len(rows) == 0:
        raise InputError(f"{what}: no sample of the corpus ({len(meta)} samples) matches {dict(sel)}; datasets "
                         f"{sorted(meta['dataset'].unique())}, series {sorted(meta['series_id'].unique())[:10]}")
    genes, expr = inference.read_rows(tokenize.TokenShards(shards, meta), rows)
    species = v.set_index("token_id").loc[targets, "species"].unique()
    pool = v.loc[(v["biotype"] != "special") & v["species"].isin(species), "token_id"].to_numpy()
    with timed(f"{what} ({run['mode']} {', '.join(run['genes'])}) on {model_name or model_type}: "
               f"{len(rows)} samples x {null_draws + 1} perturbations"):
        try:
            res = perturb.perturbation_effects(model, model_type, genes, expr, targets, run["mode"], layer=layer,
                                               n_draws=null_draws, window=null_window, pool=pool, seed=seed,
                                               batch_size=batch_size, device=device, vocab_size=len(v))
        except InputError as e:
            raise InputError(f"{what}: {e} ({', '.join(run['genes'])})") from e
    if res.skipped:
        log.warning("%s: %d of %d selected samples do not hold %s and were not perturbed", what, res.skipped,
                    len(rows), ", ".join(run["genes"]))
    info = v.set_index("token_id")
    g = res.genes.assign(ensembl_id=info.loc[res.genes["token"], "ensembl_id"].to_numpy(),
                         symbol=info.loc[res.genes["token"], "symbol"].fillna("").to_numpy(),
                         token_name=info.loc[res.genes["token"], "token"].to_numpy())
    g = g[["ensembl_id", "symbol", "token_name", "mean_shift", "null_mean_shift", "excess_shift", "n_samples",
           "p_value", "fdr", "z_score", "p_value_normal", "fdr_normal", "p_value_less", "fdr_less",
           "p_value_normal_less", "fdr_normal_less"]]
    g = g.rename(columns={"token_name": "token"})
    write_parquet(pa.Table.from_pandas(g, preserve_index=False), out_genes)
    srows = rows[res.samples["row"].to_numpy()]
    first = genes[res.samples["row"].to_numpy()] == targets[0]
    s = meta.iloc[srows][["sample_id", "dataset", "series_id"]].reset_index(drop=True).assign(
        position=np.where(first.any(1), first.argmax(1), -1), shift=res.samples["shift"].to_numpy(),
        null_mean_shift=res.samples["null_mean_shift"].to_numpy(), p_value=res.samples["p_value"].to_numpy())
    write_parquet(pa.Table.from_pandas(s, preserve_index=False), out_samples)
    plots.perturbation_plot(g, out_plot, title=f"{name}: {run['mode']} {', '.join(run['genes'])} in {len(s)} "
                                               f"samples ({model_name or model_type}, layer {layer})")
    log.info("%s: top shifted genes\n%s", what, g.head(10).to_string(index=False))
    log.info("%s: genes shifted furthest below the null\n%s", what,
             perturb.steadied_genes(g, 10).to_string(index=False))
    return {"samples": int(len(s)), "skipped_samples": int(res.skipped), "genes": int(len(g)),
            "genes_fdr_0.05": int((g["fdr"] < 0.05).sum()),
            "genes_fdr_normal_0.05": int((g["fdr_normal"] < 0.05).sum()),
            "genes_fdr_normal_less_0.05": int((g["fdr_normal_less"] < 0.05).sum()),
            "median_sample_shift": float(s["shift"].median()),
            "median_null_sample_shift": float(s["null_mean_shift"].median())}
