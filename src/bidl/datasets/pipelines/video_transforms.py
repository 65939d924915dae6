"""More clip transforms under BIDL's names. Each takes and returns the sample dict and
changes ``img`` (``[..., C, H, W]`` or ``[..., H, W]``, numpy or torch) of every frame
alike: random choices are drawn once per sample from numpy's global generator."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ...registry import PIPELINES, BidlError
from .formatting import ToTensorType
from .transforms import RandomCropVideo, RandomFlipVideo, _crop_padded, _get_img, _pair

for _alias, _step in (
    ("RandomCropVideoDict", RandomCropVideo),
    ("RandomCrop", RandomCropVideo),
    ("RandomFlipVideoDict", RandomFlipVideo),
    ("RandomFlip", RandomFlipVideo),
    ("ToTensorTypeDict", ToTensorType),
):
    PIPELINES.register_module(name=_alias, module=_step)


def _as_numpy(img) -> tuple[np.ndarray, bool]:
    if isinstance(img, torch.Tensor):
        return img.detach().cpu().numpy(), True
    return np.asarray(img), False


def _back(array: np.ndarray, was_tensor: bool, dtype):
    array = _cast(array, dtype)
    return torch.from_numpy(np.ascontiguousarray(array)) if was_tensor else array


def _cast(array: np.ndarray, dtype) -> np.ndarray:
    """``array`` in ``dtype``, integer types rounded and clipped to their range."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(array), info.min, info.max).astype(dtype)
    return array.astype(dtype, copy=False)


def resize_frames(img, size: tuple[int, int], mode: str = "bilinear"):
    """``img`` ``[..., H, W]`` resized to ``size`` (``(h, w)``), dtype kept."""
    array, was_tensor = _as_numpy(img)
    lead = array.shape[:-2]
    flat = torch.from_numpy(array.reshape(-1, 1, *array.shape[-2:]).astype(np.float32))
    kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
    out = F.interpolate(flat, size=size, mode=mode, **kwargs).numpy().reshape(*lead, *size)
    return _back(out, was_tensor, array.dtype)


def _target_size(size, height: int, width: int, where: str) -> tuple[int, int]:
    """``size`` ``(h, w)`` where -1 keeps the aspect ratio from the other side."""
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if h == -1 and w == -1 or h == 0 or w == 0:
        raise BidlError(f"{where}: size needs at least one positive side, got {size!r}")
    if h == -1:
        h = max(1, round(height * w / width))
    if w == -1:
        w = max(1, round(width * h / height))
    return int(h), int(w)


@PIPELINES.register_module(name=["ResizeVideo", "Resize"])
class ResizeVideo:
    """Resize every frame to ``size`` (int or ``(h, w)``; -1 keeps the aspect ratio)."""

    def __init__(self, size, mode: str = "bilinear"):
        self.size, self.mode = size, mode

    def __call__(self, results: dict) -> dict:
        img = _get_img(results, type(self).__name__)
        size = _target_size(self.size, *img.shape[-2:], type(self).__name__)
        results["img"] = resize_frames(img, size, self.mode)
        return results


@PIPELINES.register_module()
class ResizeDVS(ResizeVideo):
    """Resize event-count frames by area averaging (``mode="area"``), for DVS input."""

    def __init__(self, size, mode: str = "area"):
        super().__init__(size, mode)


@PIPELINES.register_module(name=["CenterCropVideo", "CenterCrop"])
class CenterCropVideo:
    """Crop the centre ``crop_size`` (int or ``(h, w)``) of every frame (zeros outside)."""

    def __init__(self, crop_size):
        self.crop_size = _pair(crop_size, "crop_size", "CenterCropVideo", 1)

    def __call__(self, results: dict) -> dict:
        img = _get_img(results, "CenterCropVideo")
        (h, w), (height, width) = self.crop_size, img.shape[-2:]
        results["img"] = _crop_padded(img, (height - h) // 2, (width - w) // 2, h, w)
        return results


@PIPELINES.register_module()
class RandomResizedCropVideo:
    """Crop a random area (``scale`` of the frame, aspect ratio in ``ratio``) at a random
    place, the same for every frame, and resize it to ``size``. ``center`` is accepted
    for BIDL configs and must be ``(0, 0)``."""

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), center=(0, 0)):
        self.size = _pair(size, "size", "RandomResizedCropVideo", 1)
        if tuple(center) != (0, 0):
            raise BidlError(
                f"RandomResizedCropVideo: only center=(0, 0) is supported, got {center!r}"
            )
        if not 0 < scale[0] <= scale[1] <= 1 or not 0 < ratio[0] <= ratio[1]:
            raise BidlError(f"RandomResizedCropVideo: bad scale {scale!r} or ratio {ratio!r}")
        self.scale, self.ratio = scale, ratio

    def __call__(self, results: dict) -> dict:
        img = _get_img(results, "RandomResizedCropVideo")
        height, width = img.shape[-2:]
        area = np.random.uniform(*self.scale) * height * width
        aspect = np.exp(np.random.uniform(np.log(self.ratio[0]), np.log(self.ratio[1])))
        h = int(min(height, max(1, round(np.sqrt(area / aspect)))))
        w = int(min(width, max(1, round(np.sqrt(area * aspect)))))
        top, left = np.random.randint(0, height - h + 1), np.random.randint(0, width - w + 1)
        results["img"] = resize_frames(img[..., top : top + h, left : left + w], self.size)
        return results


