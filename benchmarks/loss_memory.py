"""Peak memory and tokens/s of a training step: the language-model loss over full logits vs in chunks.

The full path materialises the head's logits (batch x positions x
vocabulary floats) and keeps them for the backward pass; the chunked path
(:func:`generain.model.linear_cross_entropy`, what training uses) never holds
more than one chunk of them. Same model, weights and batch for both.

- Peak memory: each variant runs in its own fresh process: three steps, and
  the peak resident memory (VmHWM) minus the resident memory before the first
  step (so AdamW's state, 2 x parameters floats, is in both figures).
- Throughput: both variants alternate step by step in one process (so machine
  noise hits both alike); tokens/s from the median step time.

Usage::

    python benchmarks/loss_memory.py --model gpt --length 2048 --batch 4 --vocab 13172 --steps 3
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from generain.model import build_model, model_config_for
from generain.training.masking import model_inputs


def _status(key: str) -> int:
    """A /proc/self/status figure in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def _setup(a: argparse.Namespace):
    torch.manual_seed(0)
    n_genes = a.vocab
    model = build_model(a.model, model_config_for(a.model, n_genes=n_genes, length=a.length, n_layer=a.layers,
                                                   n_head=a.heads, n_embd=a.hidden, n_inner=a.ffn, dropout=0.0))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(1)
    genes = torch.stack([torch.randperm(n_genes - 3, generator=g)[:a.length] + 3 for _ in range(a.batch)])
    expr = torch.arange(a.length, 0, -1).clamp(max=100).repeat(a.batch, 1)
    torch.manual_seed(2)
    inputs = model_inputs(a.model, {"genes": genes, "expr": expr}, 0.15)
    return model.train(), opt, inputs


def _step(model, opt, inputs, chunked: bool) -> float:
    opt.zero_grad(set_to_none=True)
    _, loss = model(**inputs, return_logits=not chunked)
    loss.backward()
    opt.step()
    return float(loss.detach())


def measure_memory(a: argparse.Namespace, variant: str) -> dict:
    """In this (fresh) process: peak resident bytes over three training steps above the memory before them."""
    model, opt, inputs = _setup(a)
    chunked = variant == "chunked"
    before = _status("VmRSS")  # model, batch and the interpreter; AdamW's state comes with the first step
    for _ in range(3):
        loss = _step(model, opt, inputs, chunked)
    return {"variant": variant, "peak_step_bytes": _status("VmHWM") - before, "peak_rss_bytes": _status("VmHWM"),
            "loss": loss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="gpt", choices=["gpt", "bert_pred_genes", "bert_pred_expr"])
    ap.add_argument("--vocab", type=int, default=13_172, help="gene vocabulary (the demo's)")
    ap.add_argument("--length", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=800)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per variant")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--memory-only", choices=["full", "chunked"], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    if a.memory_only:
        print(json.dumps(measure_memory(a, a.memory_only)))
        return
    args = sys.argv[1:]
    mem = {}
    for variant in ("full", "chunked"):
        out = subprocess.run([sys.executable, __file__, *args, "--memory-only", variant], capture_output=True,
                             text=True, check=True).stdout
        mem[variant] = json.loads(out.strip().splitlines()[-1])
    model, opt, inputs = _setup(a)
    times: dict[str, list[float]] = {"full": [], "chunked": []}
    losses = {}
    for v in ("full", "chunked"):  # warm-up
        _step(model, opt, inputs, v == "chunked")
    for _ in range(a.steps):
        for v in ("full", "chunked"):
            t = time.perf_counter()
            losses[v] = _step(model, opt, inputs, v == "chunked")
            times[v].append(time.perf_counter() - t)
    tokens = a.batch * a.length
    res = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
           "model": a.model, "shape": {k: getattr(a, k) for k in ("vocab", "length", "batch", "layers", "hidden",
                                                                   "heads", "ffn")}}
    for v in ("full", "chunked"):
        med = statistics.median(times[v])
        res[v] = {"peak_step_mb": round(mem[v]["peak_step_bytes"] / 2**20, 1),
                  "peak_rss_mb": round(mem[v]["peak_rss_bytes"] / 2**20, 1), "median_step_s": round(med, 3),
                  "tokens_per_s": round(tokens / med, 1)}
    res["memory_ratio_chunked_over_full"] = round(mem["chunked"]["peak_step_bytes"] / mem["full"]["peak_step_bytes"], 3)
    res["speed_ratio_chunked_over_full"] = round(statistics.median(times["full"]) / statistics.median(times["chunked"]), 3)
    res["loss_same_weights"] = {v: round(mem[v]["loss"], 6) for v in mem}
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
