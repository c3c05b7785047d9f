"""Sample and contextual gene embeddings from hidden states, on hand-made models whose states are known."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from generain import inference
from generain.model import build_model, model_config_for
from generain.tokenize import TokenShards, write_token_shards

SHAPE = dict(n_layer=2, n_head=2, n_embd=4, n_inner=8, dropout=0.0)


def _corpus(tmp_path, genes, expr, shard_size=2):
    n = len(genes)
    write_token_shards(tmp_path / "shards", tmp_path / "index.parquet", sample_ids=np.array([f"s{i}" for i in range(n)]),
                       gene_tokens=np.asarray(genes, np.uint16), expr_tokens=np.asarray(expr, np.uint8),
                       n_tokens=(np.asarray(genes) > 0).sum(1), split=np.array(["train"] * n), shard_size=shard_size)
    return TokenShards(tmp_path / "shards", pd.read_parquet(tmp_path / "index.parquet"))


GENES = np.array([[5, 3, 7, 4], [3, 6, 0, 0], [7, 5, 6, 3]])
EXPR = np.array([[100, 1, 50, 75], [1, 100, 0, 0], [25, 50, 75, 100]])


def test_model_batch_inputs_per_model_type():
    b = inference.model_batch("gpt", GENES, EXPR)
    assert b.kwargs["idx"].tolist() == GENES[:, :3].tolist()  # the GPT's training inputs: all but the last token
    assert b.real.tolist() == [[True] * 3, [True, True, False], [True] * 3]
    b = inference.model_batch("bert_pred_genes", GENES, EXPR)
    assert b.kwargs["idx"].tolist() == GENES.tolist() and b.kwargs["key_mask"].tolist() == (GENES > 0).tolist()
    b = inference.model_batch("bert_pred_expr", GENES, EXPR)
    assert b.kwargs["idx"].tolist() == EXPR.tolist() and b.kwargs["position_ids"].tolist() == GENES.tolist()
    assert b.positions.tolist() == GENES.tolist()
    with pytest.raises(ValueError, match="unknown model type"):
        inference.model_batch("lstm", GENES, EXPR)


def test_read_rows_follows_the_requested_order_across_shards(tmp_path):
    shards = _corpus(tmp_path, GENES, EXPR)
    g, e = inference.read_rows(shards, np.array([2, 0, 1]))
    assert g.tolist() == GENES[[2, 0, 1]].tolist() and e.tolist() == EXPR[[2, 0, 1]].tolist()


@pytest.mark.parametrize("model_type", ["gpt", "bert_pred_genes", "bert_pred_expr"])
def test_layer0_embeddings_are_known_means(tmp_path, model_type):
    """Layer 0 with zero position (gpt) or word (bert_pred_expr: bins) embeddings is a fixed vector per gene:
    the sample embedding is the mean of its genes' vectors, the contextual embedding the gene's vector."""
    torch.manual_seed(0)
    cfg = model_config_for(model_type, n_genes=8, length=4, **SHAPE)
    model = build_model(model_type, cfg).eval()
    with torch.no_grad():
        if model_type == "gpt":
            model.wpe.weight.zero_()
            table = model.wte.weight
        elif model_type == "bert_pred_genes":
            model.pos_emb.weight.zero_()
            table = model.word_emb.weight
        else:
            model.word_emb.weight.zero_()
            table = model.pos_emb.weight
        if model_type != "gpt":  # the embedding LayerNorm with unit weight and zero bias: normalize the table
            table = torch.nn.functional.layer_norm(table, (4,), eps=cfg.layer_norm_eps)
    vec = table.detach().numpy().astype(np.float64)
    shards = _corpus(tmp_path, GENES, EXPR)
    out = inference.embed_corpus(model, model_type, shards, np.arange(3), layer=0, vocab_size=8, batch_size=2)
    width = 3 if model_type == "gpt" else 4
    for i, row in enumerate(GENES):
        real = [t for t in row[:width] if t]
        np.testing.assert_allclose(out.samples[i], vec[real].mean(0), atol=1e-6)
    seen, ctx = out.contextual()
    expect_counts = {3: 2 if model_type == "gpt" else 3, 4: 0 if model_type == "gpt" else 1, 5: 2, 6: 2, 7: 2}
    assert {int(t): int(out.gene_count[t]) for t in range(3, 8)} == expect_counts
    assert seen.tolist() == [t for t in range(3, 8) if expect_counts[t]]
    np.testing.assert_allclose(ctx, vec[seen], atol=1e-6)


def test_contextual_embedding_averages_context_dependent_states(tmp_path):
    """At layer 1 the state depends on the sequence: the contextual embedding is the mean over samples."""
    torch.manual_seed(1)
    model = build_model("bert_pred_genes", model_config_for("bert_pred_genes", n_genes=8, length=4, **SHAPE)).eval()
    shards = _corpus(tmp_path, GENES, EXPR)
    out = inference.embed_corpus(model, "bert_pred_genes", shards, np.arange(3), layer=1, vocab_size=8)
    b = inference.model_batch("bert_pred_genes", GENES, EXPR)
    with torch.no_grad():
        h = model.hidden_state(**b.kwargs, layer=1).numpy()
    rows, cols = np.nonzero(GENES == 5)
    seen, ctx = out.contextual()
    np.testing.assert_allclose(ctx[list(seen).index(5)], h[rows, cols].mean(0), atol=1e-6)
    np.testing.assert_allclose(out.samples[1], h[1, :2].mean(0), atol=1e-6)  # padding excluded


def test_select_samples_intersects_filters():
    meta = pd.DataFrame({"sample_id": ["a", "b", "c", "d"], "dataset": ["x", "x", "y", "y"],
                         "series_id": ["s1", "s2", "s1", "s1"]})
    assert inference.select_samples(meta).tolist() == [0, 1, 2, 3]
    assert inference.select_samples(meta, datasets=["y"]).tolist() == [2, 3]
    assert inference.select_samples(meta, datasets=["x", "y"], series=["s1"]).tolist() == [0, 2, 3]
    assert inference.select_samples(meta, series=["s1"], sample_ids=["d", "b"]).tolist() == [3]
