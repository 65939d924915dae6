"""LIF+ (``LifPlus``): each switch follows BIDL's equation; states, parameters and draws as
BIDL's; both step modes agree."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bidl.models.backbones.base import SpikingBackbone
from bidl.neurons import LifPlus, build_neuron, lifplus_state_names, stateful_cells
from bidl.registry import BACKBONES, BidlError, build


def run(config, inputs, memb_mode=None, **soma):
    """One scalar neuron over ``inputs``: its spikes, or with ``memb_mode`` that analog
    value, and its states after each step."""
    mode = dict(mode="analog", memb_mode=(memb_mode, None)) if memb_mode is not None else {}
    cell = LifPlus(neuron_config=config, **mode, **soma)
    outs, states = [], []
    for x in inputs:
        outs.append(cell(torch.tensor([x])).item())
        states.append({name: value.item() for name, value in cell.state.items()})
    return outs, states


def test_all_switches_off_is_not_lif():
    # BIDL: u = x + tau (x + v_0 - v); v = alpha u'' + beta. Lif would give 1.0, 0.5
    outs, _ = run([0] * 6, [1.0, 0.0], memb_mode=0, tau_recip=0.5, theta=10.0, alpha=0.5)
    assert outs == [1.5, -0.375]


@pytest.mark.parametrize(
    "config,names",
    [
        ([0, 0, 0, 0, 0, 0], ("v",)),
        ([1, 0, 0, 0, 0, 0], ("v", "g")),
        ([2, 1, 0, 0, 0, 0], ("v", "g", "y")),
        ([0, 0, 1, 0, 0, 0], ("v", "cnt")),
        ([0, 0, 2, 0, 0, 0], ("v", "r", "w")),
        ([0, 0, 0, 2, 1, 2], ("v", "w")),
        ([2, 1, 2, 1, 2, 1], ("v", "g", "y", "r", "w")),
    ],
)
def test_state_names_follow_the_switches(config, names):
    assert lifplus_state_names(config) == names
    cell = LifPlus(neuron_config=config)
    cell.step_mode = "m"
    cell(torch.zeros(2, 3))
    assert tuple(cell.state) == names


def test_conductance_states_start_at_one_as_in_bidl():
    state = LifPlus(neuron_config=[2, 0, 2, 0, 0, 0]).init_state(torch.zeros(2))
    assert {name: value.tolist() for name, value in state.items()} == {
        "v": [0.0, 0.0],
        "g": [1.0, 1.0],
        "y": [1.0, 1.0],
        "r": [1.0, 1.0],
        "w": [0.0, 0.0],
    }


# Hand-computed sequences of one scalar neuron, from BIDL's step (see LifPlus's docstring).


def test_cobe_input_is_an_exponentially_decaying_conductance():
    # g0 = 1: g = 0.5, 0.25; u = tau (g + v_0 - v): 0.5 * 0.5, 0.5 * (0.25 - 0.125)
    outs, states = run(
        [1, 0, 0, 0, 0, 0], [0.0, 0.0], 0, epsilon=0.5, tau_recip=0.5, theta=10.0, alpha=0.5
    )
    assert outs == [0.25, 0.0625]
    assert [s["g"] for s in states] == [0.5, 0.25]


def test_coba_input_is_an_alpha_shaped_conductance():
    # y = 0.5; g = 0.5 + e * 0.5 * 0.5; u = tau g
    outs, states = run([2, 0, 0, 0, 0, 0], [0.0], 0, epsilon=0.5, tau_recip=1.0, theta=10.0)
    assert outs == pytest.approx([0.5 + 0.25 * math.e], rel=1e-6)
    assert states[0]["y"] == 0.5


def test_reversal_voltage_scales_the_conductance_by_the_distance_to_v_g():
    # g: 0.5, 0.25; fact2 = g (v_g - v): 1, 0.375; u = fact2 + v_0 - v: 1, 0.375 - 0.5
    outs, _ = run(
        [1, 1, 0, 0, 0, 0],
        [0.0, 0.0],
        0,
        epsilon=0.5,
        v_g=2.0,
        tau_recip=1.0,
        theta=10.0,
        alpha=0.5,
    )
    assert outs == [1.0, -0.125]


def test_absolute_refractoriness_blocks_the_scaled_input_for_the_counted_steps():
    # u = x + tau (x - v) while cnt = 0, u = x while cnt > 0; a spike sets cnt = 2
    outs, states = run([0, 0, 1, 0, 0, 0], [0.3] * 4, refractory_steps=2, tau_recip=1.0, alpha=0.0)
    assert outs == [1.0, 0.0, 0.0, 1.0]
    assert [s["cnt"] for s in states] == [2.0, 1.0, 0.0, 2.0]


def test_relative_refractoriness_pulls_towards_v_rr_and_drops_r_and_w_at_spikes():
    # r' = 0.5 r (r0 = 1), w' = 0.5 w; u = x + r' (v_rr - v) + w' (v_ar - v); spikes drop r
    # by q_r and w by b
    outs, states = run(
        [0, 0, 2, 0, 0, 0],
        [2.0, 2.0],
        0,
        tau_recip=0.0,
        epsilon_r=0.5,
        v_rr=-1.0,
        v_ar=0.0,
        q_r=0.25,
        epsilon_w=0.5,
        b=0.5,
        alpha=0.0,
    )
    assert outs == [1.5, 1.875]
    assert [(s["r"], s["w"]) for s in states] == [(0.25, -0.5), (-0.125, -0.75)]


def test_exponential_spike_initiation_fires_at_v_theta():
    # fact3 = v_0 - v + delta_t exp((v - theta) - delta_t); the threshold is v_theta
    soma = dict(tau_recip=1.0, delta_t=0.5, theta=0.0, v_theta=10.0, alpha=1.0)
    outs, _ = run([0, 0, 0, 1, 0, 0], [0.0, 0.0], 0, **soma)
    first = 0.5 * math.exp(-0.5)
    assert outs == pytest.approx([first, -first + 0.5 * math.exp(first - 0.5)], rel=1e-6)
    outs, _ = run([0, 0, 0, 1, 0, 0], [0.0], 1, **soma)
    assert outs == pytest.approx([first - 10.0], rel=1e-6)


def test_quadratic_spike_initiation_has_no_theta():
    # fact3 = (v_0 - v)(v_c - v): 0, then (0 - 1)(2 - 1)
    outs, _ = run(
        [0, 0, 0, 2, 0, 0], [0.5, 0.0], 0, tau_recip=1.0, v_c=2.0, v_theta=10.0, alpha=1.0
    )
    assert outs == [1.0, -1.0]
    assert "theta" not in LifPlus(neuron_config=[0, 0, 0, 2, 0, 0]).state_dict()


def test_adaptive_current_decays_and_drops_by_b_at_each_spike():
    # w' = 0.5 w; u = x + w'; spikes at the first two steps: w = -1, then -1.5
    outs, states = run(
        [0, 0, 0, 0, 1, 0], [1.25] * 3, 0, tau_recip=0.0, epsilon_w=0.5, b=1.0, alpha=0.0
    )
    assert outs == [1.25, 0.75, 0.5]
    assert [s["w"] for s in states] == [-1.0, -1.5, -0.75]


def test_subthreshold_coupling_drives_w_by_the_membrane():
    # w' = 0.5 w + tau a (v - v_w): 0, then 0.5 * 1.5; u = x + tau (x - v) + w'
    outs, states = run(
        [0, 0, 0, 0, 2, 0],
        [1.0, 0.0],
        0,
        tau_recip=0.5,
        a=1.0,
        v_w=0.0,
        epsilon_w=0.5,
        b=0.0,
        theta=10.0,
        alpha=1.0,
    )
    assert outs == [1.5, 0.0]
    assert [s["w"] for s in states] == [0.0, 0.75]


def test_exponential_decay_ignores_the_reset():
    # v = tau (x + v_0 - v): 0.5 although the neuron fired, then 0.5 * (0 - 0.5)
    spikes, _ = run([0, 0, 0, 0, 0, 1], [1.0, 0.0], tau_recip=0.5)
    outs, _ = run([0, 0, 0, 0, 0, 1], [1.0, 0.0], 3, tau_recip=0.5)
    assert spikes == [1.0, 0.0] and outs == [0.5, -0.25]


def test_linear_decay_adds_the_input_and_subtracts_v_leak():
    outs, _ = run([0, 0, 0, 0, 0, 2], [1.0, 0.0], 3, tau_recip=0.5, v_leak=0.25, theta=10.0)
    assert outs == [0.75, 0.5]


@pytest.mark.parametrize("memb_decay", [0, 2])
def test_training_noise_reaches_only_linear_decay(memb_decay):
    config = [1, 0, 0, 0, 0, memb_decay]
    torch.manual_seed(0)
    cell = LifPlus(neuron_config=config, noise=0.5, mode="analog", memb_mode=(3, None))
    x = torch.rand(5, 4, 3, 6, 6)
    cell.step_mode = "m"
    noisy = cell(x)
    cell.eval()
    cell.reset()
    assert torch.equal(noisy, cell(x)) == (memb_decay == 0)


def test_unset_soma_parameters_are_drawn_in_bidls_order():
    torch.manual_seed(0)
    cell = LifPlus(neuron_config=[1, 1, 2, 1, 2, 2])
    assert cell.soma_names == (
        "epsilon", "v_g", "tau_recip", "v_0", "epsilon_r", "v_rr", "v_ar", "q_r",
        "epsilon_w", "b", "theta", "v_theta", "delta_t", "a", "v_w", "v_leak",
    )  # fmt: skip
    torch.manual_seed(0)
    draws = iter(torch.rand(14).tolist())
    for name in cell.soma_names:
        want = {"v_0": 0.0, "theta": 0.5}.get(name)
        assert getattr(cell, name).item() == (next(draws) if want is None else want), name
    torch.manual_seed(0)
    per_channel = LifPlus(neuron_config=[1, 0, 0, 0, 0, 0], soma_params="channel_share",
                          input_channels=3)  # fmt: skip
    torch.manual_seed(0)
    assert torch.equal(per_channel.epsilon, torch.rand(3))


switch_values = st.tuples(*(st.integers(0, 2) if i != 1 else st.integers(0, 1) for i in range(6)))


@settings(max_examples=25, deadline=None)
@given(config=switch_values.filter(lambda c: not (c[1] and c[0] == 0)))
def test_single_and_multi_step_agree_for_every_switch_combination(config):
    torch.manual_seed(0)
    x_seq = torch.randn(6, 2, 3)
    cell = LifPlus(neuron_config=list(config), mode="analog", memb_mode=(3, None))
    single = []
    for x in x_seq:
        single.append(cell(x))
    cell.reset()
    cell.step_mode = "m"
    assert torch.equal(torch.stack(single), cell(x_seq))


def test_reversal_voltage_without_conductance_is_refused():
    with pytest.raises(BidlError, match=r"rev_volt=1 .* needs conductance input"):
        LifPlus(neuron_config=[0, 1, 0, 0, 0, 0])


def test_out_of_range_switch_names_its_choices():
    with pytest.raises(BidlError, match=r"fire_refrac must be one of 0: none; 1: absolute"):
        LifPlus(neuron_config=[0, 0, 3, 0, 0, 0])


def test_neuron_config_of_wrong_length_is_refused():
    with pytest.raises(BidlError, match="neuron_config needs 6 values"):
        LifPlus(neuron_config=[1, 0])


def test_unknown_soma_parameter_is_refused():
    with pytest.raises(BidlError, match=r"unknown soma parameter\(s\) \['tau'\]"):
        LifPlus(tau=0.5)


def test_only_the_soma_parameters_a_switch_uses_are_kept():
    cell = LifPlus(neuron_config=[1, 1, 0, 0, 0, 2])
    assert cell.soma_names == ("epsilon", "v_g", "tau_recip", "v_0", "theta", "v_leak")
    assert list(cell.state_dict()) == list(cell.soma_names)


def test_a_soma_parameter_the_switches_do_not_use_is_refused():
    with pytest.raises(BidlError, match=r"soma parameter\(s\) \['alpha'\] are not used"):
        LifPlus(neuron_config=[0, 0, 0, 0, 0, 1], alpha=0.5)


def test_bidls_six_switch_keywords_equal_neuron_config():
    bidl_style = LifPlus(input_accum=2, rev_volt=True, fire_refrac=1, memb_decay=2)
    assert list(bidl_style.switches) == [2, 1, 1, 0, 0, 2]
    with pytest.raises(BidlError, match="give the six switches one way"):
        LifPlus(neuron_config=[1, 0, 0, 0, 0, 0], input_accum=1)


def test_build_neuron_makes_lifplus_by_name():
    cell = build_neuron("lifplus", [1, 0, 0, 0, 0, 0], input_channels=4)
    assert isinstance(cell, LifPlus) and cell.state_names == ("v", "g")


@pytest.mark.parametrize(
    "backbone",
    [
        dict(type="SeqClif5Fc2CdItout", h=64, w=64),
        dict(type="ResNetLifItout", depth=10, h=16, w=16, stem_channels=8, base_channels=8),
        dict(type="FastTextItout", vocab_size=20, embedding_dim=4, hidden_dim=8),
    ],
)
def test_neuron_lifplus_switches_every_cell_of_a_backbone(backbone):
    model = build(dict(backbone, neuron="lifplus", neuron_config=[2, 0, 1, 0, 0, 0]), BACKBONES)
    assert isinstance(model, SpikingBackbone)
    cells = [cell for _, cell in stateful_cells(model)]
    assert cells and all(
        isinstance(c, LifPlus) and c.state_names == ("v", "g", "y", "cnt") for c in cells
    )


def test_clifplus_names_default_to_bidls_lifplus_switches():
    model = build(dict(type="SeqClifplus3Fc3DmItout", h0=16, w0=16), BACKBONES)
    cells = [cell for _, cell in stateful_cells(model)]
    assert all(isinstance(c, LifPlus) and list(c.switches) == [1, 0, 0, 0, 0, 0] for c in cells)
