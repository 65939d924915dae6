"""Model slicing at compile time and pipeline inference over a device grid, run as CPU
processes talking over gloo: every grid gives the single-device runtime's outputs, in order."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from bidl.cli import main
from bidl.config import load_config
from bidl.deploy import ArtifactError, Runtime, compile_model
from bidl.deploy.grid import DeviceGrid, slice_bounds
from bidl.deploy.launch import run_grid
from bidl.deploy.segments import build_segments, compile_segments, read_pipeline
from bidl.engine.checkpoint import save_checkpoint
from bidl.registry import CLASSIFIERS, BidlError, build

pytest.importorskip("onnxruntime")

ROOT = Path(__file__).resolve().parents[1]
TIMESTEPS = 6
BACKBONE = dict(
    type="SeqClif3Flif2DgItout", timestep=TIMESTEPS, h=16, w=16, nclass=4, fmode="analog"
)
CLASSIFIER = dict(type="ImageClassifier", backbone=BACKBONE, neck=None, head=dict(type="ClsHead"))
SPLITS = ([0, 3], [3, 7])


def lively(model):
    """Scale the weights up: at their initial scale no spike gets through the untrained
    network and every sample gives the same output, which would hide a reordering."""
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() > 1:
                parameter.mul_(4)
    return model


def segment_models(whole, splits=SPLITS):
    models = []
    for split in splits:
        model = build(dict(CLASSIFIER, backbone=dict(BACKBONE, split=list(split))), CLASSIFIERS)
        model.load_state_dict({k: whole.state_dict()[k] for k in model.state_dict()})
        models.append(model.eval())
    return models


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    """The whole model and its two segments, compiled (batch 2), and 7 samples."""
    folder = tmp_path_factory.mktemp("grid")
    torch.manual_seed(0)
    whole = lively(build(CLASSIFIER, CLASSIFIERS).eval())
    compile_model(whole, folder / "whole", batch_size=2)
    compile_segments(segment_models(whole), folder / "segments", batch_size=2)
    # the eager PyTorch backend: weights plus the config that rebuilds each segment
    configs = [dict(CLASSIFIER, backbone=dict(BACKBONE, split=list(s))) for s in SPLITS]
    compile_segments(
        segment_models(whole),
        folder / "torch",
        batch_size=2,
        backend="torch",
        model_configs=configs,
    )
    generator = torch.Generator().manual_seed(3)
    samples = (torch.rand(7, TIMESTEPS, 2, 16, 16, generator=generator) < 0.3).float().numpy()
    reference = Runtime(folder / "whole").run(samples)
    return folder, samples, reference


@pytest.mark.parametrize(
    "grid, artifact",
    [
        ([[0, 1]], "segments"),  # 1 x 2: model slicing
        ([[0], [1]], "whole"),  # 2 x 1: time slicing
        ([[0, 1], [2, 3]], "segments"),  # 2 x 2: both
        ([[0], [1], [2], [3]], "whole"),  # 4 x 1: uneven slices of T=6 (1, 2, 1, 2 steps)
        ([[0, 1], [2, 3]], "torch"),  # 2 x 2 with the eager PyTorch engine
    ],
)
def test_every_grid_gives_the_single_device_outputs_in_order(artifacts, grid, artifact):
    folder, samples, reference = artifacts
    result = run_grid(folder / artifact, grid, samples, timeout_s=240)
    assert result.outputs.shape == reference.shape == (7, 4)
    # row i is sample i's output: a reordering would move rows of distinct values
    assert len({tuple(row) for row in np.round(reference, 6)}) > 1
    np.testing.assert_allclose(result.outputs, reference, rtol=0, atol=1e-5)
    rows, columns = len(grid), len(grid[0])
    assert [(r.row, r.column) for r in result.reports] == [
        (k, j) for k in range(rows) for j in range(columns)
    ]
    for column in range(columns):
        assert sum(r.steps for r in result.reports if r.column == column) == TIMESTEPS
    assert result.frames_per_s > 0 and "utilisation" in result.summary()


def test_the_segments_chain_inside_the_pipeline_artifact(artifacts):
    folder, _, _ = artifacts
    manifest, segments = read_pipeline(folder / "segments")
    assert [entry["split"] for entry in manifest["segments"]] == [list(s) for s in SPLITS]
    first, second = (json.loads((s / "net_params.json").read_text()) for s in segments)
    assert first["output"]["shape"] == second["input"]["shape"]
    assert first["aggregation"] == "none" and second["aggregation"] == "mean"
    assert first["segment"] == {"split": [0, 3], "first": True, "last": False}
    # each segment holds only its own layers' states; the aggregate is the last one's
    assert not any(s["name"].startswith("aggregate") for s in first["states"])
    assert any(s["name"].startswith("aggregate") for s in second["states"])
    with pytest.raises(ArtifactError, match="infer-multi"):
        Runtime(folder / "segments")


def test_a_torch_artifact_holds_data_only_and_is_rebuilt_from_its_config(artifacts, tmp_path):
    import shutil

    folder, samples, _ = artifacts
    segment = folder / "torch" / "segment_0"
    manifest = json.loads((segment / "net_params.json").read_text())
    assert manifest["backend"] == "torch" and manifest["model"]["backbone"]["split"] == [0, 3]
    assert sorted(p.name for p in segment.iterdir()) == [
        "net_params.json",
        "summary.txt",
        "weights.pt",
    ]
    damaged = tmp_path / "damaged"
    shutil.copytree(segment, damaged)
    manifest["model"]["backbone"]["type"] = "NoSuchBackbone"
    (damaged / "net_params.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="cannot rebuild its model.*NoSuchBackbone"):
        Runtime(damaged)


def test_a_failed_segment_compile_leaves_the_last_good_artifact(artifacts, monkeypatch):
    import bidl.deploy.segments as segments_module
    from bidl.deploy.artifact import ArtifactWriteError

    folder, samples, reference = artifacts
    target = folder / "segments"
    before = sorted(p.name for p in folder.iterdir())
    calls = []
    real = segments_module.compile_model

    def fail_on_the_second_segment(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(segments_module, "compile_model", fail_on_the_second_segment)
    torch.manual_seed(9)  # other weights: a half-replaced artifact would show
    other = lively(build(CLASSIFIER, CLASSIFIERS).eval())
    # the write failure reaches the user as one error naming the folder and the free space
    with pytest.raises(ArtifactWriteError, match="could not write .*segments.*No space left"):
        compile_segments(segment_models(other), target, batch_size=2)
    assert sorted(p.name for p in folder.iterdir()) == before  # no temporary folder left
    result = run_grid(target, [[0, 1]], samples, timeout_s=240)
    np.testing.assert_allclose(result.outputs, reference, rtol=0, atol=1e-5)


def test_stale_stages_of_a_killed_compile_are_removed(tmp_path):
    from bidl.deploy.artifact import remove_stale_stages

    target = tmp_path / "art"
    stale, live = tmp_path / ".art.k1.tmp", tmp_path / ".art.k2.tmp"
    for stage in (stale, live):
        (stage / "segment_0").mkdir(parents=True)
        (stage / "segment_0" / "step.onnx").write_bytes(b"half")
    old = 1_000_000_000
    for path in (stale, stale / "segment_0", stale / "segment_0" / "step.onnx"):
        os.utime(path, (old, old))
    assert remove_stale_stages(target) == [stale]
    assert live.exists() and not stale.exists()


def test_grid_and_artifact_that_do_not_fit_are_refused(artifacts):
    folder, samples, _ = artifacts
    with pytest.raises(BidlError, match="1 model segment.*2 column"):
        run_grid(folder / "whole", [[0, 1]], samples)
    with pytest.raises(BidlError, match="7 time slices .* 6 timesteps"):
        slice_bounds(TIMESTEPS, 7)


def test_a_failing_grid_process_is_reported_and_the_others_stop(artifacts):
    folder, samples, _ = artifacts
    with pytest.raises(
        BidlError, match=r"grid process [01] failed: grid input: samples have 4 timesteps"
    ):
        run_grid(folder / "whole", [[0], [1]], samples[:, :4], timeout_s=120)


@pytest.mark.parametrize(
    "value, message",
    [
        ([0, 1], r"for 2 model segments write \[\[0, 1\]\]"),
        ([[0, 1], [2]], "same number of devices"),
        ([[0, 0]], "repeat"),
        ("[[0, 1", "not a list of lists"),
        ([[-1]], "integers >= 0"),
    ],
)
def test_malformed_grids_are_explained(value, message):
    with pytest.raises(BidlError, match=message):
        DeviceGrid.parse(value)


def test_grid_positions_are_rows_of_time_and_columns_of_segments():
    grid = DeviceGrid.parse([[4, 5], [6, 7]])
    assert (grid.time_slices, grid.segments, grid.size) == (2, 2, 4)
    assert [grid.position(r) for r in range(4)] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [grid.device_id(r) for r in range(4)] == [4, 5, 6, 7]
    assert slice_bounds(10, 4) == [(0, 2), (2, 5), (5, 7), (7, 10)]


# --- the config route: bidl compile --segments, bidl infer-multi -------------------------

MP_CONFIG = """
custom_imports = dict(imports=["tiny_dataset"], allow_failed_imports=False)
backbone = dict(type="SeqClif3Flif2DgItout", timestep=4, h=16, w=16, nclass=3, fmode="analog")
model = dict(type="ImageClassifier", backbone=backbone, neck=None, head=dict(type="ClsHead"))
model_0 = dict(model, backbone=dict(backbone, split=[0, 3]))
model_1 = dict(model, backbone=dict(backbone, split=[3, 7]))
models_compile_inputshape = [[1, 2, 16, 16], {shape}]
devices = [[0, 1], [2, 3]]
pipeline = [
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
data = dict(
    samples_per_gpu=4,
    workers_per_gpu=0,
    test=dict(type="TinyBlinks", data_prefix="unused", pipeline=pipeline, test_mode=True,
              num_samples=9),
)
work_dir = "{work_dir}"
"""


def write_mp_config(folder: Path, shape="[1, 128, 4, 4]") -> Path:
    path = folder / "seqclif3flif2dg-itout-b4x0-tinyblinks_mp.py"
    path.write_text(textwrap.dedent(MP_CONFIG.format(shape=shape, work_dir=folder / "work")))
    return path


@pytest.fixture
def mp_config(tmp_path, monkeypatch):
    """A config with two segments over TinyBlinks, and a checkpoint of its whole model."""
    # the grid processes import the config's custom_imports (tests/tiny_dataset.py)
    paths = [str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
    config = write_mp_config(tmp_path)
    cfg = load_config(config)
    torch.manual_seed(1)
    whole = lively(build(cfg.model.to_dict(), CLASSIFIERS))
    checkpoint = tmp_path / "whole.pth"
    save_checkpoint(checkpoint, whole)
    return config, checkpoint


def test_segment_input_shapes_in_the_config_are_checked(tmp_path, mp_config):
    config, checkpoint = mp_config
    cfg = load_config(write_mp_config(tmp_path, shape="[1, 32, 8, 8]"))
    state = torch.load(checkpoint, weights_only=True)["state_dict"]
    with pytest.raises(BidlError, match=r"models_compile_inputshape\[1\].*\[batch, 128, 4, 4\]"):
        build_segments(cfg, state)
    cfg.model_1.backbone.split = [4, 7]
    with pytest.raises(BidlError, match="model_1.backbone.split=.*must start at 3"):
        build_segments(cfg, state)


def test_compile_segments_then_infer_multi_equals_infer_on_one_device(tmp_path, mp_config):
    config, checkpoint = mp_config
    segments, whole = tmp_path / "segments", tmp_path / "whole"
    common = ["--checkpoint", str(checkpoint), "--batch", "4"]
    assert main(["compile", str(config), *common, "--segments", "--out", str(segments)]) == 0
    assert main(["compile", str(config), *common, "--out", str(whole)]) == 0
    single = tmp_path / "single.json"
    assert main(["infer", str(config), "--artifact", str(whole), "--out", str(single)]) == 0
    figures = tmp_path / "grid.json"
    argv = ["infer-multi", str(config), "--artifact", str(segments), "--out", str(figures)]
    assert main(argv) == 0
    grid = json.loads(figures.read_text())
    assert grid["grid"] == [[0, 1], [2, 3]] and grid["samples"] == 9
    one_device = json.loads(single.read_text())
    assert grid["accuracy_top-1"] == pytest.approx(one_device["accuracy_top-1"])
    assert [d["steps"] for d in grid["devices"]] == [2, 2, 2, 2]
    assert all(0 <= d["utilisation"] <= 1 for d in grid["devices"])


def test_infer_multi_without_a_grid_says_how_to_give_one(tmp_path, mp_config, capsys):
    config, checkpoint = mp_config
    config.write_text(config.read_text().replace("devices = [[0, 1], [2, 3]]", ""))
    assert main(["infer-multi", str(config), "--checkpoint", str(checkpoint)]) != 0
    assert "--devices '[[0, 1]]'" in capsys.readouterr().err


def test_shipped_multi_device_config_slices_resnet50_where_it_says():
    cfg = load_config("resnetlif50-itout-b8x1-cifar10dvs_mp")
    whole = build(cfg.model.to_dict(), CLASSIFIERS)
    models = build_segments(cfg, whole.state_dict())  # checks models_compile_inputshape
    assert [m.backbone.split for m in models] == [(0, 6), (6, 16)]


def test_bidl_spelled_tools_and_torchrun_run_the_same_grid(tmp_path, mp_config):
    """tools/complie_for_mp.py compiles the segments; tools/apuinfer_mutidevice.py runs them
    (processes started by bidl) and so does `bidl infer-multi` under torchrun (the route
    across hosts): the same figures of accuracy over the same samples."""
    config, checkpoint = mp_config
    segments, spawned, launched = tmp_path / "segs", tmp_path / "a.json", tmp_path / "b.json"

    def run(*argv):
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    run(sys.executable, "tools/complie_for_mp.py", "--config", str(config),
        "--checkpoint", str(checkpoint), "--b", "4", "--out", str(segments))  # fmt: skip
    assert read_pipeline(segments)[0]["batch_size"] == 4
    out = run(sys.executable, "tools/apuinfer_mutidevice.py", "--config", str(config),
              "--artifact", str(segments), "--devices", "[[0, 1]]", "--out", str(spawned))  # fmt: skip
    assert "frames/s" in out and "utilisation" in out
    run(sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "bidl.cli", "infer-multi", str(config), "--artifact", str(segments),
        "--devices", "[[0, 1]]", "--out", str(launched))  # fmt: skip
    first, second = json.loads(spawned.read_text()), json.loads(launched.read_text())
    assert first["samples"] == second["samples"] == 9
    assert first["accuracy_top-1"] == second["accuracy_top-1"]
    assert [d["segment"] for d in second["devices"]] == [0, 1]


def test_infer_multi_measures_speed_on_synthetic_samples(tmp_path, artifacts, mp_config):
    folder, _, _ = artifacts
    config, _ = mp_config
    # BIDL's name of the grid, read from the config
    text = config.read_text().replace("devices = [[0, 1], [2, 3]]", "lynxi_devices = [[0], [1]]")
    config.write_text(text)
    figures = tmp_path / "speed.json"
    argv = ["infer-multi", str(config), "--artifact", str(folder / "whole"), "--synthetic", "5"]
    assert main([*argv, "--warmup", "1", "--out", str(figures)]) == 0
    speed = json.loads(figures.read_text())
    assert speed["grid"] == [[0], [1]]
    assert speed["samples"] == 5 and speed["frames_per_s"] > 0
    assert not any(key.startswith("accuracy") for key in speed)  # no labels: no accuracy
    assert [d["steps"] for d in speed["devices"]] == [3, 3]


def test_compile_balance_chooses_the_splits_and_the_grid_still_agrees(tmp_path, mp_config, capsys):
    config, checkpoint = mp_config
    segments, whole = tmp_path / "balanced", tmp_path / "whole"
    common = ["--checkpoint", str(checkpoint), "--batch", "4"]
    argv = ["compile", str(config), *common, "--segments", "--balance", "cpu"]
    assert main([*argv, "--out", str(segments)]) == 0
    printed = capsys.readouterr().out
    assert "segments balanced on cpu: splits [[0, " in printed
    manifest, _ = read_pipeline(segments)
    splits = [entry["split"] for entry in manifest["segments"]]
    assert f"splits {splits}" in printed
    assert splits[0][0] == 0 and splits[-1][1] == 7 and splits[0][1] == splits[1][0]
    assert main(["compile", str(config), *common, "--out", str(whole)]) == 0
    single, figures = tmp_path / "single.json", tmp_path / "grid.json"
    assert main(["infer", str(config), "--artifact", str(whole), "--out", str(single)]) == 0
    argv = ["infer-multi", str(config), "--artifact", str(segments), "--devices", "[[0, 1]]"]
    assert main([*argv, "--out", str(figures)]) == 0
    grid, one = json.loads(figures.read_text()), json.loads(single.read_text())
    assert grid["accuracy_top-1"] == pytest.approx(one["accuracy_top-1"])


def test_balance_needs_segments(mp_config, capsys):
    config, checkpoint = mp_config
    assert main(["compile", str(config), "--checkpoint", str(checkpoint), "--balance", "cpu"]) != 0
    assert "--balance chooses the split points of segments: add --segments" in (
        capsys.readouterr().err
    )


def test_balance_with_a_checkpoint_of_another_model_is_one_error(tmp_path, mp_config, capsys):
    config, _ = mp_config
    other = tmp_path / "other.pth"
    save_checkpoint(other, torch.nn.Linear(3, 2))
    argv = ["compile", str(config), "--checkpoint", str(other), "--segments", "--balance", "cpu"]
    assert main([*argv, "--out", str(tmp_path / "x")]) != 0
    err = capsys.readouterr().err
    assert "the checkpoint lacks" in err and "Traceback" not in err