@PIPELINES.register_module()
class CropPadByRatioVideo:
    """Pad frames so their aspect ratio ``W / H`` lies in ``allowed_ratio`` (min, max),
    plus a random margin of ``min_padd`` to ``max_padd`` of each side on all sides;
    ``pad_mode`` is a numpy pad mode (``"constant"``, ``"edge"``, ``"reflect"``) or a list
    of them to draw from. ``croppad`` is accepted for BIDL configs and must be None."""

    def __init__(
        self,
        croppad=None,
        allowed_ratio=(1, 4 / 3),
        min_padd=0.0,
        max_padd=0.0,
        pad_mode="constant",
    ):
        if croppad is not None:
            raise BidlError("CropPadByRatioVideo: only croppad=None is supported")
        self.low, self.high = float(allowed_ratio[0]), float(allowed_ratio[1])
        self.min_padd, self.max_padd = float(min_padd), float(max_padd)
        self.modes = [pad_mode] if isinstance(pad_mode, str) else list(pad_mode)

    def __call__(self, results: dict) -> dict:
        img = _get_img(results, "CropPadByRatioVideo")
        array, was_tensor = _as_numpy(img)
        height, width = array.shape[-2:]
        pad_h = pad_w = 0
        if width / height > self.high:
            pad_h = int(np.ceil(width / self.high)) - height
        elif width / height < self.low:
            pad_w = int(np.ceil(height * self.low)) - width
        margin = np.random.uniform(self.min_padd, self.max_padd)
        top = pad_h // 2 + int(margin * height)
        left = pad_w // 2 + int(margin * width)
        bottom = pad_h - pad_h // 2 + int(margin * height)
        right = pad_w - pad_w // 2 + int(margin * width)
        widths = [(0, 0)] * (array.ndim - 2) + [(top, bottom), (left, right)]
        mode = self.modes[np.random.randint(len(self.modes))]
        results["img"] = _back(np.pad(array, widths, mode=mode), was_tensor, array.dtype)
        return results


def _channel_view(array: np.ndarray, count: int, where: str) -> np.ndarray:
    if array.ndim < 3 or array.shape[-3] != count:
        raise BidlError(f"{where}: needs 'img' [..., {count}, H, W], got shape {array.shape}")
    return array


@PIPELINES.register_module()
class NormalizeVideo:
    """``(img - mean) / std`` per channel (axis -3), as float32; ``to_rgb`` swaps BGR to RGB first."""

    def __init__(self, mean: Sequence[float], std: Sequence[float], to_rgb: bool = False):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        if self.mean.shape != self.std.shape or np.any(self.std == 0):
            raise BidlError("NormalizeVideo: mean and std need one non-zero std per channel")
        self.to_rgb = to_rgb

    def __call__(self, results: dict) -> dict:
        array, was_tensor = _as_numpy(_get_img(results, "NormalizeVideo"))
        array = _channel_view(array, self.mean.size, "NormalizeVideo").astype(np.float32)
        if self.to_rgb:
            array = array[..., ::-1, :, :]
        shape = (-1, 1, 1)
        out = (array - self.mean.reshape(shape)) / self.std.reshape(shape)
        results["img"] = _back(out, was_tensor, np.float32)
        return results


