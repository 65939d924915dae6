"""``sequence_batch_norm``: a batch norm using batch statistics over a whole sequence at once
equals the per-step loop (values, gradients, running statistics), and ``run_multi_step``
uses it where that loop would otherwise run."""

from __future__ import annotations

import copy
import re

import pytest
import torch
from torch import nn

from bidl.neurons import run_multi_step, time_fold
from bidl.neurons.sequence_batch_norm import sequence_batch_norm
from bidl.registry import BACKBONES, BidlError, build

T, B, C = 3, 4, 5


def make_bn(kind, dtype=torch.float64, **kwargs):
    torch.manual_seed(0)
    bn = kind(C, **kwargs).to(dtype)
    with torch.no_grad():  # every parameter and statistic away from its initial value
        if bn.affine:
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-1, 1)
        if bn.running_mean is not None:
            bn.running_mean.uniform_(-1, 1)
            bn.running_var.uniform_(0.5, 2)
            bn.num_batches_tracked.fill_(2)
    return bn


def sequence(shape, dtype=torch.float64, channels_last=False):
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(shape, generator=generator, dtype=dtype) * 2 + 3  # mean well off zero
    if channels_last:  # frames [B, C, H, W] in NHWC
        x = x.flatten(0, 1).contiguous(memory_format=torch.channels_last).view(shape)
    return x


def loop_and_sequence(bn, x_seq, run=sequence_batch_norm, device_type="cpu", autocast=None):
    """(output, x grad, parameter grads) of the per-step loop on a copy of ``bn`` and of
    ``run(bn, x)``, under the same upstream gradient; ``bn`` ends as the sequence run left it."""
    ref = copy.deepcopy(bn)
    results = []
    for module, fn in ((ref, lambda m, x: torch.stack([m(x_t) for x_t in x])), (bn, run)):
        module.zero_grad(set_to_none=True)
        x = x_seq.detach().clone().requires_grad_(True)
        with torch.autocast(device_type, dtype=autocast, enabled=autocast is not None):
            out = fn(module, x)
        weight = torch.linspace(-1, 2, out.numel(), dtype=out.dtype, device=out.device)
        (out * weight.view(out.shape)).float().sum().backward()
        grads = [p.grad for p in module.parameters()]
        results.append((out, x.grad, grads))
    return ref, results


def assert_same(bn, x_seq, run=sequence_batch_norm, rtol=1e-10, atol=1e-10, **kwargs):
    ref, ((out_l, gx_l, gp_l), (out_s, gx_s, gp_s)) = loop_and_sequence(bn, x_seq, run, **kwargs)
    assert out_s.dtype == out_l.dtype and out_s.shape == out_l.shape
    torch.testing.assert_close(out_s, out_l, rtol=rtol, atol=atol)
    torch.testing.assert_close(gx_s, gx_l, rtol=rtol, atol=atol)
    assert len(gp_s) == len(gp_l)
    for g_s, g_l in zip(gp_s, gp_l, strict=True):
        torch.testing.assert_close(g_s, g_l, rtol=rtol, atol=atol)
    for (name, buf_l), buf_s in zip(ref.named_buffers(), bn.buffers(), strict=True):
        torch.testing.assert_close(buf_s, buf_l, rtol=rtol, atol=atol, msg=name)
    return out_s


