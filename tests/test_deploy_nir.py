"""NIR export: BIDL's discrete LIF networks written as NIR graphs, exact under forward
Euler at the graph's time step; a batch norm on the input current folded into the layer
before it; what NIR cannot express refused in one error naming the layout to train."""

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from deploy_helpers import (
    blink_batch,
    build_small_backbone,
    example_input,
    randomize_norms,
    tiny_snn,
)
from torch import nn

from bidl.cli import main
from bidl.deploy.nir_export import export_nir, to_nir
from bidl.engine.checkpoint import save_checkpoint
from bidl.layers import Conv2dLif
from bidl.models.backbones.base import SpikingBackbone
from bidl.neurons.lif import Lif
from bidl.registry import BidlError

nir = pytest.importorskip("nir")

ROOT = Path(__file__).resolve().parents[1]


def simulate(graph, xs: torch.Tensor) -> torch.Tensor:
    """A small NIR interpreter (float64): forward Euler at ``metadata['dt']`` for LIF nodes,
    the other nodes as their definitions say; returns the output node's values [T, B, ...]."""
    order, node = [], "input"
    following = dict(graph.edges)
    while node != "output":
        node = following[node]
        order.append(node)
    dt = graph.metadata["dt"]
    membrane = {}
    outputs = []
    for x_t in xs.transpose(0, 1).double():
        for name in order[:-1]:
            n = graph.nodes[name]
            if isinstance(n, nir.Conv2d):
                ints = [
                    tuple(int(v) for v in np.atleast_1d(p))
                    for p in (n.stride, n.padding, n.dilation)
                ]
                x_t = F.conv2d(x_t, torch.from_numpy(n.weight), torch.from_numpy(n.bias),
                               *ints, int(n.groups))  # fmt: skip
            elif isinstance(n, nir.Affine):
                x_t = x_t @ torch.from_numpy(n.weight).T + torch.from_numpy(n.bias)
            elif isinstance(n, nir.Flatten):
                x_t = x_t.flatten(n.start_dim + 1, n.end_dim if n.end_dim < 0 else n.end_dim + 1)
            elif isinstance(n, nir.SumPool2d):
                x_t = F.avg_pool2d(x_t, tuple(n.kernel_size), tuple(n.stride), divisor_override=1)
            elif isinstance(n, nir.Threshold):
                x_t = (x_t > torch.from_numpy(n.threshold)).double()
            elif isinstance(n, nir.LIF):
                tau, r = torch.from_numpy(n.tau), torch.from_numpy(n.r)
                v = membrane.get(name, torch.zeros_like(x_t))
                v = v + dt / tau * (torch.from_numpy(n.v_leak) - v + r * x_t)
                spikes = (v > torch.from_numpy(n.v_threshold)).double()
                membrane[name] = torch.where(spikes > 0, torch.from_numpy(n.v_reset), v)
                x_t = spikes
            elif type(n).__name__ == "ReLU":
                x_t = x_t.clamp(min=0)
            else:
                raise AssertionError(f"the test interpreter does not know {type(n).__name__}")
        outputs.append(x_t)
    return torch.stack(outputs)


def assert_nir_matches(model, xs, dt=1.0):
    graph = to_nir(model, dt=dt)
    with torch.no_grad():
        expected = model.double()(xs.double())
    got = simulate(graph, xs).mean(dim=0)  # the model's 'mean' aggregation
    assert (got - expected).abs().max().item() <= 1e-9
    assert expected.abs().max() > 0  # the comparison saw spikes reach the readout


