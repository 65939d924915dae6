"""Split points of equal work (``deploy/balance.py``): the best contiguous partition of the
layers' measured times, checked against trying every split."""

import itertools
import random

import pytest
import torch

from bidl.deploy.balance import balanced_splits, best_partition, layer_seconds
from bidl.registry import BACKBONES, BidlError


def brute_force(costs, parts):
    n, best = len(costs), None
    for cuts in itertools.combinations(range(1, n), parts - 1):
        bounds = list(zip((0, *cuts), (*cuts, n), strict=True))
        worst = max(sum(costs[a:b]) for a, b in bounds)
        best = worst if best is None else min(best, worst)
    return best


@pytest.mark.parametrize(
    ("costs", "parts", "expected"),
    [
        ([1, 1, 1, 1, 4], 2, [[0, 4], [4, 5]]),
        ([5, 1, 1, 1, 1, 1], 2, [[0, 1], [1, 6]]),
        ([1, 2, 3, 4], 1, [[0, 4]]),
        ([2, 2, 2, 2], 4, [[0, 1], [1, 2], [2, 3], [3, 4]]),
    ],
)
def test_known_partitions(costs, parts, expected):
    assert best_partition(costs, parts) == expected


def test_the_largest_part_is_as_small_as_trying_every_split():
    rng = random.Random(3)
    for _ in range(40):
        costs = [rng.uniform(0.1, 5.0) for _ in range(rng.randint(2, 9))]
        parts = rng.randint(1, len(costs))
        bounds = best_partition(costs, parts)
        assert len(bounds) == parts and bounds[0][0] == 0 and bounds[-1][1] == len(costs)
        assert all(a < b for a, b in bounds)
        assert all(bounds[i][1] == bounds[i + 1][0] for i in range(parts - 1))
        worst = max(sum(costs[a:b]) for a, b in bounds)
        assert worst == pytest.approx(brute_force(costs, parts))


def test_more_segments_than_layers_is_one_error():
    with pytest.raises(BidlError, match="cannot split 3 layers into 4 segments"):
        best_partition([1, 2, 3], 4)


def test_every_body_layer_is_timed():
    backbone = BACKBONES.build(
        dict(type="SeqClif3Fc3DmItout", timestep=3, h=16, w=16, nclass=4)
    ).eval()
    seconds = layer_seconds(backbone, torch.device("cpu"), steps=2, repeats=2)
    assert len(seconds) == len(backbone.body) and all(s > 0 for s in seconds)
    bounds, costs = balanced_splits(backbone, 2, "cpu")
    assert len(costs) == len(backbone.body) and bounds[-1][1] == len(backbone.body)
