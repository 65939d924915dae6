"""``bidl analyze``: firing rates, synaptic operations, energy, raster and membrane traces,
checked against counts the tests make on their own."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from conftest import TINY_CONFIG, write_tiny_config
from PIL import Image
from torch import nn

from bidl.analysis import EnergyModel, analyze_model, dense_macs, fan_out
from bidl.cli import main
from bidl.config import load_config
from bidl.datasets import build_dataset
from bidl.engine import build_model, save_checkpoint
from bidl.layers import Conv2dLif
from bidl.models.backbones import SpikingBackbone
from bidl.registry import BACKBONES


@BACKBONES.register_module(force=True)
class HandBuiltSpikes(SpikingBackbone):
    """A network whose spikes are known: a 1x1 convolution passes the OFF channel to a LIF
    with no memory (alpha 0) and threshold 0.5, so its spikes are exactly the OFF events;
    a 2x2 max-pool and a linear readout to 3 classes follow."""

    def __init__(self, timestep=4):
        super().__init__((2, 16, 16), timestep)
        conv = Conv2dLif(2, 1, 1, bias=False, pool=2, norm=False, alpha=0.0, theta=0.5)
        with torch.no_grad():
            conv.conv.weight.copy_(torch.tensor([1.0, 0.0]).reshape(1, 2, 1, 1))
        self.body = nn.Sequential(conv)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))


def brute_force_fan_out(conv: nn.Conv2d, height: int, width: int) -> np.ndarray:
    """Count, output by output and tap by tap, which input elements each output reads."""
    counts = np.zeros((conv.in_channels, height, width))
    (kh, kw), (sh, sw) = conv.kernel_size, conv.stride
    (ph, pw), (dh, dw) = conv.padding, conv.dilation
    out_h = (height + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    out_w = (width + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    per_group_in = conv.in_channels // conv.groups
    per_group_out = conv.out_channels // conv.groups
    for out_channel in range(conv.out_channels):
        group = out_channel // per_group_out
        for oy in range(out_h):
            for ox in range(out_w):
                for ky in range(kh):
                    for kx in range(kw):
                        iy, ix = oy * sh - ph + ky * dh, ox * sw - pw + kx * dw
                        if 0 <= iy < height and 0 <= ix < width:
                            for c in range(per_group_in):
                                counts[group * per_group_in + c, iy, ix] += 1
    return counts


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(2, 3, 3, padding=1),
        nn.Conv2d(2, 4, 3, stride=2, padding=1),
        nn.Conv2d(4, 4, 3, dilation=2, groups=2),
        nn.Conv2d(1, 5, (2, 3), stride=(1, 2)),
    ],
)
def test_fan_out_counts_every_output_an_input_reaches(conv):
    got = fan_out(conv, (conv.in_channels, 7, 9)).numpy()
    np.testing.assert_array_equal(got, brute_force_fan_out(conv, 7, 9))


def test_dense_macs_are_outputs_times_kernel_inputs():
    conv = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)
    assert dense_macs(conv, (4, 8, 8)) == 6 * 4 * 4 * (2 * 3 * 3)
    assert dense_macs(nn.Linear(10, 7), (10,)) == 70


def test_energy_model_refuses_negative_figures():
    with pytest.raises(Exception, match="pj_per_ac must be a number >= 0"):
        EnergyModel(pj_per_ac=-1.0)


def _hand_built_config(tmp_path):
    text = TINY_CONFIG.format(workers=0).replace(
        'type="SeqClif3Fc3DmItout", timestep=4, c0=2, h0=16, w0=16, nclass=3',
        'type="HandBuiltSpikes", timestep=4',
    )
    path = tmp_path / "hand-b8x0-blinks.py"
    path.write_text(text)
    return path


def _test_images(config, count):
    cfg = load_config(config)
    dataset = build_dataset(cfg.data.test)
    return torch.stack([dataset[i]["img"] for i in range(count)]).double()


def test_analyze_reports_the_known_spikes_of_a_hand_built_network(tmp_path, capsys):
    config = _hand_built_config(tmp_path)
    model = build_model(load_config(config))
    save_checkpoint(tmp_path / "hand.pth", model)
    out = tmp_path / "analysis"
    argv = ["analyze", str(config), "--checkpoint", str(tmp_path / "hand.pth")]
    argv += ["--samples", "12", "--out", str(out), "--neurons", "0:5", "--pj-per-ac", "2.0"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "analysis.json").read_text())

    imgs = _test_images(config, 12)  # [N, T, 2, 16, 16], binary
    spikes = imgs[:, :, 0]  # the LIF fires exactly where there is an OFF event
    pooled = spikes.reshape(12, 4, 8, 2, 8, 2).amax(dim=(3, 5))

    (neurons,) = report["neuron_layers"]
    assert neurons["name"] == "backbone.body.0.neuron"
    assert neurons["neurons"] == 256
    assert neurons["firing_rate"] == pytest.approx(float(spikes.mean()))
    assert neurons["spikes_per_sample"] == pytest.approx(float(spikes.sum()) / 12)
    per_neuron = spikes.mean(dim=(0, 1)).flatten().numpy()
    assert neurons["per_neuron_rate"]["silent_fraction"] == pytest.approx((per_neuron == 0).mean())
    assert neurons["per_neuron_rate"]["percentiles"]["50"] == pytest.approx(
        np.percentile(per_neuron, 50)
    )

    conv, linear = report["synaptic_layers"]
    assert conv["input_kind"] == linear["input_kind"] == "spikes"
    assert conv["sops_per_sample"] == pytest.approx(float(imgs.sum()) / 12)  # 1x1: fan-out 1
    assert linear["sops_per_sample"] == pytest.approx(3 * float(pooled.sum()) / 12)
    assert conv["ann_macs_per_timestep"] == 2 * 16 * 16
    assert linear["ann_macs_per_timestep"] == 64 * 3
    sops = conv["sops_per_sample"] + linear["sops_per_sample"]
    assert report["total"]["sops_per_sample"] == pytest.approx(sops)
    assert report["total"]["snn_energy_pj"] == pytest.approx(2.0 * sops)
    assert report["total"]["ann_energy_pj"] == pytest.approx(4.6 * (512 + 192))
    assert f"({sops:.0f})" in printed and "2.0 pJ per accumulate" in printed

    raster = json.loads((out / "raster.json").read_text())
    (layer,) = raster["layers"]
    assert layer["spikes_per_step"] == spikes[0].sum(dim=(1, 2)).tolist()
    fired = spikes[0].reshape(4, -1).sum(0).nonzero().flatten().tolist()
    assert len(fired) <= 100  # so the raster shows every neuron that fired
    assert layer["shown"] == fired
    times = spikes[0].reshape(4, -1)[:, fired].T
    assert layer["spike_times"] == [row.nonzero().flatten().tolist() for row in times]
    membrane = json.loads((out / "membrane.json").read_text())
    (traced,) = membrane["neurons"]
    assert traced["index"] == 5
    # no memory: the potential before firing is this step's input minus the threshold
    expected = (imgs[0, :, 0].reshape(4, -1)[:, 5] - 0.5).tolist()
    assert traced["potential"] == pytest.approx(expected)
    assert traced["spike_times"] == [t for t in range(4) if expected[t] > 0]

    for name, size in (
        ("activity", (1400, 450)),
        ("raster", (1000, 800)),
        ("membrane", (1000, 400)),
    ):
        with Image.open(out / f"{name}.png") as image:
            image.verify()
        with Image.open(out / f"{name}.png") as image:
            assert image.size == size
        assert ET.parse(out / f"{name}.svg").getroot().tag.endswith("svg")


def _record_layer_outputs(model):
    """Independent record: the input and each Conv2dLif's output (after its pooling)."""
    seen = {"input": [], "layers": {}}
    handles = []
    for name, module in model.named_modules():
        if isinstance(module, Conv2dLif):
            seen["layers"][name] = []

            def hook(_m, _args, out, _name=name):
                seen["layers"][_name].append(out.detach().double())

            handles.append(module.register_forward_hook(hook))
    return seen, handles


