"""FASTQ datasets quantified as ARCHS4 does: sample sheets, read counts, gene sums, and kallisto through the workflow.

The workflow test runs the real kallisto (Debian's 0.48.0) on Debian kallisto-examples' reads, transcriptome
and GTF; .ci/run installs both packages and sets GENERAIN_REQUIRE_KALLISTO=1 so that a missing kallisto fails
instead of skipping.
"""
from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from generain import quantify
from generain.utils import InputError

EXAMPLES = Path("/usr/share/doc/kallisto/test")


def _require_kallisto() -> None:
    if shutil.which("kallisto") and EXAMPLES.exists():
        return
    if os.environ.get("GENERAIN_REQUIRE_KALLISTO") == "1":
        pytest.fail("GENERAIN_REQUIRE_KALLISTO=1 but kallisto or kallisto-examples is not installed")
    pytest.skip("Debian kallisto and kallisto-examples not installed")


def test_sample_sheet_resolves_paths_and_fills_single_end_defaults(tmp_path):
    (tmp_path / "reads").mkdir()
    for name in ("a_1.fq", "a_2.fq", "b.fq"):
        (tmp_path / "reads" / name).write_text("@r\nACGT\n+\nIIII\n")
    sheet = tmp_path / "samples.tsv"
    sheet.write_text("sample_id\tfastq_1\tfastq_2\tfragment_length\tfragment_sd\n"
                     "A\treads/a_1.fq\treads/a_2.fq\t\t\nB\treads/b.fq\t\t180\t\n")
    s = quantify.read_sample_sheet(sheet, fragment_length=200, fragment_sd=20)
    assert s["sample_id"].tolist() == ["A", "B"]
    assert s["fastq_1"].tolist() == [str(tmp_path / "reads" / "a_1.fq"), str(tmp_path / "reads" / "b.fq")]
    assert s["fastq_2"].tolist() == [str(tmp_path / "reads" / "a_2.fq"), ""]
    assert np.isnan(s["fragment_length"][0]) and s["fragment_length"][1] == 180 and s["fragment_sd"][1] == 20
    assert quantify.kallisto_command("i.kidx", s["fastq_1"][1], None, "out", fragment_length=180, fragment_sd=20,
                                     threads=2)[-6:] == ["--single", "-l", "180", "-s", "20", s["fastq_1"][1]]
    missing = tmp_path / "missing.tsv"
    missing.write_text("sample_id\tfastq_1\nA\treads/absent_1.fq.gz\n")
    with pytest.raises(InputError, match=r"missing\.tsv: sample A: fastq_1 .*absent_1\.fq\.gz does not exist"):
        quantify.read_sample_sheet(missing, fragment_length=200, fragment_sd=20)
    dup = tmp_path / "dup.tsv"
    dup.write_text("sample_id\tfastq_1\nA\treads/b.fq\nA\treads/b.fq\n")
    with pytest.raises(InputError, match=r"dup\.tsv: duplicated sample ids \['A'\]"):
        quantify.read_sample_sheet(dup, fragment_length=200, fragment_sd=20)


def test_gene_counts_sum_transcripts_and_round_halves_to_even():
    """By hand: G1 = T1 + T2, G2 = T3; T4 is not in the annotation (reported, left out)."""
    targets = ["T1.1", "T2.3", "T3.1", "T4.1"]
    a = pd.Series([1.25, 1.25, 3.5, 9.0], index=targets)   # G1 2.5 -> 2, G2 3.5 -> 4
    b = pd.Series([0.2, 0.29, 0.5, 1.0], index=targets)    # G1 0.49 -> 0, G2 0.5 -> 0
    tx = pd.DataFrame({"transcript_id": ["T1", "T2", "T3"], "ensembl_id": ["G1", "G1", "G2"]})
    genes, sums, counts, report = quantify.gene_counts([a, b], tx)
    assert genes.tolist() == ["G1", "G2"]
    np.testing.assert_allclose(sums, [[2.5, 0.49], [3.5, 0.5]])
    assert counts.tolist() == [[2, 0], [4, 0]] and counts.dtype == np.uint32
    assert report == {"targets": 4, "targets_mapped": 3, "targets_unmapped": 1, "genes": 2,
                      "est_counts_unmapped": [9.0, 1.0]}
    with pytest.raises(InputError, match="none of kallisto's 4 targets"):
        quantify.gene_counts([a], tx.assign(transcript_id=["X1", "X2", "X3"]))


