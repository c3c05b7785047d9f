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
    python benchmarks/sweep_speed.py --before-grad-tol 3e-5  # also the gradient rule (before 2026-12-05), same run
    python benchmarks/sweep_speed.py --tolerance-sweep 0.05,0.03,g3e-5,g1e-4   # accuracy per tolerance
                                                           # (g: the gradient rule, scikit-learn's lbfgs scaling)
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
    ap.add_argument("--tol", type=float, default=0.03, help="solver score tolerance (default: the sweep's, 0.03)")
    ap.add_argument("--before-grad-tol", type=float, default=None,
                    help="also time the sweep with the gradient stopping rule at this tolerance (the solver's rule "
                         "before 2026-12-05, at 3e-5), alternating with the score rule in the same run")
    ap.add_argument("--before-eager", action="store_true",
                    help="also time the sweep with the solver's elementwise passes in eager PyTorch (compile=False, "
                         "the solver before its torch.compile of 2026-12-05), alternating with the compiled one")
    ap.add_argument("--rounds", type=int, default=1, help="timed runs of each variant, alternated")
    ap.add_argument("--accuracy-extra", type=int, default=0,
                    help="further random properties, beside the timed sample, on which |dAUC| to the optimum is measured")
    ap.add_argument("--tolerance-sweep", default="",
                    help="comma-separated tolerances (gX: the gradient rule at X): instead of the timing, "
                         "cross-validate only the sampled properties at each and report iterations and |dAUC| "
                         "to the optimum")
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
    rest = np.setdiff1d(np.arange(a.properties), sample)
    extra = np.sort(rng.choice(rest, min(a.accuracy_extra, len(rest)), replace=False))

    if a.tolerance_sweep:
        rows = np.concatenate([sample, extra])
        opt = optimum_aucs(x, y, folds, rows)
        gm = classifier.GeneMatrix(x, device=a.device)
        print(f"{len(rows)} properties")
        print("| rule | iterations median / max | \\|ΔAUC\\| to the optimum: median / max | within 0.01 |")
        print("|---|---|---|---|")
        for spec in a.tolerance_sweep.split(","):
            kw = {"grad_tol": float(spec[1:])} if spec.startswith("g") else {"tol": float(spec)}
            cv = classifier.cross_validate(gm, y[rows], seeds[rows], n_folds=5, c=1.0, **kw)
            d = np.abs(cv.auc - opt)
            name = f"gradient {spec[1:]}" if spec.startswith("g") else f"score {spec}"
            print(f"| {name} | {np.median(cv.n_iter):g} / {cv.n_iter.max()} | {np.median(d):.4f} / {d.max():.4f} | "
                  f"{np.mean(d <= 0.01):.0%} |")
        return

    variants = [("score rule, tol %g" % a.tol, {"score_tol": a.tol})]
    if a.before_grad_tol is not None:
        variants.insert(0, ("gradient rule, tol %g (before)" % a.before_grad_tol,
                            {"score_tol": a.tol, "grad_tol": a.before_grad_tol}))
    if a.before_eager:
        variants.insert(0, ("score rule, tol %g, eager passes (before)" % a.tol, {"score_tol": a.tol, "compile": False}))
    # torch.compile of the solver's elementwise passes happens once per process (seconds; inductor keeps its
    # code in a disk cache, so a first run on a machine takes longer)
    t0 = time.perf_counter()
    passes = classifier.solver_passes(a.device, a.genes)  # keyed as the solver's tensors name it ("cuda:0")
    print(f"compile of the solver's passes ({type(passes).__name__}; once per process, in no timing below): "
          f"{time.perf_counter() - t0:.1f} s")
    t_sk1, auc_sk = sklearn_loop(x, y, folds, sample[: len(sample) // 2])
    times: dict[str, list[float]] = {name: [] for name, _ in variants}
    results = {}
    for _ in range(a.rounds):  # alternated, so that machine noise hits every variant
        for name, kw in variants:
            t0 = time.perf_counter()
            results[name] = sweep.run_sweep(x, genes, sets, props, folds=5, c=1.0, seed=a.seed,
                                            batch_size=a.batch_size, device=a.device, **kw)
            if a.device.startswith("cuda"):
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t0)
    t_sk2, auc_sk2 = sklearn_loop(x, y, folds, sample[len(sample) // 2:])
    per_sk = (t_sk1 + t_sk2) / len(sample)
    rows = np.concatenate([sample, extra])
    opt = optimum_aucs(x, y, folds, rows)
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")),
               platform.processor())
    print(f"machine: {cpu}, {torch.get_num_threads()} torch threads, device {a.device}")
    print(f"workload: {a.genes} genes x {a.dim} dimensions, {a.properties} properties, 5 folds, C = 1; "
          f"{a.rounds} round(s), median time")
    print()
    print(f"|dAUC| against the optimum (newton-cholesky, tol 1e-8) on {len(rows)} random properties; against the "
          f"lbfgs loop (which stops at its own tol) on the {len(sample)} timed ones")
    print()
    print("| | seconds per property | whole sweep (s) | ratio to the loop | iterations median / max | "
          "\\|ΔAUC\\| to the optimum: median / max | to the lbfgs loop: median / max |")
    print("|---|---|---|---|---|---|---|")
    print(f"| scikit-learn loop, lbfgs ({len(sample)} properties, scaled) | {per_sk:.3f} | "
          f"{per_sk * a.properties:.0f} | 1 | | | |")
    for name, _ in variants:
        t = float(np.median(times[name]))
        res = results[name].auc
        auc = res["auc"].to_numpy()
        d_opt = np.abs(auc[rows] - opt)
        d_sk = np.abs(auc[sample] - np.concatenate([auc_sk, auc_sk2]))
        print(f"| batched, {name} | {t / a.properties:.4f} | {t:.1f} | {per_sk * a.properties / t:.1f}x | "
              f"{int(res['n_iter'].median())} / {int(res['n_iter'].max())} | "
              f"{np.median(d_opt):.4f} / {d_opt.max():.4f} | {np.median(d_sk):.4f} / {d_sk.max():.4f} |")
        if (~res["converged"]).any():
            print(f"  ({int((~res['converged']).sum())} properties did not converge)")

if __name__ == "__main__":
    main()
