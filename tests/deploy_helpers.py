"""Small models and inputs shared by the deployment tests (tests/test_deploy_*.py)."""

from __future__ import annotations

import atexit
import functools
import inspect
import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn

from bidl.layers import Conv2dLif, FcLif
from bidl.models.backbones.base import SpikingBackbone
from bidl.registry import BACKBONES

#: keywords that make a backbone small, used where its constructor takes them
SMALL = dict(timestep=3, h=16, w=16, nclass=4, vocab_size=50, hidden_dim=16)
#: backbones that need other sizes than SMALL gives (their pooling needs a larger map)
OVERRIDES = {
    "SeqClif5Fc2Dm": dict(h=64, w=64),  # a stride-2 conv and five 2x2 pools down to 1x1
    "SeqClif5Fc2Cd": dict(h=64, w=64),
    "SeqClif7Fc1Cd": dict(h=128, w=128),  # seven 2x2 pools down to 1x1, as in BIDL
    "SeqClif7Fc1Dg": dict(h=128, w=128),
    "ResNetLifBackbone": dict(stem_channels=8, base_channels=8),
    "ResNetLifReluBackbone": dict(stem_channels=8, base_channels=8),
    # one block of each kind, narrow; a low threshold so that fresh weights spike
    "Spikformer": dict(embed_dim=16, depth=1, num_heads=2, pooling_stat="0011", v_threshold=0.1),
    # (its convolutions start at std 0.02, as in its paper's code)
    "SpikeDrivenTransformer": dict(
        embed_dim=16, depth=1, num_heads=2, pooling_stat="0011", v_threshold=0.01
    ),
    "MetaSpikformer": dict(
        embed_dims=(8, 16, 16, 16), depths=(1, 0), conv_blocks=0, mlp_ratio=2, h=24, w=24
    )
    | dict(num_heads=2, v_threshold=0.1),
}


def backbone_class(name: str) -> type:
    factory = BACKBONES.get(name)
    return getattr(factory, "backbone_class", factory)


def distinct_backbones() -> list[str]:
    """One registered name per backbone class. The names left out build the same class
    with other defaults: the time loop's place (which the step graph does not see) or the
    neuron model (LIF+ cells are exported and checked on their own, every switch set)."""
    chosen: dict[type, str] = {}
    for name in BACKBONES.names():
        if not getattr(backbone_class(name), "sequence_only", False):  # no step graph
            chosen.setdefault(backbone_class(name), name)
    return sorted(chosen.values())


def build_small_backbone(name: str) -> nn.Module:
    factory = BACKBONES.get(name)
    params = inspect.signature(factory).parameters
    kwargs = {k: v for k, v in SMALL.items() if k in params}
    kwargs.update(OVERRIDES.get(backbone_class(name).__name__, {}))
    torch.manual_seed(0)
    return factory(**kwargs).eval()


def example_input(backbone: nn.Module, batch: int, seed: int = 0) -> torch.Tensor:
    """``[B, T, *input_shape]`` of the backbone's kind (spikes, or token ids)."""
    generator = torch.Generator().manual_seed(seed)
    if hasattr(backbone, "example_input"):
        return backbone.example_input(batch=batch, generator=generator)
    shape = (batch, backbone.timestep, *backbone.input_shape)
    return (torch.rand(shape, generator=generator) < 0.3).float()


def randomize_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every batch norm non-trivial running statistics and affine parameters."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            size = module.num_features
            module.running_mean.copy_(torch.rand(size, generator=generator) * 0.4 - 0.2)
            module.running_var.copy_(torch.rand(size, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(size, generator=generator) + 0.5)
            module.bias.data.copy_(torch.rand(size, generator=generator) * 0.4 - 0.2)
    return model


class TinySnn(SpikingBackbone):
    """conv-LIF (with max-pool) -> flatten -> FC-LIF -> linear: a few thousand weights."""

    def __init__(self, timestep=4, channels=2, size=8, nclass=5, amode="mean", norm=True, **opts):
        super().__init__((channels, size, size), timestep, amode)
        self.body = nn.Sequential(
            Conv2dLif(channels, 4, 3, padding=1, pool=2, norm=norm, **opts),
            nn.Flatten(),
            FcLif(4 * (size // 2) ** 2, 16, norm=norm, **opts),
        )
        self.head = nn.Linear(16, nclass)


def tiny_snn(seed: int = 0, **kwargs) -> TinySnn:
    torch.manual_seed(seed)
    return randomize_norms(TinySnn(**kwargs), seed).eval()


def blink_batch(batch: int, seed: int, size: int = 8, timesteps: int = 4):
    """Synthetic events ``[B, T, 2, size, size]`` and labels 0-4: each class lights its own
    region (four quadrants and the centre) on top of sparse noise."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 5, (batch,), generator=generator)
    xs = (torch.rand(batch, timesteps, 2, size, size, generator=generator) < 0.05).float()
    half, quarter = size // 2, size // 4
    regions = [(0, 0), (0, half), (half, 0), (half, half), (quarter, quarter)]
    for row, label in enumerate(labels.tolist()):
        top, left = regions[label]
        lit = torch.rand(timesteps, 2, half, half, generator=generator) < 0.5
        xs[row, :, :, top : top + half, left : left + half] += lit.float()
    return xs.clamp(max=1.0), labels


@functools.cache
def trained_tiny_snn() -> TinySnn:
    """``tiny_snn()`` trained briefly (Adam, 40 steps) on ``blink_batch`` data, so that its
    outputs have the margins of a trained network."""
    model = tiny_snn(seed=8).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    for step in range(40):
        xs, labels = blink_batch(32, seed=100 + step)
        loss = nn.functional.cross_entropy(model(xs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@functools.cache
def tiny_config_checkpoint() -> tuple[Path, Path]:
    """(config path, work dir) of the tiny TinyBlinks config (tests/conftest.py), with the
    weights of its freshly built model saved as ``latest.pth`` in the work dir."""
    from conftest import write_tiny_config

    from bidl.config import load_config
    from bidl.engine import build_model, save_checkpoint

    folder = Path(tempfile.mkdtemp(prefix="bidl-deploy-tests-"))
    atexit.register(shutil.rmtree, folder, True)
    config = write_tiny_config(folder)
    torch.manual_seed(0)
    model = build_model(load_config(str(config)))
    save_checkpoint(folder / "work" / "latest.pth", model)
    return config, folder / "work"


@functools.cache
def tiny_artifact() -> Path:
    """The artifact of ``tiny_snn()`` compiled at batch 2 (ONNX), once per test session."""
    from bidl.deploy import compile_model

    folder = Path(tempfile.mkdtemp(prefix="bidl-deploy-tests-"))
    atexit.register(shutil.rmtree, folder, True)
    return compile_model(tiny_snn(), folder / "tiny", batch_size=2)


def load_checkpointed(config, work_dir) -> nn.Module:
    from bidl.config import load_config
    from bidl.engine import build_model, load_weights

    model = build_model(load_config(str(config)))
    load_weights(model, work_dir / "latest.pth")
    return model.eval()
