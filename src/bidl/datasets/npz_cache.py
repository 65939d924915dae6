"""The generated datasets' cache files (DigitsDVS, DigitsDVS-Det): arrays in one ``.npz``
written with fast deflate, read without pickles, and a ``meta.json`` beside them."""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from ..registry import BidlError


def write_npz(f: IO[bytes], arrays: dict[str, np.ndarray]) -> None:
    """An ``.npz`` (what ``np.load`` reads) with fast deflate (level 1)."""
    with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for name, array in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as member:
                np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)


def read_npz(path: Path, keys, what: str, fix: str) -> dict[str, np.ndarray]:
    """The arrays ``keys`` of ``path``; a missing, truncated or foreign file is one error
    naming ``what`` and the file, ending with ``fix`` (what to do)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in keys}
    except (
        OSError,
        KeyError,
        ValueError,
        EOFError,
        NotImplementedError,  # a zip version or compression Python lacks
        zipfile.BadZipFile,
        zlib.error,
    ) as err:
        raise BidlError(f"{what}: cannot read {path} ({err}); {fix}") from None


def read_meta(path: Path) -> dict | None:
    """``meta.json``'s content, or None when it is missing or not JSON."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
