"""bidl's ST-YOLO n computes what BIDL's own code computes on the same weights.

``tests/data/bidl_reference/detection/st_yolo_n.npz`` was written by BIDL's classes
(``applications/dvsdetection/st-yolo`` at commit 9f87747c1e637ea37b5036da885105b4ec898648:
``YoloDetN()``, ``YOLOPAFPN(depth=0.67)``, ``YOLOXHead(num_classes=2)``), run on the CPU
in eval mode: every weight and batch-norm statistic set by ``fill`` below from its BIDL
name (the LIF constants as BIDL builds them), the input ``x`` ``[T=3, B=1, 20, 64, 64]``
run step by step with the LIF states handed on, then neck and head on the last step's
features; ``features`` holds those (strides 8, 16, 32, flattened and concatenated, as
bidl's backbone returns them) and ``out`` the decoded head output ``[1, 84, 7]`` (cx, cy,
w, h, objectness, two class probabilities)."""

import math
import re
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from bidl.models import build_classifier

GOLDEN = Path(__file__).parent / "data" / "bidl_reference" / "detection" / "st_yolo_n.npz"
SOMA = ("alpha", "beta", "theta", "v_0")


def fill(name: str, tensor: torch.Tensor) -> torch.Tensor:
    """The value the reference run gave the tensor BIDL names ``name``."""
    generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    base = torch.randn(tensor.shape, generator=generator)
    if name.endswith("running_var"):
        return 0.5 + 0.5 * base.abs()
    if name.endswith("running_mean"):
        return 0.1 * base
    if name.endswith("num_batches_tracked") or name.rsplit(".", 1)[-1] in SOMA:
        return tensor
    if name.endswith("weight") and tensor.dim() == 4:
        return base * (1.5 / math.sqrt(tensor[0].numel()))
    return 0.2 * base


def bidl_name(name: str) -> str:
    """BIDL's name of a bidl detector weight: the backbone's modules sit in ``body.yolo``
    and its LIF cells are ``act``; YOLOX's CSP layers call their convolutions ``conv1``..."""
    if name.startswith("backbone.body.yolo."):
        return "backbone." + name.removeprefix("backbone.body.yolo.").replace(".neuron.", ".act.")
    if name.startswith("neck."):
        return re.sub(r"\.cv(\d)\.", r".conv\1.", name)
    return name


@pytest.mark.parametrize("use_inner_loop", [False, True])
def test_st_yolo_n_equals_bidl(use_inner_loop):
    golden = np.load(GOLDEN)
    model = build_classifier(
        dict(
            type="Detector",
            backbone=dict(type="YoloDetN", timestep=3, h=64, w=64, use_inner_loop=use_inner_loop),
            neck=dict(type="YOLOPAFPN", depth=0.67),
            head=dict(type="YOLOXHead", num_classes=2),
        )
    ).eval()
    state = model.state_dict()
    with torch.no_grad():
        for name, tensor in state.items():
            tensor.copy_(fill(bidl_name(name), tensor))
    img = torch.from_numpy(golden["x"]).float().transpose(0, 1)  # [B, T, 20, 64, 64]
    with torch.no_grad():
        features = model.backbone(img)
        out = model.scores(img)
    assert (features - torch.from_numpy(golden["features"])).abs().max().item() <= 1e-6
    expected = torch.from_numpy(golden["out"])
    assert out.shape == expected.shape == (1, 84, 7)
    assert (out - expected).abs().max().item() <= 1e-5 * max(1.0, expected.abs().max().item())
