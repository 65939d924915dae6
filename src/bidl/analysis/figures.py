"""Figures of ``bidl analyze``: the per-layer activity chart, the spike raster and the
membrane traces of one sample. Each comes with the data it draws."""

from __future__ import annotations

import numpy as np
import torch

from ..registry import BidlError
from .io import new_figure
from .trace import CellTrace

#: inches; a PNG is this times --dpi pixels
ACTIVITY_SIZE = (14.0, 4.5)
RASTER_SIZE = (10.0, 8.0)
MEMBRANE_SIZE = (10.0, 4.0)
MAX_RASTER_LAYERS = 8


def _integer_ticks():
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _short(name: str) -> str:
    return name.removeprefix("backbone.")


def plot_activity(report: dict):
    """Firing rate per neuron layer (median and 5-95 % of its neurons as error bars),
    SOPs against MACs per synaptic layer, and energy per synaptic layer (log scales)."""
    fig = new_figure(*ACTIVITY_SIZE)
    rate_ax, ops_ax, energy_ax = fig.subplots(1, 3)
    neurons = [n for n in report["neuron_layers"] if n["firing_rate"] is not None]
    positions = np.arange(len(neurons))
    rates = [n["firing_rate"] for n in neurons]
    rate_ax.bar(positions, rates, color="C0", label="mean")
    spread = [n.get("per_neuron_rate") for n in neurons]
    if neurons and all(spread):
        low = [max(0.0, r - s["percentiles"]["5"]) for r, s in zip(rates, spread, strict=True)]
        high = [max(0.0, s["percentiles"]["95"] - r) for r, s in zip(rates, spread, strict=True)]
        rate_ax.errorbar(
            positions,
            rates,
            yerr=[low, high],
            fmt="none",
            color="k",
            capsize=3,
            label="5-95 % of neurons",
        )
        rate_ax.legend(fontsize="small")
    rate_ax.set_xticks(
        positions, [_short(n["name"]) for n in neurons], rotation=30, ha="right", fontsize="small"
    )
    rate_ax.set_title("firing rate (spikes / neuron / step)")

    synapses = report["synaptic_layers"]
    positions = np.arange(len(synapses))
    width = 0.27
    series = (
        ("SOPs / sample", "sops_per_sample", "C1"),
        ("SNN MACs / sample", "snn_macs_per_sample", "C3"),
        ("ANN MACs / step", "ann_macs_per_timestep", "C2"),
    )
    for offset, (label, key, colour) in zip((-width, 0.0, width), series, strict=True):
        values = [max(s[key], 0.0) for s in synapses]
        ops_ax.bar(positions + offset, values, width, label=label, color=colour)
    energies = (("SNN", "snn_energy_pj", "C1"), ("ANN", "ann_energy_pj", "C2"))
    for offset, (label, key, colour) in zip((-width / 2, width / 2), energies, strict=True):
        energy_ax.bar(
            positions + offset, [s[key] for s in synapses], width, label=label, color=colour
        )
    names = [_short(s["name"]) for s in synapses]
    for ax, title in ((ops_ax, "operations per sample"), (energy_ax, "energy per sample (pJ)")):
        ax.set_xticks(positions, names, rotation=30, ha="right", fontsize="small")
        ax.set_title(title)
        if any(bar.get_height() > 0 for bar in ax.patches):
            ax.set_yscale("log")
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig


def raster_neurons(trace: CellTrace, max_neurons: int) -> list[int]:
    """Which neurons of a layer the raster shows: up to ``max_neurons`` evenly spaced among
    those that fired at least once (all of them if fewer), by flat index."""
    active = torch.nonzero(trace.spikes.sum(0) > 0).flatten().tolist()
    if len(active) <= max_neurons:
        return active
    picks = np.linspace(0, len(active) - 1, max_neurons).round().astype(int)
    return [active[i] for i in picks]


def raster_data(traces: list[CellTrace], max_neurons: int = 100) -> dict:
    """For each layer: spikes per step, the neurons shown and each one's spike times."""
    layers = []
    for trace in traces[:MAX_RASTER_LAYERS]:
        shown = raster_neurons(trace, max_neurons)
        layers.append(
            {
                "name": trace.name,
                "neurons": int(trace.spikes.shape[1]),
                "spikes_per_step": trace.spikes.sum(1).tolist(),
                "shown": shown,
                "spike_times": [
                    torch.nonzero(trace.spikes[:, n]).flatten().tolist() for n in shown
                ],
            }
        )
    return {"timesteps": int(traces[0].spikes.shape[0]) if traces else 0, "layers": layers}