def _window_counts(size: int) -> np.ndarray:
    """How many positions of a 3x3, padding-1, stride-1 window cover each index."""
    return np.array([min(i + 1, size - 1) - max(i - 1, 0) + 1 for i in range(size)], float)


def test_analyze_sop_count_of_a_trained_model_matches_the_recorded_spikes(tmp_path, capsys):
    config = write_tiny_config(tmp_path)
    work_dir = tmp_path / "work"
    train = ["train", str(config), "--work-dir", str(work_dir), "--device", "cpu"]
    assert (
        main(
            [
                *train,
                "--cfg-options",
                "runner.max_epochs=1",
                "data.train.num_samples=16",
                "data.val.num_samples=12",
            ]
        )
        == 0
    )
    capsys.readouterr()
    out = tmp_path / "analysis"
    argv = ["analyze", str(config), "--checkpoint", "latest.pth", "--work-dir", str(work_dir)]
    assert main([*argv, "--samples", "10", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "analysis.json").read_text())
    by_name = {s["name"]: s for s in report["synaptic_layers"]}

    cfg = load_config(config)
    model = build_model(cfg)
    model.load_state_dict(torch.load(work_dir / "latest.pth", weights_only=True)["state_dict"])
    model.eval()
    seen, handles = _record_layer_outputs(model)
    imgs = _test_images(config, 10).float()
    with torch.no_grad():
        model(imgs, return_loss=False)
    for handle in handles:
        handle.remove()

    # conv l reads what reaches it (the input, then the pooled spikes of layer l - 1); with
    # 3x3 windows, padding 1 and stride 1 an input element at (i, j) reaches
    # out_channels * rows(i) * cols(j) outputs
    inputs = [imgs.transpose(0, 1)] + [
        torch.stack(seen["layers"][f"backbone.body.{i}"]) for i in range(2)
    ]
    total = 0.0
    for index, arriving in enumerate(inputs):
        conv = model.backbone.body[index].conv
        height, width = arriving.shape[-2:]
        reach = conv.out_channels * np.outer(_window_counts(height), _window_counts(width))
        sops = float((arriving.double().sum(dim=(0, 1, 2)).numpy() * reach).sum()) / 10
        assert by_name[f"backbone.body.{index}.conv"]["sops_per_sample"] == pytest.approx(sops)
        total += sops
    last = torch.stack(seen["layers"]["backbone.body.2"])  # flattened into the 512-unit layer
    readout = 512 * float(last.sum()) / 10
    assert by_name["backbone.head.1"]["sops_per_sample"] == pytest.approx(readout)
    total += readout
    # the ReLU readout layers get analog values: dense MACs at each of the 4 steps
    assert by_name["backbone.head.3"]["input_kind"] == "analog"
    assert by_name["backbone.head.3"]["snn_macs_per_sample"] == 4 * 512 * 128
    assert report["total"]["sops_per_sample"] == pytest.approx(total)
    assert f"SOPs ({total:.0f})" in printed


