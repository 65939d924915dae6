"""Pipeline steps: RandomCropVideo, RandomFlipVideo, ToTensorType, ToTensor, Collect."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bidl.datasets.pipelines import (
    Collect,
    Compose,
    RandomCropVideo,
    RandomFlipVideo,
    ToTensor,
    ToTensorType,
)
from bidl.registry import PIPELINES, BidlError


def clip(t=3, c=2, h=6, w=5):
    """A clip whose values are distinct and say where they came from."""
    return np.arange(t * c * h * w, dtype=np.float32).reshape(t, c, h, w) + 1


def sample(img=None):
    return {"img": clip() if img is None else img, "gt_label": 4}


# ----------------------------------------------------------------------------- crop


def test_crop_gives_the_requested_size():
    out = RandomCropVideo(size=(4, 3))(sample())
    assert out["img"].shape == (3, 2, 4, 3)


def test_crop_takes_the_same_window_in_every_frame_and_channel():
    img = clip()
    np.random.seed(0)
    out = RandomCropVideo(size=4)(sample(img))
    top, left, bottom, right = out["crop_bbox"]
    np.testing.assert_array_equal(out["img"], img[:, :, top:bottom, left:right])


def test_crop_of_the_full_padded_frame_adds_zero_borders():
    img = clip()
    out = RandomCropVideo(size=(8, 7), padding=1)(sample(img))
    assert out["img"].shape == (3, 2, 8, 7)
    np.testing.assert_array_equal(out["img"][..., 1:-1, 1:-1], img)
    border = out["img"].copy()
    border[..., 1:-1, 1:-1] = 0
    assert not border.any()


def test_crop_with_padding_keeps_the_frame_content_at_the_bbox_place():
    img = clip()
    np.random.seed(3)
    out = RandomCropVideo(size=5, padding=2)(sample(img))
    top, left, _, _ = out["crop_bbox"]
    padded = np.pad(img, [(0, 0), (0, 0), (2, 2), (2, 2)])
    np.testing.assert_array_equal(out["img"], padded[:, :, top : top + 5, left : left + 5])


def test_crop_is_reproducible_under_numpy_seed():
    step = RandomCropVideo(size=3, padding=2)
    np.random.seed(11)
    first = [step(sample())["crop_bbox"] for _ in range(5)]
    np.random.seed(11)
    second = [step(sample())["crop_bbox"] for _ in range(5)]
    assert first == second
    assert len(set(first)) > 1


def test_crop_returns_a_copy_not_a_view_of_the_dataset_array():
    img = clip()
    out = RandomCropVideo(size=2)(sample(img))
    out["img"][:] = -1
    assert img.min() > 0


def test_crop_works_on_torch_tensors():
    img = torch.from_numpy(clip())
    np.random.seed(0)
    out = RandomCropVideo(size=4, padding=1)(sample(img))
    assert isinstance(out["img"], torch.Tensor)
    top, left, _, _ = out["crop_bbox"]
    padded = torch.nn.functional.pad(img, (1, 1, 1, 1))
    torch.testing.assert_close(out["img"], padded[..., top : top + 4, left : left + 4])


def test_crop_larger_than_padded_frame_error_names_both_sizes():
    with pytest.raises(
        BidlError,
        match=r"crop size \(h, w\) = \(9, 9\) is larger than the padded frame \(H, W\) = \(8, 7\)",
    ):
        RandomCropVideo(size=9, padding=1)(sample())


def test_crop_size_must_be_positive():
    with pytest.raises(BidlError, match=r"RandomCropVideo: size must be >= 1, got 0"):
        RandomCropVideo(size=0)


def test_crop_padding_must_be_an_int_or_pair():
    with pytest.raises(
        BidlError, match=r"padding must be an int or a pair of ints \(h, w\), got 'two'"
    ):
        RandomCropVideo(size=4, padding="two")


def test_crop_repr_shows_its_arguments():
    assert repr(RandomCropVideo(size=32, padding=4)) == "RandomCropVideo(size=32, padding=4)"


# ----------------------------------------------------------------------------- flip


def test_horizontal_flip_mirrors_every_frame_left_right():
    img = clip()
    out = RandomFlipVideo(flip_prob=1.0, direction="horizontal")(sample(img))
    np.testing.assert_array_equal(out["img"], img[..., ::-1])
    assert out["flip"] is True
    assert out["flip_direction"] == "horizontal"


def test_vertical_flip_turns_every_frame_upside_down():
    img = clip()
    out = RandomFlipVideo(flip_prob=1.0, direction="vertical")(sample(img))
    np.testing.assert_array_equal(out["img"], img[..., ::-1, :])


def test_flip_prob_zero_leaves_the_clip_alone():
    img = clip()
    out = RandomFlipVideo(flip_prob=0.0)(sample(img))
    np.testing.assert_array_equal(out["img"], img)
    assert out["flip"] is False


def test_flipped_array_converts_to_a_tensor():
    out = RandomFlipVideo(flip_prob=1.0)(sample())
    assert ToTensor(keys=["img"])(out)["img"].shape == (3, 2, 6, 5)


def test_flip_works_on_torch_tensors():
    img = torch.from_numpy(clip())
    out = RandomFlipVideo(flip_prob=1.0)(sample(img))
    torch.testing.assert_close(out["img"], torch.flip(img, dims=(-1,)))


def test_flip_happens_about_flip_prob_of_the_time():
    step = RandomFlipVideo(flip_prob=0.3)
    np.random.seed(0)
    share = np.mean([step(sample())["flip"] for _ in range(2000)])
    assert 0.25 < share < 0.35


def test_flip_unknown_direction_is_refused():
    with pytest.raises(
        BidlError, match=r"direction must be one of \('horizontal', 'vertical'\), got 'diagonal'"
    ):
        RandomFlipVideo(direction="diagonal")


def test_flip_prob_outside_unit_interval_is_refused():
    with pytest.raises(BidlError, match=r"flip_prob must be in \[0, 1\], got 1.5"):
        RandomFlipVideo(flip_prob=1.5)


def test_flip_repr_shows_its_arguments():
    assert repr(RandomFlipVideo(0.5, "vertical")) == (
        "RandomFlipVideo(flip_prob=0.5, direction='vertical')"
    )


# ----------------------------------------------------------------------------- formatting


@pytest.mark.parametrize(
    ("name", "dtype"),
    [
        ("float32", torch.float32),
        ("float16", torch.float16),
        ("uint8", torch.uint8),
        ("int64", torch.int64),
        ("torch.bfloat16", torch.bfloat16),
        (torch.float64, torch.float64),
    ],
)
def test_to_tensor_type_converts_to_the_named_dtype(name, dtype):
    img = (clip() % 200).astype(np.uint8)
    out = ToTensorType(keys=["img"], dtype=name)(sample(img))
    assert out["img"].dtype == dtype
    np.testing.assert_array_equal(out["img"].float().numpy(), img.astype(np.float32))


def test_to_tensor_type_unknown_dtype_lists_the_known_ones():
    with pytest.raises(BidlError, match=r"unknown dtype 'floot32'; use one of 'float32'"):
        ToTensorType(keys=["img"], dtype="floot32")


def test_to_tensor_type_missing_key_names_it_and_the_present_keys():
    with pytest.raises(BidlError, match=r"no key 'label'; it has \['gt_label', 'img'\]"):
        ToTensorType(keys=["label"])(sample())


def test_to_tensor_type_repr_shows_its_arguments():
    assert repr(ToTensorType(keys=["img"], dtype="float16")) == (
        "ToTensorType(keys=['img'], dtype='float16')"
    )


def test_to_tensor_makes_int_labels_int64_scalars():
    out = ToTensor(keys=["gt_label"])(sample())
    assert out["gt_label"].dtype == torch.int64
    assert out["gt_label"].shape == ()
    assert out["gt_label"].item() == 4


def test_to_tensor_keeps_the_array_dtype():
    img = clip().astype(np.uint8)
    out = ToTensor(keys=["img"])(sample(img))
    assert out["img"].dtype == torch.uint8
    np.testing.assert_array_equal(out["img"].numpy(), img)


def test_to_tensor_unconvertible_value_names_the_key():
    with pytest.raises(BidlError, match=r"ToTensor: key 'name': to_tensor: cannot convert str"):
        ToTensor(keys=["name"])({"name": "seven"})


def test_to_tensor_repr_shows_its_keys():
    assert repr(ToTensor(keys=["gt_label"])) == "ToTensor(keys=['gt_label'])"


def test_collect_keeps_only_the_listed_keys():
    out = Collect(keys=["img", "gt_label"])({**sample(), "flip": True, "crop_bbox": (0, 0, 1, 1)})
    assert sorted(out) == ["gt_label", "img"]


def test_collect_meta_keys_go_into_img_metas():
    out = Collect(keys=["img"], meta_keys=["flip"])({**sample(), "flip": True})
    assert out["img_metas"] == {"flip": True}


def test_collect_missing_key_is_an_error():
    with pytest.raises(BidlError, match=r"Collect: the sample has no key 'label'"):
        Collect(keys=["img", "label"])(sample())


def test_collect_needs_a_list_of_key_names():
    with pytest.raises(BidlError, match=r"keys must be a non-empty list of strings, got \[\]"):
        Collect(keys=[])


def test_collect_repr_shows_its_keys():
    assert repr(Collect(keys=["img", "gt_label"])) == "Collect(keys=['img', 'gt_label'])"


# ----------------------------------------------------------------------------- together


def test_steps_are_registered_under_bidl_names():
    for name in ["RandomCropVideo", "RandomFlipVideo", "ToTensorType", "ToTensor", "Collect"]:
        assert name in PIPELINES


def test_config_pipeline_gives_float_clip_and_int64_label():
    pipeline = Compose(
        [
            dict(type="RandomCropVideo", size=4, padding=1),
            dict(type="RandomFlipVideo", flip_prob=0.5),
            dict(type="ToTensorType", keys=["img"], dtype="float32"),
            dict(type="ToTensor", keys=["gt_label"]),
            dict(type="Collect", keys=["img", "gt_label"]),
        ]
    )
    out = pipeline(sample(clip().astype(np.uint8)))
    assert sorted(out) == ["gt_label", "img"]
    assert out["img"].shape == (3, 2, 4, 4)
    assert out["img"].dtype == torch.float32
    assert out["gt_label"].dtype == torch.int64
