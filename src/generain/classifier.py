"""Batched L2 logistic regression: every property's cross-validated classifier at once.

GeneRAIN (Su et al. 2024, Results "Gene embeddings encode gene properties")
measures an embedding by one L2-regularised logistic regression per gene
property (gene set), cross-validated on protein-coding genes. A property's
classifier differs from the next only in its labels, so all of them share the
gene matrix: here thousands of (property, fold) problems are solved together,
with the expensive steps as two matrix products per iteration,
``(genes x dim) @ (dim x problems)`` and its transpose.

Each problem is exactly scikit-learn's
``make_pipeline(StandardScaler(), LogisticRegression(C=C))`` on its training
fold: minimise ``C * sum_i log(1 + exp(-y_i (w . x'_i + b))) + ||w||^2 / 2``
with ``x'`` the features standardised by the training fold's mean and
population standard deviation, and the intercept not penalised. The solver is
L-BFGS (Nocedal & Wright 2006, Algorithm 7.4) whose initial inverse Hessian
is ``(C s n R + I)^-1`` in the eigenbasis of the genes' correlation matrix R
(s = mean of p(1-p) over the training genes: the exact Hessian at the
starting point), with an exact line search by Newton's method in the step
length, which needs no extra matrix product. The elementwise passes over the
(problems x genes) arrays are compiled by torch.compile where a compiler is
available (:func:`solver_passes`). ``tests/test_classifier.py`` checks it
against scikit-learn on the same folds.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from dataclasses import dataclass

import numpy as np
import torch

from .utils import InputError

log = logging.getLogger(__name__)


def _first_line(err: Exception) -> str:
    """An exception's first message line (compiler errors run to pages)."""
    return (str(err).splitlines() or [""])[0]


class _EagerPasses:
    """The solver's elementwise passes over its (n_problems, n_genes) arrays, in eager PyTorch.

    Held-out genes have scores z = -inf, where p = sigmoid(z) is exactly 0.
    """

    @staticmethod
    def direction(dq: torch.Tensor, ym: torch.Tensor, m: torch.Tensor):
        """Row sums of ym dq and m dq^2 (a search direction's score changes dq); the third item
        is what :meth:`line` needs of dq besides dq (here dq^2)."""
        dq2 = dq.square()
        return torch.linalg.vecdot(ym, dq), torch.linalg.vecdot(m, dq2), dq2

    @staticmethod
    def line(z: torch.Tensor, t: torch.Tensor, dq: torch.Tensor, dq2: torch.Tensor):
        """Row sums of p dq and p(1-p) dq^2 with p = sigmoid(z + t dq): the line search's two sums."""
        p = torch.sigmoid_(torch.addcmul(z, t[:, None], dq))
        return torch.linalg.vecdot(p, dq), torch.linalg.vecdot(torch.addcmul(p, p, p, value=-1.0), dq2)

    @staticmethod
    def advance(z: torch.Tensor, t: torch.Tensor, dq: torch.Tensor, ym: torch.Tensor, r: torch.Tensor) -> None:
        """Take the step in place: z += t dq, and r = sigmoid(z) - ym (the residuals at the new scores).

        In place, because a fresh (n_problems, n_genes) array per iteration costs its page faults.
        """
        z.addcmul_(t[:, None], dq)
        torch.sigmoid(z, out=r).sub_(ym)


def _direction_fused(dq: torch.Tensor, ym: torch.Tensor, m: torch.Tensor):
    return (ym * dq).sum(1), (m * dq * dq).sum(1), dq


def _line_fused(z: torch.Tensor, t: torch.Tensor, dq: torch.Tensor, dq2: torch.Tensor):
    p = torch.sigmoid(z + t[:, None] * dq)
    return (p * dq).sum(1), (p * (1 - p) * dq * dq).sum(1)


def _advance_fused(z: torch.Tensor, t: torch.Tensor, dq: torch.Tensor, ym: torch.Tensor, r: torch.Tensor) -> None:
    z.add_(t[:, None] * dq)
    r.copy_(torch.sigmoid(z) - ym)


