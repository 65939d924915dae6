"""Turn an ``ActivityMonitor``'s counts into the analysis report: firing rates, synaptic
operations against the MACs of the equivalent non-spiking network, and energy.

Energy model (per sample):

- a synaptic layer fed spikes or event counts does one accumulate (AC) per spike and
  synapse: ``SOPs = sum over inputs of value * fan-out`` (a spike is 1, an event count of
  3 is three spikes);
- a synaptic layer fed analog values (e.g. a ReLU readout) does dense multiply-accumulates
  at every step: ``MACs = dense MACs per step * steps``;
- ``E_snn = SOPs * pJ_per_AC + MACs * pJ_per_MAC``;
- the equivalent non-spiking network runs each layer once, densely, on one frame:
  ``E_ann = dense MACs per step * pJ_per_MAC``.

The spiking-transformer papers' formula (Spikformer, Spike-driven Transformer v1/v2)
is also reported, so that their energy figures can be recomputed from an architecture and
its firing rates: ``E = pJ_per_MAC * FLOPs(first layer) + pJ_per_AC * sum over the other
layers of fr * T * FLOPs``, with ``fr`` the mean input of the layer per element and step
(its firing rate; the share of non-zero inputs for analog ones) and FLOPs the dense MACs
of one step; the encoding layer runs once.

Default figures: 0.9 pJ per 32-bit float accumulate and 4.6 pJ per multiply-accumulate
in a 45 nm process (Horowitz, ISSCC 2014), the figures the spiking-network literature uses.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..registry import BidlError
from .activity import ActivityMonitor

PERCENTILES = (5, 25, 50, 75, 95)
HISTOGRAM_BINS = 20


@dataclass(frozen=True)
class EnergyModel:
    """Energy per operation, in picojoules."""

    pj_per_ac: float = 0.9
    pj_per_mac: float = 4.6
    process: str = "45 nm"

    def __post_init__(self) -> None:
        for key in ("pj_per_ac", "pj_per_mac"):
            value = getattr(self, key)
            if not (isinstance(value, (int, float)) and value >= 0):
                raise BidlError(f"energy model: {key} must be a number >= 0, got {value!r}")


def neuron_summary(stats, samples: int) -> dict:
    """Firing rate (mean and distribution over neurons) and spikes per sample of a layer."""
    neurons = int(np.prod(stats.shape)) if stats.shape else 0
    steps = stats.rows / samples if samples else 0.0
    entry = {
        "name": stats.name,
        "type": stats.cell_type,
        "neurons": neurons,
        "shape": list(stats.shape or ()),
        "timesteps": steps,
        "spiking": stats.binary,
    }
    if not stats.rows or not stats.binary:
        entry.update(firing_rate=None, spikes_per_sample=None)
        return entry
    per_sample = np.asarray(stats.per_sample, dtype=np.float64)
    entry["firing_rate"] = stats.spikes / (stats.rows * neurons)
    entry["spikes_per_sample"] = stats.spikes / samples
    if per_sample.size:
        entry["spikes_per_sample_std"] = float(per_sample.std())
    if stats.per_neuron is not None:
        rates = stats.per_neuron.numpy().reshape(-1) / stats.rows
        counts, edges = np.histogram(rates, bins=HISTOGRAM_BINS, range=(0.0, 1.0))
        entry["per_neuron_rate"] = {
            "mean": float(rates.mean()),
            "std": float(rates.std()),
            "max": float(rates.max()),
            "silent_fraction": float((rates == 0).mean()),
            "percentiles": {str(p): float(np.percentile(rates, p)) for p in PERCENTILES},
            "histogram": {"edges": edges.tolist(), "counts": counts.tolist()},
        }
    return entry


def synapse_summary(stats, samples: int, energy: EnergyModel) -> dict:
    """SOPs (or MACs, for analog inputs) per sample, dense MACs per step, energies."""
    steps = stats.rows / samples if samples else 0.0
    analog = stats.kind == "analog"
    sops = 0.0 if analog else stats.accumulates / samples
    snn_macs = stats.macs_per_step * steps if analog else 0.0
    entry = {
        "name": stats.name,
        "type": stats.layer_type,
        "input_kind": stats.kind,
        "input_shape": list(stats.shape or ()),
        "timesteps": steps,
        "input_nonzero_rate": stats.nonzero / stats.elements if stats.elements else 0.0,
        "input_events_per_sample": None if analog else stats.input_sum / samples,
        "fan_out_mean": float(stats.fan_out.mean()) if stats.fan_out is not None else 0.0,
        "sops_per_sample": sops,
        "snn_macs_per_sample": snn_macs,
        "ann_macs_per_timestep": stats.macs_per_step,
        "snn_energy_pj": sops * energy.pj_per_ac + snn_macs * energy.pj_per_mac,
        "ann_energy_pj": stats.macs_per_step * energy.pj_per_mac,
    }
    if stats.per_sample and not analog:
        entry["sops_per_sample_std"] = float(np.std(stats.per_sample))
    # the papers' fr * T * FLOPs (fr: mean input per element and step; for analog inputs
    # the share of non-zero ones)
    rate = entry["input_nonzero_rate"] if analog else stats.input_sum / max(1, stats.elements)
    entry["input_rate"] = rate
    entry["papers_sops_per_sample"] = rate * steps * stats.macs_per_step
    return entry


def papers_energy(synapses: list[dict], energy: EnergyModel) -> dict:
    """The papers' ``E_MAC * FLOPs(first layer) + E_AC * sum(fr * T * FLOPs)`` (see the
    module docstring) from the per-layer summaries, in execution order."""
    if not synapses:
        return {"papers_sops_per_sample": 0.0, "papers_energy_pj": 0.0}
    first, rest = synapses[0], synapses[1:]
    encoding = first["ann_macs_per_timestep"] if first["input_kind"] == "analog" else 0.0
    sops = sum(s["papers_sops_per_sample"] for s in rest) + (
        0.0 if encoding else first["papers_sops_per_sample"]
    )
    return {
        "papers_sops_per_sample": sops,
        "papers_energy_pj": encoding * energy.pj_per_mac + sops * energy.pj_per_ac,
    }


def build_report(monitor: ActivityMonitor, energy: EnergyModel | None = None) -> dict:
    """The whole analysis as a JSON-ready dict (see the module docstring for the model)."""
    energy = energy or EnergyModel()
    samples = monitor.samples
    if samples == 0:
        raise BidlError("analysis: no samples were run; check the split and --samples")
    neurons = [neuron_summary(s, samples) for s in monitor.neurons.values() if s.rows]
    synapses = [synapse_summary(s, samples, energy) for s in monitor.synapses.values() if s.rows]
    total = {
        "sops_per_sample": sum(s["sops_per_sample"] for s in synapses),
        "snn_macs_per_sample": sum(s["snn_macs_per_sample"] for s in synapses),
        "ann_macs_per_timestep": sum(s["ann_macs_per_timestep"] for s in synapses),
        "snn_energy_pj": sum(s["snn_energy_pj"] for s in synapses),
        "ann_energy_pj": sum(s["ann_energy_pj"] for s in synapses),
        "spikes_per_sample": sum(n["spikes_per_sample"] or 0.0 for n in neurons),
    }
    total.update(papers_energy(synapses, energy))
    total["energy_ratio_ann_over_snn"] = (
        total["ann_energy_pj"] / total["snn_energy_pj"] if total["snn_energy_pj"] else None
    )
    return {
        "samples": samples,
        "energy_model": asdict(energy),
        "neuron_layers": neurons,
        "synaptic_layers": synapses,
        "total": total,
    }


def _si(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3f} {prefix}{unit}".rstrip()
    return (
        f"{value:.3f} {unit}".rstrip() if value != int(value) else f"{int(value)} {unit}".rstrip()
    )


def _energy(picojoules: float) -> str:
    for factor, unit in ((1e9, "mJ"), (1e6, "uJ"), (1e3, "nJ")):
        if picojoules >= factor:
            return f"{picojoules / factor:.3f} {unit}"
    return f"{picojoules:.3f} pJ"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out = [line, "  ".join("-" * w for w in widths)]
    for row in rows:
        out.append("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(out)


def format_report(report: dict) -> str:
    """The report as plain-text tables: neuron layers, synaptic layers, totals."""
    energy = report["energy_model"]
    neuron_rows = []
    for n in report["neuron_layers"]:
        dist = n.get("per_neuron_rate") or {}
        pct = dist.get("percentiles", {})
        neuron_rows.append(
            [
                n["name"],
                str(n["neurons"]),
                "-" if n["firing_rate"] is None else f"{n['firing_rate']:.4f}",
                "-" if not pct else f"{pct['5']:.3f}/{pct['50']:.3f}/{pct['95']:.3f}",
                "-" if not dist else f"{dist['silent_fraction']:.1%}",
                _si(n["spikes_per_sample"]),
            ]
        )
    synapse_rows = [
        [
            s["name"],
            s["type"],
            s["input_kind"],
            f"{s['input_nonzero_rate']:.4f}",
            _si(s["sops_per_sample"]),
            _si(s["snn_macs_per_sample"]),
            _si(s["ann_macs_per_timestep"]),
            _energy(s["snn_energy_pj"]),
            _energy(s["ann_energy_pj"]),
        ]
        for s in report["synaptic_layers"]
    ]
    total = report["total"]
    ratio = total["energy_ratio_ann_over_snn"]
    lines = [
        f"samples: {report['samples']}",
        "",
        "neuron layers (firing rate = spikes per neuron per step)",
        _table(["layer", "neurons", "rate", "p5/p50/p95", "silent", "spikes/sample"], neuron_rows),
        "",
        "synaptic layers (SOPs = input spikes x fan-out, per sample)",
        _table(
            [
                "layer",
                "type",
                "input",
                "nonzero",
                "SOPs",
                "SNN MACs",
                "ANN MACs/step",
                "E_snn",
                "E_ann",
            ],
            synapse_rows,
        ),
        "",
        f"total per sample: {_si(total['sops_per_sample'])} SOPs"
        f" ({total['sops_per_sample']:.0f}), {_si(total['snn_macs_per_sample'])} SNN MACs,"
        f" E_snn {_energy(total['snn_energy_pj'])};"
        f" equivalent ANN {_si(total['ann_macs_per_timestep'])} MACs,"
        f" E_ann {_energy(total['ann_energy_pj'])}" + (f" ({ratio:.2f}x the SNN)" if ratio else ""),
        f"papers' formula (E_MAC x FLOPs of the first layer + E_AC x sum of fr x T x FLOPs): "
        f"{_si(total['papers_sops_per_sample'])} SOPs, {_energy(total['papers_energy_pj'])}",
        f"energy figures: {energy['pj_per_ac']} pJ per accumulate, {energy['pj_per_mac']} pJ "
        f"per multiply-accumulate ({energy['process']})",
    ]
    return "\n".join(lines)
