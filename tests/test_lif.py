"""The Lif cell: its equations, options, errors, and the neuron builder."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from bidl.neurons import (
    ATan,
    Lif,
    Rectangle,
    build_neuron,
    reset_states,
    set_step_mode,
)
from bidl.registry import NEURONS, BidlError, UnknownTypeError


def lif_reference(xs, alpha=0.3, beta=0.0, theta=0.5, v_0=0.0):
    """Plain-Python LIF on one scalar input sequence: spikes and (v after leak) per step."""
    v = 0.0
    spikes, states = [], []
    for x in xs:
        v = x + v
        s = 1.0 if v - theta > 0 else 0.0
        v = v_0 if s else v
        v = alpha * v + beta
        spikes.append(s)
        states.append(v)
    return spikes, states


def run_steps(cell, xs):
    return torch.stack([cell(x) for x in xs])


# --- the equations --------------------------------------------------------------------


def test_hand_computed_defaults():
    # alpha 0.3, beta 0, theta 0.5, v_0 0
    cell = Lif()
    xs = [0.4, 0.4, 0.1, 0.6, 0.0]
    # t0: v=0.4 no spike -> 0.12 ; t1: v=0.52 spike -> reset 0 -> 0 ;
    # t2: v=0.1 -> 0.03 ; t3: v=0.63 spike -> 0 ; t4: v=0 -> 0
    outs = [cell(torch.tensor([x], dtype=torch.float64)).item() for x in xs]
    assert outs == [0.0, 1.0, 0.0, 1.0, 0.0]
    assert cell.state["v"].item() == 0.0


def test_hand_computed_with_beta_and_v0():
    cell = Lif(alpha=0.5, beta=0.1, theta=1.0, v_0=-0.2)
    x = torch.tensor([[0.8, 1.5, 0.0]], dtype=torch.float64)
    s1 = cell(x)
    # v = [0.8, 1.5, 0]; spikes [0,1,0]; reset [0.8, -0.2, 0]; leak 0.5*v+0.1
    assert s1.tolist() == [[0.0, 1.0, 0.0]]
    torch.testing.assert_close(
        cell.state["v"], torch.tensor([[0.5, 0.0, 0.1]], dtype=torch.float64)
    )
    s2 = cell(x)
    # v = [1.3, 1.5, 0.1]; spikes [1,1,0]; reset [-0.2, -0.2, 0.1]; leak
    assert s2.tolist() == [[1.0, 1.0, 0.0]]
    torch.testing.assert_close(
        cell.state["v"], torch.tensor([[0.0, 0.0, 0.15]], dtype=torch.float64)
    )


@pytest.mark.parametrize(
    "params",
    [
        {},
        dict(alpha=0.9, beta=0.05, theta=0.7, v_0=0.1),
        dict(alpha=1.0, beta=-0.1, theta=0.2, v_0=-0.5),
    ],
)
def test_matches_reference_over_many_steps(params):
    torch.manual_seed(0)
    xs = torch.rand(12, 2, 7, dtype=torch.float64)
    cell = Lif(**params).double()
    out = run_steps(cell, xs)
    # the parameters as stored (float32-rounded, then widened)
    stored = {k: getattr(cell, k).item() for k in ("alpha", "beta", "theta", "v_0")}
    for b in range(2):
        for i in range(7):
            spikes, states = lif_reference(xs[:, b, i].tolist(), **stored)
            assert out[:, b, i].tolist() == spikes
            assert cell.state["v"][b, i].item() == pytest.approx(states[-1], abs=1e-12)


def test_threshold_is_strict():
    cell = Lif(theta=0.5)
    assert cell(torch.tensor([0.5])).item() == 0.0  # v - theta = 0 -> no spike


def test_norm_applied_to_membrane():
    seen = []

    class Record(nn.Module):
        def forward(self, v):
            seen.append(v.clone())
            return 2 * v

    cell = Lif(norm=Record(), theta=0.5)
    x = torch.tensor([0.3])
    assert cell(x).item() == 1.0  # 2 * 0.3 = 0.6 > 0.5
    assert seen[0].item() == pytest.approx(0.3)
    cell(x)  # v_prev is 0 after reset -> integrates 0.3 again
    assert seen[1].item() == pytest.approx(0.3)


def test_multi_step_equals_single_steps():
    torch.manual_seed(1)
    xs = torch.randn(6, 3, 4, 5)
    a, b = Lif(alpha=0.6), Lif(alpha=0.6)
    single = run_steps(a, xs)
    b.step_mode = "m"
    multi = b(xs)
    assert torch.equal(single, multi)
    assert torch.equal(a.state["v"], b.state["v"])


def test_reset_states_restarts_from_zero():
    cell = Lif()
    x = torch.full((2, 3), 0.4)
    first = cell(x)
    second = cell(x)  # 0.4 + 0.12 = 0.52 -> spikes
    assert first.sum() == 0 and second.sum() == 6
    reset_states(nn.Sequential(cell))
    assert cell.state is None
    assert torch.equal(cell(x), first)
    # a new input shape after a reset builds a new state
    reset_states(cell)
    assert cell(torch.full((5,), 0.4)).shape == (5,)


def test_double_precision_and_half():
    cell = Lif()
    assert cell(torch.ones(2, dtype=torch.float64)).dtype == torch.float64
    assert cell.state["v"].dtype == torch.float64
    cell.reset()
    assert cell(torch.ones(2, dtype=torch.float16)).dtype == torch.float16


# --- analog mode ----------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_analog_memb_mode(index):
    cell = Lif(mode="analog", memb_mode=(index, None), alpha=0.5, beta=0.1, theta=1.0, v_0=-0.2)
    x = torch.tensor([0.8, 1.5, -0.4], dtype=torch.float64)
    out = cell(x)
    v = x  # integrate from 0
    spike = (v > 1.0).double()
    v_reset = torch.where(spike.bool(), torch.full_like(v, -0.2), v)
    v_new = 0.5 * v_reset + 0.1
    want = [v, v - 1.0, v_reset, v_new][index]
    torch.testing.assert_close(out, want)
    torch.testing.assert_close(cell.state["v"], v_new)


@pytest.mark.parametrize(
    ("act", "fn"),
    [
        ("relu", torch.relu),
        ("sigmoid", torch.sigmoid),
        ("tanh", torch.tanh),
        (torch.exp, torch.exp),
    ],
)
def test_analog_activation(act, fn):
    cell = Lif(mode="analog", memb_mode=(1, act), theta=0.5)
    x = torch.tensor([0.2, 0.9, -1.0])
    torch.testing.assert_close(cell(x), fn(x - 0.5))


def test_analog_mode_is_differentiable_to_input():
    cell = Lif(mode="analog", memb_mode=(3, "relu"))
    x = torch.tensor([0.2, 0.4, 1.0], requires_grad=True)
    cell(x).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


# --- soma parameters ------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2, 3), (2, 3, 5), (2, 3, 4, 5)])
def test_channel_share_shapes_and_values(shape):
    theta = [0.1, 0.5, 1.0]
    cell = Lif(soma_params="channel_share", input_channels=3, theta=theta, alpha=[0.1, 0.2, 0.3])
    assert cell.theta.shape == (3,)
    x = torch.full(shape, 0.6)
    out = cell(x)
    assert out.shape == shape
    assert cell.state["v"].shape == shape
    # channel 0 (theta .1) fires, channel 1 (.5) fires, channel 2 (1.0) does not
    per_channel = out.transpose(0, 1).reshape(3, -1)
    assert per_channel[0].eq(1).all() and per_channel[1].eq(1).all() and per_channel[2].eq(0).all()
    v = cell.state["v"].transpose(0, 1).reshape(3, -1)
    torch.testing.assert_close(v[2], torch.full_like(v[2], 0.3 * 0.6))
    assert v[0].eq(0).all() and v[1].eq(0).all()


def test_channel_share_scalar_values_broadcast():
    cell = Lif(soma_params="channel_share", input_channels=4, alpha=0.7)
    assert cell.alpha.tolist() == pytest.approx([0.7] * 4)
    assert cell.theta.tolist() == [0.5] * 4


def test_channel_share_other_channel_dim():
    cell = Lif(soma_params="channel_share", input_channels=2, channel_dim=-1, theta=[0.1, 0.9])
    out = cell(torch.full((3, 5, 2), 0.5))
    assert out[..., 0].eq(1).all() and out[..., 1].eq(0).all()


def test_channel_share_equals_all_share_when_values_equal():
    torch.manual_seed(2)
    xs = torch.rand(5, 2, 3, 4, 4)
    a = Lif(alpha=0.4, theta=0.6)
    b = Lif(soma_params="channel_share", input_channels=3, alpha=0.4, theta=0.6)
    assert torch.equal(run_steps(a, xs), run_steps(b, xs))


def test_buffers_when_not_learning():
    cell = Lif()
    assert list(cell.parameters()) == []
    assert set(cell.state_dict()) == {"alpha", "beta", "theta", "v_0"}


@pytest.mark.parametrize("soma_params", ["all_share", "channel_share"])
def test_learnable_parameters_get_gradients(soma_params):
    torch.manual_seed(3)
    cell = Lif(learn=True, soma_params=soma_params, input_channels=4, beta=0.05, v_0=0.1)
    names = {n for n, _ in cell.named_parameters()}
    assert names == {"alpha", "beta", "theta", "v_0"}
    xs = torch.rand(6, 8, 4)
    run_steps(cell, xs).sum().backward()
    for name, p in cell.named_parameters():
        assert p.grad is not None, name
        assert p.grad.shape == p.shape
        assert p.grad.abs().sum() > 0, name


def test_theta_gradient_through_surrogate():
    # one step, x = 0.6, theta = 0.5: d spike / d theta = -g(0.1) = -1 for Rectangle(0.5)
    cell = Lif(learn=True, theta=0.5)
    cell(torch.tensor([0.6])).sum().backward()
    assert cell.theta.grad.item() == pytest.approx(-1.0)
    cell.zero_grad()
    cell.reset()
    # outside the window (|v - theta| >= a) no gradient
    cell(torch.tensor([1.5])).sum().backward()
    assert cell.theta.grad.item() == 0.0


def test_spike_func_choice():
    assert Lif().spike_fn == Rectangle(0.5)
    assert Lif(spike_func="atan").spike_fn == ATan()
    assert Lif(spike_func=dict(type="atan", alpha=4.0)).spike_fn == ATan(4.0)
    x = torch.tensor([0.55], requires_grad=True)
    Lif(spike_func=dict(type="atan", alpha=4.0))(x).sum().backward()
    torch.testing.assert_close(x.grad, ATan(4.0).grad(torch.tensor([0.05])))


# --- noise ----------------------------------------------------------------------------


def test_noise_only_in_training():
    # memb_mode 1 (v - theta) is taken after the noise; theta 0 keeps it v
    x = torch.rand(4, 50) * 0.8
    cell = Lif(noise=0.5, mode="analog", memb_mode=(1, None), theta=0.0)
    clean = Lif(mode="analog", memb_mode=(1, None), theta=0.0)
    torch.manual_seed(0)
    noisy1 = cell(x)
    cell.reset()
    noisy2 = cell(x)
    assert not torch.equal(noisy1, noisy2)
    assert not torch.equal(noisy1, clean(x))
    # the noise scales with v's spread
    assert 0.1 < (noisy1 - x).std() / x.std() < 1.0
    cell.eval()
    cell.reset()
    out1 = cell(x)
    cell.reset()
    torch.manual_seed(123)
    out2 = cell(x)
    assert torch.equal(out1, out2)
    assert torch.equal(out1, x)


def test_noise_follows_bidl_per_sample_and_channel_and_spares_output_0():
    # BIDL: noise = randn * noise * std(v over the dims after the channel); memb_mode 0 is
    # the membrane before it, memb_mode 1 after it
    x = torch.rand(2, 3, 4, 5)
    pre, post = (Lif(noise=0.1, mode="analog", memb_mode=(i, None)) for i in (0, 1))
    assert torch.equal(pre(x), x)
    torch.manual_seed(7)
    got = post(x)
    torch.manual_seed(7)
    want = x + torch.randn_like(x) * (x.std(dim=(2, 3), keepdim=True) * 0.1) - 0.5
    torch.testing.assert_close(got, want)


def test_noise_is_zero_not_nan_where_the_spread_is_undefined():
    cell = Lif(noise=0.1, mode="analog", memb_mode=(1, None))
    assert torch.equal(cell(torch.ones(2, 3, 1, 1)), torch.full((2, 3, 1, 1), 0.5))


def test_zero_noise_consumes_no_randomness():
    torch.manual_seed(5)
    Lif()(torch.rand(3))
    a = torch.rand(1)
    torch.manual_seed(5)
    torch.rand(3)
    assert torch.equal(torch.rand(1), a)


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        (dict(mode="rate"), r"unknown mode 'rate'; use one of 'spike', 'analog'"),
        (
            dict(soma_params="per_neuron"),
            r"unknown soma_params 'per_neuron'.*'all_share', 'channel_share'",
        ),
        (dict(soma_params="channel_share"), r"'channel_share' needs input_channels"),
        (dict(memb_mode=(4, None)), r"memb_mode must be \(index, activation\) with index in 0-3"),
        (dict(memb_mode=0), r"memb_mode must be"),
        (
            dict(mode="analog", memb_mode=(0, "softplus")),
            r"unknown memb_mode activation 'softplus'.*'relu'",
        ),
        (dict(noise=-1), r"noise must be >= 0"),
        (dict(input_channels=0), r"input_channels must be a positive int"),
        (dict(alpha=[0.1, 0.2]), r"with soma_params='all_share' alpha must be one number"),
        (
            dict(soma_params="channel_share", input_channels=3, theta=[0.1, 0.2]),
            r"theta must be one number or 3 values",
        ),
        (dict(spike_func="gauss"), r"unknown spike function 'gauss'; known names"),
    ],
)
def test_argument_errors(kwargs, pattern):
    with pytest.raises(BidlError, match=pattern):
        Lif(**kwargs)


def test_channel_mismatch_error():
    cell = Lif(soma_params="channel_share", input_channels=4)
    with pytest.raises(BidlError) as err:
        cell(torch.zeros(2, 3, 5))
    msg = str(err.value)
    assert "Lif(input_channels=4)" in msg
    assert "expected 4 channels along dim 1, got 3" in msg
    assert "[2, 3, 5]" in msg
    # all_share with input_channels given also checks
    with pytest.raises(BidlError, match="expected 2 channels"):
        Lif(input_channels=2)(torch.zeros(1, 3))


# --- registry and builder -------------------------------------------------------------


def test_registered_names():
    assert NEURONS.get("lif") is Lif
    assert NEURONS.get("Lif") is Lif


def test_build_neuron():
    cell = build_neuron()
    assert type(cell) is Lif
    assert type(build_neuron("Lif", theta=0.3)) is Lif
    assert build_neuron("LIF", theta=0.3).theta.item() == pytest.approx(0.3)
    assert type(build_neuron(Lif)) is Lif
    norm = nn.BatchNorm1d(3)
    assert build_neuron("lif", norm=norm, input_channels=3).norm is norm


def test_build_neuron_errors():
    with pytest.raises(UnknownTypeError) as err:
        build_neuron("izhikevich")
    assert "unknown neuron 'izhikevich'; known neurons:" in str(err.value)
    assert "'lif'" in str(err.value)
    assert isinstance(err.value, BidlError)
    with pytest.raises(BidlError, match="takes no neuron_config"):
        build_neuron("lif", neuron_config=[0, 0, 0, 0, 0, 0])
    with pytest.raises(BidlError, match="neuron 'lif':.*tau"):
        build_neuron("lif", tau=2.0)
    with pytest.raises(BidlError, match="registered name"):
        build_neuron(3)


def test_deepcopy_and_state_dict_roundtrip():
    a = Lif(learn=True, soma_params="channel_share", input_channels=3, theta=[0.1, 0.2, 0.3])
    b = Lif(learn=True, soma_params="channel_share", input_channels=3)
    b.load_state_dict(a.state_dict())
    assert torch.equal(b.theta, a.theta)
    c = copy.deepcopy(a)
    assert torch.equal(c.theta, a.theta) and c.spike_fn == a.spike_fn


def test_set_step_mode_reaches_lif():
    cell = Lif()
    set_step_mode(nn.Sequential(cell), "m")
    assert cell(torch.zeros(4, 2, 3)).shape == (4, 2, 3)


def test_repr_mentions_options():
    r = repr(Lif(mode="analog", memb_mode=(2, "relu"), learn=True, noise=0.1))
    for part in [
        "mode='analog'",
        "memb_mode=(2, 'relu')",
        "alpha=0.3",
        "theta=0.5",
        "learn=True",
        "noise=0.1",
        "Rectangle(a=0.5)",
    ]:
        assert part in r


# --- properties -----------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
    steps=st.integers(1, 4),
    alpha=st.floats(0.0, 1.0),
    theta=st.floats(-1.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_spikes_binary_and_state_shape(shape, steps, alpha, theta, seed):
    gen = torch.Generator().manual_seed(seed)
    cell = Lif(alpha=alpha, theta=theta)
    for _ in range(steps):
        x = torch.randn(shape, generator=gen)
        out = cell(x)
        assert out.shape == x.shape
        assert cell.state["v"].shape == x.shape
        assert set(out.unique().tolist()) <= {0.0, 1.0}
        # where it fired the state is alpha * v_0 + beta = 0
        assert cell.state["v"][out.bool()].eq(0).all()
