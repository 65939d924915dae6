"""The detection path of the engine: ``bidl train`` and ``bidl test`` of a detector config
report COCO mAP; the plumbing from batches to ``coco_metrics``; clear errors."""

import json

import pytest
import torch
from torch import nn

from bidl.cli import main
from bidl.commands.test import format_test_metrics
from bidl.engine.detection import (
    evaluate_detector,
    is_detector,
    predict_detections,
    training_targets,
)
from bidl.registry import BidlError

CONFIG = """
model = dict(
    type="Detector",
    backbone=dict(type="StYolo", timestep=2, input_channels=2, h=64, w=64, width=0.125,
                  use_inner_loop=True),
    neck=dict(type="YOLOPAFPN", depth=0.33),
    head=dict(type="YOLOXHead", num_classes=10),
    test_cfg=dict(score_thr=0.001),
)
pipeline = [
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_bboxes", "gt_labels"]),
    dict(type="Collect", keys=["img", "gt_bboxes", "gt_labels"]),
]
split = dict(type="DigitsDVSDet", data_prefix={data!r}, timesteps=2, max_objects=4,
             num_samples=16, pipeline=pipeline)
data = dict(
    samples_per_gpu=8,
    workers_per_gpu=0,
    train=dict(split, test_mode=False),
    val=dict(split, test_mode=True),
    test=dict(split, test_mode=True),
)
optimizer = dict(type="AdamW", lr=1e-3)
runner = dict(type="EpochBasedRunner", max_epochs=1)
log_config = dict(interval=1)
"""


def test_train_then_test_a_detector_through_the_cli(tmp_path, capsys):
    config = tmp_path / "det_tiny-b8x0-digitsdvsdet.py"
    config.write_text(CONFIG.format(data=str(tmp_path / "data")))
    work_dir = tmp_path / "work"
    args = ["train", str(config), "--work-dir", str(work_dir), "--device", "cpu"]
    assert main(args) == 0
    assert "final validation: mAP" in capsys.readouterr().out
    records = [json.loads(line) for line in (work_dir / "log.json").read_text().splitlines()]
    train = [r for r in records if r["mode"] == "train"]
    assert {"loss", "iou_loss", "conf_loss", "cls_loss", "num_fg"} <= set(train[0])
    val = [r for r in records if r["mode"] == "val"][-1]
    assert {"mAP", "mAP50", "mAP75", "firing_rate"} <= set(val)
    assert (work_dir / "best.pth").is_file()  # the best checkpoint follows mAP

    out = tmp_path / "metrics.json"
    test = ["test", str(config), "latest.pth", "--work-dir", str(work_dir), "--out", str(out)]
    assert main(test) == 0
    printed = capsys.readouterr().out
    metrics = json.loads(out.read_text())
    # the test split is the validation split here: the same figures
    assert metrics["mAP50"] == pytest.approx(val["mAP50"])
    assert f"mAP50: {metrics['mAP50']:.4f}" in printed and "samples/s:" in printed


class Oracle(nn.Module):
    """Predicts each sample's true boxes (read from the image), with a score."""

    task = "detection"
    num_classes = 3

    def forward(self, img, return_loss=True):
        out = []
        for sample in img:
            boxes = sample[0, 0, :, :4]
            labels = sample[0, 0, :, 4].long()
            keep = labels >= 0
            out.append(
                {
                    "bboxes": boxes[keep],
                    "scores": torch.full((int(keep.sum()),), 0.9),
                    "labels": labels[keep],
                }
            )
        return out


def test_predictions_and_padded_truths_reach_coco_metrics():
    boxes = torch.tensor(
        [
            [[1.0, 2.0, 11.0, 12.0], [20.0, 20.0, 30.0, 36.0], [0.0, 0.0, 0.0, 0.0]],
            [[5.0, 5.0, 25.0, 15.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]],
        ]
    )
    labels = torch.tensor([[0, 2, -1], [1, -1, -1]])
    img = torch.full((2, 1, 1, 3, 5), -1.0)
    img[..., :4] = boxes[:, None, None]
    img[..., 4] = labels[:, None, None].float()
    batch = {"img": img, "gt_bboxes": boxes, "gt_labels": labels}
    predictions, truths, _ = predict_detections(Oracle(), [batch], torch.device("cpu"))
    assert [len(t["labels"]) for t in truths] == [2, 1]  # padding rows dropped
    assert torch.equal(truths[0]["bboxes"], boxes[0, :2])
    metrics, _ = evaluate_detector(Oracle(), None, [batch], torch.device("cpu"))
    assert metrics["mAP"] == pytest.approx(1.0) and metrics["mAP50"] == pytest.approx(1.0)
    assert metrics["boxes_per_sample"] == 1.5


def test_a_detector_batch_without_boxes_is_refused():
    assert is_detector(Oracle()) and not is_detector(nn.Linear(2, 2))
    with pytest.raises(BidlError, match=r"Collect them in the pipeline: .*gt_bboxes"):
        training_targets({"img": torch.zeros(1), "gt_label": torch.zeros(1)})


def test_bidl_test_prints_the_coco_metrics():
    text = format_test_metrics(
        {
            "checkpoint": "latest.pth",
            "samples": 10,
            "mAP": 0.5,
            "mAP50": 0.91,
            "mAP75": 0.4,
            "mAP_small": -1.0,
            "mAP_medium": 0.5,
            "mAP_large": -1.0,
            "samples_per_s": 100.0,
            "ms_per_sample": 10.0,
        }
    )
    assert "mAP: 0.5000" in text and "mAP50: 0.9100" in text and "mAP_small: -1.0000" in text
    assert "top-1" not in text
