"""Explore a run's gene embeddings: similar genes, similarity, analogies, 2-D maps.

The tools of GeneRAIN-vec (Su et al. 2024, "GeneRAIN-vec" web app: similar
genes, similarity of two genes, "calculator" B - A + C and its several-term
form, visualization), over any embedding the pipeline wrote
(``embeddings/{model}.parquet`` or ``.w2v.txt``) or any external word2vec
text file. As in word2vec's ``most_similar``, vectors are normalised to unit
length, a query is the weighted sum of its genes' unit vectors, and genes
are ranked by cosine similarity to it — one matrix-vector product over the
whole vocabulary.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .utils import InputError, strip_version

log = logging.getLogger(__name__)

RESULT_COLUMNS = ("rank", "token", "ensembl_id", "symbol", "species", "cosine")
_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d+(\.\d+)?$")


class GeneNotFound(InputError):
    """A gene name matches nothing in the embedding; the message lists close matches."""


class AmbiguousGene(InputError):
    """A symbol names several genes; the message lists their Ensembl ids."""


@dataclass
class GeneEmbedding:
    """Gene vectors with lookup by token, Ensembl id (version ignored) or symbol.

    Attributes
    ----------
    genes : pandas.DataFrame
        One row per gene: token, ensembl_id, symbol, species (strings; missing as "").
    vectors : np.ndarray
        float32, shape (n_genes, dim), as stored.
    unit : np.ndarray
        float32, shape (n_genes, dim): rows scaled to unit length (zero rows stay zero).
    """

    genes: pd.DataFrame
    vectors: np.ndarray
    unit: np.ndarray

    @classmethod
    def from_table(cls, table: pd.DataFrame) -> GeneEmbedding:
        """From the pipeline's embedding table (token, ensembl_id, symbol, biotype, species, embedding)."""
        if "embedding" not in table or "token" not in table:
            raise InputError("embedding table needs columns token and embedding")
        genes = pd.DataFrame({c: table[c].fillna("").astype(str).to_numpy() if c in table else ""
                              for c in ("token", "ensembl_id", "symbol", "species")})
        vectors = np.stack([np.asarray(v, dtype=np.float32) for v in table["embedding"]])
        return cls._make(genes, vectors)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> GeneEmbedding:
        """Read ``.parquet`` (the pipeline's table) or word2vec text (tokens: Ensembl ids or symbols).

        Raises
        ------
        InputError
            If the file is missing or malformed.
        """
        from . import embed

        path = Path(path)
        if not path.exists():
            raise InputError(f"{path}: embedding file not found")
        if path.suffix == ".parquet":
            return cls.from_table(embed.read_embeddings(path))
        tokens, vectors = embed.read_word2vec(path)
        ids = [strip_version(t) if _ENSEMBL.match(t) else "" for t in tokens]
        genes = pd.DataFrame({"token": tokens, "ensembl_id": ids,
                              "symbol": [t if not i else "" for t, i in zip(tokens, ids)],
                              "species": ["mouse" if t.startswith("m_") else "" for t in tokens]})
        return cls._make(genes, vectors)

    @classmethod
    def _make(cls, genes: pd.DataFrame, vectors: np.ndarray) -> GeneEmbedding:
        if len(genes) == 0:
            raise InputError("the embedding has no genes")
        norm = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit = np.divide(vectors, norm, out=np.zeros_like(vectors), where=norm > 0).astype(np.float32)
        return cls(genes.reset_index(drop=True), vectors.astype(np.float32), unit)

    # ------------------------------------------------------------------ lookup

    def resolve(self, name: str, *, species: str | None = None) -> int:
        """Row of a gene given as token, Ensembl id (any version) or symbol (case-insensitive if unique).

        Parameters
        ----------
        name : str
            The gene.
        species : str, optional
            Restrict the match to this species ("human", "mouse").

        Returns
        -------
        int
            Row index into :attr:`genes`.

        Raises
        ------
        AmbiguousGene
            If a symbol names several genes (the message lists their Ensembl ids and species).
        GeneNotFound
            If nothing matches (the message lists up to 5 close symbols or ids).
        """
        g = self.genes
        ok = np.ones(len(g), dtype=bool) if species is None else (g["species"].to_numpy() == species) | (
            (g["species"].to_numpy() == "") & (species == "human"))
        key = name.strip()
        for column, value in (("token", key), ("ensembl_id", strip_version(key))):
            hit = np.flatnonzero((g[column].to_numpy() == value) & ok & (value != ""))
            if hit.size == 1:
                return int(hit[0])
        sym = g["symbol"].to_numpy()
        hit = np.flatnonzero((sym == key) & ok)
        if hit.size == 0:
            hit = np.flatnonzero((np.char.upper(sym.astype(str)) == key.upper()) & ok & (sym != ""))
        if hit.size == 1:
            return int(hit[0])
        if hit.size > 1:
            which = ", ".join(f"{g.at[i, 'ensembl_id'] or g.at[i, 'token']} ({g.at[i, 'species'] or 'human'})"
                              for i in hit)
            raise AmbiguousGene(f"{name!r} names {hit.size} genes: {which}; give the Ensembl id"
                                + ("" if species else " or a species"))
        pool = [s for s in np.concatenate([sym[ok], g["ensembl_id"].to_numpy()[ok]]) if s]
        close = difflib.get_close_matches(key, pool, n=5, cutoff=0.6)
        raise GeneNotFound(f"{name!r} is not in the embedding ({len(g)} genes)"
                           + (f"; close matches: {', '.join(close)}" if close else ""))

    # ------------------------------------------------------------------ queries

    def _ranked(self, query: np.ndarray, *, n: int, exclude: Sequence[int], species: str | None) -> pd.DataFrame:
        scores = self.unit @ query
        keep = np.ones(len(scores), dtype=bool)
        keep[list(exclude)] = False
        if species is not None:
            sp = self.genes["species"].to_numpy()
            keep &= (sp == species) | ((sp == "") & (species == "human"))
        idx = np.flatnonzero(keep)
        order = idx[np.argsort(-scores[idx], kind="stable")][:n]  # ties: vocabulary order
        out = self.genes.iloc[order][["token", "ensembl_id", "symbol", "species"]].reset_index(drop=True)
        out.insert(0, "rank", np.arange(1, len(order) + 1))
        out["cosine"] = scores[order].astype(np.float64)
        return out[list(RESULT_COLUMNS)]

    def combine(self, terms: Sequence[tuple[float, str]], *, n: int = 10, species: str | None = None,
                query_species: str | None = None) -> pd.DataFrame:
        """Genes nearest to a signed, weighted sum of genes' unit vectors (the inputs excluded).

        Parameters
        ----------
        terms : sequence of (weight, gene)
            For example ``[(1, "APP"), (-1, "APOE"), (1, "BRCA1")]``.
        n : int
            Genes to return.
        species : str, optional
            Only return genes of this species.
        query_species : str, optional
            Species used to resolve the input genes.

        Returns
        -------
        pandas.DataFrame
            Columns :data:`RESULT_COLUMNS`, best first.
        """
        if not terms:
            raise InputError("no genes given")
        rows = [self.resolve(g, species=query_species) for _, g in terms]
        q = np.zeros(self.unit.shape[1], dtype=np.float64)
        for (w, _), r in zip(terms, rows):
            q += float(w) * self.unit[r]
        norm = np.linalg.norm(q)
        if norm == 0:
            raise InputError("the weighted sum of the genes is the zero vector")
        return self._ranked((q / norm).astype(np.float32), n=n, exclude=rows, species=species)

    def similar(self, gene: str, *, n: int = 10, species: str | None = None,
                query_species: str | None = None) -> pd.DataFrame:
        """The ``n`` genes with the highest cosine similarity to ``gene`` (itself excluded)."""
        return self.combine([(1.0, gene)], n=n, species=species, query_species=query_species)

    def analogy(self, a: str, b: str, c: str, *, n: int = 10, species: str | None = None) -> pd.DataFrame:
        """``b - a + c``: genes that are to ``c`` as ``b`` is to ``a`` (the three inputs excluded)."""
        return self.combine([(-1.0, a), (1.0, b), (1.0, c)], n=n, species=species)

    def similarity(self, a: str, b: str) -> dict[str, object]:
        """Cosine similarity of two genes, and how many genes are closer to each than the other is.

        Returns
        -------
        dict
            a, b (tokens), cosine, closer_to_a (genes other than a and b with higher
            cosine to a than b has), closer_to_b (the same from b's side), n_genes.
        """
        ia, ib = self.resolve(a), self.resolve(b)
        cos = float(self.unit[ia] @ self.unit[ib])
        others = np.ones(len(self.unit), dtype=bool)
        others[[ia, ib]] = False
        closer_a = int(((self.unit @ self.unit[ia]) > cos)[others].sum())
        closer_b = int(((self.unit @ self.unit[ib]) > cos)[others].sum())
        return {"a": self.genes.at[ia, "token"], "b": self.genes.at[ib, "token"], "cosine": cos,
                "closer_to_a": closer_a, "closer_to_b": closer_b, "n_genes": len(self.unit)}

    def map_2d(self, lists: dict[str, Sequence[str]], *, method: str = "pca", seed: int = 0) -> pd.DataFrame:
        """2-D coordinates of up to three gene lists (PCA, t-SNE or UMAP, seeded).

        Parameters
        ----------
        lists : dict
            List name -> genes (unknown genes raise :class:`GeneNotFound`).
        method : str
            ``pca`` (scikit-learn PCA), ``tsne`` (scikit-learn TSNE, perplexity
            min(30, (n - 1) / 3), at least 1, for n genes) or ``umap`` (umap-learn, if installed).

        Returns
        -------
        pandas.DataFrame
            list, token, symbol, x, y (one row per gene and list).
        """
        if not 1 <= len(lists) <= 3:
            raise InputError(f"give one to three gene lists, got {len(lists)}")
        rows, names = [], []
        for name, genes in lists.items():
            for g in genes:
                rows.append(self.resolve(g))
                names.append(name)
        if len(rows) < 3:
            raise InputError(f"a map needs at least 3 genes, got {len(rows)}")
        x = self.unit[rows].astype(np.float64)
        if method == "pca":
            from sklearn.decomposition import PCA

            xy = PCA(n_components=2, random_state=seed).fit_transform(x)
        elif method == "tsne":
            from sklearn.manifold import TSNE

            xy = TSNE(n_components=2, perplexity=max(1.0, min(30.0, (len(rows) - 1) / 3)), random_state=seed,
                      init="pca").fit_transform(x)
        elif method == "umap":
            try:
                import umap  # type: ignore[import-not-found]
            except ImportError as e:
                raise InputError("method 'umap' needs the umap-learn package (pip install umap-learn)") from e
            xy = umap.UMAP(n_components=2, random_state=seed).fit_transform(x)
        else:
            raise InputError(f"unknown map method {method!r}: pca, tsne or umap")
        g = self.genes.iloc[rows]
        return pd.DataFrame({"list": names, "token": g["token"].to_numpy(), "symbol": g["symbol"].to_numpy(),
                             "x": xy[:, 0], "y": xy[:, 1]})


