"""Fused multi-step LIF in Triton: all ``T`` steps of a ``Lif`` in one forward kernel and one
backward kernel, the membrane kept on chip across steps.

Each program owns ``BLOCK`` neurons (elements of one timestep) and walks time. The forward
reads ``x_t``, writes the output and, when a gradient is wanted, the integrated membrane
``h_t = x_t + v_{t-1}`` -- the only thing the backward needs: spikes, reset values and the
surrogate are recomputed from it with the same float operations, so they match bit for
bit. The backward walks time in reverse with the membrane gradient kept on chip and, for
learnable parameters, sums their per-neuron gradients over time (one small buffer of
``4 x N``, reduced by torch afterwards).

Importing this module imports Triton; ``bidl.neurons.kernels`` guards that.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

#: surrogate gradient codes the kernels understand
SURROGATES = {"rectangle": 0, "sigmoid": 1, "atan": 2, "triangle": 3}
#: output codes: analog ``memb_mode`` index 0-3, or 4 for spikes
SPIKE_OUTPUT = 4
BLOCK = 1024
NUM_WARPS = 4


@triton.jit
def _soma_params(alpha_ptr, beta_ptr, theta_ptr, v0_ptr, offs, mask, inner, channels,
                 PER_CHANNEL: tl.constexpr):  # fmt: skip
    if PER_CHANNEL:
        channel = (offs // inner) % channels
        alpha = tl.load(alpha_ptr + channel, mask=mask, other=0.0)
        beta = tl.load(beta_ptr + channel, mask=mask, other=0.0)
        theta = tl.load(theta_ptr + channel, mask=mask, other=0.0)
        v_0 = tl.load(v0_ptr + channel, mask=mask, other=0.0)
    else:
        alpha = tl.load(alpha_ptr)
        beta = tl.load(beta_ptr)
        theta = tl.load(theta_ptr)
        v_0 = tl.load(v0_ptr)
    return alpha, beta, theta, v_0


@triton.jit
def _block_start(state_ptr, alpha_ptr, beta_ptr, theta_ptr, v0_ptr, numel, inner, channels,
                 HAS_STATE: tl.constexpr, PER_CHANNEL: tl.constexpr, BLOCK: tl.constexpr):  # fmt: skip
    """This program's neurons, their mask, the carried value (loaded or 0) and parameters."""
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < numel
    alpha, beta, theta, v_0 = _soma_params(
        alpha_ptr, beta_ptr, theta_ptr, v0_ptr, offs, mask, inner, channels, PER_CHANNEL
    )
    if HAS_STATE:
        carried = tl.load(state_ptr + offs, mask=mask, other=0.0)
    else:
        carried = tl.zeros([BLOCK], dtype=tl.float32)
    return offs, mask, carried, alpha, beta, theta, v_0


@triton.jit
def fire(h, n, alpha, beta, theta, v_0, OUTPUT: tl.constexpr):
    """Fire where ``n`` (the membrane ``h``, or ``h`` plus training noise) exceeds theta,
    reset to ``v_0`` there, leak: ``(the output OUTPUT picks, the new membrane)``."""
    u = n - theta
    fired = u > 0.0  # fire
    reset = tl.where(fired, v_0, n)  # reset
    membrane = alpha * reset + beta  # leak
    if OUTPUT == 0:
        out = h
    elif OUTPUT == 1:
        out = u
    elif OUTPUT == 2:
        out = reset
    elif OUTPUT == 3:
        out = membrane
    else:
        out = fired.to(tl.float32)
    return out, membrane


