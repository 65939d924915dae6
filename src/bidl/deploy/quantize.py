"""int8 step graphs: ONNX Runtime's static quantization of the exported float32 graph.

The convolutions and matrix products (the synaptic layers, nearly all of the arithmetic)
get int8 weights (symmetric, one scale per output channel) and uint8 activations whose
ranges are calibrated (min / max) on real samples run through the float32 step graph, every
timestep of each from the initial states, so the ranges are those the layers see mid-
sequence. Everything else -- the neurons' state updates, the membrane norms, the states
themselves, the aggregator -- stays float32: nothing is quantized that carries over from one
step to the next. The result is a QDQ graph (QuantizeLinear / DequantizeLinear pairs around
each quantized operator) that ONNX Runtime fuses into integer kernels when it loads it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from ..registry import BidlError
from .optional import require
from .step_graph import StepGraph

#: fewer samples than this give ranges that are noise, not the data's
MIN_CALIBRATION_SAMPLES = 8
#: the operators quantized: the synaptic layers (everything stateful stays float32)
QUANTIZED_OPS = ("Conv", "Gemm", "MatMul")


def check_calibration(calibration, graph: StepGraph, where: str = "calibration") -> np.ndarray:
    """``calibration`` as an array ``[N, T, *step input]`` of the graph's input dtype; one
    error naming what is missing, too small or misshapen."""
    if calibration is None:
        raise BidlError(
            f"precision int8 needs calibration samples: pass {where}=[N, T, ...] samples "
            f"(N >= {MIN_CALIBRATION_SAMPLES}), or compile with `bidl compile`, which reads "
            f"them from the config's training split (--calib-samples)"
        )
    if torch.is_tensor(calibration):
        calibration = calibration.detach().cpu().float().numpy()
    array = np.asarray(calibration)
    step_shape = tuple(graph.input_shape[1:])
    if array.ndim != 2 + len(step_shape) or tuple(array.shape[2:]) != step_shape:
        raise BidlError(
            f"{where}: expected samples [N, T, {', '.join(map(str, step_shape))}], got shape "
            f"{list(array.shape)}"
        )
    if array.shape[0] < MIN_CALIBRATION_SAMPLES or array.shape[1] < 1:
        raise BidlError(
            f"{where}: {array.shape[0]} sample(s) of {array.shape[1]} step(s) are too few to "
            f"calibrate int8 ranges; give at least {MIN_CALIBRATION_SAMPLES} samples"
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise BidlError(f"{where}: the samples hold NaN or infinite values")
    return array


def calibration_feeds(graph: StepGraph, samples: np.ndarray, names: list[str]) -> Iterator[dict]:
    """The graph's input of every step of every sample (batches of the graph's size, the
    last one padded by repeating samples), from the float32 step graph run in PyTorch."""
    batch = graph.batch_size
    dtype = graph.example_input().dtype
    for start in range(0, samples.shape[0], batch):
        chunk = samples[start : start + batch]
        if chunk.shape[0] < batch:  # repeat real samples: zeros would narrow no range
            chunk = np.concatenate([chunk, samples[: batch - chunk.shape[0]]])
        xs = torch.from_numpy(np.ascontiguousarray(chunk)).to(dtype)
        states = graph.initial_states()
        with torch.no_grad():
            for x_t in xs.transpose(0, 1):
                yield dict(zip(names, (t.numpy() for t in (x_t, *states)), strict=True))
                _, *states = graph(x_t, *states)


@contextlib.contextmanager
def _quiet_root_logger():
    """The quantizer advises its users through the root logger; keep that out of reports."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_step_graph(
    graph: StepGraph, fp32_onnx: Path, out: Path, samples: np.ndarray, names: list[str]
) -> None:
    """Write ``out``: ``fp32_onnx`` (the export of ``graph``) quantized to int8, its ranges
    calibrated on ``samples`` ``[N, T, ...]``; ``names`` are the graph's input names."""
    q = require("onnxruntime.quantization", "int8 quantization")

    class Reader(q.CalibrationDataReader):
        def __init__(self):
            self.feeds = calibration_feeds(graph, samples, names)

        def get_next(self):
            return next(self.feeds, None)

        def rewind(self):
            self.feeds = calibration_feeds(graph, samples, names)

    prepared = fp32_onnx.with_name(fp32_onnx.stem + ".prepared.onnx")
    try:
        with _quiet_root_logger():
            # shape inference and ONNX Runtime's graph optimisation (batch norms folded into
            # the convolutions before them) first, so that the folded weights are quantized
            shape_inference = require("onnxruntime.quantization.shape_inference", "int8")
            shape_inference.quant_pre_process(
                str(fp32_onnx), str(prepared), skip_symbolic_shape=True
            )
            q.quantize_static(
                str(prepared),
                str(out),
                Reader(),
                quant_format=q.QuantFormat.QDQ,
                op_types_to_quantize=list(QUANTIZED_OPS),
                per_channel=True,
                activation_type=q.QuantType.QUInt8,
                weight_type=q.QuantType.QInt8,
                calibrate_method=q.CalibrationMethod.MinMax,
                extra_options={"WeightSymmetric": True},
            )
    except Exception as err:
        raise BidlError(
            f"int8 quantization of the step graph failed: {type(err).__name__}: {err}"
        ) from err


__all__ = [
    "MIN_CALIBRATION_SAMPLES",
    "QUANTIZED_OPS",
    "calibration_feeds",
    "check_calibration",
    "quantize_step_graph",
]
