"""The fused multi-step LIF kernel equals the reference loop over ``Lif.step``.

On a machine without CUDA the Triton kernels run through Triton's interpreter
(``TRITON_INTERPRET=1``, set here before Triton is first imported); without Triton at all
these tests skip. Shapes stay small: the interpreter is slow.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("triton")

from bidl.neurons import Lif, StatefulCell, kernels  # noqa: E402
from bidl.neurons.kernels import fused_lif_applies, fused_lif_multi_step  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

CHANNELS = 3
CHANNEL_VALUES = dict(
    alpha=[0.3, 0.5, 0.8], beta=[0.0, 0.02, -0.01], theta=[0.5, 0.4, 0.6], v_0=[0.0, -0.1, 0.1]
)
OUTPUTS = [
    ("spike", (0, None)),
    ("analog", (0, None)),
    ("analog", (1, "relu")),
    ("analog", (2, None)),
    ("analog", (3, "tanh")),
]


def make_pair(**kwargs) -> tuple[Lif, Lif]:
    """Two identical cells: one runs the reference loop, the other the kernel."""
    if kwargs.get("soma_params") == "channel_share":
        kwargs = {**CHANNEL_VALUES, "input_channels": CHANNELS, **kwargs}
    return Lif(**kwargs).to(DEVICE), Lif(**kwargs).to(DEVICE)


def reference(cell: Lif, x_seq: torch.Tensor) -> torch.Tensor:
    return StatefulCell.multi_step(cell, x_seq)


def fused(cell: Lif, x_seq: torch.Tensor) -> torch.Tensor:
    assert fused_lif_applies(cell, x_seq)
    return fused_lif_multi_step(cell, x_seq)


def random_input(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, device=DEVICE) * 0.8


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got - want).norm() / want.norm().clamp_min(1e-12)).item()


def assert_same_run(ref_cell, fused_cell, x_seq, mode):
    """Outputs, final states and every gradient agree (spikes exactly, gradients 1e-4)."""
    ref_x = x_seq.clone().requires_grad_()
    fused_x = x_seq.clone().requires_grad_()
    ref_out, fused_out = reference(ref_cell, ref_x), fused(fused_cell, fused_x)
    if mode == "spike":
        assert torch.equal(ref_out, fused_out)
    else:
        torch.testing.assert_close(fused_out, ref_out, rtol=1e-6, atol=1e-6)
    assert torch.equal(ref_cell.state["v"], fused_cell.state["v"])
    upstream = torch.randn_like(ref_out)
    ((ref_out * upstream).sum() + ref_cell.state["v"].pow(2).sum()).backward()
    ((fused_out * upstream).sum() + fused_cell.state["v"].pow(2).sum()).backward()
    assert relative_error(fused_x.grad, ref_x.grad) < 1e-4
    for key in ("alpha", "beta", "theta", "v_0"):
        ref_param, fused_param = getattr(ref_cell, key), getattr(fused_cell, key)
        if ref_param.requires_grad:
            assert fused_param.grad.shape == ref_param.shape
            assert relative_error(fused_param.grad, ref_param.grad) < 1e-4, key


@pytest.mark.parametrize("soma_params", ["all_share", "channel_share"])
@pytest.mark.parametrize(("mode", "memb_mode"), OUTPUTS)
@pytest.mark.parametrize("spike_func", ["rectangle", "sigmoid", "atan", "triangle"])
def test_fused_lif_matches_reference(spike_func, mode, memb_mode, soma_params):
    torch.manual_seed(0)
    ref_cell, fused_cell = make_pair(
        spike_func=spike_func, mode=mode, memb_mode=memb_mode, soma_params=soma_params, learn=True
    )
    assert_same_run(ref_cell, fused_cell, random_input(5, 2, CHANNELS, 4, 5), mode)


def test_surrogate_parameters_reach_the_kernel():
    torch.manual_seed(1)
    ref_cell, fused_cell = make_pair(spike_func=dict(type="atan", alpha=5.0), learn=True)
    assert_same_run(ref_cell, fused_cell, random_input(4, 3, 7), "spike")


def test_fixed_parameters_and_input_gradient_only():
    torch.manual_seed(2)
    ref_cell, fused_cell = make_pair(soma_params="channel_share", learn=False)
    assert_same_run(ref_cell, fused_cell, random_input(6, 2, CHANNELS, 3, 3), "spike")


def test_continues_from_the_state_and_passes_its_gradient():
    torch.manual_seed(3)
    ref_cell, fused_cell = make_pair(learn=True)
    first, second = random_input(3, 2, 9), random_input(4, 2, 9)
    ref_x, fused_x = first.clone().requires_grad_(), first.clone().requires_grad_()
    ref_out = torch.cat([reference(ref_cell, ref_x), reference(ref_cell, second)])
    fused_out = torch.cat([fused(fused_cell, fused_x), fused(fused_cell, second)])
    assert torch.equal(ref_out, fused_out)
    upstream = torch.randn_like(ref_out)
    (ref_out * upstream).sum().backward()
    (fused_out * upstream).sum().backward()
    assert relative_error(fused_x.grad, ref_x.grad) < 1e-4
    assert relative_error(fused_cell.alpha.grad, ref_cell.alpha.grad) < 1e-4


@pytest.mark.parametrize("soma_params", ["all_share", "channel_share"])
def test_channels_last_steps_give_the_same_result(soma_params):
    torch.manual_seed(4)
    ref_cell, fused_cell = make_pair(soma_params=soma_params, learn=True)
    steps, batch = 3, 2
    folded = random_input(steps * batch, CHANNELS, 4, 4).to(memory_format=torch.channels_last)
    x_seq = folded.view(steps, batch, CHANNELS, 4, 4)
    assert not x_seq.is_contiguous()
    assert_same_run(ref_cell, fused_cell, x_seq, "spike")


def test_inference_without_grad_matches():
    torch.manual_seed(5)
    ref_cell, fused_cell = make_pair(mode="analog", memb_mode=(3, None))
    x_seq = random_input(5, 2, 6)
    with torch.no_grad():
        torch.testing.assert_close(fused(fused_cell, x_seq), reference(ref_cell, x_seq))
    assert torch.equal(ref_cell.state["v"], fused_cell.state["v"])


def test_reference_runs_where_the_kernel_does_not_apply(monkeypatch):
    x_seq = random_input(3, 2, CHANNELS, 4, 4)
    with_norm = Lif(norm=torch.nn.BatchNorm2d(CHANNELS)).to(DEVICE)
    assert not fused_lif_applies(with_norm, x_seq)
    noisy = Lif(noise=0.1).to(DEVICE).train()
    assert not fused_lif_applies(noisy, x_seq)
    assert not fused_lif_applies(Lif(spike_func=lambda u: (u > 0).float()), x_seq)
    assert not fused_lif_applies(Lif().to(DEVICE), x_seq.double())
    monkeypatch.setattr(kernels, "triton_available", lambda: False)
    assert not fused_lif_applies(Lif().to(DEVICE), x_seq)


class _DoubledInput(Lif):
    def step(self, x, state):
        return super().step(2 * x, state)


@cuda_only
def test_lif_multi_step_uses_the_kernel_on_cuda_and_subclasses_keep_their_step(monkeypatch):
    calls = []
    original = kernels.fused_lif_multi_step

    def counting(cell, x_seq):
        calls.append(type(cell))
        return original(cell, x_seq)

    monkeypatch.setattr("bidl.neurons.kernels.fused_lif_multi_step", counting)
    x_seq = random_input(4, 2, 8)
    cell = Lif().cuda()
    assert torch.equal(cell.multi_step(x_seq), reference(Lif().cuda(), x_seq))
    assert calls == [Lif]
    doubled = _DoubledInput().cuda()
    assert torch.equal(doubled.multi_step(x_seq), reference(_DoubledInput().cuda(), x_seq))
    assert calls == [Lif]


@cuda_only
def test_large_input_on_cuda_matches_reference():
    torch.manual_seed(6)
    ref_cell, fused_cell = make_pair(spike_func="atan", soma_params="channel_share", learn=True)
    assert_same_run(ref_cell, fused_cell, random_input(8, 16, CHANNELS, 64, 65), "spike")


def test_an_empty_sequence_leaves_the_state_and_its_gradient_alone():
    cell = Lif().to(DEVICE)
    start = random_input(2, 5).requires_grad_()
    cell.state = {"v": start * 1.0}
    out = fused(cell, random_input(0, 2, 5))
    assert out.shape == (0, 2, 5)
    assert torch.equal(cell.state["v"], start)
    cell.state["v"].sum().backward()
    assert torch.equal(start.grad, torch.ones_like(start))


@cuda_only
def test_half_precision_inputs_run_the_kernel_in_float32(monkeypatch):
    calls = []
    original = kernels.fused_lif_multi_step

    def counting(cell, x_seq):
        calls.append(x_seq.dtype)
        return original(cell, x_seq)

    monkeypatch.setattr("bidl.neurons.kernels.fused_lif_multi_step", counting)
    x_seq = random_input(4, 2, 8).requires_grad_()
    for dtype in (torch.bfloat16, torch.float16):
        half = x_seq.to(dtype)
        out = Lif().cuda().multi_step(half)
        assert out.dtype == dtype and calls[-1] == torch.float32  # the kernel, not the loop
        assert torch.equal(out.float(), Lif().cuda().multi_step(half.float()))
        out.float().sum().backward()
        assert x_seq.grad is not None and torch.isfinite(x_seq.grad).all()