@PIPELINES.register_module()
class CutOutVideo:
    """With probability ``prob``, fill a random rectangle covering ``area`` of the frame
    with ``fill`` (0 if None), at the same place in every frame."""

    def __init__(self, area: float = 0.2, fill=None, prob: float = 0.5):
        if not 0 < area <= 1 or not 0 <= prob <= 1:
            raise BidlError(
                f"CutOutVideo: area must be in (0, 1] and prob in [0, 1], got {area}, {prob}"
            )
        self.area, self.fill, self.prob = area, 0 if fill is None else fill, prob

    def __call__(self, results: dict) -> dict:
        img = _get_img(results, "CutOutVideo")
        if np.random.rand() >= self.prob:
            return results
        height, width = img.shape[-2:]
        h = max(1, int(round(height * np.sqrt(self.area))))
        w = max(1, int(round(width * np.sqrt(self.area))))
        top, left = np.random.randint(0, height - h + 1), np.random.randint(0, width - w + 1)
        img = img.copy() if isinstance(img, np.ndarray) else img.clone()
        img[..., top : top + h, left : left + w] = self.fill
        results["img"] = img
        return results


class _Photometric:
    """Base of the colour steps: one random factor per sample, applied to every frame."""

    def __init__(self, prob: float = 1.0):
        if not 0 <= prob <= 1:
            raise BidlError(f"{type(self).__name__}: prob must be in [0, 1], got {prob}")
        self.prob = prob

    def change(self, array: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, results: dict) -> dict:
        img = _get_img(results, type(self).__name__)
        if np.random.rand() >= self.prob:
            return results
        array, was_tensor = _as_numpy(img)
        results["img"] = _back(self.change(array.astype(np.float32)), was_tensor, array.dtype)
        return results


@PIPELINES.register_module()
class BrightnessVideo(_Photometric):
    """Add one random value in ``[-delta, delta]`` to every pixel of every frame."""

    def __init__(self, delta: float = 32.0, prob: float = 0.5):
        super().__init__(prob)
        self.delta = float(delta)

    def change(self, array):
        return array + np.random.uniform(-self.delta, self.delta)


@PIPELINES.register_module()
class ContrastVideo(_Photometric):
    """Scale every pixel's distance from the clip's mean by one random factor in ``contrast_range``."""

    def __init__(self, contrast_range=(0.5, 1.5), prob: float = 0.5):
        super().__init__(prob)
        self.low, self.high = contrast_range

    def change(self, array):
        mean = array.mean()
        return mean + (array - mean) * np.random.uniform(self.low, self.high)


@PIPELINES.register_module()
class ColorJitterVideo(_Photometric):
    """Random brightness, contrast and saturation factors (each ``1 ± value``), one set
    per clip; saturation needs 3 channels on axis -3."""

    def __init__(self, brightness=0.2, contrast=0.2, saturation=0.2, prob: float = 1.0):
        super().__init__(prob)
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation

    def change(self, array):
        array = array * np.random.uniform(1 - self.brightness, 1 + self.brightness)
        mean = array.mean()
        array = mean + (array - mean) * np.random.uniform(1 - self.contrast, 1 + self.contrast)
        if self.saturation:
            gray = _channel_view(array, 3, "ColorJitterVideo").mean(axis=-3, keepdims=True)
            array = gray + (array - gray) * np.random.uniform(
                1 - self.saturation, 1 + self.saturation
            )
        return array


@PIPELINES.register_module()
class RandomNoise:
    """Add Gaussian noise of standard deviation ``std`` (with probability ``prob``), as float32."""

    def __init__(self, std: float = 0.01, prob: float = 1.0):
        self.std, self.prob = float(std), float(prob)

    def __call__(self, results: dict) -> dict:
        array, was_tensor = _as_numpy(_get_img(results, "RandomNoise"))
        array = array.astype(np.float32)
        if np.random.rand() < self.prob:
            array = array + np.random.normal(0.0, self.std, array.shape).astype(np.float32)
        results["img"] = _back(array, was_tensor, np.float32)
        return results


@PIPELINES.register_module()
class Rotate:
    """Rotate every frame by one random angle in ``[-angle, angle]`` degrees (bilinear,
    zeros outside), with probability ``prob``."""

    def __init__(self, angle: float = 10.0, prob: float = 1.0):
        self.angle, self.prob = float(angle), float(prob)

    def __call__(self, results: dict) -> dict:
        from scipy.ndimage import rotate

        img = _get_img(results, "Rotate")
        if np.random.rand() >= self.prob:
            return results
        array, was_tensor = _as_numpy(img)
        degrees = np.random.uniform(-self.angle, self.angle)
        out = rotate(array.astype(np.float32), degrees, axes=(-1, -2), reshape=False, order=1)
        results["img"] = _back(out, was_tensor, array.dtype)
        return results
