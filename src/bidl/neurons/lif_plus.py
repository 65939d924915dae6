"""LIF+ (``LifPlus``): the LIF neuron with six switchable dynamics, BIDL's ``lifplus``."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from ..registry import NEURONS, BidlError
from .base import State
from .lif import Lif

SWITCH_NAMES = (
    "input_accum",
    "rev_volt",
    "fire_refrac",
    "spike_init",
    "trig_current",
    "memb_decay",
)
#: what each value of each switch means
SWITCH_CHOICES = {
    "input_accum": {0: "CUB (current)", 1: "COBE (exponential conductance)", 2: "COBA (alpha)"},
    "rev_volt": {0: "off", 1: "on (needs input_accum 1 or 2)"},
    "fire_refrac": {0: "none", 1: "absolute (counter)", 2: "relative (conductance)"},
    "spike_init": {0: "naive", 1: "exponential", 2: "quadratic"},
    "trig_current": {0: "none", 1: "adaptive", 2: "subthreshold coupling"},
    "memb_decay": {
        0: "naive (alpha, beta)",
        1: "exponential (tau_recip, v_0)",
        2: "linear (v_leak)",
    },
}
#: soma parameters beyond Lif's alpha, beta, theta, v_0, with bidl's defaults. BIDL draws the
#: ones it leaves unset uniformly from [0, 1); bidl fixes them inside that range (reproducible,
#: and stable: v_c sits between v_0 and theta, v_theta just below theta).
EXTRA_SOMA_DEFAULTS = {
    "epsilon": 0.5,  # conductance decay per step
    "v_g": 1.0,  # reversal voltage of the input conductance
    "tau_recip": 0.5,  # dt / tau
    "epsilon_r": 0.5,  # decay of the relative-refractory conductance r
    "v_rr": -0.5,  # reversal voltage of r
    "q_r": 0.5,  # jump of r at a spike
    "v_ar": -0.5,  # reversal voltage of the adaptation w (with relative refractoriness)
    "b": 0.1,  # jump of w at a spike
    "epsilon_w": 0.5,  # decay of w
    "v_theta": 0.4,  # soft threshold of exponential spike initiation
    "delta_t": 0.1,  # sharpness of exponential spike initiation
    "v_c": 0.3,  # critical voltage of quadratic spike initiation
    "a": 0.1,  # subthreshold coupling of w to v
    "v_w": 0.0,  # offset of the subthreshold coupling
    "v_leak": 0.1,  # linear leak per step
}


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
        return self.trig_current != 0 or self.fire_refrac == 2


def parse_switches(neuron_config: Any) -> Switches:
    """``[input_accum, rev_volt, fire_refrac, spike_init, trig_current, memb_decay]`` (a
    sequence, or a dict by name, missing names 0) -> checked ``Switches``."""
    if neuron_config is None:
        return Switches()
    if isinstance(neuron_config, Mapping):
        unknown = sorted(set(neuron_config) - set(SWITCH_NAMES))
        if unknown:
            raise BidlError(f"LifPlus: unknown neuron_config key(s) {unknown}; use {SWITCH_NAMES}")
        values = [neuron_config.get(name, 0) for name in SWITCH_NAMES]
    elif isinstance(neuron_config, Sequence) and not isinstance(neuron_config, str):
        values = list(neuron_config)
        if len(values) != len(SWITCH_NAMES):
            raise BidlError(
                f"LifPlus: neuron_config needs {len(SWITCH_NAMES)} values "
                f"[{', '.join(SWITCH_NAMES)}], got {len(values)}: {neuron_config!r}"
            )
    else:
        raise BidlError(
            f"LifPlus: neuron_config must be a list [{', '.join(SWITCH_NAMES)}] or a dict, "
            f"got {type(neuron_config).__name__}"
        )
    checked = []
    for name, value in zip(SWITCH_NAMES, values, strict=True):
        choices = SWITCH_CHOICES[name]
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, int) or value not in choices:
            options = "; ".join(f"{k}: {v}" for k, v in choices.items())
            raise BidlError(f"LifPlus: {name} must be one of {options}; got {value!r}")
        checked.append(value)
    switches = Switches(*checked)
    if switches.rev_volt and switches.input_accum == 0:
        raise BidlError(
            "LifPlus: rev_volt=1 scales a conductance by (v_g - v), so it needs conductance "
            "input (input_accum 1 or 2); set input_accum or turn rev_volt off"
        )
    return switches


def lifplus_state_names(neuron_config: Any = None) -> tuple[str, ...]:
    """The state tensors a LIF+ cell with these switches carries (compile exports them)."""
    s = parse_switches(neuron_config)
    names = ["v"]
    if s.input_accum in (1, 2):
        names.append("g")
    if s.input_accum == 2:
        names.append("y")
    if s.fire_refrac == 1:
        names.append("cnt")
    if s.fire_refrac == 2:
        names.append("r")
    if s.has_adaptation:
        names.append("w")
    return tuple(names)


def lifplus_soma_names(neuron_config: Any = None) -> tuple[str, ...]:
    """The extra soma parameters (beyond alpha, beta, theta, v_0) these switches use."""
    s = parse_switches(neuron_config)
    names = []
    if s.input_accum in (1, 2):
        names.append("epsilon")
    if s.rev_volt:
        names.append("v_g")
    if s.fire_refrac == 2:
        names += ["epsilon_r", "v_rr", "q_r", "v_ar"]
    if s.has_adaptation:
        names += ["epsilon_w", "b"]
    if s.spike_init == 1:
        names += ["v_theta", "delta_t"]
    if s.spike_init == 2:
        names.append("v_c")
    if s.trig_current == 2:
        names += ["a", "v_w"]
    if s.memb_decay == 2:
        names.append("v_leak")
    if s.spike_init in (1, 2) or s.trig_current == 2 or s.memb_decay == 1:
        names.append("tau_recip")
    return tuple(names)


@NEURONS.register_module(name=["lifplus", "LifPlus"])
class LifPlus(Lif):
    r"""LIF with switchable input, refractoriness, spike initiation, adaptation and decay.

    ``neuron_config = [input_accum, rev_volt, fire_refrac, spike_init, trig_current,
    memb_decay]``; all 0 gives exactly ``Lif``. One timestep (``tau`` is ``tau_recip``,
    ``e`` Euler's number, ``v = v_{t-1}`` the previous membrane state):

    .. code-block:: text

        I  = x_t                                            input_accum 0  CUB
        g  = (1-epsilon) g + x_t;  I = g                    input_accum 1  COBE
        y  = (1-epsilon) y + x_t
        g  = (1-epsilon) g + e*epsilon*y;  I = g            input_accum 2  COBA
        I  = I * (v_g - v)                                  rev_volt 1
        I  = 0 where cnt > 0;  cnt = max(cnt-1, 0)          fire_refrac 1  absolute
        r  = (1-epsilon_r) r;  R = r * (v_rr - v)           fire_refrac 2  relative (else R=0)
        w  = (1-epsilon_w) w                                trig_current 1 (and fire_refrac 2)
        w  = (1-epsilon_w) w + tau*a*(v - v_w)              trig_current 2 subthreshold
        W  = w * (v_ar - v) if fire_refrac 2 else -w        (0 without w)
        F  = 0                                              spike_init 0   naive
        F  = tau * delta_t * exp((v - v_theta) / delta_t)   spike_init 1   exponential
        F  = tau * (v - v_0) * (v - v_c)                    spike_init 2   quadratic
        v' = v + I + F + R + W                              integrate
        v' = norm(v') (+ noise in training)                 as Lif
        s  = spike_fn(v' - theta)                           fire
        v''= s*v_0 + (1-s)*v'                               reset
        cnt= s*refractory_steps + (1-s)*cnt;  r = r + s*q_r;  w = w + s*b
        v_t= alpha*v'' + beta                               memb_decay 0   naive
        v_t= v'' + tau*(v_0 - v'')                          memb_decay 1   exponential
        v_t= v'' - v_leak                                   memb_decay 2   linear

    States (``state_names``, from the switches): ``v`` always, ``g`` (1|2), ``y`` (2),
    ``cnt`` (absolute), ``r`` (relative), ``w`` (adaptive/subthreshold/relative). As in
    BIDL, ``g``, ``y`` and ``r`` start at 1, the others at 0. Soma parameters beyond
    Lif's are registered only when a switch uses them (defaults: ``EXTRA_SOMA_DEFAULTS``);
    ``soma_params``, ``learn``, ``mode``, ``memb_mode``, ``noise``, ``norm`` are Lif's.
    Analog outputs (``memb_mode`` 0-3) are ``v'``, ``v' - theta``, ``v''``, ``v_t``.
    """

    state_init = {"g": 1.0, "y": 1.0, "r": 1.0}

    def __init__(
        self,
        norm: nn.Module | None = None,
        neuron_config: Any = None,
        refractory_steps: int = 10,
        mode: str = "spike",
        memb_mode: Sequence[Any] = (0, None),
        soma_params: str = "all_share",
        input_channels: int | None = None,
        channel_dim: int = 1,
        alpha: float = 0.3,
        beta: float = 0.0,
        theta: float = 0.5,
        v_0: float = 0.0,
        learn: bool = False,
        noise: float = 0.0,
        spike_func: Any = None,
        **soma: Any,
    ) -> None:
        super().__init__(
            norm=norm,
            mode=mode,
            memb_mode=memb_mode,
            soma_params=soma_params,
            input_channels=input_channels,
            channel_dim=channel_dim,
            alpha=alpha,
            beta=beta,
            theta=theta,
            v_0=v_0,
            learn=learn,
            noise=noise,
            spike_func=spike_func,
        )
        unknown = sorted(set(soma) - set(EXTRA_SOMA_DEFAULTS))
        if unknown:
            raise BidlError(
                f"LifPlus: unknown soma parameter(s) {unknown}; LIF+ takes alpha, beta, theta, "
                f"v_0 and {', '.join(EXTRA_SOMA_DEFAULTS)}"
            )
        if isinstance(refractory_steps, bool) or not isinstance(refractory_steps, int):
            raise BidlError(f"LifPlus: refractory_steps must be an int, got {refractory_steps!r}")
        self.switches = parse_switches(neuron_config)
        self.refractory_steps = refractory_steps
        self.state_names = lifplus_state_names(self.switches)
        self.soma_names = lifplus_soma_names(self.switches)
        for key in self.soma_names:
            tensor = self._soma_tensor(key, soma.get(key, EXTRA_SOMA_DEFAULTS[key]))
            if self.learn:
                setattr(self, key, nn.Parameter(tensor))
            else:
                self.register_buffer(key, tensor)

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        self._check_input(x)
        s, p = self.switches, lambda key: self._soma(key, x)
        v = state["v"]
        new: State = {}
        current = x
        if s.input_accum == 1:
            current = new["g"] = (1.0 - p("epsilon")) * state["g"] + x
        elif s.input_accum == 2:
            decay = 1.0 - p("epsilon")
            new["y"] = decay * state["y"] + x
            current = new["g"] = decay * state["g"] + math.e * p("epsilon") * new["y"]
        if s.rev_volt:
            current = current * (p("v_g") - v)
        if s.fire_refrac == 1:
            current = torch.where(state["cnt"] > 0, torch.zeros_like(current), current)
            counter = (state["cnt"] - 1.0).clamp(min=0.0)
        drive = v + current
        if s.fire_refrac == 2:
            refractory = (1.0 - p("epsilon_r")) * state["r"]
            drive = drive + refractory * (p("v_rr") - v)
        if s.has_adaptation:
            adaptation = (1.0 - p("epsilon_w")) * state["w"]
            if s.trig_current == 2:
                adaptation = adaptation + p("tau_recip") * p("a") * (v - p("v_w"))
            effect = adaptation * (p("v_ar") - v) if s.fire_refrac == 2 else -adaptation
            drive = drive + effect
        if s.spike_init == 1:
            sharpness = p("delta_t")
            drive = drive + p("tau_recip") * sharpness * torch.exp((v - p("v_theta")) / sharpness)
        elif s.spike_init == 2:
            drive = drive + p("tau_recip") * (v - p("v_0")) * (v - p("v_c"))

        v_int = self.norm(drive) if self.norm is not None else drive  # homeostasis
        if self.training and self.noise > 0 and v_int.numel() > 1:
            v_int = v_int + self.noise * v_int.detach().std() * torch.randn_like(v_int)
        v_minus_theta = v_int - p("theta")
        spike = self.spike_fn(v_minus_theta)
        v_reset = spike * p("v_0") + (1.0 - spike) * v_int

        if s.fire_refrac == 1:
            new["cnt"] = spike * float(self.refractory_steps) + (1.0 - spike) * counter
        if s.fire_refrac == 2:
            new["r"] = refractory + spike * p("q_r")
        if s.has_adaptation:
            new["w"] = adaptation + spike * p("b")
        if s.memb_decay == 0:
            v_new = p("alpha") * v_reset + p("beta")
        elif s.memb_decay == 1:
            v_new = v_reset + p("tau_recip") * (p("v_0") - v_reset)
        else:
            v_new = v_reset - p("v_leak")
        new["v"] = v_new

        if self.mode == "spike":
            out = spike
        else:
            out = (v_int, v_minus_theta, v_reset, v_new)[self._memb_index]
            if self._activation is not None:
                out = self._activation(out)
        return out, {name: new[name] for name in self.state_names}

    def extra_repr(self) -> str:
        return f"neuron_config={list(self.switches)}, " + super().extra_repr()
