"""Gene-id harmonisation, gene-set files, orthologs, and the MyGene.info refresh."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from generain import annotation
from generain.stages import annotation as annotation_stage
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
                   "examples_unmatched": ["DUP", "NOPE", "ENSG99"], "id_type": "auto",
                   "by_id_type": {"ensembl": {"ids": 4, "matched": 3, "unmatched": 1, "collapsed_duplicates": 1},
                                  "symbol": {"ids": 3, "matched": 1, "unmatched": 2, "collapsed_duplicates": 0}}}


def test_classify_gene_ids_by_form():
    ids = ["ENSG00000141510.17", "ENSMUSG00000059552", "7157", "TP53|7157", "?|100130426", "TP53", "ENSA",
           "ENST00000269305"]
    assert annotation.classify_gene_ids(np.array(ids, dtype=object)).tolist() == [
        "ensembl", "ensembl", "entrez", "symbol_entrez", "symbol_entrez", "symbol", "symbol", "symbol"]


def test_harmonize_entrez_and_symbol_entrez_ids(gene_table):
    """The fixture table: ENSG01 A 1, ENSG02 B 2, ENSG03 C -, ENSG04 DUP 4, ENSG05 DUP -."""
    genes = annotation.read_gene_table(gene_table)
    out, rep = annotation.harmonize_genes(_cm(["2", "1", "3", "4"], [[1], [2], [3], [4]]), genes, source="geo.tsv")
    assert list(out.gene_ids) == ["ENSG02", "ENSG01", "ENSG04"] and out.counts[:, 0].tolist() == [1, 2, 4]
    assert list(out.symbols) == ["B", "A", "DUP"]  # an Entrez id resolves an ambiguous symbol
    assert rep["by_id_type"] == {"entrez": {"ids": 4, "matched": 3, "unmatched": 1, "collapsed_duplicates": 0}}
    # SYMBOL|ENTREZ: the Entrez part first; the symbol when it does not match; "?" never matches by symbol
    tcga = _cm(["A|1", "C|999", "?|2", "?|77", "DUP|5", "B|1"], [[1], [2], [3], [4], [5], [6]])
    out, rep = annotation.harmonize_genes(tcga, genes, source="tcga.tsv")
    assert list(out.gene_ids) == ["ENSG03", "ENSG02", "ENSG01"]  # A|1 and B|1 collide on ENSG01: B|1 is larger
    assert out.counts[:, 0].tolist() == [2, 3, 6]
    assert rep["by_id_type"] == {"symbol_entrez": {"ids": 6, "matched": 4, "unmatched": 2,
                                                   "collapsed_duplicates": 1}}
    assert rep["examples_unmatched"] == ["?|77", "DUP|5"]
    # a chosen id_type reads every id that way: "1" as a symbol matches nothing
    with pytest.raises(InputError, match=r"sym\.tsv: none of its 2 gene ids match the annotation \(the gene table; read as 2 "
                                         r"symbols; id_type: symbol.*set the dataset's id_type"):
        annotation.harmonize_genes(_cm(["1", "2"], [[1], [2]]), genes, source="sym.tsv", id_type="symbol")
    out, _ = annotation.harmonize_genes(_cm(["1", "ENSG03.4"], [[1], [2]]), genes, source="x", id_type="entrez")
    assert list(out.gene_ids) == ["ENSG01"]


def test_harmonize_nothing_matches(gene_table):
    genes = annotation.read_gene_table(gene_table)
    with pytest.raises(InputError, match=r"counts\.tsv: none of its 2 gene ids match .*first ids: X1, X2\)"):
        annotation.harmonize_genes(_cm(["X1", "X2"], [[1], [2]]), genes, source="counts.tsv")


def test_read_gene_sets_gmt_and_table(tmp_path):
    gmt = tmp_path / "MySets.gmt"
    gmt.write_text("T1\tterm one\tENSG01.2\tENSG02\nT2\tterm two\tENSG03\n")
    df = annotation.read_gene_sets(gmt)
    assert [list(r) for r in df.rows()] == [["MySets", "T1", "term one", "ENSG01"],
                                            ["MySets", "T1", "term one", "ENSG02"], ["MySets", "T2", "term two", "ENSG03"]]
    # the bundled parquet: dictionary-encoded strings read as String columns, version suffixes already gone
    bundled = annotation.read_gene_sets(Path(__file__).parents[1] / "resources" / "annotation" / "gene_sets.parquet")
    assert bundled.shape == (1_758_534, 4) and all(t == pl.Categorical for t in bundled.dtypes)
    versioned = tmp_path / "v.tsv"
    versioned.write_text("source\tterm_id\tterm_name\tensembl_id\nS\tT\tt\tENSG1.5\nS\tT\tt\tENSG1\n"
                         "S\tT\tt\tENSG2.20_PAR_Y\n")
    assert annotation.read_gene_sets(versioned)["ensembl_id"].to_list() == ["ENSG1", "ENSG1", "ENSG2_PAR_Y"]
    tsv = tmp_path / "sets.tsv"
    tsv.write_text("source\tterm_id\nX\tY\n")
    with pytest.raises(InputError, match="lacks column"):
        annotation.read_gene_sets(tsv)


def test_read_orthologs_rejects_one_to_many(tmp_path):
    p = tmp_path / "o.tsv"
    p.write_text("human_ensembl_id\tmouse_ensembl_id\nENSG1\tENSMUSG1\nENSG2\tENSMUSG1\n")
    with pytest.raises(InputError, match="mouse_ensembl_id is not one-to-one"):
        annotation.read_orthologs(p)


HCOP_HEADER = "human_ensembl_id\thuman_symbol\tmouse_ensembl_id\tmouse_symbol\tn_sources\tsources\n"


def test_hcop_one_to_one_by_hand(tmp_path):
    """Five predictions; which are one-to-one depends on the support threshold.

    H1-M1 (5 sources) competes with H1-M2 (1); M3 is predicted for H2 (3) and H3 (4).
    >= 1: H1 and M3 each occur twice, so only H4-M4 is one-to-one.
    >= 2: H1-M2 drops out, H1-M1 becomes one-to-one; M3 still twice.
    >= 4: H2-M3 drops out, H3-M3 becomes one-to-one; H4-M4 (2) drops out.
    """
    rows = [("ENSG1", "A", "ENSMUSG1", "a", 5), ("ENSG1", "A", "ENSMUSG2", "b", 1),
            ("ENSG2", "B", "ENSMUSG3", "c", 3), ("ENSG3", "C", "ENSMUSG3", "c", 4),
            ("ENSG4", "D", "ENSMUSG4", "d", 2)]
    p = tmp_path / "hcop.tsv"
    p.write_text(HCOP_HEADER + "".join(f"{h}\t{hs}\t{m}\t{ms}\t{n}\tX\n" for h, hs, m, ms, n in rows))
    hcop = annotation.read_hcop(p)
    pairs = {k: annotation.hcop_one_to_one(hcop, k)[["human_ensembl_id", "mouse_ensembl_id"]].values.tolist()
             for k in (1, 2, 4, 5)}
    assert pairs == {1: [["ENSG4", "ENSMUSG4"]],
                     2: [["ENSG1", "ENSMUSG1"], ["ENSG4", "ENSMUSG4"]],
                     4: [["ENSG1", "ENSMUSG1"], ["ENSG3", "ENSMUSG3"]],
                     5: [["ENSG1", "ENSMUSG1"]]}
    with pytest.raises(InputError, match="no one-to-one pair has at least 6"):
        annotation.hcop_one_to_one(hcop, 6)
    out = tmp_path / "o.tsv"
    assert annotation_stage.select_orthologs(hcop=p, min_sources=4, out_orthologs=out) == 2
    assert annotation.read_orthologs(out)["mouse_symbol"].tolist() == ["a", "c"]


@pytest.mark.parametrize("body, match", [
    ("ENSG1\tA\tENSMUSG1\ta\ttwo\tX\n", "n_sources must be a positive integer \\(row 2: 'two'\\)"),
    ("ENSG1\tA\tENSMUSG1\ta\t0\tX\n", "n_sources must be a positive integer"),
    ("ENSG1\tA\tENSMUSG1\ta\t2\tX\nENSG1\tA\tENSMUSG1\ta\t3\tY\n", "pair ENSG1-ENSMUSG1 is listed twice"),
])
def test_read_hcop_rejects_bad_rows(tmp_path, body, match):
    p = tmp_path / "hcop.tsv"
    p.write_text(HCOP_HEADER + body)
    with pytest.raises(InputError, match=f"{p}: {match}"):
        annotation.read_hcop(p)
    p.write_text("human_ensembl_id\tmouse_ensembl_id\nENSG1\tENSMUSG1\n")
    with pytest.raises(InputError, match=r"lacks column\(s\) \['human_symbol'"):
        annotation.read_hcop(p)


def test_refresh_gene_table_with_recorded_responses(gene_table, tmp_path):
    """Replays MyGene.info responses recorded in tests/data (see its README); never calls the service."""
    recorded = json.loads((DATA / "mygene_querymany.json").read_text())
    calls = []

    def replay(ids, **kwargs):
        calls.append((list(ids), kwargs["scopes"]))
        return [h for h in recorded if h["query"] in ids]

    out = tmp_path / "genes.tsv"
    n = annotation_stage.refresh_gene_table(snapshot=gene_table, out_genes=out, query=replay)
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
        annotation_stage.refresh_gene_table(snapshot=gene_table, out_genes=tmp_path / "g.tsv", query=offline)
    assert not (tmp_path / "g.tsv").exists()


def test_bundled_annotation_is_consistent():
    repo = Path(__file__).resolve().parents[1] / "resources" / "annotation"
    genes = annotation.read_gene_table(repo / "genes.tsv")
    assert len(genes) == 60_616
    assert (genes["biotype"] == "protein_coding").sum() == 19_944
    orth = annotation.read_orthologs(repo / "orthologs_human_mouse.tsv")
    assert len(orth) == 16_085
    # HCOP: counts in resources/README.md; TP53 -> Trp53 is supported by all 12 databases.
    hcop = annotation.read_hcop(repo / "orthologs_hcop_human_mouse.tsv.gz")
    assert len(hcop) == 67_624 and hcop["n_sources"].between(1, 12).all()
    assert [len(annotation.hcop_one_to_one(hcop, k)) for k in (1, 3, 8)] == [12_825, 16_288, 16_407]
    tp53 = annotation.hcop_one_to_one(hcop, 3).set_index("human_symbol").loc["TP53"]
    assert (tp53["mouse_ensembl_id"], tp53["mouse_symbol"], tp53["n_sources"]) == ("ENSMUSG00000059552", "Trp53", 12)
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
    assert [list(r) for r in df.rows()] == [["MSigSyms", "T1", "term one", "ENSG01"], ["MSigSyms", "T1", "term one", "ENSG03"],
                                  ["MSigSyms", "T2", "term two", "ENSG02"], ["MSigSyms", "T2", "term two", "ENSG02"],
                                  ["MSigSyms", "T2", "term two", "ENSG03"]]  # B -> ENSG02 repeats ENSG02: kept
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    msg = warnings[0].getMessage()
    assert "MSigSyms.gmt" in msg and "dropped 2 gene-set entries" in msg
    assert "1 unknown symbol(s) (1 entries, e.g. NOPE)" in msg
    assert "1 ambiguous symbol(s) (1 entries, e.g. DUP)" in msg
    # without a gene table the symbols are kept as given
    caplog.clear()
    raw = annotation.read_gene_sets(gmt)
    assert raw["ensembl_id"].to_list() == ["A", "ENSG03", "NOPE", "B", "DUP", "ENSG02", "C"]
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


def test_read_gene_sets_gmt_symbols_need_symbol_column(gene_table, tmp_path):
    gmt = tmp_path / "s.gmt"
    gmt.write_text("T1\tterm one\tA\n")
    genes = annotation.read_gene_table(gene_table).drop(columns="symbol")
    with pytest.raises(InputError, match=r"s\.gmt: gene_table lacks column\(s\) \['symbol'\]"):
        annotation.read_gene_sets(gmt, gene_table=genes)


# ---------------------------------------------------------------------------
# GTF / GFF3 (pysam)
# ---------------------------------------------------------------------------

KALLISTO_TEST = Path("/usr/share/doc/kallisto/test")


def test_gencode_v36_gtf_reads_back_the_bundled_gene_table(tmp_path):
    """tests/data/gencode.v36.genes.gtf.gz (GENCODE v36's 60,660 gene records with their real coordinates,
    written by tests/data/make_gencode_gtf.py from the GRanges annotation/genes.tsv is built from): read through
    pysam, it gives the bundled table's genes, symbols and biotypes, and GENCODE's coordinates."""
    from generain import gtf

    src = DATA / "gencode.v36.genes.gtf.gz"
    indexed = gtf.index_annotation(src, tmp_path / "annotation.gz")
    assert (tmp_path / "annotation.gz.tbi").exists()
    genes, transcripts = gtf.read_annotation(indexed, source=src)
    bundled = annotation.read_gene_table(Path(__file__).parents[1] / "resources" / "annotation" / "genes.tsv")
    assert len(genes) == 60_616 and transcripts.empty  # 60,660 records less the 44 _PAR_Y copies
    pd.testing.assert_frame_equal(genes[["ensembl_id", "symbol", "biotype"]],
                                  bundled[["ensembl_id", "symbol", "biotype"]])
    assert genes["entrez_id"].isna().all()  # GENCODE's GTF has no Entrez ids
    tp53 = genes.set_index("symbol").loc["TP53"]
    assert (tp53["ensembl_id"], tp53["chromosome"], tp53["start"], tp53["end"], tp53["strand"]) == (
        "ENSG00000141510", "chr17", 7_661_779, 7_687_538, "-")  # GENCODE v36 / GRCh38


@pytest.mark.skipif(not KALLISTO_TEST.exists(), reason="Debian kallisto-examples not installed")
def test_ensembl_gtf_of_kallisto_examples_genes_and_transcripts(tmp_path):
    """Debian kallisto-examples' transcripts.gtf.gz (Ensembl 90 GTF, 11 genes on chromosomes 5 and 12)."""
    from generain import gtf

    src = KALLISTO_TEST / "transcripts.gtf.gz"
    genes, transcripts = gtf.read_annotation(gtf.index_annotation(src, tmp_path / "a.gz"), source=src)
    assert len(genes) == 11 and genes["biotype"].value_counts().to_dict() == {"protein_coding": 10,
                                                                             "antisense_RNA": 1}
    ugt = genes.set_index("symbol").loc["UGT3A2"]
    assert (ugt["ensembl_id"], ugt["chromosome"], ugt["start"], ugt["end"]) == ("ENSG00000168671", "5", 36035017,
                                                                               36071358)
    assert len(transcripts) == 27
    tx = transcripts.set_index("transcript_id")["ensembl_id"]
    assert tx["ENST00000513300"] == tx["ENST00000282507"] == "ENSG00000168671"
    # kallisto's targets carry versions: the map strips them
    assert gtf.transcript_gene_index(np.array(["ENST00000513300.5", "ENST00000000000.1"]), transcripts).tolist() == [
        "ENSG00000168671", None]


