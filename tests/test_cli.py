import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_tiny_config

from bidl.cli import main

ROOT = Path(__file__).resolve().parents[1]
# the subprocesses import the test dataset through the config's custom_imports
TESTS_ON_PATH = {
    **os.environ,
    "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")])
    ),
}


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

    # this process may hold names that other tests registered; bidl's own are what counts
    def own(registry):
        return [n for n in registry.names() if registry.get(n).__module__.startswith("bidl.")]

    assert int(rows["models"]) == len(own(BACKBONES)) and int(rows["neurons"]) == len(own(NEURONS))
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


def test_training_prints_the_work_dir_and_a_line_per_epoch_when_output_is_redirected(tmp_path):
    config = write_tiny_config(tmp_path)
    work_dir = tmp_path / "work"
    argv = [str(config), "--work-dir", str(work_dir), "--device", "cpu"]
    result = subprocess.run(
        [sys.executable, "-m", "bidl.cli", "train", *argv, "--cfg-options", "runner.max_epochs=2"],
        capture_output=True,  # a pipe, not a terminal: no progress bars
        text=True,
        cwd=tmp_path,
        env=TESTS_ON_PATH,
    )
    assert result.returncode == 0, result.stderr
    # a tiny model loading in the main process may also warn that it waits for data
    lines = [line for line in result.stdout.splitlines() if "waiting for data" not in line]
    assert lines[0] == (
        f"training tiny-b8x0-blinks for 2 epochs on cpu; work dir {work_dir} "
        f"(train.log, log.json, checkpoints)"
    )
    epoch = r"train loss [0-9.]+, val top-1 [0-9.]+ %, top-2 [0-9.]+ %; [0-9.]+ s, ETA"
    assert re.fullmatch(
        rf"epoch 1/2: {epoch} [0-9.ms]+( s)?; saved epoch_1.pth, latest.pth(, best.pth)? in "
        + re.escape(str(work_dir)),
        lines[1],
    ), lines[1]
    assert re.fullmatch(rf"epoch 2/2: {epoch} done; saved epoch_2.pth, latest.pth.*", lines[2])
    assert lines[3].startswith("final validation: accuracy_top-1")
    log = (work_dir / "train.log").read_text()
    assert lines[1] in log and lines[2] in log  # the same lines in the log


def test_resume_takes_the_latest_checkpoint_and_bare_names_are_found_in_the_work_dir(
    tmp_path, capsys
):
    config = write_tiny_config(tmp_path)
    work_dir = tmp_path / "work"
    common = [str(config), "--work-dir", str(work_dir), "--device", "cpu"]
    assert main(["train", *common, "--resume", "--cfg-options", "runner.max_epochs=1"]) == 0
    out = capsys.readouterr().out
    assert f"--resume: no latest.pth in {work_dir} yet; training from the start" in out
    assert main(["train", *common, "--resume", "--cfg-options", "runner.max_epochs=2"]) == 0
    out = capsys.readouterr().out
    assert f"resumed from {work_dir / 'latest.pth'} at epoch 1, iteration 6" in out
    assert "epoch 2/2: train loss" in out and "epoch 1/2" not in out
    fresh = tmp_path / "fresh"
    argv = ["train", str(config), "--work-dir", str(fresh), "--device", "cpu"]
    assert main([*argv, "--load-from", str(work_dir / "epoch_1.pth"), "--cfg-options",
                 "runner.max_epochs=1"]) == 0  # fmt: skip
    assert f"loaded weights from {work_dir / 'epoch_1.pth'}" in capsys.readouterr().out
    assert main([*argv, "--resume-from", "epoch_7.pth"]) == 1  # in neither place
    err = capsys.readouterr().err
    assert err.startswith("bidl train: error: resume_from: checkpoint 'epoch_7.pth' not found")
    assert str(fresh / "epoch_7.pth") in err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["runner.max_epochs", "2"],
            "--cfg-options: 'runner.max_epochs' has no '='; write each override as KEY=VALUE "
            "with no spaces around '=' (here: runner.max_epochs=2)",
        ),
        (["=2"], "--cfg-options: '=2' has no key before '='"),
    ],
)
def test_a_malformed_cfg_option_is_one_usage_error(tmp_path, capsys, options, message):
    with pytest.raises(SystemExit) as exit_:
        main(["train", str(write_tiny_config(tmp_path)), "--cfg-options", *options])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith(f"bidl train: error: {message}")
    assert "Traceback" not in err and len(err.splitlines()) <= 8


def test_a_shape_error_names_the_keys_the_config_uses(tmp_path, capsys):
    config = write_tiny_config(tmp_path)  # its backbone says c0=2, h0=16, w0=16
    argv = ["train", str(config), "--work-dir", str(tmp_path / "w"), "--device", "cpu"]
    assert main([*argv, "--cfg-options", "model.backbone.h0=20", "model.backbone.w0=20"]) == 1
    err = capsys.readouterr().err
    assert "Make the model config (c0, h0, w0) match what the data pipeline produces" in err
    assert "input_channels" not in err


def test_only_the_top_k_the_head_computes_are_reported(tmp_path, capsys):
    from deploy_helpers import tiny_config_checkpoint

    _, work_dir = tiny_config_checkpoint()
    config = write_tiny_config(tmp_path)  # the same model, without evaluation.metric_options
    text = re.sub(r"\nevaluation = dict\(.*\)\n", "\n", config.read_text())
    config.write_text(text.replace("topk=(1, 2)", "topk=(1,)"))
    argv = ["test", str(config), "latest.pth", "--work-dir", str(work_dir), "--device", "cpu"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "top-1: " in out and "top-2" not in out and "top-5" not in out