def assert_near_the_float64_loop(bn, x_seq, run=sequence_batch_norm, rtol=1e-5, atol=1e-5):
    """``run(bn, x_seq)`` in float32 against the per-step loop of a float64 copy of ``bn``
    on ``x_seq`` in float64, under the same upstream gradient: outputs, input gradient and
    running statistics to ``rtol``/``atol``; the weight and bias gradients, sums over every
    value of a channel, to float32's rounding of such a sum. Returns the output."""
    ref = copy.deepcopy(bn).double()
    bn.zero_grad(set_to_none=True)
    x = x_seq.detach().clone().requires_grad_(True)
    x_ref = x_seq.detach().double().requires_grad_(True)
    out = run(bn, x)
    out_ref = torch.stack([ref(x_t) for x_t in x_ref])
    weight = torch.linspace(-1, 2, out.numel(), dtype=out.dtype, device=out.device)
    (out * weight.view(out.shape)).sum().backward()
    (out_ref * weight.double().view(out.shape)).sum().backward()
    assert out.dtype == x_seq.dtype and out.shape == out_ref.shape
    torch.testing.assert_close(out.double(), out_ref, rtol=rtol, atol=atol)
    torch.testing.assert_close(x.grad.double(), x_ref.grad, rtol=rtol, atol=atol)
    # grad w = sum(g * xhat): a float32 rounding of the mean moves every xhat alike, which
    # that sum weighs by sum(g), so its error scales with the channel's sum of |g|
    dims = (0, 1, *range(3, out.dim()))
    sum_abs_g = weight.view(out.shape).abs().double().sum(dims).max().item()
    for p, p_ref in zip(bn.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p.grad.double(), p_ref.grad, rtol=rtol, atol=1e-6 * sum_abs_g)
    for (name, buf_ref), buf in zip(ref.named_buffers(), bn.buffers(), strict=True):
        assert buf.dtype == (torch.long if name == "num_batches_tracked" else torch.float32)
        torch.testing.assert_close(buf.to(buf_ref.dtype), buf_ref, rtol=rtol, atol=atol, msg=name)
    return out


CASES = {
    "1d [T,B,C]": (nn.BatchNorm1d, (T, B, C), {}),
    "1d [T,B,C,L]": (nn.BatchNorm1d, (T, B, C, 6), {}),
    "2d": (nn.BatchNorm2d, (T, B, C, 6, 7), {}),
    "3d": (nn.BatchNorm3d, (T, 2, C, 3, 4, 4), {}),
    "momentum=None": (nn.BatchNorm2d, (T, B, C, 6, 7), dict(momentum=None)),
    "affine=False": (nn.BatchNorm2d, (T, B, C, 6, 7), dict(affine=False)),
    "no running stats": (nn.BatchNorm2d, (T, B, C, 6, 7), dict(track_running_stats=False)),
    "T=1": (nn.BatchNorm2d, (1, B, C, 6, 7), {}),
}


@pytest.mark.parametrize("case", list(CASES))
def test_equals_the_step_loop(case):
    kind, shape, kwargs = CASES[case]
    bn = make_bn(kind, **kwargs)
    assert_same(bn, sequence(shape))
    if bn.running_mean is not None:
        assert bn.num_batches_tracked.item() == 2 + shape[0]


def test_cumulative_average_from_a_fresh_module_and_on_later_calls():
    bn = nn.BatchNorm1d(C, momentum=None).double()
    for _ in range(2):
        assert_same(bn, sequence((T, B, C, 6)))
    assert bn.num_batches_tracked.item() == 2 * T


def test_channels_last_frames_stay_channels_last():
    x = sequence((T, B, C, 6, 7), channels_last=True)
    out = assert_same(make_bn(nn.BatchNorm2d), x)
    assert out.stride() == x.stride()
    assert all(frame.is_contiguous(memory_format=torch.channels_last) for frame in out)


def test_eval_mode_without_running_statistics_normalises_each_step():
    bn = make_bn(nn.BatchNorm2d, track_running_stats=False).eval()
    assert_same(bn, sequence((T, B, C, 6, 7)), run=run_multi_step)


def test_bfloat16_input_is_normalised_in_float32_and_stays_bfloat16():
    bn = make_bn(nn.BatchNorm2d, dtype=torch.float32)
    x = sequence((T, B, C, 6, 7), dtype=torch.float32).bfloat16()
    # both round a float32 result to bfloat16 once (one bf16 step apart at most)
    out = assert_same(bn, x, rtol=1e-2, atol=1e-2, autocast=torch.bfloat16)
    assert out.dtype == torch.bfloat16 and bn.running_mean.dtype == torch.float32


