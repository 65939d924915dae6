"""A whole sample in the network's multi-step form (``deploy/sequence_graph.py``) gives
what the step graph gives after its last step, for every shipped backbone; the ``torch``
engine runs ``Runtime.run`` that way where asked (on CUDA by default) and steps where the
network has no such form."""

import numpy as np
import pytest
import torch
from deploy_helpers import (
    build_small_backbone,
    distinct_backbones,
    example_input,
    load_checkpointed,
    randomize_norms,
    tiny_config_checkpoint,
    tiny_snn,
)

from bidl.deploy import Runtime, StepGraph, compile_config
from bidl.deploy.sequence_graph import SequenceGraph, sequence_form_difference
from bidl.models.backbones.base import SpikingBackbone


@pytest.mark.parametrize("name", distinct_backbones())
def test_the_whole_sample_equals_the_last_step(name):
    backbone = randomize_norms(build_small_backbone(name), seed=3)
    graph = StepGraph(backbone, batch_size=2)
    why = sequence_form_difference(graph)
    if why is not None:
        assert "runs its own time loop" in why
        return
    xs = example_input(backbone, batch=2, seed=5)
    expected = graph.run_sequence(xs)
    with torch.no_grad():
        whole = SequenceGraph(graph)(xs)
        again = graph.run_sequence(xs)  # the step graph is untouched by the whole-sample run
    assert whole.shape == expected.shape
    torch.testing.assert_close(whole, expected, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(again, expected, atol=0, rtol=0)


def test_uint8_input_is_scaled_as_in_the_step_graph():
    model = tiny_snn(seed=2)
    graph = StepGraph(model, batch_size=3, input_dtype="uint8", input_scale=0.5)
    counts = torch.randint(0, 3, (3, 4, 2, 8, 8), generator=torch.Generator().manual_seed(1))
    counts = counts.to(torch.uint8)
    with torch.no_grad():
        whole = SequenceGraph(graph)(counts)
    torch.testing.assert_close(whole, graph.run_sequence(counts), atol=2e-5, rtol=1e-4)


class OwnLoop(SpikingBackbone):
    """A backbone with its own time loop (a recurrence across steps outside its cells)."""

    def __init__(self):
        super().__init__((3,), timestep=2)
        self.body = torch.nn.Sequential(torch.nn.Linear(3, 2))
        self.head = torch.nn.Identity()
        self.finish()

    def forward_step(self, x_t):
        return super().forward_step(x_t) * 2.0


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    """The tiny config's model and its 'torch' artifact at batch 2."""
    config, work = tiny_config_checkpoint()
    folder = tmp_path_factory.mktemp("sample") / "torch"
    compile_config(config, "latest.pth", folder, work_dir=str(work), backend="torch", batch_size=2)
    return load_checkpointed(config, work), folder


def test_the_runtime_runs_samples_whole_where_asked(artifact, monkeypatch):
    model, folder = artifact
    xs = example_input(model.backbone, batch=5, seed=6)  # three batches, the last one padded
    expected = StepGraph(model, 5).run_sequence(xs).numpy()
    monkeypatch.setenv("BIDL_SAMPLE_GRAPH", "1")
    with Runtime(folder) as runtime:
        assert "samples run whole, in multi-step form" in runtime.engine.describe()
        whole = runtime.run(xs)
        single = runtime.run(xs[0])
    monkeypatch.setenv("BIDL_SAMPLE_GRAPH", "0")
    with Runtime(folder) as runtime:
        assert "samples run step by step" in runtime.engine.describe()
        stepped = runtime.run(xs)
    np.testing.assert_allclose(whole, stepped, atol=2e-5)
    np.testing.assert_allclose(whole, expected, atol=2e-5)
    np.testing.assert_allclose(single, whole[0], atol=1e-6)


def test_the_cpu_default_steps(artifact, monkeypatch):
    monkeypatch.delenv("BIDL_SAMPLE_GRAPH", raising=False)
    with Runtime(artifact[1]) as runtime:
        assert "samples run step by step" in runtime.engine.describe()


def test_a_network_with_its_own_loop_has_no_whole_sample_form():
    graph = StepGraph(OwnLoop().eval(), batch_size=1)
    assert sequence_form_difference(graph) == "OwnLoop runs its own time loop"


def test_compile_auto_leaves_a_cpu_runtime_uncompiled(artifact):
    with Runtime(artifact[1], compile="auto") as runtime:
        assert "torch.compile" not in runtime.engine.describe()
