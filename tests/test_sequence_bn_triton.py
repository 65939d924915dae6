"""The Triton kernels of ``sequence_batch_norm`` (CUDA) compute what the per-step
``nn.BatchNorm`` loop computes: outputs, input gradient, weight and bias gradients, running
statistics and batch count, in both frame layouts.

Without CUDA the kernels run through Triton's interpreter (``TRITON_INTERPRET=1``, set
before Triton is first imported) on CPU tensors; shapes stay small, and tiles shrink so
that a step spans several tiles, tiles hang over the step's edges and the merges loop.
"""

from __future__ import annotations

import os

import pytest
import torch
from torch import nn

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("triton")

from test_sequence_batch_norm import (  # noqa: E402
    assert_near_the_float64_loop,
    assert_same,
    make_bn,
    sequence,
)

from bidl.neurons.kernels import sequence_bn_triton  # noqa: E402
from bidl.neurons.sequence_batch_norm import step_layout  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


@pytest.fixture(autouse=True)
def small_tiles(monkeypatch):
    monkeypatch.setattr(sequence_bn_triton, "TILE", 64)
    monkeypatch.setattr(sequence_bn_triton, "PARTIAL_BLOCK", 4)


def triton_run(bn, x_seq):
    layout = step_layout(x_seq)
    assert layout is not None
    return sequence_bn_triton.sequence_batch_norm_triton(bn, x_seq, layout)


CASES = {
    # [B, C, S] = [3, 5, 20]: tiles [2, 1, 32], padded along B and S
    "2d nchw": (nn.BatchNorm2d, (3, 3, 5, 4, 5), False, {}),
    # [B * S, C, 1] = [60, 5, 1]: tiles [8, 8, 1], padded along C; 8 tiles a step
    "2d channels_last": (nn.BatchNorm2d, (3, 3, 5, 4, 5), True, {}),
    "1d [T,B,C]": (nn.BatchNorm1d, (3, 7, 5), False, {}),
    "1d [T,B,C,L]": (nn.BatchNorm1d, (2, 3, 5, 9), False, {}),
    "3d channels_last": (nn.BatchNorm3d, (2, 2, 5, 2, 3, 3), True, {}),
    "momentum=None": (nn.BatchNorm2d, (3, 3, 5, 4, 5), True, dict(momentum=None)),
    "affine=False": (nn.BatchNorm2d, (3, 3, 5, 4, 5), False, dict(affine=False)),
    "no running stats": (nn.BatchNorm2d, (2, 3, 5, 3, 3), False, dict(track_running_stats=False)),
    "T=1": (nn.BatchNorm2d, (1, 3, 5, 4, 5), True, {}),
}


def frames(shape, channels_last, dtype=torch.float32):
    x = sequence(shape, dtype=dtype)
    if channels_last:  # each frame's channels innermost
        x = x.movedim(2, -1).contiguous().movedim(-1, 2)
    return x.to(DEVICE)


@pytest.mark.parametrize("case", list(CASES))
def test_equals_the_float64_step_loop(case):
    kind, shape, channels_last, kwargs = CASES[case]
    x = frames(shape, channels_last)
    bn = make_bn(kind, dtype=torch.float32, **kwargs).to(DEVICE)
    out = assert_near_the_float64_loop(bn, x, run=triton_run)
    assert out.stride() == x.stride()  # the frames keep their layout
    if bn.running_mean is not None:
        assert bn.num_batches_tracked.item() == 2 + shape[0]


def test_equals_the_float32_step_loop_and_repeats_bit_for_bit():
    x = frames((3, 3, 5, 4, 5), channels_last=True)
    bn = make_bn(nn.BatchNorm2d, dtype=torch.float32, momentum=None).to(DEVICE)
    out = assert_same(bn, x, run=triton_run, rtol=1e-5, atol=1e-5)
    # a fixed merge order, no atomics: the same input gives the same bits
    again = triton_run(make_bn(nn.BatchNorm2d, dtype=torch.float32).to(DEVICE), x)
    assert torch.equal(again, out)


def test_a_gradient_in_another_layout_and_frozen_parameters():
    x = frames((2, 3, 5, 4, 5), channels_last=True).requires_grad_(True)
    bn = make_bn(nn.BatchNorm2d, dtype=torch.float32).to(DEVICE).requires_grad_(False)
    out = triton_run(bn, x)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(3)).to(DEVICE)
    out.backward(g)  # g is NCHW-contiguous, x channels_last
    x_ref = x.detach().double().requires_grad_(True)
    weight, bias = bn.weight.double(), bn.bias.double()
    out_ref = torch.stack(
        [nn.functional.batch_norm(x_t, None, None, weight, bias, training=True) for x_t in x_ref]
    )
    out_ref.backward(g.double())
    torch.testing.assert_close(out.double(), out_ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(x.grad.double(), x_ref.grad, rtol=1e-5, atol=1e-5)
    assert bn.weight.grad is None and bn.bias.grad is None


def test_bfloat16_input_under_autocast_stays_bfloat16():
    x = frames((2, 3, 5, 4, 5), channels_last=False).bfloat16()
    bn = make_bn(nn.BatchNorm2d, dtype=torch.float32).to(DEVICE)
    # both round a float32 result to bfloat16 once (one bf16 step apart at most)
    out = assert_same(
        bn, x, run=triton_run, rtol=1e-2, atol=1e-2, device_type=DEVICE, autocast=torch.bfloat16
    )
    assert out.dtype == torch.bfloat16 and bn.running_mean.dtype == torch.float32


def test_tiling_stays_within_the_step(monkeypatch):
    monkeypatch.setattr(sequence_bn_triton, "TILE", 4096)
    assert sequence_bn_triton.tiling(8, 64, 16384) == (2, 1, 2048)  # NCHW, large frames
    assert sequence_bn_triton.tiling(8, 256, 16) == (8, 32, 16)  # NCHW, small frames
    assert sequence_bn_triton.tiling(8 * 16384, 64, 1) == (64, 64, 1)  # channels_last
    assert sequence_bn_triton.tiling(3, 5, 1) == (4, 8, 1)  # BatchNorm1d on [B, C]