class _FusedPasses:
    """The same passes compiled by torch.compile, each one loop over the arrays (see :func:`solver_passes`).

    ``direction``'s third item is dq itself (``line`` computes dq^2 in its loop). Should a
    later call fail (a recompile for new guards that does not work), the passes switch to the eager
    ones for good, with one warning; ``line`` then squares dq itself, as the aux it was given may be dq.
    """

    def __init__(self) -> None:
        self.compiled = {"direction": torch.compile(_direction_fused, dynamic=True),
                         "line": torch.compile(_line_fused, dynamic=True),
                         "advance": torch.compile(_advance_fused, dynamic=True)}
        self.failed = False

    def _call(self, name: str, *args):
        # one row (the last problem of a batch) runs eager: dynamo would compile a specialisation of its own
        # for a size of 1 (a second compile per pass, ~1 s per process), to save a few microseconds per call
        if not self.failed and args[0].shape[0] > 1:
            try:
                return self.compiled[name](*args)
            except Exception as err:
                self.failed = True
                log.warning("a compiled pass of the solver failed (%s: %s); eager PyTorch from here on",
                            type(err).__name__, _first_line(err))
        if name == "line":
            z, t, dq, _ = args
            return _EagerPasses.line(z, t, dq, dq.square())
        return getattr(_EagerPasses, name)(*args)

    def direction(self, dq: torch.Tensor, ym: torch.Tensor, m: torch.Tensor):
        return self._call("direction", dq, ym, m)

    def line(self, z: torch.Tensor, t: torch.Tensor, dq: torch.Tensor, dq2: torch.Tensor):
        return self._call("line", z, t, dq, dq2)

    def advance(self, z: torch.Tensor, t: torch.Tensor, dq: torch.Tensor, ym: torch.Tensor, r: torch.Tensor) -> None:
        return self._call("advance", z, t, dq, ym, r)


_PASSES: dict[tuple[str, bool], object] = {}  # (device, n_genes > 4096) -> passes
_PASSES_LOCK = threading.Lock()  # one compile per key, also with solver_passes_in_background


def solver_passes(device: torch.device | str, n_genes: int):
    """The elementwise passes :func:`fit_logistic` uses on ``device``: compiled where possible, else eager.

    The solver's elementwise work is memory-bound and eager PyTorch runs it as
    about 16 passes over the (n_problems, n_genes) arrays per iteration;
    torch.compile fuses them into 4 loops (BENCHMARKS.md, "Property sweep").
    Compiling needs a C++ compiler (CPU) or Triton (GPU) and takes seconds once
    per process and gene-count class (inductor keeps its code in a disk cache);
    it is tried on arrays of two rows of ``n_genes`` genes (one row, the last
    problem of a batch, always runs eager), and where it fails the eager
    passes are used, with one warning. The two give
    the same fits within the solver's tolerance (float32 rounding may stop a fit
    one iteration apart; AUC within 0.0025, ``tests/test_classifier.py``).
    ``fit_logistic(compile=False)`` (the workflow's ``sweep.compile: false``)
    uses the eager passes without trying.

    Parameters
    ----------
    device : torch.device or str
        Where the solver runs (``"cuda"`` means the current CUDA device).
    n_genes : int
        Columns of the solver's arrays (code compiled at or below 4,096 is not reused above it).

    Returns
    -------
    object
        With methods ``direction``, ``line`` and ``advance`` (see :class:`_EagerPasses`).
    """
    device = torch.device(device)
    if device.type != "cpu" and device.index is None:
        device = torch.zeros(0, device=device).device  # "cuda" -> "cuda:0", as the solver's tensors name it
    # a first call with 4,096 genes or fewer compiled code guarded to at most 4,096 (an empirical
    # observation with torch 2.13, not documented): one set of passes for each side
    key = (str(device), n_genes > 4096)
    with _PASSES_LOCK:
        return _PASSES[key] if key in _PASSES else _compile_passes(device, n_genes, key)