def test_truncated_fastq_is_an_error_naming_it(tmp_path):
    _require_kallisto()
    with gzip.open(EXAMPLES / "reads_1.fastq.gz", "rb") as fh:
        head = fh.read(10_050)  # cut inside record 80's quality string
    bad = tmp_path / "cut.fastq"
    bad.write_bytes(head)
    with pytest.raises(InputError, match=r"cut\.fastq: unreadable or truncated FASTQ after 79 reads"):
        quantify.count_reads(bad)
    assert quantify.count_reads(EXAMPLES / "reads_1.fastq.gz") == 10_000


def test_fastq_dataset_through_the_workflow(tmp_path):
    """kallisto-examples' reads as a paired-end and a single-end sample, beside the demo's ARCHS4 counts: the
    index is built, each sample quantified, and the FASTQ dataset's gene counts are the sums of kallisto's own
    shipped est_counts (quant_out/abundance.tsv, the same kallisto 0.48.0) by the GTF's transcript map, rounded
    halves to even; QC records the reads pysam counted and the pseudoaligned reads kallisto reported."""
    _require_kallisto()
    from generain import gtf, io
    from test_workflow import _config, _snakemake

    sheet = tmp_path / "samples.tsv"
    sheet.write_text("sample_id\tfastq_1\tfastq_2\n"
                     f"paired\t{EXAMPLES / 'reads_1.fastq.gz'}\t{EXAMPLES / 'reads_2.fastq.gz'}\n"
                     f"single\t{EXAMPLES / 'reads_1.fastq.gz'}\t\n")
    cfg = _config(run_name="fq", annotation={"gtf": {"human": str(EXAMPLES / "transcripts.gtf.gz")}},
                  kallisto={"transcriptome": {"human": str(EXAMPLES / "transcripts.fasta.gz")}},
                  qc={"min_total_counts": 1000, "min_detected_genes": 2})
    cfg["datasets"] = cfg["datasets"] + [{"name": "reads", "path": str(sheet), "format": "fastq",
                                          "species": "human"}]
    _snakemake(tmp_path, cfg, "results/fq/qc/samples.parquet", "results/fq/ingest/reads.json")
    res = tmp_path / "results" / "fq"
    m = io.read_matrix(res / "ingest" / "reads.h5")
    assert m.samples["sample_id"].tolist() == ["paired", "single"]
    _, tx = gtf.read_annotation(res / "annotation" / "human" / "annotation.gz", source="transcripts.gtf.gz")
    expected = {}
    for name, abundance in (("paired", EXAMPLES / "quant_out" / "abundance.tsv"),
                            ("single", res / "fastq" / "reads" / "quant" / "single" / "abundance.tsv")):
        est = quantify.read_abundance(abundance)
        gene = gtf.transcript_gene_index(est.index.to_numpy(), tx)
        expected[name] = est.groupby(gene).sum()
    for j, name in enumerate(("paired", "single")):
        want = expected[name].reindex(m.genes["ensembl_id"]).to_numpy()
        np.testing.assert_array_equal(m.matrix[:, j], np.rint(want), err_msg=name)
    assert int(m.matrix[:, 0].sum()) == round(expected["paired"].sum())  # every target maps to a gene here
    qc_table = pd.read_parquet(res / "qc" / "samples.parquet")
    fq = qc_table[qc_table["dataset"] == "reads"].set_index("sample_id")
    assert fq["n_reads"].tolist() == [10_000, 10_000]  # read pairs for the paired sample
    assert fq.loc["paired", "n_pseudoaligned"] == 9_413  # as kallisto's shipped run_info.json
    assert fq["passed"].all() and qc_table.loc[qc_table["dataset"] == "demo", "n_reads"].isna().all()
    assert (qc_table["dataset"] == "demo").sum() == 123  # merged with the other datasets before QC
