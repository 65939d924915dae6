"""DVS128 Gesture backbones of BIDL (2 x 40 x 40 event frames, 60 steps, 11 classes); the
RGB-gesture application runs them on frame differences."""

from __future__ import annotations

from torch import nn

from ...layers import Conv2dLif, FcLif
from .base import register_spiking_backbone
from .seq_clif_base import SeqClifBackbone, conv_out
from .seq_clif_cd import SeqClif7Fc1Cd

GESTURE_DEFAULTS = {"timestep": 60, "input_channels": 2, "h": 40, "w": 40}


@register_spiking_backbone("SeqClif3Flif2DgItout", "SeqClif3Flif2DgIt")
class SeqClif3Flif2Dg(SeqClifBackbone):
    """Batch norm on the input, three 3x3 stride-2 conv-LIF (64/128/256), then two FC-LIF
    layers (256, nclass; their mode is ``fmode``) whose outputs are averaged over time."""

    defaults = GESTURE_DEFAULTS
    default_nclass = 11

    def build_layers(self, opts):
        channels = [self.in_channels, 64, 128, 256]
        height, width = self.height, self.width
        layers: list[nn.Module] = [nn.BatchNorm2d(self.in_channels)]
        for cin, cout in zip(channels[:-1], channels[1:], strict=True):
            layers.append(Conv2dLif(cin, cout, 3, stride=2, padding=1, **opts))
            height, width = conv_out(height, 3, 2, 1), conv_out(width, 3, 2, 1)
        fc_opts = self.fc_options(opts)
        layers += [
            nn.Flatten(),
            FcLif(256 * height * width, 256, **fc_opts),
            FcLif(256, self.nclass, **fc_opts),
        ]
        return nn.Sequential(*layers), nn.Identity()


@register_spiking_backbone("SeqClif7Fc1DgItout", "SeqClif7Fc1DgIt")
class SeqClif7Fc1Dg(SeqClif7Fc1Cd):
    """``SeqClif7Fc1Cd``'s network with the gesture data's defaults."""

    defaults = GESTURE_DEFAULTS
    default_nclass = 11
