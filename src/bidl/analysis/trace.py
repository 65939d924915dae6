"""Record every spike and membrane potential of one sample, step by step.

Each cell's ``step`` is wrapped for the duration of one forward pass, so the record is the
same whether the time loop runs outside the network or inside the layers. The membrane
trace is the potential relative to the threshold just before the neuron fires (the
value the cell hands its spike function, ``v - theta`` for LIF: the neuron fires where it
is above 0); a cell without a spike function gives its first state variable instead.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@torch.no_grad()
def record_sample(model: nn.Module, img: torch.Tensor) -> list[CellTrace]:
    """Run ``model`` on one sample ``img`` ``[T, ...]`` and return each cell's trace."""
    records: dict[str, dict] = {}
    restore = []
    for name, cell in stateful_cells(model):
        record = {"spikes": [], "potential": [], "state": [], "time_major": False}
        records[name] = record
        original_step = cell.step

        def step(x, state, _original=original_step, _record=record):
            out, new_state = _original(x, state)
            _record["spikes"].append(out.detach())
            first = next(iter(new_state.values()), None) if new_state else None
            if first is not None:
                _record["state"].append(first.detach())
            return out, new_state

        had_step = "step" in cell.__dict__
        cell.step = step
        spike_fn = getattr(cell, "spike_fn", None)
        if callable(spike_fn) and not isinstance(spike_fn, nn.Module):

            def spike(v, _original=spike_fn, _record=record):
                _record["potential"].append(v.detach())
                return _original(v)

            cell.spike_fn = spike
        restore.append((cell, had_step, original_step, spike_fn))
    try:
        model.eval()
        model(img.unsqueeze(0), return_loss=False)
    finally:
        for cell, had_step, original_step, spike_fn in restore:
            if had_step:
                cell.step = original_step
            else:
                del cell.step
            if spike_fn is not None and not isinstance(spike_fn, nn.Module):
                cell.spike_fn = spike_fn
    traces = []
    for name, record in records.items():
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
