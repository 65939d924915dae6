"""A training batch norm with per-step statistics over a sequence ``[T, B, C, ...]`` in Triton.

What ``sequence_batch_norm`` computes in torch, in fewer full passes over the sequence
(a GPU training step spends most of a batch norm's time streaming the activations):

- forward: one kernel over all (t, tile) writes per-tile (count, mean, M2) per (t, c); one
  small kernel merges them per (t, c) (Chan's parallel update: no sum-of-squares
  cancellation); one small kernel applies the T running-statistics updates in order; one
  elementwise kernel writes ``y = (x - mean) * invstd * w + b``.
- backward: one kernel over all (t, tile) writes per-tile sums of ``g`` and ``g * xhat``
  (``xhat`` recomputed from ``x``); one small kernel merges them; one elementwise kernel
  writes ``dx = w * invstd * (g - mean(g) - xhat * mean(g * xhat))``. The weight and bias
  gradients are those sums over t.

One step is ``[outer, C, inner]`` in memory order: ``[B, C, S]`` for frames contiguous in
NCHW, ``[B * S, C, 1]`` for channels_last frames (and ``[B, C, 1]`` for ``BatchNorm1d`` on
``[T, B, C]``). Statistics and arithmetic are float32 whatever the input's floating dtype;
outputs and the input gradient take the input's dtype. Every merge runs in a fixed order
and nothing is atomic: results do not depend on scheduling.

Importing this module imports Triton; ``bidl.neurons.sequence_batch_norm`` guards that.
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl

TILE = 4096  # elements a program streams (fewer, larger tiles: fewer partials to merge)
NUM_WARPS = 8
MERGE_WARPS = 4
PARTIAL_BLOCK = 128  # partials merged per loop iteration
MERGE_CHANNELS = 16  # channels per merging program (more programs: the merge is latency-bound)
RUNNING_CHANNELS = 128


@triton.jit
def _tile(outer, channels, inner, step_numel, n_iblocks, BO: tl.constexpr, BC: tl.constexpr,
          BI: tl.constexpr):  # fmt: skip
    """Offsets ``[BO, BC, BI]`` of this program's tile of step ``program_id(2)``, its mask,
    and its channels ``[1, BC, 1]``."""
    pid = tl.program_id(0)
    o = (pid // n_iblocks) * BO + tl.arange(0, BO)[:, None, None]
    c = tl.program_id(1) * BC + tl.arange(0, BC)[None, :, None]
    i = (pid % n_iblocks) * BI + tl.arange(0, BI)[None, None, :]
    mask = (o < outer) & (c < channels) & (i < inner)
    step = tl.program_id(2).to(tl.int64) * step_numel
    offs = step + (o.to(tl.int64) * channels + c) * inner + i
    return offs, mask, c


@triton.jit
def _channel_sums(values):
    """Sum over the tile's rows and inner positions: ``[BC]`` (masked values are 0)."""
    return tl.sum(tl.sum(values, axis=2), axis=0)


@triton.jit
def _store_parts(part_ptr, n_parts, channels, values, index: tl.constexpr, n_kinds: tl.constexpr,
                 BC: tl.constexpr):  # fmt: skip
    """Store a ``[BC]`` partial at ``parts[t, index, tile, c]`` (parts ``[T, n_kinds,
    n_parts, C]``)."""
    cvec = tl.program_id(1) * BC + tl.arange(0, BC)
    where = (tl.program_id(2).to(tl.int64) * n_kinds + index) * n_parts * channels
    where += tl.program_id(0) * channels + cvec
    tl.store(part_ptr + where, values, mask=cvec < channels)


@triton.jit
def _forward_partials(
    x_ptr, part_ptr, outer, channels, inner, step_numel, n_iblocks, n_parts,
    BO: tl.constexpr, BC: tl.constexpr, BI: tl.constexpr,
):  # fmt: skip
    """Per (t, tile): count, mean and M2 (sum of squared deviations from the tile's mean)."""
    offs, mask, _ = _tile(outer, channels, inner, step_numel, n_iblocks, BO, BC, BI)
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    count = _channel_sums(mask.to(tl.float32))
    mean = _channel_sums(x) / tl.maximum(count, 1.0)
    centred = tl.where(mask, x - mean[None, :, None], 0.0)
    _store_parts(part_ptr, n_parts, channels, count, 0, 3, BC)
    _store_parts(part_ptr, n_parts, channels, mean, 1, 3, BC)
    _store_parts(part_ptr, n_parts, channels, _channel_sums(centred * centred), 2, 3, BC)


