"""LIF+ (``LifPlus``): all switches off is LIF; each switch follows its equation."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bidl.layers import Lif2d, Lif2dPlus
from bidl.models.backbones.base import SpikingBackbone
from bidl.neurons import Lif, LifPlus, build_neuron, lifplus_state_names, stateful_cells
from bidl.registry import BACKBONES, BidlError, build


def run(cell, inputs, memb_mode=None):
    """Run a cell over a scalar sequence; with ``memb_mode`` it outputs that analog value."""
    if memb_mode is not None:
        cell.mode, cell._memb_index = "analog", memb_mode
    cell.step_mode = "m"
    return cell(torch.tensor(inputs).reshape(-1, 1)).flatten().tolist()


def lifplus(config, **soma):
    return LifPlus(neuron_config=config, **soma)


@pytest.mark.parametrize(
    "options",
    [{}, {"mode": "analog", "memb_mode": (2, "tanh")}, {"alpha": 0.7, "beta": 0.1, "v_0": -0.2}],
)
def test_all_switches_off_equals_lif_exactly(options):
    torch.manual_seed(0)
    x_seq = torch.randn(12, 4, 3)
    lif, plus = Lif(**options), LifPlus(neuron_config=[0] * 6, **options)
    lif.step_mode = plus.step_mode = "m"
    assert torch.equal(lif(x_seq), plus(x_seq))
    assert torch.equal(lif.state["v"], plus.state["v"])


def test_all_switches_off_equals_lif_in_gradients_with_channel_share_and_norm():
    torch.manual_seed(0)
    lif = Lif2d(3, soma_params="channel_share", alpha=[0.2, 0.3, 0.4])
    plus = Lif2dPlus(3, soma_params="channel_share", alpha=[0.2, 0.3, 0.4])
    plus.load_state_dict(lif.state_dict())
    lif.step_mode = plus.step_mode = "m"
    x_lif = torch.randn(5, 2, 3, 4, 4, requires_grad=True)
    x_plus = x_lif.detach().clone().requires_grad_()
    lif(x_lif).sum().backward(), plus(x_plus).sum().backward()
    assert torch.equal(x_lif.grad, x_plus.grad)


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


# Hand-computed sequences: one scalar neuron, theta high enough not to fire unless said.


def test_cobe_input_is_an_exponentially_decaying_conductance():
    # g0 = 1: g = 0.5, 0.25, 0.125; v' = v + g with v = 0.5 v'
    cell = lifplus([1, 0, 0, 0, 0, 0], epsilon=0.5, theta=10.0, alpha=0.5)
    assert run(cell, [0.0, 0.0, 0.0], memb_mode=0) == [0.5, 0.5, 0.375]


def test_coba_input_is_an_alpha_shaped_conductance():
    # y: 0.5, 0.25; g: 0.5 + 0.25e, 0.25 + 0.25e; v' = 0.5 v'_prev + g
    cell = lifplus([2, 0, 0, 0, 0, 0], epsilon=0.5, theta=10.0, alpha=0.5)
    out = run(cell, [0.0, 0.0], memb_mode=0)
    assert out == pytest.approx([0.5 + 0.25 * math.e, 0.5 + 0.375 * math.e], rel=1e-6)


def test_reversal_voltage_scales_the_conductance_by_the_distance_to_v_g():
    # g: 0.5, 0.25; I = g (v_g - v): 0.5 * 2 = 1, 0.25 * (2 - 0.5) = 0.375
    cell = lifplus([1, 1, 0, 0, 0, 0], epsilon=0.5, v_g=2.0, theta=10.0, alpha=0.5)
    assert run(cell, [0.0, 0.0], memb_mode=0) == [1.0, 0.875]


def test_absolute_refractoriness_blocks_input_for_the_counted_steps():
    cell = lifplus([0, 0, 1, 0, 0, 0], refractory_steps=2, alpha=0.0)
    assert run(cell, [1.0] * 6) == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0]


def test_relative_refractoriness_pulls_towards_v_rr_after_spikes():
    # r' = 0.5 r (r0 = 1), +1 per spike; v' = 2 + r' (v_rr - 0) with v_rr = -1
    cell = lifplus(
        [0, 0, 2, 0, 0, 0], epsilon_r=0.5, v_rr=-1.0, q_r=1.0, epsilon_w=1.0, b=0.0, alpha=0.0
    )
    assert run(cell, [2.0, 2.0, 2.0], memb_mode=0) == [1.5, 1.25, 1.125]


def test_exponential_spike_initiation_adds_the_exponential_term():
    # F = tau delta_t exp((v - v_theta) / delta_t) = 0.25 exp(2 v)
    cell = lifplus(
        [0, 0, 0, 1, 0, 0], tau_recip=0.5, delta_t=0.5, v_theta=0.0, theta=10.0, alpha=1.0
    )
    out = run(cell, [0.0, 0.0], memb_mode=0)
    assert out == pytest.approx([0.25, 0.25 + 0.25 * math.exp(0.5)], rel=1e-6)


def test_quadratic_spike_initiation_adds_the_quadratic_term():
    # F = tau (v - v_0)(v - v_c) = 0.5 * 0.5 * (0.5 - 1) = -0.125 at the second step
    cell = lifplus([0, 0, 0, 2, 0, 0], tau_recip=0.5, v_c=1.0, theta=10.0, alpha=1.0)
    assert run(cell, [0.5, 0.0], memb_mode=0) == [0.5, 0.375]


def test_adaptive_current_grows_by_b_at_each_spike_and_decays():
    # w' = 0.5 w; v' = 1.25 - w'; spikes at the first two steps: w = 1, then 1.5
    cell = lifplus([0, 0, 0, 0, 1, 0], epsilon_w=0.5, b=1.0, alpha=0.0)
    assert run(cell, [1.25, 1.25, 1.25], memb_mode=0) == [1.25, 0.75, 0.5]


def test_subthreshold_coupling_drives_w_by_the_membrane():
    # w' = 0.5 w + tau a (v - v_w): 0, then 0.5 * 1 * 1; v' = v + x - w'
    cell = lifplus(
        [0, 0, 0, 0, 2, 0], epsilon_w=0.5, tau_recip=0.5, a=1.0, b=0.0, theta=10.0, alpha=1.0
    )
    assert run(cell, [1.0, 0.0], memb_mode=0) == [1.0, 0.5]


def test_exponential_decay_relaxes_towards_v_0():
    cell = lifplus([0, 0, 0, 0, 0, 1], tau_recip=0.5, theta=10.0)
    assert run(cell, [1.0, 0.0], memb_mode=3) == [0.5, 0.25]


def test_linear_decay_subtracts_v_leak():
    cell = lifplus([0, 0, 0, 0, 0, 2], v_leak=0.25, theta=10.0)
    assert run(cell, [1.0, 0.0], memb_mode=3) == [0.75, 0.5]


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
    extra = set(dict(cell.named_buffers())) - {"alpha", "beta", "theta", "v_0"}
    assert extra == {"epsilon", "v_g", "v_leak"}


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
