"""optimizer_config.skip_nonfinite: NaN/inf steps are skipped, counted and logged, and an
epoch that had one is never saved as best.pth."""

import json

import pytest
import torch
from torch import nn

from bidl.engine import load_checkpoint, train_model
from bidl.registry import LOSSES


@LOSSES.register_module(force=True)
class PoisonOnCallsLoss(nn.Module):
    """Cross entropy, but NaN (or inf) on the given 1-based training calls."""

    def __init__(self, calls=(), value="nan"):
        super().__init__()
        self.calls, self.value, self.count = set(calls), float(value), 0

    def forward(self, scores, labels):
        self.count += 1
        loss = nn.functional.cross_entropy(scores, labels)
        return loss * self.value if self.count in self.calls else loss


def records(work_dir):
    return [json.loads(line) for line in (work_dir / "log.json").read_text().splitlines()]


# the tiny config with 16 training samples: 2 iterations an epoch, 3 epochs
@pytest.mark.parametrize(
    ("calls", "value", "best_epochs"),
    [((2,), "nan", {2, 3}), ((2, 3, 6), "inf", set())],
)
def test_skipped_steps_are_counted_and_poisoned_epochs_are_never_best(
    tiny_config, tmp_path, calls, value, best_epochs
):
    work_dir = tmp_path / "w"
    train_model(
        tiny_config,
        work_dir=str(work_dir),
        cfg_options={
            "model.head.loss": {"type": "PoisonOnCallsLoss", "calls": list(calls), "value": value},
            "optimizer_config.skip_nonfinite": True,
            "log_config.interval": 1,
            "data.train.num_samples": 16,
            "data.val.num_samples": 6,
        },
    )
    train = [r for r in records(work_dir) if r["mode"] == "train"]
    assert len(train) == 6
    assert train[-1]["skipped_nonfinite"] == len(calls)
    assert [r["skipped_nonfinite"] for r in train][calls[0] - 1] == 1
    log = (work_dir / "train.log").read_text()
    assert log.count("step skipped") == len(calls)
    assert "at epoch 1, iteration 2: step skipped" in log
    latest = load_checkpoint(work_dir / "latest.pth")
    assert latest["meta"]["epoch"] == 3
    assert all(
        torch.isfinite(v).all() for v in latest["state_dict"].values() if v.is_floating_point()
    )
    if best_epochs:
        assert load_checkpoint(work_dir / "best.pth")["meta"]["epoch"] in best_epochs
    else:
        assert not (work_dir / "best.pth").exists()