def test_analyze_model_counts_the_same_in_both_iteration_modes():
    batches = [
        {
            "img": (
                torch.rand(3, 4, 2, 16, 16, generator=torch.Generator().manual_seed(0)) < 0.3
            ).float()
        }
    ]
    reports = []
    for inner in (False, True):
        backbone = BACKBONES.get("SeqClif3Fc3DmItout")(timestep=4, c0=2, h0=16, w0=16, nclass=3)
        torch.manual_seed(0)
        for p in backbone.parameters():
            nn.init.normal_(p, std=0.3)
        backbone.use_inner_loop = inner
        model = _Wrap(backbone)
        reports.append(analyze_model(model, batches, progress=False))
    eim, iim = reports
    for a, b in zip(eim["neuron_layers"], iim["neuron_layers"], strict=True):
        assert a["firing_rate"] == pytest.approx(b["firing_rate"])
    assert eim["total"]["sops_per_sample"] == pytest.approx(iim["total"]["sops_per_sample"])


class _Wrap(nn.Module):
    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, img, return_loss=False):
        return self.backbone(img)


def test_analyze_names_a_wrong_neuron_layer(tmp_path, capsys):
    config = _hand_built_config(tmp_path)
    save_checkpoint(tmp_path / "hand.pth", build_model(load_config(config)))
    argv = ["analyze", str(config), "--checkpoint", str(tmp_path / "hand.pth")]
    argv += ["--samples", "2", "--out", str(tmp_path / "a"), "--neurons", "7:0"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "--neurons '7:0': no neuron layer '7'" in err and "backbone.body.0.neuron" in err
