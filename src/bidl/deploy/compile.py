"""Compile a trained network into an artifact: the step graph exported to ONNX (run by ONNX
Runtime) or to an AOTInductor ``.pt2`` package (torch.export + PyTorch's own compiler).

BIDL's counterpart is Lyngor's ``build``; ``--use_legacy 1`` reuses an earlier artifact
only when the hashes of config and weights still match.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import logging
import os
import platform
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..registry import BidlError
from .artifact import (
    BACKENDS,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    ArtifactError,
    artifact_file,
    check_finite_weights,
    describe_manifest,
    read_manifest,
    verify_files,
    weights_hash,
    write_artifact,
)
from .head_graph import is_detector, plan_head, sample_features, write_head
from .optional import require
from .precision import check_precision
from .quantize import QUANTIZED_OPS, check_calibration, quantize_step_graph
from .runtime import Runtime
from .step_graph import COMPILE_DTYPES, StepGraph

OUTPUT_NAME = "y"
INPUT_NAME = "x"


def check_options(
    backend: str, input_dtype: str, batch_size: int, device: str, precision: str = "fp32"
) -> None:
    if backend not in BACKENDS:
        raise BidlError(f"unknown backend {backend!r}; use one of {', '.join(BACKENDS)}")
    if input_dtype not in COMPILE_DTYPES:
        raise BidlError(
            f"unknown input dtype {input_dtype!r}; use one of {', '.join(COMPILE_DTYPES)}"
        )
    check_precision(precision, backend, input_dtype)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise BidlError(f"batch size must be a positive int, got {batch_size!r}")
    if torch.device(device).type == "cuda" and not torch.cuda.is_available():
        raise BidlError(f"device {device!r}: this machine has no CUDA device; use cpu")
    if backend == "onnxruntime" and torch.device(device).type != "cpu":
        raise BidlError(
            "the onnxruntime backend compiles on cpu (the graph is device independent; pick "
            "the device when you run it); drop --device, or use --backend aoti for a CUDA package"
        )


def _versions() -> dict:
    versions = {
        "bidl": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    for name in ("onnx", "onnxruntime"):
        with contextlib.suppress(ImportError):
            versions[name] = importlib.import_module(name).__version__
    return versions


@contextlib.contextmanager
def _quiet():
    """The exporters print progress and warnings meant for their developers; keep them out."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _onnx_input_names(graph: StepGraph) -> list[str]:
    return [INPUT_NAME, *(spec.name for spec in graph.states)]


def _export_onnx(graph: StepGraph, path: Path, calibration=None) -> None:
    """The step graph as ONNX at ``path``; with ``calibration`` samples, quantized to int8
    (the float32 export goes to a scratch folder first)."""
    if calibration is not None:
        with tempfile.TemporaryDirectory(prefix="bidl-fp32-") as scratch:
            fp32 = Path(scratch) / "step.fp32.onnx"
            _export_onnx(graph, fp32)
            quantize_step_graph(graph, fp32, path, calibration, _onnx_input_names(graph))
        return
    require("onnxscript", "ONNX export")
    require("onnx", "ONNX export")
    names = [spec.name for spec in graph.states]
    example = (graph.example_input(), *graph.initial_states())
    try:
        with _quiet(), torch.no_grad():
            torch.onnx.export(
                graph,
                example,
                str(path),
                dynamo=True,
                input_names=[INPUT_NAME, *names],
                output_names=[OUTPUT_NAME, *(f"new.{n}" for n in names)],
                external_data=False,
                verbose=False,
                # ONNX Runtime optimises the graph when it loads it; this pass only costs time
                optimize=False,
            )
    except Exception as err:
        raise BidlError(
            f"ONNX export of the step graph failed: {type(err).__name__}: {err}"
        ) from err


def _aoti_configs() -> dict:
    """Inductor options that cut compile time: the wrapper is glue code (optimising it
    gains nothing), and precompiled headers pay off only over many compiles (building them
    tripled a single package's compile time). Options a torch lacks are left out."""
    wanted = {
        "aot_inductor.compile_wrapper_opt_level": "O0",
        "aot_inductor.precompile_headers": False,
    }
    known = torch._inductor.config.get_config_copy()
    return {key: value for key, value in wanted.items() if key in known}


def _export_aoti(graph: StepGraph, path: Path, device: str) -> None:
    graph = graph.to(device)
    example = (graph.example_input().to(device), *graph.initial_states(device))
    try:
        with _quiet(), torch.no_grad():
            program = torch.export.export(graph, example)
            torch._inductor.aoti_compile_and_package(
                program, package_path=str(path), inductor_configs=_aoti_configs()
            )
    except Exception as err:
        raise BidlError(f"AOTInductor compile failed: {type(err).__name__}: {err}") from err


