"""Formatting steps: turn a sample's values into torch tensors and keep the needed keys."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ...registry import PIPELINES, BidlError

DTYPES = {
    "float32": torch.float32,
    "float": torch.float32,
    "float16": torch.float16,
    "half": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
    "double": torch.float64,
    "uint8": torch.uint8,
    "int8": torch.int8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "long": torch.int64,
    "bool": torch.bool,
}


def to_tensor(data) -> torch.Tensor:
    """A tensor of ``data``: arrays keep their dtype (shared memory where possible),
    Python or numpy ints become int64 scalars, floats float32 scalars, lists tensors."""
    if isinstance(data, torch.Tensor):
        return data
    if isinstance(data, np.ndarray):
        if data.dtype == object:
            raise BidlError("to_tensor: cannot convert a numpy array of Python objects")
        return torch.from_numpy(np.ascontiguousarray(data))
    if isinstance(data, (bool, np.bool_)):
        return torch.tensor(bool(data))
    if isinstance(data, (int, np.integer)):
        return torch.tensor(int(data), dtype=torch.int64)
    if isinstance(data, (float, np.floating)):
        return torch.tensor(float(data), dtype=torch.float32)
    if isinstance(data, Sequence) and not isinstance(data, str):
        return torch.as_tensor(np.asarray(data))
    raise BidlError(f"to_tensor: cannot convert {type(data).__name__} to a tensor")


def parse_dtype(dtype, where: str = "ToTensorType") -> torch.dtype:
    """A torch dtype from a name (``'float32'``, ``'torch.float16'``, ...) or a dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str):
        name = dtype.removeprefix("torch.")
        if name in DTYPES:
            return DTYPES[name]
    elif isinstance(dtype, (np.dtype, type)):
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = None
        if name in DTYPES:
            return DTYPES[name]
    names = ", ".join(repr(k) for k in DTYPES)
    raise BidlError(f"{where}: unknown dtype {dtype!r}; use one of {names}")


def _keys(keys, where: str) -> list[str]:
    if isinstance(keys, str):
        keys = [keys]
    if not isinstance(keys, Sequence) or not keys or not all(isinstance(k, str) for k in keys):
        raise BidlError(f"{where}: keys must be a non-empty list of strings, got {keys!r}")
    return list(keys)


def _require(results: dict, key: str, where: str):
    if key not in results:
        raise BidlError(f"{where}: the sample has no key {key!r}; it has {sorted(results)}")
    return results[key]


@PIPELINES.register_module()
class ToTensor:
    """Convert ``keys`` to torch tensors (labels become int64 scalars)."""

    def __init__(self, keys: Sequence[str]):
        self.keys = _keys(keys, "ToTensor")

    def __call__(self, results: dict) -> dict:
        for key in self.keys:
            value = _require(results, key, "ToTensor")
            try:
                results[key] = to_tensor(value)
            except BidlError as err:
                raise BidlError(f"ToTensor: key {key!r}: {err}") from None
        return results

    def __repr__(self) -> str:
        return f"ToTensor(keys={self.keys!r})"


@PIPELINES.register_module()
class ToTensorType:
    """Convert ``keys`` to torch tensors of ``dtype`` (a name such as ``'float32'``,
    ``'float16'``, ``'uint8'``, ``'int64'``, or a torch dtype)."""

    def __init__(self, keys: Sequence[str], dtype="float32"):
        self.keys = _keys(keys, "ToTensorType")
        self.dtype = parse_dtype(dtype)
        self._dtype_arg = dtype

    def __call__(self, results: dict) -> dict:
        for key in self.keys:
            value = _require(results, key, "ToTensorType")
            try:
                results[key] = to_tensor(value).to(self.dtype)
            except BidlError as err:
                raise BidlError(f"ToTensorType: key {key!r}: {err}") from None
        return results

    def __repr__(self) -> str:
        return f"ToTensorType(keys={self.keys!r}, dtype={self._dtype_arg!r})"


@PIPELINES.register_module()
class Collect:
    """Keep only ``keys`` of the sample. ``meta_keys`` (optional) that the sample has are
    gathered into an ``img_metas`` dict."""

    def __init__(self, keys: Sequence[str], meta_keys: Sequence[str] = ()):
        self.keys = _keys(keys, "Collect")
        self.meta_keys = [] if not meta_keys else _keys(meta_keys, "Collect")

    def __call__(self, results: dict) -> dict:
        out = {key: _require(results, key, "Collect") for key in self.keys}
        if self.meta_keys:
            out["img_metas"] = {k: results[k] for k in self.meta_keys if k in results}
        return out

    def __repr__(self) -> str:
        meta = f", meta_keys={self.meta_keys!r}" if self.meta_keys else ""
        return f"Collect(keys={self.keys!r}{meta})"
