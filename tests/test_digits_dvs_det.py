"""DigitsDVSDet (DigitsDVS-Det): generated clips, exact boxes, the detection sample format."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch

from bidl.cli import main
from bidl.datasets.base import DatasetNotFoundError
from bidl.datasets.builder import build_dataset
from bidl.datasets.digits_dvs_det import (
    CANVAS,
    DURATION_US,
    INK_FLOOR,
    generate_digits_dvs_det,
    load_digits_dvs_det,
    render_digits,
)
from bidl.datasets.digits_dvs_det.prepare import glyph_pools
from bidl.registry import BidlError

CLIPS = 12


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    folder = tmp_path_factory.mktemp("digits_dvs_det")
    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["data", "prepare", "digits_dvs_det", "--root", str(folder),
                     "--set", f"num_samples={CLIPS}"]) in (0, None)  # fmt: skip
    return folder


@pytest.fixture(scope="module")
def cache(root):
    return load_digits_dvs_det(root)[0]


def dataset(root, **kwargs):
    return build_dataset(
        dict(type="DigitsDVSDet", data_prefix=str(root), **{"num_samples": CLIPS, **kwargs})
    )


def digits_of(cache, clip):
    lo, hi = cache["object_offsets"][clip], cache["object_offsets"][clip + 1]
    return slice(lo, hi)


def test_samples_have_the_detection_format(root):
    train = dataset(root)
    test = dataset(root, test_mode=True, max_objects=5, timesteps=4)
    assert len(train) == CLIPS and len(test) == CLIPS
    assert list("0123456789") == train.CLASSES
    assert train.image_size == (64, 64)
    sample = test[0]
    assert sample["img"].shape == (4, 2, 64, 64) and sample["img"].dtype == np.uint8
    assert sample["gt_bboxes"].shape == (5, 4) and sample["gt_bboxes"].dtype == np.float32
    assert sample["gt_labels"].shape == (5,) and sample["gt_labels"].dtype == np.int64
    n = int((sample["gt_labels"] >= 0).sum())
    assert 1 <= n <= 3
    assert (sample["gt_labels"][n:] == -1).all() and (sample["gt_bboxes"][n:] == 0).all()
    truth = test.ground_truths()[0]
    np.testing.assert_array_equal(truth["bboxes"], sample["gt_bboxes"][:n])
    np.testing.assert_array_equal(truth["labels"], sample["gt_labels"][:n])
    batch = torch.utils.data.default_collate([train[0], train[1]])
    assert batch["img"].shape == (2, 8, 2, 64, 64)
    assert batch["gt_bboxes"].shape == (2, 32, 4) and batch["gt_labels"].shape == (2, 32)
    with pytest.raises(BidlError, match="detection dataset"):
        train.get_gt_labels()


def test_a_box_is_the_bounding_box_of_its_digit_at_the_last_frame(cache):
    images = glyph_pools(0)[0]
    for clip in range(2 * CLIPS):
        digits = digits_of(cache, clip)
        glyphs = images[cache["glyph"][digits]]
        for k, box in enumerate(cache["boxes"][digits]):
            index = digits.start + k
            alone = render_digits(glyphs[k : k + 1], cache["scale"][[index]], cache["end"][[index]])
            rows, cols = np.nonzero(alone[0])
            assert alone[0][rows, cols].min() >= INK_FLOOR
            assert box.tolist() == [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
        # no two digits share a pixel, at the start, midway or at the end
        for f in (0.0, 0.5, 1.0):
            start = cache["start"][digits]
            where = start + f * (cache["end"][digits] - start)
            ink = render_digits(glyphs, cache["scale"][digits], where) > 0
            assert ink.sum(axis=0).max() <= 1


def test_boxes_and_labels_look_like_the_issue_asks(cache):
    sides = cache["boxes"][:, 2:] - cache["boxes"][:, :2]
    assert sides.max() <= 22 and sides[:, 1].min() >= 8  # heights of 14-20 px cells
    assert (cache["boxes"][:, :2] >= 0).all() and (cache["boxes"][:, 2:] <= CANVAS).all()
    assert set(np.diff(cache["object_offsets"]).tolist()) <= {1, 2, 3}
    travel = np.hypot(*(cache["end"] - cache["start"]).T)
    assert travel.min() >= 6 and travel.max() <= 14


def test_test_clips_draw_glyphs_no_training_clip_shows(cache):
    train = cache["glyph"][: cache["object_offsets"][CLIPS]]
    test = cache["glyph"][cache["object_offsets"][CLIPS] :]
    assert not set(train.tolist()) & set(test.tolist())
    _, labels, pools = glyph_pools(0)
    assert set(train.tolist()) <= set(pools["train"].tolist())
    np.testing.assert_array_equal(cache["label"], labels[cache["glyph"]])


def test_events_of_the_last_bin_lie_around_the_boxes(cache):
    # in the last eighth of the clip a digit moves at most 14 / 8 pixels, so its events
    # lie within 2 pixels (plus one for pixel rounding) of its final box
    margin = 3
    for clip in range(2 * CLIPS):
        lo, hi = cache["offsets"][clip], cache["offsets"][clip + 1]
        late = cache["t"][lo:hi] >= DURATION_US * 7 // 8
        x, y = cache["x"][lo:hi][late].astype(int), cache["y"][lo:hi][late].astype(int)
        boxes = cache["boxes"][digits_of(cache, clip)]
        inside = np.zeros(x.size, dtype=bool)
        for x1, y1, x2, y2 in boxes:
            near = (x >= x1 - margin) & (x < x2 + margin) & (y >= y1 - margin) & (y < y2 + margin)
            inside |= near
            assert ((x >= x1) & (x < x2) & (y >= y1) & (y < y2)).sum() >= 10  # each box fires
        assert inside.all()


def test_frames_count_the_events_in_time_bins(root, cache):
    train = dataset(root, timesteps=8)
    frames = train[3]["img"]
    lo, hi = cache["offsets"][3], cache["offsets"][4]
    t, p = cache["t"][lo:hi], cache["p"][lo:hi]
    x, y = cache["x"][lo:hi], cache["y"][lo:hi]
    assert frames.sum() == hi - lo
    first_bin = t < DURATION_US / 8
    assert frames[0, 1].sum() == (first_bin & (p == 1)).sum()
    assert frames[0, 0, y[0], x[0]] + frames[0, 1, y[0], x[0]] >= 1


def test_generation_is_deterministic_and_clips_do_not_depend_on_the_count(cache):
    few = generate_digits_dvs_det(seed=0, num_samples=2)
    # the first two train clips, then the first two test clips of the 12-clip cache
    for ours, theirs in ((0, 0), (1, 1), (2, CLIPS), (3, CLIPS + 1)):
        a, b = digits_of(few, ours), digits_of(cache, theirs)
        np.testing.assert_array_equal(few["boxes"][a], cache["boxes"][b])
        np.testing.assert_array_equal(few["glyph"][a], cache["glyph"][b])
        ea = slice(few["offsets"][ours], few["offsets"][ours + 1])
        eb = slice(cache["offsets"][theirs], cache["offsets"][theirs + 1])
        for key in "xytp":
            np.testing.assert_array_equal(few[key][ea], cache[key][eb])
    other = generate_digits_dvs_det(seed=1, num_samples=2)
    assert not np.array_equal(other["boxes"][:2], few["boxes"][:2])


def test_cache_checks_and_errors(root, tmp_path, capsys):
    with pytest.raises(DatasetNotFoundError, match="bidl data prepare digits_dvs_det --root"):
        build_dataset(dict(type="DigitsDVSDet", data_prefix=str(tmp_path), auto_prepare=False))
    with pytest.raises(DatasetNotFoundError, match=r"num_samples 12 \(wanted 5\)"):
        dataset(root, auto_prepare=False, num_samples=5)
    with pytest.raises(BidlError, match=r"num_samples must be None .* or an int in \[1, 4000\]"):
        dataset(root, num_samples=0)
    with pytest.raises(BidlError, match="timesteps must be an int >= 1"):
        dataset(root, timesteps=0)
    three = next(i for i in range(CLIPS) if (dataset(root)[i]["gt_labels"] >= 0).sum() == 3)
    with pytest.raises(BidlError, match=f"clip {three} has 3 digits, more than max_objects=2"):
        dataset(root, max_objects=2)
    assert main(["data", "prepare", "digits_dvs_det", "--root", str(root), "--set", "size=40"])
    assert "--set takes num_samples (the first N clips of each split" in capsys.readouterr().err


def test_listed_with_its_source():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["list", "datasets"])
    line = next(s for s in out.getvalue().splitlines() if s.startswith("DigitsDVSDet "))
    assert "scikit-learn's 8x8 digits moving on a 64x64 sensor" in line
