"""BIDL's latency coding (its ``Temporal`` encoder with ``tau``): each value ``v`` spikes
once, at ``tau * log(v / (v - threshold))`` (an RC charge reaching the threshold) or, with
``linear``, at ``tau * (1 - v)``; steps past ``T - 1`` are dropped."""

from __future__ import annotations

import numpy as np


def latency_spike_train(
    values: np.ndarray,
    timesteps: int,
    threshold: float,
    tau: float,
    linear: bool = False,
    normalize: bool = False,
    first_spike_time: int = 0,
    clip: bool = False,
    on_target: float = 1.0,
    off_target: float = 0.0,
    epsilon: float = 1e-7,
) -> np.ndarray:
    """``[T, *values.shape]`` float32 spike train of ``values`` in [0, 1] (BIDL's numbers:
    ``normalize`` stretches the latest spike to step ``T - 1``, ``clip`` silences values
    below ``threshold``, spikes are ``on_target`` and the rest ``off_target``)."""
    values = values.astype(np.float32)
    if linear:
        if normalize:
            tau = timesteps - 1 - first_spike_time
        times = np.minimum(-tau * (values - 1), -tau * (threshold - 1)) + first_spike_time
        if normalize and times.size and times.min() < 0:
            span = times.max() - times.min()
            times = (times - times.min()) / span * (timesteps - 1)
    else:
        charged = np.maximum(values, np.float32(threshold + epsilon))
        times = tau * np.log(charged / (charged - np.float32(threshold)))
        if first_spike_time > 0:
            times = times + first_spike_time
        if normalize:
            late = np.max(times - first_spike_time)
            times = (times - first_spike_time) * (timesteps - first_spike_time - 1) / late
            times = times + first_spike_time
    steps = np.rint(np.minimum(times, timesteps - 1))  # round half to even, as torch
    fired = np.rint(times) <= timesteps - 1
    if clip:
        fired &= values >= threshold
    grid = np.arange(timesteps).reshape(-1, *([1] * values.ndim))
    train = (grid == steps[None]) & fired[None]
    return np.maximum(train * np.float32(on_target), np.float32(off_target)).astype(np.float32)
