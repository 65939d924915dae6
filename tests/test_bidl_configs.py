"""BIDL's own config files load through ``bidl.config.load_config`` unchanged: the keys BIDL's
tools read mean the same in bidl, keys for Lynxi's chips are accepted with a note, and keys
neither knows stay errors that name their path. The snippets below use BIDL's keys and
shapes (its 33 classification configs are checked against BIDL's files outside CI)."""

from __future__ import annotations

import json
import logging
import math
import textwrap

import numpy as np
import pytest
import torch

from bidl.config import load_config
from bidl.engine.apis import train_model
from bidl.models import build_classifier
from bidl.optim import LrSchedule
from bidl.registry import BidlError

HEAD = """
    neck=None,
    head=dict(
        type='ClsHead',
        loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, loss_weight=1.0),
        topk=(1, 5),
        cal_acc=True
    ))
"""
# BIDL's DVS configs: the set named once (dataset_type), its parent folder in data_root,
# splits without type, pipeline keys indexing (frames, label) tuples
DVS_DATA = """
dataset_type = 'DvsMnist'
train_pipeline = [
    dict(type='RandomCropVideo', size=40, padding=4),
    dict(type='ToTensorType', keys=[0], dtype='float32'),
]
test_pipeline = [dict(type='ToTensorType', keys=[0], dtype='float32')]
data = dict(
    samples_per_gpu=16,
    workers_per_gpu=0,
    data_root='./data',
    train=dict(pipeline=train_pipeline),
    val=dict(pipeline=test_pipeline),
    test=dict(pipeline=test_pipeline))
"""
SCHEDULE = """
optimizer = dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.0001)
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy='CosineAnnealingLR', T_max=40, eta_min=0)
warmup = dict(warmup_ratio=1e-2, warmup_iters=500)
runner = dict(type='EpochBasedRunner', max_epochs=100)
checkpoint_config = dict(interval=1)
log_config = dict(interval=50, hooks=[dict(type='TextLoggerHook')])
dist_params = dict(backend='nccl')
log_level = 'INFO'
load_from = None
resume_from = None
workflow = [('train', 1)]
fp16 = dict(loss_scale=512.0)
lynxi_devices = [[0], [1]]
"""
MNIST_MODEL = (
    """
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='SeqClif3Fc3DmItout',
        timestep=20, input_channels=2, h=40, w=40, nclass=10, cmode='analog', amode='mean',
        noise=0, soma_params='all_share', neuron='lif', neuron_config=None
    ),"""
    + HEAD
)


def write(tmp_path, text: str, name: str = "bidl-style-b16x1-dvsmnist"):
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def dvs_config(tmp_path):
    return write(tmp_path, MNIST_MODEL + DVS_DATA + SCHEDULE)


def test_bidls_schedule_keys_mean_what_bidls_tools_do(dvs_config):
    cfg = load_config(dvs_config)
    assert dict(cfg.lr_config) == {
        "policy": "CosineAnnealing",
        "T_max": 40,
        "min_lr": 0,
        "warmup": "linear",
        "warmup_iters": 500,
        "warmup_ratio": 0.01,
    }
    assert "warmup" not in cfg
    assert dict(cfg.fp16) == {"loss_scale": 512.0, "dtype": "float16"}


def test_cosine_with_t_max_follows_torchs_scheduler_past_its_half_period():
    schedule = LrSchedule(dict(policy="CosineAnnealing", T_max=40, min_lr=0.001), 100, 10)
    params = [torch.nn.Parameter(torch.zeros(1))]
    optimizer = torch.optim.SGD(params, lr=0.1)
    torch_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=40, eta_min=0.001)
    for epoch in range(100):  # BIDL's tools step torch's scheduler once per epoch
        ours = schedule.lr(0.1, epoch, epoch * 10 + 600)  # past the warmup
        assert ours == pytest.approx(optimizer.param_groups[0]["lr"], abs=1e-9)
        optimizer.step()
        torch_schedule.step()
    assert schedule.lr(0.1, 80, 10_000) == pytest.approx(0.1)  # back up after 2 * T_max


