"""The LIF+ step, one small function per switch, in the order BIDL's ``LifPlus`` runs them.

Each function reads soma parameters through ``p(name)`` (shaped to broadcast with the
input) and updates the switch's own states in ``states`` (a working copy of ``g``, ``y``,
``cnt``, ``r``, ``w``); ``v`` is the membrane potential of the previous step. The terms
follow BIDL's names: ``fact2`` the input term, ``fact3`` the spike-initiation term,
``fact4`` the refractory and adaptation currents.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch

Params = Callable[[str], torch.Tensor]
States = dict[str, torch.Tensor]
Term = torch.Tensor | float


class Switches(NamedTuple):
    """The six LIF+ switches, in BIDL's ``neuron_config`` order."""

    input_accum: int = 0
    rev_volt: int = 0
    fire_refrac: int = 0
    spike_init: int = 0
    trig_current: int = 0
    memb_decay: int = 0

    @property
    def has_adaptation(self) -> bool:
        """Whether the cell carries the adaptation current ``w``."""
        return self.trig_current != 0 or self.fire_refrac == 2


def accumulate_input(mode: int, p: Params, x: torch.Tensor, states: States) -> torch.Tensor:
    """input_accum 0 (CUB): the input itself; 1 (COBE): ``g = (1-eps) g + x``;
    2 (COBA): ``y = (1-eps) y + x``, ``g = (1-eps) g + e eps y``; the result is ``g``."""
    if mode == 0:
        return x
    if mode == 1:
        states["g"] = (1.0 - p("epsilon")) * states["g"] + x
    else:
        states["y"] = (1.0 - p("epsilon")) * states["y"] + x
        states["g"] = (1.0 - p("epsilon")) * states["g"] + math.e * p("epsilon") * states["y"]
    return states["g"]


def reverse_voltage(on: int, p: Params, current: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """rev_volt: scale the accumulated input by ``v_g - v``."""
    return (p("v_g") - v) * current if on else current


def refractory(
    mode: int, p: Params, fact2: torch.Tensor, v: torch.Tensor, states: States
) -> tuple[torch.Tensor, Term]:
    """fire_refrac 1 (absolute): no input while ``cnt > 0``, which counts down;
    2 (relative): ``r`` and ``w`` decay and pull towards ``v_rr`` and ``v_ar``.
    Returns ``(fact2, fact4)``."""
    if mode == 1:
        counter = states["cnt"]
        fact2 = torch.where(counter > 0, torch.zeros_like(fact2), fact2)
        states["cnt"] = (counter - 1.0).clamp(min=0.0)
    elif mode == 2:
        states["r"] = (1.0 - p("epsilon_r")) * states["r"]
        states["w"] = (1.0 - p("epsilon_w")) * states["w"]
        return fact2, states["r"] * (p("v_rr") - v) + states["w"] * (p("v_ar") - v)
    return fact2, 0.0


def spike_initiation(mode: int, p: Params, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """spike_init 0: threshold ``theta``, ``fact3 = v_0 - v``; 1 (exponential): threshold
    ``v_theta``, ``fact3 = v_0 - v + delta_t exp((v - theta) - delta_t)``; 2 (quadratic):
    threshold ``v_theta``, ``fact3 = (v_0 - v)(v_c - v)``. Returns ``(threshold, fact3)``."""
    if mode == 0:
        return p("theta"), p("v_0") - v
    if mode == 1:
        sharpness = p("delta_t")
        exponential = sharpness * torch.exp((v - p("theta")) - sharpness)
        return p("v_theta"), p("v_0") - v + exponential
    return p("v_theta"), (p("v_0") - v) * (p("v_c") - v)


def triggered_current(mode: int, p: Params, v: torch.Tensor, fact4: Term, states: States) -> Term:
    """trig_current 1 (adaptive): ``w`` decays; 2 (subthreshold): it also follows
    ``tau_recip a (v - v_w)``; ``w`` joins ``fact4``. With fire_refrac 2 ``w`` has decayed
    once already this step and decays again here, as in BIDL."""
    if mode == 0:
        return fact4
    w = (1.0 - p("epsilon_w")) * states["w"]
    if mode == 2:
        w = w + p("tau_recip") * p("a") * (v - p("v_w"))
    states["w"] = w
    return fact4 + w


def after_spike(
    switches: Switches, p: Params, spike: torch.Tensor, states: States, refractory_steps: int
) -> None:
    """Where a spike fired: the counter restarts at ``refractory_steps`` (fire_refrac 1);
    ``r`` drops by ``q_r`` (fire_refrac 2); ``w`` drops by ``b`` (fire_refrac 2 or
    trig_current 1, 2)."""
    keep = 1.0 - spike
    if switches.fire_refrac == 1:
        states["cnt"] = keep * states["cnt"] + spike * refractory_steps
    elif switches.fire_refrac == 2:
        states["r"] = keep * states["r"] + spike * (states["r"] - p("q_r"))
    if switches.has_adaptation:
        states["w"] = keep * states["w"] + spike * (states["w"] - p("b"))


def membrane_decay(
    mode: int,
    p: Params,
    reset: torch.Tensor,
    fact2: torch.Tensor,
    fact3: torch.Tensor,
    fact4: Term,
    last_v: torch.Tensor,
) -> torch.Tensor:
    """memb_decay 0: ``alpha reset + beta``; 1 (exponential):
    ``tau_recip (fact2 + fact3) + fact4``; 2 (linear): ``v + fact2 - v_leak + fact4``
    from the previous ``v``. Modes 1 and 2 ignore the reset, as BIDL does."""
    if mode == 0:
        return p("alpha") * reset + p("beta")
    if mode == 1:
        return p("tau_recip") * (fact2 + fact3) + fact4
    return last_v + fact2 - p("v_leak") + fact4
