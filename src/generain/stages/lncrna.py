"""Rule predict_lncrna: each property classifier applied to every lncRNA.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from .. import embed, lncrna, sweep
from ..utils import InputError, PathLike, atomic_path, timed

log = logging.getLogger(__name__)


def predict_lncrna(
    *,
    embedding: PathLike,
    classifiers: PathLike,
    catalogue: PathLike,
    top_k: int,
    properties_per_batch: int,
    out_predictions: PathLike,
    out_top: PathLike,
) -> int:
    """Apply each property's classifier, refit on all protein-coding genes, to every lncRNA.

    Outputs: lncrna/{model}/predictions.parquet (ensembl_id, symbol, source,
    term_id, probability; streamed in row groups of whole properties) and
    lncrna/{model}/top_predictions.tsv (each lncRNA's ``top_k`` properties with
    the precision the cross-validation estimates at that probability: members
    among protein-coding genes whose out-of-fold probability reaches the grid
    value just below it).
    """
    table = embed.read_embeddings(embedding)
    _, lnc = embed.split_by_biotype(table)
    if len(lnc) == 0:
        raise InputError(f"{embedding}: the vocabulary has no lncRNA genes to predict")
    clf = pd.read_parquet(classifiers)
    names = pd.read_parquet(catalogue, columns=["source", "term_id", "term_name"])
    props = clf[["source", "term_id"]].merge(names, on=["source", "term_id"], how="left")
    coef = np.stack(clf["coef"].to_numpy()).astype(np.float32)
    icpt = clf["intercept"].to_numpy(np.float32)
    x = embed.embedding_matrix(lnc)
    kw = dict(coef=coef, intercept=icpt, properties=props, lnc_embedding=x, lnc_ids=lnc["ensembl_id"].to_numpy(),
              lnc_symbols=lnc["symbol"].to_numpy(), properties_per_batch=properties_per_batch)
    with timed(f"lncRNA predictions: {len(lnc)} lncRNAs x {len(clf)} properties"):
        rows = lncrna.write_predictions(out_predictions, **kw)
    # precision estimated at the grid probability just below each prediction (the sweep's precision_{t} columns)
    curve = clf[sweep.precision_columns()].to_numpy(np.float64)  # rows in the order of props
    top = lncrna.top_predictions(k=top_k, precision=(sweep.PRECISION_GRID, curve), **kw)
    with atomic_path(out_top) as tmp:
        top.to_csv(tmp, sep="\t", index=False, float_format="%.4g")
    log.info("wrote %d predictions and the top %d properties of %d lncRNAs", rows, top_k, len(lnc))
    return rows
