"""Streaming Binning-By-Gene over sample shards (generain.stream) against the exact in-memory path."""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from conftest import write_archs4
from generain import annotation, io, normalize, qc, stream
from generain.stages import ingest as ingest_stage, normalize as normalize_stage, qc as qc_stage, stream as stream_stage
from generain.utils import InputError

REPO = Path(__file__).resolve().parents[1]
GENES = REPO / "resources" / "annotation" / "genes.tsv"


def test_shard_bounds_align_to_chunks():
    # 1,500 rounds up to 2 chunks of 1,000; the last shard is shorter
    assert stream.shard_bounds(4500, chunk_width=1000, shard_samples=1500) == [(0, 2000), (2000, 4000), (4000, 4500)]
    assert stream.shard_bounds(10, chunk_width=1, shard_samples=4) == [(0, 4), (4, 8), (8, 10)]
    with pytest.raises(ValueError):
        stream.shard_bounds(10, chunk_width=0, shard_samples=4)


def test_sketch_nonzero_by_hand():
    values = np.array([[0, 3, 1, 0, 2, 5, 4, 0, 6],   # 6 non-zero > k=4: ranks round(linspace(0, 5, 4)) = 0, 2, 3, 5
                       [0, 0, 2, 0, 1, 0, 0, 0, 0],   # 2 non-zero <= k: both, then NaN
                       [0] * 9], dtype=np.float32)
    points, nnz = stream.sketch_nonzero(values, 4)
    assert nnz.tolist() == [6, 2, 0]
    np.testing.assert_array_equal(points[0], [1, 3, 4, 6])
    np.testing.assert_array_equal(points[1, :2], [1, 2])
    assert np.isnan(points[1, 2:]).all() and np.isnan(points[2]).all()


def _sketch_by_definition(values, k):
    """Per row: the sorted non-zero values, all (then NaN) if at most k, else at rint(linspace(0, 1, k) * (nnz - 1))."""
    out = np.full((values.shape[0], k), np.nan, np.float32)
    nnz = np.zeros(values.shape[0], np.int64)
    for g, row in enumerate(values):
        nz = np.sort(row[row > 0])
        nnz[g] = nz.size
        if nz.size <= k:
            out[g, :nz.size] = nz
        else:
            out[g] = nz[np.rint(np.linspace(0.0, 1.0, k) * (nz.size - 1)).astype(np.int64)]
    return out, nnz


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sketch_nonzero_equals_the_definition_over_several_sort_blocks(dtype):
    # 800 rows of 3,000 samples are 3 of the kernel's sort blocks (2**20 // 3,000 = 349 rows);
    # values on a grid of 50 so that ties are common; rows with exactly k, k + 1, 0 and all values non-zero
    rng = np.random.default_rng(5)
    k = 1000
    values = (rng.integers(0, 50, (800, 3000)) / 7).astype(dtype) * (rng.random((800, 3000)) < rng.random((800, 1)))
    values[0] = 0
    values[1] = rng.random(3000) + 0.5
    for g, n in ((2, k), (3, k + 1), (4, 1), (5, k - 1)):
        values[g] = 0
        values[g, rng.choice(3000, n, replace=False)] = rng.random(n) + 0.1
    points, nnz = stream.sketch_nonzero(values, k)
    want, want_nnz = _sketch_by_definition(values, k)
    np.testing.assert_array_equal(nnz, want_nnz)
    np.testing.assert_array_equal(points, want)
    assert points.dtype == np.float32 and nnz[:6].tolist() == [0, 3000, k, k + 1, 1, k - 1]
    # fewer samples than points: every row holds all its values
    few = values[:, :7]
    np.testing.assert_array_equal(stream.sketch_nonzero(few, 10)[0], _sketch_by_definition(few, 10)[0])
    # other dtypes are sorted as float64 (numba has no float16), Fortran order as C
    half = values[:50].astype(np.float16)
    np.testing.assert_array_equal(stream.sketch_nonzero(half, k)[0], _sketch_by_definition(half, k)[0])
    np.testing.assert_array_equal(stream.sketch_nonzero(np.asfortranarray(values[:50]), k)[0], want[:50])