@dataclass
class RunAnnotations:
    """What a run's pipeline computed about genes, shown beside the explorer's answers.

    classifiers: sweep/{model}/classifiers.parquet joined with term names (or None);
    ranks: species/{model}/ortholog_ranks.parquet (or None).
    """

    classifiers: pd.DataFrame | None
    ranks: pd.DataFrame | None

    @classmethod
    def load(cls, run_dir: str | os.PathLike[str], model: str) -> RunAnnotations:
        """Read what exists of a run's sweep and species outputs for ``model``; missing parts are None."""
        run = Path(run_dir)
        clf_path, cat_path = run / "sweep" / model / "classifiers.parquet", run / "sweep" / model / "properties.parquet"
        clf = None
        if clf_path.exists():
            clf = pd.read_parquet(clf_path, columns=["source", "term_id", "intercept", "coef"])
            if cat_path.exists():
                names = pd.read_parquet(cat_path, columns=["source", "term_id", "term_name"])
                clf = clf.merge(names, on=["source", "term_id"], how="left")
        rank_path = run / "species" / model / "ortholog_ranks.parquet"
        ranks = pd.read_parquet(rank_path) if rank_path.exists() else None
        return cls(clf, ranks)

    def top_properties(self, vector: np.ndarray, *, k: int = 10) -> pd.DataFrame:
        """The ``k`` properties whose classifier (refit on all protein-coding genes) gives ``vector`` the highest
        probability: source, term_id, term_name, probability. Empty without a sweep."""
        if self.classifiers is None or len(self.classifiers) == 0:
            return pd.DataFrame(columns=["source", "term_id", "term_name", "probability"])
        coef = np.stack(self.classifiers["coef"].to_numpy())
        p = 1 / (1 + np.exp(-(coef @ np.asarray(vector, dtype=np.float64) + self.classifiers["intercept"].to_numpy())))
        top = np.argsort(-p, kind="stable")[:k]
        out = self.classifiers.iloc[top][["source", "term_id"]].reset_index(drop=True)
        out["term_name"] = self.classifiers["term_name"].iloc[top].to_numpy() if "term_name" in self.classifiers else ""
        out["probability"] = p[top]
        return out

    def orthologs(self, ensembl_id: str) -> pd.DataFrame:
        """Ortholog pairs of a gene (human or mouse side) with split, rank and cosine after alignment."""
        if self.ranks is None:
            return pd.DataFrame(columns=["human_ensembl_id", "mouse_ensembl_id", "split", "rank", "cosine"])
        r = self.ranks
        return r[(r["human_ensembl_id"] == ensembl_id) | (r["mouse_ensembl_id"] == ensembl_id)].reset_index(drop=True)


