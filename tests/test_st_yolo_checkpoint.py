"""BIDL's ST-YOLO checkpoints (PyTorch Lightning files with BIDL's module names) load into
bidl's Detector, through ``bidl convert-checkpoint`` and wherever weights load, without
running anything the file pickles.

The files here are written in the layout BIDL's training saves (its ``LightningModule``
holds the detector as ``mdl``: ``mdl.backbone.*``, ``mdl.fpn.*``, ``mdl.yolox_head.*``;
beside ``state_dict``: ``epoch``, ``global_step``, ``loops``, ``callbacks``,
``optimizer_states``, ``lr_schedulers`` with the bound method older torch kept there,
``hyper_parameters`` with an omegaconf config), the names taken from
``test_detection_bidl_reference.bidl_name`` (BIDL's module names, checked there against
BIDL's own code)."""

import os
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest
import torch
from test_detection_bidl_reference import GOLDEN, bidl_name, fill

from bidl.cli import main
from bidl.engine.checkpoint import CheckpointError, load_checkpoint, load_weights
from bidl.engine.safe_load import Inert, load_without_code
from bidl.models import build_classifier
from bidl.models.convert_st_yolo import (
    convert_st_yolo_state_dict,
    st_yolo_name,
    st_yolo_state_dict,
)

SOMA = ("alpha", "beta", "theta", "v_0")
#: BIDL's Lightning module names of its detector's three parts
LIGHTNING = (("backbone.", "mdl.backbone."), ("neck.", "mdl.fpn."), ("head.", "mdl.yolox_head."))


def detector(num_classes: int = 2, timestep: int = 2) -> torch.nn.Module:
    return build_classifier(
        dict(
            type="Detector",
            backbone=dict(type="YoloDetN", timestep=timestep, h=64, w=64),
            neck=dict(type="YOLOPAFPN", depth=0.67),
            head=dict(type="YOLOXHead", num_classes=num_classes),
        )
    ).eval()


def lightning_name(key: str) -> str:
    name = bidl_name(key)
    own, theirs = next(p for p in LIGHTNING if name.startswith(p[0]))
    return theirs + name[len(own) :]


def as_bidl(state: dict) -> OrderedDict:
    """``state`` (bidl's) under BIDL's names, soma constants shaped ``[1, C, 1, 1]``."""
    return OrderedDict(
        (
            lightning_name(k),
            v.reshape(1, -1, 1, 1) if k.rsplit(".", 1)[-1] in SOMA else v.clone(),
        )
        for k, v in state.items()
    )


