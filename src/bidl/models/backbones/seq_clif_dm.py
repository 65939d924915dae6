"""DVS-MNIST backbones of BIDL: stacks of conv-LIF layers with a readout applied each step."""

from __future__ import annotations

from torch import nn

from ...layers import Conv2dLif
from .base import SpikingBackbone, register_spiking_backbone


def neuron_options(cmode, soma_params, noise, neuron, neuron_config, spike_func) -> dict:
    """The neuron keywords every BIDL backbone forwards to its spiking layers."""
    return dict(
        mode=cmode,
        soma_params=soma_params,
        noise=noise,
        neuron=neuron,
        neuron_config=neuron_config,
        spike_func=spike_func,
    )


class _SeqClifDm(SpikingBackbone):
    """Shared constructor keywords of the DVS-MNIST family (BIDL's names and aliases)."""

    def __init__(
        self,
        timestep=20,
        input_channels=2,
        h=40,
        w=40,
        nclass=10,
        cmode="spike",
        amode="mean",
        soma_params="all_share",
        noise=0.0,
        neuron="lif",
        neuron_config=None,
        spike_func=None,
        use_inner_loop=False,
        c0=None,
        h0=None,
        w0=None,
    ):
        self.in_channels = input_channels if c0 is None else c0
        self.height = h if h0 is None else h0
        self.width = w if w0 is None else w0
        self.nclass = nclass
        super().__init__(
            (self.in_channels, self.height, self.width), timestep, amode, use_inner_loop
        )
        opts = neuron_options(cmode, soma_params, noise, neuron, neuron_config, spike_func)
        self.body, self.head = self.build_layers(opts)

    def build_layers(self, opts: dict) -> tuple[nn.Sequential, nn.Module]:
        """Return (body, head) for one timestep; ``opts`` are the neuron keywords."""
        raise NotImplementedError


@register_spiking_backbone("SeqClif3Fc3DmItout", "SeqClif3Fc3DmIt")
class SeqClif3Fc3Dm(_SeqClifDm):
    """Three conv-LIF (32/64/128, 3x3, each followed by a 2x2 max-pool), then a
    512-128-nclass readout applied at every step; outputs averaged over time."""

    def build_layers(self, opts):
        body = nn.Sequential(
            Conv2dLif(self.in_channels, 32, 3, padding=1, pool=2, **opts),
            Conv2dLif(32, 64, 3, padding=1, pool=2, **opts),
            Conv2dLif(64, 128, 3, padding=1, pool=2, **opts),
        )
        features = 128 * (self.height // 8) * (self.width // 8)
        head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(features, 512),
            nn.ReLU(),
            nn.Linear(512, 128),
            nn.ReLU(),
            nn.Linear(128, self.nclass),
        )
        return body, head


@register_spiking_backbone("SeqClif5Fc2DmItout", "SeqClif5Fc2DmIt")
class SeqClif5Fc2Dm(_SeqClifDm):
    """Five conv-LIF (32/64/128/256/256, 3x3; 2x2 max-pools after the 1st, 3rd and 5th),
    then two fully connected layers (512, nclass) applied each step; averaged over time."""

    def build_layers(self, opts):
        body = nn.Sequential(
            Conv2dLif(self.in_channels, 32, 3, padding=1, pool=2, **opts),
            Conv2dLif(32, 64, 3, padding=1, **opts),
            Conv2dLif(64, 128, 3, padding=1, pool=2, **opts),
            Conv2dLif(128, 256, 3, padding=1, **opts),
            Conv2dLif(256, 256, 3, padding=1, pool=2, **opts),
        )
        features = 256 * (self.height // 8) * (self.width // 8)
        head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(features, 512),
            nn.ReLU(),
            nn.Linear(512, self.nclass),
        )
        return body, head
