"""BIDL's checkpoints in bidl: a bare backbone state dict under BIDL's names, BIDL's training
checkpoint file and mmcv's ``backbone.`` form are converted wherever weights are loaded
(one note), ``bidl convert-checkpoint`` writes a bidl checkpoint, and a checkpoint that
fits neither names the keys that did not match. Weights: tests/data/bidl_reference."""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from bidl.cli import main
from bidl.config import load_config
from bidl.engine.apis import build_model
from bidl.engine.checkpoint import CheckpointError, load_checkpoint, load_weights
from bidl.models.convert import bidl_key_names, bidl_weights
from bidl.registry import BACKBONES, build

DATA = Path(__file__).parent / "data" / "bidl_reference" / "backbones"
CASE = next(
    c for c in json.loads((DATA / "cases.json").read_text())["cases"]
    if c["name"] == "SeqClif3Fc3DmItout"
)  # fmt: skip
CONFIG = """
model = dict(
    type='ImageClassifier',
    backbone=dict(type='SeqClif3Fc3DmItout', timestep=20, input_channels=2, h=16, w=16,
                  nclass=10, cmode='analog', amode='mean', noise=0, soma_params='all_share'),
    neck=None,
    head=dict(type='ClsHead', loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, 5)))
dataset_type = 'DvsMnist'
pipeline = [dict(type='ToTensorType', keys=[0], dtype='float32')]
data = dict(samples_per_gpu=2, workers_per_gpu=0, data_root='./data',
            train=dict(pipeline=pipeline), val=dict(pipeline=pipeline),
            test=dict(pipeline=pipeline))
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "clif3fc3dm_itout-b2x1-dvsmnist.py"
    path.write_text(textwrap.dedent(CONFIG))
    return path


def bidl_state() -> dict[str, torch.Tensor]:
    return torch.load(DATA / CASE["state_dict"], weights_only=True)  # BIDL's own key names


def reference_output(model) -> tuple[torch.Tensor, torch.Tensor]:
    arrays = np.load(DATA / CASE["arrays"])
    model.eval()
    with torch.no_grad():
        scores = model.backbone(torch.from_numpy(arrays["x"]))
    return scores, torch.from_numpy(arrays["out"])


def notes(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "BIDL's weight names" in r.getMessage()]


@pytest.mark.parametrize("form", ["bare", "bidl_training", "mmcv"])
def test_bidl_checkpoints_load_and_give_bidls_numbers(config, tmp_path, caplog, form):
    state = bidl_state()
    if form == "bidl_training":  # BIDL's tools/train.py: data parallel names, its counters
        state = {
            "state_dict": {f"module.{k}": v for k, v in state.items()},
            "optimizer_state_dict": {"state": {}, "param_groups": []},
            "scheduler_stat_dict": None,
            "epoch": 4,
            "iters": 500,
            "seed": None,
            "config": "clif3fc3dm_itout-b16x1-dvsmnist",
        }
    elif form == "mmcv":
        state = {"meta": {"epoch": 5}, "state_dict": {f"backbone.{k}": v for k, v in state.items()}}
    path = tmp_path / "latest.pth"
    torch.save(state, path)
    model = build_model(load_config(config))
    with caplog.at_level(logging.INFO, logger="bidl"):
        load_weights(model, path)
    assert len(notes(caplog)) == 1
    scores, expected = reference_output(model)
    assert (scores - expected).abs().max().item() <= 1e-5
    if form == "bidl_training":
        checkpoint = load_checkpoint(path)
        assert checkpoint["meta"] == {"epoch": 5}  # BIDL's epoch 4 (from 0) done: resume at 5
        assert "optimizer" not in checkpoint  # BIDL's optimizer also holds its soma parameters


def test_convert_checkpoint_writes_a_bidl_checkpoint(config, tmp_path, capsys, caplog):
    source = tmp_path / "bidl.pth"
    torch.save(bidl_state(), source)
    out = tmp_path / "converted.pth"
    assert (
        main(["convert-checkpoint", str(source), "--config", str(config), "--out", str(out)]) == 0
    )
    assert f"wrote {out}" in capsys.readouterr().out
    checkpoint = torch.load(out, weights_only=True)
    assert checkpoint["meta"]["converted_from"] == str(source)
    assert all(key.startswith("backbone.") for key in checkpoint["state_dict"])
    model = build_model(load_config(config))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="bidl"):
        load_weights(model, out)
    assert notes(caplog) == []  # bidl's own names now: nothing to convert
    scores, expected = reference_output(model)
    assert (scores - expected).abs().max().item() <= 1e-5


def test_a_checkpoint_that_fits_neither_names_the_keys(config, tmp_path, capsys):
    state = bidl_state()
    state["clif4.p0.weight"] = torch.zeros(1)
    del state["head.4.bias"]
    source = tmp_path / "other.pth"
    torch.save(state, source)
    out = tmp_path / "never.pth"
    assert (
        main(["convert-checkpoint", str(source), "--config", str(config), "--out", str(out)]) == 1
    )
    message = capsys.readouterr().err
    assert "fits neither this model's names (bidl: missing backbone.body.0.conv.bias" in message
    assert (
        "nor BIDL's names for SeqClif3Fc3Dm: missing head.4.bias; unexpected clif4.p0.weight"
        in (message)
    )
    assert not out.exists()
    model = build_model(load_config(config))
    with pytest.raises(CheckpointError, match="unexpected clif4.p0.weight"):
        load_weights(model, source)


def test_a_shape_that_differs_names_both_keys(config, tmp_path):
    state = bidl_state()
    state["head.4.weight"] = torch.zeros(11, 128)
    torch.save(state, tmp_path / "eleven.pth")
    model = build_model(load_config(config))
    with pytest.raises(CheckpointError, match=r"BIDL's 'head.4.weight' has shape \[11, 128\]"):
        load_weights(model, tmp_path / "eleven.pth")


def test_bidls_older_names_are_read_too():
    # mmcv's "backbone.", data parallel's "module.", TimeDistributed's ".module." (BIDL's It
    # ResNets) and an old "unit." carry no meaning of their own
    raw = {
        "module.backbone.layer1.0.conv1.module.0.weight": torch.zeros(1),
        "unit.clif1.p0.bias": torch.ones(1),
    }
    assert list(bidl_weights({"state_dict": raw})) == ["layer1.0.conv1.0.weight", "clif1.p0.bias"]


def test_resnet_names_follow_bidls_layers():
    resnet = build(
        dict(type="ResNetLifItout", depth=10, h=16, w=16, input_channels=2, nclass=4,
             stem_channels=8, base_channels=8, low_resolut=True), BACKBONES,
    )  # fmt: skip
    names = bidl_key_names(resnet)
    assert names["stem.0.0.weight"] == ["conv.0.weight"]
    assert names["stem.1.alpha"] == ["lif.lif.alpha", "lif.alpha"]  # older BIDL: no Lif2d
    assert names["body.1.conv1.1.running_mean"] == ["layer2.0.conv1.1.running_mean"]
    assert names["body.1.downsample.1.weight"] == ["layer2.0.downsample.1.weight"]
    assert names["body.1.lif_out.theta"] == ["layer2.0.lif2.lif.theta", "layer2.0.lif2.theta"]
    assert names["head.2.bias"] == ["fc.bias"]
    lite = build(
        dict(type="ResNetLifReluItout", depth=18, h=16, w=16, input_channels=2, nclass=4,
             stem_channels=8, base_channels=8, low_resolut=True), BACKBONES,
    )  # fmt: skip
    cells = {k for k in bidl_key_names(lite) if k.endswith(".alpha")}
    # BIDL's lite ResNet: a LIF in the stem and first in each stage's first block only
    assert cells == {"stem.1.alpha", *(f"body.{i}.act1.alpha" for i in (0, 2, 4, 6))}


def test_a_segment_takes_its_part_of_a_whole_bidl_checkpoint():
    kwargs = dict(type="ResNetLifItout_MP", depth=10, h=16, w=16, input_channels=2, nclass=4,
                  stem_channels=8, base_channels=8, low_resolut=True)  # fmt: skip
    whole = build(kwargs, BACKBONES)
    bidl_named = {refs[0]: whole.state_dict()[key] for key, refs in bidl_key_names(whole).items()}
    from bidl.models.convert import convert_bidl_state_dict

    segment = build(dict(kwargs, split=[2, 4]), BACKBONES)
    state = convert_bidl_state_dict(segment, bidl_named)
    assert set(state) == set(segment.state_dict())
    segment.load_state_dict(state)


MP_CONFIG = """
models_compile_inputshape = [[1, 2, 16, 16], [1, 16, 4, 4]]
model_0 = dict(
    type='ImageClassifier',
    backbone=dict(type='ResNetLifItout_MP', timestep=3, depth=10, nclass=4, down_t=[1, 'avg'],
                  input_channels=2, noise=0, cmode='spike', stem_channels=8, base_channels=8,
                  low_resolut=True, split=[0, 2]),
    neck=None,
    head=dict(type='ClsHead', loss=dict(type='CrossEntropyLoss')))
model_1 = dict(model_0, backbone=dict(model_0['backbone'], split=[2, 4]))
dataset_type = 'Cifar10Dvs'
pipeline = [dict(type='ToTensorType', keys=[0], dtype='float32')]
data = dict(samples_per_gpu=2, workers_per_gpu=0, data_root='./data',
            train=dict(pipeline=pipeline), val=dict(pipeline=pipeline),
            test=dict(pipeline=pipeline))
"""


def test_segmented_compile_reads_a_whole_bidl_checkpoint(tmp_path):
    from bidl.deploy.from_config import _ConfigJob

    config = tmp_path / "resnetlif10-itout-b2x1-cifar10dvs_mp.py"
    config.write_text(textwrap.dedent(MP_CONFIG))
    whole = build_model(load_config(config)).backbone.eval()  # model_0 without split
    names = bidl_key_names(whole)
    torch.save({names[k][0]: v for k, v in whole.state_dict().items()}, tmp_path / "bidl.pth")
    job = _ConfigJob.load(config, tmp_path / "bidl.pth", None, None, {}, segmented=True)
    first, second = (model.backbone.eval() for model in job.models)
    x = whole.example_input(batch=2)
    with torch.no_grad():
        assert torch.equal(second(first(x)), whole(x))
