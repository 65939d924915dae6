"""The leaky integrate-and-fire cell (``Lif``), BIDL's default neuron."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..registry import NEURONS
from .base import State
from .kernels import fused_multi_step
from .spiking_cell import MEMB_MODES, SpikingCell

__all__ = ["MEMB_MODES", "Lif"]

#: Lif's soma parameters, in BIDL's order of construction (and of random draws)
SOMA_NAMES = ("alpha", "beta", "theta", "v_0")


def _randn(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randn(shape)


@NEURONS.register_module(name=["lif", "Lif"])
class Lif(SpikingCell):
    r"""Leaky integrate-and-fire neuron; one state tensor ``v`` shaped like the input.

    One timestep, for input ``x_t`` and previous membrane potential ``v_{t-1}`` (0 at start),
    as BIDL's ``layers.lif.Lif`` computes it:

    .. code-block:: text

        v_t'   = x_t + v_{t-1}                             integrate
        v_t'   = norm(v_t')                                homeostasis (if norm given)
        n_t    = v_t' + noise * std(v_t') * N(0, 1)        (training only, if noise > 0;
                                                           else n_t = v_t')
        s_t    = spike_fn(n_t - theta)                     fire: Heaviside forward,
                                                           surrogate gradient backward
        v_t''  = s_t * v_0 + (1 - s_t) * n_t               reset to v_0 where it fired
        v_t    = alpha * v_t'' + beta                      leak: the new state
        out_t  = s_t                                       mode 'spike'
        out_t  = act([v_t', n_t - theta, v_t'', v_t][i])   mode 'analog', memb_mode=(i, act)

    ``std`` is taken per sample and channel over the dims after the channel
    (``membrane_noise``); the analog output 0 is the membrane before the noise, as in BIDL.

    Args:
        alpha, beta, theta, v_0: leak factor, leak offset, threshold, reset potential;
            a number, (channel_share) a sequence of ``input_channels`` numbers, or None:
            drawn from ``torch.randn`` at construction, in this order, as BIDL does.
        norm, mode, memb_mode, soma_params, input_channels, channel_dim, learn, noise,
            spike_func: the options of every LIF-family cell (``SpikingCell``).
    """

    state_names = ("v",)
    #: the analog output BIDL's LIF layers default to (``Conv2dLif``, ``FcLif``, ``Lif2d``)
    layer_memb_mode = (0, "relu")

    def __init__(
        self,
        norm: nn.Module | None = None,
        mode: str = "spike",
        memb_mode: Sequence[Any] = (0, None),
        soma_params: str = "all_share",
        input_channels: int | None = None,
        channel_dim: int = 1,
        alpha: float | None = 0.3,
        beta: float | None = 0.0,
        theta: float | None = 0.5,
        v_0: float | None = 0.0,
        learn: bool = False,
        noise: float = 0.0,
        spike_func: Any = None,
    ) -> None:
        super().__init__(
            norm,
            mode,
            memb_mode,
            soma_params,
            input_channels,
            channel_dim,
            learn,
            noise,
            spike_func,
        )
        values = {"alpha": alpha, "beta": beta, "theta": theta, "v_0": v_0}
        for key in SOMA_NAMES:
            self.register_soma(key, values[key], _randn)

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        self._check_input(x)
        v = x + state["v"]  # integrate
        if self.norm is not None:
            v = self.norm(v)  # homeostasis on the state
        noisy = self._noisy(v)
        v_minus_theta = noisy - self._soma("theta", v)
        spike = self.spike_fn(v_minus_theta)  # fire
        v_reset = spike * self._soma("v_0", v) + (1.0 - spike) * noisy  # reset
        v_new = self._soma("alpha", v) * v_reset + self._soma("beta", v)  # leak
        return self._output(spike, v, v_minus_theta, v_reset, v_new), {"v": v_new}

    def multi_step(self, x_seq: torch.Tensor) -> torch.Tensor:
        """All steps of ``x_seq`` ``[T, B, ...]``: a fused path (``kernels.fused_multi_step``:
        one Triton kernel on CUDA, or one autograd node with the norm inside) when it
        computes exactly what ``step`` would, else the reference loop over ``step``."""
        if type(self).step is Lif.step and type(self).multi_step is Lif.multi_step and len(x_seq):
            self._check_input(x_seq[0])
            out = fused_multi_step(self, x_seq)
            if out is not None:
                return out
        return super().multi_step(x_seq)
