"""BIDL's classification backbones in bidl: the outputs BIDL's own code computed
(tests/data/bidl_reference/backbones, see its cases.json) from BIDL's weights files, and
BIDL's parameter count for every backbone its classification configs build."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bidl.models.convert import convert_bidl_state_dict
from bidl.registry import BACKBONES, build

DATA = Path(__file__).parent / "data" / "bidl_reference" / "backbones"
CASES = json.loads((DATA / "cases.json").read_text())["cases"]
# quick cases also run with the time loop outside (test_zoo compares the two forms of
# every model)
QUICK = {"SeqClif3Fc3DmItout", "SeqClif3Fc3DmIt", "SeqClifplus3Fc3LcItout", "SeqClif3Fc3LcItout"}


def build_case(case: dict, **overrides) -> torch.nn.Module:
    args = {**case["constructor_args"], **overrides}
    model = build(dict(type=case["bidl_class"], **args), BACKBONES).eval()
    weights = torch.load(DATA / case["state_dict"], weights_only=True)  # BIDL's key names
    model.load_state_dict(convert_bidl_state_dict(model, weights))
    return model


def run_case(model: torch.nn.Module, case: dict) -> tuple[torch.Tensor, torch.Tensor]:
    arrays = np.load(DATA / case["arrays"])
    with torch.no_grad():
        out = model(torch.from_numpy(arrays["x"]))
    return out, torch.from_numpy(arrays["out"])


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_backbone_computes_bidls_output_from_bidls_weights(case):
    # the time loop inside the layers is the quicker form on a CPU; both give these numbers
    model = build_case(case, use_inner_loop=True)
    out, expected = run_case(model, case)
    assert list(out.shape) == case["output_shape"]
    assert (out - expected).abs().max().item() <= 1e-5
    assert expected.abs().max().item() > 1e-3  # not a trivially zero output


@pytest.mark.parametrize("name", sorted(QUICK))
def test_the_time_loop_outside_gives_the_same_output(name):
    case = next(c for c in CASES if c["name"] == name)
    out, expected = run_case(build_case(case, use_inner_loop=False), case)
    assert (out - expected).abs().max().item() <= 1e-5


def test_it_and_itout_are_different_networks_with_the_same_weights():
    it = next(c for c in CASES if c["name"] == "SeqClif3Fc3DmIt")
    itout = next(c for c in CASES if c["name"] == "SeqClif3Fc3DmItout")
    assert it["state_dict"] == itout["state_dict"]
    out_it, _ = run_case(build_case(it), it)
    out_itout, _ = run_case(build_case(itout), itout)
    assert (out_it - out_itout).abs().max().item() > 1e-3


# The backbone of each of BIDL's 33 classification configs (applications/classification,
# spikeformer aside), with its config's arguments, and the number of trainable parameters
# BIDL's own classes have (sum of numel over parameters with requires_grad, computed with
# BIDL's code; BIDL's frozen soma parameters are not counted, nor FastText's
# ``embedding_fc``, the chip's view of the embedding).
CIFAR = dict(timestep=10, input_channels=2, h=128, w=128, nclass=10)
RESNET_CIFAR = dict(timestep=10, h=128, w=128, nclass=10, down_t=[1, "avg"], input_channels=2)
RESNET_JESTER = dict(timestep=16, h=112, w=112, input_channels=3, nclass=27, down_t=[1, "avg"])
GESTURE = dict(timestep=60, input_channels=2, h=40, w=40, nclass=11)
GESTURE128 = dict(timestep=16, input_channels=2, h=128, w=128, nclass=11)
MNIST = dict(timestep=20, input_channels=2, h=40, w=40, nclass=10)
LUNA = dict(timestep=8, input_channels=1, h=32, w=32, nclass=2)
TEXT = dict(timestep=500, vocab_size=1001, embedding_dim=16, hidden_dim=256)
LIFPLUS = dict(neuron="lifplus", neuron_config=[1, False, 0, 0, 0, 0])
PARAMETER_COUNTS = [
    ("ResNetLifItout", dict(RESNET_CIFAR, depth=18), 11_183_306),
    ("ResNetLifReluItout", dict(RESNET_CIFAR, depth=18), 11_183_306),
    ("ResNetLif", dict(RESNET_CIFAR, depth=50, it_batch=8), 23_551_946),
    ("ResNetLifItout", dict(RESNET_CIFAR, depth=50), 23_551_946),
    ("ResNetLifItout_MP", dict(RESNET_CIFAR, depth=50), 23_551_946),
    ("ResNetLifReluItout", dict(RESNET_CIFAR, depth=50), 23_551_946),
    ("ResNetLifItout", dict(RESNET_CIFAR, depth=18, nclass=1000), 11_691_176),  # ES-ImageNet
    ("ResNetLifItout", dict(RESNET_JESTER, depth=18, cmode="analog"), 11_195_163),
    ("ResNetLifReluItout", dict(RESNET_JESTER, depth=18, cmode="analog"), 11_195_163),
    ("AttentionVGGNet", dict(CIFAR), 10_058_430),
    ("SeqClif5Fc2CdIt", dict(CIFAR, cmode="analog", it_batch=32), 2_625_514),
    ("SeqClif5Fc2CdItout", dict(CIFAR, cmode="analog"), 2_625_514),
    ("SeqClifplus5Fc2CdItout", dict(CIFAR, cmode="analog", **LIFPLUS), 2_625_514),
    ("SeqClif7Fc1CdIt", dict(CIFAR, cmode="analog", it_batch=32), 2_332_938),
    ("SeqClif7Fc1CdItout", dict(CIFAR, cmode="analog"), 2_332_938),
    ("SeqClif3Flif2DgItout", dict(GESTURE), 2_013_157),
    ("SeqClifplus3Flifplus2DgItout", dict(GESTURE, **LIFPLUS), 2_013_157),
    ("SeqClif7Fc1DgIt", dict(GESTURE128, it_batch=16), 2_333_451),
    ("SeqClif7Fc1DgItout", dict(GESTURE128), 2_333_451),
    ("SeqClif3Fc3DmItout", dict(MNIST, cmode="analog"), 1_799_274),
    ("SeqClifplus3Fc3DmItout", dict(MNIST, cmode="analog", **LIFPLUS), 1_799_274),
    ("SeqClif5Fc2DmIt", dict(MNIST, h=128, w=128, cmode="analog", it_batch=16), 2_625_514),
    ("SeqClif5Fc2DmItout", dict(MNIST, h=128, w=128, cmode="analog"), 2_625_514),
    ("SeqClif3Fc3DmItout", dict(MNIST, timestep=10, input_channels=5, h=28, w=28), 751_562),
    ("SeqClif3Fc3DmItout", dict(MNIST, input_channels=1, h=28, w=28), 750_410),
    ("FastTextItout", dict(TEXT), 21_137),
    ("FastTextlifplusItout", dict(TEXT, **LIFPLUS), 21_137),
    ("SeqClif3Fc3LcItout", dict(LUNA, cmode="analog"), 1_208_130),
    ("SeqClifplus3Fc3LcItout", dict(LUNA, cmode="analog", **LIFPLUS), 1_208_130),
    # the other depths of BIDL's ResNet classes (its ResNetLif takes bottleneck depths only)
    ("ResNetLifItout", dict(RESNET_CIFAR, depth=10), 4_910_666),
    ("ResNetLifReluItout", dict(RESNET_CIFAR, depth=10), 4_910_666),
    ("ResNetLifItout", dict(RESNET_CIFAR, depth=34), 21_295_178),
    ("ResNetLifReluItout", dict(RESNET_CIFAR, depth=34), 21_295_178),
    ("ResNetLifItout", dict(RESNET_CIFAR, depth=101), 42_570_186),
    ("ResNetLifReluItout", dict(RESNET_CIFAR, depth=101), 42_570_186),
    ("ResNetLif", dict(RESNET_CIFAR, depth=101), 42_570_186),
    ("ResNetLifItout", dict(RESNET_CIFAR, depth=152), 58_236_874),
    ("ResNetLifReluItout", dict(RESNET_CIFAR, depth=152), 58_236_874),
    ("ResNetLif", dict(RESNET_CIFAR, depth=152), 58_236_874),
]


@pytest.mark.parametrize(
    "name,args,expected",
    PARAMETER_COUNTS,
    ids=[f"{name}-{i}" for i, (name, _, _) in enumerate(PARAMETER_COUNTS)],
)
def test_backbone_has_bidls_parameter_count(name, args, expected):
    with torch.device("meta"):  # shapes only: no weights are drawn
        model = build(dict(type=name, **args), BACKBONES)
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert count == expected
