import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_tiny_config

from bidl.cli import main

ROOT = Path(__file__).resolve().parents[1]
# the subprocesses import the test dataset through the config's custom_imports
TESTS_ON_PATH = {**os.environ, "PYTHONPATH": str(ROOT / "tests")}


def test_train_then_test_through_the_cli(tmp_path, capsys):
    config = write_tiny_config(tmp_path)
    work_dir = tmp_path / "work"
    assert (
        main(
            [
                "train",
                str(config),
                "--work-dir",
                str(work_dir),
                "--device",
                "cpu",
                "--cfg-options",
                "runner.max_epochs=2",
            ]
        )
        == 0
    )
    assert "final validation: accuracy_top-1" in capsys.readouterr().out
    out_json = tmp_path / "metrics.json"
    assert (
        main(
            ["test", str(config), "latest.pth", "--work-dir", str(work_dir), "--out", str(out_json)]
        )
        == 0
    )
    printed = capsys.readouterr().out
    metrics = json.loads(out_json.read_text())
    last_val = [json.loads(line) for line in (work_dir / "log.json").read_text().splitlines()][-1]
    # the test split of TinyBlinks is its validation split: the figures must agree
    assert metrics["accuracy_top-1"] == pytest.approx(last_val["accuracy_top-1"])
    assert f"top-1: {metrics['accuracy_top-1']:.2f} %" in printed
    assert "samples/s:" in printed and "ms per sample:" in printed


def test_missing_config_name_is_one_clear_line(capsys):
    assert main(["train", "clif3fc3dm_itout-b16x1-digitsdv"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bidl train: error: no config named 'clif3fc3dm_itout-b16x1-digitsdv'")
    assert "Traceback" not in err


def test_unknown_backbone_in_a_config_is_reported(tmp_path, capsys):
    config = write_tiny_config(tmp_path)
    code = main(
        [
            "train",
            str(config),
            "--work-dir",
            str(tmp_path / "w"),
            "--cfg-options",
            "model.backbone.type=SeqClif3Fc3DmItoutt",
        ]
    )
    assert code == 1
    assert "unknown backbone 'SeqClif3Fc3DmItoutt' (did you mean 'SeqClif3Fc3DmItout'" in (
        capsys.readouterr().err
    )


def test_missing_checkpoint_names_where_it_looked(tmp_path, capsys):
    config = write_tiny_config(tmp_path)
    assert main(["test", str(config), "epoch_9.pth", "--work-dir", str(tmp_path)]) == 1
    assert "checkpoint 'epoch_9.pth' not found" in capsys.readouterr().err


def test_list_shows_registered_names_and_configs(capsys):
    main(["list", "models"])
    models = capsys.readouterr().out.split()
    assert {
        "SeqClif3Fc3DmItout",
        "SeqClif3Fc3DmIt",
        "SeqClif5Fc2DmItout",
        "SeqClif5Fc2DmIt",
    } <= set(models)
    main(["list", "datasets"])
    assert "DigitsDVS" in capsys.readouterr().out.split()
    main(["list", "configs"])
    assert "clif3fc3dm_itout-b16x1-digitsdvs" in capsys.readouterr().out


def test_bare_list_counts_every_kind_in_a_fresh_interpreter():
    result = subprocess.run(
        [sys.executable, "-m", "bidl.cli", "list"], capture_output=True, text=True, check=True
    )
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines()[:-1]}
    assert list(rows) == [
        "models",
        "datasets",
        "configs",
        "pipelines",
        "heads",
        "losses",
        "neurons",
        "classifiers",
    ]
    from bidl.registry import BACKBONES, NEURONS

    assert int(rows["models"]) == len(BACKBONES) and int(rows["neurons"]) == len(NEURONS)
    assert "neurons         4  Lif, LifPlus, lif, lifplus" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("`bidl list WHAT` lists one kind in full")


def test_every_subcommand_has_help_with_an_example():
    for command in ("train", "test", "list", "data"):
        result = subprocess.run(
            [sys.executable, "-m", "bidl.cli", command, "--help"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert "example:" in result.stdout, command


def test_bidl_tools_scripts_train_and_test(tmp_path):
    config = write_tiny_config(tmp_path)
    work_dir = tmp_path / "work"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "train.py"),
            "--config",
            str(config),
            "--work-dir",
            str(work_dir),
            "--cfg-options",
            "runner.max_epochs=1",
        ],
        check=True,
        capture_output=True,
        cwd=tmp_path,
        env=TESTS_ON_PATH,
    )
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tools" / "test.py"),
            "--config",
            str(config),
            "--checkpoint",
            "latest.pth",
            "--work-dir",
            str(work_dir),
            "--use_lyngor",
            "0",
            "--use_legacy",
            "0",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=TESTS_ON_PATH,
    )
    assert result.returncode == 0, result.stderr
    assert "top-1:" in result.stdout


def test_data_prepare_writes_a_cache_the_dataset_trusts(tmp_path, capsys):
    from bidl.datasets.digits_dvs import DigitsDVS

    root = tmp_path / "digits"
    assert main(["data", "prepare", "digits_dvs", "--root", str(root)]) == 0
    assert f"DigitsDVS cache ready in {root}" in capsys.readouterr().out
    dataset = DigitsDVS(data_prefix=str(root), timesteps=4, auto_prepare=False, test_mode=True)
    assert len(dataset) == 360
    assert dataset[0]["img"].shape == (4, 2, 34, 34)
