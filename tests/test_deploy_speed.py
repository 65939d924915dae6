"""What keeps a deployed graph fast, tested on the CPU: per-step streaming latency, the
switch of CUDA graphs, and the grid's data prefetching (the CUDA paths: test_deploy_gpu.py)."""

import numpy as np
import pytest
import torch
from deploy_helpers import example_input, tiny_artifact, tiny_snn

from bidl.deploy import Runtime
from bidl.deploy.engines import cuda_graphs_enabled
from bidl.deploy.prefetch import Prefetcher
from bidl.registry import BidlError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")


def test_streaming_reports_per_step_latency_percentiles():
    runtime = Runtime(tiny_artifact())
    assert runtime.step_latency_ms() == {"p50": 0.0, "p99": 0.0, "max": 0.0}
    xs = example_input(tiny_snn(), batch=2)
    runtime.reset()
    for t in range(xs.shape[1]):
        runtime.step(xs[:, t])
    latency = runtime.step_latency_ms()
    assert len(runtime._step_seconds) == xs.shape[1]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["max"]
    assert latency["max"] == pytest.approx(1000 * max(runtime._step_seconds))


def test_a_refused_step_is_not_counted():
    runtime = Runtime(tiny_artifact())
    with pytest.raises(BidlError, match="one timestep"):
        runtime.step(np.zeros((2, 3, 8, 8), np.float32))
    assert runtime.step_latency_ms()["max"] == 0.0


@pytest.mark.parametrize(
    ("value", "enabled"), [(None, True), ("1", True), ("0", False), ("false", False), ("no", False)]
)
def test_cuda_graphs_are_on_unless_switched_off(monkeypatch, value, enabled):
    if value is None:
        monkeypatch.delenv("BIDL_CUDA_GRAPHS", raising=False)
    else:
        monkeypatch.setenv("BIDL_CUDA_GRAPHS", value)
    assert cuda_graphs_enabled() is enabled


def test_cpu_engines_launch_eagerly():
    assert "providers CPUExecutionProvider" in Runtime(tiny_artifact()).engine.describe()


def test_prefetcher_prepares_ahead_in_order_and_ends():
    prepared = []

    def prepare(item):
        prepared.append(item)
        return [torch.full((2,), float(item))]

    feed = Prefetcher(iter(range(5)), prepare, torch.device("cpu"), depth=2)
    got = [float(feed.next()[0][0]) for _ in range(5)]
    assert got == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert feed.next() is None and feed.next() is None
    assert prepared == list(range(5))


def test_prefetcher_hands_a_failure_to_the_consumer():
    def prepare(item):
        if item == 2:
            raise BidlError("grid input: the artifact takes [N, T, 2, 8, 8] samples")
        return [item]

    feed = Prefetcher(iter(range(4)), prepare, torch.device("cpu"))
    assert feed.next() == [0] and feed.next() == [1]
    with pytest.raises(BidlError, match="the artifact takes"):
        feed.next()
