"""Shared constructor of BIDL's sequential conv-LIF backbones beyond DVS-MNIST.

A family subclass states its data defaults in ``defaults`` and builds its layers in
``build_layers``; every body layer is one entry of the layer sequence that ``split`` slices.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from .seq_clif_dm import _SeqClifDm


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0, pool: int | None = None):
    """Spatial size after a convolution (and an optional max-pool of kernel = stride = pool)."""
    size = (size + 2 * padding - kernel) // stride + 1
    return size // pool if pool else size


class SeqClifBackbone(_SeqClifDm):
    """BIDL's keywords for sequential conv-LIF stacks; ``None`` sizes take ``defaults``.

    ``fmode`` is the mode of fully connected LIF layers ('spike' | 'analog');
    ``split=[start, end]`` keeps body layers ``start..end-1`` (see ``SpikingBackbone``).
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
        split: list[int] | None = None,
        c0: int | None = None,
        h0: int | None = None,
        w0: int | None = None,
    ):
        given = {"timestep": timestep, "input_channels": input_channels, "h": h, "w": w}
        sizes = {
            key: self.defaults[key] if value is None else value for key, value in given.items()
        }
        self.fmode = fmode
        super().__init__(
            **sizes,
            nclass=self.default_nclass if nclass is None else nclass,
            cmode=cmode,
            amode=amode,
            soma_params=soma_params,
            noise=noise,
            neuron=neuron,
            neuron_config=neuron_config,
            spike_func=spike_func,
            use_inner_loop=use_inner_loop,
            c0=c0,
            h0=h0,
            w0=w0,
        )
        self.take_segment(split)

    def fc_options(self, opts: dict) -> dict:
        """Neuron keywords of fully connected LIF layers: ``opts`` with ``mode=fmode``."""
        return {**opts, "mode": self.fmode}

    def build_layers(self, opts: dict) -> tuple[nn.Sequential, nn.Module]:
        raise NotImplementedError
