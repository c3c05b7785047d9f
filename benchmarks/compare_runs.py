"""Compare two run folders (results/<run>) file by file: byte-identical, equal content, or the largest difference.

Usage: python benchmarks/compare_runs.py RESULTS_A RESULTS_B
Skips logs, benchmarks, checkpoints, Lightning logs, PNG and HTML. Parquet and TSV/CSV tables are compared
column by column (largest absolute difference of numeric and embedding columns), JSON ignoring "seconds",
.npy arrays, HDF5 datasets and model weights (largest |dw|). Used to show that a restructuring leaves the
demo's outputs unchanged (BENCHMARKS.md).
"""
import json, sys
from pathlib import Path
import numpy as np, pandas as pd
a, b = Path(sys.argv[1]), Path(sys.argv[2])
def cmp_frames(fa, fb, name):
    if list(fa.columns) != list(fb.columns) or len(fa) != len(fb):
        return f"{name}: columns/rows differ {list(fa.columns)} {list(fb.columns)} {len(fa)} {len(fb)}"
    worst = 0.0; diffs = []
    for c in fa.columns:
        x, y = fa[c], fb[c]
        if x.dtype == object and len(x) and isinstance(x.iloc[0], (np.ndarray, list)):
            xa, ya = np.stack(x.to_numpy()).astype(float), np.stack(y.to_numpy()).astype(float)
            d = np.nanmax(np.abs(xa - ya)) if xa.size else 0.0
            worst = max(worst, d)
            if d: diffs.append((c, d))
        elif np.issubdtype(x.dtype, np.number):
            xa, ya = x.to_numpy(float), y.to_numpy(float)
            same = (np.isnan(xa) & np.isnan(ya)) | (xa == ya)
            if not same.all():
                d = np.nanmax(np.abs(xa - ya)); worst = max(worst, d); diffs.append((c, d))
        else:
            if not (x.fillna("<NA>").astype(str).to_numpy() == y.fillna("<NA>").astype(str).to_numpy()).all():
                diffs.append((c, "values differ"))
    return f"{name}: identical" if not diffs else f"{name}: {diffs}"
out = []
for rel in sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file()):
    if rel.parts[0] in ("logs", "benchmarks") or "checkpoints" in rel.parts or "lightning_logs" in rel.parts or "tensorboard" in rel.parts or rel.suffix in (".png", ".html"):
        continue
    pa_, pb_ = a / rel, b / rel
    if not pb_.exists():
        out.append(f"{rel}: missing in second"); continue
    if pa_.read_bytes() == pb_.read_bytes():
        out.append(f"{rel}: byte-identical"); continue
    if rel.suffix == ".parquet":
        out.append(cmp_frames(pd.read_parquet(pa_), pd.read_parquet(pb_), str(rel)))
    elif rel.suffix in (".tsv", ".csv"):
        sep = "\t" if rel.suffix == ".tsv" else ","
        out.append(cmp_frames(pd.read_csv(pa_, sep=sep), pd.read_csv(pb_, sep=sep), str(rel)))
    elif rel.suffix == ".json":
        ja, jb = json.loads(pa_.read_text()), json.loads(pb_.read_text())
        def strip(j):
            if isinstance(j, dict): return {k: strip(v) for k, v in j.items() if k != "seconds"}
            if isinstance(j, list): return [strip(v) for v in j]
            return j
        out.append(f"{rel}: {'identical except seconds' if strip(ja) == strip(jb) else 'DIFFERENT'}")
    elif rel.suffix == ".npy":
        xa, xb = np.load(pa_), np.load(pb_)
        out.append(f"{rel}: {'equal arrays' if np.array_equal(xa, xb) else 'DIFFERENT'}")
    elif rel.suffix == ".pt":
        import torch
        sa, sb = torch.load(pa_, weights_only=True), torch.load(pb_, weights_only=True)
        d = max(float((sa["state_dict"][k] - sb["state_dict"][k]).abs().max()) for k in sa["state_dict"])
        out.append(f"{rel}: model max |dw| {d:.3g}, config {'same' if sa['model_config'] == sb['model_config'] else 'DIFFERENT'}")
    elif rel.suffix == ".h5":
        import h5py
        with h5py.File(pa_) as ha, h5py.File(pb_) as hb:
            bad = []
            def visit(name, obj):
                if isinstance(obj, h5py.Dataset):
                    x, y = obj[()], hb[name][()]
                    if not np.array_equal(x, y): bad.append(name)
            ha.visititems(visit)
        out.append(f"{rel}: {'datasets equal' if not bad else 'DIFFERENT ' + str(bad)}")
    else:
        out.append(f"{rel}: bytes differ")
print("\n".join(out))
