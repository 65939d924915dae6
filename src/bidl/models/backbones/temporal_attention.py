"""Attention over the timesteps of a whole sequence ``[T, B, ...]`` (BIDL's ``layers.attention``):
they read every step before scaling any, so they run with the time loop inside the layers
only."""

from __future__ import annotations

import torch
from torch import nn

from ...neurons.step_mode import StepModule
from ...registry import BidlError


class SequenceOnly(StepModule):
    """A module that needs the whole sequence: one timestep alone is refused."""

    def single_step(self, x: torch.Tensor) -> torch.Tensor:
        raise BidlError(
            f"{type(self).__name__} weighs each timestep against all the others: it runs on "
            f"a whole sequence [T, B, ...] (use_inner_loop=True, step mode 'm'), not step by step"
        )


class TemporalWiseAttention(SequenceOnly):
    """Temporal-wise attention (Yao et al., ICCV 2021): each step's mean activation, through
    ``Linear(T, T // reduction) -> ReLU -> Linear(T // reduction, T)`` (no biases) and a
    sigmoid, scales that step. Input ``[T, B, C, H, W]``."""

    def __init__(self, timesteps: int, reduction: int = 2):
        super().__init__()
        if timesteps < reduction:
            raise BidlError(
                f"TemporalWiseAttention: timesteps ({timesteps}) must be at least "
                f"reduction ({reduction})"
            )
        self.timesteps = timesteps
        self.mlp = nn.Sequential(
            nn.Linear(timesteps, timesteps // reduction, bias=False),
            nn.ReLU(),
            nn.Linear(timesteps // reduction, timesteps, bias=False),
        )

    def multi_step(self, x_seq: torch.Tensor) -> torch.Tensor:
        _check_steps(self, x_seq, self.timesteps)
        activity = x_seq.flatten(2).mean(dim=2).t()  # [B, T]
        scores = torch.sigmoid(self.mlp(activity)).t()  # [T, B]
        return x_seq * scores.reshape(*scores.shape, *([1] * (x_seq.dim() - 2)))


class TemporalChannelJointAttention(SequenceOnly):
    """TCJA (Zhu et al., 2022): the per-step channel means ``[B, T, C]`` go through a
    Conv1d across time (``T`` in, ``T`` out, along channels) and one across channels
    (along time); the sigmoid of their product scales each step's channels."""

    def __init__(self, kernel_size_t: int, kernel_size_c: int, timesteps: int, channels: int):
        super().__init__()
        self.timesteps = timesteps
        self.conv_t = nn.Conv1d(timesteps, timesteps, kernel_size_t, padding=1, bias=False)
        self.conv_c = nn.Conv1d(channels, channels, kernel_size_c, padding=1, bias=False)

    def multi_step(self, x_seq: torch.Tensor) -> torch.Tensor:
        _check_steps(self, x_seq, self.timesteps)
        means = x_seq.mean(dim=(-2, -1)).permute(1, 0, 2)  # [B, T, C]
        across_time = self.conv_t(means)  # [B, T, C]
        across_channels = self.conv_c(means.transpose(1, 2)).transpose(1, 2)  # [B, T, C]
        weights = torch.sigmoid(across_time * across_channels).permute(1, 0, 2)  # [T, B, C]
        return x_seq * weights[..., None, None]


def _check_steps(module: nn.Module, x_seq: torch.Tensor, timesteps: int) -> None:
    if x_seq.shape[0] != timesteps:
        raise BidlError(
            f"{type(module).__name__} was built for {timesteps} timesteps, got a sequence of "
            f"{x_seq.shape[0]} (input {list(x_seq.shape)}); set the model's timestep to the "
            f"data's"
        )
