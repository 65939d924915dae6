"""The training loop's firing-rate monitor (neurons) counts what the analysis monitor counts."""

from __future__ import annotations

import pytest
import torch

from bidl.analysis.activity import ActivityMonitor
from bidl.neurons import FiringRateMonitor
from bidl.registry import BACKBONES


@pytest.mark.parametrize("name", ["SeqClif3Fc3DmItout", "SeqClif3Fc3DmIt"])
def test_rates_equal_the_analysis_monitor_in_both_modes(name):
    torch.manual_seed(0)
    model = BACKBONES.build(dict(type=name, timestep=4, h=16, w=16)).eval()
    xs = (torch.rand(3, 4, 2, 16, 16) < 0.4).float()
    with FiringRateMonitor(model) as fast, ActivityMonitor(model, synapses=False) as full:
        model(xs)
        model(xs[:2])
    rates, expected = fast.firing_rates(), full.firing_rates()
    assert set(rates) == set(expected) and rates
    for cell, rate in rates.items():
        assert rate == pytest.approx(expected[cell], rel=1e-12)
    assert any(0 < rate < 1 for rate in rates.values())  # not a trivial all-zero network


def test_analog_cells_report_no_rate():
    model = BACKBONES.build(dict(type="SeqClif3Fc3DmItout", timestep=2, h=16, w=16, cmode="analog"))
    with FiringRateMonitor(model) as monitor:
        model(torch.rand(2, 2, 2, 16, 16))
    conv_cells = [name for name in monitor.counts if name.startswith("body.0.")]
    assert conv_cells and monitor.counts[conv_cells[0]].values > 0  # the cell ran
    assert not set(conv_cells) & set(monitor.firing_rates())
