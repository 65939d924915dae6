"""BIDL's layout in Triton: a LIF cell with batch norm on its membrane, in training.

Per step ``t``: ``h_t = x_t + v_{t-1}``; ``n_t = w (h_t - mean_t) / sqrt(var_t + eps) + b``
with the batch statistics of ``h_t`` per channel; a spike where ``n_t > theta``; the
membrane resets to ``v_0`` there and leaks, ``v_t = alpha * reset + beta``. The statistics
of step ``t`` need all of ``h_t`` before any ``n_t``, so each step is two launches: an
elementwise kernel that finishes step ``t - 1`` (normalise, fire, reset, leak), forms
``h_t`` and writes per-tile statistics, and a small kernel that merges them per channel
(and updates the running statistics). The backward mirrors it: one kernel finishes the
input gradient of step ``t + 1`` and forms the normalised-membrane gradient of step ``t``
with its per-tile sums, one merges them. Every merge is a fixed tree: the results do not
depend on scheduling.

A step ``[outer, C, inner]`` in memory order (``inner = 1`` for channels_last and
``BatchNorm1d`` on ``[B, C]``) is cut into tiles ``[BO, BC, BI]``; only ``h`` is saved for
the backward (the normalised membrane is recomputed from it and the step's statistics).

Importing this module imports Triton; ``bidl.neurons.kernels`` guards that.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .lif_triton import _surrogate_grad

NUM_WARPS = 8  # elementwise kernels: tiles of about 4096 elements
MERGE_WARPS = 4
PARTIAL_BLOCK = 512  # partial statistics merged per loop iteration
# channels per merging program; with PARTIAL_BLOCK, measured on an H100: 16 x 512 gave a
# 9.8 ms clif5fc2cd step, 32 x 256 10.1 ms, 8 x 256 10.0 ms
MERGE_CHANNELS = 16


@triton.jit
def _tile(outer, channels, inner, n_iblocks, BO: tl.constexpr, BC: tl.constexpr,
          BI: tl.constexpr):  # fmt: skip
    """Offsets ``[BO, BC, BI]`` of this program's tile, its mask, and its channels."""
    pid0 = tl.program_id(0)
    o = (pid0 // n_iblocks) * BO + tl.arange(0, BO)[:, None, None]
    c = tl.program_id(1) * BC + tl.arange(0, BC)[None, :, None]
    i = (pid0 % n_iblocks) * BI + tl.arange(0, BI)[None, None, :]
    mask = (o < outer) & (c < channels) & (i < inner)
    offs = (o.to(tl.int64) * channels + c) * inner + i
    return offs, mask, c


@triton.jit
def _per_channel(ptr, c, cmask, PER_CHANNEL: tl.constexpr):
    """A soma parameter for the tile's channels ``[1, BC, 1]`` (one shape either way: the
    compiler wants both branches alike)."""
    if PER_CHANNEL:
        value = tl.load(ptr + c, mask=cmask, other=0.0)
    else:
        value = tl.load(ptr + c * 0, mask=cmask, other=0.0)
    return value


@triton.jit
def _channel_sums(values, mask):
    """Sum over the tile's rows and inner positions: ``[BC]``."""
    return tl.sum(tl.sum(tl.where(mask, values, 0.0), axis=2), axis=0)


@triton.jit
def _bnlif_forward_step(
    x_ptr, h_prev_ptr, out_prev_ptr, h_ptr, part_ptr, v_last_ptr,
    mean_prev_ptr, invstd_prev_ptr, w_ptr, b_ptr,
    alpha_ptr, beta_ptr, theta_ptr, v0_ptr,
    outer, channels, inner, n_iblocks, n_parts,
    FIRST: tl.constexpr, LAST: tl.constexpr, HAS_W: tl.constexpr, HAS_B: tl.constexpr,
    PER_CHANNEL: tl.constexpr, BO: tl.constexpr, BC: tl.constexpr, BI: tl.constexpr,
):  # fmt: skip
    offs, mask, c = _tile(outer, channels, inner, n_iblocks, BO, BC, BI)
    cmask = c < channels
    if FIRST:
        v = tl.zeros([BO, BC, BI], dtype=tl.float32)
    else:  # finish step t - 1
        h = tl.load(h_prev_ptr + offs, mask=mask, other=0.0)
        mean = tl.load(mean_prev_ptr + c, mask=cmask, other=0.0)
        invstd = tl.load(invstd_prev_ptr + c, mask=cmask, other=0.0)
        n = (h - mean) * invstd
        if HAS_W:
            n = n * tl.load(w_ptr + c, mask=cmask, other=0.0)
        if HAS_B:
            n = n + tl.load(b_ptr + c, mask=cmask, other=0.0)
        fired = n - _per_channel(theta_ptr, c, cmask, PER_CHANNEL) > 0.0
        tl.store(out_prev_ptr + offs, fired.to(tl.float32), mask=mask)
        reset = tl.where(fired, _per_channel(v0_ptr, c, cmask, PER_CHANNEL), n)
        alpha = _per_channel(alpha_ptr, c, cmask, PER_CHANNEL)
        v = alpha * reset + _per_channel(beta_ptr, c, cmask, PER_CHANNEL)
        if LAST:
            tl.store(v_last_ptr + offs, v, mask=mask)
    if not LAST:  # integrate step t and take its statistics over this tile
        h = tl.load(x_ptr + offs, mask=mask, other=0.0) + v
        tl.store(h_ptr + offs, h, mask=mask)
        count = _channel_sums(tl.full([BO, BC, BI], 1.0, tl.float32), mask)
        mean = _channel_sums(h, mask) / tl.maximum(count, 1.0)
        centred = h - mean[None, :, None]
        m2 = _channel_sums(centred * centred, mask)
        cvec = tl.program_id(1) * BC + tl.arange(0, BC)
        where = tl.program_id(0) * channels + cvec
        stride = n_parts * channels
        tl.store(part_ptr + where, count, mask=cvec < channels)
        tl.store(part_ptr + stride + where, mean, mask=cvec < channels)
        tl.store(part_ptr + 2 * stride + where, m2, mask=cvec < channels)


@triton.jit
def _bnlif_statistics(
    part_ptr, mean_ptr, invstd_ptr, running_mean_ptr, running_var_ptr,
    n_parts, channels, momentum, eps,
    TRACK: tl.constexpr, BP: tl.constexpr, BC: tl.constexpr,
):  # fmt: skip
    """Merge the tiles' (count, mean, M2) per channel; update the running statistics."""
    c = tl.program_id(0) * BC + tl.arange(0, BC)
    cmask = c < channels
    stride = n_parts * channels
    total = tl.zeros([BC], dtype=tl.float32)
    weighted = tl.zeros([BC], dtype=tl.float32)
    for start in range(0, n_parts, BP):
        p = start + tl.arange(0, BP)[:, None]
        m = (p < n_parts) & cmask[None, :]
        count = tl.load(part_ptr + p * channels + c[None, :], mask=m, other=0.0)
        mean = tl.load(part_ptr + stride + p * channels + c[None, :], mask=m, other=0.0)
        total += tl.sum(count, axis=0)
        weighted += tl.sum(count * mean, axis=0)
    mean_all = weighted / tl.maximum(total, 1.0)
    m2_all = tl.zeros([BC], dtype=tl.float32)
    for start in range(0, n_parts, BP):
        p = start + tl.arange(0, BP)[:, None]
        m = (p < n_parts) & cmask[None, :]
        count = tl.load(part_ptr + p * channels + c[None, :], mask=m, other=0.0)
        mean = tl.load(part_ptr + stride + p * channels + c[None, :], mask=m, other=0.0)
        m2 = tl.load(part_ptr + 2 * stride + p * channels + c[None, :], mask=m, other=0.0)
        shift = mean - mean_all[None, :]
        m2_all += tl.sum(m2 + count * shift * shift, axis=0)
    var = m2_all / tl.maximum(total, 1.0)
    tl.store(mean_ptr + c, mean_all, mask=cmask)
    tl.store(invstd_ptr + c, 1.0 / tl.sqrt(var + eps), mask=cmask)
    if TRACK:
        unbiased = m2_all / tl.maximum(total - 1.0, 1.0)
        old_mean = tl.load(running_mean_ptr + c, mask=cmask, other=0.0)
        old_var = tl.load(running_var_ptr + c, mask=cmask, other=0.0)
        tl.store(
            running_mean_ptr + c, (1.0 - momentum) * old_mean + momentum * mean_all, mask=cmask
        )
        tl.store(running_var_ptr + c, (1.0 - momentum) * old_var + momentum * unbiased, mask=cmask)


@triton.jit
def _bnlif_backward_step(
    h_ptr, grad_out_ptr, g_ptr, part_ptr,
    h_next_ptr, g_next_ptr, grad_x_next_ptr,
    mean_ptr, invstd_ptr, mean_next_ptr, invstd_next_ptr, coef_next_ptr,
    w_ptr, b_ptr, alpha_ptr, beta_ptr, theta_ptr, v0_ptr,
    outer, channels, inner, n_iblocks, n_parts, sg_param,
    FIRST: tl.constexpr, LAST: tl.constexpr, HAS_W: tl.constexpr, HAS_B: tl.constexpr,
    PER_CHANNEL: tl.constexpr, SURROGATE: tl.constexpr,
    BO: tl.constexpr, BC: tl.constexpr, BI: tl.constexpr,
):  # fmt: skip
    """Finish the input gradient of step t + 1 (unless FIRST, the last step), then form
    the gradient of the normalised membrane of step t (unless LAST, past step 0)."""
    offs, mask, c = _tile(outer, channels, inner, n_iblocks, BO, BC, BI)
    cmask = c < channels
    if HAS_W:  # noqa: SIM108 (a constexpr branch in Triton)
        w = tl.load(w_ptr + c, mask=cmask, other=0.0)
    else:
        w = tl.full([1, BC, 1], 1.0, tl.float32)
    if FIRST:
        grad_v = tl.zeros([BO, BC, BI], dtype=tl.float32)
    else:  # batch norm backward of step t + 1: w / sigma (g - mean(g) - xhat mean(g xhat))
        h = tl.load(h_next_ptr + offs, mask=mask, other=0.0)
        g = tl.load(g_next_ptr + offs, mask=mask, other=0.0)
        mean = tl.load(mean_next_ptr + c, mask=cmask, other=0.0)
        invstd = tl.load(invstd_next_ptr + c, mask=cmask, other=0.0)
        mean_g = tl.load(coef_next_ptr + c, mask=cmask, other=0.0)
        mean_gx = tl.load(coef_next_ptr + channels + c, mask=cmask, other=0.0)
        xhat = (h - mean) * invstd
        grad_v = (w * invstd) * (g - mean_g - xhat * mean_gx)
        tl.store(grad_x_next_ptr + offs, grad_v, mask=mask)
    if not LAST:
        h = tl.load(h_ptr + offs, mask=mask, other=0.0)
        mean = tl.load(mean_ptr + c, mask=cmask, other=0.0)
        invstd = tl.load(invstd_ptr + c, mask=cmask, other=0.0)
        xhat = (h - mean) * invstd
        n = xhat * w
        if HAS_B:
            n = n + tl.load(b_ptr + c, mask=cmask, other=0.0)
        u = n - _per_channel(theta_ptr, c, cmask, PER_CHANNEL)
        fired = u > 0.0
        grad_reset = _per_channel(alpha_ptr, c, cmask, PER_CHANNEL) * grad_v
        grad_spike = grad_reset * (_per_channel(v0_ptr, c, cmask, PER_CHANNEL) - n)
        grad_spike += tl.load(grad_out_ptr + offs, mask=mask, other=0.0)
        grad_n = tl.where(fired, 0.0, grad_reset) + grad_spike * _surrogate_grad(
            u, sg_param, SURROGATE
        )
        grad_n = tl.where(mask, grad_n, 0.0)
        tl.store(g_ptr + offs, grad_n, mask=mask)
        cvec = tl.program_id(1) * BC + tl.arange(0, BC)
        where = tl.program_id(0) * channels + cvec
        tl.store(part_ptr + where, _channel_sums(grad_n, mask), mask=cvec < channels)
        tl.store(
            part_ptr + n_parts * channels + where,
            _channel_sums(grad_n * xhat, mask),
            mask=cvec < channels,
        )


@triton.jit
def _bnlif_gradient_sums(
    part_ptr, coef_ptr, grad_w_ptr, grad_b_ptr, n_parts, channels, count,
    BP: tl.constexpr, BC: tl.constexpr,
):  # fmt: skip
    """Per channel: mean(g) and mean(g xhat) for the input gradient; add sum(g xhat) and
    sum(g) to the weight and bias gradients."""
    c = tl.program_id(0) * BC + tl.arange(0, BC)
    cmask = c < channels
    sum_g = tl.zeros([BC], dtype=tl.float32)
    sum_gx = tl.zeros([BC], dtype=tl.float32)
    for start in range(0, n_parts, BP):
        p = start + tl.arange(0, BP)[:, None]
        m = (p < n_parts) & cmask[None, :]
        sum_g += tl.sum(tl.load(part_ptr + p * channels + c[None, :], mask=m, other=0.0), axis=0)
        sum_gx += tl.sum(
            tl.load(part_ptr + (n_parts + p) * channels + c[None, :], mask=m, other=0.0), axis=0
        )
    tl.store(coef_ptr + c, sum_g / count, mask=cmask)
    tl.store(coef_ptr + channels + c, sum_gx / count, mask=cmask)
    tl.store(grad_w_ptr + c, tl.load(grad_w_ptr + c, mask=cmask, other=0.0) + sum_gx, mask=cmask)
    tl.store(grad_b_ptr + c, tl.load(grad_b_ptr + c, mask=cmask, other=0.0) + sum_g, mask=cmask)


def _pow2(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


def tiling(outer: int, channels: int, inner: int) -> tuple[int, int, int]:
    """Tile ``(BO, BC, BI)`` of about 4096 elements, contiguous along the memory order
    (larger tiles: fewer partial statistics to merge, which is the serial part)."""
    if inner == 1:
        bc = min(_pow2(channels), 64)
        return max(1, 4096 // bc), bc, 1
    bi = min(_pow2(inner), 2048)
    return max(1, 4096 // bi), 1, bi


class BnLifFunction(torch.autograd.Function):
    """``(x [T, outer * C * inner], weight | None, bias | None) -> (spikes, last membrane)``;
    the last membrane carries no gradient.

    ``setup`` = ``(shape, running_mean, running_var, momentum, eps, soma, surrogate,
    sg_param)`` with ``shape = (outer, C, inner)`` in memory order and ``soma`` the four
    soma tensors (0-d or ``[C]``) flattened.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, setup):  # returns (spikes, the last membrane)
        (outer, channels, inner), running_mean, running_var, momentum, eps = setup[:5]
        soma = setup[5]
        steps = x.shape[0]
        bo, bc, bi = tiling(outer, channels, inner)
        n_iblocks = triton.cdiv(inner, bi)
        n_parts = triton.cdiv(outer, bo) * n_iblocks
        grid = (n_parts, triton.cdiv(channels, bc))
        out = torch.empty_like(x)
        h_all = torch.empty_like(x)
        v_last = torch.empty_like(x[0])
        stats = torch.empty(steps, 2, channels, device=x.device, dtype=torch.float32)
        parts = torch.empty(3, n_parts, channels, device=x.device, dtype=torch.float32)
        track = running_mean is not None
        dummy = stats
        flags = dict(
            HAS_W=weight is not None, HAS_B=bias is not None, PER_CHANNEL=soma[0].numel() > 1,
            BO=bo, BC=bc, BI=bi, num_warps=NUM_WARPS, enable_fp_fusion=False,
        )  # fmt: skip
        stat_grid = (triton.cdiv(channels, MERGE_CHANNELS),)
        for t in range(steps + 1):
            first, last = t == 0, t == steps
            _bnlif_forward_step[grid](
                x[t] if not last else x[0], h_all[t - 1] if not first else x[0],
                out[t - 1] if not first else out[0], h_all[t] if not last else h_all[0], parts,
                v_last,
                stats[t - 1, 0] if not first else dummy, stats[t - 1, 1] if not first else dummy,
                weight if weight is not None else dummy, bias if bias is not None else dummy,
                *soma, outer, channels, inner, n_iblocks, n_parts,
                FIRST=first, LAST=last, **flags,
            )  # fmt: skip
            if not last:
                _bnlif_statistics[stat_grid](
                    parts, stats[t, 0], stats[t, 1],
                    running_mean if track else dummy, running_var if track else dummy,
                    n_parts, channels, float(momentum), float(eps),
                    TRACK=track, BP=PARTIAL_BLOCK, BC=MERGE_CHANNELS, num_warps=MERGE_WARPS,
                )  # fmt: skip
        ctx.save_for_backward(h_all, stats, weight, bias, *soma)
        ctx.setup = (outer, channels, inner, bo, bc, bi, n_iblocks, n_parts, setup[6], setup[7])
        ctx.mark_non_differentiable(v_last)
        return out, v_last

    @staticmethod
    def backward(ctx, grad_out, _grad_v_last):
        h_all, stats, weight, bias, *soma = ctx.saved_tensors
        outer, channels, inner, bo, bc, bi, n_iblocks, n_parts, surrogate, sg_param = ctx.setup
        steps = h_all.shape[0]
        grad_out = grad_out.contiguous()
        grad_x = torch.empty_like(h_all)
        g_bufs = [torch.empty_like(h_all[0]) for _ in range(2)]  # this step's and the next's
        parts = torch.empty(2, n_parts, channels, device=h_all.device, dtype=torch.float32)
        coefs = [
            torch.empty(2, channels, device=h_all.device, dtype=torch.float32) for _ in range(2)
        ]
        sums = torch.zeros(2, channels, device=h_all.device, dtype=torch.float32)  # w, b
        dummy = stats
        grid = (n_parts, triton.cdiv(channels, bc))
        flags = dict(
            HAS_W=weight is not None, HAS_B=bias is not None, PER_CHANNEL=soma[0].numel() > 1,
            SURROGATE=surrogate, BO=bo, BC=bc, BI=bi, num_warps=NUM_WARPS, enable_fp_fusion=False,
        )  # fmt: skip
        count = float(outer * inner)
        for t in range(steps - 1, -2, -1):
            first, last = t == steps - 1, t == -1
            g_now, g_next = g_bufs[t % 2], g_bufs[(t + 1) % 2]
            coef_now, coef_next = coefs[t % 2], coefs[(t + 1) % 2]
            _bnlif_backward_step[grid](
                h_all[t] if not last else h_all[0], grad_out[t] if not last else grad_out[0],
                g_now, parts,
                h_all[t + 1] if not first else h_all[0], g_next,
                grad_x[t + 1] if not first else grad_x[0],
                stats[t, 0] if not last else dummy, stats[t, 1] if not last else dummy,
                stats[t + 1, 0] if not first else dummy, stats[t + 1, 1] if not first else dummy,
                coef_next, weight if weight is not None else dummy,
                bias if bias is not None else dummy, *soma,
                outer, channels, inner, n_iblocks, n_parts, float(sg_param),
                FIRST=first, LAST=last, **flags,
            )  # fmt: skip
            if not last:
                _bnlif_gradient_sums[(triton.cdiv(channels, MERGE_CHANNELS),)](
                    parts, coef_now, sums[0], sums[1], n_parts, channels, count,
                    BP=PARTIAL_BLOCK, BC=MERGE_CHANNELS, num_warps=MERGE_WARPS,
                )  # fmt: skip
        needs = ctx.needs_input_grad
        grad_w = sums[0] if weight is not None and needs[1] else None
        grad_b = sums[1] if bias is not None and needs[2] else None
        return grad_x, grad_w, grad_b, None
