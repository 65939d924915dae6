"""Batch norm with per-step statistics over a whole sequence ``[T, B, C, ...]`` at once.

A batch norm that normalises with the batch's statistics (training, or no running
statistics) treats each timestep as its own batch, so ``run_multi_step`` cannot fold time
into the batch. ``sequence_batch_norm(bn, x_seq)`` returns what
``torch.stack([bn(x) for x in x_seq])`` returns, and leaves the running statistics as
those T calls would, with a few kernels for all T steps instead of T times a batch norm's
(a GPU training step is launch-bound): statistics per (t, c) over (B, spatial) by one
``var_mean``, one fused ``x * scale + shift``; backward the normalised input again, the
two sums (of g and of g * xhat) and two fused elementwise passes. The frames keep their
memory format (channels_last stays channels_last). Statistics are computed in float32 at
least, the output has the input's dtype, as ``nn.BatchNorm`` gives under autocast (batch
norm is on none of autocast's cast lists).

On CUDA with Triton, frames contiguous in NCHW or channels_last, a float32/bfloat16/float16
input and float32 parameters and statistics, Triton kernels do the same in fewer passes
(``kernels/sequence_bn_triton.py``); the torch code here is the CPU path and the reference.
"""

from __future__ import annotations

import contextlib
import math

import torch
from torch import nn
from torch.autograd.function import once_differentiable
from torch.nn.modules import module as nn_module

from ..registry import BidlError
from .kernels import triton_available, triton_sequence_batch_norm

#: the exact classes (subclasses such as SyncBatchNorm may do more) and the dimensions of
#: one step's input each accepts
_FRAME_DIMS = {nn.BatchNorm1d: (2, 3), nn.BatchNorm2d: (4,), nn.BatchNorm3d: (5,)}


def uses_batch_statistics(bn: nn.Module) -> bool:
    """Whether ``bn`` normalises with the batch's statistics (as ``nn.BatchNorm`` decides)."""
    return bn.training or (bn.running_mean is None and bn.running_var is None)


def _problem(bn: nn.Module, x_seq: torch.Tensor) -> str | None:
    """Why ``sequence_batch_norm`` cannot run ``bn`` on ``x_seq``, or None."""
    kind = type(bn)
    if kind not in _FRAME_DIMS:
        return f"takes an nn.BatchNorm1d/2d/3d (exact class), got {kind.__name__}"
    if not uses_batch_statistics(bn):
        return (
            f"{kind.__name__} normalises with its running statistics here (eval mode): "
            "fold time into the batch instead (run_multi_step does)"
        )
    if not isinstance(x_seq, torch.Tensor) or not x_seq.is_floating_point():
        return f"x_seq must be a floating-point tensor, got {getattr(x_seq, 'dtype', x_seq)!r}"
    frame_dims = _FRAME_DIMS[kind]
    if x_seq.dim() - 1 not in frame_dims or x_seq.shape[2] != bn.num_features:
        wanted = " or ".join(f"{d + 1}-D" for d in frame_dims)
        return (
            f"{kind.__name__}({bn.num_features}) needs a {wanted} sequence [T, B, "
            f"{bn.num_features}, ...], got shape {list(x_seq.shape)}"
        )
    if x_seq.numel() // max(x_seq.shape[0] * x_seq.shape[2], 1) < 2:
        return (
            f"needs more than 1 value per channel and step (batch x spatial), got shape "
            f"{list(x_seq.shape)}: train with a larger batch"
        )
    return None


def _watched(module: nn.Module) -> bool:
    """Whether hooks watch ``module``'s calls (then it must be called once per step)."""
    own = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    global_ = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks")
    global_ += ("_global_backward_pre_hooks",)
    return any(getattr(module, name, None) for name in own) or any(
        getattr(nn_module, name, None) for name in global_
    )


def fits_sequence_batch_norm(module: nn.Module, x_seq: torch.Tensor) -> bool:
    """Whether ``run_multi_step`` may run ``module`` with ``sequence_batch_norm``: a plain
    batch norm using batch statistics, no hooks on it (they expect a call per step), the
    sequence shaped as it expects, and not inside ``torch.compile`` (which fuses the step
    loop itself)."""
    return (
        type(module) in _FRAME_DIMS
        and not torch.compiler.is_compiling()
        and not _watched(module)
        and _problem(module, x_seq) is None
    )


def _no_autocast(device_type: str):
    # the ops below would be cast by autocast (rsqrt to float32, addcmul promoted); they
    # choose their dtypes themselves
    if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type, enabled=False)
    return contextlib.nullcontext()


def _per_channel(t: torch.Tensor, dims: int) -> torch.Tensor:
    """A ``[C]`` tensor shaped to broadcast over ``[T, B, C, ...]``."""
    return t.view(1, 1, -1, *([1] * (dims - 3)))


