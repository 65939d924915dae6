"""How a training run executes its model: the multi-step form where it is the same
function (same loss and gradients as the single-step form), memory layout, compilation."""

from __future__ import annotations

import copy

import torch
from torch import nn

from bidl.config import load_config
from bidl.engine.apis import build_model
from bidl.engine.execution import (
    AUTO_COMPILE_MIN_STEPS,
    prepare_model,
    use_multi_step,
    wants_compile,
)
from bidl.models.backbones.seq_clif_dm import SeqClif3Fc3Dm


def digits_model():
    cfg = load_config(
        "clif3fc3dm_itout-b16x1-digitsdvs",
        {"model.backbone.h0": 16, "model.backbone.w0": 16, "model.backbone.timestep": 3},
    )
    torch.manual_seed(0)
    return build_model(cfg)


def test_multi_step_form_trains_the_same_function():
    eim = digits_model().train()
    iim = copy.deepcopy(eim)
    notes = use_multi_step(iim, "auto")
    assert iim.backbone.use_inner_loop and not eim.backbone.use_inner_loop
    assert notes == ["backbone (SeqClif3Fc3Dm) trains in multi-step form"]
    xs = (torch.rand(4, 3, 2, 16, 16) < 0.3).float()
    labels = torch.tensor([0, 1, 2, 3])
    losses = []
    for model in (eim, iim):
        loss = model(xs, labels)["loss"]
        loss.backward()
        losses.append(loss.detach())
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-6, atol=1e-6)
    for (name, a), b in zip(eim.named_parameters(), iim.parameters(), strict=True):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-4, atol=1e-6, msg=name)
    for (name, a), b in zip(eim.named_buffers(), iim.buffers(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7, msg=name)  # BN statistics


class OwnLoop(SeqClif3Fc3Dm):
    def forward_step(self, x_t):
        return super().forward_step(x_t * 2)


def test_backbones_with_their_own_loop_keep_it_and_false_keeps_every_form():
    model = nn.Sequential(OwnLoop(timestep=2, h=8, w=8))
    assert use_multi_step(model, "auto") == [
        "0 keeps its single-step form: OwnLoop runs its own time loop"
    ]
    assert not model[0].use_inner_loop
    assert use_multi_step(model, True) and model[0].use_inner_loop
    plain = digits_model()
    assert use_multi_step(plain, False) == [] and not plain.backbone.use_inner_loop


def test_random_draws_are_named():
    noisy = SeqClif3Fc3Dm(timestep=2, h=8, w=8, noise=0.01)
    (note,) = use_multi_step(noisy, "auto")
    assert note.endswith("the random draws of body.0.neuron (membrane noise) come layer by "
                         "layer, not step by step")  # fmt: skip


def test_cpu_defaults_keep_the_form_and_take_channels_last():
    model = digits_model()
    notes = prepare_model(model, {}, torch.device("cpu"))
    assert notes == [
        "single-step form kept on the CPU (runner.multi_step=True switches)",
        "channels_last weights",
    ]
    assert not model.backbone.use_inner_loop
    conv = model.backbone.body[0].conv.weight
    assert conv.is_contiguous(memory_format=torch.channels_last)
    plain = digits_model()
    prepare_model(plain, {"channels_last": False, "multi_step": True}, torch.device("cpu"))
    assert plain.backbone.body[0].conv.weight.is_contiguous() and plain.backbone.use_inner_loop
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert wants_compile("auto", cpu, 10**6) is None
    assert wants_compile("auto", cuda, AUTO_COMPILE_MIN_STEPS - 1) is None
    assert wants_compile(True, cpu, 1) == {}
    assert wants_compile({"mode": "max-autotune"}, cpu, 1) == {"mode": "max-autotune"}
    assert wants_compile(False, cuda, 10**6) is None


def test_fused_kernels_false_runs_the_reference_loop(monkeypatch):
    """``runner.fused_kernels=False``: the cells' one-node recurrence is not used, the
    result is the same; the default turns it back on."""
    from bidl.neurons import kernels
    from bidl.neurons.kernels import norm_lif

    calls = []
    original = norm_lif.NormLifFunction.apply

    def counting(*args):
        calls.append(1)
        return original(*args)

    monkeypatch.setattr(norm_lif.NormLifFunction, "apply", counting)
    xs = (torch.rand(2, 3, 2, 16, 16) < 0.3).float()
    outputs = []
    try:
        for fused in (False, True):
            torch.manual_seed(0)
            model = digits_model().eval()
            config = {"multi_step": True, "channels_last": False, "fused_kernels": fused}
            notes = prepare_model(model, config, torch.device("cpu"))
            assert kernels.fused_kernels_enabled() is fused
            assert ("fused neuron kernels off: every cell runs its reference loop" in notes) is (
                not fused
            )
            before = len(calls)
            with torch.no_grad():
                outputs.append(model.backbone(xs))
            assert (len(calls) > before) is fused
    finally:
        kernels.set_fused_kernels(True)
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-6, atol=1e-6)


def test_optimizers_fuse_on_cuda_only_unless_the_config_chooses():
    from bidl.optim.optimizer import _fuses

    cpu = [nn.Parameter(torch.zeros(3))]
    assert not _fuses(torch.optim.Adam, cpu, {})
    if torch.cuda.is_available():
        cuda = [nn.Parameter(torch.zeros(3, device="cuda"))]
        assert _fuses(torch.optim.Adam, cuda, {})
        assert _fuses(torch.optim.SGD, [{"params": cuda, "lr": 0.1}], {})
        assert not _fuses(torch.optim.Adam, cuda, {"foreach": True})
        assert not _fuses(torch.optim.Adam, cuda, {"fused": False})
        assert not _fuses(torch.optim.RMSprop, cuda, {})
        from bidl.optim import build_optimizer

        model = nn.Linear(3, 2).cuda()
        assert build_optimizer(model, {"type": "AdamW", "lr": 1e-3}).defaults["fused"] is True
