"""Precisions of a compiled step graph and which engine runs each.

- ``fp32``: everything in float32.
- ``fp16`` / ``bf16``: mixed precision. The synaptic layers (convolutions, linear maps,
  the norms and pools between them) run in half precision; every stateful cell (the
  neurons with their membrane norms) and the temporal aggregator run in float32 on
  float32 states, so rounding does not pile up in the membrane over the timesteps. A
  cell's input current is widened to float32 as it enters the cell and its output (spikes,
  0 or 1, exact in either format) narrowed again. The graph takes and returns float32.
  The float32 parts hold the trained values bit for bit: only the synaptic layers' weights
  are rounded (once), never the neurons' leak, threshold or membrane norm.
- ``int8``: the float32 graph, its convolutions and matrix products quantized to int8
  after export by ONNX Runtime's static quantization (``quantize.py``); states in float32.

``--input-dtype float16`` (older than ``precision``) still runs the whole graph, states
and boundary included, in float16; its artifacts record the precision ``fp16``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import BidlError

PRECISIONS = ("fp32", "fp16", "bf16", "int8")
#: the dtype the synaptic layers compute in
COMPUTE_DTYPES = {
    "fp32": torch.float32,
    "fp16": torch.float16,
    "bf16": torch.bfloat16,
    "int8": torch.float32,  # quantized after export
}
#: backend -> the precisions its engine runs (ONNX has no bfloat16 convolution in ONNX
#: Runtime's CPU provider; int8 is ONNX Runtime's quantizer, for ONNX graphs only)
ENGINE_PRECISIONS = {
    "onnxruntime": ("fp32", "fp16", "int8"),
    "aoti": ("fp32", "fp16", "bf16"),
    "torch": ("fp32", "fp16", "bf16"),
}


def check_precision(precision: object, backend: str | None, input_dtype: str = "float32") -> None:
    """One error for a precision that is unknown, that ``backend``'s engine does not run
    (None: any engine), or that contradicts ``input_dtype``."""
    if precision not in PRECISIONS:
        raise BidlError(f"unknown precision {precision!r}; use one of {', '.join(PRECISIONS)}")
    runs = ENGINE_PRECISIONS.get(backend)
    if runs is not None and precision not in runs:
        others = [b for b, p in ENGINE_PRECISIONS.items() if precision in p]
        raise BidlError(
            f"the {backend} backend cannot run precision {precision}: it runs "
            f"{', '.join(runs)}. Compile {precision} with --backend {' or '.join(others)}."
        )
    if input_dtype == "float16" and precision not in ("fp32", "fp16"):
        raise BidlError(
            f"--input-dtype float16 runs the whole graph in float16, which contradicts "
            f"--precision {precision}; drop --input-dtype (float32 input) to compile {precision}"
        )


def resolved_precision(precision: str, input_dtype: str) -> str:
    """The precision an artifact records: float16 input means an fp16 graph."""
    return "fp16" if input_dtype == "float16" else precision


def is_mixed(precision: str, input_dtype: str) -> bool:
    """Whether the graph runs its synaptic layers in half precision around float32 cells."""
    return precision in ("fp16", "bf16") and input_dtype != "float16"


def _widen(_cell: nn.Module, args: tuple) -> tuple:
    x, *rest = args
    return (x.float(), *rest) if torch.is_tensor(x) and x.is_floating_point() else args


def _narrower(dtype: torch.dtype):
    def narrow(_cell: nn.Module, _args: tuple, out):
        if torch.is_tensor(out) and out.is_floating_point():
            return out.to(dtype)
        return out

    return narrow


def narrow_except(model: nn.Module, dtype: torch.dtype, kept: list[nn.Module]) -> None:
    """Cast the floating-point parameters and buffers of ``model`` to ``dtype``, except
    those owned by a module in ``kept``, which are never touched. (Casting the whole model
    and then the kept modules back to float32 would round their values through ``dtype``:
    bf16 moved every neuron's leak 0.3 to 0.30078 and its membrane norm by ~0.3 %.)"""
    keep = {id(m) for m in kept}
    for module in model.modules():
        if id(module) in keep:
            continue
        for param in module.parameters(recurse=False):
            if param.is_floating_point():
                param.data = param.data.to(dtype)
        for name, buffer in list(module.named_buffers(recurse=False)):
            if buffer is not None and buffer.is_floating_point():
                setattr(module, name, buffer.to(dtype))


def apply_mixed_precision(
    model: nn.Module, cells: list[nn.Module], float_modules: list[nn.Module], dtype: torch.dtype
) -> None:
    """Cast ``model`` to ``dtype`` but keep ``cells`` and ``float_modules`` (aggregator,
    neck) in float32; each cell widens its input and narrows its output (forward hooks,
    so that every caller of the cell, traced or eager, gets the casts)."""
    kept = [
        m for module in [*cells, *float_modules] if module is not None for m in module.modules()
    ]
    narrow_except(model, dtype, kept)
    for module in kept:
        module.float()  # float32 even where the trained model held another float dtype
    inner = {id(m) for cell in cells for m in cell.modules() if m is not cell}
    for cell in cells:
        if id(cell) in inner:  # a cell inside another: the outer one casts
            continue
        cell.register_forward_pre_hook(_widen)
        cell.register_forward_hook(_narrower(dtype))


__all__ = [
    "COMPUTE_DTYPES",
    "ENGINE_PRECISIONS",
    "PRECISIONS",
    "apply_mixed_precision",
    "check_precision",
    "is_mixed",
    "narrow_except",
    "resolved_precision",
]
