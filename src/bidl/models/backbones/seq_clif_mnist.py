"""MNIST through spike encoders (rate, temporal, population): BIDL's clif3fc3 MNIST model
(BIDL's configs name it ``SeqClif3Fc3DmItout``; ``SeqClif3Fc3MnItout`` has MNIST's defaults)."""

from __future__ import annotations

from .base import register_spiking_backbone
from .seq_clif_dm import SeqClif3Fc3Dm


@register_spiking_backbone("SeqClif3Fc3MnItout", "SeqClif3Fc3MnIt")
class SeqClif3Fc3Mn(SeqClif3Fc3Dm):
    """``SeqClif3Fc3Dm``'s network on encoded 1 x 28 x 28 digits (8 steps, 10 classes)."""

    defaults = {"timestep": 8, "input_channels": 1, "h": 28, "w": 28}