@triton.jit
def _merge_statistics(
    part_ptr, mean_ptr, var_ptr, invstd_ptr, n_parts, channels, eps,
    BP: tl.constexpr, BC: tl.constexpr,
):  # fmt: skip
    """Per (t, c): the tiles' (count, mean, M2) merged into the biased variance, mean and
    ``1 / sqrt(var + eps)``."""
    c = tl.program_id(0) * BC + tl.arange(0, BC)
    cmask = c < channels
    t = tl.program_id(1)
    stride = n_parts * channels
    base = part_ptr + t.to(tl.int64) * 3 * stride
    total = tl.zeros([BC], dtype=tl.float32)
    weighted = tl.zeros([BC], dtype=tl.float32)
    for start in range(0, n_parts, BP):
        p = start + tl.arange(0, BP)[:, None]
        m = (p < n_parts) & cmask[None, :]
        where = p * channels + c[None, :]
        count = tl.load(base + where, mask=m, other=0.0)
        total += tl.sum(count, axis=0)
        weighted += tl.sum(count * tl.load(base + stride + where, mask=m, other=0.0), axis=0)
    mean_all = weighted / tl.maximum(total, 1.0)
    m2_all = tl.zeros([BC], dtype=tl.float32)
    for start in range(0, n_parts, BP):
        p = start + tl.arange(0, BP)[:, None]
        m = (p < n_parts) & cmask[None, :]
        where = p * channels + c[None, :]
        count = tl.load(base + where, mask=m, other=0.0)
        shift = tl.load(base + stride + where, mask=m, other=0.0) - mean_all[None, :]
        m2 = tl.load(base + 2 * stride + where, mask=m, other=0.0)
        m2_all += tl.sum(m2 + count * shift * shift, axis=0)
    var = m2_all / tl.maximum(total, 1.0)
    out = t * channels + c
    tl.store(mean_ptr + out, mean_all, mask=cmask)
    tl.store(var_ptr + out, var, mask=cmask)
    tl.store(invstd_ptr + out, 1.0 / tl.sqrt_rn(var + eps), mask=cmask)


@triton.jit
def _running_statistics(
    mean_ptr, var_ptr, running_mean_ptr, running_var_ptr, tracked_ptr,
    steps, channels, momentum, unbias,
    CUMULATIVE: tl.constexpr, BC: tl.constexpr,
):  # fmt: skip
    """The T updates ``nn.BatchNorm`` makes, in order: ``r = (1 - f) r + f new`` with ``f``
    the momentum, or ``1 / n`` at the n-th batch counted (momentum None); the variance
    unbiased. ``tracked_ptr`` holds the count before these T batches."""
    c = tl.program_id(0) * BC + tl.arange(0, BC)
    cmask = c < channels
    running_mean = tl.load(running_mean_ptr + c, mask=cmask, other=0.0)
    running_var = tl.load(running_var_ptr + c, mask=cmask, other=0.0)
    if CUMULATIVE:
        tracked = tl.load(tracked_ptr).to(tl.float64)
    for t in range(steps):
        if CUMULATIVE:  # noqa: SIM108 (a constexpr branch in Triton)
            factor = (1.0 / (tracked + (t + 1))).to(tl.float32)
        else:
            factor = momentum
        mean = tl.load(mean_ptr + t * channels + c, mask=cmask, other=0.0)
        var = tl.load(var_ptr + t * channels + c, mask=cmask, other=0.0)
        running_mean = (1.0 - factor) * running_mean + factor * mean
        running_var = (1.0 - factor) * running_var + factor * (var * unbias)
    tl.store(running_mean_ptr + c, running_mean, mask=cmask)
    tl.store(running_var_ptr + c, running_var, mask=cmask)


@triton.jit
def _step_channel(ptr, c, channels):
    """A per-(t, c) statistic for the tile's channels ``[1, BC, 1]``."""
    return tl.load(ptr + tl.program_id(2) * channels + c, mask=c < channels, other=0.0)


