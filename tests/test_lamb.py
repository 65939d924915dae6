"""``optimizer=dict(type='Lamb', ...)``: LAMB as BIDL's Meta-SpikeFormer trains with it,
against a NumPy transcription of the update (You et al. 2020, with timm's global gradient
clipping and clipped trust ratio), and through the config path."""

import numpy as np
import pytest
import torch
from torch import nn

from bidl.optim.lamb import Lamb
from bidl.optim.optimizer import build_optimizer, check_optimizer
from bidl.registry import BidlError


def numpy_lamb(params, grads_per_step, lr, decays, betas=(0.9, 0.999), eps=1e-6, clip=1.0):
    """Reference: every parameter's value after each step (float64)."""
    b1, b2 = betas
    params = [p.astype(np.float64).copy() for p in params]
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    for t, grads in enumerate(grads_per_step, start=1):
        total = np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in grads))
        scale = max(total / clip, 1.0) if clip is not None else 1.0
        for i, (p, g, wd) in enumerate(zip(params, grads, decays, strict=True)):
            g = g.astype(np.float64) / scale
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * g * g
            u = (m[i] / (1 - b1**t)) / (np.sqrt(v[i] / (1 - b2**t)) + eps)
            if wd:
                u = u + wd * p
                w_norm, u_norm = np.linalg.norm(p), np.linalg.norm(u)
                ratio = w_norm / u_norm if w_norm > 0 and u_norm > 0 else 1.0
                u = u * min(ratio, 1.0)
            params[i] = p - lr * u
    return params


@pytest.mark.parametrize("clip", [1.0, None])
def test_steps_equal_the_numpy_reference(clip):
    rng = np.random.default_rng(0)
    start = [rng.normal(size=(4, 3)), rng.normal(size=(3,)) * 0.01]
    grads = [[rng.normal(size=(4, 3)) * 3, rng.normal(size=(3,))] for _ in range(5)]
    weight = nn.Parameter(torch.tensor(start[0]))
    bias = nn.Parameter(torch.tensor(start[1]))
    groups = [{"params": [weight], "weight_decay": 0.05}, {"params": [bias], "weight_decay": 0.0}]
    optimizer = Lamb(groups, lr=0.01, max_grad_norm=clip)
    for step in grads:
        weight.grad, bias.grad = torch.tensor(step[0]), torch.tensor(step[1])
        optimizer.step()
    expected = numpy_lamb(start, grads, 0.01, [0.05, 0.0], clip=clip)
    np.testing.assert_allclose(weight.detach().numpy(), expected[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(bias.detach().numpy(), expected[1], rtol=1e-10, atol=1e-12)


def test_the_trust_ratio_is_clipped_at_one_and_skipped_without_weight_decay():
    big = nn.Parameter(torch.full((10,), 100.0))  # ||p|| >> ||u||: ratio clipped to 1
    optimizer = Lamb([big], lr=0.1, weight_decay=1e-4, max_grad_norm=None)
    big.grad = torch.ones(10)
    optimizer.step()
    # Adam's first step moves by lr * (1 + wd p) per element: a ratio > 1 would move more
    torch.testing.assert_close(big.detach(), torch.full((10,), 100.0 - 0.1 * (1 + 1e-2)))


def test_the_config_path_builds_it_with_bidl_s_settings():
    model = nn.Sequential(nn.Linear(3, 2))
    cfg = dict(type="Lamb", lr=6e-4, weight_decay=0.05, max_grad_norm=None)
    assert check_optimizer(cfg) is Lamb
    optimizer = build_optimizer(model, cfg)
    assert isinstance(optimizer, Lamb) and optimizer.defaults["max_grad_norm"] is None
    assert optimizer.defaults["trust_clip"] is True and optimizer.defaults["eps"] == 1e-6
    with pytest.raises(BidlError, match=r"optimizer.trust_ratio: Lamb takes no key"):
        check_optimizer(dict(type="Lamb", lr=1e-3, trust_ratio=True))
    with pytest.raises(BidlError, match=r"unknown optimizer 'Lam'.*'Lamb'"):
        check_optimizer(dict(type="Lam", lr=1e-3))


def test_a_checkpointed_state_resumes_to_the_same_steps(tmp_path):
    torch.manual_seed(0)
    a = nn.Linear(4, 2)
    b = nn.Linear(4, 2)
    b.load_state_dict(a.state_dict())
    opt_a = Lamb(a.parameters(), lr=0.01)
    x = torch.randn(8, 4)
    for _ in range(3):
        opt_a.zero_grad()
        a(x).square().sum().backward()
        opt_a.step()
    opt_b = Lamb(b.parameters(), lr=0.01)
    b.load_state_dict(a.state_dict())
    torch.save(opt_a.state_dict(), tmp_path / "lamb.pt")  # as a checkpoint holds it
    opt_b.load_state_dict(torch.load(tmp_path / "lamb.pt", weights_only=True))
    for model, opt in ((a, opt_a), (b, opt_b)):
        opt.zero_grad()
        model(x).square().sum().backward()
        opt.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
