"""Fused neuron kernels, used by the cells' multi-step mode.

- ``fused_lif_multi_step``: a plain ``Lif`` (no norm inside the recurrence) on CUDA, one
  Triton kernel forward and one backward. Triton is optional: nothing here imports it
  until a kernel runs, so the package works on CPU-only installs.
- ``noisy_lif_multi_step``: the same cell in training with BIDL's membrane noise (whose
  spread per sample and channel is a reduction inside the recurrence), one Triton kernel
  forward and one backward (``lif_noise_triton``).
- ``bn_lif_multi_step``: a training batch norm on the membrane, Triton (``bn_lif_triton``).
- ``norm_lif.NormLifFunction``: a ``Lif`` with batch norm on its membrane (BIDL's layout)
  or without norm, on any device: the recurrence as one autograd node in plain torch.

``fused_multi_step`` picks one when it computes exactly what ``Lif.step`` looped over time
would (the noisy kernel: with its own draws of the same noise), else the cell runs that
reference loop, the definition of correctness (``runner.fused_kernels=False`` forces it). Tests run the
Triton kernels on the CPU through Triton's interpreter (``TRITON_INTERPRET=1`` set before
the first kernel import).
"""

from __future__ import annotations

import functools
import importlib.util
import math
from contextlib import nullcontext

import torch
from torch import nn

from ..surrogate import ATan, Rectangle, Sigmoid, SurrogateSpike, Triangle
from .norm_lif import SPIKE_OUTPUT as _NORM_SPIKE_OUTPUT
from .norm_lif import norm_lif_multi_step

#: surrogate classes the kernels implement (exact types: a subclass may change the gradient)
_SURROGATE_CODES = {Rectangle: 0, Sigmoid: 1, ATan: 2, Triangle: 3}
_SPIKE_OUTPUT = 4
_SOMA_NAMES = ("alpha", "beta", "theta", "v_0")


#: ``runner.fused_kernels``: False sends every cell to its reference loop (to check the
#: kernels against it, or to debug); process-wide, set before training starts
_ENABLED = [True]


def set_fused_kernels(enabled: bool) -> None:
    """Turn the fused paths of ``fused_multi_step`` on or off for this process."""
    _ENABLED[0] = bool(enabled)


def fused_kernels_enabled() -> bool:
    return _ENABLED[0]


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
    return _kernel_cell(cell, x_seq)


def _kernel_cell(cell, x_seq: torch.Tensor) -> bool:
    """What both plain-LIF kernels need of the cell: a built-in surrogate, float32 soma
    parameters, and a state (if any) shaped like one step."""
    if type(cell.spike_fn) not in _SURROGATE_CODES:
        return False
    if any(getattr(cell, key).dtype != torch.float32 for key in _SOMA_NAMES):
        return False
    if cell.state is not None:
        v = cell.state.get("v")
        if v is None or v.shape != x_seq.shape[1:] or v.dtype != x_seq.dtype:
            return False
    return True


def _restore_layout(cell, out, v_last, laid_shape, order: list[int]) -> torch.Tensor:
    """A kernel's flat results back in ``x_seq``'s dim order: the last membrane into
    ``cell.state``, the output (through the analog activation, if any) returned."""
    step_order = [d - 1 for d in order[1:]]
    step_inverse = sorted(range(len(step_order)), key=step_order.__getitem__)
    cell.state = {"v": v_last.view(laid_shape[1:]).permute(step_inverse)}
    inverse = sorted(range(len(order)), key=order.__getitem__)
    out = out.view(laid_shape).permute(inverse)
    if cell.mode != "spike" and cell._activation is not None:
        out = cell._activation(out)
    return out


def fused_lif_multi_step(cell, x_seq: torch.Tensor) -> torch.Tensor:
    """All ``T`` steps of ``cell`` (a ``Lif``) on ``x_seq`` ``[T, B, ...]`` in one kernel.

    Continues from ``cell.state`` and leaves the final membrane there, as the reference
    loop does. The caller checks ``fused_lif_applies`` first.
    """
    from .lif_triton import FusedLifFunction, lif_forward

    order = _dense_order(x_seq)
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
    return _restore_layout(cell, out, v_last, laid_out.shape, order)


def _hooked(module) -> bool:
    """Whether hooks watch ``module`` (a trace reads what a spike function is handed, a
    statistics probe what a batch norm normalises): the fused paths never call it."""
    return isinstance(module, nn.Module) and bool(
        module._forward_hooks or module._forward_pre_hooks
    )


def _noise_planes(x_seq: torch.Tensor, order: list[int]) -> tuple[int, int] | None:
    """``(stride_c, stride_s)`` of a step laid out in ``order`` when each sample comes
    first and its channels either right after it or innermost; else None. Dims of size 1
    may sit anywhere (their strides are arbitrary)."""
    shape = x_seq.shape
    step = [d - 1 for d in order[1:] if shape[d] > 1]  # the step's dims in memory order
    if shape[1] > 1 and step[0] != 0:
        return None
    spatial = math.prod(shape[3:])
    rest = [d for d in step if d != 0]
    if shape[2] == 1 or rest[0] == 1:  # [B, C, S...]
        return spatial, 1
    if rest[-1] == 1:  # [B, S..., C]
        return 1, shape[2]
    return None