def test_merge_quantiles_by_hand_and_exact_when_complete():
    # shard A holds 1..4 exactly, shard B's 8 values 5..12 are sketched by 4 points (2 values each)
    a = np.array([[1, 2, 3, 4]], dtype=np.float32)
    b = np.array([[5, 8, 9, 12]], dtype=np.float32)
    merged = stream.merge_quantiles(np.stack([a, b]), np.array([[4], [8]]), 4)
    # 12 values; ranks round(linspace(0, 11, 4)) = 0, 4, 7, 11; weighted cumulative counts 1,2,3,4,6,8,10,12
    # the value of 0-based rank t is the first point whose cumulative count reaches t + 1:
    # rank 0 -> 1; rank 4 (5th value) -> 5 (cum 6); rank 7 (8th value) -> 8 (cum 8); rank 11 -> 12
    np.testing.assert_array_equal(merged[0], [1, 5, 8, 12])
    # complete sketches: the exact order statistics of the union
    rng = np.random.default_rng(0)
    x = rng.random((3, 50)).astype(np.float32) * (rng.random((3, 50)) < 0.7)
    parts = [stream.sketch_nonzero(x[:, i:i + 10], 10) for i in range(0, 50, 10)]
    ref = stream.merge_quantiles(np.stack([p for p, _ in parts]), np.stack([n for _, n in parts]), 60)
    for g in range(3):
        nz = np.sort(x[g][x[g] > 0])
        np.testing.assert_array_equal(ref[g][ref[g] > 0], nz)
        assert (ref[g][: 60 - nz.size] == 0).all()


def test_bin_against_exact_reference_is_exact_binning():
    rng = np.random.default_rng(1)
    values = (rng.random((20, 300)) * 5 * (rng.random((20, 300)) < 0.6)).astype(np.float32)  # no ties
    values[3] = 0
    values[4] = 0
    values[4, 7] = 2.0  # a single non-zero value: bin 2
    points, nnz = stream.sketch_nonzero(values, 300)
    ref = stream.merge_quantiles(points[None], nnz[None], 300)
    np.testing.assert_array_equal(stream.bin_against_reference(values, ref), normalize.bin_by_gene(values))


def _bins_by_np_interp(values, reference, n_bins):
    """The NumPy code the numba kernel replaced (generain 377c4ad), kept here as the reference."""
    k = reference.shape[1]
    m = np.count_nonzero(reference > 0, axis=1)
    rho = np.zeros(values.shape)
    for g in range(values.shape[0]):
        if m[g] > 1:
            rho[g] = np.interp(values[g], reference[g, k - m[g]:], np.linspace(0.0, 1.0, m[g]))
    out = np.minimum(np.floor(rho * (n_bins - 1) + 1e-9) + 2, n_bins).astype(np.uint16)
    out[values <= 0] = 1
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_binning_equals_np_interp_bit_for_bit(dtype):
    """References with ties, padding, one and two points, and values on, between, below and above the points;
    n_bins 2000 and an odd 7: every bin equals the np.interp code's."""
    rng = np.random.default_rng(5)
    n_genes, k, n = 40, 64, 500
    ref = np.zeros((n_genes, k), np.float32)
    for g in range(n_genes):
        mg = [0, 1, 2, 3, k, k - 1][g % 6] if g < 12 else int(rng.integers(2, k + 1))
        pts = np.sort(rng.gamma(2.0, 1.0, mg)).astype(np.float32)
        if g % 4 == 0 and mg > 4:
            pts[1:4] = pts[1]  # ties
            pts[-3:] = pts[-3]
        ref[g, k - mg:] = pts
    values = rng.gamma(2.0, 1.0, (n_genes, n)).astype(dtype)
    values[rng.random((n_genes, n)) < 0.2] = 0
    for g in range(n_genes):  # exact hits on reference points, the ends and beyond
        nz = ref[g][ref[g] > 0]
        if nz.size:
            values[g, :20] = rng.choice(nz, 20)
            values[g, 20:22] = nz[0], nz[-1]
            values[g, 22:24] = nz[0] * 0.5, nz[-1] * 2
    for n_bins in (2000, 7):
        np.testing.assert_array_equal(stream.bin_against_reference(values, ref, n_bins=n_bins),
                                      _bins_by_np_interp(values, ref, n_bins))


