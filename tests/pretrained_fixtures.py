"""Fixtures in exactly the published models' file formats (the real files are not reachable here).

GeneRAIN (suzheng/GeneRAIN, read for the format): a ``transformers``
``GPT2LMHeadModel`` / ``BertForMaskedLM`` held as ``gene_expr_transformer.gpt``
/ ``gene_expr_transformer.bert_for_masked_lm_model`` of a wrapper module,
saved as ``torch.save({"model_state_dict": wrapper.state_dict(),
"optimizer_state_dict": ...})`` (``src/utils/checkpoint_utils.py``); a
gene-index JSON ``{"SPECIAL_EMB1": 0, "SPECIAL_EMB2": 1, "SPECIAL_EMB3": 2,
symbol: 3, ...}``; the Binning-By-Gene reference as float32
(n_points, n_genes) ``.npy`` of sorted log10(CP10M+1) columns with a
``.gene_symbols.txt``. Shape settings as the released models (4 heads, erf
GELU, LayerNorm eps 1e-10, BERT type_vocab_size 2), smaller sizes.

Geneformer V1: ``BertForMaskedLM.save_pretrained`` (config.json,
model.safetensors; relu, type_vocab_size 2), ``token_dictionary.pkl``
(``<pad>`` 0, ``<mask>`` 1, then Ensembl ids sorted, values numpy int16)
and ``gene_median_dictionary.pkl`` (numpy float64), pickle protocol 4.

Weights are random (normal, sd 0.3, LayerNorms included) so that a wrong
mapping shows in the logits. Needs ``transformers`` (a test extra).

Run as a script to write the fixture that ``config/pretrained_fixture.yaml``
imports: ``python tests/pretrained_fixtures.py OUT_DIR [--gene-table T]``.
"""
from __future__ import annotations

import argparse
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import torch

N_BINS_TOKENS = 101  # BERT_Pred_Expr's expression tokens: bins 1..100, 0 = mask


