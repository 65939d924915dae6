"""Compile a config's model with a checkpoint's weights: the job behind ``bidl compile``
(load, hash, reuse an up-to-date artifact or write a new one, whole or as segments)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import config_name, load_config
from ..datasets import build_dataset
from ..engine.apis import build_model, find_checkpoint
from ..engine.checkpoint import load_checkpoint, load_weights
from ..engine.dataloader import build_dataloader
from ..engine.detection import class_names
from ..models.convert import adapt_state_dict
from ..registry import BidlError
from .artifact import MANIFEST, config_hash, stale_reason, weights_hash
from .balance import balanced_splits
from .compare import (
    DetectionPrecisionReport,
    PrecisionReport,
    compare_detector_with_float32,
    compare_with_float32,
)
from .compile import check_options, compile_model
from .head_graph import is_detector
from .quantize import MIN_CALIBRATION_SAMPLES
from .runtime import Runtime
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
    report: PrecisionReport | DetectionPrecisionReport | None = None  # against float32
    balanced: str | None = None  # the split points --balance chose


def default_artifact_dir(
    cfg, batch_size: int, backend: str, input_dtype: str, precision: str = "fp32"
) -> Path:
    """``model_files/<category>/<model>_<mode>_<dataset>_b<batch>[_<dtype>][_<precision>]
    [_aoti]``.

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
    if precision != "fp32":
        folder += f"_{precision}"
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
    balanced: str | None = None  # what --balance chose

    @classmethod
    def load(
        cls,
        config,
        checkpoint,
        cfg_options,
        work_dir,
        options: dict,
        segmented: bool = False,
        balance: str | None = None,
    ) -> _ConfigJob:
        options = {**_DEFAULT_OPTIONS, **options}
        check_options(
            options["backend"],
            options["input_dtype"],
            options["batch_size"],
            options["device"],
            options["precision"],
        )
        if segmented and options["precision"] == "int8":
            raise BidlError(
                "precision int8 is not available for model segments (each segment after the "
                "first would need its own calibration); compile the whole model, or use fp16"
            )
        cfg = load_config(config, cfg_options)
        ckpt = find_checkpoint(checkpoint, cfg, work_dir)
        balanced = None
        if segmented:
            state = load_checkpoint(ckpt)["state_dict"]
            # BIDL's weight names are converted for the whole network the segments cut
            whole = build_model(cfg)
            state = adapt_state_dict(whole, state, f"checkpoint {str(ckpt)!r}", False)
            if balance:
                balanced = rebalance(cfg, whole, balance, options["batch_size"])
            models, hashes = build_segments(cfg, state), segments_hashes(cfg, state)
            model_configs = segment_configs(cfg)
        else:
            model = build_model(cfg)
            load_weights(model, ckpt)
            models, model_configs = [model], [cfg.model.to_dict()]
            hashes = {"config": config_hash(cfg.model.to_dict()), "weights": weights_hash(model)}
        return cls(cfg, ckpt, models, model_configs, segmented, options, hashes, balanced)

    def folder(self, out) -> Path:
        if out:
            return Path(out)
        opts = self.options
        folder = default_artifact_dir(
            self.cfg, opts["batch_size"], opts["backend"], opts["input_dtype"], opts["precision"]
        )
        return folder.with_name(folder.name + "_segments") if self.segmented else folder

    def stale_reason(self, folder: Path) -> str | None:
        check = pipeline_stale_reason if self.segmented else stale_reason
        reason = check(folder, self.expected())
        if reason is not None:
            return reason
        try:  # artifacts from before precisions were recorded are fp32
            manifest = json.loads((Path(folder) / MANIFEST).read_text())
            have = manifest.get("precision", "fp32")
        except (OSError, ValueError, AttributeError):
            return f"{folder / MANIFEST} cannot be read"
        if not self.segmented and is_detector(self.models[0]) and "head" not in manifest:
            return "it holds no head graph (compiled before bidl compiled a detector's head)"
        if self.options["input_dtype"] == "float16":
            return None  # float16 input is an fp16 graph, which the input dtype says
        want = self.options["precision"]
        return None if have == want else f"precision differs (artifact: {have!r}, now: {want!r})"

    def compile(self, folder: Path) -> None:
        source = {"config": config_name(self.cfg), "checkpoint": str(self.checkpoint)}
        options = {k: v for k, v in self.options.items() if k != "calib_samples"}
        common = dict(options, hashes=self.hashes, source=source)
        if self.segmented:
            compile_segments(self.models, folder, model_configs=self.model_configs, **common)
            return
        calibration = None
        if options["precision"] == "int8":
            calibration = calibration_samples(self.cfg, self.options["calib_samples"])
        compile_model(
            self.models[0],
            folder,
            model_config=self.model_configs[0],
            calibration=calibration,
            **common,
        )

    def compare(
        self, folder: Path, limit: int | None
    ) -> PrecisionReport | DetectionPrecisionReport:
        """The artifact at ``folder`` against the float32 model on the test split."""
        split = "test" if self.cfg.data.get("test") else "val"
        if not self.cfg.data.get(split):
            raise BidlError(
                f"config {config_name(self.cfg)!r} has no data.test or data.val to compare "
                f"the {self.options['precision']} artifact with float32 on; pass --eval-samples 0"
            )
        dataset = build_dataset(self.cfg.data[split])
        device = self.options["device"] if self.options["backend"] != "onnxruntime" else "cpu"
        with Runtime(folder, device=device) as runtime:
            loader = build_dataloader(
                dataset, runtime.batch_size, int(self.cfg.data.get("workers_per_gpu", 0))
            )
            if is_detector(self.models[0]):
                classes = class_names(dataset, self.models[0])
                return compare_detector_with_float32(
                    self.models[0], runtime, loader, classes, device, limit
                )
            pairs = ((batch["img"], batch["gt_label"]) for batch in loader)
            return compare_with_float32(self.models[0], runtime, pairs, device, limit)

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
        if opts["precision"] == "int8":
            expected["calibration"] = {"samples": int(opts["calib_samples"])}
        return expected


