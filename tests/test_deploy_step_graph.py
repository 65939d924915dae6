"""The state-explicit step graph, built generically from the state protocol (eager)."""

import pytest
import torch
from deploy_helpers import example_input, tiny_snn
from torch import nn

from bidl.deploy import StepGraph
from bidl.layers import FcLif
from bidl.models.backbones.base import SpikingBackbone
from bidl.registry import BACKBONES, BidlError


@pytest.mark.parametrize("amode", ["mean", "sum", "pick"])
def test_step_graph_run_equals_the_model_for_each_aggregation(amode):
    model = tiny_snn(amode=amode)
    xs = example_input(model, batch=3)
    with torch.no_grad():
        expected = model(xs)
    assert torch.equal(StepGraph(model, batch_size=3).run_sequence(xs), expected)


def test_states_are_cells_in_module_order_then_the_aggregator():
    graph = StepGraph(tiny_snn(), batch_size=2)
    assert [(s.name, s.shape) for s in graph.states] == [
        ("body.0.neuron.v", (2, 4, 8, 8)),
        ("body.2.neuron.v", (2, 16)),
        ("aggregate.acc", (2, 5)),
        ("aggregate.steps", (1,)),
    ]


def test_state_initial_values_come_from_each_cells_init_state():
    class LifPlusNet(SpikingBackbone):
        def __init__(self):
            super().__init__((6,), 3)
            # COBE input accumulation carries a conductance 'g' that starts at 1
            self.body = nn.Sequential(
                FcLif(6, 5, neuron="lifplus", neuron_config=[1, 0, 0, 0, 0, 0])
            )
            self.head = nn.Linear(5, 2)

    graph = StepGraph(LifPlusNet().eval(), batch_size=2)
    inits = {s.name: s.init for s in graph.states}
    assert inits["body.0.neuron.g"] == 1.0
    assert inits["body.0.neuron.v"] == 0.0


def test_the_user_model_keeps_no_state_after_building_or_running_a_graph():
    model = tiny_snn()
    graph = StepGraph(model, batch_size=2)
    graph.run_sequence(example_input(model, batch=2))
    assert all(cell.state is None for cell in model.modules() if hasattr(cell, "state"))


def test_a_cell_that_runs_twice_per_step_is_refused():
    class SharedCell(SpikingBackbone):
        def __init__(self):
            super().__init__((4,), 2)
            layer = FcLif(4, 4)
            self.body = nn.Sequential(layer, layer)
            self.head = nn.Identity()

    with pytest.raises(BidlError, match="runs 2 times per timestep"):
        StepGraph(SharedCell().eval())


def test_preprocessing_that_merges_steps_is_refused():
    if "ResNetLif" not in BACKBONES:
        pytest.skip("ResNetLif is not registered")
    model = BACKBONES.get("ResNetLif")(
        timestep=4, h=16, w=16, stem_channels=4, base_channels=4, down_t=[2, "max"]
    )
    with pytest.raises(BidlError, match=r"prepare_input works on whole sequences.*down_t=\[1"):
        StepGraph(model.eval())


def test_a_module_without_the_backbone_protocol_is_refused():
    with pytest.raises(BidlError, match="has no 'forward_step'.*needs a SpikingBackbone"):
        StepGraph(nn.Linear(3, 3))


def test_a_model_fresh_from_training_keeps_its_state_and_still_compiles():
    model = tiny_snn().train()
    model(example_input(model, batch=2)).sum().backward()  # cells now hold graph states
    kept = model.body[0].neuron.state["v"]
    graph = StepGraph(model.eval(), batch_size=2)
    assert model.body[0].neuron.state["v"] is kept
    xs = example_input(model, batch=2, seed=1)
    with torch.no_grad():
        assert torch.equal(graph.run_sequence(xs), model(xs))