def plot_raster(data: dict):
    """One panel per layer: a black cell at (step, neuron) for every spike of the shown
    neurons."""
    fig = new_figure(*RASTER_SIZE)
    layers = data["layers"]
    axes = fig.subplots(max(1, len(layers)), 1, sharex=True, squeeze=False)[:, 0]
    steps = max(1, data["timesteps"])
    for ax, layer in zip(axes, layers, strict=False):
        grid = np.zeros((max(1, len(layer["shown"])), steps))
        for row, times in enumerate(layer["spike_times"]):
            grid[row, times] = 1.0
        # one row per shown neuron, one column per step: a black cell is a spike
        ax.imshow(
            grid,
            aspect="auto",
            cmap="Greys",
            vmin=0,
            vmax=1,
            interpolation="nearest",
            extent=(-0.5, steps - 0.5, len(layer["shown"]) - 0.5, -0.5),
        )
        ax.set_ylabel(
            f"{_short(layer['name'])}\n{len(layer['shown'])}/{layer['neurons']}", fontsize="small"
        )
        ax.set_yticks([])
    axes[-1].set_xlabel("timestep")
    axes[-1].xaxis.set_major_locator(_integer_ticks())
    fig.suptitle("spike raster of one sample (neurons that fired, evenly sampled)")
    fig.tight_layout()
    return fig


def parse_neuron(spec: str, traces: list[CellTrace]) -> tuple[CellTrace, int]:
    """``LAYER:INDEX``: LAYER is a neuron layer's name or its position in the table
    (0 = first), INDEX a neuron's flat index in that layer."""
    layer, sep, index = spec.rpartition(":")
    if not sep or not index.isdigit():
        raise BidlError(
            f"--neurons {spec!r}: expected LAYER:INDEX, e.g. 0:17 or backbone.body.0.neuron:17"
        )
    names = [t.name for t in traces]
    if layer.isdigit() and int(layer) < len(traces):
        trace = traces[int(layer)]
    elif layer in names:
        trace = traces[names.index(layer)]
    else:
        raise BidlError(
            f"--neurons {spec!r}: no neuron layer {layer!r}; use a position 0-{len(traces) - 1} "
            f"or one of {', '.join(names)}"
        )
    neuron = int(index)
    if neuron >= trace.spikes.shape[1]:
        raise BidlError(
            f"--neurons {spec!r}: layer {trace.name} has {trace.spikes.shape[1]} neurons "
            f"(indices 0-{trace.spikes.shape[1] - 1})"
        )
    return trace, neuron


def default_neurons(traces: list[CellTrace], count: int = 4) -> list[tuple[CellTrace, int]]:
    """One neuron of each of the first ``count`` layers: the one whose spike count is
    closest to half the steps (it both fires and stays silent; lowest index on ties)."""
    chosen = []
    for trace in traces[:count]:
        totals = trace.spikes.sum(0)
        distance = (totals - trace.spikes.shape[0] / 2).abs()
        chosen.append((trace, int(torch.argmin(distance))))
    return chosen


def membrane_data(chosen: list[tuple[CellTrace, int]]) -> dict:
    neurons = []
    for trace, index in chosen:
        potential = trace.potential[:, index].tolist() if trace.potential is not None else None
        neurons.append(
            {
                "layer": trace.name,
                "index": index,
                "potential": potential,
                "potential_kind": trace.potential_kind,
                "spike_times": torch.nonzero(trace.spikes[:, index]).flatten().tolist(),
            }
        )
    return {"neurons": neurons}


def plot_membrane(data: dict):
    """Potential of each chosen neuron over time, its spikes marked, the threshold at 0."""
    fig = new_figure(*MEMBRANE_SIZE)
    ax = fig.subplots()
    for i, neuron in enumerate(data["neurons"]):
        if neuron["potential"] is None:
            continue
        colour = f"C{i % 10}"
        steps = np.arange(len(neuron["potential"]))
        label = f"{_short(neuron['layer'])}[{neuron['index']}]"
        ax.plot(steps, neuron["potential"], color=colour, marker=".", label=label)
        spikes = neuron["spike_times"]
        ax.scatter(
            spikes,
            [neuron["potential"][t] for t in spikes],
            color=colour,
            marker="*",
            s=80,
            zorder=3,
        )
    kinds = {n["potential_kind"] for n in data["neurons"]}
    if kinds == {"membrane minus threshold, before firing"}:
        ax.axhline(0.0, color="k", linestyle="--", linewidth=0.8, label="threshold")
        ax.set_ylabel("v - theta")
    else:
        ax.set_ylabel("potential")
    ax.set_xlabel("timestep")
    ax.xaxis.set_major_locator(_integer_ticks())
    ax.set_title("membrane potential of chosen neurons (stars: spikes)")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize="small")
    fig.tight_layout()
    return fig
