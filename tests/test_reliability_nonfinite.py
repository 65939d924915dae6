"""Non-finite numbers are refused where they enter (class 4): event timestamps, cached and
loaded frames, runtime inputs, weights at load and compile, and config values. Spiking
layers turn NaN into "no spike", so each of these used to give plausible results."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bidl.config import load_config
from bidl.datasets.cache import write_split
from bidl.datasets.events.frames import events_to_frames
from bidl.engine.checkpoint import CheckpointError, load_weights, save_checkpoint
from bidl.engine.dataloader import SampleError, build_dataloader
from bidl.registry import BidlError

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("bad", [NAN, INF, -INF])
def test_event_timestamps_must_be_finite(bad):
    x = y = np.array([1, 2, 3])
    p = np.array([0, 1, 1])
    with pytest.raises(BidlError, match=r"1 timestamp\(s\) are NaN or infinite; first at event 1"):
        events_to_frames(x, y, np.array([0.0, bad, 5.0]), p, (4, 4), 2)
    with pytest.raises(BidlError, match="t_start must be finite"):
        events_to_frames(x, y, np.array([0.0, 1.0, 5.0]), p, (4, 4), 2, t_start=bad)


def test_a_cache_refuses_nan_frames(tmp_path):
    frames = np.zeros((3, 2, 4, 4), np.float32)
    bad = frames.copy()
    bad[1, 0, 2, 2] = NAN
    samples = [(frames, 0), (bad, 1)]
    with pytest.raises(BidlError, match="sample 1 of split 'train' has NaN or infinite values"):
        write_split(tmp_path, "train", {}, iter(samples), 2, desc="test")
    assert list(tmp_path.iterdir()) == []


class Frames(torch.utils.data.Dataset):
    """Float frames with one damaged sample (index 2), as a cache read back might give."""

    CLASSES = ["a", "b", "c"]

    def __init__(self, bad_img=None, bad_label=None):
        self.bad_img, self.bad_label = bad_img, bad_label

    def __len__(self):
        return 4

    def __getitem__(self, index):
        img = torch.zeros(2, 2, 4, 4)
        label = torch.tensor(index % 3)
        if index == 2 and self.bad_img is not None:
            img[0, 1, 1, 1] = self.bad_img
        if index == 2 and self.bad_label is not None:
            label = torch.tensor(self.bad_label)
        return {"img": img, "gt_label": label}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bad_img": NAN}, r"Frames sample 2: img has 1 NaN or infinite value\(s\) out of 64"),
        ({"bad_img": INF}, r"Frames sample 2: img has 1 NaN or infinite value\(s\)"),
        ({"bad_label": 3}, r"Frames sample 2: label 3 is out of range \(classes 0\.\.2\)"),
        ({"bad_label": -1}, r"Frames sample 2: label -1 is out of range"),
        ({"bad_label": 1.5}, r"Frames sample 2: label 1\.5 is not an integer class index"),
    ],
)
def test_the_data_pipeline_output_is_checked(kwargs, message):
    loader = build_dataloader(Frames(**kwargs), 2)
    with pytest.raises(SampleError, match=message):
        list(loader)


def test_good_samples_pass_unchanged():
    batches = list(build_dataloader(Frames(), 2))
    assert [b["gt_label"].tolist() for b in batches] == [[0, 1], [2, 0]]


def test_weights_with_nan_are_refused_at_load(tmp_path):
    model = torch.nn.Linear(3, 2)
    with torch.no_grad():
        model.bias[1] = NAN
    save_checkpoint(tmp_path / "latest.pth", model)
    with pytest.raises(CheckpointError, match=r"has NaN or infinite weights in bias; .*earlier"):
        load_weights(torch.nn.Linear(3, 2), tmp_path / "latest.pth")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ({"optimizer.lr": NAN}, r"optimizer\.lr: nan is not a finite number"),
        ({"optimizer.lr": INF}, r"optimizer\.lr: inf is not a finite number"),
        ({"optimizer.weight_decay": NAN}, r"optimizer\.weight_decay: nan is not a finite"),
        ({"lr_config.warmup_ratio": INF}, r"lr_config\.warmup_ratio: inf is not a finite"),
    ],
)
def test_non_finite_config_values_are_refused(tiny_config, option, message):
    with pytest.raises(BidlError, match=message):
        load_config(str(tiny_config), option)


def test_an_inf_gradient_norm_type_is_allowed(tiny_config):
    cfg = load_config(str(tiny_config), {"optimizer_config.grad_clip.norm_type": INF})
    assert cfg.optimizer_config.grad_clip.norm_type == INF


@pytest.fixture(scope="module")
def runtime():
    pytest.importorskip("onnxruntime")
    from deploy_helpers import tiny_artifact

    from bidl.deploy import Runtime

    with Runtime(tiny_artifact()) as rt:
        yield rt


@pytest.mark.parametrize("bad", [NAN, INF])
def test_runtime_inputs_must_be_finite(runtime, bad):
    sample = np.zeros((runtime.timesteps, *runtime.step_shape), np.float32)
    sample[1, 0, 0, 0] = bad
    for call in (runtime.run, runtime.submit):
        with pytest.raises(BidlError, match=r"the input has 1 NaN or infinite value\(s\)"):
            call(sample)
    with pytest.raises(BidlError, match=r"step: the input has 1 NaN"):
        runtime.step(sample[1:2])
    loader = [(torch.from_numpy(sample[None]), torch.tensor([0]))]
    with pytest.raises(BidlError, match="NaN or infinite"):
        runtime.infer(loader, progress=False)
