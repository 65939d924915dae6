"""The step-mode protocol: cells and layers are called as modules, so torch hooks see them
(once per timestep in EIM, once per sequence in IIM), and stateless modules run over time
through ``run_multi_step`` alone."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from bidl.analysis.activity import ActivityMonitor
from bidl.analysis.trace import record_sample
from bidl.layers import Conv2dLif, FcLif
from bidl.models.backbones.base import SpikingBackbone
from bidl.neurons import (
    Lif,
    StepModule,
    run_multi_step,
    set_step_mode,
    step_mode_of,
    time_foldable,
)
from bidl.registry import BidlError

T, B = 4, 3


class TinyNet(SpikingBackbone):
    """Conv-LIF -> flatten -> FC-LIF -> linear readout, per step."""

    def __init__(self, use_inner_loop: bool):
        super().__init__((2, 6, 6), T, use_inner_loop=use_inner_loop)
        self.body = nn.Sequential(
            Conv2dLif(2, 4, 3, padding=1, pool=2), nn.Flatten(), FcLif(4 * 3 * 3, 5)
        )
        self.head = nn.Linear(5, 3)

    def forward(self, xs, return_loss=False):  # record_sample's call
        return super().forward(xs)


def count_calls(module: nn.Module) -> list[tuple[int, ...]]:
    """The input shape of every call of ``module``, recorded by a forward hook."""
    calls: list[tuple[int, ...]] = []
    module.register_forward_hook(lambda _m, args, _out: calls.append(tuple(args[0].shape)))
    return calls


def test_a_forward_hook_on_a_lif_fires_once_per_step_in_eim_and_once_per_call_in_iim():
    torch.manual_seed(0)
    layer = Conv2dLif(2, 4, 3, padding=1)
    iim = copy.deepcopy(layer)
    eim_calls, iim_calls = count_calls(layer.neuron), count_calls(iim.neuron)
    assert isinstance(layer.neuron, Lif)
    x = torch.randn(T, B, 2, 5, 5) * 2

    out_eim = torch.stack([layer(x_t) for x_t in x])  # step mode 's'
    set_step_mode(iim, "m")
    out_iim = iim(x)

    assert eim_calls == [(B, 4, 5, 5)] * T
    assert iim_calls == [(T, B, 4, 5, 5)]
    torch.testing.assert_close(out_iim, out_eim, rtol=0, atol=1e-6)


@pytest.mark.parametrize("use_inner_loop", [False, True], ids=["EIM", "IIM"])
def test_hooks_on_the_cells_of_a_backbone_fire_as_the_time_loop_runs(use_inner_loop):
    torch.manual_seed(1)
    model = TinyNet(use_inner_loop).eval()
    calls = [count_calls(model.body[0].neuron), count_calls(model.body[2].neuron)]
    model(model.example_input(batch=B))
    expected = [(B, 4, 6, 6), (B, 5)]
    for seen, shape in zip(calls, expected, strict=True):
        assert seen == ([(T, *shape)] if use_inner_loop else [shape] * T)
    # the backbone leaves every layer in its own mode
    assert {module.step_mode for module in model.modules() if isinstance(module, StepModule)} == {
        "s"
    }


def test_activity_and_traces_are_the_same_in_both_iteration_modes():
    torch.manual_seed(2)
    eim = TinyNet(use_inner_loop=False).eval()
    iim = TinyNet(use_inner_loop=True).eval()
    iim.load_state_dict(eim.state_dict())
    xs = eim.example_input(batch=B)
    rates = []
    for model in (eim, iim):
        with ActivityMonitor(model) as monitor:
            monitor.begin_batch(B)
            model(xs)
            monitor.end_batch()
        rates.append(monitor.firing_rates())
        assert set(rates[-1]) == {"body.0.neuron", "body.2.neuron"}
    assert rates[0] == pytest.approx(rates[1])
    traces = [record_sample(model, xs[0]) for model in (eim, iim)]
    for a, b in zip(*traces, strict=True):
        assert a.potential_kind == b.potential_kind == "membrane minus threshold, before firing"
        assert torch.equal(a.spikes, b.spikes) and a.spikes.shape[0] == T
        torch.testing.assert_close(a.potential, b.potential)
    # the hooks are gone afterwards
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in eim.modules())


def test_run_multi_step_calls_a_step_module_once_and_restores_its_mode():
    torch.manual_seed(3)
    layer = FcLif(6, 4)
    calls = count_calls(layer.neuron)
    x = torch.randn(T, B, 6)
    run_multi_step(layer, x)
    assert calls == [(T, B, 4)]
    assert layer.step_mode == layer.neuron.step_mode == "s"
    with step_mode_of(layer, "m"):
        assert layer.neuron.step_mode == "m"
    assert layer.neuron.step_mode == "s"


def test_setting_a_layers_step_mode_sets_its_cells():
    layer = FcLif(6, 4)
    layer.step_mode = "m"
    assert layer.neuron.step_mode == "m"
    with pytest.raises(BidlError, match=r"set_step_mode: step_mode must be 's' .* got 'x'"):
        set_step_mode(layer, "x")


def test_a_time_foldable_module_runs_once_on_the_folded_sequence():
    class Scale(nn.Module):
        def forward(self, x):
            return 2 * x

    @time_foldable
    class FoldedScale(Scale):
        pass

    x = torch.randn(T, B, 5)
    plain, folded = Scale(), FoldedScale()
    plain_calls, folded_calls = count_calls(plain), count_calls(folded)
    assert torch.equal(run_multi_step(plain, x), run_multi_step(folded, x))
    assert plain_calls == [(B, 5)] * T  # unknown modules run step by step
    assert folded_calls == [(T * B, 5)]


def test_batch_norm_in_training_runs_per_step_and_folds_in_eval():
    norm = nn.BatchNorm1d(5)
    calls = count_calls(norm)
    x = torch.randn(T, B, 5)
    run_multi_step(norm, x)
    norm.eval()
    run_multi_step(norm, x)
    assert calls == [(B, 5)] * T + [(T * B, 5)]
