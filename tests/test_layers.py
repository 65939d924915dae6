"""Composite layers: one timestep at a time equals the whole sequence at once."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from bidl.layers import (
    Conv2dLif,
    Conv2dLifPlus,
    FcLif,
    FcLifPlus,
    Lif1d,
    Lif2d,
    SpikingLayer,
    TemporalAggregation,
)
from bidl.neurons import Lif, StatefulCell, reset_states, set_step_mode, stateful_cells
from bidl.registry import BidlError

T, B = 5, 3

# name -> (layer factory, one-step input shape, input scale)
CASES = {
    "lif2d": (lambda: Lif2d(4), (B, 4, 5, 5), 1.0),
    "lif2d-nonorm-channel": (
        lambda: Lif2d(
            4, norm=False, soma_params="channel_share", learn=True, theta=[0.2, 0.4, 0.6, 0.8]
        ),
        (B, 4, 5, 5),
        1.0,
    ),
    "lif1d-2d": (lambda: Lif1d(6), (B, 6), 1.0),
    "lif1d-3d": (lambda: Lif1d(6, learn=True, spike_func="atan"), (B, 6, 7), 1.0),
    "conv": (lambda: Conv2dLif(2, 4, 3, padding=1), (B, 2, 8, 8), 2.0),
    "conv-pool-learn": (
        lambda: Conv2dLif(2, 4, 3, padding=1, pool=2, learn=True, soma_params="channel_share"),
        (B, 2, 8, 8),
        2.0,
    ),
    "conv-nonorm-stride": (
        lambda: Conv2dLif(
            3, 5, 3, stride=2, dilation=1, groups=1, bias=False, norm=False, noise=0.0
        ),
        (B, 3, 9, 9),
        2.0,
    ),
    "conv-analog": (
        lambda: Conv2dLif(2, 4, (3, 1), padding=(1, 0), mode="analog", memb_mode=(3, "relu")),
        (B, 2, 6, 6),
        2.0,
    ),
    "fc": (lambda: FcLif(10, 6), (B, 10), 2.0),
    "fc-learn-sigmoid": (
        lambda: FcLif(10, 6, learn=True, spike_func=dict(type="sigmoid")),
        (B, 10),
        2.0,
    ),
    "fc-nonorm": (lambda: FcLif(10, 6, bias=False, norm=False), (B, 10), 2.0),
    "conv-current-norm-pool-before": (
        lambda: Conv2dLif(2, 4, 3, padding=1, norm="current", pool=2, pool_position="before"),
        (B, 2, 8, 8),
        2.0,
    ),
    "conv-bidl-mp-norm_state0-analog": (
        lambda: Conv2dLif(2, 4, 3, padding=1, norm_state=False, mp=True, mode="analog"),
        (B, 2, 8, 8),
        2.0,
    ),
    "fc-current-norm": (lambda: FcLif(10, 6, norm="current"), (B, 10), 2.0),
    "conv-lifplus": (lambda: Conv2dLifPlus(2, 4, 3, padding=1, input_accum=1), (B, 2, 8, 8), 2.0),
    "fc-lifplus-analog": (
        lambda: FcLifPlus(10, 6, neuron_config=[2, 1, 1, 0, 1, 0], mode="analog"),
        (B, 10),
        2.0,
    ),
}


def assert_grads_close(got: torch.Tensor, want: torch.Tensor, scale: float, name: str = "") -> None:
    """Equal to fp32 rounding: within 1e-6 of the layer's largest gradient.

    Folding time into the batch sums a weight's gradient over T*B samples in one reduction
    instead of T reductions of B, so the last bits differ; a gradient that cancels to ~0
    (a conv bias followed by batch norm) carries the rounding noise of its large terms.
    """
    err = (got - want).abs().max().item()
    assert err <= 1e-6 * max(scale, 1.0), (
        f"{name}: max abs difference {err:.3g} (scale {scale:.3g})"
    )


def run_single(layer: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
    set_step_mode(layer, "s")
    return torch.stack([layer(x) for x in x_seq])


def run_multi(layer: nn.Module, x_seq: torch.Tensor) -> torch.Tensor:
    set_step_mode(layer, "m")
    return layer(x_seq)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("case", list(CASES))
def test_multi_step_equals_single_steps(case, training):
    factory, shape, scale = CASES[case]
    torch.manual_seed(0)
    single = factory()
    multi = copy.deepcopy(single)
    single.train(training)
    multi.train(training)
    x = (torch.randn(T, *shape) * scale).requires_grad_(True)
    x2 = x.detach().clone().requires_grad_(True)
    weight = torch.randn(T, *run_single(copy.deepcopy(single), x.detach())[0].shape)

    out_s = run_single(single, x)
    out_m = run_multi(multi, x2)
    assert out_s.shape == out_m.shape
    torch.testing.assert_close(out_m, out_s, rtol=0, atol=1e-6)
    if out_s.dtype.is_floating_point and "analog" not in case:
        assert 0 < out_s.mean() < 1, "the test input should make some (not all) neurons fire"

    (out_s * weight).sum().backward()
    (out_m * weight).sum().backward()
    assert_grads_close(x2.grad, x.grad, scale=x.grad.abs().max().item())
    params_s = dict(single.named_parameters())
    params_m = dict(multi.named_parameters())
    assert params_s.keys() == params_m.keys()
    assert all(p.grad is not None for p in params_s.values())
    scale = max((p.grad.abs().max().item() for p in params_s.values()), default=1.0)
    for name, p in params_s.items():
        assert_grads_close(params_m[name].grad, p.grad, scale, name)
    # batch-norm running statistics and the final membrane state agree too
    for (name, buf_s), buf_m in zip(single.named_buffers(), multi.buffers(), strict=True):
        torch.testing.assert_close(buf_m, buf_s, rtol=1e-5, atol=1e-6, msg=name)
    for (_, cell_s), (_, cell_m) in zip(stateful_cells(single), stateful_cells(multi), strict=True):
        torch.testing.assert_close(cell_m.state["v"], cell_s.state["v"], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", ["conv-pool-learn", "fc", "lif2d"])
def test_multi_step_continues_from_state(case):
    factory, shape, scale = CASES[case]
    torch.manual_seed(1)
    a = factory()
    b = copy.deepcopy(a)
    x = torch.randn(2 * T, *shape) * scale
    whole = run_multi(a, x)
    halves = torch.cat([run_multi(b, x[:T]), run_multi(b, x[T:])])
    torch.testing.assert_close(halves, whole, rtol=0, atol=1e-6)


def test_sequential_network_both_modes():
    torch.manual_seed(2)
    net = nn.Sequential(
        Conv2dLif(2, 4, 3, padding=1, pool=2),
        Conv2dLif(4, 4, 3, padding=1),
        nn.MaxPool2d(2),
        nn.Flatten(),
        FcLif(4 * 2 * 2, 8),
        nn.Linear(8, 3),
    )
    net2 = copy.deepcopy(net)
    x = torch.randn(T, B, 2, 8, 8) * 2
    out_s = torch.stack([net(xt) for xt in x])
    from bidl.neurons import run_multi_step

    set_step_mode(net2, "m")
    out_m = run_multi_step(net2, x)
    torch.testing.assert_close(out_m, out_s, rtol=1e-5, atol=1e-6)


def test_reset_states_on_layers():
    torch.manual_seed(3)
    net = nn.Sequential(Conv2dLif(2, 3, 3, padding=1), Lif2d(3))
    net.eval()
    x = torch.randn(B, 2, 6, 6) * 2
    first = net(x)
    net(x)
    assert all(cell.state is not None for _, cell in stateful_cells(net))
    reset_states(net)
    assert all(cell.state is None for _, cell in stateful_cells(net))
    torch.testing.assert_close(net(x), first)


def test_layers_are_what_they_say():
    conv = Conv2dLif(2, 4, 3, pool=2)
    assert isinstance(conv, SpikingLayer) and conv.step_mode == "s"
    assert isinstance(conv.conv, nn.Conv2d) and isinstance(conv.pool, nn.MaxPool2d)
    assert isinstance(conv.neuron, Lif) and isinstance(conv.neuron.norm, nn.BatchNorm2d)
    assert conv.neuron.norm.num_features == 4
    assert Conv2dLif(2, 4, 3, norm=False).neuron.norm is None
    assert Conv2dLif(2, 4, 3).pool is None
    fc = FcLif(5, 7)
    assert isinstance(fc.neuron.norm, nn.BatchNorm1d) and fc.neuron.norm.num_features == 7
    assert FcLif(5, 7, norm=False).neuron.norm is None
    assert fc.fc.bias is not None and FcLif(5, 7, bias=False).fc.bias is None
    assert isinstance(Lif2d(3), Lif) and isinstance(Lif2d(3).norm, nn.BatchNorm2d)
    assert Lif2d(3, norm=False).norm is None
    assert isinstance(Lif1d(3).norm, nn.BatchNorm1d)
    assert isinstance(Lif1d(3), StatefulCell)


def test_norm_and_pool_placement_and_bidls_keywords():
    # BIDL's Conv2dLif: mp pools the conv output before BN and cell; norm_state=False puts
    # the BN on the input current
    bidl = Conv2dLif(2, 4, 3, norm_state=False, mp=True)
    assert bidl.norm_mode == "current" and isinstance(bidl.norm, nn.BatchNorm2d)
    assert bidl.neuron.norm is None and bidl.pool_position == "before"
    assert bidl.pool.kernel_size == 2 and bidl.pool.stride == 2
    assert list(bidl.state_dict())[:7] == [
        "conv.weight",
        "conv.bias",
        "norm.weight",
        "norm.bias",
        "norm.running_mean",
        "norm.running_var",
        "norm.num_batches_tracked",
    ]
    assert Conv2dLif(2, 4, 3, norm_state=True).norm_mode == "state"
    assert Conv2dLif(2, 4, 3, norm=None).norm_mode is None
    # FcLif and the LIF+ layers have no batch norm at all with norm_state=False
    for layer in (
        FcLif(3, 4, norm_state=False),
        FcLifPlus(3, 4, norm_state=False),
        Conv2dLifPlus(2, 4, 3, norm_state=False),
    ):
        assert layer.norm is None and layer.neuron.norm is None
    # the cell sees the pooled resolution when pooling comes first
    x = torch.randn(B, 2, 8, 8)
    bidl(x)
    assert bidl.neuron.state["v"].shape == (B, 4, 3, 3)
    after = Conv2dLif(2, 4, 3, pool=2)
    after(x)
    assert after.neuron.state["v"].shape == (B, 4, 6, 6)


def test_bidls_layer_defaults_for_analog_output_and_noise():
    assert FcLif(3, 4).neuron.memb_mode == (0, "relu")
    assert Conv2dLif(2, 4, 3, mode="analog").neuron.memb_mode == (0, "relu")
    assert Lif2d(4).memb_mode == (0, "relu")
    assert FcLifPlus(3, 4).neuron.memb_mode == (0, "tanh")
    assert Conv2dLif(2, 4, 3, neuron="lifplus").neuron.memb_mode == (0, "tanh")
    assert Conv2dLifPlus(2, 4, 3).neuron.noise == 1e-3 and FcLif(3, 4).neuron.noise == 0.0
    assert FcLif(3, 4, memb_mode=(3, None)).neuron.memb_mode == (3, None)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (dict(norm="membrane"), r"norm must be 'state' .*'current' .* or None"),
        (dict(norm=None, norm_state=True), r"norm=None and norm_state=True disagree"),
        (dict(pool_position="middle"), r"pool_position must be 'after' .* or 'before'"),
        (dict(pool=2, mp=True), r"mp=True .* and pool=2 both ask for pooling"),
        (dict(mp="yes"), r"mp must be True or False"),
    ],
)
def test_norm_and_pool_errors(kwargs, pattern):
    with pytest.raises(BidlError, match=pattern):
        Conv2dLif(2, 4, 3, **kwargs)


def test_neuron_kwargs_reach_the_neuron():
    layer = Conv2dLif(
        2,
        4,
        3,
        theta=0.7,
        alpha=0.2,
        soma_params="channel_share",
        learn=True,
        spike_func="triangle",
    )
    n = layer.neuron
    assert n.input_channels == 4
    assert n.theta.shape == (4,) and torch.allclose(n.theta, torch.full((4,), 0.7))
    assert isinstance(n.alpha, nn.Parameter)
    assert repr(n.spike_fn) == "Triangle(a=1.0)"
    fc = FcLif(3, 5, neuron="Lif", mode="analog", memb_mode=(0, "tanh"))
    assert fc.neuron.mode == "analog"
    assert FcLif(3, 5, neuron=Lif).neuron.input_channels == 5


def test_pool_output_shape():
    layer = Conv2dLif(2, 4, 3, padding=1, pool=2)
    assert layer(torch.randn(B, 2, 8, 8)).shape == (B, 4, 4, 4)
    set_step_mode(layer, "m")
    reset_states(layer)
    assert layer(torch.randn(T, B, 2, 8, 8)).shape == (T, B, 4, 4, 4)


# --- errors ---------------------------------------------------------------------------


def test_layer_errors():
    with pytest.raises(
        BidlError, match=r"Conv2dLif\(3, 4\): expected 3 input channels along dim 1, got 2"
    ):
        Conv2dLif(3, 4, 3)(torch.zeros(B, 2, 5, 5))
    layer = Conv2dLif(3, 4, 3)
    layer.step_mode = "m"
    with pytest.raises(BidlError, match=r"expected 3 input channels along dim 2, got 2"):
        layer(torch.zeros(T, B, 2, 5, 5))
    with pytest.raises(
        BidlError, match=r"Conv2dLif: expected a one-timestep input \[B, C, H, W\].*step_mode='m'"
    ):
        Conv2dLif(3, 4, 3)(torch.zeros(T, B, 3, 5, 5))
    with pytest.raises(
        BidlError, match=r"FcLif\(10, 4\): expected 10 input features along dim 1, got 9"
    ):
        FcLif(10, 4)(torch.zeros(B, 9))
    with pytest.raises(BidlError, match=r"FcLif: expected a one-timestep input \[B, in_features\]"):
        FcLif(10, 4)(torch.zeros(B, 2, 5))
    with pytest.raises(BidlError, match=r"Lif2d: expected a one-timestep input \[B, C, H, W\]"):
        Lif2d(4)(torch.zeros(B, 4, 5))
    with pytest.raises(
        BidlError, match=r"Lif1d: expected a one-timestep input \[B, C\] or \[B, C, L\]"
    ):
        Lif1d(4)(torch.zeros(B, 4, 5, 5))
    with pytest.raises(
        BidlError, match=r"Lif2d\(input_channels=4\): expected 4 channels along dim 1, got 3"
    ):
        Lif2d(4, norm=False)(torch.zeros(B, 3, 5, 5))
    with pytest.raises(BidlError, match=r"Lif2d\(4\): input_channels=3 contradicts channels=4"):
        Lif2d(4, input_channels=3)
    with pytest.raises(BidlError, match="positive int"):
        Lif1d(0)
    with pytest.raises(BidlError, match="unknown neuron 'adex'; known neurons"):
        Conv2dLif(2, 4, 3, neuron="adex")
    with pytest.raises(BidlError, match="takes no neuron_config"):
        FcLif(2, 4, neuron_config=[0, 0, 0, 0, 0, 0])
    with pytest.raises(BidlError, match="unknown mode 'burst'"):
        FcLif(2, 4, mode="burst")
    layer = FcLif(2, 4)
    layer.step_mode = "x"
    with pytest.raises(BidlError, match="step_mode must be 's'"):
        layer(torch.zeros(B, 2))


# --- temporal aggregation -------------------------------------------------------------


def test_aggregation_modes():
    y = torch.arange(24.0).reshape(4, 2, 3)
    torch.testing.assert_close(TemporalAggregation("mean")(y), y.mean(0))
    torch.testing.assert_close(TemporalAggregation()(y), y.mean(0))
    torch.testing.assert_close(TemporalAggregation("sum")(y), y.sum(0))
    assert torch.equal(TemporalAggregation("pick")(y), y[-1])


@pytest.mark.parametrize("mode", ["mean", "sum", "pick"])
@pytest.mark.parametrize("start", ["none", "zeros"])
def test_aggregation_streaming_identical(mode, start):
    torch.manual_seed(4)
    agg = TemporalAggregation(mode)
    y_seq = torch.randn(7, 3, 10)
    state = None if start == "none" else agg.init_state(y_seq[0])
    for t, y_t in enumerate(y_seq):
        out, state = agg.step(y_t, state)
        assert tuple(state) == agg.state_names
        assert torch.equal(out, agg(y_seq[: t + 1]))
    assert torch.equal(out, agg(y_seq))


def test_aggregation_gradient():
    y = torch.randn(4, 2, requires_grad=True)
    TemporalAggregation("mean")(y).sum().backward()
    torch.testing.assert_close(y.grad, torch.full_like(y, 0.25))


def test_aggregation_errors():
    with pytest.raises(BidlError, match="unknown mode 'max'; use one of 'mean', 'sum', 'pick'"):
        TemporalAggregation("max")
    with pytest.raises(BidlError, match=r"expected a sequence \[T, B, ...\]"):
        TemporalAggregation()(torch.zeros(3))


@settings(max_examples=25, deadline=None)
@given(
    steps=st.integers(1, 4),
    batch=st.integers(1, 3),
    cin=st.integers(1, 3),
    cout=st.integers(1, 4),
    size=st.integers(4, 9),
    pool=st.sampled_from([None, 2]),
)
def test_conv_lif_shapes_and_binary(steps, batch, cin, cout, size, pool):
    torch.manual_seed(0)
    layer = Conv2dLif(cin, cout, 3, padding=1, pool=pool)
    x = torch.randn(steps, batch, cin, size, size)
    out_m = run_multi(layer, x)
    hw = size // pool if pool else size
    assert out_m.shape == (steps, batch, cout, hw, hw)
    assert set(out_m.unique().tolist()) <= {0.0, 1.0}
    assert layer.neuron.state["v"].shape == (batch, cout, size, size)
