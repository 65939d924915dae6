"""ST-YOLO's spiking YOLOv5 backbones (BIDL's ``applications/dvsdetection/st-yolo``:
``YoloDetN`` / ``YoloDetS`` / ``YoloDetX``), one definition for every width and depth.

One timestep of event frames ``[B, C, H, W]`` goes through YOLOv5's stages; four of its
convolutions are Conv-LIF layers whose membranes carry information from one frame to the
next (the second and third stride-2 convolutions, the last convolution of the third C3
and of SPPF)::

    conv1  6x6/2 ConvBnAct        c1            stride 2
    conv2  3x3/2 Conv-LIF         c2            stride 4
    C3_1   C3 x n1                c2
    conv3  3x3/2 Conv-LIF         c3            stride 8   -> feature 0
    C3_2   C3 x n2                c3
    conv4  3x3/2 ConvBnAct        c4
    C3_3   C3 x n3, Conv-LIF out  c4            stride 16  -> feature 1
    conv5  3x3/2 ConvBnAct        c5
    C3_4   C3 x n4                c5
    SPPF   SPPF, Conv-LIF out     c5            stride 32  -> feature 2

Channels are YOLOv5's ``(64, 128, 256, 512, 1024) * width`` and C3 depths
``round((3, 6, 9, 3) * depth)``: n is width 0.25 / depth 0.33, s 0.5 / 0.33, x 1.25 /
1.33. (BIDL's stage 3 output, the C3_1 + conv3 result, is feature 0: the PAFPN takes
BIDL's stages 2, 3 and 4 at strides 8, 16, 32.)

The per-step output is the three feature maps flattened and concatenated, ``[B, F]``
(what BIDL's compiled ST-YOLO backbone hands its head); ``split_features`` gives them
back as maps. With ``amode='pick'`` (the default) the backbone's output is the last
step's features: the detector's boxes describe the end of the window.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ...layers.base import Apply, SpikingLayer
from ...registry import BACKBONES, BidlError
from ..yolo_blocks import C3, SPPF, ConvBnAct, conv_lif
from .base import SpikingBackbone, register_factory

#: YOLOv5's base channels of conv1..conv5 and C3 depths of C3_1..C3_4
BASE_CHANNELS = (64, 128, 256, 512, 1024)
BASE_DEPTHS = (3, 6, 9, 3)
#: (width, depth, conv1 padding) of BIDL's three models (YoloDetS pads its stem by 1)
SIZES = {"n": (0.25, 1 / 3, 2), "s": (0.5, 1 / 3, 1), "x": (1.25, 4 / 3, 2)}
STRIDES = (8, 16, 32)


def scaled_channels(width: float) -> tuple[int, ...]:
    """Channels of conv1..conv5 at ``width`` (multiples of 8 once above 8, as YOLOv5)."""
    return tuple(max(8, int(math.ceil(c * width / 8) * 8)) for c in BASE_CHANNELS)


def scaled_depths(depth: float) -> tuple[int, ...]:
    return tuple(max(1, round(n * depth)) for n in BASE_DEPTHS)


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


class StYoloBody(SpikingLayer):
    """The per-step network: event frames -> the three feature maps, flattened into one
    ``[B, F]`` (``[T, B, F]`` in step mode 'm')."""

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int],
        depths: Sequence[int],
        stem_padding: int,
        spike_func: Any = None,
    ) -> None:
        super().__init__()
        c1, c2, c3, c4, c5 = channels
        n1, n2, n3, n4 = depths
        self.stem_padding = stem_padding
        self.conv1 = ConvBnAct(in_channels, c1, 6, 2, stem_padding)
        self.conv2 = conv_lif(c1, c2, 3, 2, 1, spike_func=spike_func)
        self.C3_1 = C3(c2, c2, n1)
        self.conv3 = conv_lif(c2, c3, 3, 2, 1, spike_func=spike_func)
        self.C3_2 = C3(c3, c3, n2)
        self.conv4 = ConvBnAct(c3, c4, 3, 2, 1)
        self.C3_3 = C3(c4, c4, n3, lif=True, spike_func=spike_func)
        self.conv5 = ConvBnAct(c4, c5, 3, 2, 1)
        self.C3_4 = C3(c5, c5, n4)
        self.SPPF = SPPF(c5, c5, lif=True, spike_func=spike_func)

    def compute(self, x: torch.Tensor, apply: Apply) -> torch.Tensor:
        x = apply(self.conv3, apply(self.C3_1, apply(self.conv2, apply(self.conv1, x))))
        p3 = x
        p4 = apply(self.C3_3, apply(self.conv4, apply(self.C3_2, x)))
        p5 = apply(self.SPPF, apply(self.C3_4, apply(self.conv5, p4)))
        return torch.cat([p.flatten(-3) for p in (p3, p4, p5)], dim=-1)


class StYolo(SpikingBackbone):
    """ST-YOLO's spiking YOLOv5 backbone at any ``width`` / ``depth`` (see the module
    docstring; the registered names ``YoloDetN`` / ``YoloDetS`` / ``YoloDetX`` are BIDL's
    three models).

    Args:
        timestep: T, frames per sample.
        input_channels, h, w: one frame's shape (GEN1 in ST-YOLO: 20 channels, two
            polarities x 10 time bins, at 256 x 320, the 240 x 304 sensor padded).
        width, depth: YOLOv5's channel and depth multiples.
        stem_padding: padding of the 6x6 stem convolution (BIDL: 2; 1 in ``YoloDetS``).
        spike_func: None (BIDL's Heaviside without gradient) or a surrogate (see
            ``build_spike_fn``).
        amode: 'pick' (the last step's features), or 'mean' / 'sum' over the steps.
        use_inner_loop: run the time loop inside each layer (IIM) instead of outside (EIM).
    """

    def __init__(
        self,
        timestep: int = 5,
        input_channels: int = 20,
        h: int = 256,
        w: int = 320,
        width: float = 0.5,
        depth: float = 1 / 3,
        stem_padding: int = 2,
        spike_func: Any = None,
        amode: str = "pick",
        use_inner_loop: bool = False,
    ) -> None:
        for key, value in (("input_channels", input_channels), ("h", h), ("w", w)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise BidlError(f"StYolo: {key} must be a positive int, got {value!r}")
        if not (width > 0 and depth > 0):
            raise BidlError(f"StYolo: width and depth must be > 0, got {width!r}, {depth!r}")
        super().__init__((input_channels, h, w), timestep, amode, use_inner_loop)
        self.channels = scaled_channels(width)
        self.depths = scaled_depths(depth)
        self.body = nn.Sequential()
        self.body.add_module(
            "yolo", StYoloBody(input_channels, self.channels, self.depths, stem_padding, spike_func)
        )
        self.head = nn.Identity()
        self.feature_shapes = self._feature_shapes(h, w, stem_padding)
        self.finish()

    @property
    def out_channels(self) -> tuple[int, int, int]:
        """Channels of the three feature maps (strides 8, 16, 32)."""
        return tuple(shape[0] for shape in self.feature_shapes)

    def _feature_shapes(self, h: int, w: int, stem_padding: int) -> list[tuple[int, int, int]]:
        sizes = [(_conv_out(h, 6, 2, stem_padding), _conv_out(w, 6, 2, stem_padding))]
        for _ in range(4):  # conv2..conv5: 3x3, stride 2, padding 1
            sizes.append(tuple(_conv_out(s, 3, 2, 1) for s in sizes[-1]))
        _, c2, c3, c4, c5 = self.channels
        return [(c3, *sizes[2]), (c4, *sizes[3]), (c5, *sizes[4])]

    def split_features(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """The backbone's output ``[B, F]`` -> the three maps ``[B, C_i, H_i, W_i]``."""
        sizes = [math.prod(shape) for shape in self.feature_shapes]
        if flat.shape[-1] != sum(sizes):
            raise BidlError(
                f"StYolo.split_features: expected {sum(sizes)} features per sample "
                f"(maps {self.feature_shapes}), got shape {list(flat.shape)}"
            )
        parts = flat.split(sizes, dim=-1)
        return [
            p.reshape(*flat.shape[:-1], *shape)
            for p, shape in zip(parts, self.feature_shapes, strict=True)
        ]


BACKBONES.register_module(name=["StYolo"], module=StYolo)
for _key, (_width, _depth, _pad) in SIZES.items():
    register_factory(
        StYolo,
        [f"YoloDet{_key.upper()}", f"st_yolov5{_key}"],
        width=_width,
        depth=_depth,
        stem_padding=_pad,
    )
