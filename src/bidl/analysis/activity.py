"""Count what a spiking network does while it runs: spikes per neuron layer, synaptic
events per synaptic layer.

``ActivityMonitor`` puts a forward hook on every stateful cell (its output is the spikes)
and a forward pre-hook on every convolution and linear layer (its input is what arrives at
the synapses). It works the same with the time loop outside the network (EIM: one call
per step, ``[B, ...]``) or inside the layers (IIM: cells see ``[T, B, ...]``, stateless
layers see time folded into the batch, ``[T * B, ...]``), and keeps running sums only, so
any number of samples fits in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..neurons import StatefulCell, stateful_cells
from .fanout import dense_macs, fan_out, is_synaptic

#: what arrives at a synaptic layer, from cheapest to dearest to process
INPUT_KINDS = ("spikes", "events", "analog")


def input_kind(x: torch.Tensor) -> str:
    """'spikes' (every value 0 or 1), 'events' (non-negative whole numbers: event counts,
    each one a spike) or 'analog' (anything else, which needs multiplications)."""
    if bool(((x == 0) | (x == 1)).all()):
        return "spikes"
    if bool((x >= 0).all()) and bool((x == torch.round(x)).all()):
        return "events"
    return "analog"


def _worse(a: str, b: str) -> str:
    return a if INPUT_KINDS.index(a) >= INPUT_KINDS.index(b) else b


@dataclass
class NeuronStats:
    """Running counts of one neuron layer (a stateful cell)."""

    name: str
    cell_type: str
    shape: tuple[int, ...] | None = None  # one sample's neurons at one step
    rows: int = 0  # (sample, step) pairs seen
    # kept as tensors on the model's device, so counting never waits for the device
    spike_sum: torch.Tensor | float = 0.0
    all_binary: torch.Tensor | bool = True
    per_neuron: torch.Tensor | None = None  # spikes of each neuron, summed
    per_sample: list[float] = field(default_factory=list)
    batch_spikes: torch.Tensor | None = None

    @property
    def spikes(self) -> float:
        return float(self.spike_sum)

    @property
    def binary(self) -> bool:
        return bool(self.all_binary)


@dataclass
class SynapseStats:
    """Running counts of one synaptic layer (convolution or linear)."""

    name: str
    layer_type: str
    shape: tuple[int, ...] | None = None  # one sample's input at one step
    kind: str = "spikes"
    rows: int = 0
    accumulates: float = 0.0  # sum over inputs of value * fan-out
    nonzero: float = 0.0
    input_sum: float = 0.0
    elements: int = 0
    fan_out: torch.Tensor | None = None
    macs_per_step: int = 0
    per_sample: list[float] = field(default_factory=list)
    batch_ops: torch.Tensor | None = None


class ActivityMonitor:
    """Hooks that count spikes and synaptic events of ``model`` while it runs.

    ``synapses=False`` watches neuron layers only, and ``per_neuron=False`` keeps one total
    per layer (what the training loop logs); call ``begin_batch(batch_size)`` before each
    forward to also count per sample.

        with ActivityMonitor(model) as monitor:
            for batch in loader:
                monitor.begin_batch(len(batch["img"]))
                model(batch["img"], return_loss=False)
                monitor.end_batch()
        rates = monitor.firing_rates()
    """

    def __init__(self, model: nn.Module, synapses: bool = True, per_neuron: bool = True):
        self.model = model
        self.per_neuron = per_neuron
        self.neurons: dict[str, NeuronStats] = {}
        self.synapses: dict[str, SynapseStats] = {}
        self.samples = 0
        self._batch_size: int | None = None
        self._handles: list = []
        for name, cell in stateful_cells(model):
            self.neurons[name] = NeuronStats(name, type(cell).__name__)
        if synapses:
            for name, module in model.named_modules():
                # a product of spike tensors (an attention) counts its own operations
                if is_synaptic(module) or hasattr(module, "synaptic_operations"):
                    self.synapses[name] = SynapseStats(name, type(module).__name__)

    # ------------------------------------------------------------------ hooks
    def __enter__(self) -> ActivityMonitor:
        modules = dict(self.model.named_modules())
        for name in self.neurons:
            cell = modules[name]
            self._handles.append(cell.register_forward_hook(self._cell_hook(name)))
        for name in self.synapses:
            module = modules[name]
            hook = self._product_hook if hasattr(module, "synaptic_operations") else None
            hook = (hook or self._synapse_hook)(name, module)
            self._handles.append(module.register_forward_pre_hook(hook))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def _cell_hook(self, name: str):
        """A forward hook on a cell: its output is one step's spikes in step mode 's',
        the whole sequence's ``[T, B, ...]`` in 'm'."""
        count = self._count_spikes(name)

        def hook(cell: StatefulCell, _args, out) -> None:
            count(out, cell.step_mode == "m")

        return hook

    def begin_batch(self, batch_size: int) -> None:
        self._batch_size = int(batch_size)
        for stats in self.neurons.values():
            stats.batch_spikes = torch.zeros(batch_size, dtype=torch.float64)
        for stats in self.synapses.values():
            stats.batch_ops = torch.zeros(batch_size, dtype=torch.float64)

    def end_batch(self) -> None:
        if self._batch_size is None:
            return
        self.samples += self._batch_size
        for stats in self.neurons.values():
            stats.per_sample += stats.batch_spikes.tolist()
        for stats in self.synapses.values():
            stats.per_sample += stats.batch_ops.tolist()
        self._batch_size = None

    def _per_sample(self, rows: torch.Tensor) -> torch.Tensor | None:
        """Fold per-row totals (rows = [T * B] or [B]) into per-sample totals [B]."""
        batch = self._batch_size
        if batch is None or rows.numel() % batch:
            return None
        return rows.reshape(-1, batch).sum(0)

    def _count_spikes(self, name: str):
        stats = self.neurons[name]

        def count(out, time_major: bool) -> None:
            if not torch.is_tensor(out):
                return
            out = out.detach()
            per_step = out.flatten(0, 1) if time_major else out  # [rows, *neuron shape]
            if stats.shape is None:
                stats.shape = tuple(per_step.shape[1:])
            stats.rows += per_step.shape[0]
            stats.all_binary = ((out == 0) | (out == 1)).all() & stats.all_binary
            flat = per_step.reshape(per_step.shape[0], -1).double()
            row_totals = flat.sum(1)
            stats.spike_sum = row_totals.sum() + stats.spike_sum
            if self.per_neuron:
                counts = flat.sum(0).cpu()
                stats.per_neuron = counts if stats.per_neuron is None else stats.per_neuron + counts
            if stats.batch_spikes is not None:
                # time-major [T, B, ...] flattens to rows t * B + b, as time folded in the batch
                per_sample = self._per_sample(row_totals.cpu())
                if per_sample is not None:
                    stats.batch_spikes += per_sample

        return count

    def _synapse_hook(self, name: str, module: nn.Module):
        stats = self.synapses[name]

        def hook(_module, args) -> None:
            if not args or not torch.is_tensor(args[0]):
                return
            x = args[0].detach()
            shape = tuple(x.shape[1:])
            if stats.shape != shape:
                stats.shape = shape
                stats.fan_out = fan_out(module, shape).to(x.device)
                stats.macs_per_step = dense_macs(module, shape)
            stats.kind = _worse(stats.kind, input_kind(x))
            rows = x.shape[0]
            stats.rows += rows
            values = x.double()
            row_ops = (values * stats.fan_out).reshape(rows, -1).sum(1)
            stats.accumulates += float(row_ops.sum())
            stats.nonzero += float((x != 0).sum())
            stats.input_sum += float(values.sum())
            stats.elements += x.numel()
            if stats.batch_ops is not None:
                per_sample = self._per_sample(row_ops.cpu())
                if per_sample is not None:
                    stats.batch_ops += per_sample

        return hook

    def _product_hook(self, name: str, module: nn.Module):
        """A product of activations (e.g. ``Q K^T V``) reports its accumulates per (step,
        sample) row itself (``synaptic_operations``) and its dense MACs per row."""
        stats = self.synapses[name]

        def hook(_module, args) -> None:
            inputs = [a.detach() for a in args if torch.is_tensor(a)]
            if not inputs:
                return
            row_ops = module.synaptic_operations(*inputs).double()
            x = inputs[0]
            shape = tuple(x.shape[x.dim() - 3 :])
            if stats.shape != shape:
                stats.shape, stats.macs_per_step = shape, module.dense_macs(shape)
            for tensor in inputs:
                stats.kind = _worse(stats.kind, input_kind(tensor))
            stats.rows += row_ops.numel()
            stats.accumulates += float(row_ops.sum())
            stats.nonzero += float((x != 0).sum())
            stats.input_sum += float(x.double().sum())
            stats.elements += x.numel()
            if stats.batch_ops is not None:
                per_sample = self._per_sample(row_ops.cpu())
                if per_sample is not None:
                    stats.batch_ops += per_sample

        return hook

    # ------------------------------------------------------------------ results
    def firing_rates(self) -> dict[str, float]:
        """Mean firing rate (spikes per neuron per step) of every layer that emitted spikes."""
        return {
            name: stats.spikes / (stats.rows * _numel(stats.shape))
            for name, stats in self.neurons.items()
            if stats.rows and stats.binary
        }


def _numel(shape: tuple[int, ...] | None) -> int:
    count = 1
    for size in shape or ():
        count *= size
    return count
