"""Training throughput of our GPT against transformers' GPT2LMHeadModel, side by side.

Both models get the same shape, weights and batches; one timed "step" is
forward + backward + AdamW update. The two alternate step by step within one
process so that machine noise hits both alike; tokens/s is from the median
step time, and the ratio of the two is the figure to report (BENCHMARKS.md).

On a GPU (``--device cuda``) it also reports bf16 autocast throughput, the
model FLOPs utilisation (MFU: 6 x parameters x tokens + attention FLOPs per
second, over the GPU's peak dense bf16 FLOPs given by ``--peak-tflops``) and
the projected time of one epoch over 410,000 samples x 2,048 tokens.

Usage::

    python benchmarks/train_throughput.py --device cpu --length 512 --batch 4 --rounds 5
    python benchmarks/train_throughput.py --device cuda --length 2048 --batch 32 --precision bf16 --compile

Needs ``transformers`` (a test dependency).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch
import transformers

from generain.model import GPT, hf_state_dict, model_config_for


def flops_per_token(n_params: int, n_layer: int, n_embd: int, length: int) -> float:
    """Training FLOPs per token: 6N for the weights plus 12 x layers x hidden x length for attention (PaLM, App. B)."""
    return 6 * n_params + 12 * n_layer * n_embd * length


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--vocab", type=int, default=13_172, help="gene vocabulary (the demo's)")
    ap.add_argument("--length", type=int, default=512)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--hidden", type=int, default=200)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--ffn", type=int, default=800)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--compile", action="store_true", help="torch.compile our model (GPU)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--peak-tflops", type=float, default=989.0, help="peak dense bf16 TFLOPS (H100 SXM: 989)")
    ap.add_argument("--skip-hf", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    torch.manual_seed(0)
    cfg = model_config_for("gpt", n_genes=args.vocab, length=args.length, n_layer=args.layers, n_head=args.heads,
                           n_embd=args.hidden, n_inner=args.ffn, dropout=0.05)
    ours = GPT(cfg).to(dev)
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=args.vocab, n_positions=args.length, n_embd=args.hidden, n_layer=args.layers, n_head=args.heads,
        n_inner=args.ffn, activation_function="gelu", layer_norm_epsilon=1e-12, resid_pdrop=0.05, embd_pdrop=0.05,
        attn_pdrop=0.05, bos_token_id=None, eos_token_id=None)).to(dev)
    hf.load_state_dict(hf_state_dict(ours), strict=False)
    n_params = sum(p.numel() for p in ours.parameters())
    models = {"generain": ours} if args.skip_hf else {"generain": ours, "transformers": hf}
    runners = {}
    for name, m in models.items():
        m.train()
        opt = torch.optim.AdamW(m.parameters(), lr=1e-4, weight_decay=0.01)
        fwd = torch.compile(m) if (args.compile and name == "generain") else m

        def step(x, m=m, fwd=fwd, opt=opt, name=name):
            with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=args.precision == "bf16"):
                if name == "generain":
                    _, loss = fwd(x[:, :-1], x[:, 1:])
                else:
                    loss = fwd(input_ids=x[:, :-1], labels=x[:, :-1]).loss  # HF shifts inside
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        runners[name] = step
    batches = [torch.randint(3, args.vocab, (args.batch, args.length), device=dev) for _ in range(args.steps)]
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    for step in runners.values():  # warm-up (and compilation)
        for x in batches[:2]:
            step(x)
    sync()
    times = {name: [] for name in runners}
    for _ in range(args.rounds):  # alternate step by step so both see the same machine state
        for x in batches:
            for name, step in runners.items():
                sync()
                t0 = time.perf_counter()
                step(x)
                sync()
                times[name].append(time.perf_counter() - t0)
    tokens = args.batch * (args.length - 1)  # per step
    result = {"machine": platform.processor() or platform.machine(), "device": str(dev),
              "gpu": torch.cuda.get_device_name() if dev.type == "cuda" else None,
              "torch": torch.__version__, "threads": torch.get_num_threads(), "n_parameters": n_params,
              "length": args.length, "batch": args.batch, "precision": args.precision, "compile": args.compile,
              "steps_timed": len(next(iter(times.values())))}
    for name, ts in times.items():
        result[f"{name}_tokens_per_s"] = round(tokens / statistics.median(ts))  # median step time
    if "transformers" in times:
        result["ratio_generain_over_transformers"] = round(
            result["generain_tokens_per_s"] / result["transformers_tokens_per_s"], 3)
    rate = result["generain_tokens_per_s"]
    if dev.type == "cuda":
        fpt = flops_per_token(n_params, args.layers, args.hidden, args.length)
        result["mfu"] = round(rate * fpt / (args.peak_tflops * 1e12), 4)
    result["projected_epoch_hours_410k_x_2048"] = round(410_000 * 2048 / rate / 3600, 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
