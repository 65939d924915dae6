"""Model slicing at compile time: one step graph per model segment, in one artifact.

A multi-device config names its segments ``model_0``, ``model_1``, ... (BIDL's
``..._mp.py`` schema), each a classifier whose backbone has ``split=[start, end]`` over the
backbone's layer sequence; ``models_compile_inputshape`` may state one step's input of
each (``[batch, C, H, W]``), which is checked. The weights come from a checkpoint of the
whole model (``model``): every segment takes its own entries, under the same names.

The artifact is a folder of segment artifacts (``segment_0/``, ...; each an ordinary step
graph with its own states) and a ``net_params.json`` of format ``bidl-pipeline`` that lists
the chain. Like a single artifact it is written into a temporary folder, manifest last, and
renamed into place.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from torch import nn

from ..models import build_classifier
from ..registry import BidlError
from .artifact import (
    MANIFEST,
    PIPELINE_FORMAT,
    ArtifactError,
    artifact_file,
    config_hash,
    manifest_difference,
    read_manifest,
    staged_folder,
    state_hash,
    verify_files,
    write_manifest,
)
from .compile import compile_model

PIPELINE_VERSION = 1
_SEGMENT_KEY = re.compile(r"^model_(\d+)$")
EXAMPLE_CONFIG = "configs/dvs/cifar10dvs/resnetlif50/resnetlif50-itout-b8x1-cifar10dvs_mp.py"


# --- the config's segments -------------------------------------------------------------


def segment_configs(cfg) -> list[dict]:
    """``model_0``, ``model_1``, ... of ``cfg`` in order (they must be numbered from 0)."""
    found = {}
    for key in cfg:
        match = _SEGMENT_KEY.match(key)
        if match:
            found[int(match.group(1))] = key
    if not found:
        raise BidlError(
            f"config {cfg.filename or ''!r} has no model_0, model_1, ...: a segmented compile "
            f"needs one model_N per segment whose backbone has split=[start, end] "
            f"(see {EXAMPLE_CONFIG})"
        )
    if sorted(found) != list(range(len(found))):
        raise BidlError(
            f"the segments are numbered {sorted(found)}; number them model_0 .. "
            f"model_{len(found) - 1} without gaps"
        )
    segments = []
    for index in range(len(found)):
        section = cfg[found[index]]
        section = section.to_dict() if hasattr(section, "to_dict") else dict(section)
        split = (section.get("backbone") or {}).get("split")
        if split is None:
            raise BidlError(
                f"model_{index}.backbone.split is missing: each segment keeps body layers "
                f"[start, end) of the backbone"
            )
        segments.append(section)
    return segments


def _check_chain(models: list[nn.Module]) -> None:
    """Segments follow each other: 0 starts the body, each starts where the last ended,
    the final one ends it (and so holds the head and the aggregation)."""
    expected_start = 0
    for index, model in enumerate(models):
        start, end = model.backbone.split
        if start != expected_start:
            raise BidlError(
                f"model_{index}.backbone.split={[start, end]} starts at layer {start}; it must "
                f"start at {expected_start}, where "
                + ("the backbone begins" if index == 0 else f"model_{index - 1} ends")
            )
        expected_start = end
    if not models[-1].backbone.is_last_segment:
        layers = models[-1].backbone.split[1]
        raise BidlError(
            f"the last segment model_{len(models) - 1} ends at layer {layers}, before the end "
            f"of the backbone; add a segment for the remaining layers"
        )


def _check_input_shapes(cfg, models: list[nn.Module]) -> None:
    shapes = cfg.get("models_compile_inputshape")
    if shapes is None:
        return
    if not isinstance(shapes, (list, tuple)) or len(shapes) != len(models):
        raise BidlError(
            f"models_compile_inputshape must list one shape per segment ({len(models)}), "
            f"got {shapes!r}"
        )
    for index, (shape, model) in enumerate(zip(shapes, models, strict=True)):
        expected = list(model.backbone.input_shape)
        if not isinstance(shape, (list, tuple)) or list(shape)[1:] != expected:
            raise BidlError(
                f"models_compile_inputshape[{index}] is {shape!r}, but model_{index} takes "
                f"one step of [batch, {', '.join(map(str, expected))}]; correct the shape"
            )


def build_segments(cfg, weights: dict[str, torch.Tensor]) -> list[nn.Module]:
    """The config's segments as classifiers, each with its entries of ``weights`` (the
    whole model's ``state_dict``)."""
    models = []
    for index, section in enumerate(segment_configs(cfg)):
        try:
            model = build_classifier(section)
        except BidlError as err:
            raise BidlError(f"model_{index}: {err}") from None
        if getattr(model.backbone, "split", None) is None:
            raise BidlError(
                f"model_{index}: {type(model.backbone).__name__} ignored split; use a "
                f"backbone that can be sliced (any SpikingBackbone)"
            )
        wanted = model.state_dict()
        missing = [key for key in wanted if key not in weights]
        if missing:
            raise BidlError(
                f"model_{index}: the checkpoint lacks {missing[:3]}"
                f"{' ...' if len(missing) > 3 else ''}; give a checkpoint of the whole model "
                f"(the config's `model`) with the same layer settings"
            )
        try:
            model.load_state_dict({key: weights[key] for key in wanted})
        except RuntimeError as err:
            raise BidlError(f"model_{index}: the checkpoint does not fit it: {err}") from None
        models.append(model.eval())
    _check_chain(models)
    _check_input_shapes(cfg, models)
    return models


