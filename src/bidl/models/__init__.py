"""Models: ``ImageClassifier``, heads, losses and the spiking backbones."""

from . import backbones, heads, losses  # noqa: F401  (registers every model part)
from .classifier import ImageClassifier, build_classifier
from .heads import ClsHead
from .losses import CrossEntropyLoss, LabelSmoothLoss

__all__ = ["ClsHead", "CrossEntropyLoss", "ImageClassifier", "LabelSmoothLoss", "build_classifier"]
