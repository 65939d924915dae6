"""LUNA16 nodule classification backbone of BIDL: a CT volume read slice by slice, each
slice one timestep (1 x 32 x 32, 8 steps, 2 classes)."""

from __future__ import annotations

from .base import register_spiking_backbone
from .seq_clif_dm import SeqClif3Fc3Dm


@register_spiking_backbone("SeqClif3Fc3LcItout", "SeqClif3Fc3LcIt")
class SeqClif3Fc3Lc(SeqClif3Fc3Dm):
    """``SeqClif3Fc3Dm``'s network (three conv-LIF, 512-128-nclass readout) on CT slices."""

    defaults = {"timestep": 8, "input_channels": 1, "h": 32, "w": 32}
    default_nclass = 2
