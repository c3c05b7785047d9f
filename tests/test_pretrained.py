"""Importing published models: logits within 1e-5 of the transformers model they were saved from.

The fixtures are written in exactly the released files' formats
(tests/pretrained_fixtures.py); the released files themselves are not
reachable from here.
"""
from __future__ import annotations

import json
import pickle

import numpy as np
import pandas as pd
import pytest
import torch

from generain import normalize, pretrained
from generain.utils import InputError

transformers = pytest.importorskip("transformers")

from pretrained_fixtures import (  # noqa: E402
    generain_gene_index, hf_generain, save_generain_checkpoint, write_geneformer_release, write_generain_release,
)

GENES = pd.DataFrame({
    "ensembl_id": [f"ENSG{i:011d}" for i in range(1, 41)] + ["ENSG00000000099", "ENSG00000000098"],
    "symbol": [f"G{i}" for i in range(1, 41)] + ["AMB", "AMB"],  # AMB names two genes: ambiguous
    "biotype": ["protein_coding"] * 30 + ["lncRNA"] * 10 + ["protein_coding"] * 2,
})
# the model's rows: shuffled symbols, one unknown symbol, the ambiguous one
SYMBOLS = [f"G{i}" for i in np.random.default_rng(0).permutation(np.arange(1, 41))] + ["NOPE", "AMB"]


def _their_ids(vocab: pretrained.ImportedVocabulary, our_ids: torch.Tensor) -> torch.Tensor:
    return torch.as_tensor(vocab.rows)[our_ids]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("generain")
    return write_generain_release(out, SYMBOLS, ["gpt", "bert_pred_genes", "bert_pred_expr"], n_positions=24,
                                  reference_symbols=SYMBOLS[:20] + ["NOPE"], seed=3)


def test_generain_vocabulary_maps_symbols_and_counts_the_rest():
    index = generain_gene_index(SYMBOLS)
    v = pretrained.generain_vocabulary(index, GENES)
    assert v.counts() == {"mapped": 40, "special": 3, "unmapped": 1, "ambiguous": 1}
    assert list(v.vocab["token"][:3]) == ["<pad>", "<mask>", "<cls>"]
    # our <pad> <mask> <cls> take GeneRAIN rows 1, 0 (its mask token), 2; genes keep the index's order
    assert list(v.rows[:3]) == [1, 0, 2]
    g5 = v.vocab.index[v.vocab["symbol"] == "G5"][0]
    assert v.rows[g5] == index["G5"] and v.vocab.loc[g5, "ensembl_id"] == "ENSG00000000005"
    assert v.gene_map.loc[v.gene_map["key"] == "AMB", "status"].item() == "ambiguous"


@pytest.mark.parametrize("model_type", ["gpt", "bert_pred_genes", "bert_pred_expr"])
def test_generain_checkpoint_gives_the_transformers_logits(release, model_type):
    index = json.loads(release["gene_index"].read_text())
    vocab = pretrained.generain_vocabulary(index, GENES)
    ours = pretrained.import_generain_model(release[model_type], model_type, vocab.rows)
    hf = hf_generain(model_type, len(index), n_positions=24,
                     seed=3 + ["gpt", "bert_pred_genes", "bert_pred_expr"].index(model_type)).eval()
    g = torch.Generator().manual_seed(1)
    genes = torch.randint(3, len(vocab.vocab), (2, 20), generator=g)  # our gene token ids
    with torch.no_grad():
        if model_type == "gpt":
            a, _ = ours(genes)
            b = hf(input_ids=_their_ids(vocab, genes)).logits[..., torch.as_tensor(vocab.rows[3:])]
            a = a[..., 3:]
        elif model_type == "bert_pred_genes":
            genes[:, 4] = 1  # our <mask> is their row 0
            mask = torch.ones_like(genes, dtype=torch.bool)
            mask[1, 15:] = False
            a, _ = ours(genes, key_mask=mask)
            b = hf(input_ids=_their_ids(vocab, genes), attention_mask=mask.long()).logits
            a, b = a[..., 3:][mask], b[..., torch.as_tensor(vocab.rows[3:])][mask]
        else:
            bins = torch.randint(0, 101, (2, 20), generator=g)
            a, _ = ours(bins, position_ids=genes)
            b = hf(input_ids=bins, position_ids=_their_ids(vocab, genes)).logits
    assert a.shape == b.shape
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    # the gene embedding: the same rows, in the vocabulary's order
    emb = {"gpt": lambda m: m.transformer.wte.weight,
           "bert_pred_genes": lambda m: m.bert.embeddings.word_embeddings.weight,
           "bert_pred_expr": lambda m: m.bert.embeddings.position_embeddings.weight}[model_type](hf).detach()
    got = ours.gene_embedding()[3:]
    want = emb[torch.as_tensor(vocab.rows[3:])]
    if model_type == "bert_pred_expr":  # the constant token-type row was folded into the positions
        want = want + hf.bert.embeddings.token_type_embeddings.weight[0].detach()
    torch.testing.assert_close(got, want, atol=0, rtol=0)


