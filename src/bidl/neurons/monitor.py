"""``FiringRateMonitor``: spikes per neuron per step of every cell, counted by forward hooks
while a model runs (what the training loop logs at each validation)."""

from __future__ import annotations

import torch
from torch import nn

from .base import StatefulCell, stateful_cells


class _Count:
    def __init__(self) -> None:
        self.spikes = torch.zeros((), dtype=torch.float64)
        self.values = 0  # neuron-steps seen
        self.binary = torch.ones((), dtype=torch.bool)


class FiringRateMonitor:
    """Count the spikes of every cell of ``model`` inside a ``with`` block.

    A cell's output is one step ``[B, ...]`` in step mode 's' and a sequence ``[T, B, ...]``
    in 'm'; either way every element is one neuron at one step, so the rate is their mean.
    Cells whose outputs are not all 0 or 1 (analog readouts) report no rate. Counts stay on
    the device until ``firing_rates`` reads them (no host sync per step).
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.counts = {name: _Count() for name, _ in stateful_cells(model)}
        self._handles: list = []

    def __enter__(self) -> FiringRateMonitor:
        for name, cell in stateful_cells(self.model):
            self._handles.append(cell.register_forward_hook(self._hook(self.counts[name])))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    @staticmethod
    def _hook(count: _Count):
        def hook(_cell: StatefulCell, _args, out) -> None:
            if not torch.is_tensor(out):
                return
            out = out.detach()
            count.spikes = count.spikes.to(out.device) + out.double().sum()
            count.binary = count.binary.to(out.device) & ((out == 0) | (out == 1)).all()
            count.values += out.numel()

        return hook

    def firing_rates(self) -> dict[str, float]:
        """Mean firing rate (spikes per neuron per step) of every cell that emitted spikes."""
        return {
            name: float(count.spikes) / count.values
            for name, count in self.counts.items()
            if count.values and bool(count.binary)
        }
