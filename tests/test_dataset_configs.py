"""A config per data family builds its dataset from tiny files and trains two epochs;
a user's own dataset file loads through the config's custom_imports."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from format_writers import write_idx
from test_dvs_datasets import make_gesture_raw
from test_frame_text_datasets import make_jester

from bidl.config import load_config
from bidl.datasets import build_dataset
from bidl.engine import train_model
from bidl.registry import BidlError

RUNTIME = """
optimizer = dict(type="SGD", lr=0.05, momentum=0.9)
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy="CosineAnnealing", min_lr=0, by_epoch=False)
runner = dict(type="EpochBasedRunner", max_epochs=2)
evaluation = dict(interval=1, metric="accuracy", metric_options=dict(topk=(1,)))
checkpoint_config = dict(interval=1)
log_config = dict(interval=1)
log_level = "WARNING"
load_from = None
resume_from = None
"""


def clif(timestep, channels, size, nclass):
    return (
        f"model = dict(type='ImageClassifier', backbone=dict(type='SeqClif3Fc3DmItout', "
        f"timestep={timestep}, c0={channels}, h0={size}, w0={size}, nclass={nclass}), neck=None, "
        f"head=dict(type='ClsHead', loss=dict(type='CrossEntropyLoss'), topk=(1,), cal_acc=True))\n"
    )


def data(dataset: str, train_steps: str = "", dtype: str = "float32", **keywords) -> str:
    extra = ", ".join(f"{k}={v!r}" for k, v in keywords.items())
    tail = f"[dict(type='ToTensorType', keys=['img'], dtype='{dtype}'), dict(type='ToTensor', keys=['gt_label']), dict(type='Collect', keys=['img', 'gt_label'])]"
    return (
        f"pipeline = [{train_steps}] + {tail}\n"
        f"data = dict(samples_per_gpu=4, workers_per_gpu=0,\n"
        f"    train=dict(type={dataset!r}, pipeline=pipeline, {extra}),\n"
        f"    val=dict(type={dataset!r}, pipeline=pipeline, test_mode=True, {extra}))\n"
    )


def dvs(root):
    make_gesture_raw(root)
    return clif(4, 2, 16, 11) + data(
        "DvsGesture",
        "dict(type='RandomCropVideo', size=16, padding=2)",
        data_prefix=str(root),
        timesteps=4,
        size=16,
    )


def mnist(root):
    images = np.random.default_rng(0).integers(0, 256, (8, 28, 28), dtype=np.uint8)
    for prefix in ("train", "t10k"):
        write_idx(root / f"{prefix}-images-idx3-ubyte", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", np.arange(8, dtype=np.uint8) % 10)
    return clif(4, 1, 16, 10) + data(
        "MNIST",
        "dict(type='ResizeVideo', size=16)",
        data_prefix=str(root),
        encoder=dict(type="Rate", timesteps=4),
    )


def jester(root):
    make_jester(root)
    return clif(3, 3, 16, 3) + data(
        "Jester20bn",
        "dict(type='LoadFramesInFolder', n_frame=3), dict(type='CenterCropVideo', crop_size=16), dict(type='NormalizeVideo', mean=[0, 0, 0], std=[255, 255, 255])",
        data_prefix=str(root),
        ann_file="jester-v1-train.csv",
    )


def luna(root):
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label in ("0", "1"):
            (root / split / label).mkdir(parents=True)
            for i in range(2):
                np.save(
                    root / split / label / f"{i}.npy",
                    rng.normal(-500, 300, (6, 20, 20)).astype(np.float32),
                )
    return clif(4, 1, 16, 2) + data("Luna16Cls", data_prefix=str(root), timesteps=4, size=16)


def imdb(root):
    for split in ("train", "test"):
        for label in ("pos", "neg"):
            (root / "aclImdb" / split / label).mkdir(parents=True)
            for i in range(3):
                (root / "aclImdb" / split / label / f"{i}_1.txt").write_text(f"{label} movie {i}")
    model = (
        "model = dict(type='ImageClassifier', backbone=dict(type='FastTextItout', timestep=10, "
        "vocab_size=50, embedding_dim=8, hidden_dim=16, nclass=2), neck=None, head=dict("
        "type='ClsHead', loss=dict(type='CrossEntropyLoss'), topk=(1,), cal_acc=True))\n"
    )
    return model + data("imdb", dtype="int64", data_prefix=str(root), timesteps=10, vocab_size=50)


@pytest.mark.parametrize("family", [dvs, mnist, jester, luna, imdb], ids=lambda f: f.__name__)
def test_family_config_trains_two_epochs(tmp_path, family):
    root = tmp_path / "data"
    root.mkdir()
    config = tmp_path / f"tiny-{family.__name__}.py"
    config.write_text(family(root) + RUNTIME)
    metrics = train_model(str(config), work_dir=str(tmp_path / "work"), device="cpu")
    assert "accuracy_top-1" in metrics
    assert (tmp_path / "work" / "epoch_2.pth").is_file()


MY_DATASET = """
import numpy as np
from bidl.datasets import BaseDataset
from bidl.registry import DATASETS

@DATASETS.register_module(force=True)
class MyOwnDataset(BaseDataset):
    CLASSES = ["a", "b"]
    def load_annotations(self):
        return [{"img": np.full((2, 1, 3, 3), i, np.uint8), "gt_label": i % 2} for i in range(5)]
"""


def test_custom_imports_loads_a_dataset_file_beside_the_config(tmp_path):
    (tmp_path / "my_dataset.py").write_text(textwrap.dedent(MY_DATASET))
    config = tmp_path / "mine.py"
    config.write_text(
        "custom_imports = dict(imports=['my_dataset'], allow_failed_imports=False)\n"
        "model = dict(type='ImageClassifier')\n"
        "data = dict(train=dict(type='MyOwnDataset', data_prefix='unused'))\n"
    )
    cfg = load_config(str(config))
    dataset = build_dataset(cfg.data.train)
    assert len(dataset) == 5 and dataset[3]["img"][0, 0, 0, 0] == 3


def test_custom_imports_accepts_a_relative_py_path(tmp_path):
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "own.py").write_text(textwrap.dedent(MY_DATASET))
    config = tmp_path / "mine.py"
    config.write_text(
        "custom_imports = dict(imports=['plugins/own.py'])\nmodel = dict()\n"
        "data = dict(train=dict(type='MyOwnDataset', data_prefix='unused'))\n"
    )
    assert len(build_dataset(load_config(str(config)).data.train)) == 5


def test_custom_imports_of_a_missing_module_says_where_it_looked(tmp_path):
    config = tmp_path / "mine.py"
    config.write_text(
        "custom_imports = dict(imports=['not_there'])\nmodel = dict()\ndata = dict()\n"
    )
    with pytest.raises(
        BidlError, match=r"custom_imports cannot find 'not_there'.*relative to the config's folder"
    ):
        load_config(str(config))
