"""Image steps of a data pipeline run on whole batches, on the training device.

A sample pipeline usually ends with image steps (random crop, flip, resize, noise, the
conversion to float) that cost the loader workers most of their time and make the batch
four times larger (uint8 counts become float32). ``install_device_augmentation`` moves
that tail of a dataset's pipeline to the device: the workers still run it, but each of
its steps only draws its random choices (the same calls to numpy's generator as the step
itself, so the same choices) and records them; the image leaves the worker in its stored
dtype. ``DeviceAugmentation`` then moves the batch to the device (non-blocking; pinned
memory makes it asynchronous) and applies the steps to all samples at once, each sample
with its own choices, the same for all its frames -- the tensors the CPU steps would
have made.

Steps that run on the device: ``RandomCropVideo``, ``RandomFlipVideo``,
``CenterCropVideo``, ``ResizeVideo``/``ResizeDVS``, ``NormalizeVideo``, ``RandomNoise``
(its noise is drawn on the device from a per-sample seed, so its values differ from the
CPU step's, not their distribution), ``ToTensor``/``ToTensorType`` of ``img``. The tail
ends at the last step that touches ``img`` and must hold a conversion of ``img`` to a
floating dtype; label steps and ``Collect`` in it stay on the CPU. A pipeline with any
other image step in that tail stays on the CPU as a whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import ConcatDataset

from ..datasets.pipelines.formatting import Collect, ToTensor, ToTensorType, to_tensor
from ..datasets.pipelines.transforms import RandomCropVideo, RandomFlipVideo, _get_img
from ..datasets.pipelines.video_transforms import (
    CenterCropVideo,
    NormalizeVideo,
    RandomNoise,
    ResizeVideo,
    _target_size,
)
from ..registry import BidlError
from .evaluation import move_batch

#: the batch key holding each sample's recorded choices (int64 ``[B, P]``)
PARAMS_KEY = "device_aug"

Shape = tuple[int, ...]


class DeviceStep:
    """One pipeline step split in two: ``record`` (in the worker: validate, draw the random
    choices, return them as ints and the image shape after the step) and ``apply`` (on the
    device: the step on a batch ``[B, *shape]`` with choices ``[B, nparams]``)."""

    nparams = 0

    def __init__(self, step):
        self.step = step

    def record(self, results: dict, shape: Shape) -> tuple[list[int], Shape]:
        return [], shape

    def apply(self, img: torch.Tensor, params: torch.Tensor, host: torch.Tensor) -> torch.Tensor:
        return img

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.step!r})"


def _window(img: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Per-sample windows of ``img`` ``[B, ..., H, W]``: rows ``rows[b]`` ``[B, h]`` and
    columns ``cols[b]`` ``[B, w]`` of sample ``b`` -> ``[B, ..., h, w]``."""
    batch, height, width = img.shape[0], img.shape[-2], img.shape[-1]
    lead = img.shape[1:-2]
    flat = img.reshape(batch, -1, height, width)
    planes, h, w = flat.shape[1], rows.shape[1], cols.shape[1]
    picked = flat.gather(2, rows[:, None, :, None].expand(batch, planes, h, width))
    picked = picked.gather(3, cols[:, None, None, :].expand(batch, planes, h, w))
    return picked.reshape(batch, *lead, h, w)


class CropStep(DeviceStep):
    """``RandomCropVideo``: zero padding, then a window at a random place per sample."""

    nparams = 2

    def record(self, results, shape):
        height, width = shape[-2:]
        (h, w), (ph, pw) = self.step.size, self.step.padding
        if h > height + 2 * ph or w > width + 2 * pw:
            self.step(results)  # raises the step's own error
        top = np.random.randint(0, height + 2 * ph - h + 1)
        left = np.random.randint(0, width + 2 * pw - w + 1)
        results["crop_bbox"] = (top, left, top + h, left + w)
        return [top, left], (*shape[:-2], h, w)

    def apply(self, img, params, host):
        (h, w), (ph, pw) = self.step.size, self.step.padding
        if ph or pw:
            img = F.pad(img, (pw, pw, ph, ph))
        rows = params[:, :1] + torch.arange(h, device=img.device)
        cols = params[:, 1:2] + torch.arange(w, device=img.device)
        return _window(img, rows, cols)


class FlipStep(DeviceStep):
    """``RandomFlipVideo``: mirror the samples whose draw says so."""

    nparams = 1

    def record(self, results, shape):
        flip = bool(np.random.rand() < self.step.flip_prob)
        results["flip"] = flip
        results["flip_direction"] = self.step.direction
        return [int(flip)], shape

    def apply(self, img, params, host):
        axis = -1 if self.step.direction == "horizontal" else -2
        chosen = params[:, 0].bool().reshape(-1, *([1] * (img.dim() - 1)))
        return torch.where(chosen, img.flip(axis), img)


