"""Every dataset and pipeline step of the datasets issue is registered under BIDL's name,
and `bidl list datasets` shows each dataset with its source format."""

from __future__ import annotations

from bidl.cli import main

DATASETS = [
    "DigitsDVS",
    "DVS128Gesture",
    "DvsGesture",
    "CIFAR10DVS",
    "Cifar10Dvs",
    "DvsMnist",
    "ESImagenet",
    "DvsDatasetFolder",
    "Jester20bn",
    "RgbGesture",
    "Luna16Cls",
    "Luna16Cls32",
    "imdb",
    "BabiQa",
    "MNIST",
]
STEPS = [
    "LoadFramesInFolder",
    "LoadNumpy",
    "LoadSpikesInHdf5",
    "RandomCropVideo",
    "RandomCropVideoDict",
    "RandomFlipVideo",
    "RandomFlipVideoDict",
    "RandomResizedCropVideo",
    "ResizeVideo",
    "ResizeDVS",
    "CenterCropVideo",
    "CropPadByRatioVideo",
    "NormalizeVideo",
    "CutOutVideo",
    "BrightnessVideo",
    "ContrastVideo",
    "ColorJitterVideo",
    "RandomNoise",
    "Resize",
    "RandomCrop",
    "RandomFlip",
    "CenterCrop",
    "Rotate",
    "DropEvent",
    "SpatialJitter",
    "TimeJitter",
    "ToTensor",
    "ToTensorType",
    "ToTensorTypeDict",
    "ImageToTensor",
    "Transpose",
    "ToNumpy",
    "ToOneHot",
    "Collect",
    "Rate",
    "Temporal",
    "Population",
]


def listed(what: str, capsys) -> dict[str, str]:
    assert main(["list", what]) == 0
    rows = [line.split(None, 1) for line in capsys.readouterr().out.splitlines() if line.strip()]
    return {row[0]: row[1] if len(row) > 1 else "" for row in rows}


def test_list_datasets_shows_each_issue_dataset_with_its_source_format(capsys):
    datasets = listed("datasets", capsys)
    assert [name for name in DATASETS if not datasets.get(name, "").strip()] == []
    assert "AEDAT 3.1" in datasets["DVS128Gesture"] and "40-bit" in datasets["DvsMnist"]
    assert "IDX" in datasets["MNIST"] and ".npy" in datasets["Luna16Cls"]


def test_list_pipelines_shows_every_step_named_in_the_issue(capsys):
    steps = listed("pipelines", capsys)
    assert [name for name in STEPS if name not in steps] == []
