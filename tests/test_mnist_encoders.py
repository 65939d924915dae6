"""MNIST from IDX files, and the spike encoders chosen in a config."""

from __future__ import annotations

import numpy as np
import pytest
from format_writers import write_idx

from bidl.datasets import build_dataset
from bidl.datasets.mnist import read_idx
from bidl.datasets.pipelines.encoders import Population, Rate, Temporal
from bidl.registry import BidlError


def make_mnist(root, count=6, compress=False):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
    labels = np.arange(count, dtype=np.uint8) % 10
    for prefix in ("train", "t10k"):
        write_idx(root / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(root / f"{prefix}-labels-idx1-ubyte", labels, compress)
    return images, labels


def test_idx_reader_recovers_images_and_labels(tmp_path):
    images, labels = make_mnist(tmp_path)
    np.testing.assert_array_equal(read_idx(tmp_path / "train-images-idx3-ubyte"), images)
    np.testing.assert_array_equal(read_idx(tmp_path / "train-labels-idx1-ubyte"), labels)


def test_mnist_reads_gzipped_idx_files(tmp_path):
    images, labels = make_mnist(tmp_path, compress=True)
    dataset = build_dataset(dict(type="MNIST", data_prefix=str(tmp_path), test_mode=True))
    np.testing.assert_array_equal(dataset[2]["img"], images[2][None])
    assert dataset.get_gt_labels().tolist() == labels.tolist()


def test_truncated_idx_file_is_named(tmp_path):
    make_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(BidlError, match=r"train-images-idx3-ubyte: header says \(6, 28, 28\)"):
        build_dataset(dict(type="MNIST", data_prefix=str(tmp_path)))


def test_mnist_encoder_from_the_config_makes_a_spike_train(tmp_path):
    make_mnist(tmp_path)
    cfg = dict(
        type="MNIST",
        data_prefix=str(tmp_path),
        encoder=dict(type="Population", time_steps=6, pop_neuron=4),
    )
    img = build_dataset(cfg)[0]["img"]
    assert img.shape == (6, 4, 28, 28) and img.dtype == np.float32
    assert set(np.unique(img)) <= {0.0, 1.0}


def test_rate_spike_frequency_follows_intensity():
    np.random.seed(0)
    img = np.array([[[0, 64, 191, 255]]], dtype=np.uint8)
    spikes = Rate(timesteps=4000)({"img": img})["img"]
    np.testing.assert_allclose(spikes.mean(axis=0)[0, 0], img[0, 0] / 255.0, atol=0.03)


def test_poisson_rate_counts_have_mean_intensity_times_gain():
    np.random.seed(1)
    spikes = Rate(timesteps=4000, gain=3.0, mode="poisson")(
        {"img": np.full((1, 1, 1), 0.5, np.float32)}
    )["img"]
    assert abs(spikes.mean() - 1.5) < 0.05


def test_temporal_code_fires_once_earlier_for_brighter_pixels():
    img = np.array([[[1.0, 0.5, 0.0]]], dtype=np.float32)
    spikes = Temporal(timesteps=5)({"img": img})["img"][:, 0, 0]
    assert spikes.sum(axis=0).tolist() == [1, 1, 0]
    assert np.argmax(spikes[:, 0]) == 0 and np.argmax(spikes[:, 1]) == 2


def test_population_neuron_nearest_the_intensity_fires_first():
    img = np.array([[[0.0, 1.0]]], dtype=np.float32)
    spikes = Population(timesteps=8, pop_neuron=3)({"img": img})["img"]
    assert spikes.shape == (8, 3, 1, 2)
    assert spikes[0, 0, 0, 0] == 1 and spikes[0, 2, 0, 1] == 1
    assert spikes[:, 2, 0, 0].sum() == 0  # far from its centre: no spike


def test_float_images_outside_unit_range_are_refused():
    with pytest.raises(BidlError, match=r"float images must lie in \[0, 1\]"):
        Temporal(timesteps=3)({"img": np.full((1, 2, 2), 3.0, np.float32)})
