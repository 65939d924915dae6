"""A detector's neck and head as a graph of their own, beside its step graph.

The step graph ends with the spiking part's features ``[B, F]`` (the last step's three
maps, flattened); the head graph takes them to every anchor's decoded box (cx, cy, w, h),
objectness and class probabilities ``[B, A, 5 + K]`` (``Detector.scores_from_features``).
It runs once per window, in float32 whatever the step graph's precision. Thresholds,
corner boxes and class-wise NMS stay in PyTorch after it (``yolox_head.postprocess``).

Each backend stores it the way it stores the step graph: ONNX (``head.onnx``), an
AOTInductor package (``head.pt2``), or the neck's and head's weights (``head.pt``) that
the runtime loads into the model rebuilt from the manifest's config. The manifest's
``head`` entry names the file (hashed with the others), its input and output, the
post-processing settings and how far the compiled head was from PyTorch eval at compile.
"""

from __future__ import annotations

import contextlib
import copy
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from ..models.detector import TEST_CFG
from ..models.yolox_head import postprocess
from ..registry import BidlError
from .artifact import ArtifactError, artifact_file
from .engines import rebuild_module
from .optional import require

HEAD_FILES = {"onnxruntime": "head.onnx", "aoti": "head.pt2", "torch": "head.pt"}
INPUT_NAME, OUTPUT_NAME = "features", "scores"
#: largest difference from PyTorch eval a compiled head may have: objectness and class
#: probabilities absolute; boxes in pixels, as a fraction of the frame's larger side (a
#: box is a regression value times its level's stride of 8 to 32 pixels, so a 1e-6
#: difference of the value, ordinary between two float32 runtimes, moves it 1e-5 px)
TOLERANCE = 1e-5


def is_detector(model: nn.Module) -> bool:
    return getattr(model, "task", None) == "detection" and hasattr(model, "scores_from_features")


class DetectorHead(nn.Module):
    """``features [B, F] -> scores [B, A, 5 + K]``: the detector's neck and head (copies
    in float32), with the backbone's split of the features into maps (it has no weights)."""

    def __init__(self, detector: nn.Module):
        super().__init__()
        self.neck = copy.deepcopy(detector.neck).float().eval()
        self.head = copy.deepcopy(detector.head).float().eval()
        # a bound method, not a submodule: the backbone's weights stay out of this graph
        self._split = detector.backbone.split_features
        self.frame_side = max(int(s) for s in detector.backbone.input_shape[-2:])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        maps = self.neck(self._split(features))
        return self.head.scores(self.head(maps), maps)


def sample_features(graph, seed: int = 0) -> torch.Tensor:
    """The spiking part's features ``[B, F]`` (float32) of the step graph ``graph`` run in
    PyTorch over one seeded window of sparse random spikes: what the head check feeds."""
    generator = torch.Generator().manual_seed(seed)
    shape = (graph.batch_size, int(graph.backbone.timestep), *graph.input_shape[1:])
    spikes = torch.rand(shape, generator=generator) < 0.2
    return graph.run_sequence(spikes.to(graph.example_input().dtype)).float()


def plan_head(model: nn.Module, batch_size: int, features: int, backend: str) -> dict:
    """The manifest's ``head`` entry for ``model`` (without the check's figures)."""
    module = DetectorHead(model)
    with torch.no_grad():
        out = module(torch.zeros(batch_size, features))
    return {
        "graph": HEAD_FILES[backend],
        "input": {"name": INPUT_NAME, "shape": [batch_size, features], "dtype": "float32"},
        "output": {"name": OUTPUT_NAME, "shape": list(out.shape), "dtype": "float32"},
        "precision": "fp32",
        "num_classes": int(model.num_classes),
        "test_cfg": dict(model.test_cfg),
    }


# --- writing --------------------------------------------------------------------------


