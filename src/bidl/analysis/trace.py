"""Record every spike and membrane potential of one sample, step by step.

Forward hooks on every cell record its output for one forward pass (one call per step
when the time loop runs outside the network, one call with all steps when it runs inside
the layers). The membrane trace is the potential relative to the threshold just before
the neuron fires (what the cell hands its spike function, seen by a forward pre-hook on
that module: ``v - theta`` for LIF, the neuron fires where it is above 0); a cell whose
spike function is no module gives its first state variable after each step instead (in
step mode 's' only).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn

from ..neurons import stateful_cells


@dataclass
class CellTrace:
    """One layer's record for one sample: ``spikes`` and ``potential``, each ``[T, N]``
    (N = the layer's neurons, flattened in C-order)."""

    name: str
    shape: tuple[int, ...]
    spikes: torch.Tensor
    potential: torch.Tensor | None
    potential_kind: str


class _Recorder:
    """Forward hooks that fill one record per cell: its outputs and (step mode 's') its
    first state after each step; a pre-hook on each spike-function module takes what the
    running cell hands it (a spike function may be shared between cells)."""

    def __init__(self, model: nn.Module):
        self.records: dict[str, dict] = {}
        self.running: list[dict] = []
        self.handles = []
        spike_fns: dict[int, nn.Module] = {}
        for name, cell in stateful_cells(model):
            record = self.records[name] = {"spikes": [], "potential": [], "state": []}
            self.handles += [
                cell.register_forward_pre_hook(partial(self.before, record=record)),
                cell.register_forward_hook(partial(self.after, record=record)),
            ]
            spike_fn = getattr(cell, "spike_fn", None)
            if isinstance(spike_fn, nn.Module):
                spike_fns[id(spike_fn)] = spike_fn
        self.handles += [fn.register_forward_pre_hook(self.potential) for fn in spike_fns.values()]

    def before(self, _cell, _args, record: dict) -> None:
        self.running.append(record)

    def after(self, cell, _args, out, record: dict) -> None:
        self.running.pop()
        if cell.step_mode == "m":  # [T, B, ...]: only the last state is kept by then
            record["spikes"] += list(out.detach().unbind(0))
            return
        record["spikes"].append(out.detach())
        first = next(iter(cell.state.values()), None) if cell.state else None
        if first is not None:
            record["state"].append(first.detach())

    def potential(self, _fn, args) -> None:
        if self.running:
            self.running[-1]["potential"].append(args[0].detach())

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


@torch.no_grad()
def record_sample(model: nn.Module, img: torch.Tensor) -> list[CellTrace]:
    """Run ``model`` on one sample ``img`` ``[T, ...]`` and return each cell's trace."""
    recorder = _Recorder(model)
    try:
        model.eval()
        model(img.unsqueeze(0), return_loss=False)
    finally:
        recorder.remove()
    traces = []
    for name, record in recorder.records.items():
        if not record["spikes"]:
            continue
        spikes = torch.stack([s[0].reshape(-1) for s in record["spikes"]]).float().cpu()
        shape = tuple(record["spikes"][0].shape[1:])
        if len(record["potential"]) == len(record["spikes"]):
            potential, kind = record["potential"], "membrane minus threshold, before firing"
        elif len(record["state"]) == len(record["spikes"]):
            potential, kind = record["state"], "first state variable, after the step"
        else:
            potential, kind = None, "not recorded"
        if potential is not None:
            potential = torch.stack([p[0].reshape(-1) for p in potential]).float().cpu()
        traces.append(CellTrace(name, shape, spikes, potential, kind))
    return traces
