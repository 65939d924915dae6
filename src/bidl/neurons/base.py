"""The state protocol every stateful cell follows, and the helpers that drive it.

A cell defines one pure function ``step(x, state) -> (out, new_state)`` and names its
state tensors. Everything else -- single-step calls that remember state (external
iteration, EIM), multi-step calls over a whole sequence (internal iteration, IIM), state
resets, and later the export of an explicit-state step graph -- is built on that.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

State = dict[str, torch.Tensor]


class StatefulCell(nn.Module):
    """Base class of neurons (and anything else that carries state across timesteps).

    - ``step(x, state)``: one timestep; pure, no hidden globals.
    - ``init_state(x)``: the state before the first step, shaped after the input.
    - ``forward(x)``: in ``step_mode`` 's' (default) one step that keeps ``self.state``;
      in 'm', ``x`` is ``[T, B, ...]`` and all ``T`` steps run in one call.
    """

    state_names: tuple[str, ...] = ()
    #: initial value of each state (0 unless a cell says otherwise)
    state_init: dict[str, float] = {}

    def __init__(self) -> None:
        super().__init__()
        self.step_mode = "s"
        self.state: State | None = None

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise NotImplementedError

    def state_shape(self, x: torch.Tensor) -> torch.Size:
        """Shape of each state tensor for input ``x`` of one timestep (same as ``x`` here)."""
        return x.shape

    def init_state(self, x: torch.Tensor) -> State:
        shape = self.state_shape(x)
        return {
            name: torch.full(
                shape, float(self.state_init.get(name, 0.0)), dtype=x.dtype, device=x.device
            )
            for name in self.state_names
        }

    def reset(self) -> None:
        self.state = None

    def single_step(self, x: torch.Tensor) -> torch.Tensor:
        if self.state is None:
            self.state = self.init_state(x)
        out, self.state = self.step(x, self.state)
        return out

    def multi_step(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Run all timesteps of ``x_seq`` ``[T, B, ...]``, continuing from ``self.state``."""
        state = self.state if self.state is not None else self.init_state(x_seq[0])
        outputs = []
        for x in x_seq:
            out, state = self.step(x, state)
            outputs.append(out)
        self.state = state
        return torch.stack(outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.multi_step(x) if self.step_mode == "m" else self.single_step(x)

    def extra_repr(self) -> str:
        return f"step_mode={self.step_mode!r}"


def stateful_cells(model: nn.Module) -> Iterator[tuple[str, StatefulCell]]:
    """Every stateful cell of ``model`` with its qualified name, in module order."""
    for name, module in model.named_modules():
        if isinstance(module, StatefulCell):
            yield name, module


def reset_states(model: nn.Module) -> None:
    """Forget the state of every cell; the next call starts from the initial state."""
    for _, cell in stateful_cells(model):
        cell.reset()


def set_step_mode(model: nn.Module, step_mode: str) -> None:
    """Put every cell (and multi-step-aware layer) of ``model`` in 's' or 'm' mode."""
    if step_mode not in ("s", "m"):
        raise ValueError(
            f"step_mode must be 's' (single step) or 'm' (multi step), got {step_mode!r}"
        )
    for module in model.modules():
        if hasattr(module, "step_mode"):
            module.step_mode = step_mode


# Modules that treat every sample of a batch alike and keep no state: running them once on
# a sequence folded into the batch ([T*B, ...]) equals running them at every step.
_FOLDABLE = (
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


def fold_time(module: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
    """Apply a per-step ``module`` to ``[T, B, ...]`` by folding time into the batch."""
    steps, batch = x_seq.shape[:2]
    out = module(x_seq.flatten(0, 1))
    return out.reshape(steps, batch, *out.shape[1:])


def run_multi_step(module: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
    """Run a module written for one timestep over a whole sequence ``[T, B, ...]``.

    bidl layers provide ``multi_step``; containers recurse; stateless batch-wise modules
    fold time into the batch; anything else (e.g. batch norm in training, whose batch
    statistics are per step) loops over time so that results equal the step-by-step run.
    """
    if hasattr(module, "multi_step"):
        return module.multi_step(x_seq)
    if isinstance(module, nn.Sequential):
        for child in module:
            x_seq = run_multi_step(child, x_seq)
        return x_seq
    if (
        isinstance(module, _FOLDABLE)
        or (isinstance(module, nn.modules.batchnorm._BatchNorm) and not module.training)
        or (isinstance(module, nn.Dropout) and not module.training)
    ):
        return fold_time(module, x_seq)
    return torch.stack([module(x) for x in x_seq])
