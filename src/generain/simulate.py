"""Generated data with planted structure, for tests and benchmarks.

Nothing here is used by the workflow's analysis; it produces inputs whose
answer is known, so the tests and ``benchmarks/`` can check and time the real
code on realistic problems.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd


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


# ---------------------------------------------------------------------------
# ARCHS4-layout count files with planted co-expression modules
# ---------------------------------------------------------------------------

@dataclass
class PlantedArchs4:
    """What :func:`write_archs4` planted: per gene its module (-1: none); per sample its QC fate.

    genes: DataFrame ensembl_id, symbol, biotype, module. samples: DataFrame
    sample_id, total_counts (as written), fails (``""``, ``total_counts``,
    ``detected_genes`` or ``singlecell``), singlecell_probability.
    """

    genes: pd.DataFrame
    samples: pd.DataFrame


def write_archs4(
    path: str | os.PathLike[str],
    *,
    gene_ids: Sequence[str],
    symbols: Sequence[str],
    biotypes: Sequence[str],
    modules: np.ndarray,
    n_samples: int,
    n_modules: int,
    sample_prefix: str = "GSM",
    fail_total_counts: float = 0.05,
    fail_detected_genes: float = 0.05,
    singlecell: float = 0.05,
    median_library_size: float = 2e7,
    dispersion: float = 0.2,
    module_strength: float = 1.5,
    factor_loadings: np.ndarray | None = None,
    factor_strength: float = 1.0,
    module_programs: np.ndarray | None = None,
    field_variant: int = 1,
    chunk_samples: int = 2000,
    compression: str | None = "gzip",
    block_samples: int = 500,
    seed: int = 0,
) -> PlantedArchs4:
    """Write an ARCHS4 gene-count HDF5 file whose genes follow planted co-expression modules.

    Counts are negative binomial (mean mu, variance mu + dispersion mu^2). Each
    gene has a baseline abundance (log-normal) and, if it belongs to a module,
    a loading on that module's activity, which varies across samples
    (standard normal): mu_gs ∝ base_g exp(module_strength * loading_g * activity_ms),
    scaled to the sample's library size (log-normal around
    ``median_library_size``). With ``factor_loadings`` W (n_genes, K), each
    gene also follows K sample factors F (standard normal, K x n_samples):
    log mu_gs gains factor_strength * W_g . F_s, so genes have individual
    co-expression profiles, not only their module's. With ``module_programs``
    L (n_modules, P), module activities are no longer independent: activity_ms
    = (L_m . Z_s + e_ms) / sqrt(1 + |L_m|^2) with P programs Z (standard
    normal, P x n_samples, drawn from their own seeded stream) and e the
    independent part, so each activity stays standard normal and modules m, n
    correlate by L_m . L_n / sqrt((1 + |L_m|^2)(1 + |L_n|^2)); without it the
    draws are exactly as before. Planted QC failures: a fraction of samples with
    libraries under 1 M reads, a fraction with at most 1,500 detected genes,
    and a fraction flagged single-cell (probability 0.9). Written in blocks of
    ``block_samples``, so memory does not depend on ``n_samples``.

    Parameters
    ----------
    path : path-like
        Output file (written to a temporary name, then renamed).
    gene_ids, symbols, biotypes : sequence of str
        One per gene (symbols may repeat).
    modules : np.ndarray
        int, shape (n_genes,): module of each gene, -1 for none.
    factor_loadings : np.ndarray, optional
        float, shape (n_genes, K): each gene's loadings on K sample factors.
    module_programs : np.ndarray, optional
        float, shape (n_modules, P): each module's loadings on P shared
        programs (correlated module activities, above).
    field_variant : int
        1: ARCHS4 v2.2 names (``ensembl_gene_id``, ``symbol``, ``readsaligned``),
        str datasets; 2: older names (``ensembl_gene``, ``gene_symbol``,
        ``alignedreads``), fixed-length bytes.
    chunk_samples, compression
        HDF5 chunks (1, chunk_samples) and compression, as ARCHS4's files.

    Returns
    -------
    PlantedArchs4

    Raises
    ------
    ValueError
        If symbols, biotypes and modules do not have one entry per gene, or
        ``module_programs`` is not (n_modules, P); nothing is written then.
    """
    import h5py

    from .utils import atomic_path

    rng = np.random.default_rng(seed)
    n_genes = len(gene_ids)
    modules = np.asarray(modules, dtype=np.int64)
    if not (len(symbols) == len(biotypes) == len(modules) == n_genes):
        raise ValueError("gene_ids, symbols, biotypes and modules must have one entry per gene")
    base = rng.lognormal(mean=0.0, sigma=2.0, size=n_genes)
    loading = np.where(modules >= 0, rng.uniform(0.5, 1.0, n_genes), 0.0)
    activity = rng.normal(size=(n_modules, n_samples))
    if module_programs is not None:
        programs = np.asarray(module_programs, dtype=np.float64)
        if programs.ndim != 2 or programs.shape[0] != n_modules:
            raise ValueError(f"module_programs has shape {programs.shape}; expected ({n_modules}, P)")
        z = np.random.default_rng([seed, 1]).normal(size=(programs.shape[1], n_samples))
        activity = (programs @ z + activity) / np.sqrt(1.0 + (programs ** 2).sum(axis=1, keepdims=True))
    factors = None if factor_loadings is None else rng.normal(size=(factor_loadings.shape[1], n_samples))
    fate = rng.choice(["", "total_counts", "detected_genes", "singlecell"], size=n_samples,
                      p=[1 - fail_total_counts - fail_detected_genes - singlecell, fail_total_counts,
                         fail_detected_genes, singlecell])
    lib = rng.lognormal(np.log(median_library_size), 0.4, n_samples)
    lib[fate == "total_counts"] = rng.uniform(2e5, 8e5, int((fate == "total_counts").sum()))
    scp = np.where(fate == "singlecell", 0.9, rng.uniform(0.0, 0.2, n_samples)).astype(np.float32)
    sample_ids = np.array([f"{sample_prefix}{seed:02d}{i:07d}" for i in range(n_samples)], dtype=object)
    series = np.array([f"GSE{seed:02d}{i // 50:05d}" for i in range(n_samples)], dtype=object)
    dt = h5py.string_dtype()

    def strings(values: Sequence[str]) -> tuple[np.ndarray, dict]:
        if field_variant == 2:
            return np.array([v.encode() for v in values], dtype="S"), {}
        return np.array(values, dtype=object), {"dtype": dt}

    names = ({"gene": "ensembl_gene_id", "symbol": "symbol", "reads": "readsaligned"} if field_variant == 1 else
             {"gene": "ensembl_gene", "symbol": "gene_symbol", "reads": "alignedreads"})
    totals = np.zeros(n_samples, dtype=np.int64)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            chunks = (1, min(chunk_samples, n_samples))
            ds = h5.create_dataset("data/expression", shape=(n_genes, n_samples), dtype=np.uint32, chunks=chunks,
                                   compression=compression)
            for start in range(0, n_samples, block_samples):
                stop = min(start + block_samples, n_samples)
                logmu = np.log(base)[:, None] + module_strength * loading[:, None] * np.where(
                    modules[:, None] >= 0, activity[np.clip(modules, 0, None), start:stop], 0.0)
                if factors is not None:
                    logmu = logmu + factor_strength * (factor_loadings @ factors[:, start:stop])
                w = np.exp(logmu - logmu.max(axis=0, keepdims=True))
                mu = w / w.sum(axis=0, keepdims=True) * lib[start:stop]
                r = 1.0 / dispersion
                counts = rng.negative_binomial(r, r / (r + mu)).astype(np.uint32)
                for j in np.flatnonzero(fate[start:stop] == "detected_genes"):
                    keep = np.argsort(-counts[:, j], kind="stable")[:1500]
                    col = np.zeros(n_genes, dtype=np.uint32)
                    col[keep] = counts[keep, j]
                    counts[:, j] = col
                ds[:, start:stop] = counts
                totals[start:stop] = counts.sum(axis=0, dtype=np.int64)
            g, s = h5.create_group("meta/genes"), h5.create_group("meta/samples")
            for name, values in ((names["gene"], gene_ids), (names["symbol"], symbols), ("biotype", biotypes)):
                arr, kw = strings(list(values))
                g.create_dataset(name, data=arr, **kw)
            for name, values in (("geo_accession", sample_ids), ("series_id", series)):
                arr, kw = strings(list(values))
                s.create_dataset(name, data=arr, **kw)
            s.create_dataset("singlecellprobability", data=scp)
            s.create_dataset(names["reads"], data=totals)
            h5.create_dataset("meta/info/version", data="generated by generain.simulate")
    genes = pd.DataFrame({"ensembl_id": list(gene_ids), "symbol": list(symbols), "biotype": list(biotypes),
                          "module": modules})
    samples = pd.DataFrame({"sample_id": sample_ids, "total_counts": totals, "fails": fate,
                            "singlecell_probability": scp})
    return PlantedArchs4(genes, samples)


def write_human_mouse_pair(
    out_dir: str | os.PathLike[str],
    *,
    orthologs: pd.DataFrame,
    human_only: pd.DataFrame | None = None,
    n_samples: tuple[int, int] = (400, 400),
    n_modules: int = 50,
    in_modules: float = 0.6,
    shared_fraction: float = 0.5,
    duplicate_symbols: float = 0.02,
    gene_factors: int = 16,
    factor_strength: float = 1.0,
    module_programs: int = 0,
    program_strength: float = 1.0,
    seed: int = 0,
    **archs4: object,
) -> pd.DataFrame:
    """Write a human and a mouse ARCHS4-layout file whose orthologs share modules in a chosen fraction.

    Human genes: the orthologs' human genes, then ``human_only`` genes (for
    example lncRNAs); a fraction ``in_modules`` of them belongs to a module.
    Mouse genes: the orthologs' mouse genes. For ``shared_fraction`` of the
    ortholog pairs whose human gene has a module, the mouse gene is in the same
    module (its co-expression partners are the orthologs of the human gene's);
    the other mouse genes get a module drawn independently. Module activities
    are drawn separately per species: only the membership is shared, unless
    ``module_programs`` > 0: then both species' module activities load, with
    the same loadings, on that many programs (:func:`write_archs4`), so the
    modules correlate with each other alike in both species (the samples and
    the programs' values stay separate per species).

    Files: ``human.h5`` (ARCHS4 v2.2 field names), ``mouse.h5`` (the older
    names, fixed-length bytes), ``orthologs.tsv`` (human_ensembl_id,
    human_symbol, mouse_ensembl_id, mouse_symbol: the one-to-one table used),
    ``truth.tsv`` (per ortholog pair: human_module, mouse_module, shared).

    Parameters
    ----------
    orthologs : pandas.DataFrame
        One-to-one pairs: human_ensembl_id, human_symbol, mouse_ensembl_id, mouse_symbol.
    human_only : pandas.DataFrame, optional
        ensembl_id, symbol, biotype of extra human genes.
    n_samples : (int, int)
        Human and mouse samples.
    module_programs : int
        Programs shared by both species' module activities (0: independent modules).
    program_strength : float
        Norm of a module's program loadings (1.0: half of each activity's variance from the programs).
    archs4
        Further keywords of :func:`write_archs4` (QC failure fractions, chunks, ...).

    Returns
    -------
    pandas.DataFrame
        The truth table (as written to truth.tsv).
    """
    from .utils import atomic_path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    orth = orthologs[["human_ensembl_id", "human_symbol", "mouse_ensembl_id", "mouse_symbol"]].reset_index(drop=True)
    n_pairs = len(orth)
    extra = (human_only if human_only is not None else pd.DataFrame(columns=["ensembl_id", "symbol", "biotype"])
             ).reset_index(drop=True).copy()
    n_dup = int(duplicate_symbols * len(extra))
    if n_dup and len(extra) > 1:
        rows = rng.choice(len(extra), 2 * n_dup, replace=False)
        extra.loc[rows[:n_dup], "symbol"] = extra.loc[rows[n_dup:], "symbol"].to_numpy()
    n_human = n_pairs + len(extra)

    def draw(n: int) -> np.ndarray:
        return np.where(rng.random(n) < in_modules, rng.integers(0, n_modules, n), -1)

    human_mod = draw(n_human)
    hm = human_mod[:n_pairs]
    shared = (hm >= 0) & (rng.random(n_pairs) < shared_fraction)
    mouse_mod = draw(n_pairs)
    mouse_mod[shared] = hm[shared]
    clash = ~shared & (hm >= 0) & (mouse_mod == hm)  # an independent draw must not share by chance
    mouse_mod[clash] = (hm[clash] + 1 + rng.integers(0, n_modules - 1, int(clash.sum()))) % n_modules
    w_h = w_m = None
    if gene_factors:
        w_h = rng.normal(scale=1 / np.sqrt(gene_factors), size=(n_human, gene_factors))
        w_m = rng.normal(scale=1 / np.sqrt(gene_factors), size=(n_pairs, gene_factors))
        w_m[shared] = w_h[:n_pairs][shared]
    programs = None
    if module_programs:
        programs = np.random.default_rng([seed, 2]).normal(scale=program_strength / np.sqrt(module_programs),
                                                           size=(n_modules, module_programs))
    write_archs4(out / "human.h5", gene_ids=[*orth["human_ensembl_id"], *extra["ensembl_id"]],
                 symbols=[*orth["human_symbol"].fillna(""), *extra["symbol"].fillna("")],
                 biotypes=["protein_coding"] * n_pairs + list(extra["biotype"].fillna("")), modules=human_mod,
                 n_samples=n_samples[0], n_modules=n_modules, sample_prefix="GSM", field_variant=1, seed=seed,
                 factor_loadings=w_h, factor_strength=factor_strength, module_programs=programs,
                 **archs4)  # type: ignore[arg-type]
    write_archs4(out / "mouse.h5", gene_ids=list(orth["mouse_ensembl_id"]), symbols=list(orth["mouse_symbol"].fillna("")),
                 biotypes=["protein_coding"] * n_pairs, modules=mouse_mod, n_samples=n_samples[1], n_modules=n_modules,
                 sample_prefix="GSMM", field_variant=2, seed=seed + 1, factor_loadings=w_m,
                 factor_strength=factor_strength, module_programs=programs, **archs4)  # type: ignore[arg-type]
    truth = orth[["human_ensembl_id", "mouse_ensembl_id"]].assign(human_module=hm, mouse_module=mouse_mod,
                                                                  shared=shared)
    for name, table in (("orthologs.tsv", orth), ("truth.tsv", truth)):
        with atomic_path(out / name) as tmp:
            table.to_csv(tmp, sep="\t", index=False)
    return truth


def human_mouse_from_tables(
    out_dir: str | os.PathLike[str],
    *,
    gene_table: str | os.PathLike[str],
    orthologs: str | os.PathLike[str],
    n_pairs: int = 3000,
    n_lncrna: int = 500,
    seed: int = 0,
    **kwargs: object,
) -> pd.DataFrame:
    """:func:`write_human_mouse_pair` on real genes: a seeded draw of one-to-one orthologs and human lncRNAs.

    Ortholog pairs are drawn among those whose human gene is protein-coding in
    ``gene_table`` (so the sweep's gene sets apply), lncRNAs among the table's
    lncRNAs; both keep the table's order. ``kwargs`` go to
    :func:`write_human_mouse_pair` (n_samples, n_modules, in_modules,
    shared_fraction, chunks, ...).

    Raises
    ------
    ValueError
        If the tables hold fewer pairs or lncRNAs than asked for.
    """
    from .annotation import read_gene_table, read_orthologs

    genes = read_gene_table(gene_table)
    orth = read_orthologs(orthologs)
    coding = set(genes.loc[genes["biotype"] == "protein_coding", "ensembl_id"])
    orth = orth[orth["human_ensembl_id"].isin(coding)].reset_index(drop=True)
    lnc = genes[genes["biotype"] == "lncRNA"].reset_index(drop=True)
    if n_pairs > len(orth) or n_lncrna > len(lnc):
        raise ValueError(f"asked for {n_pairs} ortholog pairs and {n_lncrna} lncRNAs; the tables have "
                         f"{len(orth)} and {len(lnc)}")
    rng = np.random.default_rng(seed)
    orth = orth.iloc[np.sort(rng.choice(len(orth), n_pairs, replace=False))]
    for col in ("human_symbol", "mouse_symbol"):
        if col not in orth:
            orth = orth.assign(**{col: ""})
    lnc = lnc.iloc[np.sort(rng.choice(len(lnc), n_lncrna, replace=False))][["ensembl_id", "symbol", "biotype"]]
    return write_human_mouse_pair(out_dir, orthologs=orth, human_only=lnc, seed=seed, **kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m generain.simulate``: write one ARCHS4-layout file with planted modules and its truth tables."""
    import argparse

    from .annotation import read_gene_table

    ap = argparse.ArgumentParser(prog="python -m generain.simulate", description=write_archs4.__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output .h5 (truth tables beside it: .genes.tsv, .samples.tsv); "
                    "with --human-mouse an output folder")
    ap.add_argument("--human-mouse", action="store_true",
                    help="write human.h5, mouse.h5, orthologs.tsv and truth.tsv (real genes: --gene-table and "
                    "--orthologs) whose orthologs share modules in --shared-fraction")
    ap.add_argument("--orthologs", default="resources/annotation/orthologs_human_mouse.tsv")
    ap.add_argument("--pairs", type=int, default=3000, help="--human-mouse: ortholog pairs")
    ap.add_argument("--lncrna", type=int, default=500, help="--human-mouse: human lncRNAs")
    ap.add_argument("--mouse-samples", type=int, default=None, help="--human-mouse: mouse samples (default --samples)")
    ap.add_argument("--shared-fraction", type=float, default=0.5,
                    help="--human-mouse: fraction of orthologs (with a module) sharing it")
    ap.add_argument("--genes", type=int, default=67_186, help="genes (default: ARCHS4 human v2.2's 67,186)")
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--modules", type=int, default=200, help="co-expression modules")
    ap.add_argument("--in-modules", type=float, default=0.5, help="fraction of genes in a module")
    ap.add_argument("--gene-table", help="take real genes (ensembl_id, symbol, biotype) from this table, in order")
    ap.add_argument("--field-variant", type=int, choices=[1, 2], default=1)
    ap.add_argument("--chunk-samples", type=int, default=2000)
    ap.add_argument("--compression", default="gzip", help="gzip, lzf or none")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    compression = None if a.compression == "none" else a.compression
    if a.human_mouse:
        human_mouse_from_tables(a.out, gene_table=a.gene_table or "resources/annotation/genes.tsv",
                                orthologs=a.orthologs, n_pairs=a.pairs, n_lncrna=a.lncrna,
                                n_samples=(a.samples, a.mouse_samples or a.samples), n_modules=a.modules,
                                in_modules=a.in_modules, shared_fraction=a.shared_fraction, seed=a.seed,
                                chunk_samples=a.chunk_samples, compression=compression)
        return 0
    rng = np.random.default_rng(a.seed)
    if a.gene_table:
        t = read_gene_table(a.gene_table).head(a.genes)
        ids, sym, bio = t["ensembl_id"].tolist(), t["symbol"].fillna("").tolist(), t["biotype"].fillna("").tolist()
    else:
        ids = [f"ENSG9{i:010d}" for i in range(a.genes)]
        sym, bio = [f"GENE{i}" for i in range(a.genes)], ["protein_coding"] * a.genes
    mods = np.where(rng.random(len(ids)) < a.in_modules, rng.integers(0, a.modules, len(ids)), -1)
    truth = write_archs4(a.out, gene_ids=ids, symbols=sym, biotypes=bio, modules=mods, n_samples=a.samples,
                         n_modules=a.modules, field_variant=a.field_variant, chunk_samples=a.chunk_samples,
                         compression=compression, seed=a.seed)
    stem = str(a.out).removesuffix(".h5")
    truth.genes.to_csv(f"{stem}.genes.tsv", sep="\t", index=False)
    truth.samples.to_csv(f"{stem}.samples.tsv", sep="\t", index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