def trained(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` with every weight, statistic and soma constant away from its init."""
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if name.rsplit(".", 1)[-1] in SOMA:
                tensor.add_(0.05 * torch.rand(tensor.shape, generator=generator))
            elif tensor.is_floating_point():
                tensor.copy_(fill(name, tensor))
    return model


class FakeConfig:
    """Pickles as omegaconf's DictConfig (named, not importable when loading)."""

    def __init__(self, content: dict) -> None:
        self._content = content
        self._metadata = {"key_type": object, "flags": {"struct": True}}


class Payload:
    """A planted call: an unrestricted unpickler runs it."""

    def __init__(self, call: str, marker) -> None:
        self.call, self.marker = call, str(marker)

    def __reduce__(self):
        if self.call == "exec":
            return (exec, (f"open({self.marker!r}, 'w').write('ran')",))
        return (os.system, (f"touch {self.marker}",))


def write_lightning(path, state: dict, monkeypatch, payload=None):
    """A Lightning checkpoint as BIDL's ST-YOLO training writes it."""
    omegaconf = types.ModuleType("omegaconf")
    dictconfig = types.ModuleType("omegaconf.dictconfig")
    FakeConfig.__module__, FakeConfig.__qualname__ = "omegaconf.dictconfig", "DictConfig"
    dictconfig.DictConfig = FakeConfig
    monkeypatch.setitem(sys.modules, "omegaconf", omegaconf)
    monkeypatch.setitem(sys.modules, "omegaconf.dictconfig", dictconfig)
    weights = [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2, 2))]
    optimizer = torch.optim.AdamW(weights, lr=2e-4)
    sum(w.sum() for w in weights).backward()
    optimizer.step()
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=2e-4, total_steps=400000, anneal_strategy="linear"
    )
    schedule = dict(scheduler.state_dict(), anneal_func=scheduler._annealing_linear)
    config = FakeConfig({"model": {"name": "yolodet", "backbone": {"yolo_dict": "yolov5n"}}})
    checkpoint = {
        "epoch": 7,
        "global_step": 120000,
        "pytorch-lightning_version": "1.8.6",
        "state_dict": OrderedDict(state),
        "loops": {"fit_loop": {"epoch_progress": {"total": {"ready": 8, "completed": 7}}}},
        "callbacks": {
            "ModelCheckpoint{'monitor': 'val/AP', 'mode': 'max'}": {
                "best_model_score": torch.tensor(0.41),
                "best_model_path": "epoch=007-step=120000-val_AP=0.41.ckpt",
            }
        },
        "optimizer_states": [optimizer.state_dict()],
        "lr_schedulers": [schedule],
        "native_amp_scaling_state": {"scale": 65536.0, "_growth_tracker": 3},
        "hparams_name": "full_config",
        "hyper_parameters": {"full_config": config, "extra": payload},
    }
    torch.save(checkpoint, path)
    monkeypatch.delitem(sys.modules, "omegaconf.dictconfig")
    monkeypatch.delitem(sys.modules, "omegaconf")
    return path


def test_names_map_both_ways():
    model = detector()
    state = model.state_dict()
    assert st_yolo_name("backbone.body.yolo.conv2.neuron.alpha") == "mdl.backbone.conv2.act.alpha"
    assert st_yolo_name("backbone.body.yolo.C3_1.m.0.cv1.conv.weight") == (
        "mdl.backbone.C3_1.m.0.cv1.conv.weight"
    )
    assert st_yolo_name("neck.C3_p4.m.0.cv2.bn.running_var") == (
        "mdl.fpn.C3_p4.m.0.conv2.bn.running_var"
    )
    assert st_yolo_name("neck.lateral_conv0.conv.weight") == "mdl.fpn.lateral_conv0.conv.weight"
    assert st_yolo_name("head.cls_preds.0.weight") == "mdl.yolox_head.cls_preds.0.weight"
    ours = st_yolo_state_dict(model)
    assert list(ours) == [lightning_name(k) for k in state]
    assert ours["mdl.backbone.conv2.act.theta"].shape == (1, 32, 1, 1)
    back = convert_st_yolo_state_dict(model, ours)
    assert list(back) == list(state)
    assert all(torch.equal(back[k], v) for k, v in state.items())
    # BIDL's deployment scripts strip Lightning's ``mdl.``: read as well
    stripped = {k.removeprefix("mdl."): v for k, v in ours.items()}
    assert all(torch.equal(convert_st_yolo_state_dict(model, stripped)[k], state[k]) for k in state)


def test_lightning_checkpoint_loads_and_gives_the_same_boxes(tmp_path, monkeypatch, caplog):
    original = trained(detector())
    path = write_lightning(tmp_path / "last.ckpt", as_bidl(original.state_dict()), monkeypatch)
    with pytest.raises(Exception, match="Weights only load failed"):
        torch.load(path, weights_only=True)  # why bidl reads such a file its own way
    model = detector()
    with caplog.at_level("INFO", logger="bidl"):
        checkpoint = load_weights(model, path)
    assert "omegaconf.dictconfig.DictConfig" in caplog.text
    assert "BIDL ST-YOLO's weight names; converted" in caplog.text
    assert checkpoint["meta"]["source_global_step"] == 120000
    img = torch.rand(2, 2, 20, 64, 64, generator=torch.Generator().manual_seed(0)).round()
    with torch.no_grad():
        expected, got = original.scores(img), model.scores(img)
        boxes = model(img, return_loss=False)
    assert torch.equal(got, expected)
    assert [b["bboxes"].shape[1] for b in boxes] == [4, 4]


def test_convert_checkpoint_command_writes_the_detector(tmp_path, monkeypatch, capsys):
    original = trained(detector())
    path = write_lightning(tmp_path / "last.ckpt", as_bidl(original.state_dict()), monkeypatch)
    out = tmp_path / "st_yolov5n.pth"
    code = main(
        ["convert-checkpoint", str(path), "--config", "st_yolov5n-b8x6-gen1", "--out", str(out)]
    )
    assert code in (0, None)
    assert f"wrote {out}: 514 tensors for st_yolov5n-b8x6-gen1" in capsys.readouterr().out
    written = torch.load(out, weights_only=True)
    assert written["meta"]["source_epoch"] == 7
    state = original.state_dict()
    assert all(torch.equal(written["state_dict"][k], v) for k, v in state.items())


def test_bidls_reference_outputs_from_a_bidl_layout_checkpoint(tmp_path, monkeypatch):
    golden = np.load(GOLDEN)
    model = detector(timestep=3)
    # BIDL's weights as the reference run set them (soma constants as BIDL built them)
    bidl_state = as_bidl({k: fill(bidl_name(k), v) for k, v in model.state_dict().items()})
    path = write_lightning(tmp_path / "golden.ckpt", bidl_state, monkeypatch)
    load_weights(model, path)
    img = torch.from_numpy(golden["x"]).float().transpose(0, 1)  # [B, T, 20, 64, 64]
    with torch.no_grad():
        features, out = model.backbone(img), model.scores(img)
    assert (features - torch.from_numpy(golden["features"])).abs().max().item() <= 1e-6
    expected = torch.from_numpy(golden["out"])
    assert (out - expected).abs().max().item() <= 1e-5 * max(1.0, expected.abs().max().item())


@pytest.mark.parametrize("call", ["exec", "system"])
def test_a_planted_call_is_not_run(tmp_path, monkeypatch, call):
    marker = tmp_path / "ran"
    state = as_bidl(detector().state_dict())
    path = write_lightning(tmp_path / "evil.ckpt", state, monkeypatch, Payload(call, marker))
    loaded, skipped = load_without_code(path)
    assert not marker.exists()
    assert {"builtins.exec" if call == "exec" else "posix.system", "builtins.getattr"} <= set(
        skipped
    )
    assert isinstance(loaded["hyper_parameters"]["extra"], Inert)
    assert isinstance(loaded["hyper_parameters"]["full_config"], Inert)
    assert "omegaconf" not in sys.modules  # named in the file, never imported
    checkpoint = load_checkpoint(path)
    assert not marker.exists()
    assert list(checkpoint["state_dict"]) == list(state)
    # the payload is live: an unrestricted load runs it
    monkeypatch.setitem(sys.modules, "omegaconf", types.ModuleType("omegaconf"))
    monkeypatch.setitem(sys.modules, "omegaconf.dictconfig", sys.modules["omegaconf"])
    sys.modules["omegaconf"].DictConfig = FakeConfig
    torch.load(path, weights_only=False)
    assert marker.exists()


def test_a_checkpoint_of_another_config_names_the_first_difference(tmp_path, monkeypatch):
    state = as_bidl(detector().state_dict())
    path = write_lightning(tmp_path / "last.ckpt", state, monkeypatch)
    with pytest.raises(CheckpointError) as info:
        load_weights(detector(num_classes=3), path)
    assert str(info.value) == (
        f"checkpoint {str(path)!r} holds BIDL's ST-YOLO weights that do not fit this config's "
        "detector (StYolo with channels [16, 32, 64, 128, 256], 20 input channels, 3 classes): "
        "its 'mdl.yolox_head.cls_preds.0.weight' has shape [2, 64, 1, 1], the model's "
        "'head.cls_preds.0.weight' [3, 64, 1, 1] (and 5 more differences). Use the config the "
        "checkpoint was trained with (st_yolov5n-b8x6-gen1, st_yolov5s-b8x6-gen1 or "
        "st_yolov5x-b8x6-gen1 for BIDL's yolov5n / yolov5s / yolov5x) and its class and "
        "input-channel counts (--cfg-options model.head.num_classes=N "
        "model.backbone.input_channels=C)."
    )


def test_missing_and_unexpected_keys_are_named():
    model = detector()
    state = as_bidl(model.state_dict())
    missing = {k: v for k, v in state.items() if k != "mdl.backbone.conv2.act.theta"}
    with pytest.raises(Exception, match=r"^f.ckpt holds .*: it has no 'mdl.backbone.conv2.act.theta' \(the model's 'backbone.body.yolo.conv2.neuron.theta'\)\. Use"):  # fmt: skip
        convert_st_yolo_state_dict(model, missing, "f.ckpt")
    extra = dict(state, **{"mdl.fpn.C3_p4.m.7.conv1.conv.weight": torch.zeros(1)})
    with pytest.raises(Exception, match=r": its 'mdl.fpn.C3_p4.m.7.conv1.conv.weight' has no place in the model\. Use"):  # fmt: skip
        convert_st_yolo_state_dict(model, extra, "f.ckpt")


def test_a_classification_config_is_told_to_use_a_detection_one(tmp_path, monkeypatch):
    path = write_lightning(tmp_path / "last.ckpt", as_bidl(detector().state_dict()), monkeypatch)
    model = build_classifier(
        dict(
            type="ImageClassifier",
            backbone=dict(type="SeqClif3Fc3DmItout", timestep=2, c0=2, h0=16, w0=16, nclass=3),
            neck=None,
            head=dict(type="ClsHead", loss=dict(type="CrossEntropyLoss")),
        )
    )
    with pytest.raises(CheckpointError, match="but the config's model is ImageClassifier"):
        load_weights(model, path)


def test_other_files_with_pickled_objects_are_still_refused(tmp_path):
    path = tmp_path / "model.pth"
    torch.save({"state_dict": {}, "model": torch.nn.Linear(2, 2)}, path)
    with pytest.raises(CheckpointError, match="never runs code"):
        load_checkpoint(path)
