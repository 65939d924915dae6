"""DVS-MNIST backbones of BIDL: stacks of conv-LIF layers, each followed by a max-pool, and
an MLP readout (2 x 40 x 40 or 128 x 128 event frames, 20 steps, 10 classes)."""

from __future__ import annotations

from torch import nn

from .base import register_spiking_backbone
from .seq_clif_base import SeqClifBackbone, conv_lif, conv_out, mlp_head, mlp_head_names


def conv_stack(backbone: SeqClifBackbone, plan, opts, pool_position: str = "after"):
    """Conv-LIF layers ``(cin, cout, kernel, stride, padding)``, each with a 2x2 max-pool,
    and the size ``channels * h * w`` of the last feature map."""
    height, width, layers = backbone.height, backbone.width, []
    for cin, cout, kernel, stride, padding in plan:
        layers.append(
            conv_lif(
                cin, cout, kernel, stride, padding, pool=2, pool_position=pool_position, **opts
            )
        )
        height = conv_out(height, kernel, stride, padding, pool=2)
        width = conv_out(width, kernel, stride, padding, pool=2)
    return nn.Sequential(*layers), plan[-1][1] * height * width


@register_spiking_backbone("SeqClif3Fc3DmItout", "SeqClif3Fc3DmIt")
class SeqClif3Fc3Dm(SeqClifBackbone):
    """Three conv-LIF (32/64/128, 3x3), each followed by a 2x2 max-pool, then a
    512-128-nclass readout (per step, or once on the time-averaged features)."""

    defaults = {"timestep": 20, "input_channels": 2, "h": 40, "w": 40}
    bidl_body = ("clif1", "clif2", "clif3")
    bidl_head = mlp_head_names(3)

    def build_layers(self, opts):
        plan = [(self.in_channels, 32, 3, 1, 1), (32, 64, 3, 1, 1), (64, 128, 3, 1, 1)]
        body, features = conv_stack(self, plan, opts)
        return body, mlp_head(features, [512, 128, self.nclass])


@register_spiking_backbone("SeqClif5Fc2DmItout", "SeqClif5Fc2DmIt")
class SeqClif5Fc2Dm(SeqClifBackbone):
    """Five conv-LIF (32 5x5 stride 2, then 64/128/256/512 3x3), each followed by a 2x2
    max-pool, then a 512-nclass readout (per step, or once on the time-averaged features)."""

    defaults = {"timestep": 20, "input_channels": 2, "h": 128, "w": 128}
    bidl_body = ("clif1", "clif2", "clif3", "clif4", "clif5")
    bidl_head = mlp_head_names(2)

    def build_layers(self, opts):
        plan = [(self.in_channels, 32, 5, 2, 2), (32, 64, 3, 1, 1), (64, 128, 3, 1, 1)]
        plan += [(128, 256, 3, 1, 1), (256, 512, 3, 1, 1)]
        body, features = conv_stack(self, plan, opts)
        return body, mlp_head(features, [512, self.nclass])
