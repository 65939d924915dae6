"""What leaves the data pipeline: finite inputs and integer labels within the classes.

Spiking layers turn NaN into "no spike", so a NaN frame trains and scores as a quiet one;
a label out of range fails deep inside the loss (or, on CUDA, as a device assert); a float
label is truncated. Each becomes one ``SampleError`` naming the sample here.
"""

from __future__ import annotations

import numpy as np
import torch


def _nonfinite(img) -> tuple[int, int]:
    """(non-finite values, all values) of a float tensor or array; (0, n) otherwise."""
    if isinstance(img, torch.Tensor):
        if not img.is_floating_point():
            return 0, img.numel()
        return int((~torch.isfinite(img)).sum()), img.numel()
    array = np.asarray(img)
    if array.dtype.kind not in "fc":
        return 0, array.size
    return int((~np.isfinite(array)).sum()), array.size


def sample_problem(sample, classes: int | None) -> str | None:
    """Why ``sample`` (a dict with ``img`` and maybe ``gt_label``) may not be used."""
    if not isinstance(sample, dict):
        return None
    img = sample.get("img")
    if isinstance(img, torch.Tensor | np.ndarray):
        bad, total = _nonfinite(img)
        if bad:
            return f"img has {bad} NaN or infinite value(s) out of {total}"
    label = sample.get("gt_label")
    if not isinstance(label, torch.Tensor | np.ndarray | np.generic | int | float):
        return None
    if np.ndim(label) != 0:
        return None
    value = label.item() if hasattr(label, "item") else label
    if isinstance(value, float) and not value.is_integer():
        return f"label {value!r} is not an integer class index"
    if isinstance(value, bool) or value < 0 or (classes is not None and value >= classes):
        limit = f"0..{classes - 1}" if classes else "0 or more"
        return f"label {value!r} is out of range (classes {limit})"
    return None


def number_of_classes(dataset) -> int | None:
    classes = getattr(dataset, "CLASSES", None)
    try:
        return len(classes) or None if classes is not None else None
    except TypeError:
        return None