@pytest.fixture(scope="module")
def generated(tmp_path_factory, generated_archs4):
    """The generated ARCHS4-layout file (conftest), and the exact path's bins."""
    out = tmp_path_factory.mktemp("stream")
    genes = annotation.read_gene_table(GENES)
    path = generated_archs4
    ingest_stage.ingest_dataset(path=path, fmt="archs4", name="sim", species_name="human", gene_table=GENES,
                                id_type="auto", counts="integer",
                            out_matrix=out / "ingest.h5", out_report=out / "ingest.json")
    qc_stage.qc_samples(matrices=[out / "ingest.h5"], criteria=qc.QCCriteria(), out_table=out / "qc.parquet",
                        out_plot=out / "qc.png")
    normalize_stage.normalize_counts(matrices=[out / "ingest.h5"], qc_table=out / "qc.parquet",
                              biotypes=["protein_coding", "lncRNA"], min_mean=0.1, deduplicate_by="symbol",
                              out_matrix=out / "norm.h5", out_genes=out / "genes.tsv")
    m = io.read_matrix(out / "norm.h5")
    return {"path": path, "out": out, "genes": genes, "matrix": m, "bins": normalize.bin_by_gene(m.matrix),
            "qc": pd.read_parquet(out / "qc.parquet"), "gene_table": pd.read_csv(out / "genes.tsv", sep="\t")}


def _stream(gen, *, shard, sketch_points, reference_points):
    path, out = gen["path"], gen["out"]
    _, n, width = stream.archs4_shape(path)
    bounds = stream.shard_bounds(n, chunk_width=width, shard_samples=shard)
    tables, files = [], []
    for i, (a, b) in enumerate(bounds):
        table, sketch = stream.scan_shard(path, a, b, dataset="sim", genes=gen["genes"], criteria=qc.QCCriteria(),
                                          sketch_points=sketch_points, biotypes=["protein_coding", "lncRNA"])
        stream.write_sketch(sketch, out / f"sketch{i}.h5")
        stream.write_scratch(sketch, out / f"scratch{i}.npy")
        tables.append(table)
        files.append(out / f"sketch{i}.h5")
    genes, ref = stream.merge_sketches(files, genes=gen["genes"], biotypes=["protein_coding", "lncRNA"],
                                       min_mean=0.1, deduplicate_by="symbol", reference_points=reference_points,
                                       memory_mb=1)  # 1 MB: many gene blocks
    kept = genes[genes["kept"]]
    bins, _, samples = zip(*(stream.bin_shard(out / f"scratch{i}.npy", sketch=out / f"sketch{i}.h5", qc_table=t,
                                           source_rows=kept["source_row"].to_numpy(), reference=ref)
                             for i, t in enumerate(tables)))
    return len(bounds), pd.concat(tables, ignore_index=True), genes, np.concatenate(bins, axis=1), pd.concat(samples)


def test_pass_1_kernels_equal_the_numpy_they_replace():
    """sample_totals is qc.sample_stats; gather_kept is the masked row sums, row gather and column selection that
    scan_shard did before, on odd shapes, a non-contiguous input, no kept sample and every sample kept."""
    from generain.kernels import gather_kept, sample_totals

    rng = np.random.default_rng(5)
    for trial in range(8):
        n_genes, n_samples = int(rng.integers(1, 70)), int(rng.integers(1, 50))
        counts = rng.negative_binomial(1, 0.05, (n_genes, n_samples)).astype(np.uint32)
        counts[rng.random(counts.shape) < 0.4] = 0
        counts[0, 0] = 4_000_000_000  # sums past 2**32
        if trial == 3:
            counts = np.asfortranarray(counts)
        total, detected = np.empty(n_samples, np.int64), np.empty(n_samples, np.int64)
        sample_totals(counts, total, detected)
        want_total, want_detected = qc.sample_stats(counts)
        np.testing.assert_array_equal(total, want_total)
        np.testing.assert_array_equal(detected, want_detected)
        keep = rng.random(n_samples) < (0.0 if trial == 1 else 1.0 if trial == 2 else 0.6)
        rows = np.flatnonzero(rng.random(n_genes) < 0.8).astype(np.int64)
        sketched = np.flatnonzero(rng.random(rows.size) < 0.5)
        slot = np.full(rows.size, -1, np.int64)
        slot[sketched] = np.arange(sketched.size)
        out = np.empty((sketched.size, int(keep.sum())), np.uint32)
        row_totals = np.empty(rows.size, np.int64)
        gather_kept(counts, rows, slot, np.flatnonzero(keep).astype(np.int64), row_totals, out)
        np.testing.assert_array_equal(row_totals,
                                      np.add.reduce(counts, axis=1, dtype=np.int64, where=keep[None, :])[rows])
        np.testing.assert_array_equal(out, counts[rows[sketched]][:, keep])


