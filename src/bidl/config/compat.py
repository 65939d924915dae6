"""BIDL's own config files in bidl: the keys BIDL's tools read, turned into bidl's.

``adapt_bidl_config(cfg)`` rewrites a loaded config in place before it is checked, and
logs one note per rewrite. Keys that mean something on a GPU or CPU keep their meaning
(``lr_config.T_max``, the top-level ``warmup``, ``fp16.loss_scale``, ``data.data_root``,
``model_0`` / ``model_1`` without ``model``, a model or head dict without ``type``, ...);
what only Lynxi's chips read is accepted with a note. A bidl config has none of these
keys and passes through unchanged.
"""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable, MutableMapping

logger = logging.getLogger("bidl")

#: BIDL's tools read these DVS sets from ``<data_root>/<folder>`` (SpikingJelly's layout:
#: the recordings under ``extract/``) as ``T`` frames of equal event counts (its
#: ``split_by='number'``), whatever the config says: (folder, T, raw recordings' folder)
DATA_ROOT_SETS = {
    "Cifar10Dvs": ("DVSCIFAR10", 10, "extract"),
    "DvsGesture": ("DvsGesture", 16, "extract"),
    "DvsMnist": ("DvsMnist", 20, None),  # BIDL's are MNIST-DVS recordings, not bidl's N-MNIST
}
#: torch scheduler names BIDL's configs use -> bidl's policy and keyword names
TORCH_POLICIES = {
    "CosineAnnealingLR": ("CosineAnnealing", {"eta_min": "min_lr"}),
    "CosineAnnealing": ("CosineAnnealing", {"eta_min": "min_lr"}),
    "StepLR": ("Step", {"step_size": "step"}),
}
#: BIDL's DVS loaders give (frames, label) tuples; bidl's samples are dicts
INDEX_KEYS = {0: "img", 1: "gt_label"}
SEGMENT_NAMES = ("model_0", "model_1", "model_2", "model_3", "model_4", "model_5")

Note = Callable[[str], None]


def adapt_bidl_config(cfg: MutableMapping) -> list[str]:
    """Rewrite BIDL's keys of ``cfg`` in place; returns (and logs) the notes."""
    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        logger.info("config: %s", text)

    _models(cfg, note)
    _lr_config(cfg, note)
    _fp16(cfg, note)
    _data(cfg, note)
    return notes


# --- model -------------------------------------------------------------------------------


def _models(cfg: MutableMapping, note: Note) -> None:
    segments = [name for name in SEGMENT_NAMES if isinstance(cfg.get(name), MutableMapping)]
    if "model" not in cfg and segments:
        whole = copy.deepcopy(cfg[segments[0]])
        backbone = whole.get("backbone")
        if isinstance(backbone, MutableMapping):
            backbone.pop("split", None)
        cfg["model"] = whole
        note(
            f"no 'model': {', '.join(segments)} are the slices of one network for Lynxi's "
            f"chips; bidl trains and tests the whole network ({segments[0]} without split)"
        )
    shape = cfg.get("models_compile_inputshape")
    sized = []
    for name in ["model", *segments]:
        model = cfg.get(name)
        if not isinstance(model, MutableMapping):
            continue
        if "type" not in model:
            model["type"] = "ImageClassifier"
            note(
                f"{name} has no type: BIDL's tools build its backbone and head, as bidl's "
                f"ImageClassifier does"
            )
        head = model.get("head")
        if isinstance(head, MutableMapping) and "type" not in head:
            head["type"] = "ClsHead"
            note(f"{name}.head has no type: read as ClsHead, the head BIDL's tools apply")
        if _input_size(model.get("backbone"), shape):
            sized.append(f"{name}.backbone")
    if sized:
        size = shape[0][2:]
        note(
            f"{', '.join(sized)} have no h, w (BIDL's ResNets take any size): "
            f"{size[0]}x{size[1]} from models_compile_inputshape[0]"
        )


def _input_size(backbone, shape) -> bool:
    """Give a ResNet of BIDL's multi-device configs (no h, w) the first slice's compile
    shape ``models_compile_inputshape[0] = [1, C, H, W]``; whether it did."""
    if not isinstance(backbone, MutableMapping) or not str(backbone.get("type", "")).startswith(
        "ResNetLif"
    ):
        return False
    first = shape[0] if isinstance(shape, list | tuple) and shape else None
    if "h" in backbone or "w" in backbone or not isinstance(first, list | tuple) or len(first) != 4:
        return False
    backbone["h"], backbone["w"] = int(first[2]), int(first[3])
    return True


# --- schedule and precision ------------------------------------------------------------


