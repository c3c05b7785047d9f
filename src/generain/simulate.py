"""Generated data with planted structure, for tests and benchmarks.

Nothing here is used by the workflow's analysis; it produces inputs whose
answer is known, so the tests and ``benchmarks/`` can check and time the real
code on realistic problems.
"""

from __future__ import annotations

import numpy as np


def planted_properties(
    n_genes: int, dim: int, n_properties: int, *, n_modules: int = 40, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Gene embeddings in co-expression-like modules and gene properties of three kinds.

    Genes belong to ``n_modules`` modules with their own centres; dimensions are
    correlated by a random mixing matrix. Property j (sizes 10-500, at most a
    quarter of the genes) is, by ``j % 3``: 0, 60% of its genes from two modules
    and 40% random (moderate signal); 1, the top genes along a random direction
    with noise of 1.5 times the signal (moderate signal); 2, random genes (no
    signal, AUC ~0.5).

    Parameters
    ----------
    n_genes, dim, n_properties : int
        Shape of the output.
    n_modules : int
        Number of gene modules.
    seed : int
        Seed of numpy's default generator.

    Returns
    -------
    x : np.ndarray
        float32, shape (n_genes, dim): gene embeddings.
    y : np.ndarray
        bool, shape (n_properties, n_genes): memberships.
    """
    rng = np.random.default_rng(seed)
    lab = rng.integers(0, n_modules, n_genes)
    mix = np.eye(dim) + 0.5 * rng.normal(size=(dim, dim)) / np.sqrt(dim)
    x = (rng.normal(size=(n_modules, dim))[lab] * 1.5 + rng.normal(size=(n_genes, dim))) @ mix
    y = np.zeros((n_properties, n_genes), dtype=bool)
    for j in range(n_properties):
        size = int(rng.integers(10, min(501, n_genes // 4)))
        if j % 3 == 0:
            cand = np.flatnonzero(np.isin(lab, rng.choice(n_modules, 2, replace=False)))
            k = int(size * 0.6)
            idx = np.concatenate([rng.choice(cand, min(len(cand), k), replace=False),
                                  rng.choice(n_genes, size - k, replace=False)])
        elif j % 3 == 1:
            s = x @ rng.normal(size=dim)
            idx = np.argsort(-(s + rng.normal(size=n_genes) * s.std() * 1.5))[:size]
        else:
            idx = rng.choice(n_genes, size, replace=False)
        y[j, idx] = True
    return x.astype(np.float32), y
