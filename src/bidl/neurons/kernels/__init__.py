"""Fused neuron kernels (Triton), used by the cells' multi-step mode on CUDA.

Triton is optional: nothing here imports it until a kernel runs, so the package works on
CPU-only installs. ``Lif.multi_step`` asks ``fused_lif_applies`` and, on CUDA, runs
``fused_lif_multi_step``; otherwise it loops over ``Lif.step``, the definition of
correctness. Tests run the same kernels on the CPU through Triton's interpreter
(``TRITON_INTERPRET=1`` set before the first kernel import).
"""

from __future__ import annotations

import functools
import importlib.util
import math
from contextlib import nullcontext

import torch

from ..surrogate import ATan, Rectangle, Sigmoid, Triangle

#: surrogate classes the kernels implement (exact types: a subclass may change the gradient)
_SURROGATE_CODES = {Rectangle: 0, Sigmoid: 1, ATan: 2, Triangle: 3}
_SPIKE_OUTPUT = 4
_SOMA_NAMES = ("alpha", "beta", "theta", "v_0")


@functools.cache
def triton_available() -> bool:
    """Whether Triton can be imported (it is an optional dependency)."""
    try:
        return importlib.util.find_spec("triton") is not None
    except (ImportError, ValueError):
        return False


def _dense_order(x_seq: torch.Tensor) -> list[int]:
    """Dim order (time first) in which ``x_seq`` is contiguous, e.g. channels-last steps;
    the plain order when there is none (the input is then copied)."""
    order = [0] + sorted(range(1, x_seq.dim()), key=lambda d: -x_seq.stride(d))
    if x_seq.permute(order).is_contiguous():
        return order
    return list(range(x_seq.dim()))


def _channel_layout(cell, shape: torch.Size, order: list[int]) -> tuple[int, int]:
    """``(batch, inner)``: element counts before and after the channel dim of one step,
    for a sequence of ``shape`` laid out in dim ``order``."""
    if cell.soma_params != "channel_share":
        return math.prod(shape[1:]), 1
    dim = cell.channel_dim if cell.channel_dim >= 0 else len(shape) - 1 + cell.channel_dim
    position = order.index(dim + 1)
    sizes = [shape[d] for d in order]
    return math.prod(sizes[1:position]), math.prod(sizes[position + 1 :])


def fused_lif_applies(cell, x_seq: torch.Tensor) -> bool:
    """Whether the fused kernel computes exactly what ``cell.step`` looped over time would.

    It covers the plain LIF: no norm inside the recurrence, no training noise, float32,
    one of the built-in surrogates, float32 soma parameters, and a state (if any) shaped
    like one step. Anything else runs the reference loop.
    """
    if torch.compiler.is_compiling() or not triton_available():  # compiled: the loop fuses
        return False
    if x_seq.dtype != torch.float32 or x_seq.dim() < 2:
        return False
    if cell.norm is not None or (cell.training and cell.noise > 0):
        return False
    if type(cell.spike_fn) not in _SURROGATE_CODES:
        return False
    if any(getattr(cell, key).dtype != torch.float32 for key in _SOMA_NAMES):
        return False
    if cell.state is not None:
        v = cell.state.get("v")
        if v is None or v.shape != x_seq.shape[1:] or v.dtype != x_seq.dtype:
            return False
    return True


def fused_lif_multi_step(cell, x_seq: torch.Tensor) -> torch.Tensor:
    """All ``T`` steps of ``cell`` (a ``Lif``) on ``x_seq`` ``[T, B, ...]`` in one kernel.

    Continues from ``cell.state`` and leaves the final membrane there, as the reference
    loop does. The caller checks ``fused_lif_applies`` first.
    """
    from .lif_triton import FusedLifFunction, lif_forward

    order = _dense_order(x_seq)
    inverse = sorted(range(len(order)), key=order.__getitem__)
    laid_out = x_seq.permute(order).contiguous()  # a view unless no dense order exists
    x = laid_out.view(laid_out.shape[0], math.prod(laid_out.shape[1:]))
    step_order = [d - 1 for d in order[1:]]
    v_init = None
    if cell.state is not None:
        v_init = cell.state["v"].permute(step_order).contiguous().view(-1)
    params = tuple(getattr(cell, key) for key in _SOMA_NAMES)
    batch, inner = _channel_layout(cell, x_seq.shape, order)
    output = _SPIKE_OUTPUT if cell.mode == "spike" else cell._memb_index
    spike_fn = cell.spike_fn
    surrogate = _SURROGATE_CODES[type(spike_fn)]
    sg_param = float(getattr(spike_fn, spike_fn._param))
    wants_grad = torch.is_grad_enabled() and (
        x.requires_grad
        or (v_init is not None and v_init.requires_grad)
        or any(p.requires_grad for p in params)
    )
    device = torch.cuda.device(x.device) if x.is_cuda else nullcontext()
    with device:
        if wants_grad:
            layout = (inner, batch, output, surrogate, sg_param)
            out, v_last = FusedLifFunction.apply(x, v_init, *params, layout)
        else:
            flat = tuple(p.detach().reshape(-1).contiguous() for p in params)
            v0 = None if v_init is None else v_init.detach()
            out, _, v_last = lif_forward(x.detach(), v0, flat, inner, output, save_h=False)
    step_inverse = sorted(range(len(step_order)), key=step_order.__getitem__)
    cell.state = {"v": v_last.view(laid_out.shape[1:]).permute(step_inverse)}
    out = out.view(laid_out.shape).permute(inverse)
    if cell.mode != "spike" and cell._activation is not None:
        out = cell._activation(out)
    return out


__all__ = ["fused_lif_applies", "fused_lif_multi_step", "triton_available"]
