"""Readers: both ARCHS4 field-name variants, count tables, AnnData, bad files."""
from __future__ import annotations

import gzip

import h5py
import numpy as np
import pytest

from conftest import write_archs4
from generain import io
from generain.utils import InputError

COUNTS = np.array([[1, 2, 3, 4, 5], [0, 0, 7, 0, 9], [10, 20, 30, 40, 50]], dtype=np.uint32)


@pytest.mark.parametrize("variant", [1, 2])
def test_read_archs4_both_field_variants(tmp_path, variant):
    path = write_archs4(tmp_path / "a.h5", COUNTS, genes=["ENSG01.1", "ENSG02", "ENSG03"], symbols=["A", "B", "C"],
                        samples=[f"GSM{i}" for i in range(5)], variant=variant, scp=[0, 0.1, 0.9, 0, 0])
    cm = io.read_archs4(path, block_samples=2, progress=False)  # 3 blocks: 2 + 2 + 1 samples
    np.testing.assert_array_equal(cm.counts, COUNTS)
    assert list(cm.gene_ids) == ["ENSG01.1", "ENSG02", "ENSG03"]
    assert list(cm.symbols) == ["A", "B", "C"]
    assert list(cm.sample_ids) == ["GSM0", "GSM1", "GSM2", "GSM3", "GSM4"]
    assert list(cm.series_ids) == ["GSE1"] * 5
    np.testing.assert_allclose(cm.singlecell_probability, [0, 0.1, 0.9, 0, 0], rtol=1e-6)


def test_read_archs4_block_is_rounded_to_chunk_width(tmp_path, caplog):
    path = write_archs4(tmp_path / "a.h5", COUNTS, genes=["g1", "g2", "g3"], symbols=["A", "B", "C"],
                        samples=list("abcde"), chunks=(1, 4))
    with caplog.at_level("INFO"):
        cm = io.read_archs4(path, block_samples=3, progress=False)
    assert "blocks of 4" in caplog.text
    np.testing.assert_array_equal(cm.counts, COUNTS)


def test_read_archs4_missing_and_corrupt(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        io.read_archs4(tmp_path / "nope.h5")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"this is not HDF5" * 100)
    with pytest.raises(InputError, match=r"bad\.h5: not a readable HDF5 file"):
        io.read_archs4(bad)
    with h5py.File(tmp_path / "empty.h5", "w") as h5:
        h5.create_group("meta")
    with pytest.raises(InputError, match="no dataset data/expression"):
        io.read_archs4(tmp_path / "empty.h5")


def test_read_archs4_truncated_data_raises_not_zeros(tmp_path):
    path = write_archs4(tmp_path / "a.h5", np.arange(3 * 400).reshape(3, 400) % 97, genes=["g1", "g2", "g3"],
                        symbols=["A", "B", "C"], samples=[f"s{i}" for i in range(400)], chunks=(1, 100))
    raw = bytearray(path.read_bytes())
    with h5py.File(path, "r") as h5:
        offset = h5["data/expression"].id.get_chunk_info(5).byte_offset
    raw[offset:offset + 40] = b"\xff" * 40  # corrupt one compressed chunk
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"cannot read samples"):
        io.read_archs4(path, progress=False)


def test_read_archs4_missing_sample_field(tmp_path):
    path = write_archs4(tmp_path / "a.h5", COUNTS, genes=["g1", "g2", "g3"], symbols=["A", "B", "C"], samples=list("abcde"))
    with h5py.File(path, "a") as h5:
        del h5["meta/samples/geo_accession"]
    with pytest.raises(InputError, match="geo_accession"):
        io.read_archs4(path)


def test_read_count_table_tsv_gz_and_csv(tmp_path):
    p = tmp_path / "counts.tsv.gz"
    with gzip.open(p, "wt") as fh:
        fh.write("gene\tS1\tS2\nENSG01.3\t5\t0\nENSG02\t1\t2\n")
    cm = io.read_count_table(p)
    np.testing.assert_array_equal(cm.counts, [[5, 0], [1, 2]])
    assert list(cm.sample_ids) == ["S1", "S2"] and list(cm.gene_ids) == ["ENSG01.3", "ENSG02"]
    assert np.isnan(cm.singlecell_probability).all()
    c = tmp_path / "counts.csv"
    c.write_text("gene,S1\nENSG01,3.0\n")
    assert io.read_count_table(c).counts.tolist() == [[3]]


@pytest.mark.parametrize("body,message", [
    ("gene\tS1\tS2\nENSG01\t5\t-1\n", "negative"),
    ("gene\tS1\tS2\nENSG01\t5\t1.5\n", "whole numbers"),
    ("gene\tS1\tS2\nENSG01\t5\t\n", "missing or non-finite"),
    ("gene\tS1\tS2\nENSG01\t5\tabc\n", "not numeric"),
])
def test_read_count_table_rejects_bad_counts(tmp_path, body, message):
    p = tmp_path / "bad.tsv"
    p.write_text(body)
    with pytest.raises(InputError, match=rf"bad\.tsv: .*{message}"):
        io.read_count_table(p)


