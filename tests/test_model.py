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
