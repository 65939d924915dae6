"""NIR export: BIDL's discrete LIF networks written as NIR graphs, exact under forward
Euler at dt = 1; what NIR cannot express is refused with the layer's name."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from deploy_helpers import build_small_backbone, example_input, randomize_norms, tiny_snn
from torch import nn

from bidl.cli import main
from bidl.deploy.nir_export import export_nir, to_nir
from bidl.registry import BidlError

nir = pytest.importorskip("nir")


def simulate(graph, xs: torch.Tensor) -> torch.Tensor:
    """A small NIR interpreter (float64): forward Euler with dt = 1 for LIF nodes, the
    other nodes as their definitions say; returns the output node's values [T, B, ...]."""
    order, node = [], "input"
    following = dict(graph.edges)
    while node != "output":
        node = following[node]
        order.append(node)
    membrane = {}
    outputs = []
    for x_t in xs.transpose(0, 1).double():
        for name in order[:-1]:
            n = graph.nodes[name]
            if isinstance(n, nir.Conv2d):
                x_t = F.conv2d(x_t, torch.from_numpy(n.weight), torch.from_numpy(n.bias),
                               n.stride, n.padding, n.dilation, n.groups)  # fmt: skip
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
                v = v + (torch.from_numpy(n.v_leak) - v) / tau + r * x_t / tau
                spikes = (v > torch.from_numpy(n.v_threshold)).double()
                membrane[name] = torch.where(spikes > 0, torch.from_numpy(n.v_reset), v)
                x_t = spikes
            else:
                raise AssertionError(f"the test interpreter does not know {type(n).__name__}")
        outputs.append(x_t)
    return torch.stack(outputs)


def assert_nir_matches(model, xs):
    graph = to_nir(model)
    with torch.no_grad():
        expected = model.double()(xs.double())
    got = simulate(graph, xs).mean(dim=0)  # the model's 'mean' aggregation
    assert (got - expected).abs().max().item() <= 1e-9


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


def test_zoo_conv_lif_network_exports_exactly():
    model = randomize_norms(build_small_backbone("SeqClif7Fc1Cd"))
    assert_nir_matches(model, example_input(model, batch=2))


def test_relu_readout_is_refused_naming_the_layer():
    model = build_small_backbone("SeqClif3Fc3Dm")
    with pytest.raises(BidlError, match=r"^head\.2 \(ReLU\): NIR has no node for it"):
        to_nir(model)


def test_analog_neurons_are_refused_naming_the_layer():
    model = tiny_snn(mode="analog")
    with pytest.raises(BidlError, match=r"^body\.0\.neuron \(Lif\): analog-mode outputs"):
        to_nir(model)


def test_a_nonzero_beta_is_refused():
    model = tiny_snn(beta=0.1)
    with pytest.raises(BidlError, match=r"body\.0\.neuron \(Lif\): beta != 0"):
        to_nir(model)


def test_max_pool_on_analog_values_is_refused():
    model = tiny_snn()
    model.body.insert(0, nn.MaxPool2d(1))  # pools the input frames, which are not spikes
    with pytest.raises(BidlError, match=r"body\.0 \(MaxPool2d\): max pooling maps only on spikes"):
        to_nir(model)


def test_export_writes_a_nir_file_that_reads_back(tmp_path):
    path = export_nir(tiny_snn(), tmp_path / "tiny.nir")
    graph = nir.read(path)
    written = to_nir(tiny_snn())
    assert sorted(graph.nodes) == sorted(written.nodes)
    assert sorted(map(tuple, graph.edges)) == sorted(written.edges)
    np.testing.assert_array_equal(
        graph.nodes["body.0.neuron"].tau, written.nodes["body.0.neuron"].tau
    )
    assert graph.metadata["aggregation"] == "mean"
    assert [p.name for p in tmp_path.iterdir()] == ["tiny.nir"]


def test_bidl_export_of_an_inexpressible_model_is_one_clear_line(tmp_path, capsys):
    from deploy_helpers import tiny_config_checkpoint

    config, work_dir = tiny_config_checkpoint()
    argv = ["export", str(config), "--checkpoint", "latest.pth", "--work-dir", str(work_dir)]
    assert main([*argv, "--out", str(tmp_path / "x.nir")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("bidl export: error: ") and "NIR export covers" in err
    assert "Traceback" not in err
    assert not (tmp_path / "x.nir").exists()