def build_manifest(graph: StepGraph, backend: str, device: str, timesteps: int) -> dict:
    """The manifest of ``graph`` without files and hashes (those are added when written)."""
    # a mixed-precision graph hands on float32 (only the legacy float16 graph is half)
    half = graph.compute_dtype == torch.float16 and not graph.mixed
    out_dtype = "float16" if half else "float32"
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "backend": backend,
        "graph": BACKENDS[backend],
        "device": str(torch.device(device)) if backend == "aoti" else None,
        "batch_size": graph.batch_size,
        "timesteps": int(timesteps),
        "precision": graph.precision,
        "input": {
            "name": INPUT_NAME,
            "shape": list(graph.input_shape),
            "dtype": graph.input_dtype,
            "scale": graph.input_scale,
        },
        "output": {"name": OUTPUT_NAME, "shape": list(graph.output_shape), "dtype": out_dtype},
        "states": [spec.as_dict() for spec in graph.states],
        "aggregation": (
            str(getattr(graph.backbone.aggregate, "mode", "custom")) if graph.is_last else "none"
        ),
        "files": {},
        "hashes": {},
        "versions": _versions(),
    }
    split = getattr(graph.backbone, "split", None)
    if split is not None:
        manifest["segment"] = {"split": list(split), "first": graph.is_first, "last": graph.is_last}
    return manifest


def compile_model(
    model: torch.nn.Module,
    out: str | os.PathLike,
    *,
    backend: str = "onnxruntime",
    batch_size: int = 1,
    input_dtype: str = "float32",
    input_scale: float = 1.0,
    device: str = "cpu",
    hashes: dict | None = None,
    source: dict | None = None,
    model_config: dict | None = None,
    precision: str = "fp32",
    calibration=None,
) -> Path:
    """Export ``model``'s step graph into the artifact folder ``out`` (replaced atomically).

    ``hashes`` (config and weights) and ``source`` (config and checkpoint names) go into
    ``net_params.json``; without ``hashes`` the weights are hashed from ``model``.
    The 'torch' backend stores the weights and ``model_config`` (the config dict that
    builds ``model``), from which the runtime rebuilds it through the registry.
    ``precision``: 'fp32', 'fp16' / 'bf16' (half-precision synaptic layers, float32 cells
    and states), 'int8' (ONNX only: quantized, its ranges calibrated on ``calibration``,
    samples ``[N, T, ...]``; see ``precision.py`` and ``quantize.py``).
    """
    check_options(backend, input_dtype, batch_size, device, precision)
    if backend == "onnxruntime":
        require("onnxruntime", "the onnxruntime backend")
    if backend == "torch" and not isinstance(model_config, dict):
        raise BidlError(
            "the torch backend rebuilds the model from its config: pass model_config=(the "
            "config dict that builds this model), or compile with `bidl compile`"
        )
    check_finite_weights(model)  # NaN weights export fine and then read as silence
    graph = StepGraph(model, batch_size, input_dtype, input_scale, precision).eval()
    samples = check_calibration(calibration, graph) if precision == "int8" else None
    backbone = graph.backbone
    manifest = build_manifest(graph, backend, device, backbone.timestep)
    if samples is not None:
        manifest["calibration"] = {
            "samples": int(samples.shape[0]),
            "method": "minmax",
            "quantized": list(QUANTIZED_OPS),
        }
    manifest["hashes"] = dict(hashes or {"weights": weights_hash(model)})
    manifest["source"] = dict(source or {})
    if backend == "torch":
        manifest["model"] = json.loads(json.dumps(model_config, default=list))
    detector = is_detector(model) and graph.is_last  # its neck and head: a graph of their own
    if detector:
        manifest["head"] = plan_head(model, batch_size, graph.output_shape[-1], backend)

    def write_graph(folder: Path) -> None:
        path = artifact_file(folder, manifest["graph"])
        if backend == "onnxruntime":
            _export_onnx(graph, path, samples)
        elif backend == "torch":
            state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
            torch.save(state, path)
        else:
            _export_aoti(graph, path, device)
        if detector:
            features = sample_features(graph)
            write_head(model, folder, manifest, device, features, _quiet, _aoti_configs())

    summary = (
        f"bidl step graph of {type(backbone).__name__}\n\n{describe_manifest(manifest)}\n\n"
        f"model:\n{graph.model}\n"
    )
    return write_artifact(out, write_graph, manifest, summary, check=check_staged)


def check_staged(tmp: Path, target: Path) -> None:
    """The staged artifact must open and run one step of zeros to finite outputs before
    it may replace anything at ``target``; an error keeps the old artifact."""
    try:
        manifest = read_manifest(tmp)
        verify_files(tmp, manifest)
        runtime = Runtime(tmp)
        zeros = np.zeros((runtime.batch_size, 1, *runtime.step_shape), dtype=np.float32)
        output = runtime.run(zeros)
    except BidlError as err:
        raise ArtifactError(
            f"the artifact compiled for {str(target)!r} does not open: "
            f"{str(err).replace(str(tmp), str(target))}. Nothing was replaced."
        ) from None
    if not np.isfinite(np.asarray(output, dtype=np.float64)).all():
        raise ArtifactError(
            f"the artifact compiled for {str(target)!r} gives non-finite outputs for an input "
            f"of zeros (NaN or inf weights?); nothing was replaced. Check the checkpoint."
        )


__all__ = ["INPUT_NAME", "MANIFEST", "OUTPUT_NAME", "build_manifest", "compile_model", "require"]
