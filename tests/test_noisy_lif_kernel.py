"""The fused LIF with BIDL's training membrane noise equals the reference loop fed the same
normal draws; the draws are standard normal and new at every call.

Without CUDA the kernels run through Triton's interpreter (``TRITON_INTERPRET=1``, set
before Triton is first imported); shapes stay small.
"""

from __future__ import annotations

import os

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("triton")

from bidl.neurons import Lif, StatefulCell, kernels, spiking_cell  # noqa: E402
from bidl.neurons.kernels import (  # noqa: E402
    _dense_order,
    noisy_lif_applies,
    noisy_lif_multi_step,
)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
NOISE = 0.3  # large enough that the noise decides spikes
CHANNEL_VALUES = dict(
    alpha=[0.3, 0.5, 0.8], beta=[0.0, 0.02, -0.01], theta=[0.5, 0.4, 0.6], v_0=[0.0, -0.1, 0.1]
)


def make_pair(**kwargs) -> tuple[Lif, Lif]:
    kwargs.setdefault("noise", NOISE)
    if kwargs.get("soma_params") == "channel_share":
        kwargs = {**CHANNEL_VALUES, "input_channels": 3, **kwargs}
    return Lif(**kwargs).to(DEVICE).train(), Lif(**kwargs).to(DEVICE).train()


def kernel_draws(x_seq: torch.Tensor, seed_state: int) -> torch.Tensor:
    """The kernel's ``N(0, 1)`` draws for a call made after ``torch.manual_seed(seed_state)``,
    in ``x_seq``'s logical order ``[T, B, C, ...]``."""
    from bidl.neurons.kernels.lif_noise_triton import noise_field

    torch.manual_seed(seed_state)
    seed = torch.randint(0, 2**62, (1,), device=x_seq.device, dtype=torch.int64)
    order = _dense_order(x_seq)
    laid_out = x_seq.permute(order)
    field = noise_field(seed, x_seq.shape[0], x_seq[0].numel(), x_seq.device)
    inverse = sorted(range(len(order)), key=order.__getitem__)
    return field.view(laid_out.shape).permute(inverse)


def reference_with_draws(cell: Lif, x_seq: torch.Tensor, draws: torch.Tensor, monkeypatch):
    """The reference loop over ``Lif.step`` with ``membrane_noise`` fed ``draws`` in turn."""
    steps = iter(draws)

    def fed(v, scale):
        dims = list(range(2, v.dim()))
        with torch.no_grad():
            return next(steps) * (torch.std(v, dim=dims, keepdim=True) * scale)

    monkeypatch.setattr(spiking_cell, "membrane_noise", fed)
    out = StatefulCell.multi_step(cell, x_seq)
    monkeypatch.undo()
    return out


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return ((got - want).norm() / want.norm().clamp_min(1e-12)).item()


def assert_same_run(ref_cell, fused_cell, x_seq, monkeypatch, mode="spike"):
    ref_x = x_seq.clone().requires_grad_()
    fused_x = x_seq.clone().requires_grad_()
    assert noisy_lif_applies(fused_cell, fused_x)
    torch.manual_seed(11)
    fused_out = noisy_lif_multi_step(fused_cell, fused_x)
    draws = kernel_draws(x_seq, 11)
    ref_out = reference_with_draws(ref_cell, ref_x, draws, monkeypatch)
    if mode == "spike":
        assert torch.equal(ref_out, fused_out)
        assert 0 < ref_out.mean() < 1
    else:
        torch.testing.assert_close(fused_out, ref_out, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fused_cell.state["v"], ref_cell.state["v"], rtol=1e-5, atol=1e-6)
    upstream = torch.randn_like(ref_out)
    ((ref_out * upstream).sum() + ref_cell.state["v"].pow(2).sum()).backward()
    ((fused_out * upstream).sum() + fused_cell.state["v"].pow(2).sum()).backward()
    assert relative_error(fused_x.grad, ref_x.grad) < 1e-4
    for key in ("alpha", "beta", "theta", "v_0"):
        ref_param, fused_param = getattr(ref_cell, key), getattr(fused_cell, key)
        if ref_param.requires_grad:
            assert relative_error(fused_param.grad, ref_param.grad) < 1e-4, key


def random_input(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, device=DEVICE) * 0.8