@triton.jit
def _normalize(
    x_ptr, out_ptr, mean_ptr, invstd_ptr, w_ptr, b_ptr,
    outer, channels, inner, step_numel, n_iblocks,
    HAS_W: tl.constexpr, HAS_B: tl.constexpr,
    BO: tl.constexpr, BC: tl.constexpr, BI: tl.constexpr,
):  # fmt: skip
    offs, mask, c = _tile(outer, channels, inner, step_numel, n_iblocks, BO, BC, BI)
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    scale = _step_channel(invstd_ptr, c, channels)
    if HAS_W:
        scale = scale * tl.load(w_ptr + c, mask=c < channels, other=0.0)
    y = (x - _step_channel(mean_ptr, c, channels)) * scale
    if HAS_B:
        y += tl.load(b_ptr + c, mask=c < channels, other=0.0)
    tl.store(out_ptr + offs, y.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _backward_partials(
    x_ptr, g_ptr, mean_ptr, invstd_ptr, part_ptr,
    outer, channels, inner, step_numel, n_iblocks, n_parts,
    BO: tl.constexpr, BC: tl.constexpr, BI: tl.constexpr,
):  # fmt: skip
    """Per (t, tile): the sums of ``g`` and of ``g * xhat``."""
    offs, mask, c = _tile(outer, channels, inner, step_numel, n_iblocks, BO, BC, BI)
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(tl.float32)  # 0 where masked
    xhat = (x - _step_channel(mean_ptr, c, channels)) * _step_channel(invstd_ptr, c, channels)
    _store_parts(part_ptr, n_parts, channels, _channel_sums(g), 0, 2, BC)
    _store_parts(part_ptr, n_parts, channels, _channel_sums(g * xhat), 1, 2, BC)


@triton.jit
def _merge_sums(part_ptr, sums_ptr, n_parts, channels, BP: tl.constexpr, BC: tl.constexpr):
    """Per (t, c): the tiles' sums of ``g`` and ``g * xhat`` added (sums ``[T, 2, C]``)."""
    c = tl.program_id(0) * BC + tl.arange(0, BC)
    cmask = c < channels
    t = tl.program_id(1)
    stride = n_parts * channels
    base = part_ptr + t.to(tl.int64) * 2 * stride
    sum_g = tl.zeros([BC], dtype=tl.float32)
    sum_gx = tl.zeros([BC], dtype=tl.float32)
    for start in range(0, n_parts, BP):
        p = start + tl.arange(0, BP)[:, None]
        m = (p < n_parts) & cmask[None, :]
        where = p * channels + c[None, :]
        sum_g += tl.sum(tl.load(base + where, mask=m, other=0.0), axis=0)
        sum_gx += tl.sum(tl.load(base + stride + where, mask=m, other=0.0), axis=0)
    tl.store(sums_ptr + 2 * t * channels + c, sum_g, mask=cmask)
    tl.store(sums_ptr + (2 * t + 1) * channels + c, sum_gx, mask=cmask)


@triton.jit
def _input_gradient(
    x_ptr, g_ptr, dx_ptr, mean_ptr, invstd_ptr, sums_ptr, w_ptr,
    outer, channels, inner, step_numel, n_iblocks, count,
    HAS_W: tl.constexpr, BO: tl.constexpr, BC: tl.constexpr, BI: tl.constexpr,
):  # fmt: skip
    offs, mask, c = _tile(outer, channels, inner, step_numel, n_iblocks, BO, BC, BI)
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(g_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    invstd = _step_channel(invstd_ptr, c, channels)
    xhat = (x - _step_channel(mean_ptr, c, channels)) * invstd
    t = tl.program_id(2)
    mean_g = tl.load(sums_ptr + 2 * t * channels + c, mask=c < channels, other=0.0) / count
    mean_gx = tl.load(sums_ptr + (2 * t + 1) * channels + c, mask=c < channels, other=0.0) / count
    k = invstd
    if HAS_W:
        k = k * tl.load(w_ptr + c, mask=c < channels, other=0.0)
    dx = k * (g - mean_g - xhat * mean_gx)
    tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=mask)


def _pow2(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


def tiling(outer: int, channels: int, inner: int) -> tuple[int, int, int]:
    """Tile ``(BO, BC, BI)`` of about ``TILE`` elements, contiguous along the memory order
    and no larger than the step (small steps would otherwise stream padding)."""
    if inner == 1:
        bc = min(_pow2(channels), 64, TILE)
        return min(_pow2(outer), max(1, TILE // bc)), bc, 1
    bi = min(_pow2(inner), 2048, TILE)
    bo = min(_pow2(outer), max(1, TILE // bi))
    return bo, min(_pow2(channels), max(1, TILE // (bi * bo))), bi


class _Grid:
    """Launch geometry of a sequence ``[T, outer, C, inner]``."""

    def __init__(self, steps: int, outer: int, channels: int, inner: int):
        self.steps, self.outer, self.channels, self.inner = steps, outer, channels, inner
        self.bo, self.bc, self.bi = tiling(outer, channels, inner)
        self.n_iblocks = triton.cdiv(inner, self.bi)
        self.n_parts = triton.cdiv(outer, self.bo) * self.n_iblocks
        self.tiles = (self.n_parts, triton.cdiv(channels, self.bc), steps)
        self.merges = (triton.cdiv(channels, MERGE_CHANNELS), steps)

    @property
    def shape_args(self) -> tuple[int, ...]:
        step_numel = self.outer * self.channels * self.inner
        return self.outer, self.channels, self.inner, step_numel, self.n_iblocks

    @property
    def blocks(self) -> dict:
        return dict(BO=self.bo, BC=self.bc, BI=self.bi, num_warps=NUM_WARPS)


def batch_statistics(x: torch.Tensor, grid: _Grid, eps: float):
    """``(mean, var, invstd)``, each float32 ``[T, C]``: the biased statistics of each step."""
    steps, channels = grid.steps, grid.channels
    parts = torch.empty(steps, 3, grid.n_parts, channels, device=x.device, dtype=torch.float32)
    _forward_partials[grid.tiles](x, parts, *grid.shape_args, grid.n_parts, **grid.blocks)
    stats = torch.empty(3, steps, channels, device=x.device, dtype=torch.float32)
    mean, var, invstd = stats.unbind(0)
    _merge_statistics[grid.merges](
        parts, mean, var, invstd, grid.n_parts, channels, float(eps),
        BP=PARTIAL_BLOCK, BC=MERGE_CHANNELS, num_warps=MERGE_WARPS,
    )  # fmt: skip
    return mean, var, invstd


def update_running_statistics(bn, mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
    """Leave ``bn``'s running statistics and batch count as T calls in training would."""
    if not (bn.training and bn.track_running_stats):
        return
    steps, channels = mean.shape
    tracked = bn.num_batches_tracked
    if bn.running_mean is not None:
        cumulative = bn.momentum is None and tracked is not None
        momentum = 0.0 if bn.momentum is None else float(bn.momentum)
        _running_statistics[(triton.cdiv(channels, RUNNING_CHANNELS),)](
            mean, var, bn.running_mean, bn.running_var, tracked if cumulative else mean,
            steps, channels, momentum, count / (count - 1),
            CUMULATIVE=cumulative, BC=RUNNING_CHANNELS, num_warps=MERGE_WARPS,
        )  # fmt: skip
    if tracked is not None:
        tracked.add_(steps)  # after the kernel read the count before these steps


class SequenceBnFunction(torch.autograd.Function):
    """``(x, weight | None, bias | None, mean, invstd, grid) -> (x - mean) * invstd * w + b``
    per (t, c), with batch norm's gradient (the statistics are the batch's own)."""

    @staticmethod
    def forward(ctx, x, weight, bias, mean, invstd, grid):
        out = torch.empty_like(x)  # the input's dtype and layout
        _normalize[grid.tiles](
            x, out, mean, invstd,
            weight if weight is not None else mean, bias if bias is not None else mean,
            *grid.shape_args, HAS_W=weight is not None, HAS_B=bias is not None, **grid.blocks,
        )  # fmt: skip
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.grid = grid
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out):
        x, weight, mean, invstd = ctx.saved_tensors
        grid = ctx.grid
        if grad_out.stride() != x.stride():  # the kernels walk both in x's layout
            grad_out = torch.empty_like(x, dtype=grad_out.dtype).copy_(grad_out)
        steps, channels = grid.steps, grid.channels
        parts = torch.empty(steps, 2, grid.n_parts, channels, device=x.device, dtype=torch.float32)
        _backward_partials[grid.tiles](
            x, grad_out, mean, invstd, parts, *grid.shape_args, grid.n_parts, **grid.blocks
        )
        sums = torch.empty(steps, 2, channels, device=x.device, dtype=torch.float32)
        _merge_sums[grid.merges](
            parts, sums, grid.n_parts, channels,
            BP=PARTIAL_BLOCK, BC=MERGE_CHANNELS, num_warps=MERGE_WARPS,
        )  # fmt: skip
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.empty_like(x)
            _input_gradient[grid.tiles](
                x, grad_out, grad_x, mean, invstd, sums, weight if weight is not None else mean,
                *grid.shape_args, float(grid.outer * grid.inner),
                HAS_W=weight is not None, **grid.blocks,
            )  # fmt: skip
        grad_weight = grad_bias = None
        if (weight is not None and ctx.needs_input_grad[1]) or ctx.needs_input_grad[2]:
            totals = sums.sum(0)  # [2, C]: sum(g), sum(g * xhat); fixed order
            if weight is not None and ctx.needs_input_grad[1]:
                grad_weight = totals[1]
            if ctx.has_bias and ctx.needs_input_grad[2]:
                grad_bias = totals[0]
        return grad_x, grad_weight, grad_bias, None, None, None


def sequence_batch_norm_triton(bn, x_seq: torch.Tensor, step_shape: tuple[int, int, int]):
    """``sequence_batch_norm(bn, x_seq)`` in Triton, for a sequence whose steps are
    ``step_shape = (outer, C, inner)`` in memory order (the caller checked that, and that
    ``bn``'s parameters and statistics are float32)."""
    grid = _Grid(x_seq.shape[0], *step_shape)
    count = step_shape[0] * step_shape[2]
    device = torch.cuda.device(x_seq.device) if x_seq.is_cuda else contextlib.nullcontext()
    with device:
        with torch.no_grad():
            mean, var, invstd = batch_statistics(x_seq.detach(), grid, bn.eps)
            update_running_statistics(bn, mean, var, count)
        return SequenceBnFunction.apply(x_seq, bn.weight, bn.bias, mean, invstd, grid)
