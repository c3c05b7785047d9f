"""Rule qc_samples: GeneRAIN's sample QC over every ingested dataset.

A stage module: paths and typed settings in, files out; it reads neither
Snakemake objects nor the config (see ``generain.stages``).
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import io, plots, qc
from ..utils import InputError, PathLike, write_parquet

log = logging.getLogger(__name__)


def qc_samples(
    *,
    matrices: Sequence[PathLike] = (),
    criteria: qc.QCCriteria,
    out_table: PathLike,
    out_plot: PathLike,
    tables: Sequence[PathLike] = (),
) -> pd.DataFrame:
    """Apply GeneRAIN's sample QC to every ingested dataset.

    ``matrices`` are ingested datasets (QC is evaluated here); ``tables`` are
    QC tables already evaluated by the streaming pass 1 (one per shard,
    :func:`generain.stages.stream.scan_stream_shard`), appended in the order given.

    Output ``out_table``: results/{run}/qc/samples.parquet with the columns of
    :data:`generain.qc.QC_COLUMNS`; ``out_plot``: PNG.

    Raises
    ------
    InputError
        If sample ids repeat across datasets, or no sample passes (the message
        counts each failure reason); nothing is written then.
    """
    frames = []
    for path in matrices:
        s, attrs = io.read_samples(path)
        frames.append(qc.evaluate_samples(
            sample_ids=s["sample_id"].to_numpy(), dataset=np.full(len(s), attrs["dataset"], dtype=object),
            series_id=s["series_id"].to_numpy(), total_counts=s["total_counts"].to_numpy(),
            detected_genes=s["detected_genes"].to_numpy(),
            singlecell_probability=s["singlecell_probability"].to_numpy(), criteria=criteria,
            n_reads=s["n_reads"].to_numpy() if "n_reads" in s else None,
            n_pseudoaligned=s["n_pseudoaligned"].to_numpy() if "n_pseudoaligned" in s else None))
    frames += [pd.read_parquet(p) for p in tables]
    table = pd.concat(frames, ignore_index=True)
    dup = table["sample_id"].duplicated(keep=False)
    if dup.any():
        d = table.loc[dup, ["sample_id", "dataset"]].head(4).to_dict("records")
        raise InputError(f"sample ids repeat across datasets: {d}; rename them in the source files")
    qc.require_passing(table, source=", ".join(map(str, [*matrices, *tables][:3])))
    log.info(qc.failure_summary(table))
    for (ds, series), sub in table.groupby(["dataset", "series_id"]):
        log.info("  %s/%s: %d of %d passed", ds, series, int(sub["passed"].sum()), len(sub))
    write_parquet(pa.Table.from_pandas(table[list(qc.QC_COLUMNS)], schema=qc.QC_SCHEMA, preserve_index=False),
                  out_table)
    plots.qc_plot(table, out_plot, min_total_counts=criteria.min_total_counts,
                  min_detected_genes=criteria.min_detected_genes)
    return table
