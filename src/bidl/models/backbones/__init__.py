"""Backbones, one file per family; importing this package registers them all."""

from .base import SpikingBackbone, register_spiking_backbone
from .fasttext import FastText
from .resnet_lif import ResNetLifBackbone, ResNetLifReluBackbone
from .seq_clif_cd import SeqClif5Fc2Cd, SeqClif7Fc1Cd
from .seq_clif_dg import SeqClif3Flif2Dg, SeqClif7Fc1Dg
from .seq_clif_dm import SeqClif3Fc3Dm, SeqClif5Fc2Dm
from .seq_clif_lc import SeqClif3Fc3Lc
from .seq_clif_mnist import SeqClif3Fc3Mn

__all__ = [
    "FastText",
    "ResNetLifBackbone",
    "ResNetLifReluBackbone",
    "SeqClif3Fc3Dm",
    "SeqClif3Fc3Lc",
    "SeqClif3Fc3Mn",
    "SeqClif3Flif2Dg",
    "SeqClif5Fc2Cd",
    "SeqClif5Fc2Dm",
    "SeqClif7Fc1Cd",
    "SeqClif7Fc1Dg",
    "SpikingBackbone",
    "register_spiking_backbone",
]
