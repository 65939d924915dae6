"""More formatting steps under BIDL's names: layout changes and encodings of keys."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ...registry import PIPELINES, BidlError
from .formatting import _keys, _require, to_tensor


@PIPELINES.register_module()
class ImageToTensor:
    """Images ``[H, W, C]`` (or ``[H, W]``) of ``keys`` to tensors ``[C, H, W]``."""

    def __init__(self, keys: Sequence[str]):
        self.keys = _keys(keys, "ImageToTensor")

    def __call__(self, results: dict) -> dict:
        for key in self.keys:
            image = np.asarray(_require(results, key, "ImageToTensor"))
            image = image[..., None] if image.ndim == 2 else image
            results[key] = to_tensor(np.ascontiguousarray(np.moveaxis(image, -1, -3)))
        return results


@PIPELINES.register_module()
class Transpose:
    """Permute the axes of ``keys`` to ``order``."""

    def __init__(self, keys: Sequence[str], order: Sequence[int]):
        self.keys, self.order = _keys(keys, "Transpose"), tuple(order)

    def __call__(self, results: dict) -> dict:
        for key in self.keys:
            value = _require(results, key, "Transpose")
            if len(self.order) != value.ndim:
                raise BidlError(
                    f"Transpose: order {self.order} for {key!r} of shape {tuple(value.shape)}"
                )
            results[key] = (
                value.permute(self.order)
                if isinstance(value, torch.Tensor)
                else value.transpose(self.order)
            )
        return results


@PIPELINES.register_module()
class ToNumpy:
    """Convert ``keys`` (tensors, lists, numbers) to numpy arrays."""

    def __init__(self, keys: Sequence[str]):
        self.keys = _keys(keys, "ToNumpy")

    def __call__(self, results: dict) -> dict:
        for key in self.keys:
            value = _require(results, key, "ToNumpy")
            results[key] = value.numpy() if isinstance(value, torch.Tensor) else np.asarray(value)
        return results


@PIPELINES.register_module()
class ToOneHot:
    """Integer ids of ``keys`` (e.g. token ids ``[T]``) to one-hot float32 ``[..., param]``
    (``param`` is BIDL's name for the number of classes)."""

    def __init__(self, keys: Sequence[str], param: int):
        self.keys = _keys(keys, "ToOneHot")
        if isinstance(param, bool) or not isinstance(param, int) or param < 1:
            raise BidlError(
                f"ToOneHot: param (number of classes) must be an int >= 1, got {param!r}"
            )
        self.num_classes = param

    def __call__(self, results: dict) -> dict:
        for key in self.keys:
            ids = to_tensor(_require(results, key, "ToOneHot")).long()
            if ids.numel() and (ids.min() < 0 or ids.max() >= self.num_classes):
                raise BidlError(
                    f"ToOneHot: {key!r} holds ids in [{int(ids.min())}, {int(ids.max())}], outside "
                    f"0..{self.num_classes - 1}"
                )
            results[key] = torch.nn.functional.one_hot(ids, self.num_classes).float()
        return results
