"""Loading weights saved by BIDL's layers: its ``state_dict`` names and shapes, and bidl's.

BIDL names a layer's projection ``p0`` and its cell ``lif`` (``lifplus``); bidl names them
``conv`` / ``fc`` and ``neuron``. The batch norm of BIDL's ``Conv2dLif(norm_state=False)``
is ``norm`` in both. BIDL's channel-shared soma parameters are ``[1, C, 1, 1]`` (or
``[1, C]``), bidl's ``[C]``. A whole-model converter renames its own layer prefixes and
uses ``bidl_layer_key_map`` for the names inside each layer.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from ..neurons.spiking_cell import SpikingCell
from ..registry import BidlError
from .conv_lif import Conv2dLif
from .fc_lif import FcLif
from .lif_norm import ChannelNormCell

_CELL_NAMES = ("lif.", "lifplus.")


def bidl_layer_key_map(layer: nn.Module, bidl_prefix: str = "", prefix: str = "") -> dict[str, str]:
    """Key-prefix renames from BIDL's names inside the BIDL layer matching ``layer`` to
    ``layer``'s own: ``{bidl_prefix + 'p0.': prefix + 'conv.', ...}``.

    ``Conv2dLif``/``Conv2dLifPlus``: ``p0.`` -> ``conv.``, ``lif.``/``lifplus.`` ->
    ``neuron.``, ``norm.`` -> ``norm.``; ``FcLif``/``FcLifPlus``: ``p0.`` -> ``fc.``, the
    cell as before; ``Lif2d``/``Lif1d`` (and ``...Plus``), which are cells in bidl:
    ``lif.``/``lifplus.`` -> ``''``; a bare ``Lif``/``LifPlus``: no renames (the prefixes
    themselves map). ``bidl_prefix`` and ``prefix`` place the layer in a bigger model.
    """
    if isinstance(layer, Conv2dLif):
        inner = {"p0.": "conv.", "norm.": "norm."}
        inner.update({name: "neuron." for name in _CELL_NAMES})
    elif isinstance(layer, FcLif):
        inner = {"p0.": "fc.", **{name: "neuron." for name in _CELL_NAMES}}
    elif isinstance(layer, ChannelNormCell):
        inner = {name: "" for name in _CELL_NAMES}  # BIDL's Lif2d/Lif1d wrap the cell
    elif isinstance(layer, SpikingCell):
        inner = {"": ""}
    else:
        raise BidlError(
            f"bidl_layer_key_map: no BIDL layer corresponds to {type(layer).__name__}; "
            f"it knows Conv2dLif, FcLif, Lif2d, Lif1d, their LIF+ versions and the cells"
        )
    return {bidl_prefix + old: prefix + new for old, new in inner.items()}


def rename_keys(state: Mapping[str, torch.Tensor], key_map: Mapping[str, str]) -> dict:
    """``state`` with each key's longest matching prefix in ``key_map`` replaced; keys that
    match none are kept as they are."""
    prefixes = sorted(key_map, key=len, reverse=True)
    renamed = {}
    for key, value in state.items():
        old = next((p for p in prefixes if key.startswith(p)), None)
        renamed[key if old is None else key_map[old] + key[len(old) :]] = value
    return renamed


def convert_bidl_layer_state(
    layer: nn.Module, state: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """BIDL's ``state_dict`` of one layer (keys relative to it) as ``layer``'s: renamed by
    ``bidl_layer_key_map``, per-channel soma parameters reshaped to bidl's shape."""
    renamed = rename_keys(state, bidl_layer_key_map(layer))
    own = layer.state_dict()
    for key, value in renamed.items():
        target = own.get(key)
        if target is not None and value.shape != target.shape and value.numel() == target.numel():
            renamed[key] = value.reshape(target.shape)
    return renamed


def load_bidl_layer_state(layer: nn.Module, state: Mapping[str, torch.Tensor], strict: bool = True):
    """Load BIDL's ``state_dict`` of one layer into ``layer`` (``convert_bidl_layer_state``);
    returns ``load_state_dict``'s missing and unexpected keys."""
    return layer.load_state_dict(convert_bidl_layer_state(layer, state), strict=strict)
