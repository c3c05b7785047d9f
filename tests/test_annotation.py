"""Gene-id harmonisation, gene-set files, orthologs, and the MyGene.info refresh."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from generain import annotation, pipeline
from generain.io import CountMatrix
from generain.utils import InputError

DATA = Path(__file__).parent / "data"


def _cm(ids, counts):
    counts = np.asarray(counts, dtype=np.uint32)
    return CountMatrix(counts=counts, gene_ids=np.array(ids, dtype=object),
                       sample_ids=np.array([f"s{i}" for i in range(counts.shape[1])], dtype=object))


def test_harmonize_versions_symbols_and_collisions(gene_table):
    genes = annotation.read_gene_table(gene_table)
    cm = _cm(["ENSG01.7", "B", "ENSG03", "ENSG01.8", "DUP", "NOPE", "ENSG99"],
             [[1, 1], [2, 2], [3, 3], [9, 9], [5, 5], [6, 6], [7, 7]])
    out, rep = annotation.harmonize_genes(cm, genes, source="x.tsv")
    # ENSG01.7 and ENSG01.8 collide: the larger total (ENSG01.8) is kept; "DUP" is an ambiguous symbol
    assert list(out.gene_ids) == ["ENSG02", "ENSG03", "ENSG01"]
    assert list(out.symbols) == ["B", "C", "A"]
    np.testing.assert_array_equal(out.counts, [[2, 2], [3, 3], [9, 9]])
    assert rep == {"genes_in_source": 7, "matched": 4, "unmatched": 3, "collapsed_duplicates": 1,
                   "examples_unmatched": ["DUP", "NOPE", "ENSG99"]}


def test_harmonize_nothing_matches(gene_table):
    genes = annotation.read_gene_table(gene_table)
    with pytest.raises(InputError, match=r"counts\.tsv: none of its 2 gene ids match .*first ids: X1, X2"):
        annotation.harmonize_genes(_cm(["X1", "X2"], [[1], [2]]), genes, source="counts.tsv")


def test_read_gene_sets_gmt_and_table(tmp_path):
    gmt = tmp_path / "MySets.gmt"
    gmt.write_text("T1\tterm one\tENSG01.2\tENSG02\nT2\tterm two\tENSG03\n")
    df = annotation.read_gene_sets(gmt)
    assert df.values.tolist() == [["MySets", "T1", "term one", "ENSG01"], ["MySets", "T1", "term one", "ENSG02"],
                                  ["MySets", "T2", "term two", "ENSG03"]]
    tsv = tmp_path / "sets.tsv"
    tsv.write_text("source\tterm_id\nX\tY\n")
    with pytest.raises(InputError, match="lacks column"):
        annotation.read_gene_sets(tsv)


def test_read_orthologs_rejects_one_to_many(tmp_path):
    p = tmp_path / "o.tsv"
    p.write_text("human_ensembl_id\tmouse_ensembl_id\nENSG1\tENSMUSG1\nENSG2\tENSMUSG1\n")
    with pytest.raises(InputError, match="mouse_ensembl_id is not one-to-one"):
        annotation.read_orthologs(p)


def test_refresh_gene_table_with_recorded_responses(gene_table, tmp_path):
    """Replays MyGene.info responses recorded in tests/data (see its README); never calls the service."""
    recorded = json.loads((DATA / "mygene_querymany.json").read_text())
    calls = []

    def replay(ids, **kwargs):
        calls.append((list(ids), kwargs["scopes"]))
        return [h for h in recorded if h["query"] in ids]

    out = tmp_path / "genes.tsv"
    n = pipeline.refresh_gene_table(snapshot=gene_table, out_genes=out, query=replay)
    assert calls[0][1] == "ensembl.gene" and n == 2
    df = annotation.read_gene_table(out)
    row = df.set_index("ensembl_id")
    assert row.loc["ENSG01", "symbol"] == "A_NEW" and row.loc["ENSG01", "entrez_id"] == 101
    assert row.loc["ENSG03", "biotype"] == "lncRNA" and row.loc["ENSG03", "symbol"] == "C_NEW"
    assert row.loc["ENSG02", "symbol"] == "B"  # not found online: snapshot kept


def test_refresh_gene_table_unreachable_service(gene_table, tmp_path):
    def offline(*args, **kwargs):
        raise ConnectionError("Name or service not known")

    with pytest.raises(InputError, match="MyGene.info query failed .*Name or service not known"):
        pipeline.refresh_gene_table(snapshot=gene_table, out_genes=tmp_path / "g.tsv", query=offline)
    assert not (tmp_path / "g.tsv").exists()


def test_bundled_annotation_is_consistent():
    repo = Path(__file__).resolve().parents[1] / "resources" / "annotation"
    genes = annotation.read_gene_table(repo / "genes.tsv")
    assert len(genes) == 60_616
    assert (genes["biotype"] == "protein_coding").sum() == 19_944
    orth = annotation.read_orthologs(repo / "orthologs_human_mouse.tsv")
    assert len(orth) == 16_085
    sets = pd.read_parquet(repo / "gene_sets.parquet", columns=["source", "term_id"]).drop_duplicates()
    assert sets["source"].astype(str).value_counts().to_dict() == {"GO_BP": 6845, "HPO": 5085, "GO_MF": 1307,
                                                                  "GO_CC": 853}


def test_read_gene_sets_gmt_maps_symbols(gene_table, tmp_path, caplog):
    genes = annotation.read_gene_table(gene_table)  # A, B, C unique; DUP -> ENSG04 and ENSG05
    gmt = tmp_path / "MSigSyms.gmt"
    gmt.write_text("T1\tterm one\tA\tENSG03.1\tNOPE\n"
                   "T2\tterm two\tB\tDUP\tENSG02\tC\n")
    with caplog.at_level("WARNING", logger="generain.annotation"):
        df = annotation.read_gene_sets(gmt, gene_table=genes)
    assert df.values.tolist() == [["MSigSyms", "T1", "term one", "ENSG01"], ["MSigSyms", "T1", "term one", "ENSG03"],
                                  ["MSigSyms", "T2", "term two", "ENSG02"], ["MSigSyms", "T2", "term two", "ENSG03"]]
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    msg = warnings[0].getMessage()
    assert "MSigSyms.gmt" in msg and "dropped 2 gene-set entries" in msg
    assert "1 unknown symbol(s) (1 entries, e.g. NOPE)" in msg
    assert "1 ambiguous symbol(s) (1 entries, e.g. DUP)" in msg
    # without a gene table the symbols are kept as given
    caplog.clear()
    raw = annotation.read_gene_sets(gmt)
    assert raw["ensembl_id"].tolist() == ["A", "ENSG03", "NOPE", "B", "DUP", "ENSG02", "C"]
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_read_gene_sets_gmt_symbols_need_symbol_column(gene_table, tmp_path):
    gmt = tmp_path / "s.gmt"
    gmt.write_text("T1\tterm one\tA\n")
    genes = annotation.read_gene_table(gene_table).drop(columns="symbol")
    with pytest.raises(InputError, match=r"s\.gmt: gene_table lacks column\(s\) \['symbol'\]"):
        annotation.read_gene_sets(gmt, gene_table=genes)
