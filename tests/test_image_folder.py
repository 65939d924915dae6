"""ImageFolder: static images in class folders (ImageNet / CIFAR-10 layout), direct-encoded
over T steps."""

import numpy as np
import pytest
import torch
from PIL import Image

from bidl.datasets.base import DatasetNotFoundError
from bidl.engine import train_model
from bidl.registry import DATASETS, BidlError, build

PIPELINE = [
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]


def write_images(root, split, classes, per_class=2, suffix=".JPEG", size=(6, 5)):
    """Small images whose red value encodes (class, index); JPEG keeps flat colours."""
    for c, name in enumerate(classes):
        folder = root / split / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            colour = (40 * c + 10 * i, 100, 200)
            Image.new("RGB", (size[1], size[0]), colour).save(folder / f"{name}_{i}{suffix}")
    (root / split / classes[0] / "notes.txt").write_text("not an image")


def test_images_are_read_in_class_order_and_repeated_over_the_timesteps(tmp_path):
    write_images(tmp_path, "train", ["n02", "n01"])
    data = build(
        dict(type="ImageFolder", data_prefix=str(tmp_path), pipeline=PIPELINE, timesteps=3),
        DATASETS,
    )
    assert data.CLASSES == ["n01", "n02"] and len(data) == 4
    assert data.get_gt_labels().tolist() == [0, 0, 1, 1]
    sample = data[2]  # n02_0: class 0 of the writer, label 1 here
    assert sample["img"].shape == (3, 3, 6, 5) and sample["gt_label"].item() == 1
    assert torch.equal(sample["img"][0], sample["img"][2])
    red, green, blue = sample["img"][0, :, 0, 0].tolist()
    assert abs(red - 0) <= 3 and abs(green - 100) <= 3 and abs(blue - 200) <= 3


def test_test_mode_reads_val_or_else_test_with_the_training_classes(tmp_path):
    write_images(tmp_path, "train", ["cat", "dog"], suffix=".png")
    write_images(tmp_path, "test", ["dog"], per_class=1, suffix=".png")
    data = build(
        dict(type="ImageFolder", data_prefix=str(tmp_path), pipeline=PIPELINE, test_mode=True),
        DATASETS,
    )
    assert data.CLASSES == ["cat", "dog"] and data.get_gt_labels().tolist() == [1]
    assert data[0]["img"].shape == (4, 3, 6, 5)  # 4 timesteps by default


def test_size_resizes_at_decoding(tmp_path):
    write_images(tmp_path, "train", ["a"], per_class=1)
    data = build(
        dict(type="ImageFolder", data_prefix=str(tmp_path), pipeline=PIPELINE, size=4), DATASETS
    )
    assert data[0]["img"].shape == (4, 3, 4, 4)


def test_a_split_with_a_class_the_training_split_lacks_is_refused(tmp_path):
    write_images(tmp_path, "train", ["a"], per_class=1)
    write_images(tmp_path, "val", ["b"], per_class=1)
    with pytest.raises(BidlError, match="is a class the training split does not have"):
        build(dict(type="ImageFolder", data_prefix=str(tmp_path), test_mode=True), DATASETS)


def test_missing_folders_name_the_layout(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"split folder .*train' does not exist"):
        build(dict(type="ImageFolder", data_prefix=str(tmp_path)), DATASETS)
    (tmp_path / "train" / "a").mkdir(parents=True)
    with pytest.raises(DatasetNotFoundError, match="no images"):
        build(dict(type="ImageFolder", data_prefix=str(tmp_path)), DATASETS)


def test_a_pipeline_that_makes_several_frames_is_refused(tmp_path):
    write_images(tmp_path, "train", ["a"], per_class=1)
    data = build(dict(type="ImageFolder", data_prefix=str(tmp_path)), DATASETS)
    data.pipeline = lambda results: {**results, "img": np.zeros((2, 3, 4, 4), np.uint8)}
    with pytest.raises(BidlError, match="the pipeline must keep one frame"):
        data[0]


def test_the_cifar10_image_config_trains_on_image_files(tmp_path):
    write_images(tmp_path, "train", ["cat", "dog"], per_class=4, suffix=".png", size=(32, 32))
    write_images(tmp_path, "test", ["cat", "dog"], per_class=2, suffix=".png", size=(32, 32))
    options = {
        "data.samples_per_gpu": 4,
        "data.workers_per_gpu": 0,
        "runner.max_epochs": 1,
        "log_level": "WARNING",
        "model.backbone.nclass": 2,
        "model.backbone.embed_dim": 16,
        "model.backbone.depth": 1,
        "model.backbone.num_heads": 2,
        "model.head.topk": (1,),
        "evaluation.metric_options.topk": (1,),
        "mixup.num_classes": 2,
        "fp16": None,
    }
    for split in ("train", "val", "test"):
        options[f"data.{split}.data_prefix"] = str(tmp_path)
    metrics = train_model(
        "spikformer_4_384-b128x4-cifar10",
        work_dir=str(tmp_path / "work"),
        cfg_options=options,
        device="cpu",
    )
    assert 0 <= metrics["accuracy_top-1"] <= 100
