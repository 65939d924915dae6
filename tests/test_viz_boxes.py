"""``bidl viz`` of a detector: the event frames with the sample's true boxes and the
checkpoint's predicted boxes."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from bidl.analysis.viz_boxes import box_summary, true_boxes
from bidl.cli import main
from bidl.config import load_config
from bidl.datasets import build_dataset
from bidl.engine import build_model, save_checkpoint

CONFIG = "st_yolo_tiny_it-b16x1-digitsdvsdet"


def test_viz_draws_a_detectors_true_and_predicted_boxes(tmp_path, capsys):
    # untrained, its scores are about 1e-4: a zero threshold keeps its best boxes
    values = {
        "data.test.data_prefix": str(tmp_path / "data"),
        "data.test.num_samples": 4,
        "model.test_cfg.score_thr": 0.0,
    }
    options = [f"{key}={value}" for key, value in values.items()]
    cfg = load_config(CONFIG, values)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "det.pth", build_model(cfg))
    argv = ["viz", CONFIG, "--checkpoint", str(tmp_path / "det.pth"), "--sample", "2"]
    argv += ["--out", str(tmp_path / "det.gif"), "--cfg-options", *options]
    assert main(argv) == 0
    data = json.loads((tmp_path / "det.json").read_text())
    sample = build_dataset(cfg.data.test)[2]
    expected = [
        {"box": [round(float(v), 3) for v in box], "label": int(label)}
        for box, label in zip(sample["gt_bboxes"], sample["gt_labels"], strict=True)
        if label >= 0
    ]
    assert 1 <= len(expected) <= 3 and data["true_boxes"] == expected
    predicted = data["predicted_boxes"]
    assert 0 < len(predicted) <= cfg.model.test_cfg.max_per_img
    assert all(set(row) == {"box", "label", "score"} for row in predicted)
    assert data["frames"] == sample["img"].shape[0] and data["box_time"] == "end of the window"
    out = capsys.readouterr().out
    assert box_summary(data["true_boxes"], predicted) in out
    # the boxes are drawn: green (true) pixels appear in every frame
    with Image.open(tmp_path / "det.gif") as gif:
        for index in range(gif.n_frames):
            gif.seek(index)
            rgb = np.asarray(gif.convert("RGB")).astype(int)
            green = (rgb[..., 1] > 180) & (rgb[..., 0] < 120) & (rgb[..., 2] < 120)
            assert green.sum() > 20, index


def test_padding_rows_are_not_boxes():
    sample = {
        "gt_bboxes": torch.tensor([[1.0, 2.0, 5.0, 9.0], [0.0, 0.0, 0.0, 0.0]]),
        "gt_labels": torch.tensor([7, -1]),
    }
    assert true_boxes(sample) == [{"box": [1.0, 2.0, 5.0, 9.0], "label": 7}]
    assert box_summary(true_boxes(sample), []) == "1 true box; 0 predicted"
