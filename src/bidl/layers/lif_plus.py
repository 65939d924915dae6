"""LIF+ layers: ``Conv2dLifPlus``, ``FcLifPlus``, ``Lif2dPlus``, ``Lif1dPlus``.

Each is its LIF counterpart with a ``LifPlus`` cell; the six switches are given as
``neuron_config=[input_accum, rev_volt, fire_refrac, spike_init, trig_current,
memb_decay]`` or as BIDL's six keywords of those names. As BIDL's LIF+ layers they default
to ``noise=1e-3`` and ``memb_mode=(0, 'tanh')``, and ``norm_state=False`` means no batch
norm at all.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..neurons.lif_plus import LifPlus
from .conv_lif import Conv2dLif
from .fc_lif import FcLif
from .lif_norm import ChannelNormCell

#: BIDL's LIF+ layers' training noise
LIFPLUS_LAYER_NOISE = 1e-3


class Conv2dLifPlus(Conv2dLif):
    """``Conv2dLif`` with a LIF+ cell (same arguments, plus the switches)."""

    norm_state_false = None

    def __init__(self, *args: Any, neuron_config: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("neuron", "lifplus")
        kwargs.setdefault("noise", LIFPLUS_LAYER_NOISE)
        super().__init__(*args, neuron_config=neuron_config, **kwargs)


class FcLifPlus(FcLif):
    """``FcLif`` with a LIF+ cell (same arguments, plus the switches)."""

    def __init__(self, *args: Any, neuron_config: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("neuron", "lifplus")
        kwargs.setdefault("noise", LIFPLUS_LAYER_NOISE)
        super().__init__(*args, neuron_config=neuron_config, **kwargs)


class Lif2dPlus(ChannelNormCell, LifPlus):
    """LIF+ on ``[B, C, H, W]`` with ``BatchNorm2d(C)`` on the membrane when ``norm``."""

    norm_class = nn.BatchNorm2d
    ndims = (4,)
    layout = "[B, C, H, W]"


class Lif1dPlus(ChannelNormCell, LifPlus):
    """LIF+ on ``[B, C]`` or ``[B, C, L]`` with ``BatchNorm1d(C)`` on the membrane when ``norm``."""

    norm_class = nn.BatchNorm1d
    ndims = (2, 3)
    layout = "[B, C] or [B, C, L]"
