"""DVS128 Gesture backbones of BIDL (2 x 40 x 40 or 2 x 128 x 128 event frames, 11 classes);
the RGB-gesture application runs ``SeqClif3Flif2Dg`` on frame differences."""

from __future__ import annotations

from torch import nn

from .base import IT_DEFAULTS, register_factory, register_spiking_backbone
from .seq_clif_base import SeqClifBackbone, conv_lif, conv_out, fc_lif
from .seq_clif_cd import SeqClif7Fc1Cd


@register_spiking_backbone("SeqClif3Flif2DgItout", "SeqClif3Flif2DgIt")
class SeqClif3Flif2Dg(SeqClifBackbone):
    """Batch norm on the raw input of each step, three 3x3 stride-2 conv-LIF (64/128/256),
    then two FC-LIF layers (256, nclass; their mode is ``fmode``) whose outputs are
    averaged over time."""

    defaults = {"timestep": 60, "input_channels": 2, "h": 40, "w": 40}
    default_nclass = 11
    bidl_body = ("norm", "clif1", "clif2", "clif3", "", "flif1", "flif2")

    def build_layers(self, opts):
        channels = [self.in_channels, 64, 128, 256]
        height, width = self.height, self.width
        layers: list[nn.Module] = [nn.BatchNorm2d(self.in_channels)]
        for cin, cout in zip(channels[:-1], channels[1:], strict=True):
            layers.append(conv_lif(cin, cout, 3, stride=2, padding=1, **opts))
            height, width = conv_out(height, 3, 2, 1), conv_out(width, 3, 2, 1)
        fc_opts = self.fc_options(opts)
        layers += [
            nn.Flatten(),
            fc_lif(256 * height * width, 256, **fc_opts),
            fc_lif(256, self.nclass, **fc_opts),
        ]
        return nn.Sequential(*layers), nn.Identity()


class SeqClif7Fc1Dg(SeqClif7Fc1Cd):
    """``SeqClif7Fc1Cd``'s network with the gesture data's defaults; both BIDL gesture
    models pool before the cell."""

    defaults = {"timestep": 16, "input_channels": 2, "h": 128, "w": 128}
    default_nclass = 11


register_factory(SeqClif7Fc1Dg, ["SeqClif7Fc1Dg", "SeqClif7Fc1DgItout"], pool_position="before")
register_factory(SeqClif7Fc1Dg, "SeqClif7Fc1DgIt", pool_position="before", **IT_DEFAULTS)
