"""The demo through `--profile slurm` on a real single-node Slurm cluster.

`.ci/run` starts the cluster (`bash .ci/slurm.sh start`) and sets
GENERAIN_REQUIRE_SLURM=1, so in CI these tests fail rather than skip when
Slurm is not answering. The profile is the project's own, copied with three
changes for this 2-core, conda-less machine: conda deployment off, memory and
runtime requests that fit the node, 2 threads per rule; plus fast status polls
and kept Slurm logs so the test can read them.
"""
from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from test_workflow import REPO, SMALL, SNAKEMAKE, _config

# the e2e config with one baseline: every kind of sweep job still goes through sbatch, in fewer jobs
SLURM_SMALL = copy.deepcopy(SMALL)
SLURM_SMALL["sweep"] = {**SLURM_SMALL["sweep"], "baselines": ["random"]}

pytestmark = pytest.mark.slurm
SUBMITTED = re.compile(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (\S+)\)")


def _slurm_answers() -> bool:
    if not shutil.which("sinfo"):
        return False
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0 and bool(re.search(r"idle|mixed|alloc", proc.stdout))


@pytest.fixture(scope="module")
def profile(tmp_path_factory) -> Path:
    if not _slurm_answers():
        if os.environ.get("GENERAIN_REQUIRE_SLURM") == "1":
            pytest.fail("GENERAIN_REQUIRE_SLURM=1 but Slurm does not answer (sinfo); see .ci/slurm.sh")
        pytest.skip("no Slurm cluster answers here; start one with `bash .ci/slurm.sh start`")
    prof = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    assert prof["executor"] == "slurm" and prof["software-deployment-method"] == "conda"
    del prof["software-deployment-method"]  # conda channels are not reachable here
    prof["default-resources"].update(mem_mb=1500, runtime=30)
    prof["set-resources"] = {rule: {"mem_mb": 2000} for rule in prof["set-resources"]}
    prof["set-threads"] = {rule: 2 for rule in prof["set-threads"]}
    prof.update({"slurm-init-seconds-before-status-checks": 2, "seconds-between-status-checks": 2,
                 "slurm-keep-successful-logs": True, "retries": 0, "latency-wait": 5})
    path = tmp_path_factory.mktemp("profile") / "slurm"
    path.mkdir()
    (path / "config.yaml").write_text(yaml.safe_dump(prof))
    return path


def _run(workdir: Path, cfg: dict, profile: Path, *args: str) -> subprocess.CompletedProcess:
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    cmd = [*SNAKEMAKE, "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--configfile",
           str(workdir / "config.yaml"), "--profile", str(profile), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=2400)


def _job_state(job_id: str) -> str:
    out = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    m = re.search(r"JobState=(\w+)", out)
    return m.group(1) if m else "UNKNOWN"


