"""``bidl viz``: event frames as an animation beside the running prediction."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import write_tiny_config
from PIL import Image

import bidl.analysis.viz as viz
from bidl.cli import main
from bidl.config import load_config
from bidl.datasets import build_dataset
from bidl.engine import build_model, save_checkpoint


def _frames_of(path):
    with Image.open(path) as image:
        size, count = image.size, image.n_frames
    return size, count


@pytest.fixture
def tiny_model(tmp_path):
    config = write_tiny_config(tmp_path)
    torch.manual_seed(0)
    model = build_model(load_config(config))
    save_checkpoint(tmp_path / "model.pth", model)
    return config, model


def test_viz_animates_a_sample_beside_its_running_prediction(tiny_model, tmp_path, capsys):
    config, model = tiny_model
    out = tmp_path / "sample.gif"
    argv = ["viz", str(config), "--checkpoint", str(tmp_path / "model.pth"), "--sample", "2"]
    assert main([*argv, "--out", str(out)]) == 0
    assert f"wrote {out} (4 frames, 800x400)" in capsys.readouterr().out
    assert _frames_of(out) == ((800, 400), 4)
    data = json.loads(out.with_suffix(".json").read_text())

    sample = build_dataset(load_config(config).data.test)[2]
    img = sample["img"]  # [T, 2, H, W]: channel 0 OFF, 1 ON
    assert data["on_events"] == img[:, 1].sum(dim=(1, 2)).tolist()
    assert data["off_events"] == img[:, 0].sum(dim=(1, 2)).tolist()
    assert data["label"] == int(sample["gt_label"])
    # running prediction: softmax of the mean of the per-step outputs so far
    model.eval()
    with torch.no_grad():
        per_step = model.backbone.forward_sequence(img.unsqueeze(1))[:, 0]
    running = torch.cumsum(per_step, 0) / torch.arange(1, 5).unsqueeze(1)
    expected = torch.softmax(running, dim=1)
    np.testing.assert_allclose(data["probabilities"], expected.numpy(), rtol=1e-5, atol=1e-6)
    assert data["predicted"] == expected.argmax(1).tolist()


def test_viz_animates_an_event_file(tmp_path):
    rng = np.random.default_rng(0)
    count = 500
    events = {
        "x": rng.integers(0, 20, count),
        "y": rng.integers(0, 10, count),
        "t": np.sort(rng.integers(0, 100_000, count)),
        "p": rng.integers(0, 2, count),
    }
    np.savez(tmp_path / "rec.npz", **events)
    argv = ["viz", "--events", str(tmp_path / "rec.npz"), "--frames", "5", "--dpi", "50"]
    assert main([*argv, "--sensor-size", "10", "20"]) == 0
    assert _frames_of(tmp_path / "rec.gif") == ((200, 200), 5)
    data = json.loads((tmp_path / "rec.json").read_text())
    t = events["t"]
    edges = np.linspace(t.min(), t.max(), 6)
    bins = np.minimum(np.searchsorted(edges, t, side="right") - 1, 4)
    for frame in range(5):
        in_frame = bins == frame
        assert data["on_events"][frame] == int((events["p"][in_frame] == 1).sum())
        assert data["off_events"][frame] == int((events["p"][in_frame] == 0).sum())


def test_viz_of_a_digits_dvs_event_stream(tmp_path):
    root = tmp_path / "digits"
    options = [f"data.test.data_prefix={root}", "data.test.num_samples=50"]
    out = tmp_path / "digit.gif"
    argv = ["viz", "clif3fc3dm_itout-b16x1-digitsdvs", "--frames", "12", "--out", str(out)]
    assert main([*argv, "--cfg-options", *options]) == 0
    assert _frames_of(out) == ((400, 400), 12)
    data = json.loads(out.with_suffix(".json").read_text())
    with np.load(root / "events.npz") as npz:
        offsets, test_idx = npz["offsets"], np.sort(npz["test_idx"])
        lo, hi = offsets[test_idx[0]], offsets[test_idx[0] + 1]
        polarity = npz["p"][lo:hi]
    assert data["source"] == "event stream" and data["events"] == hi - lo
    assert sum(data["on_events"]) == int((polarity == 1).sum())
    assert sum(data["off_events"]) == int((polarity == 0).sum())
    # each display frame shows the running prediction of the model step it falls in
    assert data["step_of_frame"] == [0, 1, 1, 2, 3, 3, 4, 5, 5, 6, 7, 7]


def test_viz_mp4_without_imageio_ffmpeg_says_what_to_install(tiny_model, tmp_path, capsys):
    config, _ = tiny_model
    original = viz.mp4_available
    viz.mp4_available = lambda: False
    try:
        assert main(["viz", str(config), "--out", str(tmp_path / "a.mp4")]) == 1
    finally:
        viz.mp4_available = original
    assert "pip install imageio-ffmpeg" in capsys.readouterr().err
    assert not (tmp_path / "a.mp4").exists()


@pytest.mark.skipif(not viz.mp4_available(), reason="imageio-ffmpeg is not installed")
def test_viz_writes_an_mp4_when_imageio_ffmpeg_is_installed(tiny_model, tmp_path):
    config, _ = tiny_model
    out = tmp_path / "a.mp4"
    assert main(["viz", str(config), "--out", str(out), "--dpi", "40"]) == 0
    assert out.read_bytes()[4:8] == b"ftyp"
    assert json.loads(out.with_suffix(".json").read_text())["frames"] == 4
