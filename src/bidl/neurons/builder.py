"""Build a neuron cell by name, so that layers and backbones can swap neuron models."""

from __future__ import annotations

import inspect
from typing import Any

from ..registry import NEURONS, BidlError, UnknownTypeError
from .base import StatefulCell


def build_neuron(neuron: Any = "lif", neuron_config: Any = None, **kwargs: Any) -> StatefulCell:
    """Make the neuron cell registered in ``NEURONS`` under ``neuron``.

    ``neuron`` is a registered name (``'lif'``, ``'Lif'``; ``'lifplus'`` once LIF+ is
    registered; a name also matches case-insensitively) or a ``StatefulCell`` class.
    ``neuron_config`` is handed to neurons that take one (LIF+'s six switches); a plain
    ``Lif`` has none and refuses it. The other keyword arguments go to the constructor.
    """
    cls = neuron_class(neuron)
    if neuron_config is not None:
        kwargs["neuron_config"] = neuron_config
    params = inspect.signature(cls).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if "neuron_config" in kwargs and "neuron_config" not in params and not takes_any:
        raise BidlError(
            f"neuron {neuron!r} takes no neuron_config (got {neuron_config!r}); "
            f"leave it None, or pick a neuron that has switches such as 'lifplus'"
        )
    try:
        inspect.signature(cls).bind(**kwargs)
    except TypeError as err:
        raise BidlError(f"neuron {neuron!r}: {err}; check the neuron's keyword arguments") from None
    return cls(**kwargs)


def neuron_class(neuron: Any = "lif") -> type[StatefulCell]:
    """The cell class ``neuron`` names (a registered name, any case) or is."""
    if isinstance(neuron, str):
        return _lookup(neuron)
    if isinstance(neuron, type) and issubclass(neuron, StatefulCell):
        return neuron
    raise BidlError(
        f"neuron must be a registered name ({_known()}) or a StatefulCell class, "
        f"got {type(neuron).__name__}"
    )


def _known() -> str:
    return ", ".join(repr(n) for n in NEURONS.names())


def _lookup(name: str) -> type:
    if name in NEURONS:
        return NEURONS.get(name)
    folded = {key.lower(): key for key in NEURONS.names()}
    if name.lower() in folded:
        return NEURONS.get(folded[name.lower()])
    raise UnknownTypeError(f"unknown neuron {name!r}; known neurons: {_known()}")