class CenterCropStep(DeviceStep):
    """``CenterCropVideo``: the same centre window for every sample (zeros outside)."""

    def record(self, results, shape):
        return [], (*shape[:-2], *self.step.crop_size)

    def apply(self, img, params, host):
        (h, w), (height, width) = self.step.crop_size, img.shape[-2:]
        top, left = (height - h) // 2, (width - w) // 2
        # negative padding crops: one call for windows inside, outside or across the frame
        return F.pad(img, (-left, left + w - width, -top, top + h - height))


class ResizeStep(DeviceStep):
    """``ResizeVideo``/``ResizeDVS``: every frame resized in float32, then back to the
    image's dtype (integers rounded half to even and clipped), as ``resize_frames``."""

    def record(self, results, shape):
        size = _target_size(self.step.size, *shape[-2:], type(self.step).__name__)
        return [], (*shape[:-2], *size)

    def apply(self, img, params, host):
        batch, lead, (height, width) = img.shape[0], img.shape[1:-2], img.shape[-2:]
        size = _target_size(self.step.size, height, width, type(self.step).__name__)
        mode = self.step.mode
        kwargs = {"align_corners": False} if mode in ("bilinear", "bicubic") else {}
        flat = img.reshape(-1, 1, height, width).to(torch.float32)
        out = F.interpolate(flat, size=size, mode=mode, **kwargs).reshape(batch, *lead, *size)
        if img.dtype.is_floating_point or img.dtype == torch.bool:
            return out.to(img.dtype)
        info = torch.iinfo(img.dtype)
        return out.round().clamp(info.min, info.max).to(img.dtype)


class NormalizeStep(DeviceStep):
    """``NormalizeVideo``: ``(img - mean) / std`` per channel (axis -3), float32."""

    def record(self, results, shape):
        if len(shape) < 3 or shape[-3] != self.step.mean.size:
            self.step(results)  # raises the step's own error
        return [], shape

    def apply(self, img, params, host):
        x = img.to(torch.float32)
        if self.step.to_rgb:
            x = x.flip(-3)
        mean = torch.as_tensor(self.step.mean, device=x.device).reshape(-1, 1, 1)
        std = torch.as_tensor(self.step.std, device=x.device).reshape(-1, 1, 1)
        return (x - mean) / std


class NoiseStep(DeviceStep):
    """``RandomNoise``: Gaussian noise from a per-sample seed, drawn on the device."""

    nparams = 2

    def record(self, results, shape):
        noisy = bool(np.random.rand() < self.step.prob)
        seed = int(np.random.randint(0, 2**31 - 1)) if noisy else 0
        return [int(noisy), seed], shape

    def apply(self, img, params, host):
        x = img.to(torch.float32)
        noisy = [b for b in range(x.shape[0]) if host[b, 0]]
        if noisy:
            x = x.clone() if x is img else x  # never change the caller's tensor
            generator = torch.Generator(device=x.device)
            for b in noisy:
                generator.manual_seed(int(host[b, 1]))
                noise = torch.randn(x.shape[1:], generator=generator, device=x.device)
                x[b] += noise * self.step.std
        return x


class ConvertStep(DeviceStep):
    """``ToTensor``/``ToTensorType`` of ``img``: the worker makes a tensor of the stored
    dtype, the device casts it; other keys of the step are converted in the worker."""

    def __init__(self, step):
        super().__init__(step)
        self.dtype = getattr(step, "dtype", None)
        others = [key for key in step.keys if key != "img"]
        if not others:
            self.rest = None
        elif isinstance(step, ToTensorType):
            self.rest = ToTensorType(others, step._dtype_arg)
        else:
            self.rest = ToTensor(others)

    def record(self, results, shape):
        if self.rest is not None:
            self.rest(results)
        try:
            results["img"] = to_tensor(results["img"])
        except BidlError as err:
            raise BidlError(f"{type(self.step).__name__}: key 'img': {err}") from None
        return [], shape

    def apply(self, img, params, host):
        return img if self.dtype is None else img.to(self.dtype)


#: pipeline step type -> its device form (exact types: a subclass may change the step)
DEVICE_STEPS: dict[type, Callable] = {
    RandomCropVideo: CropStep,
    RandomFlipVideo: FlipStep,
    CenterCropVideo: CenterCropStep,
    NormalizeVideo: NormalizeStep,
    RandomNoise: NoiseStep,
    ToTensor: ConvertStep,
    ToTensorType: ConvertStep,
}


def _device_form(step) -> DeviceStep | None:
    if isinstance(step, ResizeVideo):  # ResizeDVS too: only the mode differs
        return ResizeStep(step)
    if isinstance(step, (ToTensor, ToTensorType)) and "img" not in step.keys:
        return None
    form = DEVICE_STEPS.get(type(step))
    return form(step) if form is not None else None


