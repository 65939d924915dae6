"""Clip transforms keep documented shapes and dtypes and make one random choice per clip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bidl.datasets.pipelines import Compose
from bidl.registry import BidlError

RANDOM_STEPS = [
    dict(type="RandomCropVideoDict", size=8, padding=2),
    dict(type="RandomFlipVideoDict", flip_prob=0.5),
    dict(type="RandomResizedCropVideo", size=8, scale=(0.3, 1.0)),
    dict(
        type="CropPadByRatioVideo",
        allowed_ratio=[1, 4 / 3],
        min_padd=0.0,
        max_padd=0.2,
        pad_mode=["constant", "edge"],
    ),
    dict(type="CutOutVideo", area=0.2, prob=0.5),
    dict(type="BrightnessVideo", delta=20, prob=0.5),
    dict(type="ContrastVideo", contrast_range=(0.5, 1.5), prob=0.5),
    dict(type="ColorJitterVideo"),
    dict(type="Rotate", angle=30),
]


@settings(max_examples=30, deadline=None)
@given(step=st.sampled_from(RANDOM_STEPS), seed=st.integers(0, 2**31 - 1), frames=st.integers(2, 5))
def test_random_steps_change_every_frame_alike(step, seed, frames):
    frame = np.random.default_rng(seed).integers(0, 256, (3, 12, 10), dtype=np.uint8)
    clip = np.repeat(frame[None], frames, axis=0)
    np.random.seed(seed)
    out = np.asarray(Compose([step])({"img": clip})["img"])
    assert out.dtype == np.uint8 and out.ndim == 4 and out.shape[:2] == (frames, 3)
    for t in range(1, frames):
        np.testing.assert_array_equal(out[t], out[0])


@pytest.mark.parametrize(
    "step, shape, dtype",
    [
        (dict(type="ResizeVideo", size=(6, -1)), (4, 3, 6, 9), np.uint8),
        (dict(type="ResizeDVS", size=5), (4, 3, 5, 5), np.uint8),
        (dict(type="CenterCropVideo", crop_size=8), (4, 3, 8, 8), np.uint8),
        (dict(type="NormalizeVideo", mean=[1, 2, 3], std=[2, 2, 2]), (4, 3, 10, 15), np.float32),
        (dict(type="RandomNoise", std=0.1), (4, 3, 10, 15), np.float32),
    ],
)
def test_transform_output_shape_and_dtype(step, shape, dtype):
    np.random.seed(0)
    out = Compose([step])({"img": np.ones((4, 3, 10, 15), np.uint8)})["img"]
    assert out.shape == shape and out.dtype == dtype


def test_normalize_video_subtracts_mean_and_divides_std_per_channel():
    img = np.stack([np.full((2, 2), v, np.float32) for v in (1, 4, 9)])[None]
    out = Compose([dict(type="NormalizeVideo", mean=[1, 2, 3], std=[1, 2, 3])])({"img": img})["img"]
    assert out[0, :, 0, 0].tolist() == [0.0, 1.0, 2.0]


def test_to_one_hot_encodes_token_ids():
    out = Compose([dict(type="ToOneHot", keys=["img"], param=4)])({"img": np.array([0, 3, 1])})[
        "img"
    ]
    assert torch.equal(out, torch.eye(4)[[0, 3, 1]])


def test_to_one_hot_refuses_ids_outside_the_classes():
    with pytest.raises(BidlError, match=r"ToOneHot: 'img' holds ids in \[0, 7\], outside 0\.\.3"):
        Compose([dict(type="ToOneHot", keys=["img"], param=4)])({"img": np.array([0, 7])})


def test_image_to_tensor_moves_channels_first_and_transpose_permutes():
    steps = [
        dict(type="ImageToTensor", keys=["img"]),
        dict(type="Transpose", keys=["img"], order=[1, 2, 0]),
    ]
    out = Compose(steps[:1])({"img": np.zeros((5, 6, 3))})["img"]
    assert tuple(out.shape) == (3, 5, 6)
    assert tuple(Compose(steps)({"img": np.zeros((5, 6, 3))})["img"].shape) == (5, 6, 3)