def test_coding_lncrna_release_imports_the_same_way(tmp_path):
    """GPT_protein_coding_lncRNAs with coding_lncrna_gene_to_idx.json and its reference: the other released pair."""
    paths = write_generain_release(tmp_path, SYMBOLS, ["gpt"], n_positions=24, index_name="coding_lncrna", seed=9)
    assert paths["gpt"].name == "GeneRAIN.GPT_protein_coding_lncRNAs.pth"
    assert paths["gene_index"].name == "coding_lncrna_gene_to_idx.json"
    index = json.loads(paths["gene_index"].read_text())
    vocab = pretrained.generain_vocabulary(index, GENES)
    ours = pretrained.import_generain_model(paths["gpt"], "gpt", vocab.rows)
    hf = hf_generain("gpt", len(index), n_positions=24, seed=9).eval()
    genes = torch.randint(3, len(vocab.vocab), (2, 20), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        a = ours(genes)[0][..., 3:]
        b = hf(input_ids=_their_ids(vocab, genes)).logits[..., torch.as_tensor(vocab.rows[3:])]
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)
    symbols_txt = str(paths["boundaries"]).replace(".npy", ".gene_symbols.txt")
    assert "coding_lncrna_0.005_subsampled" in symbols_txt
    ref = pretrained.generain_bin_reference(paths["boundaries"], symbols_txt, vocab.vocab, vocab.gene_map)
    assert len(ref.gene_ids) == 40


def test_ddp_prefix_and_wrong_checkpoints(tmp_path):
    hf = hf_generain("gpt", 10, n_positions=8, seed=0)
    save_generain_checkpoint(hf, "gpt", tmp_path / "ddp.pth", ddp=True)
    sd = pretrained.read_generain_checkpoint(tmp_path / "ddp.pth", "gpt")
    assert "transformer.wte.weight" in sd and not any(k.startswith(("module.", "gene_expr")) for k in sd)
    with pytest.raises(InputError, match="no weight under 'gene_expr_transformer.bert_for_masked_lm_model.'"):
        pretrained.read_generain_checkpoint(tmp_path / "ddp.pth", "bert_pred_genes")
    bert = hf_generain("bert_pred_genes", 10, n_positions=8, seed=0)
    save_generain_checkpoint(bert, "bert_pred_genes", tmp_path / "bpg.pth")
    with pytest.raises(InputError, match="BERT_Pred_Expr's are the 101 expression bins"):
        pretrained.import_generain_model(tmp_path / "bpg.pth", "bert_pred_expr", np.arange(10))
    sd = {"module.gene_expr_transformer.gpt." + k: v.clone() for k, v in hf.state_dict().items()}
    sd["module.gene_expr_transformer.gpt.lm_head.weight"] += 1.0  # untied head
    torch.save({"model_state_dict": sd}, tmp_path / "untied.pth")
    with pytest.raises(InputError, match="not tied"):
        pretrained.import_generain_model(tmp_path / "untied.pth", "gpt", np.arange(10))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="junk.pth"):
        pretrained.read_generain_checkpoint(tmp_path / "junk.pth", "gpt")


