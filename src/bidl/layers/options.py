"""Constructor options the spiking layers share: where batch norm and pooling sit, BIDL's
names for them (``norm_state``, ``mp``), and the neuron's layer defaults."""

from __future__ import annotations

from typing import Any

from ..neurons.builder import neuron_class
from ..registry import BidlError

#: 'state': batch norm on the membrane inside the cell; 'current': on the input current
NORM_MODES = ("state", "current", None)
#: max pooling 'after' the cell (on spikes) or 'before' the norm and the cell (BIDL's mp)
POOL_POSITIONS = ("after", "before")


def norm_mode(layer: str, norm: Any) -> str | None:
    """``norm`` as one of ``NORM_MODES`` (True is 'state', False is None)."""
    if norm is True:
        return "state"
    if norm is False or norm is None:
        return None
    if isinstance(norm, str) and norm in ("state", "current"):
        return norm
    raise BidlError(
        f"{layer}: norm must be 'state' (batch norm on the membrane; True), 'current' (on the "
        f"input current, before the cell) or None (no batch norm; False), got {norm!r}"
    )


def resolve_norm(
    layer: str, norm: Any, norm_state: Any, norm_state_false: str | None
) -> str | None:
    """The norm mode from bidl's ``norm`` and BIDL's ``norm_state``: ``norm_state=True`` is
    'state', ``False`` is ``norm_state_false`` (what the BIDL layer does then). Given both,
    they must agree unless ``norm`` is left at its default (True)."""
    mode = norm_mode(layer, norm)
    if norm_state is None:
        return mode
    if not isinstance(norm_state, (bool, int)):
        raise BidlError(f"{layer}: norm_state must be True or False, got {norm_state!r}")
    bidl_mode = "state" if norm_state else norm_state_false
    if norm is not True and mode != bidl_mode:
        raise BidlError(
            f"{layer}: norm={norm!r} and norm_state={norm_state!r} disagree (norm_state="
            f"{bool(norm_state)} means norm={bidl_mode!r} here); give one of them"
        )
    return bidl_mode


def resolve_pool(layer: str, pool: Any, pool_position: str, mp: Any) -> tuple[Any, str]:
    """``(pool, pool_position)`` from bidl's keywords and BIDL's ``mp`` (True:
    ``MaxPool2d(2, 2)`` on the convolution's output, before the norm and the cell)."""
    if pool_position not in POOL_POSITIONS:
        raise BidlError(
            f"{layer}: pool_position must be 'after' (pool the cell's output) or 'before' "
            f"(pool the input current, as BIDL's mp=True), got {pool_position!r}"
        )
    if mp is None or mp is False:
        return pool, pool_position
    if mp is not True:
        raise BidlError(f"{layer}: mp must be True or False, got {mp!r}")
    if pool is not None:
        raise BidlError(
            f"{layer}: mp=True (BIDL's 2x2 max pool before the cell) and pool={pool!r} both "
            f"ask for pooling; give pool= with pool_position=, or mp=True alone"
        )
    return 2, "before"


def neuron_options(neuron: Any, options: dict[str, Any], channels: int) -> dict[str, Any]:
    """A layer's neuron keywords with the layer defaults filled in: ``input_channels`` and,
    for the LIF family, BIDL's layer default ``memb_mode`` (``layer_memb_mode``)."""
    options = dict(options)
    options.setdefault("input_channels", channels)
    default = getattr(neuron_class(neuron), "layer_memb_mode", None)
    if default is not None:
        options.setdefault("memb_mode", default)
    return options
