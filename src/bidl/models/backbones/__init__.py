"""Backbones, one file per family; importing this package registers them all."""

from .base import SpikingBackbone, register_spiking_backbone
from .seq_clif_dm import SeqClif3Fc3Dm, SeqClif5Fc2Dm

__all__ = ["SeqClif3Fc3Dm", "SeqClif5Fc2Dm", "SpikingBackbone", "register_spiking_backbone"]