@pytest.mark.parametrize(
    "module,shape,message",
    [
        (
            nn.SyncBatchNorm(C),
            (T, B, C, 6, 7),
            "sequence_batch_norm: takes an nn.BatchNorm1d/2d/3d (exact class), got SyncBatchNorm",
        ),
        (
            nn.BatchNorm2d(C).eval(),
            (T, B, C, 6, 7),
            "sequence_batch_norm: BatchNorm2d normalises with its running statistics here "
            "(eval mode): fold time into the batch instead (run_multi_step does)",
        ),
        (
            nn.BatchNorm2d(C),
            (T, B, C, 6),
            "sequence_batch_norm: BatchNorm2d(5) needs a 5-D sequence [T, B, 5, ...], "
            "got shape [3, 4, 5, 6]",
        ),
        (
            nn.BatchNorm1d(C),
            (T, 1, C),
            "sequence_batch_norm: needs more than 1 value per channel and step (batch x "
            "spatial), got shape [3, 1, 5]: train with a larger batch",
        ),
    ],
    ids=["subclass", "eval", "shape", "one value"],
)
def test_bad_input_is_reported(module, shape, message):
    with pytest.raises(BidlError, match=f"^{re.escape(message)}$"):
        sequence_batch_norm(module, torch.randn(shape))


@pytest.fixture
def sequence_calls(monkeypatch) -> list[tuple[int, ...]]:
    """The input shapes of run_multi_step's calls of ``sequence_batch_norm``."""
    calls: list[tuple[int, ...]] = []

    def counted(bn, x_seq):
        calls.append(tuple(x_seq.shape))
        return sequence_batch_norm(bn, x_seq)

    monkeypatch.setattr(time_fold, "sequence_batch_norm", counted)
    return calls


def test_run_multi_step_of_conv_and_batch_norm_equals_the_step_loop(sequence_calls):
    torch.manual_seed(2)
    net = nn.Sequential(nn.Conv2d(2, C, 3, padding=1), nn.BatchNorm2d(C)).double()
    assert_same(net, sequence((T, B, 2, 6, 6)), run=run_multi_step)
    assert sequence_calls == [(T, B, C, 6, 6)]


def test_a_hooked_batch_norm_still_runs_once_per_step(sequence_calls):
    bn = make_bn(nn.BatchNorm2d)
    calls = []
    bn.register_forward_hook(lambda _m, args, _out: calls.append(args[0].shape[0]))
    out = run_multi_step(bn, sequence((T, B, C, 6, 7)))
    assert calls == [B] * T and out.shape == (T, B, C, 6, 7) and not sequence_calls


def test_an_unexpected_shape_goes_to_the_step_loop_and_its_error():
    with pytest.raises(ValueError, match=r"expected 4D input \(got 3D input\)"):
        run_multi_step(nn.BatchNorm2d(C), torch.randn(T, B, C, 6))


def resnet_pair(name: str):
    """ResNet-LIF (depth 10, 32x32, T=3) with the time loop outside and inside the layers."""
    config = dict(type=name, depth=10, h=32, w=32, timestep=3, input_channels=2, nclass=5)
    config.update(stem_channels=8, base_channels=8, noise=0.0)  # no random membrane noise
    torch.manual_seed(0)
    outer = build(dict(config, use_inner_loop=False), BACKBONES).double()
    inner = build(dict(config, use_inner_loop=True), BACKBONES).double()
    inner.load_state_dict(outer.state_dict())
    return outer, inner


@pytest.mark.parametrize("name", ["ResNetLifItout", "ResNetLifReluItout"])
def test_resnet_lif_multi_step_training_equals_the_step_by_step_run(name, sequence_calls):
    outer, inner = resnet_pair(name)
    x = (torch.rand(2, 3, 2, 32, 32, generator=torch.Generator().manual_seed(1)) < 0.3).double()
    y_outer, y_inner = outer(x), inner(x)
    # every batch norm (stem, 2 per block, 3 downsamples) took the sequence path
    assert len(sequence_calls) == 12
    torch.testing.assert_close(y_inner, y_outer, rtol=1e-10, atol=1e-12)
    y_outer.square().sum().backward()
    y_inner.square().sum().backward()
    scale = max(p.grad.abs().max().item() for p in outer.parameters())
    for (key, p_outer), p_inner in zip(outer.named_parameters(), inner.parameters(), strict=True):
        torch.testing.assert_close(
            p_inner.grad, p_outer.grad, rtol=1e-9, atol=1e-12 * scale, msg=key
        )
    for (key, b_outer), b_inner in zip(outer.named_buffers(), inner.buffers(), strict=True):
        torch.testing.assert_close(b_inner, b_outer, rtol=1e-10, atol=1e-12, msg=key)


