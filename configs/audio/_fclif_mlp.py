"""``FcLifMlp``: a spiking MLP over binned spike channels ``[B, T, channels]`` (SHD, SSC):
FC-LIF layers, then a linear readout per step, averaged over time. Imported by the audio
configs through ``custom_imports``."""

from torch import nn

from bidl.layers import FcLif
from bidl.models.backbones.base import SpikingBackbone
from bidl.registry import BACKBONES


@BACKBONES.register_module(name=["FcLifMlpItout", "FcLifMlp"], force=True)
class FcLifMlp(SpikingBackbone):
    def __init__(self, timestep=100, channels=700, hidden=(256, 256), nclass=20, amode="mean"):
        super().__init__((channels,), timestep, amode)
        sizes = [channels, *hidden]
        self.body = nn.Sequential(
            *(FcLif(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        )
        self.head = nn.Linear(sizes[-1], nclass)
