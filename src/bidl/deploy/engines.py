"""Inference engines the runtime drives: ONNX Runtime sessions and AOTInductor packages.

An engine runs one step ``(x_t, *states) -> (y_t, *new_states)`` and keeps tensors on its
device between steps: ``upload`` moves a host sequence there once, ``initial_states`` are
device buffers filled from the manifest, and only the output is brought back (``fetch``).
On a CUDA device the ``torch`` engine replays each step from a CUDA graph
(``cuda_graph.py``; ``BIDL_CUDA_GRAPHS=0`` turns that off): the output of a step is then
valid until the next step of the same engine. ``BIDL_TORCH_COMPILE=1`` also compiles its
step with ``torch.compile`` (fused kernels; minutes to open a large network). An
AOTInductor package launches its compiled kernels from its own C++ runner, which cannot be
captured (it fails with "operation not permitted when stream is capturing").

A whole sample (``Runtime.run``) on CUDA runs, in the ``torch`` engine, as one call of the
network's multi-step form (``sequence_graph.py``) where that computes what the steps
compute, replayed from one CUDA graph per sample length: T times fewer, larger kernels
than stepping. ``BIDL_SAMPLE_GRAPH=0`` steps instead; ``=1`` uses it on the CPU too.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..models import build_classifier
from ..registry import BidlError
from .artifact import ArtifactError, artifact_file, read_manifest, verify_files
from .cuda_graph import CudaGraphSample, CudaGraphStep, try_capture
from .optional import require
from .sequence_graph import SequenceGraph, sequence_form_difference
from .step_graph import StepGraph

NUMPY_DTYPES = {"float32": np.float32, "float16": np.float16, "uint8": np.uint8, "int64": np.int64}


def _initial_arrays(manifest: dict) -> list[np.ndarray]:
    return [
        np.full(s["shape"], s["init"], dtype=NUMPY_DTYPES[s["dtype"]]) for s in manifest["states"]
    ]


def _check_graph_inputs(path: Path, session, manifest: dict) -> None:
    """The graph's inputs are the manifest's input and states, with their shapes (a
    manifest edited after compiling would otherwise fail inside ONNX Runtime's run)."""
    declared = {manifest["input"]["name"]: manifest["input"]["shape"]}
    declared.update({s["name"]: s["shape"] for s in manifest["states"]})
    graph = {i.name: i.shape for i in session.get_inputs()}
    if set(graph) != set(declared):
        raise ArtifactError(
            f"{path}: the graph's inputs {sorted(graph)} are not the manifest's input and "
            f"states {sorted(declared)}; the manifest was edited. Recompile the artifact."
        )
    for name, shape in graph.items():
        fixed = all(isinstance(d, int) for d in shape)
        if fixed and list(shape) != list(declared[name]):
            raise ArtifactError(
                f"{path}: the graph takes {name!r} of shape {list(shape)}, the manifest says "
                f"{declared[name]}; the manifest was edited. Recompile the artifact."
            )


class OnnxEngine:
    """An ONNX Runtime session driven through IOBinding, so states stay on the device.

    ``device`` 'cpu' uses the CPU provider; 'cuda:N' uses TensorRT or CUDA where this
    onnxruntime build has them (``onnxruntime-gpu``).
    """

    def __init__(
        self, path: Path, manifest: dict, device: torch.device, threads: int | None = None
    ):
        ort = require("onnxruntime", "the onnxruntime backend")
        self.ort = ort
        available = ort.get_available_providers()
        if device.type == "cpu":
            providers = ["CPUExecutionProvider"]
            self.ort_device, self.device_id = "cpu", 0
        elif device.type == "cuda":
            index = device.index or 0
            gpu = [
                p for p in ("TensorrtExecutionProvider", "CUDAExecutionProvider") if p in available
            ]
            if not gpu:
                raise BidlError(
                    f"device {device}: this onnxruntime has no CUDA provider (it has "
                    f"{', '.join(available)}); install onnxruntime-gpu, run on cpu, or compile "
                    f"with --backend aoti --device {device} for a CUDA package"
                )
            providers = [(p, {"device_id": index}) for p in gpu] + ["CPUExecutionProvider"]
            self.ort_device, self.device_id = "cuda", index
        else:
            raise BidlError(f"device {device}: use 'cpu' or 'cuda:N'")
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only: fp16 graphs log cast insertions
        if threads:  # several engines share a machine's cores (one process per grid device)
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as err:
            raise ArtifactError(
                f"{path}: ONNX Runtime cannot load it ({type(err).__name__}: {err}); the file "
                f"is damaged or from an incompatible version. Recompile the artifact."
            ) from None
        self.providers = self.session.get_providers()
        self.input_name = manifest["input"]["name"]
        self.state_names = [s["name"] for s in manifest["states"]]
        _check_graph_inputs(path, self.session, manifest)
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._initial = [self._to_device(a) for a in _initial_arrays(manifest)]

    def _to_device(self, array: np.ndarray):
        return self.ort.OrtValue.ortvalue_from_numpy(
            np.ascontiguousarray(array), self.ort_device, self.device_id
        )

    def initial_states(self) -> list:
        return list(self._initial)  # never written: every step's outputs are new buffers

    def upload(self, batch: np.ndarray) -> list:
        """A host batch ``[B, T, ...]`` as device values, one per step."""
        return [self._to_device(batch[:, t]) for t in range(batch.shape[1])]

    def step(self, x_t, states: list) -> tuple[object, list]:
        binding = self.session.io_binding()
        binding.bind_ortvalue_input(self.input_name, x_t)
        for name, value in zip(self.state_names, states, strict=True):
            binding.bind_ortvalue_input(name, value)
        for name in self.output_names:
            binding.bind_output(name, self.ort_device, self.device_id)
        self.session.run_with_iobinding(binding)
        y_t, *new_states = binding.get_outputs()
        return y_t, new_states

    def fetch(self, y_t) -> np.ndarray:
        return y_t.numpy()

    def to_torch(self, value) -> torch.Tensor:
        """A value of this engine as a host tensor (what gloo sends between processes)."""
        return torch.from_numpy(value.numpy())

    def from_torch(self, tensor: torch.Tensor):
        return self._to_device(tensor.detach().cpu().numpy())

    def describe(self) -> str:
        return f"ONNX Runtime {self.ort.__version__}, providers {', '.join(self.providers)}"


def _switch(name: str, default: str) -> bool:
    return os.environ.get(name, default).strip().lower() not in ("", "0", "false", "no")


def cuda_graphs_enabled() -> bool:
    """Whether CUDA engines capture their step in a CUDA graph (``BIDL_CUDA_GRAPHS=0``: no)."""
    return _switch("BIDL_CUDA_GRAPHS", "1")


def sample_graph_enabled(device: torch.device) -> bool:
    """Whether the torch engine runs whole samples in multi-step form on ``device``
    (``BIDL_SAMPLE_GRAPH``: 'auto', the default, on CUDA; '1' everywhere; '0' never)."""
    setting = os.environ.get("BIDL_SAMPLE_GRAPH", "auto").strip().lower()
    if setting == "auto":
        return device.type == "cuda"
    return setting not in ("", "0", "false", "no")


def torch_compile_enabled() -> bool:
    """Whether the torch engine compiles its step on CUDA (``BIDL_TORCH_COMPILE=1``: yes)."""
    return _switch("BIDL_TORCH_COMPILE", "0")


class _TensorEngine:
    """What engines whose values are torch tensors on ``self.device`` share: on a CUDA
    device the step is captured in a CUDA graph where it can be (else run eagerly)."""

    device: torch.device
    _graphed = None
    launches = "eager"  # how the step's kernels are launched, for describe()

    def _capture(self, fn, example: torch.Tensor, initial: list) -> None:
        if self.device.type != "cuda" or not cuda_graphs_enabled():
            return
        self._graphed, why = try_capture(
            lambda: CudaGraphStep(fn, example, initial, self.device), self.device
        )
        self.launches = (
            "one CUDA graph per step"
            if self._graphed is not None
            else f"eager (the step cannot be captured in a CUDA graph: {why})"
        )

    def upload(self, batch: np.ndarray) -> list:
        """A host batch ``[B, T, ...]`` as device tensors, one per step (made time-major on
        the device, where the copy is cheap)."""
        batch = np.require(batch, requirements=["C", "W"])  # a read-only memmap is copied
        tensor = torch.from_numpy(batch).to(self.device)
        return list(tensor.transpose(0, 1).contiguous().unbind(0))

    def fetch(self, y_t) -> np.ndarray:
        return y_t.detach().cpu().numpy()

    def to_torch(self, value) -> torch.Tensor:
        return value

    def from_torch(self, tensor: torch.Tensor):
        return tensor.to(self.device, non_blocking=True)


class AotiEngine(_TensorEngine):
    """An AOTInductor package (compiled kernels for the device it was compiled for).

    A ``.pt2`` package holds native code: load only artifacts you compiled or trust.
    """

    def __init__(
        self, path: Path, manifest: dict, device: torch.device, threads: int | None = None
    ):
        compiled_for = torch.device(manifest.get("device") or "cpu")
        if compiled_for.type != device.type:
            raise BidlError(
                f"{path} was compiled for {compiled_for}; it cannot run on {device}. "
                f"Recompile with --backend aoti --device {device}."
            )
        if device.type == "cuda" and not torch.cuda.is_available():
            raise BidlError(f"device {device}: this machine has no CUDA device")
        self.device = device
        if device.type == "cuda":
            # a process that did not compile the package segfaults in the loader (seen on
            # H100s, torch 2.11, any package size, with this too); the context made current
            # first is what a loader needs in any case
            torch.cuda.set_device(device)
            torch.empty(1, device=device)
        try:
            index = (device.index or 0) if device.type == "cuda" else -1
            self.model = torch._inductor.aoti_load_package(str(path), device_index=index)
        except Exception as err:
            raise ArtifactError(
                f"{path}: cannot load the AOTInductor package ({type(err).__name__}: {err}); "
                f"it is damaged or from another torch version. Recompile the artifact."
            ) from None
        self._initial = [torch.from_numpy(a).to(device) for a in _initial_arrays(manifest)]
        if device.type == "cuda":
            self.launches = "its C++ runner's (AOTInductor's runner cannot be captured)"

    def initial_states(self) -> list:
        return list(self._initial)

    def step(self, x_t, states: list) -> tuple[object, list]:
        with torch.no_grad():
            y_t, *new_states = self.model(x_t, *states)
        return y_t, new_states

    def describe(self) -> str:
        return (
            f"AOTInductor package (torch {torch.__version__}; launches: {self.launches}) "
            f"on {self.device}"
        )


def rebuild_module(path: Path, manifest: dict, wrap=lambda model: model, what="model"):
    """``wrap(the manifest's model config built through the registry)`` with the weights
    of ``path`` loaded (``weights_only=True``): a 'torch' artifact holds data only."""
    config = manifest.get("model")
    if not isinstance(config, dict) or not isinstance(config.get("type"), str):
        raise ArtifactError(
            f"{path.parent}: a torch artifact needs the model's config ('model' in its "
            f"manifest); recompile the artifact"
        )
    try:
        module = wrap(build_classifier(config))
        module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except BidlError as err:
        raise ArtifactError(f"{path.parent}: cannot rebuild its {what}: {err}") from None
    except Exception as err:
        raise ArtifactError(
            f"{path}: cannot load the weights of its {what} ({type(err).__name__}: {err}); "
            f"the file is damaged or does not fit the model config. Recompile the artifact."
        ) from None
    return module


class TorchEngine(_TensorEngine):
    """The step graph run by PyTorch itself, on any device: the model is rebuilt from the
    manifest's config through the registry and the weights are loaded with
    ``weights_only=True``, so the artifact holds data only (no code, nothing compiled)."""

    def __init__(
        self,
        path: Path,
        manifest: dict,
        device: torch.device,
        threads: int | None = None,
        compile: bool | None = None,
    ):
        if device.type == "cuda" and not torch.cuda.is_available():
            raise BidlError(f"device {device}: this machine has no CUDA device")
        model = rebuild_module(path, manifest)
        inp = manifest["input"]
        dtype = "float32" if inp["dtype"] == "int64" else inp["dtype"]  # token ids stay int64
        precision = manifest.get("precision", "fp32")
        if dtype == "float16":
            precision = "fp32"  # the legacy all-float16 graph: the input dtype says it
        self.graph = StepGraph(
            model, int(manifest["batch_size"]), dtype, inp.get("scale", 1.0), precision
        )
        self.graph = self.graph.to(device).eval()
        built = [[s.name, list(s.shape)] for s in self.graph.states]
        if built != [[s["name"], s["shape"]] for s in manifest["states"]]:
            raise ArtifactError(
                f"{path.parent}: the rebuilt model's states differ from the manifest's; the "
                f"artifact was made by another bidl version. Recompile it."
            )
        self.device = device
        self._initial = self.graph.initial_states(device)  # never written: steps are pure
        self._run = self.graph
        wanted = torch_compile_enabled() if compile is None else compile
        if device.type == "cuda" and wanted:
            # compiled by the first call (the capture's warm-up where graphs are on)
            self._run = torch.compile(self.graph, dynamic=False)
        self._capture(self._run, self.graph.example_input(), self._initial)
        if self._run is not self.graph:
            self.launches += ", torch.compile"
        self._sample_form(device)

    #: sample lengths whose captured graphs are kept (each holds its activations' memory)
    MAX_SAMPLE_GRAPHS = 4

    def _sample_form(self, device: torch.device) -> None:
        self._sequence = None
        self._samples: dict[int, CudaGraphSample | None] = {}
        if not sample_graph_enabled(device):
            self.samples_run = "step by step"
            return
        why = sequence_form_difference(self.graph)
        if why is not None:
            self.samples_run = f"step by step (no multi-step form: {why})"
            return
        self._sequence = SequenceGraph(self.graph)
        self._sequence_run = self._sequence
        if self._run is not self.graph:
            self._sequence_run = torch.compile(self._sequence, dynamic=False)
        self.samples_run = "whole, in multi-step form"
        if device.type == "cuda" and cuda_graphs_enabled():
            self.samples_run += " (one CUDA graph per sample length)"

    def run_sample(self, steps: list) -> torch.Tensor | None:
        """The output after the last of ``steps`` (one sample batch, from the initial
        states) in one call of the multi-step form; None where the engine steps instead.
        The tensor is overwritten by the next call."""
        if self._sequence is None:
            return None
        graphed = None
        if self.device.type == "cuda" and cuda_graphs_enabled():
            graphed = self._sample_graph(len(steps))
        if graphed is not None:
            return graphed.run(steps)
        with torch.inference_mode():
            return self._sequence_run(torch.stack(steps, dim=1))

    def _sample_graph(self, timesteps: int) -> CudaGraphSample | None:
        if timesteps not in self._samples:
            if len(self._samples) >= self.MAX_SAMPLE_GRAPHS:
                self._samples.pop(next(iter(self._samples)))  # the oldest length
            example = self._sequence.example_input(timesteps)
            graphed, why = try_capture(
                lambda: CudaGraphSample(self._sequence_run, example, self.device), self.device
            )
            if why is not None:
                self.samples_run = f"whole, in multi-step form (not captured: {why})"
            self._samples[timesteps] = graphed
        return self._samples[timesteps]

    def initial_states(self) -> list:
        return list(self._initial)

    def step(self, x_t, states: list) -> tuple[object, list]:
        if self._graphed is not None:
            return self._graphed.step(x_t, states)
        with torch.inference_mode():
            y_t, *new_states = self._run(x_t, *states)
        return y_t, new_states

    def describe(self) -> str:
        return (
            f"PyTorch {torch.__version__} (step graph in {self.graph.precision}; launches: "
            f"{self.launches}; samples run {self.samples_run}) on {self.device}"
        )


ENGINES = {"onnxruntime": OnnxEngine, "aoti": AotiEngine, "torch": TorchEngine}


def open_engine(folder: Path, device: torch.device, threads: int | None = None):
    """(engine, manifest) of the step-graph artifact ``folder`` on ``device``; the
    manifest and every file's hash are checked first."""

    manifest = read_manifest(folder)
    verify_files(folder, manifest)
    path = artifact_file(folder, manifest["graph"])
    return ENGINES[manifest["backend"]](path, manifest, device, threads=threads), manifest