def _compile_passes(device: torch.device, n_genes: int, key: tuple[str, bool]):
    """Compile the passes for ``key`` (with the lock held), or fall back to eager; stores and returns them."""
    start = time.perf_counter()
    try:
        fused = _FusedPasses()
        # compile now, inside this try, on distinct arrays (an argument that is another one is a guard of its
        # own, and would compile again) of symbolic sizes (dynamic=True: other problem counts of 2 or more
        # reuse the code; one row runs eager, see _FusedPasses._call)
        a, b, c, r = (torch.zeros(2, n_genes, device=device) for _ in range(4))
        t = torch.ones(2, device=device)
        for name, args in (("direction", (a, b, c)), ("line", (a, t, b, c)), ("advance", (a, t, b, c, r))):
            fused.compiled[name](*args)  # not through _call: a failure here must reach the except
        _PASSES[key] = fused
        log.info("solver's elementwise passes compiled by torch.compile on %s in %.1f s", device.type,
                 time.perf_counter() - start)
    except Exception as err:  # no C++ compiler, no Triton, an unsupported device
        log.warning("torch.compile of the solver's elementwise passes failed on %s (%s: %s); using eager "
                    "PyTorch (slower; the same fits within the solver's tolerance)", device.type,
                    type(err).__name__, _first_line(err))
        _PASSES[key] = _EagerPasses
    return _PASSES[key]


def solver_passes_in_background(device: torch.device | str, n_genes: int) -> threading.Thread:
    """Start :func:`solver_passes` for ``device`` and ``n_genes`` on a thread, and return the thread.

    Compiling takes seconds per process (importing inductor, probing the
    CPU's vector instructions with short-lived subprocesses, loading the
    cached kernels), much of it waiting rather than computing; a sweep job
    starts it before reading its gene sets, and the solver's own call to
    :func:`solver_passes` waits for it (a lock) instead of compiling again.
    A failed compile is handled as in :func:`solver_passes` (eager passes, one
    warning); any other error (a device that does not exist) is logged as a
    warning, and the solver's own call meets it again. Join the thread before
    the process ends.
    """
    def compile_or_warn() -> None:
        try:
            solver_passes(device, n_genes)
        except Exception as err:  # a device that does not exist: the solver's own call will say so
            log.warning("compiling the solver's passes in the background failed (%s: %s)", type(err).__name__,
                        _first_line(err))

    thread = threading.Thread(target=compile_or_warn, name="compile-solver-passes", daemon=True)
    thread.start()
    return thread


def stratified_folds(y: np.ndarray, *, n_folds: int, seeds: np.ndarray) -> np.ndarray:
    """Assign each gene to a cross-validation fold, stratified per property.

    Members and non-members of each property are dealt round-robin to the
    folds in a random order, so every fold holds ``floor`` or ``ceil`` of
    ``n / n_folds`` of each class (as scikit-learn's StratifiedKFold).

    Parameters
    ----------
    y : np.ndarray
        bool, shape (n_properties, n_genes): membership of each gene in each property.
    n_folds : int
        Number of folds, >= 2.
    seeds : np.ndarray
        int, shape (n_properties,): one seed per property (see :func:`property_seed`), so a
        property's folds do not depend on which other properties share its batch or shard.

    Returns
    -------
    np.ndarray
        int8, shape (n_properties, n_genes): fold index 0..n_folds-1 of each gene.

    Raises
    ------
    InputError
        If a property has fewer members or non-members than folds.
    """
    y = np.asarray(y, dtype=bool)
    p, n = y.shape
    pos = y.sum(axis=1)
    bad = np.flatnonzero((pos < n_folds) | (n - pos < n_folds))
    if bad.size:
        raise InputError(f"properties {bad[:5].tolist()} have fewer than {n_folds} members or non-members: "
                         "cannot make stratified folds")
    folds = np.empty((p, n), dtype=np.int8)
    for j in range(p):
        order = np.random.default_rng(int(seeds[j])).permutation(n)
        yo = y[j, order]
        rank = np.where(yo, np.cumsum(yo), np.cumsum(~yo)) - 1
        folds[j, order] = rank % n_folds
    return folds


def property_seed(seed: int, source: str, term_id: str) -> int:
    """A property's own seed: the run seed combined with a CRC32 of ``source:term_id``."""
    return int(np.random.SeedSequence([seed, zlib.crc32(f"{source}:{term_id}".encode())]).generate_state(1)[0])


@dataclass
class Fit:
    """Solutions of a batch of logistic regressions, on the RAW features.

    coef: float32 (n_problems, dim); intercept: float32 (n_problems,): score
    ``coef @ x + intercept`` for a gene's raw embedding x, probability ``sigmoid(score)``. n_iter: int
    (n_problems,) iterations used; converged: bool (n_problems,).
    """

    coef: torch.Tensor
    intercept: torch.Tensor
    n_iter: torch.Tensor
    converged: torch.Tensor


