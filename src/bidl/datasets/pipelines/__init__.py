"""Pipeline steps: loading, transforms and formatting of one sample dict."""

from .compose import Compose
from .formatting import Collect, ToTensor, ToTensorType, to_tensor
from .transforms import RandomCropVideo, RandomFlipVideo

__all__ = [
    "Collect",
    "Compose",
    "RandomCropVideo",
    "RandomFlipVideo",
    "ToTensor",
    "ToTensorType",
    "to_tensor",
]
