"""Running modules written for one timestep over a whole sequence ``[T, B, ...]``.

``run_multi_step(module, x_seq)`` is the one way bidl does it:

- a ``StepModule`` (cell, spiking layer) is called once in step mode 'm';
- an ``nn.Sequential`` runs each child this way in turn;
- a *time-foldable* module -- one that treats every sample of a batch alike and keeps no
  state, so running it once on the sequence folded into the batch (``[T*B, ...]``,
  ``fold_time``) equals running it at every step -- runs once, folded;
- a batch norm using its batch's statistics (training) normalises each step's batch:
  ``sequence_batch_norm`` does all steps at once, unless hooks watch it;
- anything else (dropout in training, whose masks are per step) runs step by step, so the
  result equals the step-by-step run.

Built-in foldable types are listed in ``_FOLDABLE``; a module class of one's own joins
them with the ``@time_foldable`` class decorator.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import BidlError
from .sequence_batch_norm import (
    fits_sequence_batch_norm,
    sequence_batch_norm,
    uses_batch_statistics,
)
from .step_mode import StepModule, step_mode_of

_FOLDABLE: tuple[type[nn.Module], ...] = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.Linear,
    nn.Flatten,
    nn.Identity,
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.MaxPool3d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AvgPool3d,
    nn.AdaptiveAvgPool1d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool2d,
    nn.ReLU,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    nn.Sigmoid,
    nn.Tanh,
    nn.Softmax,
    nn.Embedding,
)
#: modules foldable only in eval mode (in training their masks are per step); batch norms
#: fold when they normalise with running statistics
_FOLDABLE_IN_EVAL = (nn.Dropout,)


def time_foldable(cls: type[nn.Module]) -> type[nn.Module]:
    """Class decorator: ``cls`` is stateless and batch-wise, so ``run_multi_step`` may run
    it once on a sequence folded into the batch."""
    global _FOLDABLE
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise BidlError(f"time_foldable decorates nn.Module classes, got {cls!r}")
    if cls not in _FOLDABLE:
        _FOLDABLE = (*_FOLDABLE, cls)
    return cls


def is_time_foldable(module: nn.Module) -> bool:
    """Whether ``module`` gives the same result on ``[T*B, ...]`` as at every step."""
    if isinstance(module, _FOLDABLE):
        return True
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        # without running statistics it normalises with the batch's even in eval mode
        return not uses_batch_statistics(module)
    return isinstance(module, _FOLDABLE_IN_EVAL) and not module.training


def fold_time(module: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
    """Apply a per-step ``module`` to ``[T, B, ...]`` by folding time into the batch."""
    steps, batch = x_seq.shape[:2]
    out = module(x_seq.flatten(0, 1))
    return out.reshape(steps, batch, *out.shape[1:])


def run_multi_step(module: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
    """Run ``module`` over the whole sequence ``x_seq`` ``[T, B, ...]`` (see the module
    docstring); the result equals calling it at every step."""
    if isinstance(module, StepModule):
        if module.step_mode == "m":
            return module(x_seq)
        with step_mode_of(module, "m"):
            return module(x_seq)
    if isinstance(module, nn.Sequential):
        for child in module:
            x_seq = run_multi_step(child, x_seq)
        return x_seq
    if is_time_foldable(module):
        return fold_time(module, x_seq)
    if fits_sequence_batch_norm(module, x_seq):
        return sequence_batch_norm(module, x_seq)
    return torch.stack([module(x) for x in x_seq])
