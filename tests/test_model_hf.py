"""Fidelity to the reference implementation: our models give Hugging Face's logits.

GeneRAIN built its models from ``transformers``' GPT2LMHeadModel and
BertForMaskedLM (suzheng/GeneRAIN src/models/GeneExprTransformer.py:
``hidden_act`` gelu, ``layer_norm_eps`` 1e-12). These tests copy our weights
into those classes and compare logits in float32 within 1e-5, with padding
and, for bert_pred_expr, gene ids as position ids. The name mapping is
``generain.model.hf_state_dict``.
"""
from __future__ import annotations

import pytest
import torch

from generain.model import build_model, hf_state_dict, model_config_for

transformers = pytest.importorskip("transformers")

SHAPE = dict(n_layer=2, n_head=4, n_embd=32, n_inner=64, dropout=0.0)


def _load(hf: torch.nn.Module, sd: dict[str, torch.Tensor]) -> None:
    missing, unexpected = hf.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    assert all("position_ids" in k or "token_type_ids" in k for k in missing), missing


def _random_weights(model: torch.nn.Module) -> torch.nn.Module:
    """Weights off their init values (unit LayerNorms, zero biases), large enough that gelu vs gelu_new differs."""
    for p in model.parameters():
        torch.nn.init.normal_(p, std=0.3)
    return model.eval()


def _hf_gpt(ours: torch.nn.Module) -> torch.nn.Module:
    """transformers' GPT2LMHeadModel of our GPT's shape (eager attention), our weights."""
    cfg = ours.cfg
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=cfg.vocab_size, n_positions=cfg.n_positions, n_embd=cfg.n_embd, n_layer=cfg.n_layer,
        n_head=cfg.n_head, n_inner=cfg.n_inner, activation_function="gelu", layer_norm_epsilon=1e-12,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, attn_implementation="eager")).eval()
    _load(hf, hf_state_dict(ours))
    return hf


def _hf_bert(ours: torch.nn.Module) -> torch.nn.Module:
    """transformers' BertForMaskedLM of our BERT's shape (eager attention, so it returns probabilities), our weights."""
    cfg = ours.cfg
    hf = transformers.BertForMaskedLM(transformers.BertConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.n_embd, num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head,
        intermediate_size=cfg.n_inner, hidden_act="gelu", layer_norm_eps=1e-12,
        max_position_embeddings=cfg.n_positions, type_vocab_size=1, hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0, attn_implementation="eager")).eval()
    _load(hf, hf_state_dict(ours))
    return hf


def test_gpt_matches_gpt2lmheadmodel():
    torch.manual_seed(0)
    ours = _random_weights(build_model("gpt", model_config_for("gpt", n_genes=50, length=16, **SHAPE)))
    hf = _hf_gpt(ours)
    idx = torch.randint(3, 50, (3, 16))
    with torch.no_grad():
        a, _ = ours(idx)
        b = hf(input_ids=idx).logits
    assert a.shape == b.shape == (3, 16, 50)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


@pytest.mark.parametrize("model_type", ["bert_pred_genes", "bert_pred_expr"])
def test_bert_matches_bertformaskedlm(model_type):
    torch.manual_seed(1)
    n_genes, T = 60, 12
    cfg = model_config_for(model_type, n_genes=n_genes, length=T, **SHAPE)
    ours = _random_weights(build_model(model_type, cfg))
    hf = _hf_bert(ours)
    key_mask = torch.ones(2, T, dtype=torch.bool)
    key_mask[1, 9:] = False  # the second sample has 9 real tokens, then padding
    if model_type == "bert_pred_genes":
        idx, pos = torch.randint(3, n_genes, (2, T)), None
        hf_pos = None
    else:  # expression bins as tokens, gene ids as positions
        idx = torch.randint(0, 101, (2, T))
        pos = torch.stack([torch.randperm(n_genes - 3)[:T] + 3 for _ in range(2)])
        hf_pos = pos
    idx[~key_mask] = 0
    with torch.no_grad():
        a, _ = ours(idx, position_ids=pos, key_mask=key_mask)
        b = hf(input_ids=idx, position_ids=hf_pos, attention_mask=key_mask.long()).logits
    assert a.shape == b.shape == (2, T, cfg.vocab_size)
    torch.testing.assert_close(a[key_mask], b[key_mask], atol=1e-5, rtol=0)
    assert ours.gene_embedding().shape == (n_genes, 32)


@pytest.mark.parametrize("layer", [0, 1, -2, -1])
def test_gpt_hidden_states_and_attention_match_gpt2(layer):
    """hidden_state(layer) is Hugging Face's hidden_states[layer] (the last one after ln_f); attention()
    gives its eager attention probabilities, layer by layer."""
    torch.manual_seed(2)
    ours = _random_weights(build_model("gpt", model_config_for("gpt", n_genes=40, length=10, **SHAPE)))
    hf = _hf_gpt(ours)
    idx = torch.randint(3, 40, (2, 10))
    with torch.no_grad():
        out = hf(input_ids=idx, output_hidden_states=True, output_attentions=True)
        torch.testing.assert_close(ours.hidden_state(idx, layer=layer), out.hidden_states[layer], atol=1e-5, rtol=0)
        probs = list(ours.attention(idx))
    assert len(probs) == 2
    for a, b in zip(probs, out.attentions):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


@pytest.mark.parametrize("model_type", ["bert_pred_genes", "bert_pred_expr"])
def test_bert_hidden_states_and_attention_match_bertformaskedlm(model_type):
    torch.manual_seed(3)
    n_genes, T = 60, 12
    cfg = model_config_for(model_type, n_genes=n_genes, length=T, **SHAPE)
    ours = _random_weights(build_model(model_type, cfg))
    hf = _hf_bert(ours)
    key_mask = torch.ones(2, T, dtype=torch.bool)
    key_mask[1, 7:] = False
    idx = torch.randint(3, cfg.vocab_size, (2, T))
    pos = torch.stack([torch.randperm(n_genes - 3)[:T] + 3 for _ in range(2)]) if model_type == "bert_pred_expr" else None
    idx[~key_mask] = 0
    with torch.no_grad():
        out = hf(input_ids=idx, position_ids=pos, attention_mask=key_mask.long(), output_hidden_states=True,
                 output_attentions=True)
        for layer in (0, 1, -2, -1):
            h = ours.hidden_state(idx, position_ids=pos, key_mask=key_mask, layer=layer)
            torch.testing.assert_close(h[key_mask], out.hidden_states[layer][key_mask], atol=1e-5, rtol=0)
        probs = list(ours.attention(idx, position_ids=pos, key_mask=key_mask))
    for a, b in zip(probs, out.attentions):  # real query rows; HF gives padding keys ~0 weight too
        torch.testing.assert_close(a.permute(0, 2, 1, 3)[key_mask], b.permute(0, 2, 1, 3)[key_mask], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="outside the model's hidden states"):
        ours.hidden_state(idx, position_ids=pos, key_mask=key_mask, layer=3)
