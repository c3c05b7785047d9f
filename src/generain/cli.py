"""``generain``: explore a run's gene embeddings from the command line.

    generain similar RPL11 -e results/demo/embeddings/gpt.parquet -n 10
    generain similarity APOE APP
    generain analogy APOE APP BRCA1            # APP - APOE + BRCA1
    generain combine "APP - APOE + BRCA1 + 0.5*TP53"   # any signed, weighted sum
    generain plot --list ribosome=RPL11,RPS3,RPL5 --list hla=HLA-A,HLA-B --method pca --out map.png

Analyses that read a trained model's hidden states, on any run's results:

    generain embed-samples --run results/demo --model gpt --out gpt_samples/
    generain perturb --run results/demo --model gpt --genes HLA-DRA --mode overexpress --series geuvadis_lcl --out p/
    generain attention --run results/demo --model bert_pred_genes --gene-set GO:0003700 --out att/
    generain embed-samples --run results/demo --model gpt --counts new_counts.tsv --out new/   # new samples
    generain finetune --run results/demo --model gpt --gene-task GO:0003700 --out tf/
    generain finetune --run results/demo --model gpt --sample-task resources/demo/sample_labels.tsv:sex --out sex/

Genes are Ensembl ids (version suffix ignored), tokens or symbols. Tables go
to standard output (``--csv FILE`` writes CSV instead); errors (unknown or
ambiguous genes, with close matches) go to standard error with exit status 2.
See :mod:`generain.explore`.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from typing import Sequence

import pandas as pd

from .explore import GeneEmbedding
from .utils import InputError

DEFAULT_EMBEDDING = "results/demo/embeddings/gpt.parquet"
_TERM = re.compile(r"^(?P<sign>[+-]?)(?:(?P<weight>\d+(?:\.\d*)?|\.\d+)\*)?(?P<gene>[^*\s]+)$")


def parse_term(term: str) -> tuple[float, str]:
    """``+APP`` -> (1, APP); ``-APOE`` -> (-1, APOE); ``0.5*TP53`` -> (0.5, TP53); ``-2*MYC`` -> (-2, MYC)."""
    m = _TERM.match(term.strip())
    if not m or not m["gene"]:
        raise InputError(f"cannot read the term {term!r}: write [+|-][weight*]GENE, e.g. -2*MYC")
    w = float(m["weight"]) if m["weight"] else 1.0
    return (-w if m["sign"] == "-" else w), m["gene"]


def parse_expression(parts: Sequence[str]) -> list[tuple[float, str]]:
    """Terms of a sum of genes: ``["APP - APOE + 2*BRCA1"]`` -> [(1, APP), (-1, APOE), (2, BRCA1)].

    Terms are separated by whitespace; a sign may stand alone (``- APOE``) or be
    attached (``-APOE``), so symbols with hyphens (``HLA-A``) stay whole.
    """
    out, sign = [], 1.0
    for tok in " ".join(parts).split():
        if tok in ("+", "-"):
            sign = -sign if tok == "-" else sign
            continue
        w, gene = parse_term(tok)
        out.append((sign * w, gene))
        sign = 1.0
    if not out:
        raise InputError("no genes in the expression")
    return out


def _emit(table: pd.DataFrame, csv: str | None) -> None:
    if csv:
        table.to_csv(csv, index=False)
        sys.stderr.write(f"wrote {len(table)} rows to {csv}\n")
    else:
        sys.stdout.write(table.to_string(index=False, float_format=lambda v: f"{v:.4f}") + "\n")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="generain", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-e", "--embedding", default=DEFAULT_EMBEDDING,
                   help=f"embedding parquet or word2vec text (default {DEFAULT_EMBEDDING})")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("-n", type=int, default=10, help="genes to list (default 10)")
        sp.add_argument("--species", choices=["human", "mouse"], help="list only genes of this species")
        sp.add_argument("--csv", help="write the table as CSV to this file")

    s = sub.add_parser("similar", help="genes most similar to a gene")
    s.add_argument("gene")
    common(s)
    s = sub.add_parser("similarity", help="cosine similarity of two genes")
    s.add_argument("gene_a")
    s.add_argument("gene_b")
    s = sub.add_parser("analogy", help="B - A + C: genes that are to C as B is to A")
    s.add_argument("a")
    s.add_argument("b")
    s.add_argument("c")
    common(s)
    s = sub.add_parser("combine", help="genes nearest to a signed, weighted sum of genes")
    s.add_argument("terms", nargs="+", help='a sum of [+|-][weight*]GENE terms, quoted: "APP - APOE + 0.5*BRCA1" '
                                          "(or after --)")
    common(s)
    s = sub.add_parser("plot", help="2-D map of up to three gene lists")
    s.add_argument("--list", action="append", required=True, metavar="NAME=G1,G2,...",
                   help="a named gene list (repeat up to three times)")
    s.add_argument("--method", choices=["pca", "tsne", "umap"], default="pca")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", required=True, help="output .png or .svg")
    def model_use(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--run", default="results/demo", help="a run's results directory (default results/demo)")
        sp.add_argument("--model", default="gpt", help="model type of the run (default gpt)")
        sp.add_argument("--out", required=True, help="output folder (created)")
        sp.add_argument("--batch-size", type=int, default=16, help="sequences per forward pass (default 16)")
        sp.add_argument("--device", default="cpu", help="torch device: cpu or cuda (default cpu)")
        sp.add_argument("--seed", type=int, default=0)

    s = sub.add_parser("embed-samples", help="sample and contextual gene embeddings of a run's samples, or of "
                                            "new samples from a counts table (--counts)")
    s.add_argument("--counts", help="a counts table (or --format h5ad/archs4 file) of new samples: embed them, "
                                    "scored against the run's reference, instead of the run's own samples")
    s.add_argument("--format", default="table", choices=["table", "h5ad", "archs4"], help="format of --counts")
    s.add_argument("--id-type", default="auto", help="gene ids of --counts (default auto)")
    s.add_argument("--gene-table", default="resources/annotation/genes.tsv",
                   help="gene table that maps --counts genes (default the bundled one)")
    model_use(s)
    s.add_argument("--layer", type=int, default=-2, help="hidden-state layer (default -2, second-to-last)")
    s = sub.add_parser("perturb", help="in-silico perturbation of genes in a run's samples")
    model_use(s)
    s.add_argument("--genes", required=True, help="genes perturbed together, comma-separated")
    s.add_argument("--mode", choices=["overexpress", "delete"], required=True)
    s.add_argument("--datasets", default="", help="only samples of these datasets (comma-separated)")
    s.add_argument("--series", default="", help="only samples of these series (comma-separated)")
    s.add_argument("--samples", default="", help="only these sample ids (comma-separated)")
    s.add_argument("--layer", type=int, default=-2, help="hidden-state layer (default -2)")
    s.add_argument("--null-draws", type=int, default=100, help="rank-matched null draws (default 100)")
    s.add_argument("--null-window", type=int, default=10, help="null genes within this many positions (default 10)")
    s = sub.add_parser("attention", help="per-head attention to a gene set, and attention entropy")
    model_use(s)
    s.add_argument("--gene-set", default="GO:0003700", help="term_id of the gene set (default GO:0003700)")
    s.add_argument("--gene-sets", action="append", help="gene-set file (repeatable; default the bundled "
                                                        "resources/annotation/gene_sets.parquet)")
    s.add_argument("--samples", type=int, default=64, help="sequences drawn (default 64)")
    s.add_argument("--permutations", type=int, default=1000, help="random gene sets (default 1000)")
    s.add_argument("--min-enrichment", type=float, default=1.1,
                   help="a head attends the set more at FDR < 0.05 and this enrichment (default 1.1)")
    s = sub.add_parser("finetune", help="cross-validated fine-tuning of a run's model on one task")
    model_use(s)
    task = s.add_mutually_exclusive_group(required=True)
    task.add_argument("--gene-task", metavar="TERM_ID", help="gene classification: term_id of the positive genes")
    task.add_argument("--sample-task", metavar="SHEET:COLUMN", help="sample classification: a sample sheet "
                                                                     "(sample_id + label column) and the column")
    s.add_argument("--negatives", metavar="TERM_ID", help="gene task: term_id of the negative genes (default the "
                                                          "other protein-coding genes)")
    s.add_argument("--gene-sets", action="append", help="gene-set file (repeatable; default the bundled "
                                                        "resources/annotation/gene_sets.parquet)")
    s.add_argument("--folds", type=int, default=5)
    s.add_argument("--train-layers", type=int, default=0, help="0: the head only; k: also the last k layers")
    s.add_argument("--epochs", type=int, help="default 1 (gene task) or 10 (sample task), Geneformer's")
    s.add_argument("--learning-rate", type=float, default=1e-3)
    s.add_argument("--devices", type=int, default=1, help="DDP processes (with --device cuda: one GPU each; "
                                                          "inside a Slurm job started by srun)")
    s = sub.add_parser("app", help="the web app (Streamlit) on a run's results, on 127.0.0.1")
    s.add_argument("--run", default="results/demo", help="a run's results directory (default results/demo)")
    s.add_argument("--model", default="gpt", help="which model's embedding (default gpt)")
    s.add_argument("--address", default="127.0.0.1", help="address to bind (default 127.0.0.1, this machine only)")
    s.add_argument("--port", type=int, default=8501)
    return p


def run_app(*, run: str, model: str, embedding: str | None, address: str, port: int) -> int:
    """Replace this process with the Streamlit server of ``generain/app.py`` (so a signal to it stops the server)."""
    import os
    from pathlib import Path

    env = dict(os.environ, GENERAIN_RUN=run, GENERAIN_MODEL=model, GENERAIN_EMBEDDING=embedding or "")
    cmd = [sys.executable, "-m", "streamlit", "run", str(Path(__file__).with_name("app.py")),
           "--server.address", address, "--server.port", str(port), "--server.headless", "true",
           "--browser.gatherUsageStats", "false", "--client.toolbarMode", "minimal"]
    sys.stderr.write(f"GeneRAIN explorer on http://{address}:{port} ({run}, {model})\n")
    sys.stderr.flush()
    os.execve(sys.executable, cmd, env)
    return 0  # not reached


def run_inputs(run: str, model: str) -> dict[str, str]:
    """The files of a run that the model analyses read (model, vocabulary, token corpus, QC table).

    Raises
    ------
    InputError
        If one is missing (the run has not trained that model yet).
    """
    from pathlib import Path

    r = Path(run)
    paths = {"checkpoint": r / "models" / "main" / model / "model.pt", "vocab": r / "tokens" / "vocab.tsv",
             "shards": r / "tokens" / "shards", "index": r / "tokens" / "index.parquet",
             "qc_table": r / "qc" / "samples.parquet"}
    missing = [str(p) for p in paths.values() if not p.exists()]
    if missing:
        raise InputError(f"{run}: not a finished run of model {model!r}: missing {', '.join(missing)}")
    return {k: str(v) for k, v in paths.items()}


def _csv_list(value: str) -> list[str]:
    return [v for v in value.split(",") if v]


def run_model_analysis(args: argparse.Namespace) -> None:
    """The embed-samples, perturb and attention commands: a stage function on a run's files."""
    from pathlib import Path

    from .utils import setup_logging

    setup_logging()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    inputs = run_inputs(args.run, args.model)
    common = dict(batch_size=args.batch_size, device=args.device, seed=args.seed, model_name=args.model)
    if args.command == "embed-samples" and args.counts:
        import numpy as np

        from .stages.samples import embed_counts, run_reference

        method, reference = run_reference(args.run)
        width = np.load(sorted(Path(inputs["shards"]).glob("genes_*.npy"))[0], mmap_mode="r").shape[1]
        embed_counts(counts=args.counts, fmt=args.format, checkpoint=inputs["checkpoint"], vocab=inputs["vocab"],
                     reference=reference, method=method, gene_table=args.gene_table, length=width, layer=args.layer,
                     batch_size=args.batch_size, device=args.device, out_samples=out / "embeddings.parquet",
                     id_type=args.id_type)
    elif args.command == "finetune":
        from .stages import finetune as ft

        settings = ft.FinetuneSettings(folds=args.folds, train_layers=args.train_layers,
                                       learning_rate=args.learning_rate, batch_size=args.batch_size, seed=args.seed,
                                       device=args.device, devices=args.devices,
                                       **({"gene_epochs": args.epochs, "sample_epochs": args.epochs}
                                          if args.epochs else {}))
        outs = dict(out_metrics=out / "metrics.json", out_predictions=out / "predictions.parquet",
                    out_model=out / "model.pt", out_plot=out / "folds.png", model_name=args.model)
        if args.gene_task:
            inputs.pop("qc_table")
            ft.launch_finetune("genes", **inputs,
                               gene_sets=args.gene_sets or ["resources/annotation/gene_sets.parquet"],
                               task={"name": out.name, "positives": args.gene_task, "negatives": args.negatives},
                               settings=settings, **outs)
        else:
            sheet, _, column = args.sample_task.rpartition(":")
            if not sheet:
                raise InputError(f"--sample-task {args.sample_task!r}: write SHEET:COLUMN")
            matrix = next((Path(args.run) / "normalize" / sp / n for sp in ("human", "mouse")
                           for n in ("log_cp10m.h5", "log_cp10m_subsample.h5")
                           if (Path(args.run) / "normalize" / sp / n).exists()), None)
            if matrix is None:
                raise InputError(f"{args.run}: no normalize/*/log_cp10m*.h5 for the expression-PCA baseline")
            ft.launch_finetune("samples", checkpoint=inputs["checkpoint"], shards=inputs["shards"],
                               index=inputs["index"], qc_table=inputs["qc_table"], matrix=matrix,
                               task={"name": out.name, "sheet": sheet, "column": column}, settings=settings, **outs)
    elif args.command == "embed-samples":
        from .stages.samples import embed_samples

        matrices = {}
        for sp in ("human", "mouse"):
            for name in ("log_cp10m.h5", "log_cp10m_subsample.h5"):
                f = Path(args.run) / "normalize" / sp / name
                if f.exists():
                    matrices[sp] = str(f)
                    break
        embed_samples(**inputs, matrices=matrices, layer=args.layer, out_samples=out / "embeddings.parquet",
                      out_silhouette=out / "silhouette.tsv", out_map=out / "map.png",
                      out_contextual_w2v=out / "contextual.w2v.txt", out_contextual_parquet=out / "contextual.parquet",
                      **common)
    elif args.command == "perturb":
        from .stages.perturb import perturb_genes

        run = {"name": out.name, "genes": _csv_list(args.genes), "mode": args.mode,
               "samples": {"datasets": _csv_list(args.datasets), "series": _csv_list(args.series),
                           "sample_ids": _csv_list(args.samples)}}
        perturb_genes(**inputs, run=run, layer=args.layer, null_draws=args.null_draws, null_window=args.null_window,
                      out_genes=out / "gene_shifts.parquet", out_samples=out / "sample_shifts.parquet",
                      out_plot=out / "top_genes.png", **common)
    else:
        from .stages.attention import attention_heads

        inputs.pop("qc_table")
        attention_heads(**inputs, gene_sets=args.gene_sets or ["resources/annotation/gene_sets.parquet"],
                        gene_set=args.gene_set, samples=args.samples, permutations=args.permutations,
                        min_enrichment=args.min_enrichment,
                        out_heads=out / "heads.tsv", out_plot=out / "heads.png", **common)
    sys.stderr.write(f"wrote {out}/\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, or 2 on bad input)."""
    args = build_parser().parse_args(argv)
    if args.command in ("embed-samples", "perturb", "attention", "finetune"):
        try:
            run_model_analysis(args)
        except (InputError, ValueError) as e:
            sys.stderr.write(f"generain: {e}\n")
            return 2
        return 0
    if args.command == "app":
        explicit = args.embedding if args.embedding != DEFAULT_EMBEDDING else None
        return run_app(run=args.run, model=args.model, embedding=explicit, address=args.address, port=args.port)
    try:
        emb = GeneEmbedding.load(args.embedding)
        t0 = time.perf_counter()
        if args.command == "similar":
            _emit(emb.similar(args.gene, n=args.n, species=args.species), args.csv)
        elif args.command == "similarity":
            r = emb.similarity(args.gene_a, args.gene_b)
            sys.stdout.write(
                f"cosine({r['a']}, {r['b']}) = {r['cosine']:.4f}; {r['closer_to_a']} of {r['n_genes']} genes are "
                f"closer to {args.gene_a}, {r['closer_to_b']} closer to {args.gene_b}\n")
        elif args.command == "analogy":
            _emit(emb.analogy(args.a, args.b, args.c, n=args.n, species=args.species), args.csv)
        elif args.command == "combine":
            _emit(emb.combine(parse_expression(args.terms), n=args.n, species=args.species), args.csv)
        elif args.command == "plot":
            from .plots import gene_map_plot

            lists = {}
            for spec in args.list:
                name, _, genes = spec.partition("=")
                if not genes:
                    raise InputError(f"--list {spec!r}: write NAME=GENE1,GENE2,...")
                lists[name] = [g for g in genes.split(",") if g]
            coords = emb.map_2d(lists, method=args.method, seed=args.seed)
            gene_map_plot(coords, args.out, title=f"{args.method.upper()} of {len(coords)} genes")
            sys.stderr.write(f"wrote {args.out}\n")
        sys.stderr.write(f"({time.perf_counter() - t0:.3f} s over {len(emb.unit)} genes)\n")
    except (InputError, ValueError) as e:
        sys.stderr.write(f"generain: {e}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
