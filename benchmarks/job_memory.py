"""Peak memory and seconds of the demo's heaviest non-training jobs, run on a finished demo's files.

Usage: python benchmarks/job_memory.py SRC RESULTS
SRC is the src/ folder of the code to measure (a checkout of any commit), RESULTS a finished demo
(results/demo). Each job runs in its own process under /usr/bin/time (GNU time: %M = peak resident
kB), one after the other, writing into a temporary folder: catalogue_properties and sweep_properties
of the gpt embedding, align_species of the pseudo-species GPT. Run it for two checkouts on the same
RESULTS to compare them side by side (BENCHMARKS.md "Memory"); outputs can be compared with
benchmarks/compare_runs.py's table comparison or pandas.testing.
"""
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
JOB = """
import sys, yaml
sys.path.insert(0, {src!r})
from snakemake.utils import validate
from generain import sweep
from generain.stages import species, sweep as st
cfg = yaml.safe_load(open({config!r})); validate(cfg, {schema!r})
res, out = {res!r}, {out!r}
sets, genes = [{sets!r}], {genes!r}
s = sweep.SweepSettings.from_mapping(cfg["sweep"])
if {job!r} == "catalogue_properties":
    st.catalogue_properties(embedding=f"{{res}}/embeddings/gpt.parquet", gene_sets=sets, gene_table=genes, settings=s,
                            seed=cfg["seed"], out_catalogue=f"{{out}}/properties.parquet")
elif {job!r} == "sweep_properties":
    st.sweep_properties(embedding=f"{{res}}/embeddings/gpt.parquet", gene_sets=sets, gene_table=genes,
                        catalogue=f"{{res}}/sweep/gpt/properties.parquet", shard=0, settings=s, seed=cfg["seed"],
                        threads=2, out_shard=f"{{out}}/shard.parquet")
else:
    c = cfg["species"]
    species.align_species(setting="pseudo_species", checkpoints=[f"{{res}}/models/pseudo_species/gpt/model.pt"],
                          vocabs=[f"{{res}}/species/pseudo_species/tokens/vocab.tsv"], orthologs={orth!r},
                          shared=None, train_fraction=c["train_fraction"], refine_rounds=c["refine_rounds"],
                          csls_k=c["csls_k"], seed=cfg["seed"], out_ranks=f"{{out}}/ranks.parquet",
                          out_best_match=f"{{out}}/best_match.parquet", out_embedding=f"{{out}}/embedding.parquet",
                          out_w2v=f"{{out}}/embedding.w2v.txt", matrices=[], dim=cfg["model"]["n_embd"])
"""


def main(src: str, res: str) -> None:
    ann = REPO / "resources" / "annotation"
    for job in ("catalogue_properties", "sweep_properties", "align_species"):
        with tempfile.TemporaryDirectory() as out:
            code = JOB.format(src=str(Path(src).resolve()), config=str(REPO / "config" / "config.yaml"),
                              schema=str(REPO / "config" / "schema.yaml"), res=str(Path(res).resolve()), out=out,
                              sets=str(ann / "gene_sets.parquet"), genes=str(ann / "genes.tsv"),
                              orth=str(ann / "orthologs_human_mouse.tsv"), job=job)
            proc = subprocess.run(["/usr/bin/time", "-f", "%e %M", sys.executable, "-c", code],
                                  capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(proc.stderr[-3000:])
            seconds, kb = proc.stderr.strip().splitlines()[-1].split()
            print(f"{job}\t{float(seconds):.1f} s\t{int(kb) / 1024:.0f} MB")


if __name__ == "__main__":
    main(*sys.argv[1:3])
