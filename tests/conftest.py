"""Shared test fixtures: a tiny registered event dataset and configs that train in seconds."""

from __future__ import annotations

import textwrap

import pytest
import tiny_dataset  # noqa: F401  (registers TinyBlinks in this process too)

TINY_CONFIG = """
custom_imports = dict(imports=["tiny_dataset"], allow_failed_imports=False)
model = dict(
    type="ImageClassifier",
    backbone=dict(type="SeqClif3Fc3DmItout", timestep=4, c0=2, h0=16, w0=16, nclass=3),
    neck=None,
    head=dict(type="ClsHead", loss=dict(type="CrossEntropyLoss"), topk=(1, 2), cal_acc=True),
)
train_pipeline = [
    dict(type="RandomCropVideo", size=16, padding=2),
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
test_pipeline = [
    dict(type="ToTensorType", keys=["img"], dtype="float32"),
    dict(type="ToTensor", keys=["gt_label"]),
    dict(type="Collect", keys=["img", "gt_label"]),
]
data = dict(
    samples_per_gpu=8,
    workers_per_gpu={workers},
    train=dict(type="TinyBlinks", data_prefix="unused", pipeline=train_pipeline),
    val=dict(type="TinyBlinks", data_prefix="unused", pipeline=test_pipeline, test_mode=True),
    test=dict(type="TinyBlinks", data_prefix="unused", pipeline=test_pipeline, test_mode=True),
)
evaluation = dict(interval=1, metric="accuracy", metric_options=dict(topk=(1, 2)))
optimizer = dict(type="SGD", lr=0.05, momentum=0.9, weight_decay=1e-4)
optimizer_config = dict(grad_clip=dict(max_norm=5.0))
lr_config = dict(policy="CosineAnnealing", min_lr=0, by_epoch=False, warmup="linear",
                 warmup_iters=3, warmup_ratio=0.1)
runner = dict(type="EpochBasedRunner", max_epochs=3)
checkpoint_config = dict(interval=1)
log_config = dict(interval=2)
log_level = "INFO"
load_from = None
resume_from = None
seed = 0
"""


def write_tiny_config(folder, name="tiny-b8x0-blinks", workers=0):
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(TINY_CONFIG.format(workers=workers)))
    return path


@pytest.fixture
def tiny_config(tmp_path):
    return write_tiny_config(tmp_path)