def test_read_h5ad_transposes_to_genes_by_samples(tmp_path):
    import anndata as ad
    import pandas as pd

    x = np.array([[1, 0, 3], [4, 5, 6]], dtype=np.float32)  # 2 samples x 3 genes
    a = ad.AnnData(x, obs=pd.DataFrame(index=["S1", "S2"]),
                   var=pd.DataFrame({"gene_ids": ["ENSG1", "ENSG2", "ENSG3"]}, index=["a", "b", "c"]))
    a.write_h5ad(tmp_path / "x.h5ad")
    cm = io.read_h5ad(tmp_path / "x.h5ad", gene_id_column="gene_ids")
    np.testing.assert_array_equal(cm.counts, x.T)
    assert list(cm.gene_ids) == ["ENSG1", "ENSG2", "ENSG3"]
    a.X = x + 0.5
    a.write_h5ad(tmp_path / "y.h5ad")
    with pytest.raises(InputError, match="whole numbers"):
        io.read_h5ad(tmp_path / "y.h5ad")


def test_write_read_matrix_roundtrip(tmp_path):
    m = np.arange(6, dtype=np.float32).reshape(3, 2)
    io.write_matrix(tmp_path / "m.h5", m, genes={"ensembl_id": np.array(["a", "b", "c"], dtype=object)},
                    samples={"sample_id": np.array(["s1", "s2"], dtype=object), "x": np.array([1, 2])},
                    attrs={"method": "binning"})
    back = io.read_matrix(tmp_path / "m.h5")
    np.testing.assert_array_equal(back.matrix, m)
    assert back.genes["ensembl_id"].tolist() == ["a", "b", "c"]
    assert back.samples["x"].tolist() == [1, 2] and back.attrs["method"] == "binning"


def test_read_archs4_missing_ensembl_id_falls_back_to_symbol(tmp_path):
    path = write_archs4(tmp_path / "a.h5", COUNTS, genes=["ENSG01", "", "ENSG03"], symbols=["A", "B", "C"],
                        samples=list("abcde"))
    assert list(io.read_archs4(path, progress=False).gene_ids) == ["ENSG01", "B", "ENSG03"]


def test_read_count_table_duplicated_header_and_htseq_rows(tmp_path):
    dup = tmp_path / "dup.tsv"
    dup.write_text("gene\tS1\tS1\nENSG01\t5\t1\n")
    with pytest.raises(InputError, match=r"dup\.tsv: duplicated sample ids in the header: \['S1'\]"):
        io.read_count_table(dup)
    ht = tmp_path / "htseq.tsv"
    ht.write_text("gene\tS1\nENSG01\t5\n__no_feature\t100\n__ambiguous\t7\n")
    cm = io.read_count_table(ht)
    assert list(cm.gene_ids) == ["ENSG01"] and cm.counts.tolist() == [[5]]


def test_chunk_level_deflate_read_matches_hdf5(tmp_path):
    """read_deflate_block (ISA-L inflate of the stored chunks) gives h5py's values: chunks (2, 7) on a 5 x 30
    matrix, so edge chunks are partial in both directions, and unaligned column ranges."""
    rng = np.random.default_rng(0)
    counts = rng.integers(0, 50, (5, 30)).astype(np.uint32)
    with h5py.File(tmp_path / "a.h5", "w") as h5:
        h5.create_dataset("x", data=counts, chunks=(2, 7), compression="gzip")
        h5.create_dataset("shuffled", data=counts, chunks=(2, 7), compression="gzip", shuffle=True)
        ds = h5["x"]
        assert io._deflate_only(ds) and not io._deflate_only(h5["shuffled"])
        for first, last in ((0, 30), (3, 29), (7, 14), (13, 15)):
            out = np.zeros((5, last - first), np.uint32)
            io.read_deflate_block(ds, first, last, out)
            np.testing.assert_array_equal(out, counts[:, first:last])


def test_read_archs4_chunks_never_written_read_as_zeros(tmp_path):
    """Chunks without storage (samples never written) fall back to HDF5, which gives the fill value."""
    path = write_archs4(tmp_path / "a.h5", np.arange(3 * 400).reshape(3, 400) % 97 + 1, genes=["g1", "g2", "g3"],
                        symbols=["A", "B", "C"], samples=[f"s{i}" for i in range(400)], chunks=(1, 100))
    with h5py.File(path, "a") as h5:
        ds = h5["data/expression"]
        d = h5.create_dataset("data/partial", shape=ds.shape, dtype=ds.dtype, chunks=(1, 100), compression="gzip")
        d[:, :200] = ds[:, :200]
        del h5["data/expression"]
        h5.move("data/partial", "data/expression")
    cm = io.read_archs4(path, progress=False)
    np.testing.assert_array_equal(cm.counts[:, :200], np.arange(3 * 400).reshape(3, 400)[:, :200] % 97 + 1)
    assert (cm.counts[:, 200:] == 0).all()


def test_estimated_counts_round_halves_to_even(tmp_path):
    """counts: estimated rounds each value to the nearest whole number, halves to even (numpy.rint, R's round)."""
    p = tmp_path / "rsem.tsv"
    p.write_text("gene\tS1\tS2\tS3\nENSG01\t2.5\t3.5\t0.49\nENSG02\t10.51\t7\t1e3\n")
    cm = io.read_count_table(p, counts="estimated")
    assert cm.counts.tolist() == [[2, 4, 0], [11, 7, 1000]] and cm.counts.dtype == np.uint32
    with pytest.raises(InputError, match=r"rsem\.tsv: counts must be whole numbers.*counts: estimated"):
        io.read_count_table(p)  # integer, the default, names the option
    neg = tmp_path / "neg.tsv"
    neg.write_text("gene\tS1\nENSG01\t-0.2\n")
    with pytest.raises(InputError, match="negative"):  # estimates are not negative either
        io.read_count_table(neg, counts="estimated")
    with pytest.raises(InputError, match="unknown counts kind 'tpm'"):
        io.read_count_table(p, counts="tpm")