def test_gff3_unsorted_with_entrez_and_errors(tmp_path):
    """An Ensembl-style GFF3, records out of order: genes (gene and ncRNA_gene features), their mRNA /
    lnc_RNA transcripts by ID and Parent, Entrez ids from Dbxref; exons are not transcripts."""
    from generain import gtf

    gff = tmp_path / "mini.gff3"
    gff.write_text(
        "##gff-version 3\n"
        "2\tensembl\tlnc_RNA\t500\t900\t.\t-\t.\tID=transcript:ENST2;Parent=gene:ENSG2;transcript_id=ENST2\n"
        "1\tensembl\tgene\t100\t200\t.\t+\t.\tID=gene:ENSG1;Name=AB;biotype=protein_coding;gene_id=ENSG1;"
        "Dbxref=GeneID:4711\n"
        "2\tensembl\tncRNA_gene\t500\t900\t.\t-\t.\tID=gene:ENSG2;Name=CD;biotype=lncRNA;gene_id=ENSG2\n"
        "1\tensembl\tmRNA\t100\t200\t.\t+\t.\tID=transcript:ENST1;Parent=gene:ENSG1;transcript_id=ENST1\n"
        "1\tensembl\texon\t100\t150\t.\t+\t.\tParent=transcript:ENST1;Name=ENSE1\n")
    genes, transcripts = gtf.read_annotation(gtf.index_annotation(gff, tmp_path / "a.gz"), source=gff)
    assert genes[["ensembl_id", "symbol", "biotype", "chromosome", "start", "end", "strand"]].values.tolist() == [
        ["ENSG1", "AB", "protein_coding", "1", 100, 200, "+"], ["ENSG2", "CD", "lncRNA", "2", 500, 900, "-"]]
    assert genes["entrez_id"].tolist()[0] == 4711 and pd.isna(genes["entrez_id"].tolist()[1])
    assert transcripts.values.tolist() == [["ENST1", "ENSG1"], ["ENST2", "ENSG2"]]
    no_genes = tmp_path / "tx_only.gtf"
    no_genes.write_text('1\tx\ttranscript\t1\t10\t.\t+\t.\tgene_id "G1"; transcript_id "T1";\n')
    with pytest.raises(InputError, match=r"tx_only\.gtf: no gene records"):
        gtf.read_annotation(gtf.index_annotation(no_genes, tmp_path / "b.gz"), source=no_genes)
    broken = tmp_path / "broken.gtf"
    broken.write_text("1\tx\tgene\tone\t10\n")
    with pytest.raises(InputError, match=r"broken\.gtf: line 1 is not a GTF/GFF3 record"):
        gtf.index_annotation(broken, tmp_path / "c.gz")
    with pytest.raises(InputError, match=r"absent\.gtf: annotation file not found"):
        gtf.index_annotation(tmp_path / "absent.gtf", tmp_path / "d.gz")