class GeneMatrix:
    """The shared features of all problems: centred gene embeddings and their correlation eigenbasis.

    Parameters
    ----------
    x : np.ndarray
        float, shape (n_genes, dim): gene embeddings (one row per gene).
    device : str
        torch device for all computation.
    """

    def __init__(self, x: np.ndarray, *, device: str = "cpu") -> None:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise InputError(f"gene matrix must be 2-d with at least 2 genes, got shape {x.shape}")
        if not np.isfinite(x).all():
            raise InputError("gene matrix has NaN or infinite values")
        self.offset = x.mean(axis=0)
        xc = x - self.offset  # centring does not change any problem (each is re-standardised) but helps float32
        sd = xc.std(axis=0)
        sd[sd == 0] = 1.0
        corr = np.cov((xc / sd).T, bias=True).reshape(x.shape[1], x.shape[1])
        lam, vec = np.linalg.eigh(corr)
        self.device = torch.device(device)
        self.x = torch.as_tensor(xc, dtype=torch.float32, device=self.device)
        self.xt = self.x.T.contiguous()
        self.x1 = torch.cat([self.x, torch.ones(len(x), 1, dtype=torch.float32, device=self.device)], dim=1)
        self.x2 = self.x * self.x
        self.eigval = torch.as_tensor(np.clip(lam, 0, None), dtype=torch.float32, device=self.device)
        self.eigvec = torch.as_tensor(vec, dtype=torch.float32, device=self.device)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.x.shape)  # type: ignore[return-value]


