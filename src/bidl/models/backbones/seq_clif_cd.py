"""CIFAR10-DVS backbones of BIDL (2 x 128 x 128 event frames, 10 steps, 10 classes)."""

from __future__ import annotations

from torch import nn

from ...layers import Conv2dLif
from .base import register_spiking_backbone
from .seq_clif_base import SeqClifBackbone, conv_out


@register_spiking_backbone("SeqClif5Fc2CdItout", "SeqClif5Fc2CdIt")
class SeqClif5Fc2Cd(SeqClifBackbone):
    """Five conv-LIF (32/64/128/256/512; the first 5x5 stride 2, the others 3x3), each
    followed by a 2x2 max-pool, then a 512-nclass readout applied each step."""

    def build_layers(self, opts):
        plan = [(self.in_channels, 32, 5, 2, 2), (32, 64, 3, 1, 1), (64, 128, 3, 1, 1)]
        plan += [(128, 256, 3, 1, 1), (256, 512, 3, 1, 1)]
        height, width, layers = self.height, self.width, []
        for cin, cout, kernel, stride, padding in plan:
            layers.append(Conv2dLif(cin, cout, kernel, stride, padding, pool=2, **opts))
            height = conv_out(height, kernel, stride, padding, pool=2)
            width = conv_out(width, kernel, stride, padding, pool=2)
        head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(512 * height * width, 512),
            nn.ReLU(),
            nn.Linear(512, self.nclass),
        )
        return nn.Sequential(*layers), head


@register_spiking_backbone("SeqClif7Fc1CdItout", "SeqClif7Fc1CdIt")
class SeqClif7Fc1Cd(SeqClifBackbone):
    """Seven 3x3 conv-LIF (64/64/128/128/256/256/512), each followed by a 2x2 max-pool while
    the map is at least 2x2, then one fully connected layer to nclass, applied each step."""

    def build_layers(self, opts):
        channels = [self.in_channels, 64, 64, 128, 128, 256, 256, 512]
        height, width, layers = self.height, self.width, []
        for cin, cout in zip(channels[:-1], channels[1:], strict=True):
            pool = 2 if min(height, width) >= 2 else None
            layers.append(Conv2dLif(cin, cout, 3, padding=1, pool=pool, **opts))
            height, width = conv_out(height, 3, 1, 1, pool), conv_out(width, 3, 1, 1, pool)
        head = nn.Sequential(nn.Flatten(), nn.Linear(512 * height * width, self.nclass))
        return nn.Sequential(*layers), head
