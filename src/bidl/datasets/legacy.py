"""BIDL's preprocessed pickles (``dats``, ``lbls``, ``shape``: frames packed with
``np.packbits``): read only with an explicit ``allow_pickle=True`` (unpickling runs
code), and converted once into a code-free ``.npz``."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from ..registry import BidlError
from .cache import write_bytes_atomic


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
    except (OSError, pickle.UnpicklingError, EOFError) as err:
        raise BidlError(f"cannot read the BIDL pickle {path} ({err})") from None
    if isinstance(data, (tuple, list)) and len(data) == 3:
        data = dict(zip(("dats", "lbls", "shape"), data, strict=True))
    if not isinstance(data, dict) or not {"dats", "lbls", "shape"} <= set(data):
        raise BidlError(f"{path}: expected a dict (or tuple) of dats, lbls and shape")
    return data


def legacy_infos(data: dict) -> list[dict]:
    """Sample dicts (``img`` packed, ``pack`` the frame shape) for ``BaseDataset``."""
    shape = tuple(int(s) for s in data["shape"])
    return [
        {"img": np.asarray(img, dtype=np.uint8), "gt_label": int(label), "pack": shape}
        for img, label in zip(data["dats"], data["lbls"], strict=True)
    ]


def read_bidl_npz(path: str | Path) -> dict:
    """A converted file's ``dats`` (``[N, L]`` uint8), ``lbls`` and ``shape``."""
    with np.load(path, allow_pickle=False) as data:
        return {"dats": list(data["dats"]), "lbls": data["lbls"], "shape": data["shape"]}


def convert_bidl_pickle(
    path: str | Path, out: str | Path | None = None, allow_pickle=False
) -> Path:
    """Write BIDL pickle ``path`` as ``.npz`` (``dats`` ``[N, L]``, ``lbls``, ``shape``)."""
    data = read_bidl_pickle(path, allow_pickle)
    out = Path(out) if out else Path(path).with_suffix(".npz")
    dats = [np.asarray(d, dtype=np.uint8).ravel() for d in data["dats"]]
    if len({d.size for d in dats}) > 1:
        raise BidlError(f"{path}: packed samples differ in length; cannot stack them")
    buffer = io.BytesIO()
    np.savez(
        buffer,
        dats=np.stack(dats),
        lbls=np.asarray(data["lbls"], dtype=np.int64),
        shape=np.asarray(data["shape"], dtype=np.int64),
    )
    write_bytes_atomic(out, buffer.getvalue())
    return out
