"""The training recipe of the spiking transformers: mixup / CutMix, EMA weights, distillation
from a frozen teacher, layer-wise lr decay; alone and through `bidl train`."""

import math

import pytest
import torch
from conftest import write_tiny_config
from torch import nn

from bidl.config import load_config
from bidl.engine import build_model, save_checkpoint, train_model
from bidl.engine.checkpoint import load_checkpoint
from bidl.engine.distill import Distiller
from bidl.engine.ema import ModelEma
from bidl.engine.mixup import BatchMixer
from bidl.optim.layer_decay import layer_of
from bidl.optim.optimizer import build_optimizer
from bidl.registry import BACKBONES, BidlError, build


def batch(size=4, steps=3):
    torch.manual_seed(0)
    return torch.rand(size, steps, 2, 8, 8), torch.tensor([0, 1, 2, 1][:size])


def test_mixup_blends_each_sample_with_the_reversed_batch():
    img, labels = batch()
    mixed, targets = BatchMixer(3, mixup_alpha=0.8, cutmix_alpha=0.0, seed=1)(img, labels)
    lam = targets[0, 0].item()  # sample 0 (label 0) mixed with the last one (label 1)
    assert 0 < lam < 1
    assert torch.allclose(mixed, lam * img + (1 - lam) * img.flip(0))
    one_hot = nn.functional.one_hot
    expected = lam * one_hot(labels, 3) + (1 - lam) * one_hot(labels.flip(0), 3)
    assert torch.allclose(targets, expected.float())
    assert torch.allclose(targets.sum(1), torch.ones(4))


def test_cutmix_pastes_one_box_at_every_step_and_weighs_targets_by_its_area():
    img, labels = batch()
    mixed, targets = BatchMixer(3, mixup_alpha=0.0, cutmix_alpha=1.0, seed=3)(img, labels)
    pasted = (mixed != img) & (mixed == img.flip(0))
    box = pasted[0, 0, 0]  # one channel's pixels taken from the other sample
    assert box.any() and all(torch.equal(pasted[0, t, c], box) for t in range(3) for c in range(2))
    kept = 1 - box.float().mean().item()
    assert targets[0, labels[0]].item() == pytest.approx(kept, abs=1e-6)


def test_mixing_stops_at_off_epoch_and_prob_zero_keeps_the_batch():
    img, labels = batch()
    for mixer, epoch in ((BatchMixer(3, prob=0.0), 0), (BatchMixer(3, off_epoch=2), 2)):
        out, targets = mixer(img, labels, epoch)
        assert out is img and torch.equal(targets.argmax(1), labels)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(mixup_alpha=0.0, cutmix_alpha=0.0), "one of them > 0"),
        (dict(prob=1.5), r"prob and switch_prob must be in \[0, 1\]"),
    ],
)
def test_bad_mixup_settings_are_refused(kwargs, message):
    with pytest.raises(BidlError, match=message):
        BatchMixer(3, **kwargs)


def test_ema_averages_floats_and_copies_counters():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = ModelEma(model, decay=0.9, warmup=False)
    start = {k: v.clone() for k, v in ema.state_dict().items()}
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model(torch.randn(4, 2))  # one batch-norm update: running stats and the counter
    ema.update(model)
    state = ema.state_dict()
    current = model.state_dict()
    for key in ("0.weight", "1.running_mean"):
        assert torch.allclose(state[key], 0.9 * start[key] + 0.1 * current[key])
    assert state["1.num_batches_tracked"].item() == 1
    assert not any(p.requires_grad for p in ema.module.parameters())
    with pytest.raises(BidlError, match=r"ema.decay must be in \(0, 1\)"):
        ModelEma(model, decay=1.0)


def test_ema_warmup_follows_the_first_updates():
    model = nn.Linear(2, 2)
    ema = ModelEma(model, decay=0.99)
    start = ema.module.weight.clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)  # decay min(0.99, 1 / 10)
    assert torch.allclose(ema.module.weight, 0.1 * start + 0.9 * model.weight)
    decays = []
    for updates in (1, 90, 10_000):
        ema.updates = updates
        decays.append(ema.current_decay())
    assert decays == [2 / 11, 0.91, 0.99]


class Fixed(nn.Module):
    """A teacher that always gives the same probabilities."""

    def __init__(self, probs):
        super().__init__()
        self.probs = probs

    def forward(self, img, return_loss=True):
        return self.probs[: img.shape[0]]


def test_distillation_mixes_the_teachers_top_class_or_its_probabilities():
    probs = torch.tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2]])
    targets = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    img = torch.zeros(2, 3, 2, 8, 8)
    hard = Distiller(Fixed(probs), "hard", alpha=0.5)(img, targets)
    assert torch.equal(hard, torch.tensor([[0.5, 0.5, 0.0], [0.5, 0.0, 0.5]]))
    soft = Distiller(Fixed(probs), "soft", alpha=0.25)(img, targets)
    assert torch.allclose(soft, 0.75 * targets + 0.25 * probs)
    with pytest.raises(BidlError, match="teacher and student must have the same classes"):
        Distiller(Fixed(probs[:, :2]))(img, targets)