def _randomize(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():  # tied parameters are listed once, so ties survive
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return model.eval()


def hf_generain(model_type: str, n_rows: int, *, n_positions: int = 64, n_embd: int = 32, n_layer: int = 2,
                seed: int = 0) -> torch.nn.Module:
    """A transformers model as GeneRAIN builds it (src/models/GeneExprTransformer*.py), random weights."""
    import transformers

    if model_type == "gpt":
        cfg = transformers.GPT2Config(vocab_size=n_rows, n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                                      n_head=4, n_inner=4 * n_embd, activation_function="gelu",
                                      layer_norm_epsilon=1e-10, resid_pdrop=0.05, attn_pdrop=0.05,
                                      attn_implementation="eager")
        return _randomize(transformers.GPT2LMHeadModel(cfg), seed)
    expr = model_type == "bert_pred_expr"
    cfg = transformers.BertConfig(vocab_size=N_BINS_TOKENS if expr else n_rows, hidden_size=n_embd,
                                  num_hidden_layers=n_layer, num_attention_heads=4, intermediate_size=4 * n_embd,
                                  hidden_act="gelu", layer_norm_eps=1e-10,
                                  max_position_embeddings=n_rows if expr else n_positions, type_vocab_size=2,
                                  hidden_dropout_prob=0.05, attention_probs_dropout_prob=0.05,
                                  attn_implementation="eager")
    return _randomize(transformers.BertForMaskedLM(cfg), seed)


def save_generain_checkpoint(hf: torch.nn.Module, model_type: str, path: Path, *, ddp: bool = False) -> None:
    """``torch.save({"model_state_dict", "optimizer_state_dict"})`` of GeneRAIN's wrapper around ``hf``."""
    inner = torch.nn.Module()
    inner.add_module("gpt" if model_type == "gpt" else "bert_for_masked_lm_model", hf)
    wrapper = torch.nn.Module()
    wrapper.add_module("gene_expr_transformer", inner)
    sd = wrapper.state_dict()
    if ddp:
        sd = {"module." + k: v for k, v in sd.items()}
    opt = torch.optim.AdamW(wrapper.parameters(), lr=1e-4)
    torch.save({"model_state_dict": sd, "optimizer_state_dict": opt.state_dict()}, path)


def generain_gene_index(symbols: list[str]) -> dict[str, int]:
    """GeneRAIN's gene-index JSON content: SPECIAL_EMB1..3 at 0..2, then the symbols."""
    index = {f"SPECIAL_EMB{i + 1}": i for i in range(3)}
    index.update({s: i + 3 for i, s in enumerate(symbols)})
    return index


def generain_reference(n_genes: int, *, n_points: int = 200, seed: int = 0) -> np.ndarray:
    """float32 (n_points, n_genes): per gene sorted log10(CP10M+1) order statistics with zeros."""
    rng = np.random.default_rng(seed)
    mean = rng.uniform(0.2, 3.0, n_genes)
    zeros = rng.uniform(0.0, 0.5, n_genes)
    v = np.abs(rng.normal(mean, 0.6, (n_points, n_genes)))
    v[rng.random((n_points, n_genes)) < zeros] = 0.0
    return np.sort(v, axis=0).astype(np.float32)


def write_generain_release(out: Path, symbols: list[str], model_types: list[str], *, n_positions: int = 2048,
                           n_embd: int = 32, n_layer: int = 2, reference_symbols: list[str] | None = None,
                           seed: int = 0, index_name: str = "gene2vec") -> dict[str, Path]:
    """GeneRAIN's released layout under ``out``: data/models/*.pth, data/embedding/*.json, the reference.

    ``index_name`` ``gene2vec`` (the three Binning_By_Gene models) or ``coding_lncrna`` (its GPT is
    GPT_protein_coding_lncRNAs).
    """
    names = {"gpt": "GPT_Binning_By_Gene" if index_name == "gene2vec" else "GPT_protein_coding_lncRNAs",
             "bert_pred_genes": "BERT_Pred_Genes_Binning_By_Gene", "bert_pred_expr": "BERT_Pred_Expr_Binning_By_Gene"}
    (out / "data" / "models").mkdir(parents=True, exist_ok=True)
    (out / "data" / "embedding").mkdir(parents=True, exist_ok=True)
    ref_dir = out / "data" / "external" / "ARCHS" / "normalize_each_gene"
    ref_dir.mkdir(parents=True, exist_ok=True)
    index = generain_gene_index(symbols)
    paths = {"gene_index": out / "data" / "embedding" / f"{index_name}_gene_to_idx.json"}
    paths["gene_index"].write_text(json.dumps(index))
    for k, m in enumerate(model_types):
        paths[m] = out / "data" / "models" / f"GeneRAIN.{names[m]}.pth"
        save_generain_checkpoint(hf_generain(m, len(index), n_positions=n_positions, n_embd=n_embd,
                                             n_layer=n_layer, seed=seed + k), m, paths[m])
    ref_symbols = reference_symbols if reference_symbols is not None else symbols
    stem = ref_dir / f"human_gene_v2.2_with_zero_expr_genes_bin_tot2000_{index_name}_0.005_subsampled"
    paths["boundaries"] = Path(str(stem) + ".npy")
    np.save(paths["boundaries"], generain_reference(len(ref_symbols), seed=seed))
    Path(str(stem) + ".gene_symbols.txt").write_text("\n".join(ref_symbols) + "\n")
    return paths


def hf_geneformer(n_tokens: int, *, n_positions: int = 2048, n_embd: int = 32, n_layer: int = 2,
                  seed: int = 0) -> torch.nn.Module:
    """Geneformer V1's architecture (BertForMaskedLM, relu, type_vocab_size 2), random weights."""
    import transformers

    cfg = transformers.BertConfig(vocab_size=n_tokens, hidden_size=n_embd, num_hidden_layers=n_layer,
                                  num_attention_heads=4, intermediate_size=2 * n_embd, hidden_act="relu",
                                  layer_norm_eps=1e-12, max_position_embeddings=n_positions, type_vocab_size=2,
                                  hidden_dropout_prob=0.02, attention_probs_dropout_prob=0.02, pad_token_id=0,
                                  attn_implementation="eager")
    return _randomize(transformers.BertForMaskedLM(cfg), seed)


def write_geneformer_release(out: Path, ensembl_ids: list[str], *, n_positions: int = 2048, n_embd: int = 32,
                             n_layer: int = 2, seed: int = 0, v2: bool = False) -> dict[str, Path]:
    """A Geneformer model directory and its two dictionary pickles under ``out``."""
    specials = ["<pad>", "<mask>"] + (["<cls>", "<eos>"] if v2 else [])
    tokens = {s: i for i, s in enumerate(specials)}
    tokens.update({g: np.int16(i + len(specials)) for i, g in enumerate(sorted(ensembl_ids))})
    rng = np.random.default_rng(seed)
    medians = {g: np.float64(rng.uniform(0.1, 50.0)) for g in sorted(ensembl_ids)}
    model_dir = out / ("Geneformer-V2-104M" if v2 else "Geneformer-V1-10M")
    hf_geneformer(len(tokens), n_positions=n_positions, n_embd=n_embd, n_layer=n_layer,
                  seed=seed).save_pretrained(model_dir)
    paths = {"model": model_dir, "token_dictionary": out / "token_dictionary.pkl",
             "gene_medians": out / "gene_median_dictionary.pkl"}
    paths["token_dictionary"].write_bytes(pickle.dumps(tokens, protocol=4))
    paths["gene_medians"].write_bytes(pickle.dumps(medians, protocol=4))
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--gene-table", default="resources/annotation/genes.tsv")
    args = ap.parse_args()
    genes = pd.read_csv(args.gene_table, sep="\t", dtype=str)
    genes = genes[genes["biotype"].isin(["protein_coding", "lncRNA"]) & genes["symbol"].notna()]
    symbols = sorted(set(genes["symbol"]))
    rng = np.random.default_rng(0)
    order = list(rng.permutation(symbols)) + ["NOT_A_GENE_1", "NOT_A_GENE_2"]  # shuffled rows, two unmapped
    paths = write_generain_release(args.out / "generain", order, ["gpt", "bert_pred_genes", "bert_pred_expr"],
                                   reference_symbols=symbols)
    coding = sorted(genes.loc[genes["biotype"] == "protein_coding", "ensembl_id"])  # < 32,767: int16 token ids
    gf = write_geneformer_release(args.out / "geneformer", coding)
    write_geneformer_release(args.out / "geneformer_v2", coding, v2=True)
    print(json.dumps({**{k: str(v) for k, v in paths.items()}, **{f"geneformer_{k}": str(v) for k, v in gf.items()}},
                     indent=1))


if __name__ == "__main__":
    main()
