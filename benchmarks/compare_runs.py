"""Compare two run folders (results/<run>) file by file: byte-identical, equal content, or the largest difference.

Usage: python benchmarks/compare_runs.py RESULTS_A RESULTS_B
Skips logs, benchmarks, checkpoints, Lightning logs, PNG and HTML. Parquet and TSV/CSV tables are compared
column by column (largest absolute difference of numeric and embedding columns), JSON ignoring "seconds",
.npy arrays, HDF5 datasets and model weights (largest |dw|). Used to show that a restructuring leaves the
demo's outputs unchanged (BENCHMARKS.md).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

SKIPPED_DIRS = ("checkpoints", "lightning_logs", "tensorboard")


def cmp_frames(fa: pd.DataFrame, fb: pd.DataFrame, name: str) -> str:
    """One line: identical, or the columns that differ with their largest absolute difference."""
    if list(fa.columns) != list(fb.columns) or len(fa) != len(fb):
        return f"{name}: columns/rows differ {list(fa.columns)} {list(fb.columns)} {len(fa)} {len(fb)}"
    diffs = []
    for c in fa.columns:
        x, y = fa[c], fb[c]
        if x.dtype == object and len(x) and isinstance(x.iloc[0], (np.ndarray, list)):
            xa, ya = np.stack(x.to_numpy()).astype(float), np.stack(y.to_numpy()).astype(float)
            d = np.nanmax(np.abs(xa - ya)) if xa.size else 0.0
            if d:
                diffs.append((c, d))
        elif np.issubdtype(x.dtype, np.number):
            xa, ya = x.to_numpy(float), y.to_numpy(float)
            same = (np.isnan(xa) & np.isnan(ya)) | (xa == ya)
            if not same.all():
                diffs.append((c, np.nanmax(np.abs(xa - ya))))
        elif not (x.fillna("<NA>").astype(str).to_numpy() == y.fillna("<NA>").astype(str).to_numpy()).all():
            diffs.append((c, "values differ"))
    return f"{name}: identical" if not diffs else f"{name}: {diffs}"


def _without_seconds(j):
    if isinstance(j, dict):
        return {k: _without_seconds(v) for k, v in j.items() if k != "seconds"}
    if isinstance(j, list):
        return [_without_seconds(v) for v in j]
    return j


def _cmp_h5(pa: Path, pb: Path) -> list[str]:
    import h5py

    bad = []
    with h5py.File(pa) as ha, h5py.File(pb) as hb:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not np.array_equal(obj[()], hb[name][()]):
                bad.append(name)
        ha.visititems(visit)
    return bad


def compare_file(pa: Path, pb: Path, rel: Path) -> str:
    """One line saying how the file ``rel`` of run A compares with the same file of run B."""
    if not pb.exists():
        return f"{rel}: missing in second"
    if pa.read_bytes() == pb.read_bytes():
        return f"{rel}: byte-identical"
    if rel.suffix == ".parquet":
        return cmp_frames(pd.read_parquet(pa), pd.read_parquet(pb), str(rel))
    if rel.suffix in (".tsv", ".csv"):
        sep = "\t" if rel.suffix == ".tsv" else ","
        return cmp_frames(pd.read_csv(pa, sep=sep), pd.read_csv(pb, sep=sep), str(rel))
    if rel.suffix == ".json":
        same = _without_seconds(json.loads(pa.read_text())) == _without_seconds(json.loads(pb.read_text()))
        return f"{rel}: {'identical except seconds' if same else 'DIFFERENT'}"
    if rel.suffix == ".npy":
        return f"{rel}: {'equal arrays' if np.array_equal(np.load(pa), np.load(pb)) else 'DIFFERENT'}"
    if rel.suffix == ".pt":
        import torch

        sa, sb = torch.load(pa, weights_only=True), torch.load(pb, weights_only=True)
        d = max(float((sa["state_dict"][k] - sb["state_dict"][k]).abs().max()) for k in sa["state_dict"])
        config = "same" if sa["model_config"] == sb["model_config"] else "DIFFERENT"
        return f"{rel}: model max |dw| {d:.3g}, config {config}"
    if rel.suffix == ".h5":
        bad = _cmp_h5(pa, pb)
        return f"{rel}: {'datasets equal' if not bad else 'DIFFERENT ' + str(bad)}"
    return f"{rel}: bytes differ"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("results_a", type=Path)
    ap.add_argument("results_b", type=Path)
    args = ap.parse_args()
    a, b = args.results_a, args.results_b
    lines = []
    for rel in sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file()):
        if (rel.parts[0] in ("logs", "benchmarks") or any(d in rel.parts for d in SKIPPED_DIRS)
                or rel.suffix in (".png", ".html")):
            continue
        lines.append(compare_file(a / rel, b / rel, rel))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
