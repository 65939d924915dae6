"""What training logs: log.json always (with firing rates per layer at each validation),
TensorBoard when installed, and progress bars only on a terminal."""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import pty
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
import torch
from conftest import write_tiny_config

from bidl.cli import main
from bidl.config import load_config
from bidl.datasets import build_dataset
from bidl.engine import build_model
from bidl.neurons import Lif

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("logging")
    config = write_tiny_config(folder)
    work_dir = folder / "work"
    options = ["runner.max_epochs=1", "data.train.num_samples=16", "data.val.num_samples=12"]
    argv = ["train", str(config), "--work-dir", str(work_dir), "--device", "cpu"]
    assert main([*argv, "--cfg-options", *options, "log_config.interval=1"]) == 0
    records = [json.loads(line) for line in (work_dir / "log.json").read_text().splitlines()]
    return config, work_dir, records


def _spike_rates_by_hand(config, checkpoint) -> dict[str, float]:
    """Run the checkpoint on the validation set, catching every LIF step's output."""
    cfg = load_config(config, {"data.val.num_samples": 12})
    model = build_model(cfg)
    model.load_state_dict(torch.load(checkpoint, weights_only=True)["state_dict"])
    model.eval()
    names = {id(m): n for n, m in model.named_modules() if isinstance(m, Lif)}
    spikes: dict[str, list[torch.Tensor]] = {n: [] for n in names.values()}
    original = Lif.step

    def step(self, x, state):
        out, new_state = original(self, x, state)
        spikes[names[id(self)]].append(out)
        return out, new_state

    dataset = build_dataset(cfg.data.val)
    imgs = torch.stack([dataset[i]["img"] for i in range(len(dataset))])
    Lif.step = step
    try:
        with torch.no_grad():
            for start in range(0, len(imgs), 8):  # the validation batches
                model(imgs[start : start + 8], return_loss=False)
    finally:
        Lif.step = original
    return {
        name: float(torch.cat([s.flatten() for s in outs]).mean()) for name, outs in spikes.items()
    }


def test_log_json_has_iterations_per_epoch_and_firing_rates(run):
    config, work_dir, records = run
    meta = records[0]
    assert meta["mode"] == "meta" and meta["iters_per_epoch"] == 2
    (val,) = [r for r in records if r["mode"] == "val"]
    expected = _spike_rates_by_hand(config, work_dir / "latest.pth")
    assert sorted(val["firing_rate"]) == sorted(expected)
    for name, rate in expected.items():
        assert val["firing_rate"][name] == pytest.approx(rate)


@pytest.mark.skipif(
    importlib.util.find_spec("tensorboard") is None, reason="tensorboard is not installed"
)
def test_training_also_logs_to_tensorboard(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, work_dir, records = run
    events = EventAccumulator(str(work_dir / "tf_logs"))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "train/top-1", "lr", "val/accuracy_top-1"} <= tags
    train = [r for r in records if r["mode"] == "train"]
    assert [e.value for e in events.Scalars("train/loss")] == pytest.approx(
        [r["loss"] for r in train]
    )
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2]
    (val,) = [r for r in records if r["mode"] == "val"]
    for layer, rate in val["firing_rate"].items():
        (logged,) = events.Scalars(f"firing_rate/{layer}")
        assert logged.value == pytest.approx(rate) and logged.step == 2


def test_progress_bars_stay_quiet_when_output_is_not_a_terminal(run, capsys):
    config, work_dir, _ = run
    argv = ["test", str(config), "latest.pth", "--work-dir", str(work_dir)]
    assert main([*argv, "--cfg-options", "data.test.num_samples=12"]) == 0
    printed = capsys.readouterr()
    assert "top-1" in printed.out
    assert "batch/s" not in printed.err and "s/batch" not in printed.err


def test_progress_bar_shows_rate_and_estimate_on_a_terminal(run):
    config, work_dir, _ = run
    command = [sys.executable, "-m", "bidl.cli", "test", str(config), "latest.pth"]
    command += ["--work-dir", str(work_dir), "--cfg-options", "data.test.num_samples=24"]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}
    main_fd, terminal_fd = pty.openpty()
    fcntl.ioctl(terminal_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 120 cols
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=terminal_fd, env=env)
    os.close(terminal_fd)
    shown = b""
    while True:  # read while it runs: a closed terminal may drop what was not read
        try:
            chunk = os.read(main_fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    os.close(main_fd)
    assert process.wait() == 0
    assert b"batch/s" in shown or b"s/batch" in shown  # the rate
    assert b"<" in shown  # elapsed<remaining: the estimate
