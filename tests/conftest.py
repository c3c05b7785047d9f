"""Shared fixtures: tiny ARCHS4-layout files and gene tables made by hand."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[1]


def schema_defaults(section: str) -> dict:
    """The defaults config/schema.yaml gives the keys of a config section (the only place they are written)."""
    import yaml

    schema = yaml.safe_load((REPO / "config" / "schema.yaml").read_text())
    return {k: v["default"] for k, v in schema["properties"][section]["properties"].items() if "default" in v}


def write_archs4(path: Path, counts: np.ndarray, *, genes: list[str], symbols: list[str], samples: list[str],
                 variant: int = 1, scp: list[float] | None = None, chunks: tuple[int, int] | None = (1, 2)) -> Path:
    """Write a minimal ARCHS4 gene-count file.

    variant 1 uses ensembl_gene_id/symbol (v2.2 names), variant 2
    ensembl_gene/gene_symbol; variant 2 stores strings as fixed-length bytes,
    as older ARCHS4 releases do.
    """
    with h5py.File(path, "w") as h5:
        h5.create_dataset("data/expression", data=counts.astype(np.uint32), chunks=chunks, compression="gzip")
        g = h5.create_group("meta/genes")
        s = h5.create_group("meta/samples")
        enc = (lambda xs: np.array([x.encode() for x in xs], dtype="S")) if variant == 2 else (
            lambda xs: np.array(xs, dtype=object))
        kw = {} if variant == 2 else {"dtype": h5py.string_dtype()}
        g.create_dataset("ensembl_gene_id" if variant == 1 else "ensembl_gene", data=enc(genes), **kw)
        g.create_dataset("symbol" if variant == 1 else "gene_symbol", data=enc(symbols), **kw)
        s.create_dataset("geo_accession", data=enc(samples), **kw)
        s.create_dataset("series_id", data=enc(["GSE1"] * len(samples)), **kw)
        s.create_dataset("singlecellprobability", data=np.array(scp or [0.0] * len(samples), dtype=np.float32))
        s.create_dataset("readsaligned" if variant == 1 else "alignedreads", data=counts.sum(axis=0))
        h5.create_dataset("meta/info/version", data="test")
    return path


@pytest.fixture
def gene_table(tmp_path: Path) -> Path:
    df = pd.DataFrame({
        "ensembl_id": ["ENSG01", "ENSG02", "ENSG03", "ENSG04", "ENSG05"],
        "symbol": ["A", "B", "C", "DUP", "DUP"],
        "biotype": ["protein_coding", "protein_coding", "lncRNA", "protein_coding", "lncRNA"],
        "entrez_id": [1, 2, None, 4, None],
    })
    path = tmp_path / "genes.tsv"
    df.to_csv(path, sep="\t", index=False)
    return path


@pytest.fixture(scope="session")
def generated_archs4(tmp_path_factory) -> Path:
    """A generated 3,000-gene x 2,400-sample ARCHS4-layout file (chunks of 200 samples), shared by the
    streaming tests: the first 3,000 protein-coding and lncRNA genes of the bundled table, 70% of them in
    40 planted modules (generain.simulate.write_archs4, seed 1)."""
    from generain import annotation, simulate

    genes = annotation.read_gene_table(REPO / "resources" / "annotation" / "genes.tsv")
    g = genes[genes["biotype"].isin(["protein_coding", "lncRNA"])].iloc[:3000]
    rng = np.random.default_rng(0)
    modules = np.where(rng.random(len(g)) < 0.7, rng.integers(0, 40, len(g)), -1)
    path = tmp_path_factory.mktemp("generated_archs4") / "sim.h5"
    simulate.write_archs4(path, gene_ids=g["ensembl_id"].tolist(), symbols=g["symbol"].tolist(),
                          biotypes=g["biotype"].tolist(), modules=modules, n_samples=2400, n_modules=40,
                          chunk_samples=200, seed=1)
    return path
