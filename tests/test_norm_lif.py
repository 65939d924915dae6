"""The one-node multi-step LIF (batch norm on the membrane, BIDL's layout, or no norm)
computes what the reference loop over ``Lif.step`` computes: outputs, the last state,
the norm's running statistics and every gradient."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from bidl.neurons import Lif
from bidl.neurons.base import StatefulCell
from bidl.neurons.kernels import fused_multi_step, norm_lif_applies

CASES = {
    "bn2d train, spikes": dict(shape=(5, 4, 3, 6, 7), norm="2d"),
    "bn2d train, channels_last": dict(shape=(5, 4, 3, 6, 7), norm="2d", channels_last=True),
    "bn2d eval": dict(shape=(4, 3, 3, 5, 5), norm="2d", train=False),
    "bn1d train, atan, channel_share": dict(
        shape=(6, 8, 5), norm="1d", spike_func="atan", soma_params="channel_share"
    ),
    "no norm, analog 0 relu": dict(shape=(5, 4, 3, 4, 4), mode="analog", memb_mode=(0, "relu")),
    "bn2d, analog 1": dict(shape=(5, 4, 3, 4, 4), norm="2d", mode="analog", memb_mode=(1, None)),
    "bn2d, analog 2": dict(shape=(5, 4, 3, 4, 4), norm="2d", mode="analog", memb_mode=(2, None)),
    "bn2d, analog 3 tanh": dict(
        shape=(5, 4, 3, 4, 4), norm="2d", mode="analog", memb_mode=(3, "tanh")
    ),
    "bn2d, from a state": dict(shape=(4, 2, 3, 4, 4), norm="2d", state=True),
    "bn momentum None": dict(shape=(4, 3, 3, 4, 4), norm="2d", momentum=None),
}


def make(case):
    channels = case["shape"][2]
    norm = None
    if case.get("norm") == "2d":
        norm = nn.BatchNorm2d(channels, momentum=case.get("momentum", 0.1))
    elif case.get("norm") == "1d":
        norm = nn.BatchNorm1d(channels)
    if norm is not None:
        with torch.no_grad():  # not the identity: the gradients of weight and bias matter
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.2, 0.2)
    cell = Lif(
        norm=norm,
        mode=case.get("mode", "spike"),
        memb_mode=case.get("memb_mode", (0, None)),
        soma_params=case.get("soma_params", "all_share"),
        input_channels=channels,
        alpha=0.3 if case.get("soma_params") != "channel_share" else [0.2, 0.3, 0.4, 0.5, 0.6],
        theta=0.3,
        v_0=-0.1,
        spike_func=case.get("spike_func"),
    )
    cell.train(case.get("train", True))
    return cell


def run(cell, x, fused, state=None):
    cell.reset()
    if state is not None:
        cell.state = {"v": state}
    x = x.clone().requires_grad_()
    if fused:
        out = fused_multi_step(cell, x)
        assert out is not None
    else:
        out = StatefulCell.multi_step(cell, x)
    weights = torch.randn_like(out)
    ((out * weights).sum() + cell.state["v"].square().sum()).backward()
    grads = [x.grad] + [p.grad for p in cell.parameters()]
    if state is not None:
        grads.append(state.grad)
    return out.detach(), cell.state["v"].detach(), grads, weights


@pytest.mark.parametrize("name", list(CASES))
def test_one_node_equals_the_reference_loop(name):
    case = CASES[name]
    torch.manual_seed(0)
    reference = make(case)
    fused = copy.deepcopy(reference)
    x = torch.randn(case["shape"]) * 0.8 + 0.3
    if case.get("channels_last"):
        x = x.flatten(0, 1).to(memory_format=torch.channels_last).unflatten(0, x.shape[:2])
    assert norm_lif_applies(fused, x)
    state = torch.randn(case["shape"][1:]).requires_grad_() if case.get("state") else None
    torch.manual_seed(1)
    out_r, v_r, grads_r, _ = run(reference, x, False, state)
    state_f = state.detach().clone().requires_grad_() if state is not None else None
    torch.manual_seed(1)
    out_f, v_f, grads_f, _ = run(fused, x, True, state_f)
    assert torch.equal(out_f, out_r)
    assert torch.equal(v_f, v_r)
    for a, b in zip(grads_f, grads_r, strict=True):
        assert a is not None and b is not None
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    for (key, a), b in zip(
        fused.state_dict().items(), reference.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), key  # running statistics and the batch count


def test_other_cells_and_settings_keep_the_reference_loop():
    x = torch.randn(3, 2, 4)
    noisy = Lif(norm=nn.BatchNorm1d(4), noise=0.1, input_channels=4)
    assert not norm_lif_applies(noisy.train(), x)
    assert norm_lif_applies(noisy.eval(), x)  # no noise outside training
    sync = Lif(norm=nn.SyncBatchNorm(4), input_channels=4)
    assert not norm_lif_applies(sync, x)
    learned = Lif(learn=True)
    assert not norm_lif_applies(learned, x)
    assert not norm_lif_applies(Lif(), x.to(torch.bfloat16))
    watched = Lif()
    watched.spike_fn.register_forward_pre_hook(lambda *args: None)
    assert fused_multi_step(watched, x) is None
    probed = Lif(norm=nn.BatchNorm1d(4), input_channels=4)
    calls = []
    probed.norm.register_forward_hook(lambda *args: calls.append(1))
    assert not norm_lif_applies(probed, x)
    assert fused_multi_step(probed, x) is None
    probed.step_mode = "m"
    probed(x)
    assert len(calls) == 3  # the reference loop calls the watched norm once per step


def test_cell_multi_step_uses_it():
    cell = Lif(norm=nn.BatchNorm2d(3), input_channels=3)
    x = torch.randn(4, 2, 3, 5, 5, requires_grad=True)
    cell.step_mode = "m"
    out = cell(x)
    assert type(out.grad_fn).__name__ == "NormLifFunctionBackward"