def sample_map(run_dir: str | os.PathLike[str], model: str) -> pd.DataFrame:
    """A 2-D map of a run's sample embeddings (samples/{model}/embeddings.parquet).

    Returns
    -------
    pandas.DataFrame
        sample_id, dataset, series_id, split, x, y: the first two principal
        components of the sample embeddings (scikit-learn PCA).

    Raises
    ------
    InputError
        If the run has no sample embeddings for ``model``.
    """
    from sklearn.decomposition import PCA

    path = Path(run_dir) / "samples" / model / "embeddings.parquet"
    if not path.exists():
        raise InputError(f"{path}: no sample embeddings (rule embed_samples) in this run")
    df = pd.read_parquet(path)
    x = np.stack(df["embedding"].to_numpy()).astype(np.float64)
    xy = PCA(n_components=2).fit_transform(x) if len(x) >= 2 else np.zeros((len(x), 2))
    return df[["sample_id", "dataset", "series_id", "split"]].assign(x=xy[:, 0], y=xy[:, 1])


def perturbation_runs(run_dir: str | os.PathLike[str], model: str) -> list[str]:
    """Names of the perturbation runs with results for ``model`` (perturbation/{run}/{model}/), sorted."""
    root = Path(run_dir) / "perturbation"
    if not root.exists():
        return []
    return sorted(p.name for p in root.iterdir() if (p / model / "gene_shifts.parquet").exists())


