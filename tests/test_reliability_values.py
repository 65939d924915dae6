"""Values that make no sense are refused before any work (class 5), and raw exceptions
become one clear error (class 6): config ranges, splits, checkpoint structure, deep
overrides, ragged runtime input."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from bidl.cli import main
from bidl.config import load_config
from bidl.datasets.cache import write_split
from bidl.engine.apis import build_model, train_model
from bidl.engine.checkpoint import (
    CheckpointError,
    check_resumable,
    load_checkpoint,
    rng_states,
    save_checkpoint,
)
from bidl.registry import BidlError

SMALL = {"runner.max_epochs": 1, "data.train.num_samples": 8, "data.val.num_samples": 4}


# --- class 5: value ranges in the config ------------------------------------------------


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"model.backbone.timestep": 0}, r"model\.backbone\.timestep: the number of timesteps must be a positive int, got 0"),
        ({"model.backbone.timestep": -2}, r"model\.backbone\.timestep: .* got -2"),
        ({"model.backbone.timestep": 2.5}, r"model\.backbone\.timestep: .* got 2\.5"),
        ({"data.train.timesteps": 0}, r"data\.train\.timesteps: the number of timesteps"),
        ({"optimizer_config.grad_clip.max_norm": -1.0}, r"grad_clip\.max_norm: must be > 0, got -1\.0 \(a negative bound flips"),
        ({"optimizer_config.grad_clip.max_norm": 0}, r"grad_clip\.max_norm: must be > 0, got 0"),
        ({"optimizer.lr": -0.1}, r"optimizer\.lr: must be >= 0, got -0\.1"),
        ({"evaluation.metric_options.topk": [1, 5]}, r"metric_options\.topk: top-5 accuracy needs at least 5 classes, the model has 3"),
        ({"model.head.topk": [1, 4]}, r"model\.head\.topk: top-4 accuracy needs at least 4 classes"),
        ({"evaluation.metric_options.topk": [0]}, r"metric_options\.topk: top-k values must be positive ints, got 0"),
        ({"log_level": "LOUD"}, r"log_level: unknown level 'LOUD'; use one of CRITICAL, ERROR, WARNING, INFO, DEBUG"),
        ({"log_level": 3}, r"log_level: expected a string"),
    ],
)  # fmt: skip
def test_values_out_of_range_are_refused_naming_the_key(tiny_config, option, message):
    with pytest.raises(BidlError, match=message):
        load_config(str(tiny_config), option)


def test_a_lower_case_log_level_is_a_level(tiny_config, tmp_path):
    cfg = load_config(str(tiny_config), {"log_level": "debug"})
    assert cfg.log_level == "debug"


def test_float_labels_are_not_truncated_into_a_cache(tmp_path):
    samples = [(np.zeros(4, np.uint8), 0), (np.zeros(4, np.uint8), 2.5)]
    with pytest.raises(BidlError, match=r"sample 1 of split 'train': label 2\.5 is not an integer"):
        write_split(tmp_path, "train", {}, iter(samples), 2, desc="test")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"data.samples_per_gpu": 16}, r"data\.samples_per_gpu=16 is larger than the 8 training samples of TinyBlinks; .* 0 steps\. Lower data\.samples_per_gpu to at most 8"),
        ({"data.train.num_samples": 0}, r"data\.train \(TinyBlinks\) has no samples"),
        ({"data.val.num_samples": 0}, r"data\.val \(TinyBlinks\) has no samples"),
    ],
)  # fmt: skip
def test_splits_that_give_no_training_are_refused(tiny_config, tmp_path, option, message):
    with pytest.raises(BidlError, match=message):
        train_model(
            str(tiny_config),
            work_dir=str(tmp_path / "w"),
            device="cpu",
            cfg_options={**SMALL, **option},
        )
    assert not [p for p in os.listdir(tmp_path / "w") if p.endswith(".pth")]


def test_resuming_at_max_epochs_says_there_is_nothing_to_train(tiny_config, tmp_path, capsys):
    latest = tmp_path / "latest.pth"
    metrics = {"accuracy_top-1": 62.5}
    model = build_model(load_config(str(tiny_config)))
    save_checkpoint(latest, model, meta={"epoch": 1, "iter": 1, "metrics": metrics})
    options = {**SMALL, "resume_from": str(latest)}
    again = train_model(
        str(tiny_config), work_dir=str(tmp_path / "w"), device="cpu", cfg_options=options
    )
    out, err = capsys.readouterr()
    assert (
        f"{latest} is at epoch 1, and runner.max_epochs is 1: nothing left to train. Raise "
        f"runner.max_epochs" in err
    )
    assert (out + err).count("nothing left to train") == 1  # said once, on stderr
    assert again == metrics  # the checkpoint's own metrics, not {}
    assert not (tmp_path / "w" / "latest.pth").exists()  # nothing trained, nothing saved


# --- class 6: checkpoint structure -------------------------------------------------------


def good_checkpoint() -> dict:
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    meta = {"epoch": 2, "iter": 8, "world_size": 1, "best_top1": -math.inf, "rng": rng_states()}
    return {"meta": meta, "state_dict": model.state_dict(), "optimizer": optimizer.state_dict()}


def damage(checkpoint: dict, where: str, value) -> dict:
    part = checkpoint
    *path, last = where.split("/")
    for key in path:
        part = part[key]
    if value is KeyError:
        del part[last]
    else:
        part[last] = value
    return checkpoint


@pytest.mark.parametrize(
    ("where", "value", "message"),
    [
        ("meta/epoch", "2", r"meta\['epoch'\] is '2', not an int >= 0"),
        ("meta/epoch", -1, r"meta\['epoch'\] is -1"),
        ("meta/iter", 1.5, r"meta\['iter'\] is 1\.5"),
        ("meta/world_size", 0, r"meta\['world_size'\] is 0, not a positive int"),
        ("meta/best_top1", "high", r"meta\['best_top1'\] is 'high', not a number"),
        ("meta/rng", [1, 2], r"meta\['rng'\] lacks the python, numpy and torch generator states"),
        ("meta/rng/python", "x", r"meta\['rng'\]\['python'\] is not a Python generator state"),
        ("meta/rng/numpy/keys", torch.zeros(3), r"meta\['rng'\]\['numpy'\] is not a numpy"),
        ("meta/rng/numpy/pos", KeyError, r"meta\['rng'\]\['numpy'\] is not a numpy"),
        ("meta/rng/torch", torch.zeros(3), r"meta\['rng'\]\['torch'\] is not a torch"),
        ("optimizer", [1], r"'optimizer' is a list, not a dict"),
        ("optimizer/param_groups", KeyError, r"'optimizer' has no 'state' dict and 'param_groups'"),
    ],
)
def test_a_checkpoint_of_the_wrong_structure_is_one_error(tmp_path, where, value, message):
    path = tmp_path / "latest.pth"
    torch.save(damage(good_checkpoint(), where, value), path)
    with pytest.raises(CheckpointError, match=rf"cannot resume from '{path}': {message}"):
        check_resumable(load_checkpoint(path), path)


@pytest.mark.parametrize(
    ("checkpoint", "message"),
    [
        ({"meta": "x", "state_dict": {"w": torch.zeros(1)}}, r"'meta' must be a dict, got str"),
        ({"meta": {}, "state_dict": {"w": [1.0]}}, r"'state_dict' must map parameter names to tensors"),
        ({"meta": {}, "state_dict": [torch.zeros(1)]}, r"'state_dict' must map parameter names"),
    ],
)  # fmt: skip
def test_a_checkpoint_whose_parts_are_not_what_they_say_is_refused(tmp_path, checkpoint, message):
    path = tmp_path / "x.pth"
    torch.save(checkpoint, path)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_missing_meta_loads_as_weights(tmp_path):
    path = tmp_path / "bare.pth"
    checkpoint = good_checkpoint()
    del checkpoint["meta"]
    torch.save(checkpoint, path)
    assert load_checkpoint(path)["meta"] == {}


def test_resuming_from_a_damaged_checkpoint_is_one_clear_cli_error(tiny_config, tmp_path, capsys):
    model = build_model(load_config(str(tiny_config)))
    bad_optimizer = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1).state_dict()
    path = tmp_path / "other.pth"
    save_checkpoint(path, model, optimizer=None, meta={"epoch": 0, "iter": 0})
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["optimizer"] = bad_optimizer  # a state for another model's parameters
    torch.save(checkpoint, path)
    argv = ["train", str(tiny_config), "--work-dir", str(tmp_path / "w"), "--device", "cpu",
            "--cfg-options", f"resume_from={path}", "runner.max_epochs=1"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"cannot resume from '{path}': its optimizer state does not fit this config" in err
    assert "Traceback" not in err


# --- class 6: deep overrides and a ragged runtime input ---------------------------------


def test_deeply_nested_overrides_are_one_error(tiny_config, capsys):
    with pytest.raises(BidlError, match=r"--cfg-options: 'a\.a\.a.*\.\.\.' nests more than 32"):
        load_config(str(tiny_config), {"a." * 3000 + "b": 1})
    argv = ["train", str(tiny_config), "--cfg-options", "x=" + "[" * 3000 + "]" * 3000]
    with pytest.raises(SystemExit):
        main(argv)
    assert "--cfg-options: 'x' nests more than 32 levels deep" in capsys.readouterr().err


def test_a_ragged_sample_list_to_the_runtime_is_one_error():
    pytest.importorskip("onnxruntime")
    from deploy_helpers import tiny_artifact

    from bidl.deploy import Runtime

    with Runtime(tiny_artifact()) as runtime:
        ragged = [np.zeros((4, 2, 8, 8)).tolist(), np.zeros((3, 2, 8, 8)).tolist()]
        for call in (runtime.submit, runtime.run):
            with pytest.raises(BidlError, match="is not a rectangular array of numbers"):
                call(ragged)
