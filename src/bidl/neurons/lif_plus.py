"""LIF+ (``LifPlus``): the LIF neuron with six switchable dynamics, BIDL's ``lifplus``."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from ..registry import NEURONS, BidlError
from .base import State
from .lif_plus_dynamics import (
    Switches,
    accumulate_input,
    after_spike,
    membrane_decay,
    refractory,
    reverse_voltage,
    spike_initiation,
    triggered_current,
)
from .spiking_cell import SpikingCell

__all__ = [
    "SOMA_DEFAULTS",
    "SWITCH_CHOICES",
    "SWITCH_NAMES",
    "LifPlus",
    "Switches",
    "lifplus_soma_names",
    "lifplus_state_names",
    "parse_switches",
]

SWITCH_NAMES = Switches._fields
#: what each value of each switch means
SWITCH_CHOICES = {
    "input_accum": {0: "CUB (current)", 1: "COBE (exponential conductance)", 2: "COBA (alpha)"},
    "rev_volt": {0: "off", 1: "on (needs input_accum 1 or 2)"},
    "fire_refrac": {0: "none", 1: "absolute (counter)", 2: "relative (conductance)"},
    "spike_init": {0: "naive", 1: "exponential", 2: "quadratic"},
    "trig_current": {0: "none", 1: "adaptive", 2: "subthreshold coupling"},
    "memb_decay": {
        0: "naive (alpha, beta)",
        1: "exponential (tau_recip)",
        2: "linear (v_leak)",
    },
}
#: BIDL's LIF+ soma defaults; None is drawn from torch.rand (uniform [0, 1)) at construction
SOMA_DEFAULTS: dict[str, float | None] = {
    "epsilon": None,  # conductance decay per step
    "v_g": None,  # reversal voltage of the input conductance
    "tau_recip": None,  # dt / tau
    "v_0": 0.0,  # reset potential
    "epsilon_r": None,  # decay of the relative-refractory conductance r
    "v_rr": None,  # reversal voltage of r
    "v_ar": None,  # reversal voltage of the adaptation w (with relative refractoriness)
    "q_r": None,  # drop of r at a spike
    "b": None,  # drop of w at a spike
    "epsilon_w": None,  # decay of w
    "theta": 0.5,  # threshold (spike_init 0), offset of the exponential (spike_init 1)
    "v_theta": None,  # threshold of spike_init 1 and 2
    "delta_t": None,  # sharpness of exponential spike initiation
    "v_c": None,  # critical voltage of quadratic spike initiation
    "a": None,  # subthreshold coupling of w to v
    "v_w": None,  # offset of the subthreshold coupling
    "alpha": 0.3,  # multiplicative leak (memb_decay 0)
    "beta": 0.0,  # additive leak (memb_decay 0)
    "v_leak": None,  # linear leak per step (memb_decay 2)
}


def _switch_values(neuron_config: Any) -> list[Any]:
    if neuron_config is None:
        return [0] * len(SWITCH_NAMES)
    if isinstance(neuron_config, Mapping):
        unknown = sorted(set(neuron_config) - set(SWITCH_NAMES))
        if unknown:
            raise BidlError(f"LifPlus: unknown neuron_config key(s) {unknown}; use {SWITCH_NAMES}")
        return [neuron_config.get(name, 0) for name in SWITCH_NAMES]
    if isinstance(neuron_config, Sequence) and not isinstance(neuron_config, str):
        if len(neuron_config) != len(SWITCH_NAMES):
            raise BidlError(
                f"LifPlus: neuron_config needs {len(SWITCH_NAMES)} values "
                f"[{', '.join(SWITCH_NAMES)}], got {len(neuron_config)}: {neuron_config!r}"
            )
        return list(neuron_config)
    raise BidlError(
        f"LifPlus: neuron_config must be a list [{', '.join(SWITCH_NAMES)}] or a dict, "
        f"got {type(neuron_config).__name__}"
    )


def parse_switches(neuron_config: Any) -> Switches:
    """``[input_accum, rev_volt, fire_refrac, spike_init, trig_current, memb_decay]`` (a
    sequence, or a dict by name, missing names 0) -> checked ``Switches``."""
    checked = []
    for name, value in zip(SWITCH_NAMES, _switch_values(neuron_config), strict=True):
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
    """The soma parameters these switches use, in BIDL's order of construction (the order
    of its random draws, and of its state_dict)."""
    s = parse_switches(neuron_config)
    names = ["epsilon"] if s.input_accum in (1, 2) else []
    names += ["v_g"] if s.rev_volt else []
    names += ["tau_recip", "v_0"]
    names += ["epsilon_r", "v_rr", "v_ar", "q_r"] if s.fire_refrac == 2 else []
    names += ["epsilon_w", "b"] if s.has_adaptation else []
    names += ["theta"] if s.spike_init != 2 else []
    names += {0: [], 1: ["v_theta", "delta_t"], 2: ["v_theta", "v_c"]}[s.spike_init]
    names += ["a", "v_w"] if s.trig_current == 2 else []
    names += {0: ["alpha", "beta"], 1: [], 2: ["v_leak"]}[s.memb_decay]
    return tuple(names)


def _rand(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.rand(shape)


_CELL_OPTIONS = tuple(inspect.signature(SpikingCell.__init__).parameters)[1:]


def _split_arguments(
    neuron_config: Any, kwargs: dict[str, Any]
) -> tuple[Switches, dict[str, Any], dict[str, Any]]:
    """(switches, cell options, soma values) from LifPlus's keyword arguments; the
    switches come from ``neuron_config`` or from BIDL's six keywords, not both."""
    given = {name: kwargs.pop(name) for name in SWITCH_NAMES if name in kwargs}
    if given and neuron_config is not None:
        raise BidlError(
            f"LifPlus: got neuron_config={neuron_config!r} and the switch keyword(s) "
            f"{sorted(given)}; give the six switches one way"
        )
    switches = parse_switches(given if given else neuron_config)
    options = {key: kwargs.pop(key) for key in _CELL_OPTIONS if key in kwargs}
    unknown = sorted(set(kwargs) - set(SOMA_DEFAULTS))
    if unknown:
        raise BidlError(
            f"LifPlus: unknown soma parameter(s) {unknown}; LIF+ takes "
            f"{', '.join(SOMA_DEFAULTS)} and the options {', '.join(_CELL_OPTIONS)}"
        )
    unused = sorted(set(kwargs) - set(lifplus_soma_names(switches)))
    if unused:
        raise BidlError(
            f"LifPlus(neuron_config={list(switches)}): soma parameter(s) {unused} are not "
            f"used by these switches (they use {', '.join(lifplus_soma_names(switches))})"
        )
    return switches, options, kwargs


