"""Check a loaded config against what bidl reads from it, so that a mistake (a value of the
wrong type, an unknown key inside a known section, a misspelled ``type``) fails at load time
with a ``BidlError`` that names its key path, such as ``data.samples_per_gpu``.

Top-level names outside the sections below are left alone: configs define their own helper
variables (``train_pipeline``, ``dataset_type``, ``timestep`` ...)."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping

from ..optim import LrSchedule, check_optimizer
from ..registry import (
    BACKBONES,
    CLASSIFIERS,
    DATASETS,
    HEADS,
    LOSSES,
    NECKS,
    PIPELINES,
    BidlError,
    check_keys,
)
from .ranges import check_ranges

Kind = tuple[str, Callable[[object], bool]]


def _int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


INT: Kind = ("an int", _int)
POSITIVE_INT: Kind = ("a positive int", lambda v: _int(v) and v > 0)
NON_NEGATIVE_INT: Kind = ("an int >= 0", lambda v: _int(v) and v >= 0)
NUMBER: Kind = ("a number", _number)
BOOL: Kind = ("True or False", lambda v: isinstance(v, bool))
STR: Kind = ("a string", lambda v: isinstance(v, str))
DICT: Kind = ("a dict", lambda v: isinstance(v, Mapping))
LIST: Kind = ("a list", lambda v: isinstance(v, list | tuple))


def either(*kinds: Kind) -> Kind:
    return (" or ".join(k[0] for k in kinds), lambda v: any(k[1](v) for k in kinds))


NONE: Kind = ("None", lambda v: v is None)
DYNAMIC: Kind = ("'dynamic'", lambda v: v == "dynamic")
AUTO: Kind = ("'auto'", lambda v: v == "auto")
DATASET: Kind = either(DICT, LIST, NONE)

# section -> key -> kind of value; a key not listed is a mistake
SECTIONS: dict[str, dict[str, Kind]] = {
    "runner": {
        "type": STR,
        "max_epochs": POSITIVE_INT,
        "compile": either(BOOL, DICT, AUTO),
        "multi_step": either(BOOL, AUTO),
        "channels_last": either(BOOL, AUTO),
        "cuda_graph": either(BOOL, AUTO),
        "fused_kernels": BOOL,
    },
    "optimizer_config": {"grad_clip": either(DICT, NONE), "skip_nonfinite": BOOL},
    "lr_config": {
        "policy": STR,
        "by_epoch": BOOL,
        "warmup": either(STR, NONE),
        "warmup_iters": NON_NEGATIVE_INT,
        "warmup_ratio": NUMBER,
        "warmup_by_epoch": BOOL,
        "step": either(POSITIVE_INT, LIST),
        "milestones": LIST,
        "gamma": NUMBER,
        "min_lr": either(NUMBER, NONE),
        "min_lr_ratio": NUMBER,
        "power": NUMBER,
        "T_max": POSITIVE_INT,
    },
    "checkpoint_config": {"interval": INT, "max_keep_ckpts": INT},
    "log_config": {"interval": POSITIVE_INT, "hooks": LIST},
    "evaluation": {"interval": POSITIVE_INT, "metric": either(STR, LIST), "metric_options": DICT},
    "data": {
        "samples_per_gpu": POSITIVE_INT,
        "workers_per_gpu": NON_NEGATIVE_INT,
        "device_augment": either(BOOL, AUTO),
        "persistent_workers": BOOL,
        "prefetch_factor": POSITIVE_INT,
        "pin_threads": NON_NEGATIVE_INT,
        "train": DATASET,
        "val": DATASET,
        "test": DATASET,
    },
    "dist_params": {"backend": STR},
    "fp16": {
        "dtype": ("'float16' or 'bfloat16'", lambda v: v in ("float16", "bfloat16")),
        "loss_scale": either(("a positive number", lambda v: _number(v) and v > 0), DYNAMIC),
    },
}
FRACTION: Kind = ("a number in [0, 1]", lambda v: _number(v) and 0 <= v <= 1)
# the training recipe around each step (engine/recipe.py)
SECTIONS["mixup"] = {
    "mixup_alpha": ("a number >= 0", lambda v: _number(v) and v >= 0),
    "cutmix_alpha": ("a number >= 0", lambda v: _number(v) and v >= 0),
    "prob": FRACTION,
    "switch_prob": FRACTION,
    "off_epoch": either(NON_NEGATIVE_INT, NONE),
    "num_classes": POSITIVE_INT,
}
SECTIONS["ema"] = {
    "decay": ("a number in (0, 1), e.g. 0.9998", lambda v: _number(v) and 0 < v < 1),
    "evaluate": BOOL,
    "warmup": BOOL,
}
SECTIONS["distill"] = {
    "teacher": DICT,
    "kind": ("'hard' or 'soft'", lambda v: v in ("hard", "soft")),
    "alpha": FRACTION,
}
NESTED: dict[str, dict[str, Kind]] = {
    "distill.teacher": {"config": STR, "model": DICT, "checkpoint": STR},
    "optimizer_config.grad_clip": {
        "max_norm": NUMBER,
        "norm_type": NUMBER,
        "error_if_nonfinite": BOOL,
    },
    "evaluation.metric_options": {"topk": either(POSITIVE_INT, LIST)},
}
TOP_LEVEL: dict[str, Kind] = {
    "seed": INT,
    "deterministic": BOOL,
    "log_level": STR,
    "load_from": either(STR, NONE),
    "resume_from": either(STR, NONE),
    "work_dir": either(STR, NONE),
    "total_epochs": POSITIVE_INT,
    "sync_bn": BOOL,
}


def _check_value(path: str, value, kind: Kind) -> None:
    expected, ok = kind
    if not ok(value):
        raise BidlError(
            f"{path}: expected {expected}, got {type(value).__name__} {value!r:.60}; "
            f"fix it in the config or with --cfg-options {path}=..."
        )


def _check_section(path: str, section, keys: dict[str, Kind], none_ok: bool = True) -> None:
    if section is None and none_ok:
        return
    if not isinstance(section, Mapping):
        raise BidlError(f"{path}: expected a dict, got {type(section).__name__} {section!r:.60}")
    for key, value in section.items():
        if key not in keys:
            close = difflib.get_close_matches(str(key), keys, n=1, cutoff=0.6)
            hint = f" (did you mean {path}.{close[0]}?)" if close else ""
            raise BidlError(
                f"{path}.{key}: unknown key in {path!r}{hint}; bidl reads {', '.join(keys)} there"
            )
        _check_value(f"{path}.{key}", value, keys[key])
        if f"{path}.{key}" in NESTED and value is not None:
            _check_section(f"{path}.{key}", value, NESTED[f"{path}.{key}"])


def check_config(cfg: Mapping) -> None:
    """Raise a ``BidlError`` naming the key path of the first mistake in ``cfg``."""
    for key, kind in TOP_LEVEL.items():
        if key in cfg:
            _check_value(key, cfg[key], kind)
    for name, keys in SECTIONS.items():
        if name in cfg:
            _check_section(name, cfg[name], keys, none_ok=name != "data")
    if cfg.get("lr_config") is not None:
        LrSchedule(cfg["lr_config"], max_epochs=1, iters_per_epoch=1)  # policy-specific keys
    if "optimizer" in cfg:
        check_optimizer(cfg["optimizer"])
    check_ranges(cfg)  # finite numbers, positive counts, top-k within the classes
    _check_built_objects(cfg)


def _check_built_objects(cfg: Mapping) -> None:
    """The registry-built parts: model (and its backbone, neck, head, loss) and datasets
    (and their pipeline steps)."""

    model = cfg.get("model")
    check_keys(model, CLASSIFIERS, "model")
    if isinstance(model, Mapping):
        check_keys(model.get("backbone"), BACKBONES, "model.backbone")
        check_keys(model.get("neck"), NECKS, "model.neck")
        head = model.get("head")
        check_keys(head, HEADS, "model.head")
        if isinstance(head, Mapping):
            check_keys(head.get("loss"), LOSSES, "model.head.loss")
    data = cfg.get("data") or {}
    for split in ("train", "val", "test"):
        parts = data.get(split)
        if isinstance(parts, Mapping):
            _check_dataset(parts, f"data.{split}", DATASETS, check_keys)
        elif isinstance(parts, list | tuple):
            for i, part in enumerate(parts):
                _check_dataset(part, f"data.{split}[{i}]", DATASETS, check_keys)


def _check_dataset(part, path: str, registry, check_keys) -> None:
    check_keys(part, registry, path)
    steps = part.get("pipeline") or []
    if not isinstance(steps, list | tuple):
        raise BidlError(f"{path}.pipeline: expected a list of steps, got {steps!r:.60}")
    for i, step in enumerate(steps):
        if isinstance(step, Mapping):
            check_keys(step, PIPELINES, f"{path}.pipeline[{i}]")
