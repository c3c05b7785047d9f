"""Time of one similar-genes query over the whole vocabulary (generain.explore).

    python benchmarks/explore_query.py                                   # demo run + 66,000 x 200 random
    python benchmarks/explore_query.py --embedding results/demo/embeddings/gpt.parquet --gene RPL11
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from generain.explore import GeneEmbedding


def per_query_ms(emb: GeneEmbedding, gene: str, repeats: int) -> float:
    emb.similar(gene, n=10)  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        emb.similar(gene, n=10)
    return (time.perf_counter() - t0) / repeats * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--embedding", default="results/demo/embeddings/gpt.parquet")
    ap.add_argument("--gene", default="RPL11")
    ap.add_argument("--genes", type=int, default=66_000, help="size of the random embedding")
    ap.add_argument("--dim", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=20)
    a = ap.parse_args()
    print("| embedding | genes x dim | ms per query (mean of %d) |" % a.repeats)
    print("|---|---|---|")
    if Path(a.embedding).exists():
        emb = GeneEmbedding.load(a.embedding)
        print(f"| {a.embedding} | {emb.unit.shape[0]} x {emb.unit.shape[1]} | {per_query_ms(emb, a.gene, a.repeats):.1f} |")
    rng = np.random.default_rng(0)
    genes = pd.DataFrame({"token": [f"T{i}" for i in range(a.genes)], "ensembl_id": "",
                          "symbol": [f"S{i}" for i in range(a.genes)], "species": ""})
    big = GeneEmbedding._make(genes, rng.normal(size=(a.genes, a.dim)).astype(np.float32))
    print(f"| random | {a.genes} x {a.dim} | {per_query_ms(big, 'S5', a.repeats):.1f} |")


if __name__ == "__main__":
    main()