def test_generain_reference_bins_new_samples_as_the_authors(release):
    index = json.loads(release["gene_index"].read_text())
    vocab = pretrained.generain_vocabulary(index, GENES)
    symbols_txt = str(release["boundaries"]).replace(".npy", ".gene_symbols.txt")
    ref = pretrained.generain_bin_reference(release["boundaries"], symbols_txt, vocab.vocab, vocab.gene_map)
    raw = np.load(release["boundaries"])  # (n_points, n_genes): columns are genes
    assert ref.n_bins == 2000 and ref.values.shape == (20, raw.shape[0])  # NOPE has no gene: dropped
    g = SYMBOLS[0]
    assert ref.gene_ids[0] == GENES.set_index("symbol").loc[g, "ensembl_id"]
    np.testing.assert_array_equal(ref.values[0], raw[:, 0])
    # a value's bin is its rank among the gene's non-zero reference points (the authors' stack of
    # reference + new values): floor(r * 1999 / m) + 2; hand-computed for three values
    nz = raw[:, 0][raw[:, 0] > 0]
    m = nz.size
    assert np.all(np.diff(nz) > 0)  # no ties, so ranks are exact
    v = np.array([[0.0, (nz[10] + nz[11]) / 2, nz[-1] + 1.0]], dtype=np.float32)  # one gene, three samples
    bins, rows = normalize.apply_bin_reference(v, np.array([ref.gene_ids[0]], dtype=object), ref)
    assert bins[0].tolist() == [1, 11 * 1999 // m + 2, 2000] and rows.tolist() == [0]


def test_geneformer_v1_directory_gives_the_transformers_logits(tmp_path):
    ens = list(GENES["ensembl_id"][:40])
    paths = write_geneformer_release(tmp_path, ens, n_positions=32, seed=5)
    tokens = pretrained.read_pickled_dict(paths["token_dictionary"])
    medians = pretrained.read_pickled_dict(paths["gene_medians"])
    assert tokens["<pad>"] == 0 and tokens["<mask>"] == 1 and isinstance(tokens[ens[0]], int)
    assert isinstance(medians[ens[0]], float)
    vocab = pretrained.geneformer_vocabulary(tokens, GENES)
    assert vocab.counts() == {"mapped": 40, "special": 2}
    assert list(vocab.rows[:3]) == [0, 1, -1]  # Geneformer V1 has no <cls>: a zero row
    ours = pretrained.import_geneformer_model(paths["model"], vocab.rows)
    assert ours.cfg.activation == "relu" and ours.cfg.n_positions == 32
    hf = transformers.BertForMaskedLM.from_pretrained(paths["model"], attn_implementation="eager").eval()
    genes = torch.randint(3, 43, (2, 30), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(genes, dtype=torch.bool)
    mask[0, 25:] = False
    with torch.no_grad():
        a, _ = ours(genes, key_mask=mask)
        b = hf(input_ids=_their_ids(vocab, genes), attention_mask=mask.long()).logits
    torch.testing.assert_close(a[..., 3:][mask], b[..., torch.as_tensor(vocab.rows[3:])][mask], atol=1e-5, rtol=0)


def test_geneformer_v2_frames_inputs_with_cls_and_eos_as_transformers(tmp_path):
    """V2 dictionaries (<cls>, <eos>): our model reads <cls> genes... <eos> and gives the transformers model's
    logits and hidden states on that framed input; the states line up with the genes."""
    from generain import inference

    ens = list(GENES["ensembl_id"][:40])
    paths = write_geneformer_release(tmp_path, ens, n_positions=32, seed=6, v2=True)
    tokens = pretrained.read_pickled_dict(paths["token_dictionary"])
    assert (tokens["<cls>"], tokens["<eos>"]) == (2, 3)
    vocab = pretrained.geneformer_vocabulary(tokens, GENES)
    eos = pretrained.eos_token_id(vocab.vocab)
    assert eos == len(vocab.vocab) - 1 == 43 and list(vocab.rows[[0, 1, 2, eos]]) == [0, 1, 2, 3]
    ours = pretrained.import_geneformer_model(paths["model"], vocab.rows, eos_token=eos)
    hf = transformers.BertForMaskedLM.from_pretrained(paths["model"], attn_implementation="eager").eval()
    genes = torch.randint(3, 43, (2, 20), generator=torch.Generator().manual_seed(4))
    genes[1, 15:] = 0  # the second sample: 15 genes, then padding
    b = inference.model_batch("bert_pred_genes", genes, torch.zeros_like(genes), eos_token=eos)
    framed = b.kwargs["idx"]
    assert framed[0].tolist() == [2, *genes[0].tolist(), eos]
    assert framed[1].tolist() == [2, *genes[1, :15].tolist(), eos] + [0] * 5
    their = _their_ids(vocab, framed)
    with torch.no_grad():
        a, _ = ours(**b.kwargs)
        out = hf(input_ids=their, attention_mask=b.kwargs["key_mask"].long(), output_hidden_states=True)
        h = inference.hidden_states(ours, b, layer=-2)
    keep = b.kwargs["key_mask"]
    torch.testing.assert_close(a[..., 3:43][keep], out.logits[..., torch.as_tensor(vocab.rows[3:43])][keep],
                               atol=1e-5, rtol=0)
    want = out.hidden_states[-2][:, 1:-1] * b.real[..., None]  # genes only, lined up with the gene positions
    torch.testing.assert_close(h, want, atol=1e-5, rtol=0)
    # attention: each real query's attention is renormalised over the gene keys (not <cls>, not <eos>)
    from generain import attention

    n_layer, n_head, V = ours.cfg.n_layer, ours.cfg.n_head, len(vocab.vocab)
    received = torch.zeros(n_layer, n_head, V, dtype=torch.float64)
    totals = torch.zeros(n_layer, n_head, 3, dtype=torch.float64)
    attention.accumulate_attention(ours, b, received, torch.zeros(V, dtype=torch.float64), totals)
    assert received[:, :, eos].eq(0).all() and received[:, :, 2].eq(0).all()
    torch.testing.assert_close(received.sum(-1), torch.full((n_layer, n_head), float(b.real.sum()),
                                                            dtype=torch.float64))


def test_foreign_pickles_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("ran",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"a": Evil()}))
    with pytest.raises(InputError, match="refusing to load builtins.print"):
        pretrained.read_pickled_dict(tmp_path / "evil.pkl")


def test_rank_value_tokens_follow_geneformers_tokenizer():
    """Counts -> our CP10M, log10, rank_value with the model's medians, tokens == Geneformer's recipe by hand:
    counts / total * 10,000 / median, non-zero genes sorted descending, top `length` kept."""
    from generain import tokenize

    rng = np.random.default_rng(4)
    n_genes = 30
    counts = rng.integers(0, 500, size=(n_genes, 3)).astype(np.uint32)
    counts[rng.random(counts.shape) < 0.3] = 0
    medians = rng.uniform(0.5, 40.0, n_genes)
    token_ids = np.arange(n_genes) + 2  # Geneformer V1: genes from token id 2
    values = normalize.cp10m_log10(counts)
    scores = normalize.rank_value_scores(values, medians)
    genes, _, n = tokenize.tokenize_samples(scores, scores > 0, values, token_ids, length=12)
    for j in range(3):
        x = counts[:, j] / counts[:, j].sum() * 10_000 / medians
        nz = np.flatnonzero(x)
        expected = token_ids[nz[np.argsort(-x[nz], kind="stable")]][:12]
        np.testing.assert_allclose(scores[nz, j], x[nz], rtol=1e-5)
        assert genes[j, :n[j]].tolist() == expected.tolist()