class _Normalize(torch.autograd.Function):
    """``(x - mean) * invstd * weight + bias`` per (t, c) with batch norm's gradient: the
    statistics are the batch's own, so the input gradient includes their dependence."""

    @staticmethod
    def forward(ctx, x, weight, bias, mean, invstd, dims):
        scale = invstd if weight is None else invstd * _per_channel(weight, x.dim())
        shift = -mean * scale if bias is None else _per_channel(bias, x.dim()) - mean * scale
        out = torch.empty_like(x)  # the input's dtype and memory format
        torch.addcmul(shift, x, scale, out=out)
        ctx.save_for_backward(x, weight, mean, invstd)
        ctx.dims = dims
        ctx.bias_dtype = None if bias is None else bias.dtype
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, weight, mean, invstd = ctx.saved_tensors
        dims = ctx.dims
        count = math.prod(x.shape[d] for d in dims)
        with _no_autocast(x.device.type):
            # xhat again from x rather than sum(g*x) - mean*sum(g), which cancels badly
            # when |mean| >> std
            xhat = torch.addcmul(-mean * invstd, x, invstd)
            sum_g = grad_out.sum(dims, keepdim=True, dtype=mean.dtype)
            sum_g_xhat = (grad_out * xhat).sum(dims, keepdim=True)
            grad_x = grad_weight = grad_bias = None
            if ctx.needs_input_grad[0]:
                k = invstd if weight is None else invstd * _per_channel(weight, x.dim())
                # k * (g - mean(g) - xhat * mean(g * xhat)), in two passes
                torch.addcmul(-k * sum_g / count, xhat, -k * sum_g_xhat / count, out=xhat)
                grad_x = torch.empty_like(x)
                torch.addcmul(xhat, grad_out, k, out=grad_x)
            if weight is not None and ctx.needs_input_grad[1]:
                grad_weight = sum_g_xhat.sum(0).reshape(-1).to(weight.dtype)
            if ctx.needs_input_grad[2]:
                grad_bias = sum_g.sum(0).reshape(-1).to(ctx.bias_dtype)
        return grad_x, grad_weight, grad_bias, None, None, None


def _update_running_statistics(bn, mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
    """The running statistics after T sequential ``nn.BatchNorm`` updates, in closed form on
    the device (no host synchronisation: CUDA-graph safe)."""
    if not (bn.training and bn.track_running_stats):
        return  # nn.BatchNorm neither counts nor updates then
    steps = mean.shape[0]
    if bn.num_batches_tracked is not None:
        bn.num_batches_tracked.add_(steps)
    if bn.running_mean is None:
        return
    dtype, device = bn.running_mean.dtype, bn.running_mean.device
    if bn.momentum is None and bn.num_batches_tracked is not None:
        # cumulative average: factor 1/n at the n-th batch telescopes to weights 1/n_T for
        # every new batch and n_0/n_T for the old average
        total = bn.num_batches_tracked.to(dtype)
        keep = (total - steps) / total
        weights = (1 / total).expand(steps)
    else:
        momentum = 0.0 if bn.momentum is None else float(bn.momentum)
        keep = (1 - momentum) ** steps
        age = torch.arange(steps - 1, -1, -1, device=device, dtype=dtype)
        weights = momentum * torch.pow(1 - momentum, age)
    unbiased = var * (count / (count - 1))
    for running, new in ((bn.running_mean, mean), (bn.running_var, unbiased)):
        new = new.reshape(steps, -1).to(dtype)
        running.mul_(keep).add_((weights.unsqueeze(1) * new).sum(0))


def step_layout(x_seq: torch.Tensor) -> tuple[int, int, int] | None:
    """``(outer, C, inner)`` of one step of ``x_seq`` ``[T, B, C, ...]`` in memory order when
    its frames are contiguous in NCHW (``[B, C, S]``) or channels_last (``[B * S, C, 1]``),
    steps one after another; None for any other layout."""
    batch, channels = x_seq.shape[1:3]
    spatial = math.prod(x_seq.shape[3:])
    if x_seq.is_contiguous():
        return batch, channels, spatial
    if x_seq.movedim(2, -1).is_contiguous():
        return batch * spatial, channels, 1
    return None


_TRITON_INPUTS = (torch.float32, torch.bfloat16, torch.float16)


def triton_fits(bn: nn.Module, x_seq: torch.Tensor) -> bool:
    """Whether the Triton kernels run ``sequence_batch_norm(bn, x_seq)``: CUDA, Triton
    installed, not traced by ``torch.compile``, a float32/bfloat16/float16 sequence in a
    layout ``step_layout`` knows, float32 parameters and running statistics."""
    if not x_seq.is_cuda or x_seq.dtype not in _TRITON_INPUTS or torch.compiler.is_compiling():
        return False
    if not triton_available():
        return False
    tensors = (bn.weight, bn.bias, bn.running_mean, bn.running_var)
    if any(t is not None and (t.dtype != torch.float32 or not t.is_cuda) for t in tensors):
        return False
    if (bn.running_mean is None) != (bn.running_var is None):
        return False
    return step_layout(x_seq) is not None


def sequence_batch_norm(bn: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
    """``torch.stack([bn(x) for x in x_seq])`` for a batch norm using batch statistics, in
    one pass over the sequence ``x_seq`` ``[T, B, C, ...]`` (module docstring)."""
    problem = _problem(bn, x_seq)
    if problem is not None:
        raise BidlError(f"sequence_batch_norm: {problem}")
    if triton_fits(bn, x_seq):
        return triton_sequence_batch_norm(bn, x_seq, step_layout(x_seq))
    dims = (1, *range(3, x_seq.dim()))
    count = math.prod(x_seq.shape[d] for d in dims)
    compute = torch.promote_types(x_seq.dtype, torch.float32)
    with _no_autocast(x_seq.device.type):
        with torch.no_grad():
            var, mean = torch.var_mean(x_seq.to(compute), dim=dims, keepdim=True, correction=0)
            invstd = torch.rsqrt(var + bn.eps)
        out = _Normalize.apply(x_seq, bn.weight, bn.bias, mean, invstd, dims)
        with torch.no_grad():
            _update_running_statistics(bn, mean, var, count)
    return out