# --- writing and reading ---------------------------------------------------------------


def segment_folder_name(index: int) -> str:
    return f"segment_{index}"


def compile_segments(
    models: list[nn.Module],
    out: str | os.PathLike,
    *,
    hashes: dict | None = None,
    source: dict | None = None,
    model_configs: list[dict] | None = None,
    **options,
) -> Path:
    """Compile each segment (``compile_model`` options; ``model_configs`` for the 'torch'
    backend) into ``out``, atomically."""
    if not models:
        raise BidlError("compile_segments: no segments given")
    out = Path(out)
    with staged_folder(out) as tmp:
        entries, manifests = [], []
        for index, model in enumerate(models):
            folder = tmp / segment_folder_name(index)
            config = model_configs[index] if model_configs else None
            compile_model(
                model, folder, **options, hashes=hashes, source=source, model_config=config
            )
            manifests.append(read_manifest(folder))
            entries.append({"folder": folder.name, "split": list(model.backbone.split)})
        first, last = manifests[0], manifests[-1]
        manifest = {
            "format": PIPELINE_FORMAT,
            "format_version": PIPELINE_VERSION,
            "backend": first["backend"],
            "device": first.get("device"),
            "batch_size": first["batch_size"],
            "timesteps": first["timesteps"],
            "precision": first.get("precision", "fp32"),
            "input": first["input"],
            "output": last["output"],
            "aggregation": last["aggregation"],
            "segments": entries,
            "hashes": dict(hashes or {}),
            "source": dict(source or {}),
        }
        summary = "\n".join(
            f"{e['folder']}: layers {e['split'][0]}..{e['split'][1] - 1}, "
            f"input {m['input']['shape']}, output {m['output']['shape']}, "
            f"{len(m['states'])} states"
            for e, m in zip(entries, manifests, strict=True)
        )
        write_manifest(tmp, manifest, f"bidl pipeline of {len(models)} segments\n{summary}\n")
    return out


def is_pipeline(folder: str | os.PathLike) -> bool:
    try:
        return json.loads((Path(folder) / MANIFEST).read_text()).get("format") == PIPELINE_FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def read_pipeline(folder: str | os.PathLike) -> tuple[dict, list[Path]]:
    """The pipeline manifest and its segment folders, each checked (manifest and files)."""
    folder = Path(folder)
    path = folder / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ArtifactError(
            f"{path}: cannot read it ({err}); compile with `bidl compile --segments`"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != PIPELINE_FORMAT:
        raise ArtifactError(f"{path}: not a bidl pipeline manifest (bidl compile --segments)")
    if not isinstance(manifest.get("format_version"), int) or (
        manifest["format_version"] > PIPELINE_VERSION
    ):
        raise ArtifactError(f"{path}: unknown format version; upgrade bidl or recompile")
    entries = manifest.get("segments")
    if not isinstance(entries, list) or not entries:
        raise ArtifactError(f"{path}: 'segments' must be a non-empty list; recompile")
    folders, prior = [], None
    for entry in entries:
        name = entry.get("folder") if isinstance(entry, dict) else None
        sub = artifact_file(folder, name)  # a plain name inside the folder, nothing else
        segment = read_manifest(sub)
        verify_files(sub, segment)
        if prior is not None and segment["input"]["shape"] != prior["output"]["shape"]:
            raise ArtifactError(
                f"{sub}: takes {segment['input']['shape']} but the segment before gives "
                f"{prior['output']['shape']}; recompile"
            )
        prior = segment
        folders.append(sub)
    return manifest, folders


def segment_artifacts(folder: str | os.PathLike) -> list[Path]:
    """The step-graph folders of an artifact: its segments in order, or itself."""
    if is_pipeline(folder):
        return read_pipeline(folder)[1]
    manifest = read_manifest(folder)
    verify_files(Path(folder), manifest)
    return [Path(folder)]


def pipeline_stale_reason(folder: str | os.PathLike, expected: dict) -> str | None:
    """Why the pipeline artifact at ``folder`` cannot be reused (see ``stale_reason``)."""
    try:
        manifest, _ = read_pipeline(folder)
    except ArtifactError as err:
        return str(err)
    return manifest_difference(manifest, expected)


def segments_hashes(cfg, weights: dict[str, torch.Tensor]) -> dict:
    sections = {f"model_{i}": s for i, s in enumerate(segment_configs(cfg))}
    return {"config": config_hash(sections), "weights": state_hash(weights)}
