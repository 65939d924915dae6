"""Value ranges of a config: numbers that have the right type but make no sense.

``check.py`` checks types and keys; this checks that every number in the config is
finite (a NaN learning rate trains to NaN weights), that counts are positive (``timestep``),
that ``grad_clip.max_norm`` is positive (a negative one flips the update's direction), that
``topk`` does not exceed the number of classes, and that ``log_level`` is a level.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping

from ..registry import BidlError

#: deeper than this, a config (or a --cfg-options value) is a mistake, not a structure
MAX_DEPTH = 32
#: keys whose value may be infinite: the inf-norm of gradient clipping
INFINITE_OK = frozenset({"norm_type"})
#: keys that count timesteps, wherever they are
TIMESTEP_KEYS = frozenset({"timestep", "timesteps"})
LOG_LEVELS = ("CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG", "NOTSET")


def _fix(path: str) -> str:
    return f"fix it in the config or with --cfg-options {path}=..."


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _walk(value, path: str, depth: int = 0) -> None:
    """Every number finite and every timestep count positive, anywhere in the config."""
    if depth > MAX_DEPTH:
        raise BidlError(
            f"{path}: nested more than {MAX_DEPTH} levels deep; a config (or a --cfg-options "
            f"value) this deep is a mistake. {_fix(path.split('.')[0])}"
        )
    if isinstance(value, Mapping):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            numeric = _is_int(item) or isinstance(item, float)
            if key in TIMESTEP_KEYS and numeric and not (_is_int(item) and item >= 1):
                raise BidlError(
                    f"{where}: the number of timesteps must be a positive int, got "
                    f"{item!r}; {_fix(where)}"
                )
            if key in INFINITE_OK and isinstance(item, float) and math.isinf(item):
                continue
            _walk(item, where, depth + 1)
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _walk(item, f"{path}[{i}]", depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise BidlError(f"{path}: {value!r} is not a finite number; {_fix(path)}")


def _section(cfg: Mapping, *keys: str):
    value = cfg
    for key in keys:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _number_of_classes(cfg: Mapping) -> int | None:
    for keys in (("model", "backbone", "nclass"), ("model", "head", "num_classes")):
        value = _section(cfg, *keys)
        if _is_int(value) and value > 0:
            return value
    return None


def _check_topk(path: str, topk, classes: int | None) -> None:
    values = topk if isinstance(topk, list | tuple) else [topk]
    for k in values:
        if not _is_int(k) or k < 1:
            raise BidlError(f"{path}: top-k values must be positive ints, got {k!r}; {_fix(path)}")
        if classes is not None and k > classes:
            raise BidlError(
                f"{path}: top-{k} accuracy needs at least {k} classes, the model has {classes}; "
                f"{_fix(path)}"
            )


def check_ranges(cfg: Mapping) -> None:
    """Raise a ``BidlError`` naming the key path of the first value out of its range."""
    if not isinstance(cfg, Mapping):  # an mmengine Config: its dict
        cfg = cfg.to_dict()
    _walk(cfg, "")
    lr = _section(cfg, "optimizer", "lr")
    if isinstance(lr, int | float) and not isinstance(lr, bool) and lr < 0:
        raise BidlError(f"optimizer.lr: must be >= 0, got {lr!r}; {_fix('optimizer.lr')}")
    max_norm = _section(cfg, "optimizer_config", "grad_clip", "max_norm")
    if isinstance(max_norm, int | float) and not isinstance(max_norm, bool) and max_norm <= 0:
        raise BidlError(
            f"optimizer_config.grad_clip.max_norm: must be > 0, got {max_norm!r} (a negative "
            f"bound flips the update's direction); {_fix('optimizer_config.grad_clip.max_norm')}"
        )
    classes = _number_of_classes(cfg)
    for keys in (("evaluation", "metric_options", "topk"), ("model", "head", "topk")):
        topk = _section(cfg, *keys)
        if topk is not None:
            _check_topk(".".join(keys), topk, classes)
    level = cfg.get("log_level") if isinstance(cfg, Mapping) else None
    if level is not None and not (isinstance(level, str) and level.upper() in LOG_LEVELS):
        raise BidlError(
            f"log_level: unknown level {level!r}; use one of {', '.join(LOG_LEVELS[:5])}"
        )


def _value_depth(value) -> int:
    """How deep dicts and lists nest in ``value`` (counted without recursion)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_DEPTH:
            break
        if isinstance(item, Mapping):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _text_depth(text: str) -> int:
    """How deep brackets nest in an override's text (``[[1, 2], (3,)]``: 2)."""
    deepest = depth = 0
    for char in text:
        depth += char in "[(" or -(char in ")]")
        deepest = max(deepest, depth)
    return deepest


def check_override_depth(options: Mapping, flag: str = "--cfg-options") -> None:
    """Refuse overrides nested deeper than ``MAX_DEPTH`` (a key ``a.b.c...`` or a value),
    before mmengine parses or merges them recursively and dies of a ``RecursionError``."""
    for key, value in options.items():
        nested = _text_depth(value) if isinstance(value, str) else _value_depth(value)
        depth = str(key).count(".") + 1 + nested
        if depth > MAX_DEPTH:
            shown = str(key) if len(str(key)) < 60 else str(key)[:57] + "..."
            raise BidlError(
                f"{flag}: {shown!r} nests more than {MAX_DEPTH} levels deep; an override "
                f"this deep is a mistake. Write KEY=VALUE with the key path of one "
                f"setting, e.g. runner.max_epochs=2"
            )


def log_level(cfg: Mapping, default: str = "INFO") -> int:
    """The config's ``log_level`` as a ``logging`` level (checked by ``check_ranges``)."""
    return logging.getLevelName(str(cfg.get("log_level", default)).upper())
