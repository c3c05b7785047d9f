"""The models: shapes, causality, losses over labelled positions only, optimizer groups and schedule."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from generain.model import GPT, IGNORE_INDEX, ModelConfig


def _model(**kw):
    torch.manual_seed(0)
    return GPT(ModelConfig(vocab_size=20, n_positions=8, n_layer=2, n_head=2, n_embd=8, n_inner=16, dropout=0.0, **kw)).eval()


def test_shapes_and_tied_embedding():
    m = _model()
    logits, loss = m(torch.randint(3, 20, (2, 5)))
    assert logits.shape == (2, 5, 20) and loss is None
    assert m.gene_embedding().shape == (20, 8)


def test_causal_future_tokens_do_not_change_past_logits():
    m = _model()
    x = torch.tensor([[3, 4, 5, 6, 7]])
    y = x.clone()
    y[0, 3:] = torch.tensor([9, 10])
    a, _ = m(x)
    b, _ = m(y)
    torch.testing.assert_close(a[0, :3], b[0, :3])
    assert not torch.allclose(a[0, 3:], b[0, 3:])


def test_loss_ignores_padded_targets():
    m = _model()
    idx = torch.tensor([[3, 4, 5, 6], [7, 8, 0, 0]])
    targets = torch.tensor([[4, 5, 6, 7], [8, -100, -100, -100]])  # second row: one real target, rest padding
    logits, loss = m(idx, targets)
    real = targets != IGNORE_INDEX
    expected = F.cross_entropy(logits[real], targets[real])  # 4 + 1 real positions
    torch.testing.assert_close(loss, expected)
    wrong = F.cross_entropy(logits.reshape(-1, 20), targets.clamp(min=0).reshape(-1))
    assert abs(loss.item() - wrong.item()) > 1e-3


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    m = GPT(ModelConfig(vocab_size=12, n_positions=8, n_layer=1, n_head=2, n_embd=16, n_inner=32, dropout=0.0))
    x = torch.tensor([[3, 4, 5, 6, 7, 8, 9, 10]] * 4)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        _, loss = m(x[:, :-1], x[:, 1:])
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.2 * first


def test_optimizer_groups_and_per_step_schedule():
    from generain.training.module import GeneRAINModule

    mod = GeneRAINModule("gpt", dict(vocab_size=20, n_positions=8, n_layer=1, n_head=2, n_embd=8, n_inner=16),
                         dict(max_lr=1e-3, div_factor=5, pct_start=0.2, weight_decay=0.01, total_steps=10,
                              schedule_per="step"), seed=0, mask_fraction=0.15)
    conf = mod.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]
    assert sched["interval"] == "step"
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in mod.model.named_parameters()}
    assert sorted(names[id(p)] for p in no_decay["params"]) == sorted(
        n for n, p in mod.model.named_parameters() if n.endswith("bias") or ".ln_" in n or n.startswith("ln_"))
    assert len(no_decay["params"]) == 2 + 8  # ln_f weight+bias; the block: ln_1, ln_2 (2 each) and 4 linear biases
    assert all(p.ndim == 2 for p in decay["params"])
    # OneCycle: starts at max_lr / div_factor and peaks at max_lr at step pct_start * total_steps - 1 = 1
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched["scheduler"].step()
    assert lrs[0] == pytest.approx(2e-4)
    assert lrs[1] == pytest.approx(1e-3) and lrs.index(max(lrs)) == 1
    assert lrs[-1] < 1e-6


def test_bert_loss_uses_only_labelled_positions_and_matches_full_logits():
    from generain.model import BertMLM

    torch.manual_seed(0)
    m = BertMLM(ModelConfig(vocab_size=30, n_positions=8, n_layer=1, n_head=2, n_embd=8, n_inner=16,
                            dropout=0.0)).eval()
    idx = torch.randint(3, 30, (2, 6))
    labels = torch.full((2, 6), IGNORE_INDEX)
    labels[0, 2], labels[1, 4], labels[1, 5] = 7, 9, 11
    full, none = m(idx)
    assert none is None and full.shape == (2, 6, 30)
    part, loss = m(idx, labels=labels)
    assert part.shape == (3, 30)  # only the labelled positions, in (b, t) order
    torch.testing.assert_close(part, full[[0, 1, 1], [2, 4, 5]])
    torch.testing.assert_close(loss, F.cross_entropy(part, torch.tensor([7, 9, 11])))
    _, zero = m(idx, labels=torch.full((2, 6), IGNORE_INDEX))
    assert zero.item() == 0.0


@pytest.mark.parametrize("chunk", [1, 3, 7, 1024])
@pytest.mark.parametrize("bias", [False, True])
def test_chunked_linear_cross_entropy_matches_the_full_logits(chunk, bias):
    """Loss and the gradients of h, weight and bias equal cross_entropy over the materialised logits
    (float64 reference), for chunks that divide the 11 positions, do not, and exceed them."""
    from generain.model import linear_cross_entropy

    g = torch.Generator().manual_seed(3)
    h = torch.randn(11, 6, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(17, 6, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(17, generator=g, dtype=torch.float64, requires_grad=True) if bias else None
    y = torch.randint(0, 17, (11,), generator=g)
    ref = F.cross_entropy(F.linear(h, w, b), y)
    ref_grads = torch.autograd.grad(ref, [h, w] + ([b] if bias else []))
    got = linear_cross_entropy(h, w, b, y, chunk=chunk)
    got_grads = torch.autograd.grad(got, [h, w] + ([b] if bias else []))
    torch.testing.assert_close(got.double(), ref, rtol=1e-6, atol=1e-6)  # the loss accumulates in float32
    for a, e in zip(got_grads, ref_grads):
        torch.testing.assert_close(a, e, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("model_type", ["gpt", "bert_pred_genes", "bert_pred_expr"])
@pytest.mark.parametrize("autocast", [False, True])
def test_training_loss_without_logits_equals_the_full_loss(model_type, autocast):
    """return_logits=False (training) gives the loss and every parameter gradient of the full-logit path,
    in float32 and under CPU bf16 autocast (within bf16 rounding)."""
    from generain.model import build_model, model_config_for
    from generain.training.masking import model_inputs

    torch.manual_seed(0)
    m = build_model(model_type, model_config_for(model_type, n_genes=43, length=12, n_layer=2, n_head=2, n_embd=16,
                                                  n_inner=32, dropout=0.0))
    genes = torch.stack([torch.randperm(40)[:12] + 3 for _ in range(5)])  # tokens 3..42 of a 43-token vocabulary
    genes[4, 9:] = 0  # padding
    expr = torch.arange(100, 100 - 12 * 3, -3).repeat(5, 1)
    expr[4, 9:] = 0
    batch = {"genes": genes, "expr": expr}
    torch.manual_seed(1)
    inputs = model_inputs(model_type, batch, 0.3)

    def run(return_logits: bool):
        m.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            _, loss = m(**inputs, return_logits=return_logits)
        loss.backward()
        return loss.detach(), {k: p.grad.clone() for k, p in m.named_parameters() if p.grad is not None}

    ref_loss, ref_grads = run(True)
    loss, grads = run(False)
    tol = {"rtol": 2e-2, "atol": 2e-3} if autocast else {"rtol": 1e-5, "atol": 1e-6}
    torch.testing.assert_close(loss, ref_loss, **tol)
    assert grads.keys() == ref_grads.keys()
    for k in grads:
        torch.testing.assert_close(grads[k], ref_grads[k], **tol, msg=lambda s: f"{k}: {s}")


def test_chunked_loss_keeps_its_gradients_under_float16_autocast():
    """8,192 positions over 4,096 tokens: softmax entries / M are ~3e-8, below float16's normal range, so
    products formed after the division would lose them; formed before it they match float32 (fp16 rounding)."""
    from generain.model import linear_cross_entropy

    g = torch.Generator().manual_seed(0)
    h = (torch.randn(8192, 16, generator=g) * 0.5).requires_grad_()
    w = (torch.randn(4096, 16, generator=g) * 0.1).requires_grad_()
    b = torch.zeros(4096, requires_grad=True)
    y = torch.randint(0, 4096, (8192,), generator=g)
    ref = torch.autograd.grad(F.cross_entropy(F.linear(h, w, b), y), [h, w, b])
    with torch.autocast("cpu", dtype=torch.float16):
        loss = linear_cross_entropy(h, w, b, y, chunk=1000)
    got = torch.autograd.grad(loss, [h, w, b])
    for a, e in zip(got, ref):
        assert a.dtype == e.dtype == torch.float32
        assert (a - e).norm() / e.norm() < 5e-3, (a - e).norm() / e.norm()


def test_validation_loss_skips_the_gradient_products():
    """Without grad mode the function keeps no gradients of the (still trainable) weights: same loss."""
    from generain.model import linear_cross_entropy

    h, w = torch.randn(50, 8), torch.randn(30, 8, requires_grad=True)
    y = torch.randint(0, 30, (50,))
    with torch.no_grad():
        loss = linear_cross_entropy(h, w, None, y, chunk=7)
    assert not loss.requires_grad
    torch.testing.assert_close(loss, F.cross_entropy(F.linear(h, w.detach()), y))
    empty = linear_cross_entropy(torch.zeros(0, 8, requires_grad=True), w, torch.zeros(30, requires_grad=True),
                                 torch.zeros(0, dtype=torch.long))
    assert float(empty) == 0.0 and empty.requires_grad
