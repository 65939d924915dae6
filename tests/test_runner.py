import json

import pytest
import torch
from conftest import write_tiny_config
from torch import nn

from bidl.engine import load_checkpoint, train_model
from bidl.engine.runner import NonFiniteLossError
from bidl.registry import LOSSES


@LOSSES.register_module(force=True)
class AlwaysNanLoss(nn.Module):
    def forward(self, scores, labels):
        return scores.sum() * float("nan")


def weights(path):
    return load_checkpoint(path)["state_dict"]


def test_training_writes_logs_checkpoints_and_config(tiny_config, tmp_path):
    work_dir = tmp_path / "work"
    metrics = train_model(tiny_config, work_dir=str(work_dir))
    names = {p.name for p in work_dir.iterdir()}
    assert {
        "train.log",
        "log.json",
        "epoch_1.pth",
        "epoch_2.pth",
        "epoch_3.pth",
        "latest.pth",
        "best.pth",
        "tiny-b8x0-blinks.py",
    } <= names
    records = [json.loads(line) for line in (work_dir / "log.json").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["mode"] == "val"] == [1, 2, 3]
    train_records = [r for r in records if r["mode"] == "train"]
    assert {"loss", "lr", "top-1", "top-2", "iter", "time"} <= set(train_records[0])
    assert records[-1]["accuracy_top-1"] == metrics["accuracy_top-1"]
    assert metrics["accuracy_top-1"] >= 80.0  # the quadrant task is easy
    assert load_checkpoint(work_dir / "latest.pth")["meta"]["epoch"] == 3


def test_best_checkpoint_holds_the_best_validation_epoch(tiny_config, tmp_path):
    train_model(tiny_config, work_dir=str(tmp_path / "w"))
    records = [json.loads(line) for line in (tmp_path / "w" / "log.json").read_text().splitlines()]
    tops = [r["accuracy_top-1"] for r in records if r["mode"] == "val"]
    best = load_checkpoint(tmp_path / "w" / "best.pth")["meta"]
    assert best["best_top1"] == max(tops)
    assert best["epoch"] == tops.index(max(tops)) + 1


@pytest.mark.parametrize("workers", [0, 1])
def test_resumed_run_ends_with_the_same_weights(tmp_path, workers):
    config = write_tiny_config(tmp_path, workers=workers)
    train_model(config, work_dir=str(tmp_path / "full"), deterministic=True)
    train_model(
        config,
        work_dir=str(tmp_path / "resumed"),
        deterministic=True,
        cfg_options={"resume_from": str(tmp_path / "full" / "epoch_1.pth")},
    )
    full, resumed = (
        weights(tmp_path / "full" / "latest.pth"),
        weights(tmp_path / "resumed" / "latest.pth"),
    )
    assert full.keys() == resumed.keys()
    for key in full:
        assert torch.equal(full[key], resumed[key]), key


def test_load_from_starts_at_epoch_zero_with_given_weights(tiny_config, tmp_path):
    train_model(tiny_config, work_dir=str(tmp_path / "a"), cfg_options={"runner.max_epochs": 1})
    start = tmp_path / "a" / "latest.pth"
    train_model(
        tiny_config,
        work_dir=str(tmp_path / "b"),
        cfg_options={"runner.max_epochs": 1, "load_from": str(start)},
    )
    records = [json.loads(line) for line in (tmp_path / "b" / "log.json").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["mode"] == "val"] == [1]


def test_nan_loss_stops_training_naming_epoch_and_iteration(tiny_config, tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 1, iteration 1"):
        train_model(
            tiny_config,
            work_dir=str(tmp_path / "w"),
            cfg_options={"model.head.loss": {"type": "AlwaysNanLoss"}},
        )
    assert not (tmp_path / "w" / "best.pth").exists()


def test_unknown_optimizer_is_reported(tiny_config, tmp_path):
    from bidl.registry import BidlError

    with pytest.raises(BidlError, match=r"unknown optimizer 'Adma' \(did you mean .*'Adam'"):
        train_model(
            tiny_config, work_dir=str(tmp_path / "w"), cfg_options={"optimizer.type": "Adma"}
        )


def test_resolved_config_in_work_dir_carries_the_overrides(tiny_config, tmp_path):
    from bidl.config import load_config

    train_model(tiny_config, work_dir=str(tmp_path / "w"), cfg_options={"runner.max_epochs": 1})
    saved = load_config(tmp_path / "w" / "tiny-b8x0-blinks.py")
    assert saved.runner.max_epochs == 1


def test_mixed_precision_training_runs_in_bfloat16(tiny_config, tmp_path):
    metrics = train_model(
        tiny_config,
        work_dir=str(tmp_path / "w"),
        cfg_options={"runner.max_epochs": 1, "fp16": {"dtype": "bfloat16"}},
    )
    records = [json.loads(line) for line in (tmp_path / "w" / "log.json").read_text().splitlines()]
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in records if r["mode"] == "train")
    assert 0.0 <= metrics["accuracy_top-1"] <= 100.0
