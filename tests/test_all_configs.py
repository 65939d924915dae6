"""Every config under configs/ loads, builds its model and trains one step on a synthetic
batch of the input its backbone declares (no dataset needed)."""

import math

import pytest
import torch

from bidl.config import _PROJECT_CONFIGS, list_configs, load_config
from bidl.models import build_classifier
from bidl.optim.lr_schedule import LrSchedule
from bidl.optim.optimizer import build_optimizer

CONFIGS = {
    name: path
    for name, path in list_configs().items()
    if path.resolve().is_relative_to(_PROJECT_CONFIGS.resolve())
}
STEPS = 2  # timesteps of the synthetic batch: the step graph is the same for any T


def config_param(name):
    # ImageNet-sized ResNets and transformers: seconds per step on CPU
    heavy = name.startswith(("resnetlif", "st_yolov5x")) or name.endswith("-imagenet")
    return pytest.param(name, marks=[pytest.mark.slow] if heavy else [], id=name)


@pytest.mark.parametrize("name", [config_param(name) for name in sorted(CONFIGS)])
def test_config_builds_its_model_and_trains_one_step(name):
    cfg = load_config(CONFIGS[name])
    torch.manual_seed(0)
    model = build_classifier(cfg.model).train()
    optimizer = build_optimizer(model, cfg.optimizer)
    LrSchedule(cfg.get("lr_config"), cfg.runner.max_epochs, iters_per_epoch=1)
    backbone = model.backbone
    img = backbone.example_input(batch=2, generator=torch.Generator().manual_seed(0))[:, :STEPS]
    before = [p.detach().clone() for p in model.parameters()]
    # a detector's targets are boxes (Detector.example_targets), a classifier's labels
    targets = getattr(model, "example_targets", lambda batch: {"gt_label": torch.tensor([0, 1])})
    losses = model(img, **targets(2))
    assert math.isfinite(losses["loss"].item())
    losses["loss"].backward()
    optimizer.step()
    changed = [not torch.equal(b, p) for b, p in zip(before, model.parameters(), strict=True)]
    assert sum(changed) > len(changed) // 2


@pytest.mark.slow
def test_sliced_resnet50_config_models_chain_to_the_whole_model():
    cfg = load_config(CONFIGS["resnetlif50-itout-b8x1-cifar10dvs_mp"])
    torch.manual_seed(0)
    whole = build_classifier(cfg.model).eval()
    slices = [build_classifier(cfg[f"model_{i}"]).eval() for i in range(2)]
    for part, shape in zip(slices, cfg.models_compile_inputshape, strict=True):
        assert list(part.backbone.input_shape) == shape[1:]
        state = part.backbone.segment_state_dict(whole.backbone.state_dict())
        part.backbone.load_state_dict(state)
    img = whole.backbone.example_input(batch=1)[:, :STEPS]
    with torch.no_grad():
        chained = slices[1].backbone(slices[0].backbone(img))
        assert torch.allclose(chained, whole.backbone(img), atol=1e-5)


def test_every_backbone_family_has_a_config():
    used = {load_config(path).model.backbone.type for path in CONFIGS.values()}
    for family in ("Dm", "Cd", "Dg", "Lc", "Mn", "ResNetLif", "FastText"):
        assert any(family in name for name in used), family