def test_bidls_warmup_is_its_linear_ramp_from_ratio_times_lr():
    schedule = LrSchedule(
        dict(policy="MultiStepLR", milestones=[10], warmup="linear", warmup_iters=500,
             warmup_ratio=0.01), 20, 100,
    )  # fmt: skip
    for iteration in (0, 1, 250, 499, 500, 600):
        # BIDL's warm_up(): lr * (1 - (1 - i / warmup_iters) * (1 - ratio)) up to warmup_iters
        ramp = 1 - (1 - min(iteration, 500) / 500) * (1 - 0.01)
        assert schedule.lr(0.1, iteration // 100, iteration) == pytest.approx(0.1 * ramp)


def test_data_root_and_dataset_type_give_each_split_its_dataset(dvs_config):
    data = load_config(dvs_config).data
    assert "data_root" not in data
    train, test = dict(data.train), dict(data.test)
    assert train["type"] == test["type"] == "DvsMnist"
    assert train["data_prefix"] == "./data/DvsMnist"  # as BIDL's tools read data_root
    assert (train["timesteps"], train["frame_by"]) == (20, "count")
    assert test["test_mode"] is True and "test_mode" not in train
    assert [step["keys"] for step in train["pipeline"] if "keys" in step] == [["img"]]


def test_each_rewrite_is_logged_once(dvs_config, caplog):
    with caplog.at_level(logging.INFO, logger="bidl"):
        load_config(dvs_config)
    notes = [r.getMessage() for r in caplog.records if r.getMessage().startswith("config: ")]
    assert len(notes) == len(set(notes)) == 5
    assert any("lr_config.policy='CosineAnnealingLR'" in note for note in notes)
    assert any("data.train/val/test have no type: 'DvsMnist'" in note for note in notes)


def test_unknown_keys_stay_errors_naming_their_path(dvs_config):
    with pytest.raises(BidlError, match=r"lr_config.T_maxx: unknown key"):
        load_config(dvs_config, {"lr_config.T_maxx": 3})
    with pytest.raises(BidlError, match=r"data.data_rooot: unknown key in 'data'"):
        load_config(dvs_config, {"data.data_rooot": "x"})
    with pytest.raises(BidlError, match=r"fp16.loss_scale: expected a positive number or "):
        load_config(dvs_config, {"fp16.loss_scale": -1})


SEGMENTS = (
    """
models_compile_inputshape = [[1, 2, 128, 128], [1, 512, 16, 16]]
model_0 = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNetLifItout_MP', timestep=10, depth=50, nclass=10, down_t=[1, 'avg'],
        input_channels=2, noise=1e-5, soma_params='all_share', cmode='spike', split=[0, 6]
    ),"""
    + HEAD.replace("))", "))", 1)
    + """
model_1 = dict(
    type='ImageClassifier',
    backbone=dict(
        type='ResNetLifItout_MP', timestep=10, depth=50, nclass=10, down_t=[1, 'avg'],
        input_channels=2, noise=1e-5, soma_params='all_share', cmode='spike', split=[6, 16]
    ),"""
    + HEAD
)


def test_segment_models_without_model_give_the_whole_network(tmp_path):
    cfg = load_config(write(tmp_path, SEGMENTS + DVS_DATA.replace("DvsMnist", "Cifar10Dvs")))
    backbone = dict(cfg.model.backbone)
    assert "split" not in backbone and cfg.model_0.backbone.split == [0, 6]
    assert (backbone["h"], backbone["w"]) == (128, 128)  # models_compile_inputshape[0]
    assert cfg.data.train.data_prefix == "./data/DVSCIFAR10"
    assert cfg.data.train.raw_prefix == "./data/DVSCIFAR10/extract"  # SpikingJelly's layout
    assert cfg.data.train.timesteps == 10


TYPELESS = """
model = dict(
    backbone=dict(
        type='SeqClif7Fc1DgIt',
        timestep=16, input_channels=2, h=128, w=128, nclass=11, cmode='spike', amode='mean',
        noise=0, it_batch=16
    ),
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, 5), cal_acc=True))
"""


def test_a_model_and_head_without_type_are_bidls_classifier_and_head(tmp_path):
    cfg = load_config(write(tmp_path, TYPELESS + DVS_DATA.replace("DvsMnist", "DvsGesture")))
    assert (cfg.model.type, cfg.model.head.type) == ("ImageClassifier", "ClsHead")
    model = build_classifier(cfg.model)
    assert model.backbone.readout == "time_mean" and model.backbone.use_inner_loop
    assert cfg.data.train.timesteps == 16  # BIDL reads 16 gesture frames


TEXT = """
model = dict(
    type='ImageClassifier',
    backbone=dict(
        type='FastTextItout', timestep=20, vocab_size=30, embedding_dim=4, hidden_dim=8,
        cmode='analog', amode='mean', noise=1e-3, soma_params='all_share', neuron='lif',
        neuron_config=None
    ),
    neck=None,
    head=dict(type='ClsHead', loss=dict(type='CrossEntropyLoss', use_sigmoid=True,
              loss_weight=1.0), topk=(1,), cal_acc=True))
dataset_type = 'imdb'
train_pipeline = [dict(type='ToTensorTypeDict', keys=['img'], dtype='int32'),
                  dict(type='ToTensor', keys=['gt_label'])]
val_pipeline = [dict(type='ToTensorTypeDict', keys=['img'], dtype='int32')]
test_pipeline = [dict(type='ToTensorTypeDict', keys=['img'], dtype='int64'),
                 dict(type='ToOneHot', keys=['img'], param=1001)]
data = dict(
    samples_per_gpu=16,
    workers_per_gpu=1,
    train=dict(type=dataset_type, data_prefix='./data/imdb/train.npy',
               ann_file='./data/imdb/train_label.npy', pipeline=train_pipeline),
    val=dict(type=dataset_type, data_prefix='./data/imdb/test.npy',
             ann_file='./data/imdb/test_label.npy', pipeline=val_pipeline, test_mode=True),
    test=dict(type=dataset_type, data_prefix='./data/imdb/test.npy',
              ann_file='./data/imdb/test_label.npy', pipeline=test_pipeline, test_mode=True))
"""


def test_bidls_binary_text_model_trains_with_a_sigmoid_loss(tmp_path):
    cfg = load_config(write(tmp_path, TEXT, "fasttext-b16x1-imdb"))
    assert [step["type"] for step in cfg.data.test.pipeline] == ["ToTensorTypeDict"]
    model = build_classifier(cfg.model).eval()  # no dropout, no noise: one function
    tokens = torch.randint(30, (4, 20))
    labels = torch.tensor([0, 1, 1, 0])
    scores = model.backbone(tokens)
    assert scores.shape == (4,)  # BIDL's FastText: one logit per text, the last step's
    losses = model(tokens, labels)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(scores, labels.float())
    assert losses["loss"].item() == pytest.approx(expected.item(), rel=1e-5)
    accuracy = ((scores > 0).long() == labels).float().mean().item() * 100
    assert losses["accuracy"]["top-1"].item() == pytest.approx(accuracy)
    probs = model(tokens, return_loss=False)
    assert torch.allclose(probs[:, 1], torch.sigmoid(scores), atol=1e-6)


TEMPORAL = (
    """
model = dict(
    type='ImageClassifier',
    backbone=dict(type='SeqClif3Fc3DmItout', timestep=8, input_channels=1, h=28, w=28,
                  nclass=10, cmode='spike', amode='mean', noise=0, soma_params='all_share'),
"""
    + HEAD
    + """
dataset_type = 'MNIST'
train_pipeline = [
    dict(type='Resize', size=(28,28)),
    dict(type="Temporal", time_steps=8, tau=7, linear=False),
    dict(type='ToTensor', keys=['gt_label']),
]
data = dict(
    samples_per_gpu=128,
    workers_per_gpu=2,
    train=dict(type=dataset_type, data_prefix='./data/MNIST/raw/', pipeline=train_pipeline))
"""
)


def test_the_temporal_encoders_tau_and_linear_are_bidls_latency_code(tmp_path):
    from bidl.datasets.pipelines.encoders import Temporal

    cfg = load_config(write(tmp_path, TEMPORAL, "clif3fc3mntime_itout-b128x1-mnist"))
    step = dict(cfg.data.train.pipeline[1])
    encoder = Temporal(**{k: v for k, v in step.items() if k != "type"})
    values = np.array([[[1.0, 0.5, 0.02, 0.0]]], dtype=np.float32)
    spikes = encoder({"img": values})["img"]
    # spike at tau * log(v / (v - 0.01)) (threshold 0.01), rounded; later than T - 1: none
    times = [round(7 * math.log(v / (v - 0.01))) if v > 0.01 else 99 for v in (1, 0.5, 0.02)]
    assert times == [0, 0, 5]
    assert spikes.shape == (8, 1, 1, 4)
    assert spikes[:, 0, 0, :3].argmax(axis=0).tolist() == times
    assert spikes.sum() == 3  # the value 0 would spike at step 102: dropped
    linear = Temporal(time_steps=8, tau=7, linear=True)({"img": values})["img"]
    assert linear[:, 0, 0].argmax(axis=0).tolist() == [0, 4, 7, 7]  # tau * (1 - v), capped


TINY = """
custom_imports = dict(imports=["tiny_dataset"], allow_failed_imports=False)
model = dict(
    backbone=dict(type='SeqClif3Fc3DmIt', timestep=4, input_channels=2, h=16, w=16, nclass=3,
                  cmode='spike', amode='mean', noise=0, it_batch=8),
    head=dict(loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, 2), cal_acc=True))
pipeline = [dict(type='ToTensorType', keys=['img'], dtype='float32'),
            dict(type='ToTensor', keys=['gt_label'])]
data = dict(
    samples_per_gpu=8,
    workers_per_gpu=0,
    data_root='./data',
    train=dict(type='TinyBlinks', data_prefix='unused', pipeline=pipeline),
    val=dict(type='TinyBlinks', data_prefix='unused', pipeline=pipeline, test_mode=True),
    test=dict(type='TinyBlinks', data_prefix='unused', pipeline=pipeline, test_mode=True))
optimizer = dict(type='Adam', lr=0.001, weight_decay=0.0001)
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy='CosineAnnealingLR', T_max=1, eta_min=0)
warmup = dict(warmup_ratio=1e-1, warmup_iters=3)
runner = dict(type='EpochBasedRunner', max_epochs=2)
checkpoint_config = dict(interval=1)
log_config = dict(interval=50, hooks=[dict(type='TextLoggerHook')])
log_level = 'INFO'
load_from = None
resume_from = None
workflow = [('train', 1)]
fp16 = None
"""


def test_a_config_in_bidls_form_trains(tmp_path):
    config = write(tmp_path, TINY, "tiny_it-b8x1-blinks")
    metrics = train_model(config, work_dir=str(tmp_path / "work"), device="cpu")
    assert 0 <= metrics["accuracy_top-1"] <= 100
    records = [json.loads(line) for line in (tmp_path / "work" / "log.json").open()]
    # epoch 1 past the 3 warmup iterations at the full lr; T_max=1: epoch 2 at eta_min
    assert [r["lr"] for r in records if r["mode"] == "train"] == [0.001, 0.0]
