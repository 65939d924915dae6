"""Image steps run batch-wise on the device give the tensors the CPU steps give for the
same random choices; loaders make batches that depend only on (seed, epoch)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import ConcatDataset, Dataset, default_collate

from bidl.datasets.pipelines import Compose
from bidl.engine.dataloader import SampleError, build_dataloader
from bidl.engine.device_batch import (
    PARAMS_KEY,
    DeferredPipeline,
    DeviceAugmentation,
    install_device_augmentation,
    plan_device_steps,
    uninstall_device_augmentation,
)
from bidl.registry import BidlError

LABELS = [dict(type="ToTensor", keys=["gt_label"]), dict(type="Collect", keys=["img", "gt_label"])]
FLOAT = dict(type="ToTensorType", keys=["img"], dtype="float32")

PIPELINES = {
    "crop+flip (CIFAR10-DVS)": [
        dict(type="RandomCropVideo", size=12, padding=3),
        dict(type="RandomFlipVideo", flip_prob=0.5, direction="horizontal"),
        FLOAT,
    ],
    "crop without padding, vertical flip": [
        dict(type="RandomCropVideo", size=(7, 9)),
        dict(type="RandomFlipVideo", flip_prob=0.5, direction="vertical"),
        FLOAT,
    ],
    "centre crops inside and across the frame": [
        dict(type="CenterCropVideo", crop_size=(9, 7)),
        dict(type="CenterCropVideo", crop_size=(13, 15)),
        FLOAT,
    ],
    "resizes (bilinear, area) on uint8": [
        dict(type="ResizeVideo", size=(15, -1)),
        dict(type="ResizeDVS", size=6),
        FLOAT,
    ],
    "float first, then normalise": [
        FLOAT,
        dict(type="RandomCropVideo", size=10, padding=1),
        dict(type="NormalizeVideo", mean=[0.5, 1.0], std=[2.0, 0.25], to_rgb=True),
    ],
    "no noise drawn": [FLOAT, dict(type="RandomNoise", std=0.5, prob=0.0)],
}


def samples(count=10, shape=(3, 2, 11, 12), seed=0):
    rng = np.random.default_rng(seed)
    return [
        {"img": rng.integers(0, 9, shape, dtype=np.uint8), "gt_label": i % 3} for i in range(count)
    ]


def run_cpu(steps, items, seed):
    compose = Compose([*steps, *LABELS])
    out = []
    for k, item in enumerate(items):
        np.random.seed([seed, k])
        out.append(compose(dict(item)))
    return default_collate(out)


def run_deferred(steps, items, seed):
    compose = Compose([*steps, *LABELS])
    plan = plan_device_steps(compose.transforms)
    assert plan is not None
    deferred = DeferredPipeline(compose, plan)
    out = []
    for k, item in enumerate(items):
        np.random.seed([seed, k])
        out.append(deferred(dict(item)))
    batch = default_collate(out)
    return DeviceAugmentation(plan.values())(batch, torch.device("cpu")), batch


@pytest.mark.parametrize("name", list(PIPELINES))
def test_device_steps_give_the_cpu_tensors(name):
    steps = PIPELINES[name]
    for seed in (0, 1, 2):
        expected = run_cpu(steps, samples(), seed)
        got, _ = run_deferred(steps, samples(), seed)
        assert got["img"].dtype == expected["img"].dtype == torch.float32
        assert got["img"].shape == expected["img"].shape
        assert torch.equal(got["img"], expected["img"]), name
        assert torch.equal(got["gt_label"], expected["gt_label"])
        assert PARAMS_KEY not in got


def test_batches_leave_the_workers_as_uint8_with_the_choices():
    _, batch = run_deferred(PIPELINES["crop+flip (CIFAR10-DVS)"], samples(), 0)
    assert batch["img"].dtype == torch.uint8 and batch["img"].shape == (10, 3, 2, 11, 12)
    assert batch[PARAMS_KEY].shape == (10, 3)  # top, left, flip
    assert set(batch[PARAMS_KEY][:, 2].tolist()) == {0, 1}


def test_noise_is_drawn_per_sample_from_its_seed():
    steps = [FLOAT, dict(type="RandomNoise", std=0.5, prob=0.5)]
    a, batch = run_deferred(steps, samples(), 0)
    b, _ = run_deferred(steps, samples(), 0)
    assert torch.equal(a["img"], b["img"])
    clean = run_cpu([FLOAT], samples(), 0)["img"]
    noisy = batch[PARAMS_KEY][:, 0].bool()
    assert 0 < int(noisy.sum()) < 10
    assert torch.equal(a["img"][~noisy], clean[~noisy])
    diff = a["img"][noisy] - clean[noisy]
    assert 0.4 < float(diff.std()) < 0.6


def test_only_a_tail_with_a_float_conversion_moves():
    crop = dict(type="RandomCropVideo", size=8)
    rotate = dict(type="Rotate", angle=5.0)
    tail = plan_device_steps(Compose([crop, rotate, crop, FLOAT, *LABELS]).transforms)
    assert sorted(tail) == [2, 3]  # the crop before the CPU-only rotation stays on the CPU
    assert plan_device_steps(Compose([crop, *LABELS]).transforms) is None
    ids = dict(type="ToTensorType", keys=["img"], dtype="int64")
    assert plan_device_steps(Compose([ids, *LABELS]).transforms) is None


def test_a_too_large_crop_raises_the_steps_own_error():
    steps = [dict(type="RandomCropVideo", size=20, padding=1), FLOAT]
    with pytest.raises(BidlError, match="RandomCropVideo: crop size"):
        run_deferred(steps, samples(1), 0)


class Frames(Dataset):
    def __init__(self, count=12):
        self.items = samples(count, shape=(2, 2, 10, 10))
        self.pipeline = Compose([*PIPELINES["crop+flip (CIFAR10-DVS)"][:2], FLOAT, *LABELS])
        self.pipeline.transforms[0].size = (8, 8)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, index):
        return self.pipeline(dict(self.items[index]))


def epoch_batches(dataset, workers, epoch, augment=None, loader=None):
    loader = loader or build_dataloader(
        dataset, 4, workers, shuffle=True, seed=7, persistent_workers=True
    )
    loader.set_epoch(epoch)
    out = []
    for batch in loader:
        if augment is not None:
            batch = augment(batch, torch.device("cpu"))
        out.append(batch)
    return out, loader


def same_batches(a, b):
    return all(
        torch.equal(x["img"], y["img"]) and torch.equal(x["gt_label"], y["gt_label"])
        for x, y in zip(a, b, strict=True)
    )


def test_loader_batches_depend_on_seed_and_epoch_only():
    dataset = Frames()
    plain0, _ = epoch_batches(dataset, 0, 0)
    plain1, _ = epoch_batches(dataset, 0, 1)
    assert not same_batches(plain0, plain1)  # another order and other crops
    augment = install_device_augmentation(dataset)
    assert augment is not None and isinstance(dataset.pipeline, DeferredPipeline)
    moved0, loader = epoch_batches(dataset, 2, 0, augment)
    moved1, _ = epoch_batches(dataset, 2, 1, augment, loader)  # the same persistent workers
    moved0_again, _ = epoch_batches(dataset, 2, 0, augment, loader)
    assert same_batches(plain0, moved0) and same_batches(plain1, moved1)
    assert same_batches(moved0, moved0_again)
    uninstall_device_augmentation(dataset)
    assert isinstance(dataset.pipeline, Compose)


def test_concatenated_parts_are_deferred_alike():
    parts = ConcatDataset([Frames(4), Frames(5)])
    augment = install_device_augmentation(parts)
    assert augment is not None
    assert all(isinstance(p.pipeline, DeferredPipeline) for p in parts.datasets)
    other = Frames(3)
    other.pipeline.transforms[1].flip_prob = 0.25
    assert install_device_augmentation(ConcatDataset([Frames(4), other])) is None


def test_main_process_loading_keeps_the_global_generators():
    np.random.seed(5)
    expected = np.random.rand()
    np.random.seed(5)
    epoch_batches(Frames(), 0, 0)
    assert np.random.rand() == expected


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", [n for n in PIPELINES if "resize" not in n])
def test_device_steps_on_cuda_give_the_cpu_tensors(name):
    steps = PIPELINES[name]
    expected = run_cpu(steps, samples(), 3)
    _, batch = run_deferred(steps, samples(), 3)
    plan = plan_device_steps(Compose([*steps, *LABELS]).transforms)
    got = DeviceAugmentation(plan.values())(batch, torch.device("cuda"))
    assert got["img"].is_cuda
    assert torch.equal(got["img"].cpu(), expected["img"])


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_several_workers_pin_on_several_threads_in_order():
    dataset = Frames(24)
    plain, _ = epoch_batches(dataset, 0, 2)
    loader = build_dataloader(dataset, 4, 3, shuffle=True, seed=7, pin_memory=True, pin_threads=3)
    assert loader.pin_threads == 3
    loader.set_epoch(2)
    pinned = list(loader)
    assert all(batch["img"].is_pinned() for batch in pinned)
    assert same_batches(plain, pinned)


def test_batches_fetched_on_a_thread_come_in_order_and_errors_reach_the_consumer():
    dataset = Frames(24)
    plain, _ = epoch_batches(dataset, 0, 3)
    loader = build_dataloader(dataset, 4, 2, shuffle=True, seed=7, persistent_workers=True)
    loader.pin_threads, loader.pin_fn = 2, lambda batch: batch  # the threads, without CUDA
    loader.set_epoch(3)
    assert same_batches(plain, list(loader))
    for _ in loader:  # stopping early leaves the loader usable
        break
    assert same_batches(plain, list(loader))
    dataset.items[5]["img"] = "not an array"  # the persistent workers keep their copy
    broken = build_dataloader(dataset, 4, 2, shuffle=True, seed=7)
    broken.pin_threads, broken.pin_fn = 2, lambda batch: batch
    with pytest.raises(SampleError, match="loading Frames sample 5 failed"):
        list(broken)
