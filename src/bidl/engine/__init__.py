"""Training and evaluation: runner, optimizer and lr schedules, checkpoint I/O."""

from .apis import build_model, evaluate_checkpoint, train_model
from .checkpoint import load_checkpoint, load_weights, save_checkpoint
from .runner import EpochBasedRunner

__all__ = [
    "EpochBasedRunner",
    "build_model",
    "load_checkpoint",
    "load_weights",
    "save_checkpoint",
    "evaluate_checkpoint",
    "train_model",
]
