"""Shared constructor of BIDL's sequential conv-LIF backbones (``SeqClif...``).

A family subclass states its data defaults in ``defaults`` and builds its layers in
``build_layers``; every body layer is one entry of the layer sequence that ``split`` slices.
``bidl_names`` gives BIDL's module name of each body and head module that holds weights.
"""

from __future__ import annotations

import inspect
from typing import Any

from torch import nn

from ...layers import Conv2dLif, FcLif
from ...registry import BidlError
from .base import SpikingBackbone


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0, pool: int | None = None):
    """Spatial size after a convolution (and an optional max-pool of kernel = stride = pool)."""
    size = (size + 2 * padding - kernel) // stride + 1
    return size // pool if pool else size


def conv_lif(
    cin: int,
    cout: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    pool: int | None = None,
    pool_position: str = "after",
    **opts: Any,
) -> Conv2dLif:
    """A ``Conv2dLif`` whose max-pool runs after the cell (BIDL's separate ``mpN`` module)
    or, with ``pool_position='before'``, on the conv output before it (BIDL's ``mp=True``)."""
    if pool is not None and pool_position == "before":
        if "pool_position" not in inspect.signature(Conv2dLif).parameters:
            raise BidlError(
                "this model pools the conv output before the LIF cell (BIDL's mp=True), "
                "which needs Conv2dLif(pool_position='before'); this bidl's layers lack it"
            )
        opts["pool_position"] = "before"
    return Conv2dLif(cin, cout, kernel, stride, padding, pool=pool, **opts)


def fc_lif(cin: int, cout: int, **opts: Any) -> FcLif:
    return FcLif(cin, cout, **opts)


class SeqClifBackbone(SpikingBackbone):
    """BIDL's keywords for sequential conv-LIF stacks; ``None`` sizes take ``defaults``.

    ``cmode`` / ``fmode`` are the modes of the conv / fully connected LIF layers ('spike' |
    'analog'); ``readout`` is 'per_step' (BIDL's ``...Itout``) or 'time_mean' (``...It``);
    ``split=[start, end]`` keeps body layers ``start..end-1`` (see ``SpikingBackbone``).
    ``it_batch`` (BIDL's IIM batch size) is accepted and not needed: bidl reads the batch
    size from the input.
    """

    defaults: dict[str, int] = {"timestep": 10, "input_channels": 2, "h": 128, "w": 128}
    default_nclass = 10

    def __init__(
        self,
        timestep: int | None = None,
        input_channels: int | None = None,
        h: int | None = None,
        w: int | None = None,
        nclass: int | None = None,
        cmode: str = "spike",
        fmode: str = "spike",
        amode: str = "mean",
        soma_params: str = "all_share",
        noise: float = 0.0,
        neuron: Any = "lif",
        neuron_config: Any = None,
        spike_func: Any = None,
        use_inner_loop: bool = False,
        readout: str = "per_step",
        it_batch: int | None = None,
        split: list[int] | None = None,
        c0: int | None = None,
        h0: int | None = None,
        w0: int | None = None,
    ):
        given = {"timestep": timestep, "input_channels": input_channels, "h": h, "w": w}
        size = {key: self.defaults[key] if value is None else value for key, value in given.items()}
        self.in_channels = size["input_channels"] if c0 is None else c0
        self.height = size["h"] if h0 is None else h0
        self.width = size["w"] if w0 is None else w0
        self.nclass = self.default_nclass if nclass is None else nclass
        self.it_batch = it_batch
        super().__init__(
            (self.in_channels, self.height, self.width),
            size["timestep"],
            amode,
            use_inner_loop,
            readout,
        )
        opts = dict(
            mode=cmode,
            soma_params=soma_params,
            noise=noise,
            neuron=neuron,
            neuron_config=neuron_config,
            spike_func=spike_func,
        )
        self.fmode = fmode
        self.body, self.head = self.build_layers(opts)
        self.finish(split)

    def fc_options(self, opts: dict) -> dict:
        """Neuron keywords of fully connected LIF layers: ``opts`` with ``mode=fmode``."""
        return {**opts, "mode": self.fmode}

    def build_layers(self, opts: dict) -> tuple[nn.Sequential, nn.Module]:
        """Return (body, head) for one timestep; ``opts`` are the neuron keywords."""
        raise NotImplementedError

    #: BIDL's names of the body layers in order ('' for one without weights), and of the
    #: head's weighted modules by index
    bidl_body: tuple[str, ...] = ()
    bidl_head: dict[str, str] = {}

    def bidl_module_names(self) -> dict[str, str]:
        names = {f"body.{i}": name for i, name in enumerate(self.bidl_body) if name}
        names.update({f"head.{i}": name for i, name in self.bidl_head.items()})
        return names


def mlp_head(features: int, widths: list[int]) -> nn.Sequential:
    """Flatten, then Linear layers of ``widths`` with a ReLU between each two."""
    layers: list[nn.Module] = [nn.Flatten()]
    for i, width in enumerate(widths):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(features, width))
        features = width
    return nn.Sequential(*layers)


def mlp_head_names(count: int, prefix: str = "head") -> dict[str, str]:
    """BIDL's names of ``mlp_head``'s Linear layers: its ``head`` Sequential has no Flatten,
    so bidl's ``head.1, head.3, ...`` are BIDL's ``head.0, head.2, ...``; a single Linear is
    BIDL's ``fc``."""
    if prefix == "fc":
        return {"1": "fc"}
    return {str(1 + 2 * i): f"{prefix}.{2 * i}" for i in range(count)}