def fit_logistic(
    genes: GeneMatrix,
    y: torch.Tensor,
    train: torch.Tensor,
    *,
    c: float = 1.0,
    max_iter: int = 100,
    tol: float = 0.03,
    grad_tol: float | None = None,
    memory: int = 8,
    line_search_steps: int = 2,
    compact: float = 0.75,
    compile: bool = True,
) -> Fit:
    """Solve a batch of L2 logistic regressions that share the gene matrix.

    Parameters
    ----------
    genes : GeneMatrix
        The n_genes x dim features.
    y : torch.Tensor
        bool, shape (n_problems, n_genes): labels (True = member).
    train : torch.Tensor
        bool, shape (n_problems, n_genes): the genes each problem is fit on.
    c : float
        Inverse regularisation strength, scikit-learn's ``C``, on standardised features.
    max_iter : int
        L-BFGS iterations at most.
    tol : float
        A problem has converged when the estimated error of its training genes'
        scores is below ``tol`` (logits, root mean square weighted by p(1-p)),
        estimated as ``sqrt(g' H^-1 g / (C * n_train * mean p(1-p)))`` from the
        squared Newton decrement ``g' H^-1 g`` of the L-BFGS direction (Boyd &
        Vandenberghe 2004, section 9.5.1). The step that meets it is still taken. Unlike a
        gradient rule it does not stop early where the curvature is weak (few
        members, chance-level properties), whose AUC moves with the last
        digits of the fit: at 19,000 genes x 200 dimensions, 0.03 kept every
        one of 200 random properties within 0.0025 AUC of the optimum, the
        gradient rule at 3e-5 one 0.028 away (BENCHMARKS.md).
    grad_tol : float, optional
        Stop instead when the largest gradient entry divided by ``C * n_train``
        is below ``grad_tol`` (scikit-learn's lbfgs rule, its default 1e-4);
        ``tol`` is then not used. For comparisons with scikit-learn.
    memory : int
        L-BFGS history length.
    line_search_steps : int
        Safeguarded Newton steps on the step length per iteration (elementwise work only).
    compact : float
        Drop converged problems from the working arrays once the running ones are
        at most this fraction of them (1: at every iteration; 0: never).
    compile : bool
        Run the elementwise passes compiled by torch.compile where that works
        (:func:`solver_passes`); False: eager PyTorch. The same fit within the solver's
        tolerance (float32 rounding may stop a fit one iteration apart).

    Returns
    -------
    Fit
        Coefficients and intercepts on the raw (uncentred) features.

    Raises
    ------
    InputError
        If a problem has fewer than 2 training genes.
    """
    x, xt, x1 = genes.x, genes.xt, genes.x1
    n, d = x.shape
    dev, dt = x.device, x.dtype
    m = train.to(dt)
    ym = (y & train).to(dt)
    b = y.shape[0]
    n_tr = m.sum(1)
    if bool((n_tr < 2).any()):
        raise InputError("a problem has fewer than 2 training genes")
    # per-problem standardisation on the training fold (StandardScaler: population sd; sd 0 -> 1)
    mu = (m @ x) / n_tr[:, None]
    var = (m @ genes.x2) / n_tr[:, None] - mu * mu
    sd = torch.sqrt(var.clamp_min(0))
    sd = torch.where(sd > 1e-6 * sd.amax(1, keepdim=True).clamp_min(1e-30), sd, torch.ones_like(sd))
    prev = (ym.sum(1) / n_tr).clamp(1e-6, 1 - 1e-6)
    cn = c * n_tr

    def scores(theta: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
        """(n_problems, n_genes) scores; linear in theta, so also the change of the scores along a direction."""
        u = theta[:, :d] / sd
        return torch.addmm((theta[:, d] - (mu * u).sum(1))[:, None], u, xt, out=out)

    def gradient_from_residuals(r: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        # r = p - y on training genes (p is exactly 0 on held-out genes, whose scores are -inf)
        rx = (r @ x1) * c  # last column: sum of r
        gw = (rx[:, :d] - mu * rx[:, d:]) / sd + theta[:, :d]
        return torch.cat([gw, rx[:, d:]], dim=1)

    vec, lam = genes.eigvec, genes.eigval

    def h0(v: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        # (C s n R + I)^-1 for the weights in R's eigenbasis, 1 / (C s n) for the intercept
        csn = (c * s * n_tr)[:, None]
        vw = ((v[:, :d] @ vec) / (csn * lam + 1.0)) @ vec.T
        return torch.cat([vw, v[:, d:] / csn], dim=1)

    theta = torch.zeros(b, d + 1, dtype=dt, device=dev)
    theta[:, d] = torch.log(prev / (1 - prev))
    # scores of held-out genes are pinned at -inf, where they stay (-inf + finite step): p = 0 and
    # p(1-p) = 0 there exactly, so the iterations need no mask
    z = torch.where(train, scores(theta), torch.tensor(float("-inf"), dtype=dt, device=dev))
    # residuals p - y and the direction's score changes: buffers the iterations overwrite (a fresh
    # (n_problems, n_genes) array per iteration costs its page faults)
    r = torch.sigmoid(z).sub_(ym)
    dqm = torch.empty_like(z)
    g = gradient_from_residuals(r, theta)
    passes = solver_passes(dev, n) if compile else _EagerPasses
    s_bar = prev * (1 - prev)  # mean p(1-p): makes h0 the exact inverse Hessian at the start
    hist: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    n_iter = torch.zeros(b, dtype=torch.int64, device=dev)
    active = torch.ones(b, dtype=torch.bool, device=dev)
    # finished problems leave the batch (compaction), so the work follows the problems still running
    rows = torch.arange(b, device=dev)
    theta_out, iter_out = theta.clone(), n_iter.clone()
    mu_out, sd_out = mu, sd
    # a problem stops only when it has converged: those that leave the batch have, those left at the end
    # have where they are no longer active
    converged = torch.ones(b, dtype=torch.bool, device=dev)
    for _ in range(max_iter):
        if grad_tol is not None:
            active = active & ~(g.abs().amax(1) / cn < grad_tol)
        n_active = int(active.sum())
        if n_active == 0:
            break
        if n_active <= compact * len(rows):
            theta_out[rows], iter_out[rows] = theta, n_iter
            keep = active.nonzero().squeeze(1)
            rows, theta, g, n_iter, active = rows[keep], theta[keep], g[keep], n_iter[keep], active[keep]
            z, m, ym, mu, sd = z[keep], m[keep], ym[keep], mu[keep], sd[keep]
            n_tr, cn, s_bar = n_tr[keep], cn[keep], s_bar[keep]
            hist = [(s_k[keep], y_k[keep], rho_k[keep]) for s_k, y_k, rho_k in hist]
            r, dqm = torch.empty_like(z), torch.empty_like(z)
            b = len(rows)
        # L-BFGS two-loop recursion, batched over problems
        q = -g
        alphas = []
        for s_k, y_k, rho_k in reversed(hist):
            a = rho_k * (s_k * q).sum(1)
            q = q - a[:, None] * y_k
            alphas.append(a)
        q = h0(q, s_bar)
        for (s_k, y_k, rho_k), a in zip(hist, reversed(alphas)):
            q = q + (a - rho_k * (y_k * q).sum(1))[:, None] * s_k
        if grad_tol is None:
            # squared Newton decrement g' H^-1 g ~ C sum p(1-p) (score error)^2 + ||weight error||^2
            decrement = -(g * q).sum(1)
            finishing = active & (decrement.clamp_min(0) / (c * n_tr * s_bar) < tol * tol)
        direction = q * active[:, None].to(dt)
        # exact line search on phi(t) = objective(theta + t direction), convex with phi'(0) = g.direction < 0:
        # safeguarded Newton steps on t, bisection (or doubling) where Newton would leave the bracket
        # held-out genes sit at -inf: adding this step's scores there leaves p = 0, so no mask is needed
        dqm = scores(direction, out=dqm)
        dw = direction[:, :d]
        wd, dd = (theta[:, :d] * dw).sum(1), (dw * dw).sum(1)
        # dq_aux: dq^2 (eager) or dqm itself (compiled); used by the line search below only, before the
        # next iteration overwrites dqm
        ydq, mdq2, dq_aux = passes.direction(dqm, ym, m)
        lo = torch.zeros(b, dtype=dt, device=dev)
        hi = torch.full((b,), float("inf"), dtype=dt, device=dev)
        t = torch.ones(b, dtype=dt, device=dev)
        curv = torch.zeros(b, dtype=dt, device=dev)
        for _ in range(line_search_steps):
            pdq, curv = passes.line(z, t, dqm, dq_aux)  # curv: sum of p(1-p) dq^2 over training genes
            d1 = c * (pdq - ydq) + wd + t * dd
            lo = torch.where(d1 < 0, t, lo)
            hi = torch.where(d1 >= 0, t, hi)
            newton = t - d1 / (c * curv + dd).clamp_min(1e-30)
            # while no upper end is known, Newton may extrapolate at most to 4 times the last descent point
            newton = torch.where(torch.isfinite(hi), newton, torch.minimum(newton, 4 * lo.clamp_min(1.0)))
            fallback = torch.where(torch.isfinite(hi), (lo + hi) / 2, 2 * lo)
            t = torch.where((newton > lo) & (newton < hi), newton, fallback)
        t = torch.where(active, t, torch.zeros_like(t))
        # mean p(1-p) over training genes, weighted by dq^2
        s_bar = torch.where(active, (curv / mdq2.clamp_min(1e-30)).clamp_min(1e-8), s_bar)
        step = t[:, None] * direction
        theta = theta + step
        passes.advance(z, t, dqm, ym, r)
        g_new = gradient_from_residuals(r, theta)
        yk = g_new - g
        sy = (step * yk).sum(1)
        ok = sy > 1e-10 * step.norm(dim=1) * yk.norm(dim=1)
        okf = ok[:, None].to(dt)
        hist.append((step * okf, yk * okf, torch.where(ok, 1.0 / sy.clamp_min(1e-30), torch.zeros_like(sy))))
        if len(hist) > memory:
            hist.pop(0)
        g = g_new
        n_iter += active.to(torch.int64)
        if grad_tol is None:  # the step that met the rule is taken; then the problem stops
            active = active & ~finishing
    if grad_tol is not None:
        active = active & ~(g.abs().amax(1) / cn < grad_tol)
    theta_out[rows], iter_out[rows], converged[rows] = theta, n_iter, ~active
    theta, n_iter, mu, sd = theta_out, iter_out, mu_out, sd_out
    u = theta[:, :d] / sd
    off = torch.as_tensor(genes.offset, dtype=dt, device=dev)
    intercept = theta[:, d] - (mu * u).sum(1) - u @ off
    return Fit(coef=u, intercept=intercept, n_iter=n_iter, converged=converged)


def ranking_metrics(scores: torch.Tensor, y: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ROC AUC and average precision of each problem over its valid genes, from one sort.

    Ties are handled as scikit-learn does: a tied member/non-member pair counts one
    half towards the AUC (roc_auc_score), and average precision sums the
    precision at each distinct score, weighted by the members scoring exactly
    that (average_precision_score).

    Parameters
    ----------
    scores : torch.Tensor
        float, shape (n_problems, n_genes).
    y, valid : torch.Tensor
        bool, shape (n_problems, n_genes): labels, and the genes that count (the test fold;
        the rest, for example padding, are ignored).

    Returns
    -------
    auc, average_precision : torch.Tensor
        float64, shape (n_problems,); NaN where a problem has no member or no non-member,
        or a valid score that is not finite.
    """
    b, n = scores.shape
    neg_inf = torch.tensor(float("-inf"), dtype=scores.dtype, device=scores.device)
    v, order = torch.where(valid, scores, neg_inf).sort(dim=1, descending=True)
    pos = torch.take_along_dim(y & valid, order, dim=1)
    neg = torch.take_along_dim(~y & valid, order, dim=1)
    idx = torch.arange(n, device=scores.device).expand(b, n)
    change = v[:, 1:] != v[:, :-1]
    is_end = torch.cat([change, torch.ones(b, 1, dtype=torch.bool, device=v.device)], dim=1)
    is_start = torch.cat([torch.ones(b, 1, dtype=torch.bool, device=v.device), change], dim=1)
    end = torch.where(is_end, idx, n).flip(1).cummin(1).values.flip(1)  # last index of each tie group
    start = torch.where(is_start, idx, -1).cummax(1).values  # first index of each tie group
    cneg = torch.cumsum(neg, 1, dtype=torch.float64)
    cpos = torch.cumsum(pos, 1, dtype=torch.float64)
    n_pos, n_neg = cpos[:, -1], cneg[:, -1]
    neg_to_end = torch.gather(cneg, 1, end)
    neg_before = torch.gather(cneg, 1, start) - torch.gather(neg.to(torch.float64), 1, start)
    # members: non-members scoring lower, plus half of those tied
    credit = (n_neg[:, None] - neg_to_end) + 0.5 * (neg_to_end - neg_before)
    auc = (credit * pos).sum(1) / (n_pos * n_neg)
    # precision at each member's score, counting every gene that ties with it
    prec = torch.gather(cpos, 1, end) / (end + 1).to(torch.float64)
    ap = (prec * pos).sum(1) / n_pos
    bad = (valid & ~torch.isfinite(scores)).any(1)  # a diverged fit has no meaningful ranking
    nan = torch.tensor(float("nan"), dtype=torch.float64, device=scores.device)
    return torch.where(bad, nan, auc), torch.where(bad, nan, ap)


def _test_folds(folds: np.ndarray, n_folds: int) -> tuple[np.ndarray, np.ndarray]:
    """Gene indices of every test fold, padded: (n_properties, n_folds, max_fold_size) and its validity mask."""
    p, n = folds.shape
    order = np.argsort(folds, axis=1, kind="stable")
    counts = np.stack([(folds == f).sum(1) for f in range(n_folds)], axis=1)  # (p, n_folds)
    offsets = np.cumsum(counts, axis=1) - counts
    size = int(counts.max())
    j = np.arange(size)
    valid = j[None, None, :] < counts[:, :, None]
    pos = np.where(valid, offsets[:, :, None] + j[None, None, :], 0)
    idx = np.take_along_axis(order[:, None, :].repeat(n_folds, 1), pos, axis=2)
    return idx, valid


def _scores(genes: GeneMatrix, fit: Fit) -> torch.Tensor:
    """Scores (n_problems, n_genes) of every gene under every fitted problem."""
    off = torch.as_tensor(genes.offset, dtype=genes.x.dtype, device=genes.device)
    return torch.addmm((fit.intercept + fit.coef @ off)[:, None], fit.coef, genes.xt)


@dataclass
class CrossValidation:
    """Per-property results of :func:`cross_validate` (arrays over the batch's properties).

    auc, average_precision: float64 (n_properties,), means over folds.
    oof: float32 (n_properties, n_genes), each gene's out-of-fold probability.
    coef: float32 (n_properties, dim) and intercept: float32 (n_properties,), the
    classifier refit on all genes, on raw features. n_iter: int (n_properties,),
    the most L-BFGS iterations any of the property's problems used;
    converged: bool (n_properties,), all of its problems converged.
    """

    auc: np.ndarray
    average_precision: np.ndarray
    oof: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray


def cross_validate(
    genes: GeneMatrix,
    y: np.ndarray,
    seeds: np.ndarray,
    *,
    n_folds: int = 5,
    c: float = 1.0,
    max_iter: int = 100,
    tol: float = 0.03,
    grad_tol: float | None = None,
    compile: bool = True,
) -> CrossValidation:
    """Stratified K-fold ROC AUC and average precision of one classifier per property, solved together.

    For each property (row of ``y``) the n_folds fold problems and one refit on
    all genes are solved in one batch by :func:`fit_logistic`. AUC and AP are
    computed on each test fold and averaged over folds, as a per-property loop
    of ``make_pipeline(StandardScaler(), LogisticRegression(C=c))`` over the
    same folds would; ``tests/test_classifier.py`` checks the agreement.

    Parameters
    ----------
    genes : GeneMatrix
        n_genes x dim features.
    y : np.ndarray
        bool, shape (n_properties, n_genes): memberships.
    seeds : np.ndarray
        int, shape (n_properties,): fold seeds (:func:`property_seed`).
    n_folds, c, max_iter, tol, grad_tol, compile
        Folds, and :func:`fit_logistic`'s settings.

    Returns
    -------
    CrossValidation

    Raises
    ------
    InputError
        If ``y`` does not match the gene matrix, or a property has fewer members
        or non-members than folds.
    """
    y = np.asarray(y, dtype=bool)
    p, n = y.shape
    if n != genes.shape[0]:
        raise InputError(f"memberships have {n} genes, the gene matrix {genes.shape[0]}")
    folds = stratified_folds(y, n_folds=n_folds, seeds=seeds)
    k = n_folds + 1  # problems per property: the folds, then the refit on all genes
    dev = genes.device
    yt = torch.as_tensor(y, device=dev).repeat_interleave(k, dim=0)
    # fold of each gene (int8: 8x less than int64 at (p * k, n)) and of each problem; n_folds = the refit
    ft = torch.as_tensor(folds, device=dev).to(torch.int8).repeat_interleave(k, dim=0)
    which = torch.arange(k, device=dev, dtype=torch.int8).repeat(p)[:, None]
    train = ft != which
    del ft
    fit = fit_logistic(genes, yt, train, c=c, max_iter=max_iter, tol=tol, grad_tol=grad_tol, compile=compile)
    sc = _scores(genes, fit)
    idx, valid = _test_folds(folds, n_folds)
    idx_t = torch.as_tensor(idx, device=dev)
    fold_scores = torch.gather(sc.reshape(p, k, n)[:, :n_folds], 2, idx_t).reshape(p * n_folds, -1)
    fold_y = torch.gather(torch.as_tensor(y, device=dev)[:, None, :].expand(p, n_folds, n), 2, idx_t)
    auc_f, ap_f = ranking_metrics(fold_scores, fold_y.reshape(p * n_folds, -1),
                                  torch.as_tensor(valid, device=dev).reshape(p * n_folds, -1))
    auc = auc_f.reshape(p, n_folds).mean(1)
    ap = ap_f.reshape(p, n_folds).mean(1)
    prob = torch.sigmoid(sc).reshape(p, k, n)
    oof = torch.gather(prob, 1, torch.as_tensor(folds, device=dev).to(torch.int64)[:, None, :]).squeeze(1)
    refit = torch.arange(p, device=dev) * k + n_folds
    return CrossValidation(
        auc=auc.cpu().numpy(), average_precision=ap.cpu().numpy(), oof=oof.float().cpu().numpy(),
        coef=fit.coef[refit].float().cpu().numpy(), intercept=fit.intercept[refit].float().cpu().numpy(),
        n_iter=fit.n_iter.reshape(p, k).amax(1).cpu().numpy(),
        converged=fit.converged.reshape(p, k).all(1).cpu().numpy(),
    )

