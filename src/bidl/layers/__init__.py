"""Composite spiking layers: stateless parts plus neuron cells, runnable step by step or
over a whole sequence, and the temporal aggregation of a network's outputs."""

from .aggregation import AGGREGATION_MODES, TemporalAggregation
from .base import SpikingLayer
from .conv_lif import Conv2dLif
from .fc_lif import FcLif
from .lif_norm import Lif1d, Lif2d

__all__ = [
    "AGGREGATION_MODES",
    "Conv2dLif",
    "FcLif",
    "Lif1d",
    "Lif2d",
    "SpikingLayer",
    "TemporalAggregation",
]
