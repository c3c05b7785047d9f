"""``generain``: explore a run's gene embeddings from the command line.

    generain similar RPL11 -e results/demo/embeddings/gpt.parquet -n 10
    generain similarity APOE APP
    generain analogy APOE APP BRCA1            # APP - APOE + BRCA1
    generain combine "APP - APOE + BRCA1 + 0.5*TP53"   # any signed, weighted sum
    generain plot --list ribosome=RPL11,RPS3,RPL5 --list hla=HLA-A,HLA-B --method pca --out map.png

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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, or 2 on bad input)."""
    args = build_parser().parse_args(argv)
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
