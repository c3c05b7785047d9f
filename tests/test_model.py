"""The GPT model: shapes, causality, loss over non-padding positions only, training step."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from generain.model import GPT, GPTConfig


def _model(**kw):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=20, block_size=8, n_layer=2, n_head=2, n_embd=8, n_inner=16, dropout=0.0, **kw)).eval()


def test_shapes_and_tied_embedding():
    m = _model()
    logits, loss = m(torch.randint(3, 20, (2, 5)))
    assert logits.shape == (2, 5, 20) and loss is None
    assert m.lm_head.weight.data_ptr() == m.wte.weight.data_ptr()
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
    targets = torch.tensor([[4, 5, 6, 7], [8, 0, 0, 0]])  # second row: one real target, rest padding
    logits, loss = m(idx, targets)
    real = targets != 0
    expected = F.cross_entropy(logits[real], targets[real])  # 4 + 1 real positions
    torch.testing.assert_close(loss, expected)
    wrong = F.cross_entropy(logits.reshape(-1, 20), targets.reshape(-1))
    assert abs(loss.item() - wrong.item()) > 1e-3


def test_a_few_steps_reduce_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=12, block_size=8, n_layer=1, n_head=2, n_embd=16, n_inner=32, dropout=0.0))
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
    from generain.training import GPTModule

    mod = GPTModule(dict(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=8, n_inner=16),
                    dict(max_lr=1e-3, div_factor=5, pct_start=0.2, weight_decay=0.01, total_steps=10))
    conf = mod.configure_optimizers()
    opt, sched = conf["optimizer"], conf["lr_scheduler"]
    assert sched["interval"] == "step"
    decay, no_decay = opt.param_groups
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    names = {id(p): n for n, p in mod.model.named_parameters()}
    assert sorted(names[id(p)] for p in no_decay["params"]) == sorted(
        n for n, p in mod.model.named_parameters() if n.endswith("bias") or ".ln_" in n or n.startswith("ln_"))
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
