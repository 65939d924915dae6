"""Model slicing with equal work per device: split points from measured layer times.

A pipeline of model segments runs at the pace of its slowest segment. Splitting by layer
count is far from equal: at batch 1 on a GPU a layer's time follows its kernel count more
than its FLOPs, on a CPU its FLOPs. So the split points are chosen from each body layer's
measured time for one timestep on the device that will run it: the contiguous partition
whose largest part is smallest. On CUDA each layer is timed as the engines run it, replayed
from a CUDA graph: timed eagerly, the host's kernel launches would be measured instead
(a split balanced on eager times left one H100 of two 28 % idle).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
from torch import nn

from ..neurons.base import reset_states
from ..neurons.step_mode import step_mode_of
from ..registry import BidlError


def best_partition(costs: Sequence[float], parts: int) -> list[list[int]]:
    """Split points ``[[0, a], [a, b], ..., [z, len(costs)]]`` of ``costs`` into ``parts``
    non-empty contiguous groups whose largest sum is the smallest possible (the earliest
    such split where several tie)."""
    n = len(costs)
    if not 1 <= parts <= n:
        raise BidlError(f"cannot split {n} layers into {parts} segments (1 to {n} possible)")
    prefix = [0.0]
    for cost in costs:
        prefix.append(prefix[-1] + float(cost))
    inf = float("inf")
    # best[k][i]: the smallest largest sum of the first i layers in k groups
    best = [[inf] * (n + 1) for _ in range(parts + 1)]
    cut = [[0] * (n + 1) for _ in range(parts + 1)]
    best[0][0] = 0.0
    for k in range(1, parts + 1):
        for i in range(k, n + 1):
            for j in range(k - 1, i):
                value = max(best[k - 1][j], prefix[i] - prefix[j])
                if value < best[k][i]:
                    best[k][i], cut[k][i] = value, j
    bounds, end = [], n
    for k in range(parts, 0, -1):
        start = cut[k][end]
        bounds.append([start, end])
        end = start
    return bounds[::-1]


def _graph_seconds(layer: nn.Module, x_t: torch.Tensor, replays: int) -> float:
    """GPU seconds of one call of ``layer`` on ``x_t`` (its cells holding states),
    replayed from a CUDA graph."""
    device = x_t.device
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(2):
            layer(x_t)
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        layer(x_t)
    graph.replay()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(replays):
        graph.replay()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1000.0 / replays


def _layer_inputs(backbone: nn.Module, xs: torch.Tensor, steps: int) -> list[torch.Tensor]:
    """Each body layer's input at step ``steps - 1`` (states left in the cells), the stem
    applied to the first layer's."""
    inputs: list[torch.Tensor] = []
    for t in range(steps):
        x_t = backbone.prepare_input(xs[:, t : t + 1])[:, 0]
        if backbone.stem is not None:
            x_t = backbone.stem(x_t)
        inputs = []
        for layer in backbone.body:
            inputs.append(x_t)
            x_t = layer(x_t)
    return inputs


@torch.inference_mode()
def layer_seconds(
    backbone: nn.Module, device: torch.device, batch: int = 1, steps: int = 3, repeats: int = 5
) -> list[float]:
    """Seconds one timestep spends in each body layer of ``backbone`` (its stem counted
    with layer 0) on ``device`` at batch ``batch``: on CUDA each layer replayed from a CUDA
    graph (``repeats`` * 20 replays), elsewhere the median over ``repeats`` runs of
    ``steps`` steps from reset states."""
    layers = list(backbone.body)
    backbone = backbone.to(device).eval()
    xs = backbone.example_input(batch=batch).to(device)
    steps = min(steps, xs.shape[1])
    with step_mode_of(backbone, "s"):
        if device.type == "cuda":
            reset_states(backbone)
            inputs = _layer_inputs(backbone, xs, steps)
            replays = 20 * repeats
            pairs = zip(layers, inputs, strict=True)
            seconds = [_graph_seconds(layer, x_t, replays) for layer, x_t in pairs]
            if backbone.stem is not None:
                first = backbone.prepare_input(xs[:, :1])[:, 0]
                seconds[0] += _graph_seconds(backbone.stem, first, replays)
            reset_states(backbone)
            return seconds
        samples: list[list[float]] = [[] for _ in layers]
        for repeat in range(repeats + 1):  # the first run warms up (kernels, caches)
            reset_states(backbone)
            spent = [0.0] * len(layers)
            for t in range(steps):
                x_t = backbone.prepare_input(xs[:, t : t + 1])[:, 0]
                start = time.perf_counter()
                if backbone.stem is not None:
                    x_t = backbone.stem(x_t)
                for index, layer in enumerate(layers):
                    x_t = layer(x_t)
                    now = time.perf_counter()
                    spent[index] += now - start
                    start = now
            if repeat:
                for index, value in enumerate(spent):
                    samples[index].append(value / steps)
    reset_states(backbone)
    return [sorted(values)[len(values) // 2] for values in samples]


def balanced_splits(
    backbone: nn.Module, parts: int, device: torch.device | str, batch: int = 1
) -> tuple[list[list[int]], list[float]]:
    """(split points of ``parts`` segments, each layer's measured seconds) for
    ``backbone`` (the whole model's) run on ``device`` at batch ``batch``."""
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise BidlError(f"--balance {device}: this machine has no CUDA device to time it on")
    costs = layer_seconds(backbone, device, batch)
    return best_partition(costs, parts), costs


__all__ = ["balanced_splits", "best_partition", "layer_seconds"]
