"""The Triton kernels of BIDL's layout (batch norm on the membrane inside the recurrence,
training) compute what the reference loop over ``Lif.step`` computes: spikes, last
membrane, running statistics, and the gradients of the input and of the norm's weight and
bias. Batch statistics are summed in another order than torch's, so values agree to
float32 rounding rather than bit for bit.

Without CUDA the kernels run through Triton's interpreter (``TRITON_INTERPRET=1``, set
before Triton is first imported); shapes stay small.
"""

from __future__ import annotations

import copy
import os

import pytest
import torch
from torch import nn

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("triton")

from bidl.neurons import Lif, StatefulCell  # noqa: E402
from bidl.neurons.kernels import bn_lif_applies, bn_lif_multi_step  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"

CASES = {
    "bn2d NCHW, rectangle": dict(shape=(3, 2, 3, 4, 5)),
    "bn2d channels_last, atan": dict(shape=(3, 2, 3, 4, 5), channels_last=True, spike_func="atan"),
    "bn1d [B, C], sigmoid": dict(shape=(4, 6, 5), spike_func="sigmoid"),
    "bn1d [B, C, L], channel_share": dict(shape=(3, 3, 4, 6), channel_share=True),
    "no affine, triangle": dict(shape=(3, 2, 3, 3, 3), affine=False, spike_func="triangle"),
}


def make(case):
    channels = case["shape"][2]
    bn = nn.BatchNorm2d if len(case["shape"]) == 5 else nn.BatchNorm1d
    norm = bn(channels, affine=case.get("affine", True))
    if norm.affine:
        with torch.no_grad():
            norm.weight.uniform_(0.5, 1.5)
            norm.bias.uniform_(-0.3, 0.3)
    soma = dict(theta=0.3, v_0=-0.1)
    if case.get("channel_share"):
        soma = dict(
            soma_params="channel_share", alpha=[0.2, 0.3, 0.5, 0.7], theta=[0.3, 0.2, 0.4, 0.3]
        )
    cell = Lif(norm=norm, input_channels=channels, spike_func=case.get("spike_func"), **soma)
    return cell.to(DEVICE).train()


@pytest.mark.parametrize("name", list(CASES))
def test_kernels_equal_the_reference_loop(name):
    case = CASES[name]
    torch.manual_seed(3)
    reference = make(case)
    fused = copy.deepcopy(reference)
    x = torch.randn(case["shape"], device=DEVICE) * 0.8 + 0.2
    if case.get("channels_last"):
        x = x.flatten(0, 1).to(memory_format=torch.channels_last).unflatten(0, x.shape[:2])
    weights = torch.randn(case["shape"], device=DEVICE)
    results = []
    for cell, run in ((reference, StatefulCell.multi_step), (fused, bn_lif_multi_step)):
        cell.reset()
        xs = x.clone().requires_grad_()
        out = run(cell, xs)
        (out * weights).sum().backward()
        results.append((out.detach(), cell.state["v"].detach(), xs.grad, cell.norm))
    (out_r, v_r, gx_r, norm_r), (out_f, v_f, gx_f, norm_f) = results
    torch.testing.assert_close(norm_f.running_mean, norm_r.running_mean, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(norm_f.running_var, norm_r.running_var, rtol=1e-5, atol=1e-6)
    assert int(norm_f.num_batches_tracked) == int(norm_r.num_batches_tracked) == x.shape[0]
    if DEVICE == "cuda" and not torch.equal(out_f, out_r):
        # torch's CUDA batch norm rounds its statistics otherwise: a membrane within a
        # rounding of the threshold may fire in one and not the other, and the gradients
        # then differ where it did
        assert (out_f != out_r).sum() <= 2
        return
    assert torch.equal(out_f, out_r)
    torch.testing.assert_close(v_f, v_r, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gx_f, gx_r, rtol=1e-4, atol=1e-5)
    if norm_r.affine:
        torch.testing.assert_close(norm_f.weight.grad, norm_r.weight.grad, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(norm_f.bias.grad, norm_r.bias.grad, rtol=1e-4, atol=1e-5)


def test_other_settings_keep_other_paths():
    cell = make(CASES["bn2d NCHW, rectangle"])
    x = torch.randn(3, 2, 3, 4, 5, device=DEVICE)
    assert bn_lif_applies(cell, x) == (DEVICE == "cuda")  # a CUDA path only
    if DEVICE != "cuda":
        return
    assert not bn_lif_applies(copy.deepcopy(cell).eval(), x)  # running statistics: one pass
    cell.state = {"v": torch.zeros_like(x[0])}
    assert not bn_lif_applies(cell, x)  # continuing a state
    analog = Lif(norm=nn.BatchNorm2d(3), mode="analog", input_channels=3).to(DEVICE)
    assert not bn_lif_applies(analog, x)
    assert not bn_lif_applies(make(CASES["bn2d NCHW, rectangle"]), x.double())


def relative_error(got, want):
    return float((got - want).norm() / want.norm().clamp_min(1e-12))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("channels_last", [False, True])
def test_large_layers_on_cuda_agree_with_the_reference(channels_last):
    """More tiles than one merge block (256 partial statistics per channel)."""
    torch.manual_seed(5)
    reference = make(dict(shape=(4, 16, 32, 32, 32)))
    fused = copy.deepcopy(reference)
    x = torch.randn(4, 16, 32, 32, 32, device=DEVICE)
    if channels_last:
        x = x.flatten(0, 1).to(memory_format=torch.channels_last).unflatten(0, x.shape[:2])
    weights = torch.randn_like(x)
    grads, outs = [], []
    for cell, run in ((reference, StatefulCell.multi_step), (fused, bn_lif_multi_step)):
        xs = x.clone().requires_grad_()
        out = run(cell, xs)
        (out * weights).sum().backward()
        grads.append((xs.grad, cell.norm.weight.grad, cell.norm.bias.grad))
        outs.append(out.detach())
    assert (outs[0] != outs[1]).float().mean() < 1e-4  # spikes right at the threshold may flip
    for got, want in zip(grads[1], grads[0], strict=True):
        assert relative_error(got, want) < 1e-3
    torch.testing.assert_close(
        fused.norm.running_var, reference.norm.running_var, rtol=1e-4, atol=1e-6
    )
