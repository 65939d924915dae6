"""A non-finite loss on one rank of a data-parallel run: every rank takes the same branch
(skip the step, or stop with the error), so no rank waits forever in the gradient
all-reduce for a rank that left it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from test_distributed import act_as_torchrun_rank, free_port, write_config
from torch import nn

from bidl.engine import load_checkpoint, train_model
from bidl.engine.runner import NonFiniteLossError
from bidl.registry import LOSSES

WORLD, DEADLINE_S = 2, 240


@LOSSES.register_module(force=True)
class PoisonOnRankLoss(nn.Module):
    """Cross entropy, but NaN on the given 1-based training calls of one rank."""

    def __init__(self, rank=1, calls=(2,)):
        super().__init__()
        self.rank, self.calls, self.count = rank, set(calls), 0

    def forward(self, scores, labels):
        self.count += 1
        loss = nn.functional.cross_entropy(scores, labels)
        rank = dist.get_rank() if dist.is_initialized() else 0
        return loss * float("nan") if rank == self.rank and self.count in self.calls else loss


def _worker(rank, config, work_dir, port, skip, out):
    act_as_torchrun_rank(rank, WORLD, port)
    options = {
        "runner.max_epochs": 2,
        "log_config.interval": 1,
        "model.head.loss": {"type": "PoisonOnRankLoss", "rank": 1, "calls": [2]},
        "optimizer_config.skip_nonfinite": skip,
    }
    try:
        train_model(config, work_dir=work_dir, launcher="pytorch", cfg_options=options)
    except NonFiniteLossError as err:
        with open(f"{out}.{rank}", "w") as handle:
            handle.write(str(err))


def _run(tmp_path, skip: bool):
    """Both ranks, with a deadline: a hang fails the test instead of stalling the suite."""
    config = write_config(tmp_path)
    work, out = tmp_path / "w", tmp_path / "error"
    args = (str(config), str(work), free_port(), skip, str(out))
    context = mp.start_processes(_worker, args=args, nprocs=WORLD, join=False)
    deadline = time.monotonic() + DEADLINE_S
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.kill()
            pytest.fail(f"the ranks did not finish within {DEADLINE_S} s (a rank is stuck)")
    return work, out


def test_a_step_skipped_on_one_rank_is_skipped_on_every_rank(tmp_path):
    work, _ = _run(tmp_path, skip=True)
    records = [json.loads(line) for line in (work / "log.json").read_text().splitlines()]
    train = [r for r in records if r["mode"] == "train"]
    assert train[-1]["skipped_nonfinite"] == 1
    log = (work / "train.log").read_text()
    # rank 0 logs; its own loss was finite, rank 1's was not
    assert "non-finite on another rank" in log and "step skipped (1 skipped so far)" in log
    weights = load_checkpoint(work / "latest.pth")["state_dict"]
    assert load_checkpoint(work / "latest.pth")["meta"]["epoch"] == 2
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_without_skipping_every_rank_stops_with_the_error(tmp_path):
    _, out = _run(tmp_path, skip=False)
    here, there = (Path(f"{out}.{rank}").read_text() for rank in range(WORLD))
    assert "loss is non-finite on another rank" in here and "iteration 2" in here
    assert there.startswith("loss is nan at epoch 1, iteration 2")
