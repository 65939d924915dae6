"""BIDL's ``AttentionVGGNet`` for CIFAR10-DVS: a VGG of conv-BN-LIF blocks with temporal-wise
and temporal-channel attention; the attention reads whole sequences, so the model runs with
the time loop inside its layers only."""

from __future__ import annotations

from typing import Any

from torch import nn

from ...registry import BACKBONES, BidlError
from .base import SpikingBackbone
from .seq_clif_base import conv_lif
from .temporal_attention import TemporalChannelJointAttention, TemporalWiseAttention


@BACKBONES.register_module()
class AttentionVGGNet(SpikingBackbone):
    """``AvgPool2d(34, 2)`` on the input, then conv-BN-LIF blocks (3x3): 64, 128, pool,
    256, 256, temporal-wise attention, pool, 512, 512, pool, 512, 512, TCJA, temporal-wise
    attention, pool; a linear readout per step, averaged over time.

    BIDL builds it for 10 steps, 2 channels and 10 classes whatever its arguments say;
    bidl takes ``timestep``, ``input_channels``, ``h``, ``w`` and ``nclass`` as given (the
    same network for BIDL's values). ``it_batch`` is accepted and not needed.
    """

    sequence_only = True

    def __init__(
        self,
        timestep: int = 10,
        input_channels: int = 2,
        h: int = 128,
        w: int = 128,
        nclass: int = 10,
        cmode: str = "spike",
        noise: float = 0.0,
        soma_params: str = "all_share",
        neuron: Any = "lif",
        neuron_config: Any = None,
        spike_func: Any = None,
        amode: str = "mean",
        use_inner_loop: bool = True,
        it_batch: int | None = None,
    ):
        if not use_inner_loop:
            raise BidlError(
                "AttentionVGGNet: its temporal attention weighs each timestep against all the "
                "others, so it runs with the time loop inside the layers only "
                "(use_inner_loop=True)"
            )
        super().__init__((input_channels, h, w), timestep, amode, use_inner_loop)
        opts = dict(
            norm="current",  # conv -> BN -> LIF: BIDL's Conv3x3Block
            mode=cmode,
            noise=noise,
            soma_params=soma_params,
            neuron=neuron,
            neuron_config=neuron_config,
            spike_func=spike_func,
        )

        def block(cin: int, cout: int) -> nn.Module:
            return conv_lif(cin, cout, 3, padding=1, **opts)

        self.body = nn.Sequential(
            nn.AvgPool2d(34, 2),
            block(input_channels, 64),
            block(64, 128),
            nn.AvgPool2d(2, 2),
            block(128, 256),
            block(256, 256),
            TemporalWiseAttention(timestep),
            nn.AvgPool2d(2, 2),
            block(256, 512),
            block(512, 512),
            nn.AvgPool2d(2, 2),
            block(512, 512),
            block(512, 512),
            TemporalChannelJointAttention(3, 3, timestep, 512),
            TemporalWiseAttention(timestep),
            nn.AvgPool2d(2, 2),
        )
        size_h, size_w = (h - 34) // 2 + 1, (w - 34) // 2 + 1
        size_h, size_w = size_h // 16, size_w // 16  # four 2x2 pools
        if size_h < 1 or size_w < 1:
            raise BidlError(f"AttentionVGGNet: input {h}x{w} is too small (at least 64x64)")
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(512 * size_h * size_w, nclass))
        self.finish()

    def bidl_module_names(self) -> dict[str, list[str] | str]:
        names: dict[str, list[str] | str] = {}
        blocks = [1, 2, 4, 5, 8, 9, 11, 12]
        for number, index in enumerate(blocks, start=1):
            names[f"body.{index}.conv"] = f"conv{number}.conv"
            names[f"body.{index}.norm"] = f"conv{number}.bn"
            names[f"body.{index}.neuron"] = [f"conv{number}.lif.lif", f"conv{number}.lif"]
        names["body.6.mlp"] = "twa1.sharedMLP"
        names["body.13"] = "tcja"
        names["body.14.mlp"] = "twa2.sharedMLP"
        names["head.1"] = "fc.1"
        return names