@pytest.mark.parametrize("soma_params", ["all_share", "channel_share"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_noisy_kernel_matches_the_loop_fed_the_same_draws(soma_params, channels_last, monkeypatch):
    torch.manual_seed(0)
    ref_cell, fused_cell = make_pair(soma_params=soma_params, learn=True, spike_func="atan")
    x_seq = random_input(4, 2, 3, 5, 6)
    if channels_last:
        x_seq = x_seq.flatten(0, 1).to(memory_format=torch.channels_last).view(x_seq.shape)
        assert not x_seq.is_contiguous()
    assert_same_run(ref_cell, fused_cell, x_seq, monkeypatch)


@pytest.mark.parametrize(("mode", "memb_mode"), [("analog", (1, "relu")), ("analog", (3, None))])
def test_analog_outputs_and_a_carried_state(mode, memb_mode, monkeypatch):
    torch.manual_seed(1)
    ref_cell, fused_cell = make_pair(mode=mode, memb_mode=memb_mode)
    start = random_input(2, 3, 4, 4)
    ref_cell.state, fused_cell.state = {"v": start.clone()}, {"v": start.clone()}
    assert_same_run(ref_cell, fused_cell, random_input(3, 2, 3, 4, 4), monkeypatch, mode)


@pytest.mark.parametrize(("size", "channels_last"), [(91, False), (33, True)])
def test_a_larger_plane_than_one_tile(size, channels_last, monkeypatch):
    """Planes of 91 x 91 (channels first) and 33 x 33 (channels last, eight channels a
    program) exceed one tile: the two-pass path with merged chunk statistics."""
    from bidl.neurons.kernels.lif_noise_triton import plane_tiling

    torch.manual_seed(2)
    ref_cell, fused_cell = make_pair(spike_func="sigmoid")
    channels = 8 if channels_last else 2
    x_seq = random_input(2, 1, channels, size, size)
    if channels_last:
        x_seq = x_seq.flatten(0, 1).to(memory_format=torch.channels_last).view(x_seq.shape)
    positions, _ = plane_tiling(1, channels, size * size, 1 if channels_last else size * size)
    assert positions < size * size
    assert_same_run(ref_cell, fused_cell, x_seq, monkeypatch)


def test_the_draws_are_standard_normal_and_new_at_every_call():
    from bidl.neurons.kernels.lif_noise_triton import noise_field

    seed = torch.tensor([1234], dtype=torch.int64, device=DEVICE)
    field = noise_field(seed, 2, 20000, DEVICE)
    assert abs(field.mean().item()) < 0.02
    assert abs(field.std().item() - 1.0) < 0.02
    assert torch.equal(field, noise_field(seed, 2, 20000, DEVICE))  # the backward's replay
    cell = Lif(noise=NOISE).to(DEVICE).train()
    x_seq = random_input(2, 2, 3, 6, 6)
    first = noisy_lif_multi_step(cell, x_seq)
    cell.state = None
    second = noisy_lif_multi_step(cell, x_seq)
    assert not torch.equal(first, second)


def test_the_noise_is_scaled_by_each_planes_spread():
    """With theta far away and alpha 1, the state after one step is h plus the noise:
    its deviation from h has, per sample and channel, ``noise * std(h)`` as spread."""
    cell = Lif(noise=0.01, alpha=1.0, theta=1e6).to(DEVICE).train()
    x = torch.randn(1, 2, 2, 64, 64, device=DEVICE)
    x[:, :, 1] *= 50.0  # one channel spread 50 times wider
    noisy_lif_multi_step(cell, x)
    deviation = cell.state["v"] - x[0]
    spread = deviation.std(dim=(2, 3)) / (x[0].std(dim=(2, 3)) * 0.01)
    torch.testing.assert_close(spread, torch.ones_like(spread), atol=0.05, rtol=0)


def test_where_the_noisy_kernel_does_not_apply():
    x_seq = random_input(3, 2, 3, 4, 4)
    assert not noisy_lif_applies(Lif(noise=0.1).to(DEVICE).eval(), x_seq)
    assert not noisy_lif_applies(Lif().to(DEVICE).train(), x_seq)  # no noise
    assert not noisy_lif_applies(Lif(noise=0.1).to(DEVICE).train(), random_input(3, 2, 8))
    assert not noisy_lif_applies(Lif(noise=0.1).to(DEVICE).train(), random_input(3, 2, 4, 1, 1))
    assert not noisy_lif_applies(Lif(noise=0.1).to(DEVICE).train(), x_seq.double())
    norm = Lif(noise=0.1, norm=torch.nn.BatchNorm2d(3)).to(DEVICE).train()
    assert not noisy_lif_applies(norm, x_seq)
    odd = x_seq.permute(0, 1, 3, 2, 4).contiguous().permute(0, 1, 3, 2, 4)  # [B, H, C, W]
    assert not noisy_lif_applies(Lif(noise=0.1).to(DEVICE).train(), odd)


@cuda_only
def test_lif_multi_step_uses_the_noisy_kernel_on_cuda(monkeypatch):
    calls = []
    original = kernels.noisy_lif_multi_step

    def counting(cell, x_seq):
        calls.append(type(cell))
        return original(cell, x_seq)

    monkeypatch.setattr("bidl.neurons.kernels.noisy_lif_multi_step", counting)
    cell = Lif(noise=1e-5).cuda().train()
    out = cell.multi_step(random_input(4, 2, 8, 16, 16))
    assert calls == [Lif] and out.shape == (4, 2, 8, 16, 16)


@cuda_only
def test_large_channels_last_input_on_cuda_matches_the_loop(monkeypatch):
    torch.manual_seed(6)
    ref_cell, fused_cell = make_pair(noise=1e-5)
    x_seq = random_input(10, 8, 64, 64, 64)
    x_seq = x_seq.flatten(0, 1).to(memory_format=torch.channels_last).view(x_seq.shape)
    assert_same_run(ref_cell, fused_cell, x_seq, monkeypatch)
