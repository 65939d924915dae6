"""The step-mode protocol: every cell and spiking layer is called as ``module(x)``.

A ``StepModule`` runs one timestep ``[B, ...]`` when its ``step_mode`` is ``'s'`` and a
whole sequence ``[T, B, ...]`` when it is ``'m'``. Because a layer calls its cells as
modules too, torch hooks see every call: a forward hook on a cell fires once per
timestep in step mode 's' (external iteration, EIM) and once per sequence in 'm'
(internal iteration, IIM).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ..registry import BidlError

#: 's': one timestep per call; 'm': a whole sequence [T, B, ...] per call
STEP_MODES = ("s", "m")


def _check_mode(mode: object, where: str) -> None:
    if mode not in STEP_MODES:
        raise BidlError(
            f"{where}: step_mode must be 's' (single step) or 'm' (multi step), got {mode!r}"
        )


class StepModule(nn.Module):
    """A module that runs one timestep or a whole sequence, as ``step_mode`` says.

    Subclasses implement ``single_step(x)`` and may implement ``multi_step(x_seq)``
    (default: ``single_step`` at every step). Call the module, not these methods, so
    that hooks fire. Setting ``step_mode`` on a module sets it on every step module
    inside it: a layer's cells always run in the layer's mode.
    """

    def __init__(self) -> None:
        super().__init__()
        self._step_mode = "s"

    @property
    def step_mode(self) -> str:
        return self._step_mode

    @step_mode.setter
    def step_mode(self, mode: str) -> None:
        # checked when called (forward), so that a bad value names the module that runs it
        for module in self.modules():
            if isinstance(module, StepModule):
                module._step_mode = mode

    def single_step(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def multi_step(self, x_seq: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.single_step(x) for x in x_seq])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._step_mode == "m":
            return self.multi_step(x)
        _check_mode(self._step_mode, type(self).__name__)
        return self.single_step(x)

    def extra_repr(self) -> str:
        return f"step_mode={self._step_mode!r}"


def step_modules(model: nn.Module) -> Iterator[StepModule]:
    """Every step module of ``model`` (itself included), in module order."""
    for module in model.modules():
        if isinstance(module, StepModule):
            yield module


def set_step_mode(model: nn.Module, step_mode: str) -> None:
    """Put every cell and spiking layer of ``model`` in step mode 's' or 'm'."""
    _check_mode(step_mode, "set_step_mode")
    for module in step_modules(model):
        module._step_mode = step_mode


@contextmanager
def step_mode_of(model: nn.Module, step_mode: str) -> Iterator[nn.Module]:
    """Run ``model``'s step modules in ``step_mode`` inside the block, then restore each
    one's own mode."""
    _check_mode(step_mode, "step_mode_of")
    kept = [(module, module._step_mode) for module in step_modules(model)]
    try:
        for module, _ in kept:
            module._step_mode = step_mode
        yield model
    finally:
        for module, mode in kept:
            module._step_mode = mode
