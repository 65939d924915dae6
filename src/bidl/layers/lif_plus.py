"""LIF+ layers: ``Conv2dLifPlus``, ``FcLifPlus``, ``Lif2dPlus``, ``Lif1dPlus``.

Each is its LIF counterpart with a ``LifPlus`` cell; ``neuron_config`` holds the six switches
``[input_accum, rev_volt, fire_refrac, spike_init, trig_current, memb_decay]``.
"""

from __future__ import annotations

from typing import Any

from ..neurons.lif_plus import LifPlus
from .conv_lif import Conv2dLif
from .fc_lif import FcLif
from .lif_norm import Lif1d, Lif2d


class Conv2dLifPlus(Conv2dLif):
    """``Conv2dLif`` with a LIF+ cell (same arguments, plus ``neuron_config``)."""

    def __init__(self, *args: Any, neuron_config: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("neuron", "lifplus")
        super().__init__(*args, neuron_config=neuron_config, **kwargs)


class FcLifPlus(FcLif):
    """``FcLif`` with a LIF+ cell (same arguments, plus ``neuron_config``)."""

    def __init__(self, *args: Any, neuron_config: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("neuron", "lifplus")
        super().__init__(*args, neuron_config=neuron_config, **kwargs)


class Lif2dPlus(Lif2d, LifPlus):
    """LIF+ on ``[B, C, H, W]`` with ``BatchNorm2d(C)`` on the membrane when ``norm``."""


class Lif1dPlus(Lif1d, LifPlus):
    """LIF+ on ``[B, C]`` or ``[B, C, L]`` with ``BatchNorm1d(C)`` on the membrane when ``norm``."""