_DEFAULT_OPTIONS = dict(
    backend="onnxruntime",
    batch_size=1,
    input_dtype="float32",
    input_scale=1.0,
    device="cpu",
    precision="fp32",
    calib_samples=64,
)


def calibration_samples(cfg, count: int) -> np.ndarray:
    """``count`` samples ``[N, T, ...]`` of the config's training split for int8 ranges,
    spread over the split (a fixed seed) and read through the test pipeline, so that they
    look like the data the artifact will see (no augmentation)."""
    if isinstance(count, bool) or not isinstance(count, int) or count < MIN_CALIBRATION_SAMPLES:
        raise BidlError(
            f"--calib-samples must be an integer >= {MIN_CALIBRATION_SAMPLES}, got {count!r}"
        )
    section = cfg.data.get("train")
    if not section:
        raise BidlError(
            f"precision int8 calibrates on the training split, but config "
            f"{config_name(cfg)!r} has no data.train; add one, or compile fp16 / bf16"
        )
    section = dict(section)
    test_pipeline = (cfg.data.get("test") or {}).get("pipeline")
    if test_pipeline is not None:
        section["pipeline"] = test_pipeline
    dataset = build_dataset(section)
    if len(dataset) < count:
        raise BidlError(
            f"the training split of {config_name(cfg)!r} holds {len(dataset)} samples, fewer "
            f"than the {count} asked to calibrate int8 on; lower --calib-samples"
        )
    order = np.random.default_rng(0).permutation(len(dataset))[:count]
    samples = []
    for index in sorted(order.tolist()):
        img = dataset[index]["img"]
        samples.append(img.numpy() if torch.is_tensor(img) else np.asarray(img))
    return np.stack(samples)


def rebalance(cfg, whole: torch.nn.Module, device: str, batch: int) -> str:
    """Set the splits of ``cfg``'s ``model_0``, ``model_1``, ... to equal measured work on
    ``device`` (the whole model ``whole`` timed; dense kernels take as long whatever the
    weights, and the checkpoint is checked against the segments afterwards); returns a
    line saying what was chosen."""
    sections = segment_configs(cfg)
    bounds, costs = balanced_splits(whole.backbone, len(sections), device, batch)
    for index, split in enumerate(bounds):
        cfg[f"model_{index}"]["backbone"]["split"] = split
    # the declared input shapes are those of the config's own splits, replaced here
    cfg.models_compile_inputshape = None
    total = sum(costs) or 1.0
    shares = ", ".join(f"{sum(costs[a:b]) / total:.0%}" for a, b in bounds)
    return f"segments balanced on {device}: splits {bounds}, shares of a step {shares}"


def reuse_reason(
    config: str | os.PathLike,
    checkpoint: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    cfg_options: dict | None = None,
    work_dir: str | None = None,
    segments: bool = False,
    balance: str | None = None,
    **options,
) -> str | None:
    """Why the artifact at ``out`` cannot serve this config, checkpoint and options (its
    hashes, batch size, dtype, backend or files differ), or None when it can."""
    job = _ConfigJob.load(config, checkpoint, cfg_options, work_dir, options, segments, balance)
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
    balance: str | None = None,
    eval_samples: int | None = 0,
    **options,
) -> CompileResult:
    """Compile a config's model with a checkpoint's weights into ``out`` (default:
    ``default_artifact_dir``), or with ``use_legacy`` reuse an up-to-date artifact there.

    ``segments``: compile the config's ``model_0``, ``model_1``, ... (each a ``split`` of
    the backbone) into one pipeline artifact, for ``bidl infer-multi``; with ``balance``
    (a device, e.g. 'cuda') their split points are chosen anew so that each segment takes
    about the same time on that device (``balance.py``), keeping their number.
    ``options``: ``backend``, ``batch_size``, ``input_dtype``, ``input_scale``, ``device``,
    ``precision`` (as ``compile_model`` takes them) and ``calib_samples`` (int8: how many
    training samples calibrate the ranges).
    ``eval_samples``: for a precision other than fp32, compare the artifact with the float32
    model on that many test samples (None: the whole split; 0: no comparison).
    """
    if eval_samples is not None and (
        isinstance(eval_samples, bool) or not isinstance(eval_samples, int) or eval_samples < 0
    ):
        raise BidlError(f"--eval-samples must be an integer >= 0, got {eval_samples!r}")
    job = _ConfigJob.load(config, checkpoint, cfg_options, work_dir, options, segments, balance)
    folder = job.folder(out)
    reason = None
    if use_legacy:
        reason = job.stale_reason(folder)
        if reason is None:
            return CompileResult(folder, reused=True)
    job.compile(folder)
    result = CompileResult(folder, reused=False, reason=reason, balanced=job.balanced)
    reduced = job.options["precision"] != "fp32" or job.options["input_dtype"] == "float16"
    # classifiers: top-1 of both; detectors: COCO mAP of both
    if reduced and not segments and eval_samples != 0:
        result.report = job.compare(folder, eval_samples)
    return result


__all__ = ["CompileResult", "compile_config", "default_artifact_dir", "reuse_reason"]