@NEURONS.register_module(name=["lifplus", "LifPlus"])
class LifPlus(SpikingCell):
    r"""LIF with switchable input, refractoriness, spike initiation, adaptation and decay,
    computing what BIDL's ``layers.lifplus.LifPlus`` computes.

    The switches are ``neuron_config = [input_accum, rev_volt, fire_refrac, spike_init,
    trig_current, memb_decay]`` or BIDL's six keywords of those names. One timestep, from
    the previous states (``tau`` is ``tau_recip``, ``e`` Euler's number; each line is one
    function of ``lif_plus_dynamics``):

    .. code-block:: text

        I = x                                             input_accum 0  CUB
        g = (1-epsilon) g + x;  I = g                     input_accum 1  COBE
        y = (1-epsilon) y + x;  g = (1-epsilon) g + e epsilon y;  I = g    2  COBA
        fact2 = (v_g - v) I  if rev_volt, else I
        fire_refrac 1: fact2 = 0 where cnt > 0;  cnt = max(cnt - 1, 0)
        fire_refrac 2: r = (1-epsilon_r) r;  w = (1-epsilon_w) w;
                       fact4 = r (v_rr - v) + w (v_ar - v)          (else fact4 = 0)
        spike_init 0: thr = theta;    fact3 = v_0 - v
        spike_init 1: thr = v_theta;  fact3 = v_0 - v + delta_t exp((v - theta) - delta_t)
        spike_init 2: thr = v_theta;  fact3 = (v_0 - v) (v_c - v)
        trig_current 1: w = (1-epsilon_w) w;               fact4 += w
        trig_current 2: w = (1-epsilon_w) w + tau a (v - v_w);  fact4 += w
        u  = x + tau (fact2 + fact3) + fact4;  u = norm(u)         integrate
        s  = spike_fn(u - thr);  u'' = s v_0 + (1-s) u              fire, reset
        cnt = 10 (refractory_steps) where s;  r -= q_r where s;  w -= b where s
        v_t = alpha u'' + beta                     memb_decay 0
        v_t = tau (fact2 + fact3) + fact4          memb_decay 1  (no reset)
        v_t = v + fact2 - v_leak + fact4           memb_decay 2  (no reset)

    Analog outputs (``memb_mode`` 0-3) are ``u``, ``u - thr``, ``u''``, ``v_t``. States
    (``state_names``, from the switches): ``v`` always, ``g`` (1|2), ``y`` (2), ``cnt``
    (absolute), ``r`` (relative), ``w`` (adaptive/subthreshold/relative); ``g``, ``y``,
    ``r`` start at 1, the others at 0. Soma parameters: only those the switches use
    (``lifplus_soma_names``), keyword arguments defaulting to ``SOMA_DEFAULTS``; an unset
    one is drawn from ``torch.rand`` at construction in BIDL's order, so a seed gives
    BIDL's values. All switches 0 is not ``Lif``: the input enters as
    ``x + tau (x + v_0 - v)``. Training noise (``noise``) perturbs only the previous ``v``
    that memb_decay 2 reads. The other keywords (``mode``, ``memb_mode``, ``soma_params``,
    ``learn``, ``noise``, ``spike_func``, ...) are ``SpikingCell``'s.
    """

    state_init = {"g": 1.0, "y": 1.0, "r": 1.0}
    #: the analog output BIDL's LIF+ layers default to (``Conv2dLifPlus``, ``FcLifPlus``)
    layer_memb_mode = (0, "tanh")

    def __init__(
        self,
        norm: nn.Module | None = None,
        neuron_config: Any = None,
        refractory_steps: int = 10,
        **kwargs: Any,
    ) -> None:
        switches, options, soma = _split_arguments(neuron_config, dict(kwargs))
        super().__init__(norm=norm, **options)
        if isinstance(refractory_steps, bool) or not isinstance(refractory_steps, int):
            raise BidlError(f"LifPlus: refractory_steps must be an int, got {refractory_steps!r}")
        self.switches = switches
        self.refractory_steps = refractory_steps
        self.state_names = lifplus_state_names(switches)
        for key in lifplus_soma_names(switches):
            self.register_soma(key, soma.get(key, SOMA_DEFAULTS[key]), _rand)

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        self._check_input(x)
        s, v = self.switches, state["v"]

        def p(key: str) -> torch.Tensor:
            return self._soma(key, x)

        states = dict(state)
        fact2 = reverse_voltage(s.rev_volt, p, accumulate_input(s.input_accum, p, x, states), v)
        fact2, fact4 = refractory(s.fire_refrac, p, fact2, v, states)
        threshold, fact3 = spike_initiation(s.spike_init, p, v)
        fact4 = triggered_current(s.trig_current, p, v, fact4, states)
        u = x + p("tau_recip") * (fact2 + fact3) + fact4
        if self.norm is not None:
            u = self.norm(u)  # homeostasis on the integrated input
        u_minus_threshold = u - threshold
        spike = self.spike_fn(u_minus_threshold)
        reset = spike * p("v_0") + (1.0 - spike) * u
        after_spike(s, p, spike, states, self.refractory_steps)
        last_v = self._noisy(v) if s.memb_decay == 2 else v  # the only reader of the noise
        states["v"] = membrane_decay(s.memb_decay, p, reset, fact2, fact3, fact4, last_v)
        out = self._output(spike, u, u_minus_threshold, reset, states["v"])
        return out, {name: states[name] for name in self.state_names}

    def extra_repr(self) -> str:
        return f"neuron_config={list(self.switches)}, " + super().extra_repr()
