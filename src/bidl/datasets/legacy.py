"""BIDL's preprocessed pickles (``dats``, ``lbls``, ``shape``: frames packed with
``np.packbits``): read only with an explicit ``allow_pickle=True`` (unpickling runs
code), and converted once into a code-free ``.npz``."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from .. import fileio
from ..registry import BidlError
from .bounded import check_npz_limits


def read_bidl_pickle(path: str | Path, allow_pickle: bool = False) -> dict:
    """``{"dats": [packed uint8 arrays], "lbls": [ints], "shape": frame shape}``."""
    path = Path(path)
    if not allow_pickle:
        raise BidlError(
            f"{path} is a pickle; loading it runs code from the file. If you trust it, set "
            f"allow_pickle=True (or run `bidl data convert {path} --allow-pickle` once to get "
            f"a code-free .npz)"
        )
    try:
        with open(path, "rb") as handle:
            data = pickle.load(handle)
    except Exception as err:  # a damaged pickle can raise almost any exception type
        raise BidlError(
            f"cannot read the BIDL pickle {path} ({type(err).__name__}: {err})"
        ) from None
    if isinstance(data, (tuple, list)) and len(data) == 3:
        data = dict(zip(("dats", "lbls", "shape"), data, strict=True))
    if not isinstance(data, dict) or not {"dats", "lbls", "shape"} <= set(data):
        raise BidlError(f"{path}: expected a dict (or tuple) of dats, lbls and shape")
    return check_legacy(path, data)


def check_legacy(path, data: dict) -> dict:
    """``data`` with ``shape`` a tuple of positive ints, ``lbls`` non-negative ints and
    ``dats`` uint8 arrays of ``ceil(prod(shape) / 8)`` bytes each, one per label; anything
    else is a ``BidlError`` naming ``path`` (never a sample unpacked into the wrong shape)."""
    try:
        shape = np.asarray(data["shape"])
        labels = np.asarray(data["lbls"])
        dats = [np.asarray(d) for d in data["dats"]]
    except Exception as err:
        raise BidlError(f"{path}: dats, lbls and shape must be arrays ({err})") from None
    if shape.ndim != 1 or not 1 <= shape.size <= 5 or shape.dtype.kind not in "iu":
        raise BidlError(f"{path}: shape must be 1 to 5 ints, got {data['shape']!r:.80}")
    if (shape < 1).any() or (shape > 2**20).any() or np.prod(shape, dtype=np.float64) > 2**34:
        raise BidlError(f"{path}: shape {shape.tolist()} has a size out of range")
    if labels.ndim != 1 or labels.dtype.kind not in "iu" or (labels < 0).any():
        raise BidlError(f"{path}: lbls must be non-negative ints, got {data['lbls']!r:.80}")
    if len(dats) != labels.size:
        raise BidlError(f"{path}: {len(dats)} samples in dats but {labels.size} labels")
    length = -(-int(np.prod(shape)) // 8)
    for i, dat in enumerate(dats):
        if dat.dtype.kind not in "iu" or dat.size != length or (dat.size and dat.min() < 0):
            raise BidlError(
                f"{path}: dats[{i}] must be {length} packed bytes (frames {shape.tolist()}), "
                f"got {dat.size} values of dtype {dat.dtype}"
            )
        if dat.size and dat.max() > 255:
            raise BidlError(f"{path}: dats[{i}] holds values above 255; not packed bytes")
    return {
        "dats": [d.astype(np.uint8).ravel() for d in dats],
        "lbls": labels.astype(np.int64),
        "shape": tuple(int(s) for s in shape),
    }


def legacy_infos(data: dict) -> list[dict]:
    """Sample dicts (``img`` packed, ``pack`` the frame shape) for ``BaseDataset``."""
    shape = tuple(int(s) for s in data["shape"])
    return [
        {"img": np.asarray(img, dtype=np.uint8), "gt_label": int(label), "pack": shape}
        for img, label in zip(data["dats"], data["lbls"], strict=True)
    ]


def read_bidl_npz(path: str | Path) -> dict:
    """A converted file's ``dats`` (``[N, L]`` uint8), ``lbls`` and ``shape``."""
    if Path(path).is_file():
        check_npz_limits(path)  # declared sizes its bytes can back, before np.load allocates
    try:
        with np.load(path, allow_pickle=False) as data:
            raw = {"dats": list(data["dats"]), "lbls": data["lbls"], "shape": data["shape"]}
    except Exception as err:  # not an .npz, damaged, missing arrays, object arrays
        raise BidlError(f"cannot read {path} ({type(err).__name__}: {err})") from None
    return check_legacy(path, raw)


def convert_bidl_pickle(
    path: str | Path, out: str | Path | None = None, allow_pickle=False
) -> Path:
    """Write BIDL pickle ``path`` as ``.npz`` (``dats`` ``[N, L]``, ``lbls``, ``shape``)."""
    data = read_bidl_pickle(path, allow_pickle)
    out = Path(out) if out else Path(path).with_suffix(".npz")
    dats = data["dats"]
    buffer = io.BytesIO()
    np.savez(
        buffer,
        dats=np.stack(dats) if dats else np.zeros((0, 0), np.uint8),
        lbls=np.asarray(data["lbls"], dtype=np.int64),
        shape=np.asarray(data["shape"], dtype=np.int64),
    )
    fileio.write_bytes(out, buffer.getvalue())
    return out
