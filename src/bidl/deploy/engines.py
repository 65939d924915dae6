"""Inference engines the runtime drives: ONNX Runtime sessions and AOTInductor packages.

An engine runs one step ``(x_t, *states) -> (y_t, *new_states)`` and keeps tensors on its
device between steps: ``upload`` moves a host sequence there once, ``initial_states`` are
device buffers filled from the manifest, and only the output is brought back (``fetch``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..registry import BidlError
from .artifact import ArtifactError
from .compile import require

NUMPY_DTYPES = {"float32": np.float32, "float16": np.float16, "uint8": np.uint8, "int64": np.int64}


def _initial_arrays(manifest: dict) -> list[np.ndarray]:
    return [
        np.full(s["shape"], s["init"], dtype=NUMPY_DTYPES[s["dtype"]]) for s in manifest["states"]
    ]


class OnnxEngine:
    """An ONNX Runtime session driven through IOBinding, so states stay on the device.

    ``device`` 'cpu' uses the CPU provider; 'cuda:N' uses TensorRT or CUDA where this
    onnxruntime build has them (``onnxruntime-gpu``).
    """

    def __init__(self, path: Path, manifest: dict, device: torch.device):
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

    def describe(self) -> str:
        return f"ONNX Runtime {self.ort.__version__}, providers {', '.join(self.providers)}"


class AotiEngine:
    """An AOTInductor package (compiled kernels for the device it was compiled for).

    A ``.pt2`` package holds native code: load only artifacts you compiled or trust.
    """

    def __init__(self, path: Path, manifest: dict, device: torch.device):
        compiled_for = torch.device(manifest.get("device") or "cpu")
        if compiled_for.type != device.type:
            raise BidlError(
                f"{path} was compiled for {compiled_for}; it cannot run on {device}. "
                f"Recompile with --backend aoti --device {device}."
            )
        if device.type == "cuda" and not torch.cuda.is_available():
            raise BidlError(f"device {device}: this machine has no CUDA device")
        self.device = device
        try:
            index = (device.index or 0) if device.type == "cuda" else -1
            self.model = torch._inductor.aoti_load_package(str(path), device_index=index)
        except Exception as err:
            raise ArtifactError(
                f"{path}: cannot load the AOTInductor package ({type(err).__name__}: {err}); "
                f"it is damaged or from another torch version. Recompile the artifact."
            ) from None
        self._initial = [torch.from_numpy(a).to(device) for a in _initial_arrays(manifest)]

    def initial_states(self) -> list:
        return list(self._initial)

    def upload(self, batch: np.ndarray) -> list:
        """A host batch ``[B, T, ...]`` as device tensors, one per step (made time-major on
        the device, where the copy is cheap)."""
        tensor = torch.from_numpy(batch).to(self.device)
        return list(tensor.transpose(0, 1).contiguous().unbind(0))

    def step(self, x_t, states: list) -> tuple[object, list]:
        with torch.no_grad():
            y_t, *new_states = self.model(x_t, *states)
        return y_t, new_states

    def fetch(self, y_t) -> np.ndarray:
        return y_t.detach().cpu().numpy()

    def describe(self) -> str:
        return f"AOTInductor package (torch {torch.__version__}) on {self.device}"


ENGINES = {"onnxruntime": OnnxEngine, "aoti": AotiEngine}