def test_cross_entropy_of_the_mixed_target_is_the_mix_of_the_two_losses():
    scores = torch.randn(2, 3)
    labels, teacher = torch.tensor([0, 2]), torch.tensor([1, 0])
    one_hot = nn.functional.one_hot
    mixed = 0.6 * one_hot(labels, 3).float() + 0.4 * one_hot(teacher, 3).float()
    ce = nn.functional.cross_entropy
    assert ce(scores, mixed).item() == pytest.approx(
        0.6 * ce(scores, labels).item() + 0.4 * ce(scores, teacher).item(), rel=1e-6
    )


def test_layer_decay_scales_each_layer_and_spares_1d_parameters_weight_decay():
    model = build(dict(type="sdt_tiny", h=16, w=16, timestep=2, depth=2), BACKBONES)
    optimizer = build_optimizer(
        model,
        dict(type="AdamW", lr=1.0, weight_decay=0.05, paramwise_cfg=dict(layer_decay_rate=0.5)),
    )
    layers = len(model.body) + 1  # 3: stem 0, blocks 1 and 2, head 3
    assert layer_of("backbone.stem.proj_conv.weight", layers) == 0
    assert layer_of("backbone.body.1.attn.q_conv.weight", layers) == 2
    assert layer_of("backbone.head.3.weight", layers) == 3
    seen = {}
    for group in optimizer.param_groups:
        assert group["lr"] == 0.5 ** (layers - group["layer"])
        for param in group["params"]:
            seen[id(param)] = group["weight_decay"]
            assert group["weight_decay"] == (0.05 if param.ndim > 1 else 0.0)
    assert len(seen) == sum(1 for _ in model.parameters())
    with pytest.raises(BidlError, match="layer_decay_rate: expected a number in"):
        build_optimizer(model, dict(type="AdamW", lr=1.0, paramwise_cfg=dict(layer_decay_rate=2)))


RECIPE = """
mixup = dict(mixup_alpha=0.8, cutmix_alpha=1.0, prob=1.0, switch_prob=0.5)
ema = dict(decay=0.9, evaluate=True)
distill = dict(teacher=dict(config={teacher!r}, checkpoint={checkpoint!r}), kind="hard", alpha=0.5)
optimizer = dict(type="AdamW", lr=0.01, weight_decay=0.05, paramwise_cfg=dict(layer_decay_rate=0.8))
runner = dict(type="EpochBasedRunner", max_epochs=1)
"""


def test_train_with_mixup_ema_distillation_and_layer_decay_then_resume(tmp_path):
    teacher_cfg = write_tiny_config(tmp_path, name="teacher-b8x0-blinks")
    teacher = build_model(load_config(teacher_cfg))
    save_checkpoint(tmp_path / "teacher.pth", teacher)
    student = write_tiny_config(tmp_path, name="student-b8x0-blinks")
    student.write_text(
        student.read_text()
        + RECIPE.format(teacher=str(teacher_cfg), checkpoint=str(tmp_path / "teacher.pth"))
    )
    metrics = train_model(student, work_dir=str(tmp_path / "run"), device="cpu")
    assert math.isfinite(metrics["accuracy_top-1"])
    latest = load_checkpoint(tmp_path / "run" / "latest.pth")
    assert set(latest["train_state_dict"]) == set(latest["state_dict"])
    # the checkpoint's weights are the averaged ones: they differ from the trained ones
    key = "backbone.body.0.conv.weight"
    assert not torch.equal(latest["state_dict"][key], latest["train_state_dict"][key])
    metrics = train_model(
        student,
        work_dir=str(tmp_path / "run"),
        device="cpu",
        cfg_options={"runner.max_epochs": 2},
        resume=True,
    )
    assert math.isfinite(metrics["accuracy_top-1"])


@pytest.mark.parametrize(
    "options,message",
    [
        ({"ema.decay": 1.5}, "ema.decay: expected a number in (0, 1)"),
        ({"mixup.mixup_alpah": 0.2}, "did you mean mixup.mixup_alpha?"),
        ({"mixup.prob": 2}, "mixup.prob: expected a number in [0, 1]"),
        ({"distill.kind": "medium"}, "distill.kind: expected 'hard' or 'soft'"),
        ({"distill.teacher.checkpoint": 3}, "distill.teacher.checkpoint: expected a string"),
        (
            {"optimizer.paramwise_cfg.layer_decay_rate": 0},
            "optimizer.paramwise_cfg.layer_decay_rate: expected a number in (0, 1]",
        ),
    ],
)
def test_recipe_keys_are_checked_when_the_config_loads(tiny_config, options, message):
    with pytest.raises(BidlError) as err:
        load_config(tiny_config, options)
    assert message in str(err.value)
