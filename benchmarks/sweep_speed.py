"""Speed of the batched property sweep against a scikit-learn loop, side by side in one run.

The workload of the issue: 19,000 protein-coding genes x 200 dimensions,
5,000 properties (gene sets of 10-500 genes), stratified 5-fold CV of an L2
logistic regression (C = 1) per property. The embedding and the properties are
generated with planted structure (``generain.simulate.planted_properties``:
gene modules, noisy directions, random sets), so the solver meets easy and hard problems.

Both sides use the same folds. The scikit-learn side is the per-property loop
a user would write, ``make_pipeline(StandardScaler(), LogisticRegression(C=1,
max_iter=1000))`` (lbfgs, scikit-learn's default solver), run on a sample of
the properties and scaled to all of them; the batched side runs every property
(``generain.sweep.run_sweep``). The two are measured in alternation (sklearn
sample, batched, sklearn sample again) so that machine noise hits both.

    python benchmarks/sweep_speed.py                       # the issue's workload
    python benchmarks/sweep_speed.py --properties 500      # quicker
    python benchmarks/sweep_speed.py --device cuda         # GPU solver
    python benchmarks/sweep_speed.py --tol 1e-4            # scikit-learn's lbfgs tolerance
    python benchmarks/sweep_speed.py --tolerance-sweep 1e-4,3e-5,2e-5,1e-5   # accuracy per tolerance
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from generain import classifier, simulate, sweep


def sklearn_loop(x: np.ndarray, y: np.ndarray, folds: np.ndarray, rows: np.ndarray) -> tuple[float, np.ndarray]:
    t0 = time.perf_counter()
    aucs = []
    for j in rows:
        a = []
        for f in range(int(folds.max()) + 1):
            tr, te = folds[j] != f, folds[j] == f
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000)).fit(x[tr], y[j, tr])
            a.append(roc_auc_score(y[j, te], clf.predict_proba(x[te])[:, 1]))
        aucs.append(np.mean(a))
    return time.perf_counter() - t0, np.array(aucs)


def optimum_aucs(x: np.ndarray, y: np.ndarray, folds: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Cross-validated AUC at the optimum itself (newton-cholesky, tol 1e-8): the agreement reference."""
    out = []
    for j in rows:
        a = []
        for f in range(int(folds.max()) + 1):
            tr, te = folds[j] != f, folds[j] == f
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, solver="newton-cholesky", tol=1e-8))
            a.append(roc_auc_score(y[j, te], clf.fit(x[tr], y[j, tr]).predict_proba(x[te])[:, 1]))
        out.append(np.mean(a))
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--genes", type=int, default=19000)
    ap.add_argument("--dim", type=int, default=200)
    ap.add_argument("--properties", type=int, default=5000)
    ap.add_argument("--sklearn-sample", type=int, default=30, help="properties timed with scikit-learn (x2 rounds)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tol", type=float, default=3e-5, help="solver tolerance (default: the sweep's, 3e-5)")
    ap.add_argument("--tolerance-sweep", default="",
                    help="comma-separated tolerances: instead of the timing, cross-validate only the sampled "
                         "properties at each and report iterations and |dAUC| to the optimum")
    a = ap.parse_args()

    x, y = simulate.planted_properties(a.genes, a.dim, a.properties, seed=a.seed)
    genes = np.array([f"G{i}" for i in range(a.genes)])
    props = pd.DataFrame({"source": "S", "term_id": [f"T{j:05d}" for j in range(a.properties)], "term_name": ""})
    rows_j, cols_i = np.nonzero(y)
    sets = pd.DataFrame({"source": "S", "term_id": props["term_id"].to_numpy()[rows_j], "term_name": "",
                         "ensembl_id": genes[cols_i]})
    seeds = np.array([classifier.property_seed(a.seed, "S", t) for t in props["term_id"]], dtype=np.uint64)
    folds = classifier.stratified_folds(y, n_folds=5, seeds=seeds)
    rng = np.random.default_rng(a.seed + 1)
    sample = np.sort(rng.choice(a.properties, min(a.sklearn_sample, a.properties), replace=False))

    if a.tolerance_sweep:
        opt = optimum_aucs(x, y, folds, sample)
        gm = classifier.GeneMatrix(x, device=a.device)
        print("| tol | iterations median / max | max \\|ΔAUC\\| to the optimum | within 0.01 |")
        print("|---|---|---|---|")
        for tol in (float(t) for t in a.tolerance_sweep.split(",")):
            cv = classifier.cross_validate(gm, y[sample], seeds[sample], n_folds=5, c=1.0, tol=tol)
            d = np.abs(cv.auc - opt)
            print(f"| {tol:g} | {np.median(cv.n_iter):g} / {cv.n_iter.max()} | {d.max():.4f} | {np.mean(d <= 0.01):.0%} |")
        return

    t_sk1, auc_sk = sklearn_loop(x, y, folds, sample[: len(sample) // 2])
    t0 = time.perf_counter()
    res = sweep.run_sweep(x, genes, sets, props, folds=5, c=1.0, seed=a.seed, batch_size=a.batch_size,
                          device=a.device, tol=a.tol)
    if a.device.startswith("cuda"):
        torch.cuda.synchronize()
    t_ours = time.perf_counter() - t0
    t_sk2, auc_sk2 = sklearn_loop(x, y, folds, sample[len(sample) // 2:])
    per_sk = (t_sk1 + t_sk2) / len(sample)
    per_ours = t_ours / a.properties
    ours_auc = res.auc["auc"].to_numpy()[sample]
    d_auc = np.abs(ours_auc - np.concatenate([auc_sk, auc_sk2]))
    d_opt = np.abs(ours_auc - optimum_aucs(x, y, folds, sample))
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")),
               platform.processor())
    print(f"machine: {cpu}, {torch.get_num_threads()} torch threads, device {a.device}")
    print(f"workload: {a.genes} genes x {a.dim} dimensions, {a.properties} properties, 5 folds, C = 1")
    print()
    print("| | seconds per property | whole sweep (s) | ratio |")
    print("|---|---|---|---|")
    print(f"| scikit-learn loop, lbfgs ({len(sample)} properties, scaled) | {per_sk:.3f} | "
          f"{per_sk * a.properties:.0f} | 1 |")
    print(f"| batched (generain.sweep.run_sweep, all properties) | {per_ours:.4f} | {t_ours:.1f} | "
          f"{per_sk / per_ours:.1f}x |")
    print()
    print(f"|dAUC| on the {len(sample)} sampled properties against the lbfgs loop (which stops at its own tol): "
          f"median {np.median(d_auc):.4f}, max {d_auc.max():.4f}; against the optimum (newton-cholesky, tol 1e-8): "
          f"median {np.median(d_opt):.4f}, max {d_opt.max():.4f}, {np.mean(d_opt <= 0.01):.0%} within 0.01")
    print(f"solver iterations median {int(res.auc['n_iter'].median())}, max {int(res.auc['n_iter'].max())}; "
          f"not converged {int((~res.auc['converged']).sum())}")


if __name__ == "__main__":
    main()