@pytest.fixture(scope="module")
def slurm_demo(profile, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm_demo")
    proc = _run(workdir, _config(**SLURM_SMALL), profile)
    return workdir, proc


def test_demo_runs_every_job_through_sbatch(slurm_demo):
    workdir, proc = slurm_demo
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    jobs = SUBMITTED.findall(out)
    rules = sorted(re.search(r"slurm_logs/rule_(\w+?)/", log).group(1) for _, log in jobs)
    # SLURM_SMALL sweeps in 2 shards: per model train, export, catalogue, 2 sweep shards, gather, lncRNA, the
    # model analyses (sample and contextual embeddings, the demo's perturbation run, attention) and the
    # contextual embedding's 2 sweep shards and gather, the demo's two fine-tuning tasks; one baseline (random): make, 2 sweep shards, gather
    per_model = ["train_model", "export_embeddings", "catalogue_properties", "sweep_properties",
                 "sweep_properties", "gather_sweep", "predict_lncrna", "embed_samples", "perturb_genes",
                 "attention_heads", "sweep_properties", "sweep_properties", "gather_sweep", "finetune_genes",
                 "finetune_samples"] * 3
    per_baseline = ["make_baseline", "sweep_properties", "sweep_properties", "gather_sweep"]
    assert rules == sorted([
        "ingest_counts", "qc_samples", "normalize_counts", "fit_bin_reference", "transform_expression",
        "tokenize_samples", *per_model, *per_baseline, "compare_embeddings", "make_pseudo_species", "train_model",
        "align_species", "compare_species", "summarize_run"])
    for job_id, log in jobs:
        assert Path(log).exists(), f"Slurm log {log} of job {job_id} is missing"
        assert _job_state(job_id) == "COMPLETED", f"Slurm job {job_id} ({log}) is {_job_state(job_id)}"
    train_logs = [Path(log).read_text() for _, log in jobs if "rule_train_model" in log]
    assert all("localrule train_model" in t or "rule train_model" in t for t in train_logs)
    assert (workdir / "results" / "e2e" / "summary.json").exists()


def _one_thread_profile(profile: Path, rule: str) -> Path:
    """The test profile with 1 thread for ``rule``: a job of 2 tasks x 1 CPU fits the 2-core node."""
    prof = yaml.safe_load((profile / "config.yaml").read_text())
    prof["set-threads"][rule] = 1
    path = profile.parent / f"slurm_ddp_{rule}"
    path.mkdir(exist_ok=True)
    (path / "config.yaml").write_text(yaml.safe_dump(prof))
    return path


def test_two_rank_ddp_through_srun(slurm_demo, profile):
    """train.devices: 2 on CPU under Slurm: the job asks for 2 tasks and srun starts 2 ranks (world size 2)."""
    workdir, first = slurm_demo
    assert first.returncode == 0
    ddp_profile = _one_thread_profile(profile, "train_model")
    cfg = _config(**copy.deepcopy(SLURM_SMALL))
    cfg["train"]["devices"] = 2
    proc = _run(workdir, cfg, ddp_profile, "results/e2e/models/main/gpt/summary.json")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    jobs = SUBMITTED.findall(out)
    assert len(jobs) == 1 and "rule_train_model" in jobs[0][1]
    job_id = jobs[0][0]
    show = subprocess.run(["scontrol", "show", "job", job_id], capture_output=True, text=True).stdout
    assert "NumTasks=2" in show, show
    s = json.loads((workdir / "results" / "e2e" / "models" / "main" / "gpt" / "summary.json").read_text())
    assert s["world_size"] == 2 and s["steps"] == 2 * 3
    log = (workdir / "results" / "e2e" / "logs" / "train_model" / "main_gpt.log").read_text()
    assert "srun --overlap --nodes=1 --ntasks=2 --ntasks-per-node=2" in log and "MEMBER: 2/2" in log


def test_two_rank_fine_tuning_through_srun(slurm_demo, profile):
    """finetune.devices: 2 on CPU under Slurm: only the fine-tuning job re-runs (its batch changed), it asks for
    2 tasks and srun starts 2 ranks that write the outputs once (world size 2)."""
    workdir, first = slurm_demo
    assert first.returncode == 0
    ddp_profile = _one_thread_profile(profile, "finetune_samples")
    cfg = _config(**copy.deepcopy(SLURM_SMALL))
    cfg["finetune"]["devices"] = 2
    target = "results/e2e/finetune/bert_pred_expr/sex/metrics.json"
    proc = _run(workdir, cfg, ddp_profile, target)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    jobs = SUBMITTED.findall(out)
    assert len(jobs) == 1 and "rule_finetune_samples" in jobs[0][1], jobs
    show = subprocess.run(["scontrol", "show", "job", jobs[0][0]], capture_output=True, text=True).stdout
    assert "NumTasks=2" in show, show
    m = json.loads((workdir / target).read_text())
    assert m["world_size"] == 2 and m["samples_per_label"] == {"female": 41, "male": 44}
    log = (workdir / "results" / "e2e" / "logs" / "finetune" / "bert_pred_expr_sex.log").read_text()
    assert "srun --overlap --nodes=1 --ntasks=2 --ntasks-per-node=2" in log and "MEMBER: 2/2" in log
    assert not (workdir / target).with_name("finetune_spec.json").exists()


def test_failing_rule_exits_non_zero_and_names_the_slurm_log(profile, tmp_path):
    bad = tmp_path / "corrupt.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00garbage" * 200)
    cfg = _config(run_name="e2e", datasets=[{"name": "bad", "path": str(bad), "format": "archs4", "species": "human"}])
    proc = _run(tmp_path, cfg, profile, "results/e2e/qc/samples.parquet")
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    jobs = SUBMITTED.findall(out)
    assert len(jobs) == 1 and "rule_ingest_counts" in jobs[0][1]
    job_id, log = jobs[0]
    assert re.search(r"log: .*" + re.escape(log), out), out[-3000:]  # the error names the Slurm log
    assert "corrupt.h5: not a readable HDF5 file" in Path(log).read_text()
    assert _job_state(job_id) == "FAILED"