def test_streaming_with_complete_sketches_is_the_exact_path(generated):
    """Sketches as large as the shards: QC, gene filters, samples and bins equal the in-memory path."""
    n_shards, table, genes, bins, samples = _stream(generated, shard=500, sketch_points=600, reference_points=3000)
    assert n_shards == 4  # 500 samples round up to 600 (3 chunks of 200)
    exact_qc = generated["qc"]
    pd.testing.assert_frame_equal(table[list(qc.QC_COLUMNS)].reset_index(drop=True),
                                  exact_qc[list(qc.QC_COLUMNS)], check_dtype=False)
    exact_genes = generated["gene_table"]
    assert genes["ensembl_id"].tolist() == exact_genes["ensembl_id"].tolist()
    assert genes["reason"].fillna("").tolist() == exact_genes["reason"].fillna("").tolist()
    np.testing.assert_allclose(genes["mean"], exact_genes["mean"], rtol=1e-5)
    assert samples["sample_id"].tolist() == generated["matrix"].samples["sample_id"].tolist()
    diff = np.abs(bins.astype(int) - generated["bins"].astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3  # float32 vs float64 ties only


def test_streaming_reference_within_the_bin_tolerance(generated):
    """Small sketches (100 points per 400-sample shard) and a 250-point reference: median |dbin| <= 5, p99 <= 40."""
    _, _, _, bins, _ = _stream(generated, shard=400, sketch_points=100, reference_points=250)
    exact = generated["bins"]
    assert ((bins == 1) == (exact == 1)).all()  # zeros are exact
    d = np.abs(bins.astype(int) - exact.astype(int))[exact > 1]
    assert np.median(d) <= 5 and np.percentile(d, 99) <= 40
    assert np.median(d) > 0  # the sketch does approximate: the test would see a broken merge


def test_merge_in_gene_blocks_equals_the_single_merge(generated, tmp_path):
    """merge_reference_block over 3 blocks (as parallel jobs), then merge_stream concatenating them: the same
    genes.tsv, reference values (bit for bit) and matrix as merge_stream merging everything itself."""
    path, genes = generated["path"], generated["genes"]
    sketches = []
    for i, (a, b) in enumerate([(0, 800), (800, 1600), (1600, 2400)]):
        _, sketch = stream.scan_shard(path, a, b, dataset="sim", genes=genes, criteria=qc.QCCriteria(),
                                      sketch_points=100, biotypes=["protein_coding", "lncRNA"], matrix_fraction=0.3)
        stream.write_sketch(sketch, tmp_path / f"s{i}.h5")
        sketches.append(tmp_path / f"s{i}.h5")
    settings = dict(biotypes=["protein_coding", "lncRNA"], min_mean=0.1, deduplicate_by="symbol",
                    reference_points=250, n_bins=2000)
    blocks = []
    for b in range(3):
        n = stream_stage.merge_reference_block(sketches=sketches, block=b, n_blocks=3, **settings,
                                               out_reference=tmp_path / f"block{b}.h5")
        blocks.append(tmp_path / f"block{b}.h5")
        assert n > 100
    outs = {}
    for how, extra in (("single", {}), ("blocks", {"reference_blocks": blocks})):
        d = tmp_path / how
        d.mkdir()
        stream_stage.merge_stream(sketches=sketches, **settings, out_genes=d / "genes.tsv",
                                  out_reference=d / "ref.h5", out_matrix=d / "m.h5", **extra)
        outs[how] = (d / "genes.tsv").read_text(), normalize.BinReference.load(d / "ref.h5"), io.read_matrix(d / "m.h5")
    (g1, r1, m1), (g2, r2, m2) = outs["single"], outs["blocks"]
    assert g1 == g2 and r1.gene_ids.tolist() == r2.gene_ids.tolist() and r1.n_training_samples == r2.n_training_samples
    np.testing.assert_array_equal(r1.values, r2.values)
    np.testing.assert_array_equal(m1.matrix, m2.matrix)
    assert r1.values.shape == (len(r1.gene_ids), 250) and (r1.values[:, -1] > 0).all()
    assert stream.gene_block(10, 2, 3) == slice(6, 10)
    with pytest.raises(InputError, match="reference blocks"):  # blocks of another run: refused
        stream_stage.merge_stream(sketches=sketches, **settings, out_genes=tmp_path / "x.tsv",
                                  out_reference=tmp_path / "x.h5", out_matrix=tmp_path / "xm.h5",
                                  reference_blocks=blocks[:2])
    assert not (tmp_path / "x.h5").exists()


def test_merge_sketches_reads_genes_in_any_file_order(tmp_path):
    """The file's rows need not be in Ensembl-id order (ARCHS4 sorts by symbol): rows are read ascending."""
    genes = pd.DataFrame({"ensembl_id": ["ENSG1", "ENSG2", "ENSG3"], "symbol": ["A", "B", "C"],
                          "biotype": ["protein_coding"] * 3})
    values = np.array([[0, 5, 6], [1, 2, 3], [3, 0, 4]], dtype=np.float32)  # file rows: ENSG3, ENSG1, ENSG2
    points, nnz = stream.sketch_nonzero(values, 3)
    sketch = stream.ShardSketch(gene_ids=np.array(["ENSG3", "ENSG1", "ENSG2"], dtype=object),
                                source_rows=np.arange(3), totals=np.ones(3), sums=values.sum(axis=1), nnz=nnz,
                                points=points, n_passing=3)
    stream.write_sketch(sketch, tmp_path / "s.h5")
    table, ref = stream.merge_sketches([tmp_path / "s.h5"], genes=genes, biotypes=["protein_coding"], min_mean=0.1,
                                       deduplicate_by="symbol", reference_points=3)
    assert table["ensembl_id"].tolist() == ["ENSG1", "ENSG2", "ENSG3"] and table["source_row"].tolist() == [1, 2, 0]
    np.testing.assert_array_equal(ref.values, [[1, 2, 3], [0, 3, 4], [0, 5, 6]])


def test_pass_2_refuses_a_scratch_that_does_not_match(generated, tmp_path):
    """bin_shard reads pass 1's scratch: a scratch of another shard, or without the reference's genes, fails."""
    path, genes_table = generated["path"], generated["genes"]
    sk = {}
    for i, (a, b) in enumerate([(0, 400), (400, 1000)]):
        table, sketch = stream.scan_shard(path, a, b, dataset="sim", genes=genes_table, criteria=qc.QCCriteria(),
                                          sketch_points=50, biotypes=["protein_coding"])
        stream.write_sketch(sketch, tmp_path / f"s{i}.h5")
        stream.write_scratch(sketch, tmp_path / f"x{i}.npy")
        sk[i] = (table, sketch)
    table0, sketch0 = sk[0]
    lncrna = sketch0.biotypes == "lncRNA"
    assert 0 < lncrna.sum() < lncrna.size and np.array_equal(sketch0.sketched, np.flatnonzero(~lncrna))
    assert np.isnan(sketch0.sums[lncrna]).all() and not np.isnan(sketch0.sums[~lncrna]).any()
    assert (sketch0.totals[lncrna] > 0).any()  # every row keeps its total count (collisions compare them)
    with h5py.File(path) as h5:  # the scratch holds exactly cp10m_log10 of the sketched rows and passing samples
        counts = h5["data/expression"][:, 0:400]
    keep = table0["passed"].to_numpy()
    rows = sketch0.source_rows[sketch0.sketched]
    expect = normalize.cp10m_log10(counts[np.ix_(rows, np.flatnonzero(keep))],
                                   totals=table0["total_counts"].to_numpy()[keep])
    np.testing.assert_array_equal(np.load(tmp_path / "x0.npy"), expect)
    ref = normalize.BinReference(np.array(["a", "b"], dtype=object), np.ones((2, 4), np.float32), 2000, 10)
    with pytest.raises(InputError, match="rerun scan_shard for this shard"):  # shard 1's scratch, shard 0's sketch
        stream.bin_shard(tmp_path / "x1.npy", sketch=tmp_path / "s0.h5", qc_table=table0, source_rows=rows[:2],
                         reference=ref)
    lnc = sketch0.source_rows[sketch0.biotypes == "lncRNA"][:2]  # not sketched: pass 1 kept protein-coding genes
    with pytest.raises(InputError, match="lacks some of the reference's genes"):
        stream.bin_shard(tmp_path / "x0.npy", sketch=tmp_path / "s0.h5", qc_table=table0, source_rows=lnc,
                         reference=ref)
    with pytest.raises(InputError, match="genes of the vocabulary biotypes .* have no sketch"):  # lncRNAs skipped
        stream.merge_sketches([tmp_path / "s0.h5", tmp_path / "s1.h5"], genes=genes_table,
                              biotypes=["protein_coding", "lncRNA"], min_mean=0.0, deduplicate_by="symbol",
                              reference_points=10)


def test_matrix_sample_mask_depends_only_on_id_and_seed():
    ids = np.array([f"GSM{i}" for i in range(4000)], dtype=object)
    mask = stream.matrix_sample_mask(ids, fraction=0.25, seed=3)
    assert 0.22 < mask.mean() < 0.28  # 1,000 expected, SD 27
    # the same samples in another order, or split in shards, are selected the same way
    perm = np.random.default_rng(0).permutation(4000)
    np.testing.assert_array_equal(stream.matrix_sample_mask(ids[perm], fraction=0.25, seed=3), mask[perm])
    np.testing.assert_array_equal(np.concatenate([stream.matrix_sample_mask(ids[a:a + 600], fraction=0.25, seed=3)
                                                  for a in range(0, 4000, 600)]), mask)
    assert not (stream.matrix_sample_mask(ids, fraction=0.25, seed=4) == mask).all()
    assert stream.matrix_sample_mask(ids, fraction=1.0, seed=3).all()
    assert not stream.matrix_sample_mask(ids, fraction=0.0, seed=3).any()


def test_matching_report_by_hand():
    ids = np.array(["ENSG1.2", "ENSG1.3", "FOO", "ENSG2", "BAR"], dtype=object)
    mapped = ["ENSG1", "ENSG1", None, "ENSG2", None]  # two rows on ENSG1: one is collapsed
    assert annotation.matching_report(ids, mapped) == {
        "genes_in_source": 5, "matched": 3, "unmatched": 2, "collapsed_duplicates": 1,
        "examples_unmatched": ["FOO", "BAR"]}
    types = np.array(["ensembl", "ensembl", "symbol", "ensembl", "symbol"], dtype=object)
    assert annotation.matching_report(ids, mapped, types, "auto")["by_id_type"] == {
        "ensembl": {"ids": 3, "matched": 3, "unmatched": 0, "collapsed_duplicates": 1},
        "symbol": {"ids": 2, "matched": 0, "unmatched": 2, "collapsed_duplicates": 0}}


def test_plan_refuses_duplicated_sample_ids(tmp_path):
    """The plan reads every sample id (a shard reads only its slice), so repeats anywhere in the file fail."""
    path = write_archs4(tmp_path / "dup.h5", np.arange(12).reshape(3, 4) + 1,
                        genes=["ENSG00000000003", "ENSG00000000005", "ENSG00000000419"],
                        symbols=["TSPAN6", "TNMD", "DPM1"], samples=["s1", "s2", "s3", "s1"])
    with pytest.raises(InputError, match=r"dup\.h5: duplicated sample ids, e\.g\. \['s1'\]"):
        stream_stage.plan_stream(path=path, name="dup", species_name="human", gene_table=GENES, shard_samples=2,
                             out_plan=tmp_path / "plan.json")
    assert not (tmp_path / "plan.json").exists()