class CurrentNormSnn(SpikingBackbone):
    """conv -> batch norm -> LIF -> max pool -> flatten -> linear -> batch norm -> LIF ->
    linear: batch norm on the input currents, written with plain modules."""

    def __init__(self, timestep=4, channels=2, size=8, nclass=5):
        super().__init__((channels, size, size), timestep, "mean")
        self.body = nn.Sequential(
            nn.Conv2d(channels, 4, 3, padding=1),
            nn.BatchNorm2d(4),
            Lif(alpha=0.5, theta=0.4),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(4 * (size // 2) ** 2, 16),
            nn.BatchNorm1d(16),
            Lif(alpha=0.3, theta=0.5),
        )
        self.head = nn.Linear(16, nclass)


def train_briefly(model: nn.Module, steps: int = 12) -> nn.Module:
    """Adam on ``blink_batch`` data: weights and batch-norm statistics of a trained net."""
    torch.manual_seed(3)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    for step in range(steps):
        xs, labels = blink_batch(16, seed=200 + step)
        loss = F.cross_entropy(model(xs), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model.eval()


@functools.cache
def trained_current_norm_snn() -> CurrentNormSnn:
    return train_briefly(CurrentNormSnn())


def current_norm_snn() -> CurrentNormSnn:
    """A fresh copy of the trained ``CurrentNormSnn`` (trained once per session)."""
    model = CurrentNormSnn()
    model.load_state_dict(trained_current_norm_snn().state_dict())
    return model.eval()


def supports_norm_on_current() -> bool:
    try:
        layer = Conv2dLif(2, 4, 3, pool=2, norm="current", pool_position="before")
    except (BidlError, TypeError):
        return False
    return getattr(layer, "norm", None) is not None


# ------------------------------------------------------------------ exact graphs


def test_nir_graph_equals_bidl_lif_with_folded_batch_norm_and_max_pool():
    model = tiny_snn(seed=5)
    assert_nir_matches(model, example_input(model, batch=4, seed=5) * 1.5)


def test_nir_graph_equals_bidl_with_channel_shared_soma_parameters():
    alpha = torch.tensor([0.1, 0.3, 0.5, 0.8])
    model = tiny_snn(seed=6, norm=False)
    conv_neuron = model.body[0].neuron
    conv_neuron.soma_params = "channel_share"
    conv_neuron.alpha = alpha
    conv_neuron.theta = torch.tensor([0.2, 0.4, 0.6, 0.8])
    conv_neuron.v_0 = torch.tensor([0.0, -0.1, 0.1, 0.0])
    assert_nir_matches(model, example_input(model, batch=4, seed=6))


def test_a_zoo_model_pooling_before_its_cells_names_the_pooling_to_train():
    message = refusal(build_small_backbone("SeqClif7Fc1Cd"))  # BIDL's mp=True layout
    assert "\n  body.0.pool (MaxPool2d): max pooling maps only on spikes (0 or 1), not on " in (
        message
    )
    assert "pool_position='after'" in message


def test_a_batch_norm_on_the_current_folds_into_the_layer_before_it():
    model = current_norm_snn()
    graph = to_nir(model)
    assert "body.1" not in graph.nodes and "body.6" not in graph.nodes  # the norms
    assert list(graph.nodes["body.2"].v_leak.reshape(-1)[:1]) == [0.0]  # LIF left unshifted
    assert_nir_matches(model, blink_batch(6, seed=9)[0])


@pytest.mark.skipif(not supports_norm_on_current(), reason="Conv2dLif(norm='current') missing")
def test_a_trained_network_of_the_norm_on_current_layout_exports_exactly():
    model = train_briefly(tiny_snn(seed=4, norm="current"))
    gains = [m.weight.abs().max().item() for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert gains and max(gains) != 1.0  # trained: the norm is not the identity
    graph = to_nir(model)
    assert {"body.0.conv", "body.0.neuron", "body.0.pool", "body.2.fc", "head"} <= set(graph.nodes)
    assert "body.0.norm" not in graph.nodes
    assert_nir_matches(model, blink_batch(6, seed=10)[0])


def test_a_graph_for_another_time_step_is_exact_under_euler_at_that_step():
    model = current_norm_snn()
    xs = blink_batch(4, seed=11)[0]
    graph = to_nir(model, dt=1e-4)
    assert graph.metadata["dt"] == 1e-4
    np.testing.assert_allclose(graph.nodes["body.2"].tau, to_nir(model).nodes["body.2"].tau * 1e-4)
    assert_nir_matches(model, xs, dt=1e-4)


def test_a_time_step_that_is_not_positive_is_refused():
    with pytest.raises(BidlError, match=r"NIR export: dt must be a positive number .*got 0"):
        to_nir(tiny_snn(), dt=0)


# ------------------------------------------------------------------ refusals


def refusal(model, **kwargs) -> str:
    with pytest.raises(BidlError) as err:
        to_nir(model, **kwargs)
    return str(err.value)


def test_a_membrane_norm_whose_leak_reaches_one_names_the_layout_to_train():
    model = tiny_snn(seed=5)
    model.body[0].neuron.norm.weight.data.fill_(4.0)  # gain ~4: leak factor 0.3 * 4 > 1
    message = refusal(model)
    assert message.startswith("TinySnn has 1 part(s) without an exact NIR form:\n")
    assert re.search(
        r"\n  body\.0\.neuron \(Lif\): its leak factor \(alpha times the membrane batch norm's "
        r"gain\) reaches [0-9.]+ >= 1 in 4 of 4 channels, which no NIR time constant gives; "
        r"train with batch norm on the input current \(norm='current'\), which folds into the "
        r"weights exactly\n",
        message,
    )
    assert message.endswith("with leak factors below 1.")


def test_relu_readouts_are_named_together_with_the_readout_to_train():
    message = refusal(build_small_backbone("SeqClif3Fc3Dm"))
    expected = (
        f"NIR {nir.__version__} has no ReLU node; train a readout of Linear layers alone or of "
        f"spiking FcLif layers"
    )
    assert message.splitlines()[:3] == [
        "SeqClif3Fc3Dm has 2 part(s) without an exact NIR form:",
        f"  head.2 (ReLU): {expected}",
        f"  head.4 (ReLU): {expected}",
    ]


def test_relu_is_exported_where_nir_has_the_node(monkeypatch):
    @dataclass(eq=False)
    class ReLU(nir.NIRNode):  # what a NIR release with a ReLU node would offer
        input_type: dict
        output_type: dict

    monkeypatch.setattr(nir, "ReLU", ReLU, raising=False)
    model = tiny_snn(seed=2)
    model.head = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 5))
    graph = to_nir(model)
    assert isinstance(graph.nodes["head.1"], ReLU)
    assert_nir_matches(model, example_input(model, batch=4, seed=2) * 1.5)


def test_analog_neurons_are_refused_naming_the_layer():
    message = refusal(tiny_snn(mode="analog"))
    assert "\n  body.0.neuron (Lif): analog-mode outputs have no NIR node; train spiking " in (
        message
    )


def test_a_nonzero_beta_is_refused():
    assert "body.0.neuron (Lif): beta != 0 shifts the first step" in refusal(tiny_snn(beta=0.1))


def test_max_pool_on_analog_values_is_refused():
    model = tiny_snn()
    model.body.insert(0, nn.MaxPool2d(1))  # pools the input frames, which are not spikes
    assert "body.0 (MaxPool2d): max pooling maps only on spikes (0 or 1)" in refusal(model)


@pytest.mark.skipif(not supports_norm_on_current(), reason="Conv2dLif(pool_position=) missing")
def test_pooling_the_current_before_the_cell_names_the_pool_position_to_train():
    model = tiny_snn(seed=1, norm="current")
    model.body[0] = Conv2dLif(2, 4, 3, padding=1, pool=2, norm="current", pool_position="before")
    model = randomize_norms(model).eval()
    message = refusal(model)
    assert "  body.0.pool (MaxPool2d): max pooling maps only on spikes (0 or 1), not on " in (
        message
    )
    assert "pool_position='after'" in message


def test_a_residual_network_is_refused_block_by_block():
    message = refusal(build_small_backbone("ResNetLif"))
    assert "\n  body.0 (BasicBlock): a composite block (residual or branching) is not a chain" in (
        message
    )


def test_a_batch_norm_on_its_own_is_refused():
    model = tiny_snn(seed=1, norm=False)
    model.body.insert(0, nn.BatchNorm2d(2).eval())  # normalises the input frames
    assert "body.0 (BatchNorm2d): a batch norm that does not directly follow" in refusal(model)


# ------------------------------------------------------------------ files and the command


def test_export_writes_a_nir_file_that_reads_back(tmp_path):
    path = export_nir(tiny_snn(), tmp_path / "tiny.nir", dt=0.5)
    graph = nir.read(path)
    written = to_nir(tiny_snn(), dt=0.5)
    assert sorted(graph.nodes) == sorted(written.nodes)
    assert sorted(map(tuple, graph.edges)) == sorted(written.edges)
    np.testing.assert_array_equal(
        graph.nodes["body.0.neuron"].tau, written.nodes["body.0.neuron"].tau
    )
    np.testing.assert_array_equal(
        graph.nodes["body.0.neuron"].v_reset, written.nodes["body.0.neuron"].v_reset
    )
    assert graph.metadata["aggregation"] == "mean" and graph.metadata["dt"] == 0.5
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.nir"]


def test_bidl_export_of_an_inexpressible_model_is_one_clear_error(tmp_path, capsys):
    from deploy_helpers import tiny_config_checkpoint

    config, work_dir = tiny_config_checkpoint()
    argv = ["export", str(config), "--checkpoint", "latest.pth", "--work-dir", str(work_dir)]
    assert main([*argv, "--out", str(tmp_path / "x.nir")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bidl export: error: SeqClif3Fc3Dm has ")
    assert "head.2 (ReLU)" in err and "NIR export covers" in err
    assert "Traceback" not in err
    assert not (tmp_path / "x.nir").exists()


BACKBONE_MODULE = """
from test_deploy_nir import CurrentNormSnn
from bidl.registry import BACKBONES

BACKBONES.register_module(name="NirCurrentNormSnn", module=CurrentNormSnn, force=True)
"""


def test_bidl_export_writes_a_trained_norm_on_current_model(tmp_path, capsys):
    from conftest import write_tiny_config

    config = write_tiny_config(tmp_path)
    text = config.read_text().replace(
        'imports=["tiny_dataset"]', 'imports=["tiny_dataset", "nir_snn"]'
    )
    text = re.sub(
        r'backbone=dict\(type="SeqClif3Fc3DmItout"[^)]*\)',
        'backbone=dict(type="NirCurrentNormSnn")',
        text,
    )
    config.write_text(text)
    (tmp_path / "nir_snn.py").write_text(BACKBONE_MODULE)
    model = current_norm_snn()
    classifier = nn.Module()  # the checkpoint of an ImageClassifier holds backbone.*
    classifier.backbone = model
    save_checkpoint(tmp_path / "work" / "latest.pth", classifier)
    out = tmp_path / "trained.nir"
    argv = [
        "export",
        str(config),
        "--checkpoint",
        "latest.pth",
        "--work-dir",
        str(tmp_path / "work"),
    ]
    assert main([*argv, "--out", str(out), "--dt", "1e-4"]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    graph = nir.read(out)
    xs = blink_batch(4, seed=12)[0]
    with torch.no_grad():
        expected = model.double()(xs.double())
    assert (simulate(graph, xs).mean(dim=0) - expected).abs().max().item() <= 1e-9


def test_the_nir_floor_allows_the_v_reset_the_export_writes():
    text = (ROOT / "pyproject.toml").read_text()
    floors = re.findall(r'"nir>=([0-9.]+)"', text)
    assert len(floors) == 2  # the deploy and test extras
    assert all(tuple(map(int, f.split("."))) >= (1, 0, 6) for f in floors)


# ------------------------------------------------------------------ importers
# Run where snnTorch / NIRTorch are installed (not dependencies of bidl): the settings
# docs/deployment.md gives for each importer make their networks equal bidl's.


def test_snntorch_imports_the_graph_exactly_with_the_documented_settings():
    snntorch_import = pytest.importorskip("snntorch.import_nir")
    import snntorch.utils

    model = current_norm_snn()
    model.body[3] = nn.Identity()  # snnTorch's importer has no SumPool2d / Threshold
    model.body[5] = nn.Linear(4 * 8 * 8, 16)
    model = train_briefly(model)
    xs = blink_batch(4, seed=13)[0]
    net = snntorch_import.import_from_nir(to_nir(model, dt=1e-4))  # its dt is 1e-4
    for module in net.modules():
        if isinstance(module, nn.Flatten):  # NIR's dims leave out the batch
            module.start_dim += 1
    snntorch.utils.reset(net)
    with torch.no_grad():
        got = torch.stack([net(xs[:, t])[0] for t in range(xs.shape[1])]).mean(0)
        expected = model(xs)
    assert torch.allclose(got, expected, atol=1e-5)


def test_nirtorch_runs_the_graph_exactly_with_the_documented_node_map():
    nirtorch = pytest.importorskip("nirtorch")

    class EulerLif(nn.Module):
        def __init__(self, node, dt):
            super().__init__()
            for key in ("tau", "r", "v_leak", "v_threshold", "v_reset"):
                self.register_buffer(key, torch.from_numpy(getattr(node, key)).float())
            self.dt = dt

        def forward(self, x, state=None):
            v = torch.zeros_like(x) if state is None else state
            v = v + self.dt / self.tau * (self.v_leak - v + self.r * x)
            spikes = (v > self.v_threshold).float()
            return spikes, torch.where(spikes > 0, self.v_reset, v)

    def affine(node):  # NIRTorch's own mapping leaves the bias out
        layer = nn.Linear(node.weight.shape[1], node.weight.shape[0])
        layer.weight.data = torch.from_numpy(node.weight).float()
        layer.bias.data = torch.from_numpy(node.bias).float()
        return layer

    model = current_norm_snn()
    graph = to_nir(model)
    node_map = {
        nir.LIF: lambda node: EulerLif(node, graph.metadata["dt"]),
        nir.Affine: affine,
        nir.Flatten: lambda node: nn.Flatten(node.start_dim + 1, node.end_dim),
        nir.Threshold: lambda node: ThresholdModule(node.threshold),
    }
    net = nirtorch.nir_to_torch(graph, node_map)
    xs = blink_batch(4, seed=14)[0]
    state, outputs = None, []
    with torch.no_grad():
        for t in range(xs.shape[1]):
            y, state = net(xs[:, t], state)
            outputs.append(y)
        expected = model(xs)
    assert torch.allclose(torch.stack(outputs).mean(0), expected, atol=1e-5)


class ThresholdModule(nn.Module):
    def __init__(self, threshold):
        super().__init__()
        self.register_buffer("threshold", torch.from_numpy(threshold).float())

    def forward(self, x):
        return (x > self.threshold).float()
