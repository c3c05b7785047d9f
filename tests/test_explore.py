"""Gene explorer on small hand-made embeddings whose answers are known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from generain import embed
from generain.explore import AmbiguousGene, GeneEmbedding, GeneNotFound


def _table() -> pd.DataFrame:
    # unit vectors A, B, C on the axes, so B - A + C = [-1, 1, 1] is D's direction exactly
    vec = {
        "A": [1, 0, 0], "B": [0, 1, 0], "C": [0, 0, 1], "D": [-1, 1, 1],
        "E": [1, 0.1, 0], "F": [1, 0.1, 0],  # E and F tie (identical vectors)
        "G": [-1, 0, 0],
    }
    rows = []
    for i, (sym, v) in enumerate(vec.items()):
        rows.append({"token": f"ENSG{i:011d}", "ensembl_id": f"ENSG{i:011d}", "symbol": sym, "biotype": "protein_coding",
                     "species": "human", "embedding": np.asarray(v, dtype=np.float32)})
    rows.append({"token": "ENSG00000000099", "ensembl_id": "ENSG00000000099", "symbol": "DUP", "biotype": "lncRNA",
                 "species": "human", "embedding": np.asarray([0, 1, 0], dtype=np.float32)})
    rows.append({"token": "ENSG00000000098", "ensembl_id": "ENSG00000000098", "symbol": "DUP", "biotype": "lncRNA",
                 "species": "human", "embedding": np.asarray([0, 1, 0.5], dtype=np.float32)})
    return pd.DataFrame(rows)


def test_exact_analogy_and_weighted_sum():
    e = GeneEmbedding.from_table(_table())
    top = e.analogy("A", "B", "C", n=3)
    assert top.loc[0, "symbol"] == "D" and top.loc[0, "cosine"] == pytest.approx(1.0, abs=1e-6)
    assert not set(top["symbol"]) & {"A", "B", "C"}  # inputs excluded
    # the general form: unit vectors, weighted: 2*A - G points along A (cos 1 with E/F's direction ~0.995)
    comb = e.combine([(2.0, "A"), (-1.0, "G")], n=2)
    assert list(comb["symbol"]) == ["E", "F"] and comb.loc[0, "cosine"] == pytest.approx(1 / np.sqrt(1.01), abs=1e-6)


def test_similar_ties_keep_vocabulary_order_and_ids_ignore_versions():
    e = GeneEmbedding.from_table(_table())
    top = e.similar("ENSG00000000000.7", n=3)  # A, version suffix ignored
    assert list(top["symbol"]) == ["E", "F", "B"]  # E and F tie, then B, C, DUP tie at 0: vocabulary order
    assert top.loc[0, "cosine"] == top.loc[1, "cosine"]
    assert list(top["rank"]) == [1, 2, 3]
    assert e.similar("a", n=1).loc[0, "symbol"] == "E"  # symbols case-insensitive when unique


def test_similarity_counts_genes_closer_to_each():
    e = GeneEmbedding.from_table(_table())
    s = e.similarity("A", "B")
    assert s["cosine"] == 0.0
    # cos(A, B) = 0. Closer to A: E, F (0.995) -> 2. Closer to B: E, F (0.0995), D (0.577),
    # DUP [0,1,0] (1.0), DUP [0,1,0.5] (0.894) -> 5; C and G (0, 0) are not closer
    assert s["closer_to_a"] == 2 and s["closer_to_b"] == 5 and s["n_genes"] == 9


def test_unknown_and_ambiguous_genes_give_clear_errors():
    e = GeneEmbedding.from_table(_table())
    with pytest.raises(GeneNotFound, match=r"'DUPP' is not in the embedding \(9 genes\); close matches: DUP"):
        e.similar("DUPP")
    with pytest.raises(AmbiguousGene, match="ENSG00000000099 \\(human\\), ENSG00000000098 \\(human\\)"):
        e.similar("DUP")
    # the id picks one of them: [0,1,0.5] ties with B and the other DUP [0,1,0] (0.894), then D (0.775)
    assert list(e.similar("ENSG00000000098", n=3)["symbol"]) == ["B", "DUP", "D"]


def test_word2vec_input_and_map(tmp_path):
    t = _table()
    path = tmp_path / "e.w2v.txt"
    embed.write_word2vec(list(t["symbol"].iloc[:7]), np.stack(t["embedding"].iloc[:7]), path)
    e = GeneEmbedding.load(path)
    assert e.analogy("A", "B", "C", n=1).loc[0, "token"] == "D"
    m = e.map_2d({"x": ["A", "B", "E"], "y": ["C", "D"]}, method="pca", seed=0)
    assert list(m["list"]) == ["x", "x", "x", "y", "y"] and np.isfinite(m[["x", "y"]].to_numpy()).all()
    again = e.map_2d({"x": ["A", "B", "E"], "y": ["C", "D"]}, method="pca", seed=0)
    pd.testing.assert_frame_equal(m, again)
    with pytest.raises(Exception, match="one to three gene lists"):
        e.map_2d({str(i): ["A"] for i in range(4)})


def test_species_switch_for_a_symbol_in_both_species():
    t = pd.DataFrame({"token": ["ENSG00000000001", "m_ENSMUSG00000000001", "ENSG00000000002"],
                      "ensembl_id": ["ENSG00000000001", "ENSMUSG00000000001", "ENSG00000000002"],
                      "symbol": ["Apoe", "Apoe", "X"], "biotype": "protein_coding", "species": ["human", "mouse", "human"],
                      "embedding": [np.asarray(v, dtype=np.float32) for v in ([1, 0], [1, 0.2], [0, 1])]})
    e = GeneEmbedding.from_table(t)
    with pytest.raises(AmbiguousGene, match=r"ENSG00000000001 \(human\), ENSMUSG00000000001 \(mouse\); give the "
                                            r"Ensembl id or a species"):
        e.similar("Apoe")
    assert e.similar("Apoe", query_species="mouse", n=1).loc[0, "token"] == "ENSG00000000001"
    assert e.similar("Apoe", query_species="human", species="human", n=1).loc[0, "token"] == "ENSG00000000002"


def test_perturbation_genes_in_both_directions(tmp_path):
    from generain.explore import perturbation_genes
    from generain.utils import InputError

    out = tmp_path / "perturbation" / "up_a" / "gpt"
    out.mkdir(parents=True)
    table = pd.DataFrame({"symbol": ["A", "B", "C", "D"], "ensembl_id": ["E1", "E2", "E3", "E4"],
                          "mean_shift": [0.3, 0.2, 0.01, 0.02], "null_mean_shift": [0.1, 0.1, 0.1, 0.1],
                          "excess_shift": [0.2, 0.1, -0.09, -0.08], "n_samples": 5, "p_value": [0.01, 0.02, 1, 1],
                          "fdr": [0.04, 0.04, 1, 1], "z_score": [4.0, 2.0, -3.0, np.nan],
                          "fdr_normal_less": [1.0, 1.0, 0.006, np.nan]})
    table.to_parquet(out / "gene_shifts.parquet")
    assert perturbation_genes(tmp_path, "gpt", "up_a", n=2)["symbol"].tolist() == ["A", "B"]
    steady = perturbation_genes(tmp_path, "gpt", "up_a", n=3, direction="steadied")
    assert steady["symbol"].tolist() == ["C", "B", "A"]  # by z-score; D (no z-score) left out
    assert steady["fdr_normal_less"].iloc[0] == 0.006
    with pytest.raises(ValueError, match="direction"):
        perturbation_genes(tmp_path, "gpt", "up_a", direction="up")
    table.drop(columns=["fdr_normal_less"]).to_parquet(out / "gene_shifts.parquet")
    with pytest.raises(InputError, match="no fdr_normal_less column"):
        perturbation_genes(tmp_path, "gpt", "up_a", direction="steadied")
    with pytest.raises(InputError, match="no perturbation results"):
        perturbation_genes(tmp_path, "gpt", "down_b")
