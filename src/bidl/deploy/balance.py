"""Model slicing with equal work per device: split points from measured layer times.

A pipeline of model segments runs at the pace of its slowest segment. Splitting by layer
count is far from equal: at batch 1 on a GPU a layer's time follows its kernel count more
than its FLOPs, on a CPU its FLOPs. So the split points are chosen from each body layer's
measured time for one timestep on the device that will run it: the contiguous partition
whose largest part is smallest.
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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.inference_mode()
def layer_seconds(
    backbone: nn.Module, device: torch.device, batch: int = 1, steps: int = 3, repeats: int = 5
) -> list[float]:
    """Seconds one timestep spends in each body layer of ``backbone`` (its stem counted
    with layer 0), the median over ``repeats`` runs of ``steps``
    steps from reset states, on ``device`` at batch ``batch``."""
    layers = list(backbone.body)
    xs = backbone.example_input(batch=batch).to(device)
    samples: list[list[float]] = [[] for _ in layers]
    backbone = backbone.to(device).eval()
    with step_mode_of(backbone, "s"):
        for repeat in range(repeats + 1):  # the first run warms up (kernels, caches)
            reset_states(backbone)
            spent = [0.0] * len(layers)
            for t in range(min(steps, xs.shape[1])):
                x_t = backbone.prepare_input(xs[:, t : t + 1])[:, 0]
                _sync(device)
                start = time.perf_counter()
                if backbone.stem is not None:
                    x_t = backbone.stem(x_t)
                for index, layer in enumerate(layers):
                    x_t = layer(x_t)
                    _sync(device)
                    now = time.perf_counter()
                    spent[index] += now - start
                    start = now
            if repeat:
                for index, value in enumerate(spent):
                    samples[index].append(value / min(steps, xs.shape[1]))
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