def noisy_lif_applies(cell, x_seq: torch.Tensor) -> bool:
    """Whether ``lif_noise_triton`` runs ``cell`` in training with BIDL's membrane noise:
    a plain ``Lif`` (no norm inside the recurrence) in training with ``noise > 0`` on a
    step ``[B, C, spatial...]`` of at least two positions, in a layout of whole planes
    (channels first or last), float32, a built-in surrogate, soma parameters shared or per
    channel along dim 1, and a state (if any) shaped like one step. The noise draws are
    the kernel's own (Philox), not ``torch.randn``'s: same distribution, other numbers."""
    if torch.compiler.is_compiling() or not triton_available():
        return False
    if not (cell.training and cell.noise > 0) or cell.norm is not None:
        return False
    if x_seq.dtype != torch.float32 or x_seq.dim() < 4 or math.prod(x_seq.shape[3:]) < 2:
        return False
    if cell.soma_params == "channel_share" and cell.channel_dim not in (1, -(x_seq.dim() - 2)):
        return False
    if _noise_planes(x_seq, _dense_order(x_seq)) is None:
        return False
    return _kernel_cell(cell, x_seq)


def noisy_lif_multi_step(cell, x_seq: torch.Tensor) -> torch.Tensor:
    """All ``T`` training steps of ``cell`` (``noisy_lif_applies``) on ``x_seq`` with BIDL's
    membrane noise, one kernel forward and one backward; continues from and leaves
    ``cell.state`` as the reference loop does."""
    from .lif_noise_triton import NoisyLifFunction

    order = _dense_order(x_seq)
    laid_out = x_seq.permute(order)  # contiguous: _noise_planes found a dense order
    steps, batch, channels = x_seq.shape[:3]
    spatial = math.prod(x_seq.shape[3:])
    stride_c, stride_s = _noise_planes(x_seq, order)
    step_order = [d - 1 for d in order[1:]]
    v_init = None
    if cell.state is not None:
        v_init = cell.state["v"].permute(step_order).contiguous().view(-1)
    spike_fn = cell.spike_fn
    output = _SPIKE_OUTPUT if cell.mode == "spike" else cell._memb_index
    per_channel = cell.soma_params == "channel_share"
    layout = (
        batch, channels, spatial, stride_c, stride_s, cell.noise, output,
        _SURROGATE_CODES[type(spike_fn)], float(getattr(spike_fn, spike_fn._param)), per_channel,
    )  # fmt: skip
    params = tuple(getattr(cell, key) for key in _SOMA_NAMES)
    x = laid_out.contiguous().view(steps, -1)
    device = torch.cuda.device(x.device) if x.is_cuda else nullcontext()
    with device:
        out, v_last = NoisyLifFunction.apply(x, v_init, *params, layout)
    return _restore_layout(cell, out, v_last, laid_out.shape, order)


def norm_lif_applies(cell, x_seq: torch.Tensor) -> bool:
    """Whether ``NormLifFunction`` computes what ``cell.step`` looped over time would: a norm
    that is None or exactly ``BatchNorm1d``/``BatchNorm2d``, no training noise, a built-in
    surrogate's Heaviside forward (neither it nor the norm watched by hooks), soma parameters
    without gradient, float32 or float64, and a state (if any) shaped like one step."""
    if torch.compiler.is_compiling():  # compiled: the reference loop fuses
        return False
    if x_seq.dtype not in (torch.float32, torch.float64) or x_seq.dim() < 2 or x_seq.shape[0] == 0:
        return False
    norm = cell.norm
    if norm is not None and type(norm) not in (nn.BatchNorm1d, nn.BatchNorm2d):
        return False
    if norm is not None and any(
        t is not None and t.dtype != x_seq.dtype for t in norm.parameters()
    ):
        return False
    if cell.training and cell.noise > 0:
        return False
    spike_fn = cell.spike_fn
    if (
        not isinstance(spike_fn, SurrogateSpike)
        or type(spike_fn).forward is not SurrogateSpike.forward
    ):
        return False
    if _hooked(spike_fn) or _hooked(norm):
        return False
    if any(getattr(cell, key).requires_grad for key in _SOMA_NAMES):
        return False
    if cell.state is not None:
        v = cell.state.get("v")
        if v is None or v.shape != x_seq.shape[1:] or v.dtype != x_seq.dtype:
            return False
    return True


