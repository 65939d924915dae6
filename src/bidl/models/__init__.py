"""Models: ``ImageClassifier``, heads, losses and the spiking backbones."""

from .classifier import ImageClassifier, build_classifier
from .heads import ClsHead
from .losses import CrossEntropyLoss, LabelSmoothLoss

__all__ = ["ClsHead", "CrossEntropyLoss", "ImageClassifier", "LabelSmoothLoss", "build_classifier"]
