"""Random augmentations of a clip: the same spatial change applied to every frame.

A sample's ``img`` is an array (numpy or torch) whose last two axes are ``H, W``, usually
``[T, C, H, W]``. Randomness comes from numpy's global generator (``np.random``), which
the training runner seeds (per worker), so runs are reproducible.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ...registry import PIPELINES, BidlError


def _pair(value, name: str, where: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints as ``(h, w)``, each at least ``minimum``."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        pair = (int(value), int(value))
    elif (
        isinstance(value, Sequence)
        and len(value) == 2
        and all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise BidlError(f"{where}: {name} must be an int or a pair of ints (h, w), got {value!r}")
    if min(pair) < minimum:
        raise BidlError(f"{where}: {name} must be >= {minimum}, got {value!r}")
    return pair


def _get_img(results: dict, where: str):
    if "img" not in results:
        raise BidlError(f"{where}: the sample has no 'img'; it has keys {sorted(results)}")
    img = results["img"]
    if not isinstance(img, (np.ndarray, torch.Tensor)):
        raise BidlError(
            f"{where}: 'img' must be a numpy array or a torch tensor, got {type(img).__name__}"
        )
    if img.ndim < 2:
        raise BidlError(
            f"{where}: 'img' needs at least 2 axes (..., H, W), got shape {tuple(img.shape)}"
        )
    return img


@PIPELINES.register_module()
class RandomCropVideo:
    """Crop every frame of ``img`` at the same random place, after zero padding.

    Args:
        size: crop size, an int or ``(h, w)``.
        padding: zeros added on each side before cropping, an int or ``(pad_h, pad_w)``;
            None for no padding.

    Sets ``crop_bbox`` = ``(top, left, bottom, right)`` in padded coordinates.
    """

    def __init__(self, size, padding=None):
        self.size = _pair(size, "size", "RandomCropVideo", 1)
        self.padding = (
            (0, 0) if padding is None else _pair(padding, "padding", "RandomCropVideo", 0)
        )
        self._size_arg, self._padding_arg = size, padding

    def __call__(self, results: dict) -> dict:
        img = _get_img(results, "RandomCropVideo")
        height, width = img.shape[-2:]
        (h, w), (ph, pw) = self.size, self.padding
        padded = (height + 2 * ph, width + 2 * pw)
        if h > padded[0] or w > padded[1]:
            raise BidlError(
                f"RandomCropVideo: crop size (h, w) = {(h, w)} is larger than the padded "
                f"frame (H, W) = {padded} (frame {(height, width)} + padding {(ph, pw)} on "
                f"each side); use a smaller size or more padding"
            )
        top = np.random.randint(0, padded[0] - h + 1)
        left = np.random.randint(0, padded[1] - w + 1)
        results["img"] = _crop_padded(img, top - ph, left - pw, h, w)
        results["crop_bbox"] = (top, left, top + h, left + w)
        return results

    def __repr__(self) -> str:
        return f"RandomCropVideo(size={self._size_arg!r}, padding={self._padding_arg!r})"


def _crop_padded(img, top: int, left: int, h: int, w: int):
    """The window ``[top, top + h) x [left, left + w)`` of ``img``'s last two axes, zeros
    where it leaves the frame (the zero padding, without building the padded array)."""
    height, width = img.shape[-2:]
    if top >= 0 and left >= 0 and top + h <= height and left + w <= width:
        window = img[..., top : top + h, left : left + w]
        return window.copy() if isinstance(img, np.ndarray) else window.clone()
    shape = (*img.shape[:-2], h, w)
    out = np.zeros(shape, img.dtype) if isinstance(img, np.ndarray) else img.new_zeros(shape)
    r0, r1 = max(top, 0), min(top + h, height)
    c0, c1 = max(left, 0), min(left + w, width)
    if r0 < r1 and c0 < c1:
        out[..., r0 - top : r1 - top, c0 - left : c1 - left] = img[..., r0:r1, c0:c1]
    return out


@PIPELINES.register_module()
class RandomFlipVideo:
    """Flip every frame of ``img`` alike with probability ``flip_prob``.

    Args:
        flip_prob: probability of flipping, in [0, 1].
        direction: ``"horizontal"`` (mirror left-right, the W axis) or ``"vertical"``
            (upside down, the H axis).

    Sets ``flip`` (bool) and ``flip_direction``.
    """

    DIRECTIONS = ("horizontal", "vertical")

    def __init__(self, flip_prob: float = 0.5, direction: str = "horizontal"):
        if isinstance(flip_prob, bool) or not isinstance(flip_prob, (int, float)):
            raise BidlError(f"RandomFlipVideo: flip_prob must be a number, got {flip_prob!r}")
        if not 0 <= flip_prob <= 1:
            raise BidlError(f"RandomFlipVideo: flip_prob must be in [0, 1], got {flip_prob}")
        if direction not in self.DIRECTIONS:
            raise BidlError(
                f"RandomFlipVideo: direction must be one of {self.DIRECTIONS}, got {direction!r}"
            )
        self.flip_prob = flip_prob
        self.direction = direction

    def __call__(self, results: dict) -> dict:
        img = _get_img(results, "RandomFlipVideo")
        flip = bool(np.random.rand() < self.flip_prob)
        if flip:
            axis = -1 if self.direction == "horizontal" else -2
            if isinstance(img, np.ndarray):
                results["img"] = np.ascontiguousarray(np.flip(img, axis=axis))
            else:
                results["img"] = torch.flip(img, dims=(axis,))
        results["flip"] = flip
        results["flip_direction"] = self.direction
        return results

    def __repr__(self) -> str:
        return f"RandomFlipVideo(flip_prob={self.flip_prob!r}, direction={self.direction!r})"