def write_head(
    model: nn.Module,
    folder: Path,
    manifest: dict,
    device: str,
    features: torch.Tensor,
    quiet=contextlib.nullcontext,
    inductor_configs: dict | None = None,
) -> None:
    """Export ``model``'s neck and head into ``folder`` as ``manifest['head']`` names it,
    then run the written file on ``features`` (the spiking part's, ``[B, F]``) beside
    PyTorch eval; a difference above ``TOLERANCE`` refuses the artifact. The figures go
    into ``manifest['head']['check']``."""
    entry = manifest["head"]
    module = DetectorHead(model)
    path = artifact_file(folder, entry["graph"])
    backend = manifest["backend"]
    example = torch.zeros(entry["input"]["shape"])
    try:
        with quiet(), torch.no_grad():
            if backend == "onnxruntime":
                require("onnxscript", "ONNX export")
                torch.onnx.export(
                    module,
                    (example,),
                    str(path),
                    dynamo=True,
                    input_names=[INPUT_NAME],
                    output_names=[OUTPUT_NAME],
                    external_data=False,
                    verbose=False,
                    optimize=False,
                )
            elif backend == "torch":
                torch.save({k: v.detach().cpu() for k, v in module.state_dict().items()}, path)
            else:
                module = module.to(device)
                program = torch.export.export(module, (example.to(device),))
                torch._inductor.aoti_compile_and_package(
                    program, package_path=str(path), inductor_configs=inductor_configs or {}
                )
                module = module.cpu()
    except BidlError:
        raise
    except Exception as err:
        raise BidlError(
            f"exporting the detector's neck and head ({backend}) failed: "
            f"{type(err).__name__}: {err}"
        ) from err
    entry["check"] = check_head(module, HeadGraph(folder, manifest, device), features)


def check_head(module: DetectorHead, head: HeadGraph, features: torch.Tensor) -> dict:
    """The compiled head against PyTorch eval on ``features``: the largest differences of
    objectness and class probabilities, and of boxes in pixels; refused above
    ``TOLERANCE`` (boxes: ``TOLERANCE`` times the frame's larger side) or when not
    finite."""
    features = features.detach().float().cpu()
    with torch.no_grad():
        eager = module.cpu()(features)
    compiled = torch.from_numpy(head.run(features.numpy()))
    if not torch.isfinite(compiled).all():
        raise ArtifactError(
            "the compiled head gives non-finite scores (NaN or inf weights?); nothing was "
            "replaced. Check the checkpoint."
        )
    probs = (compiled[..., 4:] - eager[..., 4:]).abs().max().item()
    boxes = (compiled[..., :4] - eager[..., :4]).abs().max().item()
    box_limit = TOLERANCE * module.frame_side
    if not (probs <= TOLERANCE and boxes <= box_limit):
        raise ArtifactError(
            f"the compiled head differs from PyTorch eval by {probs:.3g} in the scores (limit "
            f"{TOLERANCE:g}) and {boxes:.3g} px in the boxes (limit {box_limit:.3g} px); "
            f"nothing was replaced. Compile with --backend torch, or report the model."
        )
    return {
        "samples": int(features.shape[0]),
        "scores_max_diff": probs,
        "boxes_max_diff_px": boxes,
        "boxes_limit_px": box_limit,
    }


# --- running --------------------------------------------------------------------------


class HeadGraph:
    """The head graph of the artifact ``folder`` (its manifest already read and its files
    verified) on ``device``: ``run(features [N, F]) -> scores [N, A, 5 + K]`` and
    ``detect(features)`` -> boxes, scores and labels per sample after NMS."""

    def __init__(self, folder: Path, manifest: dict, device: str | torch.device | None = None):
        self.entry = manifest["head"]
        self.folder = Path(folder)
        self.device = torch.device(device or manifest.get("device") or "cpu")
        self.batch_size = int(self.entry["input"]["shape"][0])
        self.features = int(self.entry["input"]["shape"][1])
        self.num_classes = int(self.entry.get("num_classes", self.entry["output"]["shape"][-1] - 5))
        self.test_cfg = self.entry.get("test_cfg") or {}
        if not isinstance(self.test_cfg, dict) or not set(self.test_cfg) <= set(TEST_CFG):
            raise ArtifactError(
                f"{self.folder / 'net_params.json'}: head.test_cfg must be a dict of "
                f"{sorted(TEST_CFG)}; the manifest is damaged or was edited. Recompile."
            )
        path = artifact_file(self.folder, self.entry["graph"])
        opener = {"onnxruntime": _onnx_head, "torch": _torch_head, "aoti": _aoti_head}
        self._call = opener[manifest["backend"]](path, manifest, self.device)

    def run(self, features) -> np.ndarray:
        """``[N, F]`` features -> ``[N, A, 5 + K]``, in batches padded to the batch size."""
        array = np.asarray(features, dtype=np.float32)
        if array.ndim != 2 or array.shape[1] != self.features:
            raise BidlError(
                f"head graph of {self.folder}: takes features [N, {self.features}], got shape "
                f"{list(array.shape)}"
            )
        outputs = []
        for start in range(0, array.shape[0], self.batch_size):
            chunk = array[start : start + self.batch_size]
            rows = chunk.shape[0]
            if rows < self.batch_size:
                pad = np.zeros((self.batch_size - rows, self.features), np.float32)
                chunk = np.concatenate([chunk, pad])
            outputs.append(self._call(np.ascontiguousarray(chunk))[:rows])
        return np.concatenate(outputs)

    def detect(self, features) -> list[dict[str, torch.Tensor]]:
        """Per sample ``bboxes`` ``[K, 4]`` (x1, y1, x2, y2), ``scores``, ``labels``: the
        head graph, then the compiled model's thresholds and NMS in PyTorch."""
        return postprocess(torch.from_numpy(self.run(features)), **self.test_cfg)

    def as_model(self) -> SimpleNamespace:
        """What evaluation reads of a model (its number of classes)."""
        return SimpleNamespace(num_classes=self.num_classes)


