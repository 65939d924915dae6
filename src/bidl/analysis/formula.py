"""The spiking-transformer papers' energy formula from an architecture and firing rates,
without data: ``E = E_MAC * FLOPs(first layer) + E_AC * sum over the other synaptic layers
of fr * T * FLOPs`` (Spikformer, ICLR 2023, appendix; Spike-driven Transformer v1/v2).

``layer_flops(model)`` runs one zero step through the model to find every synaptic layer
(convolution, linear, attention product) and its dense MACs per step, in execution order;
``formula_energy(flops, rates, timesteps)`` applies the formula with the firing rates a
paper reports (one rate for all layers, or one per layer name). ``bidl analyze`` reports
the same formula with the rates it measures (``papers_energy_pj``).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ..registry import BidlError
from .activity import ActivityMonitor
from .report import EnergyModel


@torch.no_grad()
def layer_flops(model: nn.Module) -> dict[str, int]:
    """``{layer name: dense MACs of one step}`` of every synaptic layer, in execution order.
    ``model`` is a backbone or a classifier around one (its input shape is the backbone's)."""
    backbone = getattr(model, "backbone", model)
    shape = getattr(backbone, "input_shape", None)
    if shape is None:
        raise BidlError(f"{type(backbone).__name__} declares no input_shape to run a step with")
    training = model.training
    model.eval()
    x = torch.zeros(1, 1, *shape, dtype=next(model.parameters()).dtype)
    try:
        with ActivityMonitor(model, per_neuron=False) as monitor:
            backbone(x)
    finally:
        model.train(training)
    return {name: s.macs_per_step for name, s in monitor.synapses.items() if s.rows}


def formula_energy(
    flops: Mapping[str, int],
    rates: float | Mapping[str, float],
    timesteps: int,
    energy: EnergyModel | None = None,
    encoding: bool = True,
) -> dict:
    """The formula's SOPs and energy (pJ) per sample. ``rates``: the mean firing rate of
    every layer's input, or ``{layer name: rate}`` (a layer left out counts as silent);
    ``encoding``: the first layer takes analog input (direct encoding) and runs once at
    ``E_MAC``; else it is counted like the others."""
    energy = energy or EnergyModel()
    names = list(flops)
    if isinstance(rates, Mapping):
        unknown = sorted(set(rates) - set(names))
        if unknown:
            raise BidlError(
                f"formula_energy: no synaptic layer named {unknown[0]!r}; the layers are "
                f"{', '.join(names[:6])}{' ...' if len(names) > 6 else ''}"
            )
        rate_of = {name: float(rates.get(name, 0.0)) for name in names}
    else:
        rate_of = dict.fromkeys(names, float(rates))
    first = names[0] if encoding and names else None
    sops = sum(rate_of[n] * timesteps * flops[n] for n in names if n != first)
    macs = flops[first] if first is not None else 0
    return {
        "encoding_macs": macs,
        "sops_per_sample": sops,
        "energy_pj": macs * energy.pj_per_mac + sops * energy.pj_per_ac,
    }
