"""BIDL's LIF+ model names (``SeqClifplus...``, ``FastTextlifplus...``): the same definitions
as their LIF models, built with ``neuron='lifplus'`` and BIDL's configs' switches."""

from __future__ import annotations

from .base import IT_DEFAULTS, SpikingBackbone, register_factory
from .fasttext import FastText
from .seq_clif_cd import SeqClif5Fc2Cd
from .seq_clif_dg import SeqClif3Flif2Dg
from .seq_clif_dm import SeqClif3Fc3Dm
from .seq_clif_lc import SeqClif3Fc3Lc

#: BIDL's configs' LIF+ switches: COBE input, everything else as LIF
DEFAULT_LIFPLUS_CONFIG = (1, 0, 0, 0, 0, 0)


def register_lifplus_variant(cls: type[SpikingBackbone], eim_name: str, iim_name: str) -> None:
    """Register ``cls`` with LIF+ cells under BIDL's ``...Itout`` name and an ``...It`` name."""
    lifplus = dict(neuron="lifplus", neuron_config=DEFAULT_LIFPLUS_CONFIG)
    register_factory(cls, eim_name, **lifplus)
    register_factory(cls, iim_name, **lifplus, **IT_DEFAULTS)


register_lifplus_variant(SeqClif3Fc3Dm, "SeqClifplus3Fc3DmItout", "SeqClifplus3Fc3DmIt")
register_lifplus_variant(SeqClif5Fc2Cd, "SeqClifplus5Fc2CdItout", "SeqClifplus5Fc2CdIt")
register_lifplus_variant(
    SeqClif3Flif2Dg, "SeqClifplus3Flifplus2DgItout", "SeqClifplus3Flifplus2DgIt"
)
register_lifplus_variant(SeqClif3Fc3Lc, "SeqClifplus3Fc3LcItout", "SeqClifplus3Fc3LcIt")
register_lifplus_variant(FastText, "FastTextlifplusItout", "FastTextlifplusIt")