def open_head(folder: Path, manifest: dict, device=None) -> HeadGraph | None:
    """The artifact's head graph, or None when it has none (a classifier, or a detector
    compiled before heads were compiled)."""
    return HeadGraph(folder, manifest, device) if "head" in manifest else None


def _onnx_head(path: Path, manifest: dict, device: torch.device):
    ort = require("onnxruntime", "the onnxruntime backend")
    providers = ["CPUExecutionProvider"]
    if device.type == "cuda":
        providers = [("CUDAExecutionProvider", {"device_id": device.index or 0}), *providers]
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise BidlError(
                f"device {device}: this onnxruntime has no CUDA provider; run on cpu or "
                f"install onnxruntime-gpu"
            )
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(path), options, providers=providers)
    except Exception as err:
        raise ArtifactError(
            f"{path}: ONNX Runtime cannot load the head graph ({type(err).__name__}: {err}); "
            f"the file is damaged or from an incompatible version. Recompile the artifact."
        ) from None
    return lambda x: session.run([OUTPUT_NAME], {INPUT_NAME: x})[0]


def _torch_head(path: Path, manifest: dict, device: torch.device):
    module = rebuild_module(path, manifest, DetectorHead, "neck and head")
    module = module.to(device)

    def call(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return module(torch.from_numpy(x).to(device)).cpu().numpy()

    return call


def _aoti_head(path: Path, manifest: dict, device: torch.device):
    try:
        index = (device.index or 0) if device.type == "cuda" else -1
        package = torch._inductor.aoti_load_package(str(path), device_index=index)
    except Exception as err:
        raise ArtifactError(
            f"{path}: cannot load the head's AOTInductor package ({type(err).__name__}: "
            f"{err}); it is damaged or from another torch version. Recompile the artifact."
        ) from None

    def call(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return package(torch.from_numpy(x).to(device)).cpu().numpy()

    return call


def describe_head(manifest: dict) -> str:
    """One paragraph on the head graph of a manifest ('' when it has none)."""
    entry = manifest.get("head")
    if not entry:
        return ""
    check = entry.get("check") or {}
    line = (
        f"head graph: {entry['graph']} ({entry.get('precision', 'fp32')}), "
        f"{entry['input']['name']} {entry['input']['shape']} -> {entry['output']['name']} "
        f"{entry['output']['shape']} (box, objectness, {entry.get('num_classes', '?')} class "
        f"probabilities per anchor); NMS after it in PyTorch"
    )
    if check:
        line += (
            f"\nhead check against PyTorch eval ({check.get('samples')} samples): scores "
            f"{_figure(check.get('scores_max_diff'))} (limit {TOLERANCE:g}), boxes "
            f"{_figure(check.get('boxes_max_diff_px'))} px (limit "
            f"{_figure(check.get('boxes_limit_px'))} px)"
        )
    return line


def _figure(value) -> str:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    return f"{value:.2e}" if number else "?"


__all__ = [
    "HEAD_FILES",
    "TOLERANCE",
    "DetectorHead",
    "HeadGraph",
    "describe_head",
    "is_detector",
    "open_head",
    "plan_head",
    "sample_features",
    "write_head",
]
