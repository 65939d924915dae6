"""Gen1Detection in the detection format, read from .dat + _bbox.npy files written in
GEN1's layout: st-yolo's input (stacked histograms of 50 ms windows, one every 125 ms,
padded to 256x320), boxes clipped and filtered as the application does, one clear error
naming the file for each kind of bad input."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from format_writers import random_events, write_dat

from bidl.datasets import build_dataset
from bidl.datasets.base import DatasetNotFoundError
from bidl.datasets.events.histogram import stacked_histogram
from bidl.registry import BidlError

BOX_DTYPE = [("ts", "<u8"), ("x", "<f4"), ("y", "<f4"), ("w", "<f4"), ("h", "<f4"),
             ("class_id", "u1"), ("confidence", "<f4"), ("track_id", "<u4")]  # fmt: skip
T0 = 1_500_000  # first usable label time: 1.3 s of input span fit before it


def boxes(*rows):
    return np.array([(t, x, y, w, h, c, 1.0, i) for i, (t, x, y, w, h, c) in enumerate(rows)],
                    dtype=BOX_DTYPE)  # fmt: skip


def write_recording(folder, name, label_rows, events=None, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    if events is None:
        events = random_events(20_000, size=(240, 304), t_max=3_000_000, seed=seed)
    write_dat(folder / f"{name}_td.dat", events)
    np.save(folder / f"{name}_bbox.npy", boxes(*label_rows))
    return events


GOOD = [
    (500_000, 10, 20, 30, 40, 0),  # before the input span fits: no sample
    (T0, 10, 20, 30, 40, 0),
    (T0, -5, 220, 40, 30, 1),  # partly outside: clipped to [0, 220, 35, 239]
    (T0, 100, 100, 20, 20, 1),  # diagonal 28.3 < 30: dropped
    (T0, 150, 100, 8, 40, 1),  # side 8 < 10: dropped
    (T0 + 250_000, 12, 22, 30, 40, 0),
    (T0 + 250_000, 10, 50, 280, 60, 0),  # wider than 273: dropped from the training split
    (T0 + 300_000, 50, 50, 30, 40, 1),  # 50 ms after a kept label: off GEN1's 4 Hz grid
    (T0 + 750_000, 60, 60, 30, 40, 1),
]


@pytest.fixture
def gen1(tmp_path):
    events = {}
    for split in ("train", "val"):
        events[split] = write_recording(tmp_path / split, "rec_a", GOOD, seed=len(split))
    return tmp_path, events


def build(root, **kwargs):
    return build_dataset(dict(type="Gen1Detection", data_prefix=str(root), **kwargs))


def test_samples_have_the_detection_format(gen1):
    root, _ = gen1
    data = build(root, split="val")
    assert [i["t"] for i in data.data_infos] == [T0, T0 + 250_000, T0 + 750_000]
    assert data.CLASSES == ["car", "pedestrian"] and data.image_size == (256, 320)
    sample = data[0]
    assert sample["img"].shape == (11, 20, 256, 320) and sample["img"].dtype == np.uint8
    assert sample["gt_bboxes"].shape == (64, 4) and sample["gt_bboxes"].dtype == np.float32
    np.testing.assert_array_equal(sample["gt_bboxes"][:2], [[10, 20, 40, 60], [0, 220, 35, 239]])
    assert sample["gt_labels"][:3].tolist() == [0, 1, -1] and (sample["gt_bboxes"][2:] == 0).all()
    assert not sample["img"][:, :, 240:].any() and not sample["img"][:, :, :, 304:].any()
    assert sample["img"].max() <= 10 and sample["img"].sum() > 0
    batch = torch.utils.data.default_collate([data[1], data[2]])
    assert batch["img"].shape == (2, 11, 20, 256, 320) and batch["gt_labels"].shape == (2, 64)
    truths = data.ground_truths()
    np.testing.assert_array_equal(truths[1]["bboxes"], [[12, 22, 42, 62], [10, 50, 290, 110]])
    with pytest.raises(BidlError, match="detection dataset"):
        data.get_gt_labels()


def test_the_training_split_drops_boxes_wider_than_nine_tenths_of_the_frame(gen1):
    root, _ = gen1
    train = build(root, test_mode=False)
    assert train.split == "train"
    assert train.ground_truths()[1]["bboxes"].tolist() == [[12, 22, 42, 62]]
    assert build(root, split="train", max_box_width=None).ground_truths()[1]["labels"].size == 2


def test_label_times_off_the_4hz_grid_are_kept_only_without_a_period(gen1):
    root, _ = gen1
    every = build(root, split="val", label_period_us=None)
    assert [i["t"] for i in every.data_infos] == [T0, T0 + 250_000, T0 + 300_000, T0 + 750_000]
    short = build(root, split="val", timesteps=2, label_period_us=None)
    assert short.span_us == 175_000 and short.data_infos[0]["t"] == 500_000


def test_each_frame_is_the_stacked_histogram_of_its_window(gen1):
    root, events = gen1
    data = build(root, split="val", timesteps=3, input_size=None)
    assert data.image_size == (240, 304)
    t = data.data_infos[0]["t"]
    img = data[0]["img"]
    ev_t = events["val"]["t"]
    for k in range(3):
        end = t - (2 - k) * 125_000
        window = (ev_t >= end - 50_000) & (ev_t <= end)
        x, y, p, tw = (events["val"][c][window] for c in "xypt")
        # by hand: 10 bins between the window's first and last event, OFF channels first
        bins = np.minimum((tw - tw[0]) * 10 // (tw[-1] - tw[0]), 9)
        expected = np.zeros((20, 240, 304), dtype=np.int64)
        np.add.at(expected, (p * 10 + bins, y, x), 1)
        np.testing.assert_array_equal(img[k], np.minimum(expected, 10))


def test_stacked_histogram_bins_and_cutoff():
    # a window from t = 100 to t = 200: t = 100 opens bin 0, t = 200 falls in bin 9
    x = np.array([1, 2, 3] + [5] * 15)
    y = np.array([0, 0, 0] + [4] * 15)
    t = np.array([100, 155, 200] + [199] * 15)
    p = np.array([0, 1, 1] + [1] * 15)
    order = np.argsort(t, kind="stable")
    hist = stacked_histogram(x[order], y[order], t[order], p[order], (6, 8), 10, 10)
    assert hist.shape == (20, 6, 8)
    assert hist[0, 0, 1] == 1 and hist[10 + 5, 0, 2] == 1 and hist[10 + 9, 0, 3] == 1
    assert hist[10 + 9, 4, 5] == 10  # 15 events, clipped at the cutoff
    assert hist.sum() == 13
    one = stacked_histogram(np.array([2]), np.array([1]), np.array([7]), np.array([1]), (3, 3))
    assert one[10, 1, 2] == 1 and one.sum() == 1
    assert not stacked_histogram(*(np.zeros(0, int),) * 4, (3, 3)).any()


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ((T0, 10, 20, 0, 40, 0), "has a non-positive size"),
        ((T0, 400, 20, 30, 40, 0), "lies wholly outside the 304x240 frame"),
        ((T0, 10, -90, 30, 40, 0), "lies wholly outside the 304x240 frame"),
        ((T0, float("nan"), 20, 30, 40, 0), "is not finite"),
        ((T0, 10, 20, 30, 40, 3), r"has a class_id other than 0 \(car\) or 1 \(pedestrian\)"),
    ],
)
def test_a_bad_box_is_one_error_naming_the_file(tmp_path, row, message):
    write_recording(tmp_path / "val", "rec_b", [GOOD[1], row])
    path = tmp_path / "val" / "rec_b_bbox.npy"
    pattern = f"{re.escape(str(path))}: box 1 .*{message}.*drop_invalid_boxes=True"
    with pytest.raises(BidlError, match=pattern):
        build(tmp_path, split="val")
    kept = build(tmp_path, split="val", drop_invalid_boxes=True).ground_truths()
    assert [g["bboxes"].tolist() for g in kept] == [[[10, 20, 40, 60]]]


def test_recordings_and_label_files_that_do_not_match(tmp_path):
    folder = tmp_path / "val"
    write_recording(folder, "rec_c", [GOOD[1], (3_500_000, 10, 20, 30, 40, 0)])
    label = folder / "rec_c_bbox.npy"
    with pytest.raises(BidlError, match=rf"{re.escape(str(label))}: 1 box\(es\) labelled at times outside the "
                       rf"recording .*rec_c_td.dat .*does not match its recording"):  # fmt: skip
        build(tmp_path, split="val")
    np.save(label, boxes()[:0])
    with pytest.raises(BidlError, match=f"{re.escape(str(label))}: the label file holds no"):
        build(tmp_path, split="val")
    label.unlink()
    with pytest.raises(DatasetNotFoundError, match=r"rec_c_td.dat has no box file .*rec_c_bbox"):
        build(tmp_path, split="val")
    empty = {k: np.zeros(0, dtype=np.int64) for k in "xytp"}
    write_recording(folder, "rec_c", [GOOD[1]], events=empty)
    with pytest.raises(BidlError, match=r"rec_c_td.dat: the recording holds no events"):
        build(tmp_path, split="val")


def test_more_boxes_than_max_objects_and_other_arguments(gen1):
    root, _ = gen1
    where = re.escape(str(root / "val" / "rec_a_bbox.npy"))
    with pytest.raises(BidlError, match=rf"{where} has 2 boxes at t=1500000 "
                       r"us, more than max_objects=1; raise max_objects"):  # fmt: skip
        build(root, split="val", max_objects=1)
    with pytest.raises(BidlError, match=r"input_size \(H, W\) pads the \(240, 304\) frames"):
        build(root, split="val", input_size=(200, 320))
    with pytest.raises(BidlError, match="timesteps must be an int >= 1"):
        build(root, split="val", timesteps=0)
    with pytest.raises(DatasetNotFoundError, match="no labelled instant"):
        build(root, split="val", timesteps=30)
