"""The event record every reader returns, the error every reader raises, and the import of
the optional packages some readers need.

Events are a numpy structured array with fields ``x``, ``y`` (int16), ``t`` (int64
microseconds) and ``p`` (uint8, 1 = ON, 0 = OFF), the layout tonic's transforms take.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np

from ...registry import BidlError

EVENT_DTYPE = np.dtype([("x", "<i2"), ("y", "<i2"), ("t", "<i8"), ("p", "u1")])


class EventFileError(BidlError):
    """An event file is malformed or of a format bidl cannot read."""


def make_events(x, y, t, p) -> np.ndarray:
    """A structured event array from columns."""
    events = np.empty(len(t), dtype=EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = x, y, t, p
    return events


def no_events() -> np.ndarray:
    return np.zeros(0, dtype=EVENT_DTYPE)


def concatenate(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else no_events()


def optional_module(name: str, extra: str, path, what: str) -> ModuleType:
    """Import the optional package ``name``; if it is missing, an ``EventFileError`` naming
    ``path``, what needs it and the extra that installs it."""
    try:
        return importlib.import_module(name)
    except ImportError:
        raise EventFileError(
            f"{path}: reading {what} needs the '{name}' package, which is not installed; "
            f"install it with: pip install 'bidl[{extra}]'"
        ) from None


def events_from_columns(path, columns: dict) -> np.ndarray:
    """Events from columns x, y, t, p, checked before they are cast into ``EVENT_DTYPE``: a
    cast would silently wrap a large coordinate or a -1 polarity and truncate a fractional
    one."""
    lengths = set()
    for name, values in columns.items():
        if values.ndim != 1:
            raise EventFileError(
                f"{path}: {name} must be one-dimensional, has shape {values.shape}"
            )
        lengths.add(values.size)
        kind = values.dtype.kind
        if kind not in "biuf" or (kind == "f" and name != "t"):
            raise EventFileError(f"{path}: {name} must hold integers, has dtype {values.dtype}")
    if len(lengths) > 1:
        sizes = {name: values.size for name, values in columns.items()}
        raise EventFileError(f"{path}: x, y, t and p differ in length: {sizes}")
    t = columns["t"]
    if t.dtype.kind == "f" and not (np.isfinite(t).all() and np.array_equal(t, np.round(t))):
        raise EventFileError(f"{path}: t must hold whole microseconds, has non-integral values")
    limits = {"x": 2**15, "y": 2**15, "t": 2**62}
    for name, limit in limits.items():
        values = columns[name]
        if values.size and (values.min() < 0 or values.max() >= limit):
            raise EventFileError(
                f"{path}: {name} must be in [0, {limit}), has values in "
                f"[{values.min()}, {values.max()}]"
            )
    p = columns["p"].astype(np.int64)
    if p.size and not (np.isin(p, (0, 1)).all() or np.isin(p, (-1, 1)).all()):
        raise EventFileError(f"{path}: p must be 0/1 or -1/1, has values {np.unique(p)[:8]}")
    return make_events(columns["x"], columns["y"], t.astype(np.int64), p > 0)