cuda_only = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@cuda_only
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "channels_last"])
def test_cuda_equals_the_step_loop_in_float32_and_under_bf16_autocast(channels_last):
    shape = (T, 8, C, 10, 10)
    x = sequence(shape, dtype=torch.float32, channels_last=channels_last).cuda()
    # float32 against the float64 loop: the float32 loop (cuDNN) is no closer to the truth
    # than this path, and the weight gradient's rounding (about 1e-4 here) exceeds a plain
    # 1e-5 between two float32 runs
    bn = make_bn(nn.BatchNorm2d, dtype=torch.float32).cuda()
    out = assert_near_the_float64_loop(bn, x)
    assert out.stride() == x.stride()
    bn = make_bn(nn.BatchNorm2d, dtype=torch.float32).cuda()
    ref, ((out_l, gx_l, gp_l), (out_s, gx_s, gp_s)) = loop_and_sequence(
        bn, x.bfloat16(), device_type="cuda", autocast=torch.bfloat16
    )
    # both round a float32 result to bfloat16 once (one bf16 step apart at most)
    torch.testing.assert_close(out_s, out_l, rtol=1e-2, atol=1e-2)
    torch.testing.assert_close(gx_s, gx_l, rtol=1e-2, atol=1e-2)
    assert out_s.dtype == torch.bfloat16 and bn.running_var.dtype == torch.float32
    for (name, buf_l), buf_s in zip(ref.named_buffers(), bn.buffers(), strict=True):
        torch.testing.assert_close(buf_s, buf_l, rtol=1e-4, atol=1e-4, msg=name)
    # the weight and bias gradients against float64 sums over the same bfloat16 input and
    # upstream gradient: cuDNN's bfloat16 kernels were 0.3 off (of about 2, sums of 8,000
    # terms that cancel) on an H100, this path within float32's rounding
    x64 = x.bfloat16().double()
    g64 = torch.linspace(-1, 2, x.numel(), dtype=torch.bfloat16, device="cuda")
    g64 = g64.double().view(x.shape)
    dims = (0, 1, 3, 4)
    mean = x64.mean(dims[1:], keepdim=True)
    xhat = (x64 - mean) / torch.sqrt(x64.var(dims[1:], unbiased=False, keepdim=True) + bn.eps)
    torch.testing.assert_close(gp_s[0].double(), (g64 * xhat).sum(dims), rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(gp_s[1].double(), g64.sum(dims), rtol=1e-4, atol=1e-3)


@cuda_only
@pytest.mark.parametrize(
    "channels_last,dtype,expected",
    [
        (False, torch.float32, "SequenceBnFunctionBackward"),
        (True, torch.bfloat16, "SequenceBnFunctionBackward"),
        (False, torch.float64, "_NormalizeBackward"),  # not a Triton input type
    ],
    ids=["nchw float32", "channels_last bf16", "float64"],
)
def test_cuda_runs_the_triton_kernels_where_they_fit(channels_last, dtype, expected):
    pytest.importorskip("triton")
    x = sequence((T, B, C, 6, 7), dtype=dtype, channels_last=channels_last).cuda()
    bn = make_bn(nn.BatchNorm2d, dtype=torch.float64 if dtype == torch.float64 else torch.float32)
    out = sequence_batch_norm(bn.cuda(), x.requires_grad_(True))
    assert type(out.grad_fn).__name__ == expected
    # any other layout takes the torch path
    odd = x.detach().transpose(3, 4).requires_grad_(True)
    assert type(sequence_batch_norm(bn, odd).grad_fn).__name__ == "_NormalizeBackward"