def _leaves_img(step) -> bool:
    """Whether ``step`` leaves ``img`` alone (label conversions, a ``Collect`` keeping it)."""
    if isinstance(step, (ToTensor, ToTensorType)):
        return "img" not in step.keys
    return isinstance(step, Collect) and "img" in step.keys


def plan_device_steps(transforms: Sequence) -> dict[int, DeviceStep] | None:
    """Pipeline index -> device step for the tail of ``transforms`` that can run on the
    device, or None when there is none worth moving (no float conversion of ``img``)."""
    planned: dict[int, DeviceStep] = {}
    for index in range(len(transforms) - 1, -1, -1):
        step = transforms[index]
        if _leaves_img(step):
            continue
        form = _device_form(step)
        if form is None:
            break
        planned[index] = form
    converts = any(
        isinstance(form, ConvertStep) and form.dtype is not None and form.dtype.is_floating_point
        for form in planned.values()
    )
    return dict(sorted(planned.items())) if converts else None


class DeferredPipeline:
    """A pipeline whose device steps only record their choices (see the module doc); the
    sample gets them under ``PARAMS_KEY``. ``original`` is the pipeline it replaces."""

    def __init__(self, original, planned: dict[int, DeviceStep]):
        self.original = original
        self.transforms = list(original.transforms)
        self.planned = planned

    def __call__(self, results: dict) -> dict | None:
        params: list[int] = []
        shape: Shape | None = None
        for index, step in enumerate(self.transforms):
            form = self.planned.get(index)
            if form is None:
                results = step(results)
                if results is None:
                    return None
                continue
            if shape is None and not isinstance(form, ConvertStep):
                shape = tuple(_get_img(results, type(step).__name__).shape)
            drawn, shape = form.record(results, shape)
            if shape is None:  # a conversion came first: the image is a tensor now
                shape = tuple(results["img"].shape)
            params += drawn
        results[PARAMS_KEY] = np.asarray(params, dtype=np.int64)
        return results

    def __repr__(self) -> str:
        moved = ", ".join(type(self.transforms[i]).__name__ for i in self.planned)
        return f"DeferredPipeline(on the device: {moved}; {self.original!r})"


class DeviceAugmentation:
    """Moves a collated batch to ``device`` and runs the recorded steps on ``img``."""

    def __init__(self, steps: Sequence[DeviceStep]):
        self.steps = list(steps)

    def apply(self, img: torch.Tensor, params: torch.Tensor, host: torch.Tensor) -> torch.Tensor:
        """The steps on ``img`` ``[B, ...]`` with recorded choices ``params`` ``[B, P]``
        (on ``img``'s device) and ``host`` (the same, on the CPU)."""
        column = 0
        for step in self.steps:
            span = slice(column, column + step.nparams)
            img = step.apply(img, params[:, span], host[:, span])
            column += step.nparams
        return img

    def __call__(self, batch: dict, device: torch.device) -> dict:
        batch = dict(batch)  # the caller's batch keeps its keys
        host = batch.pop(PARAMS_KEY, None)
        batch = move_batch(batch, device)
        if host is None:  # the samples did not come through a deferred pipeline
            return batch
        params = host.to(device, non_blocking=True)
        batch["img"] = self.apply(batch["img"], params, host)
        return batch

    def __repr__(self) -> str:
        return f"DeviceAugmentation({self.steps!r})"


def _owners(dataset) -> list:
    """The datasets whose ``pipeline`` makes the samples of ``dataset``."""
    if isinstance(dataset, ConcatDataset):
        return [owner for part in dataset.datasets for owner in _owners(part)]
    pipeline = getattr(dataset, "pipeline", None)
    return [dataset] if pipeline is not None and hasattr(pipeline, "transforms") else []


def _signature(plan: dict[int, DeviceStep]) -> str:
    """What the device would do for ``plan`` (the step types and their settings)."""
    return repr(
        [(type(f.step).__name__, sorted(map(repr, vars(f.step).items()))) for f in plan.values()]
    )


def install_device_augmentation(dataset) -> DeviceAugmentation | None:
    """Defer the device-ready tail of ``dataset``'s pipeline (every part of a
    ``ConcatDataset`` alike) and return what runs it on a batch; None (nothing changed)
    when the pipeline has no such tail or the parts differ."""
    owners = _owners(dataset)
    if not owners:
        return None
    originals = [getattr(o.pipeline, "original", o.pipeline) for o in owners]
    plans = [plan_device_steps(p.transforms) for p in originals]
    if any(plan is None for plan in plans) or len({_signature(p) for p in plans}) > 1:
        return None
    for owner, original, plan in zip(owners, originals, plans, strict=True):
        owner.pipeline = DeferredPipeline(original, plan)
    return DeviceAugmentation(plans[0].values())


def uninstall_device_augmentation(dataset) -> None:
    """Put back the pipelines that ``install_device_augmentation`` replaced."""
    for owner in _owners(dataset):
        if isinstance(owner.pipeline, DeferredPipeline):
            owner.pipeline = owner.pipeline.original
