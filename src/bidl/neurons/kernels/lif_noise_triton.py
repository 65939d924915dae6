"""A plain LIF with BIDL's training noise in Triton: all ``T`` steps in one forward kernel.

BIDL's ``Lif`` in training adds ``N(0, 1) * noise * std(h_t)`` to the integrated membrane
``h_t = x_t + v_{t-1}`` before it fires, the standard deviation taken per sample and
channel over the spatial positions (``membrane_noise``; no gradient flows through it).
That spread needs all of a sample's channel at step ``t`` before any of it fires, so a
program here owns whole (sample, channel-block) planes and walks time. A plane that fits
one tile stays in registers: per step, load ``x_t``, integrate, reduce, add the noise, fire,
reset and leak. A larger one takes two passes per step: one forms ``h_t`` and its
per-channel spread (chunks merged with Chan's formula), a second adds the noise and fires. The noise is counter-based (Philox) at the element's
offset, from a seed drawn on the device by torch's generator (so CUDA graph replays draw
anew), which lets the backward -- the fused LIF backward kernel -- regenerate it instead of
storing it; it saves ``h`` and the per-(step, sample, channel) noise scale.

Importing this module imports Triton; ``bidl.neurons.kernels`` guards that.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .bn_lif_triton import _per_channel
from .lif_triton import fire, lif_backward, soma_gradients

CHUNK = 8192  # elements of a plane block in one tile
MIN_PROGRAMS = 264  # two per H100 multiprocessor: fewer channels a program below that


@triton.jit
def _fire(h, seed, offs, scale, alpha, beta, theta, v_0, OUTPUT: tl.constexpr):
    """Add the noise (no gradient through it), then fire, reset and leak."""
    return fire(h, h + tl.randn(seed, offs) * scale[None, :], alpha, beta, theta, v_0, OUTPUT)


@triton.jit
def _spread(h, mask, noise):
    """``noise * std(h)`` per channel (column), unbiased; the plane has >= 2 positions."""
    count = tl.sum(mask.to(tl.float32), axis=0)
    mean = tl.sum(tl.where(mask, h, 0.0), axis=0) / tl.maximum(count, 1.0)  # h is not 0 off it
    centred = tl.where(mask, h - mean[None, :], 0.0)
    return tl.sqrt(tl.sum(centred * centred, axis=0) / (count - 1.0)) * noise


@triton.jit
def _noisy_lif_forward_kernel(
    x_ptr, v_ptr, out_ptr, h_ptr, scale_ptr, seed_ptr,
    alpha_ptr, beta_ptr, theta_ptr, v0_ptr,
    steps, numel, batch, channels, spatial, stride_c, stride_s, n_cblocks, noise,
    PER_CHANNEL: tl.constexpr, OUTPUT: tl.constexpr, SINGLE: tl.constexpr,
    BS: tl.constexpr, BC: tl.constexpr,
):  # fmt: skip
    pid = tl.program_id(0)
    sample = pid // n_cblocks
    cvec = (pid % n_cblocks) * BC + tl.arange(0, BC)
    c = cvec[None, :]
    cmask = c < channels
    base = sample.to(tl.int64) * channels * spatial + c * stride_c
    s_range = tl.arange(0, BS)[:, None]
    alpha = _per_channel(alpha_ptr, c, cmask, PER_CHANNEL)
    beta = _per_channel(beta_ptr, c, cmask, PER_CHANNEL)
    theta = _per_channel(theta_ptr, c, cmask, PER_CHANNEL)
    v_0 = _per_channel(v0_ptr, c, cmask, PER_CHANNEL)
    seed = tl.load(seed_ptr)
    scale_at = sample * channels + cvec
    if SINGLE:  # the plane block fits one tile: the membrane stays in registers
        mask = (s_range < spatial) & cmask
        offs = base + s_range * stride_s
        membrane = tl.load(v_ptr + offs, mask=mask, other=0.0)
        x_next = tl.load(x_ptr + offs, mask=mask, other=0.0)
        for t in range(steps):
            h = x_next + membrane  # integrate
            next_t = t + 1 - (t + 1) // steps  # prefetch (the last step re-reads itself)
            x_next = tl.load(x_ptr + next_t * numel + offs, mask=mask, other=0.0)
            tl.store(h_ptr + t * numel + offs, h, mask=mask)
            scale = _spread(h, mask, noise)
            tl.store(scale_ptr + t * batch * channels + scale_at, scale, mask=cvec < channels)
            out, membrane = _fire(h, seed, t * numel + offs, scale, alpha, beta, theta, v_0,
                                  OUTPUT)  # fmt: skip
            tl.store(out_ptr + t * numel + offs, out, mask=mask)
        tl.store(v_ptr + offs, membrane, mask=mask)
    else:  # per step: integrate chunk by chunk (statistics merged), then fire
        for t in range(steps):
            count = tl.zeros([BC], dtype=tl.float32)
            mean = tl.zeros([BC], dtype=tl.float32)
            m2 = tl.zeros([BC], dtype=tl.float32)
            for s0 in range(0, spatial, BS):
                s = s0 + s_range
                mask = (s < spatial) & cmask
                offs = base + s * stride_s
                h = tl.load(x_ptr + t * numel + offs, mask=mask, other=0.0)
                h += tl.load(v_ptr + offs, mask=mask, other=0.0)
                tl.store(h_ptr + t * numel + offs, h, mask=mask)
                n_chunk = tl.sum(mask.to(tl.float32), axis=0)
                mean_chunk = tl.sum(h, axis=0) / tl.maximum(n_chunk, 1.0)
                centred = tl.where(mask, h - mean_chunk[None, :], 0.0)
                total = count + n_chunk  # Chan et al.'s merge of (count, mean, M2)
                delta = mean_chunk - mean
                mean += delta * (n_chunk / tl.maximum(total, 1.0))
                m2 += tl.sum(centred * centred, axis=0) + delta * delta * (
                    count * n_chunk / tl.maximum(total, 1.0)
                )
                count = total
            scale = tl.sqrt(m2 / (count - 1.0)) * noise  # unbiased, as torch.std
            tl.store(scale_ptr + t * batch * channels + scale_at, scale, mask=cvec < channels)
            tl.debug_barrier()  # this step's h is read back by other threads of the program
            for s0 in range(0, spatial, BS):
                s = s0 + s_range
                mask = (s < spatial) & cmask
                offs = base + s * stride_s
                h = tl.load(h_ptr + t * numel + offs, mask=mask, other=0.0)
                out, membrane = _fire(h, seed, t * numel + offs, scale, alpha, beta, theta,
                                      v_0, OUTPUT)  # fmt: skip
                tl.store(out_ptr + t * numel + offs, out, mask=mask)
                tl.store(v_ptr + offs, membrane, mask=mask)
            tl.debug_barrier()  # the next step reads this membrane


@triton.jit
def _noise_field_kernel(seed_ptr, out_ptr, total, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    tl.store(out_ptr + offs, tl.randn(tl.load(seed_ptr), offs), mask=offs < total)


def noise_field(seed: torch.Tensor, steps: int, numel: int, device) -> torch.Tensor:
    """The ``N(0, 1)`` draws the kernels use for ``seed``: ``[steps, numel]`` in the
    laid-out memory order (for tests: the reference loop fed the same draws)."""
    out = torch.empty(steps, numel, dtype=torch.float32, device=device)
    total = steps * numel
    if total:
        _noise_field_kernel[(triton.cdiv(total, 1024),)](seed, out, total, BLOCK=1024)
    return out


def _pow2(n: int) -> int:
    return 1 << max(0, (int(n) - 1).bit_length())


def plane_tiling(batch: int, channels: int, spatial: int, stride_c: int) -> tuple[int, int]:
    """``(BS, BC)``: positions per tile and channels per program. A program owns
    ``batch * channels / BC``-th of the planes. Channels innermost: 8 a program (a full
    32-byte sector per position; narrower blocks waste most of each sector fetched); channels
    first: narrower blocks for more programs. A block whose whole plane fits one tile keeps
    its membrane in registers across steps."""
    positions = _pow2(spatial)
    if stride_c == 1:
        bc = min(_pow2(channels), 8)
    else:
        bc = min(_pow2(channels), 64, max(1, CHUNK // positions))
        while bc > 1 and batch * triton.cdiv(channels, bc) < MIN_PROGRAMS:
            bc //= 2
    return max(1, min(positions, CHUNK // bc)), bc


def _warps(elements: int) -> int:
    """Warps for a tile: about 16 elements a thread, 1 to 16 warps."""
    return min(16, max(1, _pow2(elements // 512)))


class NoisyLifFunction(torch.autograd.Function):
    """``(x [T, N], v_init [N] | None, alpha, beta, theta, v_0) -> (out [T, N], v_last [N])``.

    ``layout = (batch, channels, spatial, stride_c, stride_s, noise, output, surrogate,
    sg_param, per_channel)``: a step of ``N = batch * channels * spatial`` elements in
    memory order, an element of (sample b, channel c, position s) at
    ``b * channels * spatial + c * stride_c + s * stride_s``.
    """

    @staticmethod
    def forward(ctx, x, v_init, alpha, beta, theta, v_0, layout):
        batch, channels, spatial, stride_c, stride_s, noise, output = layout[:7]
        flat = tuple(p.detach().reshape(-1).contiguous() for p in (alpha, beta, theta, v_0))
        steps, numel = x.shape
        # the seed is drawn on the device: a CUDA graph's replays advance it
        seed = torch.randint(0, 2**62, (1,), device=x.device, dtype=torch.int64)
        membrane = torch.zeros(numel, device=x.device) if v_init is None else v_init.clone()
        out = torch.empty_like(x)
        h = torch.empty_like(x)
        scale = torch.empty(steps, batch, channels, device=x.device, dtype=torch.float32)
        bs, bc = plane_tiling(batch, channels, spatial, stride_c)
        n_cblocks = triton.cdiv(channels, bc)
        if steps and numel:
            _noisy_lif_forward_kernel[(batch * n_cblocks,)](
                x, membrane, out, h, scale, seed, *flat,
                steps, numel, batch, channels, spatial, stride_c, stride_s, n_cblocks,
                float(noise), PER_CHANNEL=flat[0].numel() > 1, OUTPUT=output,
                SINGLE=bs >= spatial, BS=bs, BC=bc, num_warps=_warps(bs * bc),
                enable_fp_fusion=False,
            )  # fmt: skip
        ctx.save_for_backward(h, scale, seed, *flat)
        ctx.layout = layout
        ctx.param_shapes = [p.shape for p in (alpha, beta, theta, v_0)]
        return out, membrane

    @staticmethod
    def backward(ctx, grad_out, grad_v_last):
        h, scale, seed, *flat = ctx.saved_tensors
        batch, channels, spatial, stride_c, _stride_s, _noise, output = ctx.layout[:7]
        surrogate, sg_param, per_channel = ctx.layout[7:]
        needs = ctx.needs_input_grad
        grad_params = any(needs[2:6])
        if grad_out is None:
            grad_out = torch.zeros_like(h)
        inner = stride_c if per_channel else 1
        grad_x, grad_init, sums = lif_backward(
            h,
            grad_out.contiguous(),
            None if grad_v_last is None else grad_v_last.contiguous(),
            flat,
            inner,
            output,
            surrogate,
            sg_param,
            grad_v_init=needs[1],
            grad_params=grad_params,
            noise=(seed, scale, channels, spatial, stride_c),
        )
        param_grads = soma_gradients(
            ctx, sums, lambda: _per_channel_sums(sums, batch, channels, spatial, stride_c)
        )
        return (grad_x if needs[0] else None), grad_init, *param_grads, None


def _per_channel_sums(sums, batch, channels, spatial, stride_c) -> torch.Tensor:
    """``[4, N]`` per-element sums -> ``[4, C]`` for either step layout."""
    if stride_c == 1:  # [B, S, C]
        return sums.view(4, batch * spatial, channels).sum(dim=1)
    return sums.view(4, batch, channels, spatial).sum(dim=(1, 3))
