"""The ARCHS4-layout generator: what it plants is what the readers and QC find."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

from generain import io, qc, simulate


def _genes(n: int) -> dict:
    return {"gene_ids": [f"ENSG{i:011d}" for i in range(n)],
            "symbols": [f"S{i % (n - 10)}" for i in range(n)],  # the last 10 symbols repeat earlier ones
            "biotypes": ["protein_coding"] * (n - n // 5) + ["lncRNA"] * (n // 5)}


@pytest.mark.parametrize("variant", [1, 2])
def test_planted_qc_failures_modules_and_field_names(tmp_path, variant):
    n, s = 6000, 240
    mods = np.where(np.arange(n) < 3000, np.arange(n) % 30, -1)
    truth = simulate.write_archs4(tmp_path / "a.h5", **_genes(n), modules=mods, n_samples=s, n_modules=30,
                                  field_variant=variant, chunk_samples=64, block_samples=100, seed=3)
    with h5py.File(tmp_path / "a.h5") as h5:
        assert h5["data/expression"].chunks == (1, 64) and h5["data/expression"].compression == "gzip"
        assert ("ensembl_gene_id" if variant == 1 else "ensembl_gene") in h5["meta/genes"]
        assert h5["meta/genes/biotype"].dtype.kind == ("O" if variant == 1 else "S")
    m = io.read_archs4(tmp_path / "a.h5", progress=False)
    assert m.counts.shape == (n, s) and list(m.gene_ids[:2]) == ["ENSG00000000000", "ENSG00000000001"]
    total, detected = qc.sample_stats(m.counts)
    np.testing.assert_array_equal(total, truth.samples["total_counts"])
    fate = truth.samples["fails"].to_numpy()
    # every planted failure fails its criterion, and nothing else does
    assert ((total < 1_000_000) == (fate == "total_counts")).all()
    assert ((detected <= 2000) == (fate == "detected_genes")).all()
    assert ((m.singlecell_probability >= 0.5) == (fate == "singlecell")).all()
    assert 0 < (fate != "").sum() < s * 0.3
    # co-expression: genes of one module correlate across passing samples, other pairs do not
    ok = fate == ""
    x = np.log1p(m.counts[:3000, ok] / m.counts[:, ok].sum(0) * 1e7)
    c = np.corrcoef(x)
    same = (mods[:3000, None] == mods[None, :3000]) & ~np.eye(3000, dtype=bool)
    assert np.nanmean(c[same]) > 0.5 and abs(np.nanmean(c[~same & ~np.eye(3000, dtype=bool)])) < 0.05


def test_full_archs4_gene_dimension(tmp_path):
    """67,186 genes (ARCHS4 human v2.2) in a few samples: written and read back in blocks."""
    n = 67_186
    mods = np.where(np.arange(n) < 40_000, np.arange(n) % 50, -1)
    truth = simulate.write_archs4(tmp_path / "full.h5", **_genes(n), modules=mods, n_samples=12, n_modules=50,
                                  block_samples=5, seed=0)
    m = io.read_archs4(tmp_path / "full.h5", progress=False)
    assert m.counts.shape == (n, 12) and m.counts.dtype == np.uint32
    assert (truth.genes["module"] < 0).sum() == n - 40_000
    total, detected = qc.sample_stats(m.counts)
    ok = truth.samples["fails"].to_numpy() == ""
    assert (total[ok] > 1_000_000).all() and (detected[ok] > 2000).all()


def test_command_writes_real_genes_and_truth_tables(tmp_path):
    from test_workflow import REPO

    out = tmp_path / "sim.h5"
    assert simulate.main(["--out", str(out), "--genes", "3000", "--samples", "40", "--modules", "10",
                          "--gene-table", str(REPO / "resources" / "annotation" / "genes.tsv"), "--seed", "2"]) == 0
    m = io.read_archs4(out, progress=False)
    assert m.counts.shape == (3000, 40) and m.gene_ids[0] == "ENSG00000000003" and m.symbols[0] == "TSPAN6"
    genes = simulate.pd.read_csv(tmp_path / "sim.genes.tsv", sep="\t")
    samples = simulate.pd.read_csv(tmp_path / "sim.samples.tsv", sep="\t", keep_default_na=False)
    assert len(genes) == 3000 and genes["module"].between(-1, 9).all() and 0.3 < (genes["module"] >= 0).mean() < 0.7
    assert list(samples["sample_id"]) == list(m.sample_ids)


def test_human_mouse_pair_shares_modules_in_the_chosen_fraction(tmp_path):
    import pandas as pd

    from test_workflow import REPO

    orth = pd.read_csv(REPO / "resources" / "annotation" / "orthologs_human_mouse.tsv", sep="\t").head(3000)
    extra = pd.DataFrame({"ensembl_id": [f"ENSG9{i:010d}" for i in range(200)], "symbol": "",
                          "biotype": "lncRNA"})
    truth = simulate.write_human_mouse_pair(tmp_path, orthologs=orth, human_only=extra, n_samples=(120, 90),
                                            n_modules=30, in_modules=0.8, shared_fraction=0.5, gene_factors=0,
                                            seed=4)
    with_module = truth["human_module"] >= 0
    assert abs(truth.loc[with_module, "shared"].mean() - 0.5) < 0.05
    assert (truth.loc[truth["shared"], "mouse_module"] == truth.loc[truth["shared"], "human_module"]).all()
    assert (truth.loc[~truth["shared"] & with_module, "mouse_module"]
            != truth.loc[~truth["shared"] & with_module, "human_module"]).all()
    human, mouse = io.read_archs4(tmp_path / "human.h5", progress=False), io.read_archs4(tmp_path / "mouse.h5",
                                                                                      progress=False)
    assert human.counts.shape == (3200, 120) and mouse.counts.shape == (3000, 90)
    assert list(mouse.gene_ids[:3]) == list(orth["mouse_ensembl_id"][:3])
    with h5py.File(tmp_path / "mouse.h5") as h5:
        assert "ensembl_gene" in h5["meta/genes"]  # the older field names
    assert pd.read_csv(tmp_path / "orthologs.tsv", sep="\t").shape == (3000, 4)
    # planted truth in the counts: a shared pair's mouse gene correlates with the mouse orthologs of its
    # human module partners; a non-shared one does not
    total, detected = qc.sample_stats(mouse.counts)
    ok = (total >= 1_000_000) & (detected > 2000) & (mouse.singlecell_probability < 0.5)
    x = np.log1p(mouse.counts[:, ok] / mouse.counts[:, ok].sum(0) * 1e7)
    xc = (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-9)

    def partner_corr(rows: np.ndarray) -> float:
        out = []
        for i in rows[:100]:
            mates = np.flatnonzero((truth["human_module"] == truth["human_module"][i]).to_numpy())
            mates = mates[mates != i]
            out.append(float((xc[mates] @ xc[i]).mean() / x.shape[1]))
        return float(np.mean(out))

    shared_rows = np.flatnonzero(truth["shared"].to_numpy())
    other_rows = np.flatnonzero((~truth["shared"] & with_module).to_numpy())
    shared_r, other_r = partner_corr(shared_rows), partner_corr(other_rows)
    # (non-shared: ~0.05 left from CP10M normalization coupling genes of strong modules)
    assert shared_r > 0.3 and abs(other_r) < 0.1, (shared_r, other_r)


def test_module_programs_make_modules_correlate_alike_in_both_species(tmp_path):
    """Planted truth: with shared programs, the module-module correlation matrices of the two species agree.

    Each module's activity is recovered as the mean z-scored log expression of its genes per sample; the
    off-diagonal entries of the human and the mouse module correlation matrices correlate strongly with
    programs (both species' modules share the same loadings, so the same correlation pattern; 0.95 when
    written) and not without (independent activities: both matrices are noise around 0; 0.05 when written).
    """
    import pandas as pd

    from test_workflow import REPO

    orth = pd.read_csv(REPO / "resources" / "annotation" / "orthologs_human_mouse.tsv", sep="\t").head(1500)

    def module_corr_agreement(folder, programs: int) -> float:
        truth = simulate.write_human_mouse_pair(folder, orthologs=orth, n_samples=(400, 400), n_modules=12,
                                                in_modules=0.9, shared_fraction=0.5, gene_factors=0,
                                                module_programs=programs, program_strength=1.5,
                                                fail_total_counts=0.0, fail_detected_genes=0.0, singlecell=0.0,
                                                seed=5)
        mats = []
        for name, column in (("human", "human_module"), ("mouse", "mouse_module")):
            counts = io.read_archs4(folder / f"{name}.h5", progress=False).counts
            x = np.log1p(counts / counts.sum(0) * 1e7)
            z = (x - x.mean(1, keepdims=True)) / (x.std(1, keepdims=True) + 1e-9)
            mods = truth[column].to_numpy()
            act = np.stack([z[mods == m].mean(0) for m in range(12)])
            mats.append(np.corrcoef(act)[np.triu_indices(12, 1)])
        return float(np.corrcoef(mats[0], mats[1])[0, 1])

    (tmp_path / "with").mkdir()
    (tmp_path / "without").mkdir()
    with_programs = module_corr_agreement(tmp_path / "with", 3)
    without = module_corr_agreement(tmp_path / "without", 0)
    assert with_programs > 0.8 and abs(without) < 0.35, (with_programs, without)


def test_module_programs_shape_is_checked(tmp_path):
    with pytest.raises(ValueError, match=r"module_programs has shape \(3, 2\); expected \(4, P\)"):
        simulate.write_archs4(tmp_path / "x.h5", gene_ids=["a", "b"], symbols=["a", "b"], biotypes=["x", "x"],
                              modules=np.array([0, 1]), n_samples=5, n_modules=4, module_programs=np.ones((3, 2)))
    assert not (tmp_path / "x.h5").exists()
