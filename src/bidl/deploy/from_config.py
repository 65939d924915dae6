"""Compile a config's model with a checkpoint's weights: the job behind ``bidl compile``
(load, hash, reuse an up-to-date artifact or write a new one, whole or as segments)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import config_name, load_config
from ..engine.apis import build_model, find_checkpoint
from ..engine.checkpoint import load_checkpoint, load_weights
from ..models.convert import adapt_state_dict
from .artifact import config_hash, stale_reason, weights_hash
from .compile import check_options, compile_model
from .segments import (
    build_segments,
    compile_segments,
    pipeline_stale_reason,
    segment_configs,
    segments_hashes,
)


@dataclass
class CompileResult:
    """Where the artifact is, and whether an existing one was reused (and if not, why)."""

    path: Path
    reused: bool
    reason: str | None = None


def default_artifact_dir(cfg, batch_size: int, backend: str, input_dtype: str) -> Path:
    """``model_files/<category>/<model>_<mode>_<dataset>_b<batch>[_<dtype>][_aoti]``.

    The parts come from the config's place and name (``configs/<category>/<dataset>/
    <model>/<model>_<mode>-<batch>x<workers>-<dataset>.py``).
    """
    name = config_name(cfg)
    parts = name.split("-")
    model_mode = parts[0]
    dataset = parts[-1] if len(parts) > 2 else "data"
    model, _, mode = model_mode.partition("_")
    path_parts = Path(cfg.filename or "").resolve().parts
    category = (
        path_parts[path_parts.index("configs") + 1] if "configs" in path_parts[:-2] else "custom"
    )
    folder = "_".join(p for p in (model, mode, dataset) if p) + f"_b{batch_size}"
    if input_dtype != "float32":
        folder += f"_{input_dtype}"
    if backend != "onnxruntime":
        folder += f"_{backend}"
    return Path("model_files") / category / folder


@dataclass
class _ConfigJob:
    """A config's model with a checkpoint's weights, the compile options and the hashes."""

    cfg: object
    checkpoint: Path
    models: list[torch.nn.Module]  # the whole model, or its segments in order
    model_configs: list[dict]  # the config section that builds each
    segmented: bool
    options: dict
    hashes: dict

    @classmethod
    def load(
        cls, config, checkpoint, cfg_options, work_dir, options: dict, segmented: bool = False
    ) -> _ConfigJob:
        options = {**_DEFAULT_OPTIONS, **options}
        check_options(
            options["backend"], options["input_dtype"], options["batch_size"], options["device"]
        )
        cfg = load_config(config, cfg_options)
        ckpt = find_checkpoint(checkpoint, cfg, work_dir)
        if segmented:
            state = load_checkpoint(ckpt)["state_dict"]
            # BIDL's weight names are converted for the whole network the segments cut
            state = adapt_state_dict(build_model(cfg), state, f"checkpoint {str(ckpt)!r}", False)
            models, hashes = build_segments(cfg, state), segments_hashes(cfg, state)
            model_configs = segment_configs(cfg)
        else:
            model = build_model(cfg)
            load_weights(model, ckpt)
            models, model_configs = [model], [cfg.model.to_dict()]
            hashes = {"config": config_hash(cfg.model.to_dict()), "weights": weights_hash(model)}
        return cls(cfg, ckpt, models, model_configs, segmented, options, hashes)

    def folder(self, out) -> Path:
        if out:
            return Path(out)
        opts = self.options
        folder = default_artifact_dir(
            self.cfg, opts["batch_size"], opts["backend"], opts["input_dtype"]
        )
        return folder.with_name(folder.name + "_segments") if self.segmented else folder

    def stale_reason(self, folder: Path) -> str | None:
        check = pipeline_stale_reason if self.segmented else stale_reason
        return check(folder, self.expected())

    def compile(self, folder: Path) -> None:
        source = {"config": config_name(self.cfg), "checkpoint": str(self.checkpoint)}
        common = dict(self.options, hashes=self.hashes, source=source)
        if self.segmented:
            compile_segments(self.models, folder, model_configs=self.model_configs, **common)
        else:
            compile_model(self.models[0], folder, model_config=self.model_configs[0], **common)

    def expected(self) -> dict:
        """What an artifact's manifest must say to be reusable for this job."""
        opts = self.options
        expected = {
            "backend": opts["backend"],
            "batch_size": opts["batch_size"],
            "input": {"dtype": opts["input_dtype"], "scale": float(opts["input_scale"])},
            "hashes": self.hashes,
        }
        if opts["backend"] == "aoti":
            expected["device"] = str(torch.device(opts["device"]))
        return expected


_DEFAULT_OPTIONS = dict(
    backend="onnxruntime", batch_size=1, input_dtype="float32", input_scale=1.0, device="cpu"
)


def reuse_reason(
    config: str | os.PathLike,
    checkpoint: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    cfg_options: dict | None = None,
    work_dir: str | None = None,
    segments: bool = False,
    **options,
) -> str | None:
    """Why the artifact at ``out`` cannot serve this config, checkpoint and options (its
    hashes, batch size, dtype, backend or files differ), or None when it can."""
    job = _ConfigJob.load(config, checkpoint, cfg_options, work_dir, options, segments)
    return job.stale_reason(job.folder(out))


def compile_config(
    config: str | os.PathLike,
    checkpoint: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    use_legacy: bool = False,
    cfg_options: dict | None = None,
    work_dir: str | None = None,
    segments: bool = False,
    **options,
) -> CompileResult:
    """Compile a config's model with a checkpoint's weights into ``out`` (default:
    ``default_artifact_dir``), or with ``use_legacy`` reuse an up-to-date artifact there.

    ``segments``: compile the config's ``model_0``, ``model_1``, ... (each a ``split`` of
    the backbone) into one pipeline artifact, for ``bidl infer-multi``.
    ``options``: ``backend``, ``batch_size``, ``input_dtype``, ``input_scale``, ``device``
    (as ``compile_model`` takes them).
    """
    job = _ConfigJob.load(config, checkpoint, cfg_options, work_dir, options, segments)
    folder = job.folder(out)
    reason = None
    if use_legacy:
        reason = job.stale_reason(folder)
        if reason is None:
            return CompileResult(folder, reused=True)
    job.compile(folder)
    return CompileResult(folder, reused=False, reason=reason)


__all__ = ["CompileResult", "compile_config", "default_artifact_dir", "reuse_reason"]
