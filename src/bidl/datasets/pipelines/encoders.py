"""Spike encoders of static images: an image ``[C, H, W]`` (uint8 0..255 or float in
[0, 1]) becomes a spike train ``[T, C', H, W]`` float32 of zeros and ones (``Rate`` in
Poisson mode gives counts). Chosen in a config as a pipeline step or as ``MNIST``'s
``encoder``; ``time_steps`` is BIDL's name for ``timesteps``."""

from __future__ import annotations

import numpy as np

from ...registry import PIPELINES, BidlError
from .latency import latency_spike_train


def _timesteps(timesteps, time_steps, where: str) -> int:
    if timesteps is not None and time_steps is not None and timesteps != time_steps:
        raise BidlError(f"{where}: give timesteps or time_steps (BIDL's name), not both")
    value = timesteps if timesteps is not None else time_steps
    value = 10 if value is None else value
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise BidlError(f"{where}: timesteps must be an int >= 1, got {value!r}")
    return int(value)


def intensity(results: dict, where: str) -> np.ndarray:
    """The sample's ``img`` as float32 in [0, 1], shape ``[C, H, W]``."""
    if "img" not in results:
        raise BidlError(f"{where}: the sample has no 'img'; it has keys {sorted(results)}")
    img = np.asarray(results["img"])
    if img.ndim == 2:
        img = img[None]
    if img.ndim != 3:
        raise BidlError(f"{where}: 'img' must be [C, H, W] or [H, W], got shape {img.shape}")
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0
    img = img.astype(np.float32)
    if img.size and (img.min() < 0 or img.max() > 1):
        raise BidlError(f"{where}: float images must lie in [0, 1], got [{img.min()}, {img.max()}]")
    return img


def first_spike_train(values: np.ndarray, timesteps: int, threshold: float) -> np.ndarray:
    """One spike per value above ``threshold``, at step ``round((1 - v) * (T - 1))``:
    the stronger the value, the earlier the spike."""
    steps = np.rint((1.0 - values) * (timesteps - 1)).astype(np.int64)
    train = np.arange(timesteps).reshape(-1, *([1] * values.ndim)) == steps[None]
    return (train & (values > threshold)[None]).astype(np.float32)


@PIPELINES.register_module()
class Rate:
    """Rate coding: at every step a pixel of intensity ``v`` spikes with probability
    ``v * gain`` (``mode="bernoulli"``) or emits ``Poisson(v * gain)`` spikes
    (``mode="poisson"``)."""

    def __init__(self, timesteps=None, time_steps=None, gain: float = 1.0, mode="bernoulli"):
        self.timesteps = _timesteps(timesteps, time_steps, "Rate")
        if mode not in ("bernoulli", "poisson"):
            raise BidlError(f"Rate: mode must be 'bernoulli' or 'poisson', got {mode!r}")
        if not gain > 0:
            raise BidlError(f"Rate: gain must be > 0, got {gain!r}")
        self.gain, self.mode = float(gain), mode

    def __call__(self, results: dict) -> dict:
        rate = intensity(results, "Rate") * self.gain
        shape = (self.timesteps, *rate.shape)
        if self.mode == "poisson":
            spikes = np.random.poisson(np.broadcast_to(rate, shape))
        else:
            spikes = np.random.random_sample(shape) < np.minimum(rate, 1.0)
        results["img"] = spikes.astype(np.float32)
        return results


@PIPELINES.register_module()
class Temporal:
    """Time-to-first-spike coding: each pixel above ``threshold`` spikes once, at step
    ``round((1 - v) * (T - 1))``; bright pixels fire first. Given ``tau`` (BIDL's configs),
    BIDL's latency coding instead, with its keywords (``latency_spike_train``; threshold
    0.01 unless given; ``interpolate`` is accepted and unused, as in BIDL)."""

    def __init__(
        self, timesteps=None, time_steps=None, threshold: float | None = None, tau=None,
        linear=False, normalize=False, first_spike_time=0, clip=False, on_target=1.0,
        off_target=0.0, epsilon=1e-7, interpolate=False,
    ):  # fmt: skip
        self.timesteps = _timesteps(timesteps, time_steps, "Temporal")
        self.threshold = float(threshold if threshold is not None else 0.01 if tau else 0.0)
        self.latency = None if tau is None else dict(
            tau=float(tau), linear=bool(linear), normalize=bool(normalize), clip=bool(clip),
            first_spike_time=first_spike_time, on_target=on_target, off_target=off_target,
            epsilon=epsilon,
        )  # fmt: skip

    def __call__(self, results: dict) -> dict:
        values = intensity(results, "Temporal")
        if self.latency is not None:
            results["img"] = latency_spike_train(
                values, self.timesteps, self.threshold, **self.latency
            )
            return results
        results["img"] = first_spike_train(values, self.timesteps, self.threshold)
        return results


@PIPELINES.register_module()
class Population:
    """Population coding with Gaussian receptive fields: ``pop_neuron`` neurons per
    pixel with centres evenly spread over [0, 1] and width ``1 / (beta * (n - 1))``;
    each fires once, earlier the closer the intensity is to its centre (not at all
    below ``threshold`` response). Output ``[T, C * pop_neuron, H, W]``."""

    def __init__(
        self,
        timesteps=None,
        time_steps=None,
        pop_neuron: int = 5,
        beta: float = 1.5,
        threshold: float = 0.1,
    ):
        self.timesteps = _timesteps(timesteps, time_steps, "Population")
        if isinstance(pop_neuron, bool) or not isinstance(pop_neuron, int) or pop_neuron < 2:
            raise BidlError(f"Population: pop_neuron must be an int >= 2, got {pop_neuron!r}")
        self.pop_neuron, self.beta, self.threshold = pop_neuron, float(beta), float(threshold)
        self.centres = np.linspace(0.0, 1.0, pop_neuron, dtype=np.float32)
        self.sigma = 1.0 / (self.beta * (pop_neuron - 1))

    def responses(self, values: np.ndarray) -> np.ndarray:
        """``[C * n, H, W]`` Gaussian responses in [0, 1] (neurons of a channel together)."""
        diff = values[:, None] - self.centres[None, :, None, None]
        response = np.exp(-(diff**2) / (2 * self.sigma**2)).astype(np.float32)
        return response.reshape(-1, *values.shape[1:])

    def __call__(self, results: dict) -> dict:
        response = self.responses(intensity(results, "Population"))
        results["img"] = first_spike_train(response, self.timesteps, self.threshold)
        return results