@triton.jit
def _lif_forward_kernel(
    x_ptr, v_init_ptr, alpha_ptr, beta_ptr, theta_ptr, v0_ptr,
    out_ptr, h_ptr, v_last_ptr,
    steps, numel, inner, channels,
    HAS_INIT: tl.constexpr, PER_CHANNEL: tl.constexpr, OUTPUT: tl.constexpr,
    SAVE_H: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    offs, mask, membrane, alpha, beta, theta, v_0 = _block_start(
        v_init_ptr, alpha_ptr, beta_ptr, theta_ptr, v0_ptr, numel, inner, channels,
        HAS_INIT, PER_CHANNEL, BLOCK,
    )  # fmt: skip
    x_next = tl.load(x_ptr + offs, mask=mask, other=0.0)
    for t in range(steps):
        idx = t * numel + offs
        x = x_next
        # prefetch the next step's input while this one computes and stores
        # (the last step re-reads itself: stays in bounds, no mask arithmetic)
        next_t = t + 1 - (t + 1) // steps
        x_next = tl.load(x_ptr + next_t * numel + offs, mask=mask, other=0.0)
        h = x + membrane  # integrate
        out, membrane = fire(h, h, alpha, beta, theta, v_0, OUTPUT)
        tl.store(out_ptr + idx, out, mask=mask)
        if SAVE_H:
            tl.store(h_ptr + idx, h, mask=mask)
    tl.store(v_last_ptr + offs, membrane, mask=mask)


@triton.jit
def _surrogate_grad(u, sg_param, SURROGATE: tl.constexpr):
    if SURROGATE == 0:  # rectangle of half-width a
        grad = tl.where(tl.abs(u) < sg_param, 1.0 / (2.0 * sg_param), 0.0)
    elif SURROGATE == 1:  # sigmoid with slope alpha
        sig = 1.0 / (1.0 + tl.exp(-sg_param * u))
        grad = sg_param * sig * (1.0 - sig)
    elif SURROGATE == 2:  # atan with slope alpha
        scaled = (3.141592653589793 / 2.0 * sg_param) * u
        grad = (sg_param / 2.0) / (1.0 + scaled * scaled)
    else:  # triangle of half-width a
        grad = tl.maximum(1.0 / sg_param - tl.abs(u) / (sg_param * sg_param), 0.0)
    return grad


@triton.jit
def _lif_backward_kernel(
    h_ptr, grad_out_ptr, grad_v_last_ptr, alpha_ptr, beta_ptr, theta_ptr, v0_ptr,
    grad_x_ptr, grad_v_init_ptr, grad_params_ptr, seed_ptr, scale_ptr,
    steps, numel, inner, channels, sg_param, noise_channels, noise_spatial, noise_stride_c,
    SURROGATE: tl.constexpr, OUTPUT: tl.constexpr, PER_CHANNEL: tl.constexpr,
    HAS_GRAD_V_LAST: tl.constexpr, GRAD_V_INIT: tl.constexpr, GRAD_PARAMS: tl.constexpr,
    NOISE: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    offs, mask, grad_v, alpha, beta, theta, v_0 = _block_start(
        grad_v_last_ptr, alpha_ptr, beta_ptr, theta_ptr, v0_ptr, numel, inner, channels,
        HAS_GRAD_V_LAST, PER_CHANNEL, BLOCK,
    )  # fmt: skip
    sum_alpha = tl.zeros([BLOCK], dtype=tl.float32)
    sum_beta = tl.zeros([BLOCK], dtype=tl.float32)
    sum_theta = tl.zeros([BLOCK], dtype=tl.float32)
    sum_v0 = tl.zeros([BLOCK], dtype=tl.float32)
    if NOISE:  # the training noise of lif_noise_triton, regenerated: its draws and scales
        seed = tl.load(seed_ptr)
        plane = (offs // (noise_channels * noise_spatial)) * noise_channels + (
            offs // noise_stride_c
        ) % noise_channels
        planes = numel // noise_spatial
    last = (steps - 1) * numel + offs
    h_next = tl.load(h_ptr + last, mask=mask, other=0.0)
    grad_next = tl.load(grad_out_ptr + last, mask=mask, other=0.0)
    for i in range(steps):
        idx = (steps - 1 - i) * numel + offs
        h = h_next
        grad_out = grad_next
        # prefetch the step before while this one computes and stores
        # (the first step re-reads itself: stays in bounds, no mask arithmetic)
        earlier = (steps - 2 - i + (i + 1) // steps) * numel + offs
        h_next = tl.load(h_ptr + earlier, mask=mask, other=0.0)
        grad_next = tl.load(grad_out_ptr + earlier, mask=mask, other=0.0)
        n = h  # the membrane that fires: h, or h plus the noise (no gradient through it)
        if NOISE:
            t = steps - 1 - i
            scale = tl.load(scale_ptr + t * planes + plane, mask=mask, other=0.0)
            n = h + tl.randn(seed, t * numel + offs) * scale
        u = n - theta
        fired = u > 0.0
        spike = fired.to(tl.float32)
        # new membrane = alpha * reset + beta
        if OUTPUT == 3:
            grad_v += grad_out
        grad_reset = alpha * grad_v
        if OUTPUT == 2:
            grad_reset += grad_out
        # reset = spike * v_0 + (1 - spike) * n
        grad_spike = grad_reset * (v_0 - n)
        if OUTPUT == 4:
            grad_spike += grad_out
        grad_u = grad_spike * _surrogate_grad(u, sg_param, SURROGATE)
        if OUTPUT == 1:
            grad_u += grad_out
        grad_h = grad_reset * (1.0 - spike) + grad_u
        if OUTPUT == 0:
            grad_h += grad_out
        if GRAD_PARAMS:
            reset = tl.where(fired, v_0, n)
            sum_alpha += grad_v * reset
            sum_beta += grad_v
            sum_theta -= grad_u
            sum_v0 += grad_reset * spike
        tl.store(grad_x_ptr + idx, grad_h, mask=mask)
        grad_v = grad_h  # h = x + v_prev
    if GRAD_V_INIT:
        tl.store(grad_v_init_ptr + offs, grad_v, mask=mask)
    if GRAD_PARAMS:
        tl.store(grad_params_ptr + offs, sum_alpha, mask=mask)
        tl.store(grad_params_ptr + numel + offs, sum_beta, mask=mask)
        tl.store(grad_params_ptr + 2 * numel + offs, sum_theta, mask=mask)
        tl.store(grad_params_ptr + 3 * numel + offs, sum_v0, mask=mask)


def _grid(numel: int) -> tuple[int]:
    return (triton.cdiv(numel, BLOCK),)


def _launch() -> dict:
    # Exact float semantics: a * b + c stays two roundings, as in the eager reference.
    return dict(BLOCK=BLOCK, num_warps=NUM_WARPS, enable_fp_fusion=False)


def lif_forward(x, v_init, params, inner, output, save_h):
    """Run the forward kernel on ``x`` ``[T, N]``; returns ``(out, h or None, v_last)``."""
    steps, numel = x.shape
    alpha, beta, theta, v_0 = params
    out = torch.empty_like(x)
    h = torch.empty_like(x) if save_h else out  # placeholder pointer when not saved
    v_last = torch.empty(numel, dtype=x.dtype, device=x.device)
    if steps > 0 and numel > 0:
        _lif_forward_kernel[_grid(numel)](
            x, v_init if v_init is not None else x, alpha, beta, theta, v_0,
            out, h, v_last,
            steps, numel, inner, alpha.numel(),
            HAS_INIT=v_init is not None, PER_CHANNEL=alpha.numel() > 1, OUTPUT=output,
            SAVE_H=save_h, **_launch(),
        )  # fmt: skip
    elif v_init is not None:
        v_last.copy_(v_init)
    else:
        v_last.zero_()
    return out, (h if save_h else None), v_last


def lif_backward(h, grad_out, grad_v_last, params, inner, output, surrogate, sg_param,
                 grad_v_init, grad_params, noise=None):  # fmt: skip
    """Run the backward kernel; returns ``(grad_x, grad_v_init, per-neuron param sums)``.
    ``noise = (seed, scale, channels, spatial, stride_c)``: the forward's training noise
    (``lif_noise_triton``), regenerated."""
    steps, numel = h.shape
    alpha, beta, theta, v_0 = params
    grad_x = torch.empty_like(h)
    grad_init = torch.empty(numel, dtype=h.dtype, device=h.device) if grad_v_init else None
    sums = torch.empty(4, numel, dtype=h.dtype, device=h.device) if grad_params else None
    if steps == 0 or numel == 0:  # nothing ran: the state's gradient passes through
        for tensor in (grad_init, sums):
            if tensor is not None:
                tensor.zero_()
        if grad_init is not None and grad_v_last is not None:
            grad_init.copy_(grad_v_last)
        return grad_x, grad_init, sums
    _lif_backward_kernel[_grid(numel)](
        h, grad_out, grad_v_last if grad_v_last is not None else h,
        alpha, beta, theta, v_0,
        grad_x, grad_init if grad_init is not None else h, sums if sums is not None else h,
        noise[0] if noise else h, noise[1] if noise else h,
        steps, numel, inner, alpha.numel(), float(sg_param), *(noise[2:] if noise else (1, 1, 1)),
        SURROGATE=surrogate, OUTPUT=output, PER_CHANNEL=alpha.numel() > 1,
        HAS_GRAD_V_LAST=grad_v_last is not None, GRAD_V_INIT=grad_v_init,
        GRAD_PARAMS=grad_params, NOISE=noise is not None, **_launch(),
    )  # fmt: skip
    return grad_x, grad_init, sums


class FusedLifFunction(torch.autograd.Function):
    """``(x [T, N], v_init [N] | None, alpha, beta, theta, v_0) -> (out [T, N], v_last [N])``.

    ``alpha``..``v_0`` are the cell's tensors (0-d for all_share, ``[C]`` for channel_share);
    ``layout = (inner, batch, output, surrogate, sg_param)`` where ``inner`` is the number
    of elements after the channel dim, ``batch`` the number before it.
    """

    @staticmethod
    def forward(ctx, x, v_init, alpha, beta, theta, v_0, layout):
        inner, batch, output, surrogate, sg_param = layout
        flat = tuple(p.detach().reshape(-1).contiguous() for p in (alpha, beta, theta, v_0))
        out, h, v_last = lif_forward(x, v_init, flat, inner, output, save_h=True)
        ctx.save_for_backward(h, *flat)
        ctx.layout = layout
        ctx.param_shapes = [p.shape for p in (alpha, beta, theta, v_0)]
        return out, v_last

    @staticmethod
    def backward(ctx, grad_out, grad_v_last):
        h, *flat = ctx.saved_tensors
        inner, batch, output, surrogate, sg_param = ctx.layout
        needs = ctx.needs_input_grad
        grad_params = any(needs[2:6])
        if grad_out is None:
            grad_out = torch.zeros_like(h)
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
        )
        channels = flat[0].numel()
        param_grads = soma_gradients(  # [4, batch, C, inner] -> [4, C]
            ctx, sums, lambda: sums.view(4, batch, channels, inner).sum(dim=(1, 3))
        )
        return (grad_x if needs[0] else None), grad_init, *param_grads, None


def soma_gradients(ctx, sums, per_channel) -> list:
    """The gradients of ``(alpha, beta, theta, v_0)`` from the backward kernel's per-neuron
    ``sums`` ``[4, N]`` (None where not wanted): summed over all neurons for shared
    parameters, by ``per_channel()`` (``[4, C]``) for per-channel ones."""
    grads = [None] * 4
    if sums is None:
        return grads
    reduced = per_channel() if ctx.param_shapes[0].numel() > 1 else sums.sum(1, keepdim=True)
    for k, shape in enumerate(ctx.param_shapes):
        if ctx.needs_input_grad[2 + k]:
            grads[k] = reduced[k].reshape(shape)
    return grads
