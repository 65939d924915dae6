"""``bidl plot``: training curves of one or several work dirs, as PNG, SVG and JSON."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
from conftest import write_tiny_config
from PIL import Image

from bidl.cli import main


def _records(work_dir, mode):
    lines = (work_dir / "log.json").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("mode") == mode]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A real training run: 2 epochs of 2 iterations, logged every iteration."""
    folder = tmp_path_factory.mktemp("plot")
    config = write_tiny_config(folder)
    work_dir = folder / "run-a"
    argv = ["train", str(config), "--work-dir", str(work_dir), "--device", "cpu"]
    options = ["runner.max_epochs=2", "data.train.num_samples=16", "data.val.num_samples=12"]
    options += ["log_config.interval=1"]
    assert main([*argv, "--cfg-options", *options]) == 0
    return work_dir


def test_plot_draws_the_logged_curves_against_iteration(trained_run, capsys):
    assert main(["plot", str(trained_run)]) == 0
    out = trained_run / "plots"
    assert f"wrote {out / 'curves.png'}" in capsys.readouterr().out
    data = json.loads((out / "curves.json").read_text())
    (run,) = data["runs"]
    train, val = _records(trained_run, "train"), _records(trained_run, "val")
    assert len(train) == 4  # 2 epochs x 2 iterations
    assert run["train"]["x"] == [(r["epoch"] - 1) * 2 + r["iter"] for r in train] == [1, 2, 3, 4]
    assert run["train"]["loss"] == [r["loss"] for r in train]
    assert run["train"]["lr"] == [r["lr"] for r in train]
    assert run["train"]["top-1"] == [r["top-1"] for r in train]
    assert run["val"]["x"] == [r["iter"] for r in val] == [2, 4]
    assert run["val"]["accuracy_top-1"] == [r["accuracy_top-1"] for r in val]
    assert run["val"]["accuracy_top-2"] == [r["accuracy_top-2"] for r in val]
    with Image.open(out / "curves.png") as image:
        assert image.size == (1200, 400)
    assert ET.parse(out / "curves.svg").getroot().tag.endswith("svg")


def test_plot_compares_runs_on_one_figure_against_epoch(trained_run, tmp_path):
    other = tmp_path / "run-b"  # a second run's log, as the runner writes it
    other.mkdir()
    records = [
        {"mode": "meta", "config": "x", "iters_per_epoch": 10},
        {"mode": "train", "epoch": 1, "iter": 5, "lr": 0.1, "loss": 2.0},
        {"mode": "train", "epoch": 1, "iter": 10, "lr": 0.05, "loss": 1.5},
        {"mode": "val", "epoch": 1, "iter": 10, "accuracy_top-1": 40.0},
        {"mode": "train", "epoch": 2, "iter": 5, "lr": 0.02, "loss": 1.0},
        {"mode": "train", "epoch": 2, "iter": 10, "lr": 0.01, "loss": 0.8},
        {"mode": "val", "epoch": 2, "iter": 20, "accuracy_top-1": 70.0},
    ]
    (other / "log.json").write_text("".join(json.dumps(r) + "\n" for r in records))
    out = tmp_path / "compare"
    argv = ["plot", str(trained_run), str(other), "--x", "epoch", "--out", str(out)]
    assert main([*argv, "--dpi", "50"]) == 0
    data = json.loads((out / "curves.json").read_text())
    assert [r["name"] for r in data["runs"]] == ["run-a", "run-b"]
    run_b = data["runs"][1]
    assert run_b["train"]["x"] == [0.5, 1.0, 1.5, 2.0]
    assert run_b["train"]["loss"] == [2.0, 1.5, 1.0, 0.8]
    assert run_b["val"]["x"] == [1, 2] and run_b["val"]["accuracy_top-1"] == [40.0, 70.0]
    assert data["runs"][0]["train"]["x"] == [0.5, 1.0, 1.5, 2.0]
    with Image.open(out / "curves.png") as image:
        assert image.size == (600, 200)


def test_plot_of_a_folder_without_a_log_says_what_to_give(tmp_path, capsys):
    assert main(["plot", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"no log.json in {str(tmp_path)!r}" in err and "bidl train" in err


@pytest.mark.parametrize("command", ["plot", "analyze", "viz"])
def test_each_analysis_command_has_help_with_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert f"example:\n  bidl {command} " in capsys.readouterr().out
