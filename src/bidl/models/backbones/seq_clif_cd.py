"""CIFAR10-DVS backbones of BIDL (2 x 128 x 128 event frames, 10 steps, 10 classes)."""

from __future__ import annotations

from ...registry import BidlError
from .base import IT_DEFAULTS, register_factory
from .seq_clif_base import SeqClifBackbone, mlp_head, mlp_head_names
from .seq_clif_dm import SeqClif5Fc2Dm, conv_stack

CIFAR10DVS_DEFAULTS = {"timestep": 10, "input_channels": 2, "h": 128, "w": 128}
POOL_POSITIONS = ("before", "after")


class SeqClif5Fc2Cd(SeqClif5Fc2Dm):
    """``SeqClif5Fc2Dm``'s network (five pooled conv-LIF, 512-nclass readout) with the
    CIFAR10-DVS defaults."""

    defaults = CIFAR10DVS_DEFAULTS


class SeqClif7Fc1Cd(SeqClifBackbone):
    """Seven 3x3 conv-LIF (64/64/128/128/256/256/512), each with a 2x2 max-pool, then one
    fully connected layer to nclass. ``pool_position='before'`` pools the conv output
    before the cell (BIDL's ``mp=True``: the ``...Itout`` models and ``SeqClif7Fc1DgIt``),
    'after' pools the spikes (``SeqClif7Fc1CdIt``)."""

    defaults = CIFAR10DVS_DEFAULTS
    bidl_body = tuple(f"clif{i}" for i in range(1, 8))
    bidl_head = mlp_head_names(1, prefix="fc")

    def __init__(self, *args, pool_position: str = "before", **kwargs):
        if pool_position not in POOL_POSITIONS:
            raise BidlError(
                f"{type(self).__name__}: pool_position must be 'before' or 'after', "
                f"got {pool_position!r}"
            )
        self.pool_position = pool_position
        super().__init__(*args, **kwargs)

    def build_layers(self, opts):
        channels = [self.in_channels, 64, 64, 128, 128, 256, 256, 512]
        plan = [(cin, cout, 3, 1, 1) for cin, cout in zip(channels[:-1], channels[1:], strict=True)]
        body, features = conv_stack(self, plan, opts, self.pool_position)
        return body, mlp_head(features, [self.nclass])


register_factory(SeqClif5Fc2Cd, ["SeqClif5Fc2Cd", "SeqClif5Fc2CdItout"])
register_factory(SeqClif5Fc2Cd, "SeqClif5Fc2CdIt", **IT_DEFAULTS)
register_factory(SeqClif7Fc1Cd, ["SeqClif7Fc1Cd", "SeqClif7Fc1CdItout"], pool_position="before")
register_factory(SeqClif7Fc1Cd, "SeqClif7Fc1CdIt", pool_position="after", **IT_DEFAULTS)