def perturbation_genes(run_dir: str | os.PathLike[str], model: str, name: str, *, n: int = 20,
                       direction: str = "shifted") -> pd.DataFrame:
    """The first ``n`` genes of a perturbation run's gene shifts.

    ``direction``: ``shifted``, the table's own order (by p-value, then shift
    above the null); ``steadied``, the genes shifted furthest below the null
    (:func:`generain.perturb.steadied_genes`, by z-score; with their
    one-sided ``fdr_normal_less``).

    Raises
    ------
    InputError
        If the run has no such perturbation results, or its table predates
        the one-sided test the other way (``steadied``).
    ValueError
        If ``direction`` is neither.
    """
    path = Path(run_dir) / "perturbation" / name / model / "gene_shifts.parquet"
    if not path.exists():
        raise InputError(f"{path}: no perturbation results")
    cols = ["symbol", "ensembl_id", "mean_shift", "null_mean_shift", "excess_shift", "n_samples", "p_value", "fdr"]
    if direction == "shifted":
        return pd.read_parquet(path, columns=cols).head(n)
    if direction != "steadied":
        raise ValueError(f"direction must be 'shifted' or 'steadied', got {direction!r}")
    table = pd.read_parquet(path)
    if "fdr_normal_less" not in table.columns:
        raise InputError(f"{path}: no fdr_normal_less column (written before the test for a shift below the "
                         "null existed); rerun the perturbation")
    from .perturb import steadied_genes  # imports torch: only for this view

    return steadied_genes(table, n)[cols[:6] + ["z_score", "fdr_normal_less"]]