def _lr_config(cfg: MutableMapping, note: Note) -> None:
    lr_config = cfg.get("lr_config")
    if isinstance(lr_config, MutableMapping) and lr_config.get("policy") in TORCH_POLICIES:
        policy = lr_config["policy"]
        bidl_policy, renames = TORCH_POLICIES[policy]
        renamed = [old for old in renames if old in lr_config]
        for old in renamed:
            lr_config[renames[old]] = lr_config.pop(old)
        if policy != bidl_policy or renamed:
            lr_config["policy"] = bidl_policy
            spelled = ", ".join(f"{old} as {renames[old]}" for old in renamed)
            note(
                f"lr_config.policy={policy!r} (torch's scheduler, stepped once per epoch by "
                f"BIDL's tools) read as {bidl_policy!r}" + (f", {spelled}" if spelled else "")
            )
    warmup = cfg.get("warmup")
    if isinstance(warmup, MutableMapping):
        if not isinstance(lr_config, MutableMapping):
            lr_config = cfg["lr_config"] = {"policy": "Fixed"}
        if lr_config.get("warmup") is None:
            lr_config["warmup"] = "linear"
            for key in ("warmup_iters", "warmup_ratio"):
                if key in warmup:
                    lr_config[key] = warmup[key]
        cfg.pop("warmup")
        note(
            "the top-level warmup (BIDL's linear warmup over the first iterations) is "
            "lr_config.warmup='linear' with its warmup_iters and warmup_ratio"
        )


def _fp16(cfg: MutableMapping, note: Note) -> None:
    fp16 = cfg.get("fp16")
    if isinstance(fp16, MutableMapping) and "loss_scale" in fp16 and "dtype" not in fp16:
        fp16["dtype"] = "float16"
        note(
            f"fp16.loss_scale={fp16['loss_scale']!r}: float16 autocast with a gradient scaler "
            f"starting at that scale, as BIDL's tools train"
        )


# --- data --------------------------------------------------------------------------------


def _data(cfg: MutableMapping, note: Note) -> None:
    data = cfg.get("data")
    if not isinstance(data, MutableMapping):
        return
    if "test_gpu" in data:
        data["test"] = data.pop("test_gpu")
        note(
            "data.test_gpu is what BIDL tests with on a GPU (data.test feeds the chip): "
            "bidl's data.test"
        )
    root = data.pop("data_root", None)
    dataset_type = cfg.get("dataset_type")
    untyped = [split for split in ("train", "val", "test") if _lacks_type(data.get(split))]
    if untyped:
        _typed_splits(data, untyped, root, dataset_type, note)
    elif root is not None:
        note("data.data_root is read by BIDL's tools for its DVS sets only; unused here")
    one_hot, index_keys = [], []
    for split in ("train", "val", "test"):
        part = data.get(split)
        if isinstance(part, MutableMapping):
            _pipeline(f"data.{split}", part, one_hot, index_keys)
    if one_hot:
        note(
            f"ToOneHot ({', '.join(one_hot)}) makes one-hot tokens for the chip's input; "
            f"bidl's FastText reads token ids, so the step is left out"
        )
    if index_keys:
        note(
            f"pipeline keys [0] / [1] ({', '.join(index_keys)}) index BIDL's (frames, label) "
            f"tuples; bidl's samples are dicts: read as 'img' / 'gt_label'"
        )


def _lacks_type(part) -> bool:
    return isinstance(part, MutableMapping) and "type" not in part


def _typed_splits(data, splits, root, dataset_type, note: Note) -> None:
    """BIDL's DVS configs name the set once (``dataset_type``) and the folder above it
    (``data.data_root``); its tools read ``<data_root>/<folder>`` with T frames."""
    if dataset_type not in DATA_ROOT_SETS or root is None:
        return  # left to the config check, which names the missing type
    folder, steps, raw = DATA_ROOT_SETS[dataset_type]
    prefix = os.path.join(str(root), folder)
    for split in splits:
        part = data[split]
        part["type"] = dataset_type
        part.setdefault("data_prefix", prefix)
        if raw is not None:
            part.setdefault("raw_prefix", os.path.join(prefix, raw))
        part.setdefault("timesteps", steps)
        part.setdefault("frame_by", "count")
        if split != "train":
            part.setdefault("test_mode", True)
    note(
        f"data.{'/'.join(splits)} have no type: {dataset_type!r} from {prefix!r} in {steps} "
        f"frames of equal event counts, as BIDL's tools read data.data_root"
    )


def _pipeline(path: str, part: MutableMapping, one_hot: list, index_keys: list) -> None:
    steps = part.get("pipeline")
    if not isinstance(steps, list):
        return
    kept = []
    for i, step in enumerate(steps):
        if isinstance(step, MutableMapping) and step.get("type") == "ToOneHot":
            one_hot.append(f"{path}.pipeline[{i}]")
            continue
        keys = step.get("keys") if isinstance(step, MutableMapping) else None
        if isinstance(keys, list) and any(k in INDEX_KEYS for k in keys if isinstance(k, int)):
            step["keys"] = [INDEX_KEYS.get(k, k) if isinstance(k, int) else k for k in keys]
            index_keys.append(f"{path}.pipeline[{i}]")
        kept.append(step)
    part["pipeline"] = kept