def bn_lif_applies(cell, x_seq: torch.Tensor) -> bool:
    """Whether the Triton kernels of BIDL's layout apply: a training batch norm (exactly
    ``BatchNorm1d``/``BatchNorm2d``, a momentum) on the membrane of a spiking ``Lif`` that
    starts from its initial state, float32 everywhere, a built-in surrogate, soma
    parameters without gradient, no training noise."""
    if torch.compiler.is_compiling() or not triton_available() or not x_seq.is_cuda:
        return False
    norm = cell.norm
    if type(norm) not in (nn.BatchNorm1d, nn.BatchNorm2d) or not norm.training or _hooked(norm):
        return False
    if norm.momentum is None or (norm.track_running_stats and norm.running_mean is None):
        return False
    tensors = [x_seq, *norm.parameters(), *norm.buffers()]
    if any(t.dtype != torch.float32 for t in tensors if t.is_floating_point()):
        return False
    if cell.mode != "spike" or cell.state is not None or cell.channel_dim != 1 or x_seq.dim() < 3:
        return False
    if cell.training and cell.noise > 0:
        return False
    if type(cell.spike_fn) not in _SURROGATE_CODES:
        return False
    soma = [getattr(cell, key) for key in _SOMA_NAMES]
    return all(p.dtype == torch.float32 and not p.requires_grad for p in soma)


def bn_lif_multi_step(cell, x_seq: torch.Tensor) -> torch.Tensor:
    """All ``T`` training steps of ``cell`` (``bn_lif_applies``) on ``x_seq`` in ``2T + 1``
    kernels forward and backward; the last membrane is left in ``cell.state`` (without
    gradient: a backbone resets its states before each sequence)."""
    from .bn_lif_triton import BnLifFunction

    order = _dense_order(x_seq)
    laid_out = x_seq.permute(order).contiguous()  # a view unless no dense order exists
    sizes = list(laid_out.shape)
    position = order.index(2)  # the channel dim of [T, B, C, ...]
    outer, inner = math.prod(sizes[1:position]), math.prod(sizes[position + 1 :])
    norm = cell.norm
    steps = x_seq.shape[0]
    if norm.track_running_stats and norm.num_batches_tracked is not None:
        norm.num_batches_tracked.add_(steps)  # one batch per step, as the loop counts them
    spike_fn = cell.spike_fn
    setup = (
        (outer, sizes[position], inner),
        norm.running_mean if norm.track_running_stats else None,
        norm.running_var if norm.track_running_stats else None,
        norm.momentum,
        norm.eps,
        tuple(getattr(cell, key).detach().reshape(-1).contiguous() for key in _SOMA_NAMES),
        _SURROGATE_CODES[type(spike_fn)],
        float(getattr(spike_fn, spike_fn._param)),
    )
    device = torch.cuda.device(x_seq.device) if x_seq.is_cuda else nullcontext()
    with device:
        out, v_last = BnLifFunction.apply(laid_out.view(steps, -1), norm.weight, norm.bias, setup)
    step_order = [d - 1 for d in order[1:]]
    step_inverse = sorted(range(len(step_order)), key=step_order.__getitem__)
    cell.state = {"v": v_last.view(sizes[1:]).permute(step_inverse)}
    inverse = sorted(range(len(order)), key=order.__getitem__)
    return out.view(sizes).permute(inverse)


def triton_sequence_batch_norm(bn, x_seq: torch.Tensor, layout) -> torch.Tensor:
    """``sequence_batch_norm`` by its Triton kernels (``sequence_bn_triton``; the caller
    checks that they fit)."""
    from .sequence_bn_triton import sequence_batch_norm_triton

    return sequence_batch_norm_triton(bn, x_seq, layout)


def fused_multi_step(cell, x_seq: torch.Tensor) -> torch.Tensor | None:
    """All steps of ``cell`` (a plain ``Lif``) on ``x_seq`` through the fastest path that
    computes what its reference loop would, or None when none does. Hooks on the spike
    function or the norm send it to the loop, which calls them once per step."""
    if not _ENABLED[0] or _hooked(cell.spike_fn) or _hooked(cell.norm):
        return None
    if x_seq.is_cuda and x_seq.dtype in (torch.bfloat16, torch.float16):
        # mixed precision: the recurrence runs in float32 (the kernels' type; more exact
        # than the loop's half-precision state), its output goes back to the input's type
        out = fused_multi_step(cell, x_seq.float())
        return None if out is None else out.to(x_seq.dtype)
    if x_seq.is_cuda and fused_lif_applies(cell, x_seq):
        return fused_lif_multi_step(cell, x_seq)
    if x_seq.is_cuda and noisy_lif_applies(cell, x_seq):
        return noisy_lif_multi_step(cell, x_seq)
    if bn_lif_applies(cell, x_seq):
        return bn_lif_multi_step(cell, x_seq)
    if norm_lif_applies(cell, x_seq):
        output = _NORM_SPIKE_OUTPUT if cell.mode == "spike" else cell._memb_index
        return norm_lif_multi_step(cell, x_seq, output)
    return None


__all__ = [
    "bn_lif_applies",
    "bn_lif_multi_step",
    "fused_kernels_enabled",
    "fused_lif_applies",
    "fused_lif_multi_step",
    "fused_multi_step",
    "noisy_lif_applies",
    "noisy_lif_multi_step",
    "norm_lif_applies",
    "set_fused_kernels",
    "triton_available",
    "triton_sequence_batch_norm",
]
