"""The leaky integrate-and-fire cell (``Lif``), BIDL's default neuron."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..registry import NEURONS, BidlError
from .base import State, StatefulCell
from .kernels import fused_lif_applies, fused_lif_multi_step
from .surrogate import build_spike_fn

_MODES = ("spike", "analog")
_SOMA_PARAMS = ("all_share", "channel_share")
_SOMA_NAMES = ("alpha", "beta", "theta", "v_0")
_ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
}
#: what each ``memb_mode`` index returns in analog mode
MEMB_MODES = {
    0: "membrane after integration (and norm)",
    1: "membrane minus threshold",
    2: "membrane after reset",
    3: "membrane after leak (the new state)",
}


def _activation(act: Any) -> Callable[[torch.Tensor], torch.Tensor] | None:
    if act is None:
        return None
    if isinstance(act, str):
        key = act.strip().lower()
        if key in ("identity", "none", ""):
            return None
        if key not in _ACTIVATIONS:
            known = ", ".join(repr(k) for k in _ACTIVATIONS)
            raise BidlError(
                f"Lif: unknown memb_mode activation {act!r}; use None, a callable, or one of {known}"
            )
        return _ACTIVATIONS[key]
    if callable(act):
        return act
    raise BidlError(
        f"Lif: the memb_mode activation must be None, a callable or a name, got {type(act).__name__}"
    )


@NEURONS.register_module(name=["lif", "Lif"])
class Lif(StatefulCell):
    r"""Leaky integrate-and-fire neuron; one state tensor ``v`` shaped like the input.

    One timestep, for input ``x_t`` and previous membrane potential ``v_{t-1}`` (0 at start):

    .. code-block:: text

        v_t'   = x_t + v_{t-1}                             integrate
        v_t'   = norm(v_t')                                homeostasis (if norm given)
        v_t'   = v_t' + noise * std(v_t') * N(0, 1)        (training only, if noise > 0)
        s_t    = spike_fn(v_t' - theta)                    fire: Heaviside forward,
                                                           surrogate gradient backward
        v_t''  = s_t * v_0 + (1 - s_t) * v_t'              reset to v_0 where it fired
        v_t    = alpha * v_t'' + beta                      leak: the new state
        out_t  = s_t                                       mode 'spike'
        out_t  = act([v_t', v_t' - theta, v_t'', v_t][i])  mode 'analog', memb_mode=(i, act)

    Args:
        norm: a module applied to the membrane after integration (e.g. ``BatchNorm2d``).
        mode: ``'spike'`` (output spikes) or ``'analog'`` (output a membrane value).
        memb_mode: ``(index, activation)`` for analog mode; ``index`` 0-3 picks the value
            as above, ``activation`` is None (identity), a callable, or ``'relu'``,
            ``'sigmoid'``, ``'tanh'``.
        soma_params: ``'all_share'`` (scalar alpha, beta, theta, v_0) or
            ``'channel_share'`` (one value per channel along ``channel_dim``).
        input_channels: the channel count; required by ``'channel_share'``, and when given
            every input is checked against it.
        channel_dim: the channel dimension of a one-step input (1 for ``[B, C, ...]``).
        alpha, beta, theta, v_0: leak factor, leak offset, threshold, reset potential;
            a number, or (channel_share) a sequence of ``input_channels`` numbers.
        learn: make alpha, beta, theta, v_0 trainable ``nn.Parameter``\ s (else buffers).
        noise: scale of the Gaussian membrane noise in training (relative to v's std).
        spike_func: the spike function, anything ``build_spike_fn`` accepts
            (default: rectangular surrogate, ``a=0.5``).
    """

    state_names = ("v",)

    def __init__(
        self,
        norm: nn.Module | None = None,
        mode: str = "spike",
        memb_mode: Sequence[Any] = (0, None),
        soma_params: str = "all_share",
        input_channels: int | None = None,
        channel_dim: int = 1,
        alpha: float = 0.3,
        beta: float = 0.0,
        theta: float = 0.5,
        v_0: float = 0.0,
        learn: bool = False,
        noise: float = 0.0,
        spike_func: Any = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        if mode not in _MODES:
            raise BidlError(
                f"{name}: unknown mode {mode!r}; use one of {', '.join(map(repr, _MODES))}"
            )
        if soma_params not in _SOMA_PARAMS:
            raise BidlError(
                f"{name}: unknown soma_params {soma_params!r}; "
                f"use one of {', '.join(map(repr, _SOMA_PARAMS))}"
            )
        if soma_params == "channel_share" and input_channels is None:
            raise BidlError(
                f"{name}: soma_params='channel_share' needs input_channels "
                f"(the number of channels along dim {channel_dim})"
            )
        if input_channels is not None and (
            isinstance(input_channels, bool)
            or not isinstance(input_channels, int)
            or input_channels < 1
        ):
            raise BidlError(
                f"{name}: input_channels must be a positive int, got {input_channels!r}"
            )
        if (
            not isinstance(memb_mode, (tuple, list))
            or len(memb_mode) != 2
            or memb_mode[0] not in MEMB_MODES
        ):
            raise BidlError(
                f"{name}: memb_mode must be (index, activation) with index in 0-3 "
                f"({'; '.join(f'{k}: {v}' for k, v in MEMB_MODES.items())}), got {memb_mode!r}"
            )
        noise = float(noise)
        if noise < 0:
            raise BidlError(f"{name}: noise must be >= 0, got {noise}")
        if norm is not None and not callable(norm):
            raise BidlError(f"{name}: norm must be a module (or None), got {type(norm).__name__}")

        self.norm = norm
        self.mode = mode
        self.memb_mode = (int(memb_mode[0]), memb_mode[1])
        self._memb_index = int(memb_mode[0])
        self._activation = _activation(memb_mode[1])
        self.soma_params = soma_params
        self.input_channels = input_channels
        self.channel_dim = channel_dim
        self.learn = bool(learn)
        self.noise = noise
        self.spike_fn = build_spike_fn(spike_func)

        values = {"alpha": alpha, "beta": beta, "theta": theta, "v_0": v_0}
        for key in _SOMA_NAMES:
            tensor = self._soma_tensor(key, values[key])
            if self.learn:
                setattr(self, key, nn.Parameter(tensor))
            else:
                self.register_buffer(key, tensor)

    def _soma_tensor(self, key: str, value: Any) -> torch.Tensor:
        name = type(self).__name__
        try:
            tensor = torch.as_tensor(value, dtype=torch.get_default_dtype()).detach().clone()
        except (TypeError, ValueError, RuntimeError) as err:
            raise BidlError(f"{name}: {key} must be a number, got {value!r} ({err})") from None
        if self.soma_params == "all_share":
            if tensor.numel() != 1:
                raise BidlError(
                    f"{name}: with soma_params='all_share' {key} must be one number, "
                    f"got shape {list(tensor.shape)}; use soma_params='channel_share' for per-channel values"
                )
            return tensor.reshape(())
        channels = self.input_channels
        if tensor.numel() == 1:
            return tensor.reshape(()).expand(channels).clone()
        if tensor.dim() != 1 or tensor.numel() != channels:
            raise BidlError(
                f"{name}: {key} must be one number or {channels} values (input_channels), "
                f"got shape {list(tensor.shape)}"
            )
        return tensor

    # --- one step -------------------------------------------------------------------

    def _check_input(self, x: torch.Tensor) -> None:
        if self.input_channels is None:
            return
        name = type(self).__name__
        dim = self.channel_dim if self.channel_dim >= 0 else x.dim() + self.channel_dim
        if not 0 <= dim < x.dim():
            raise BidlError(
                f"{name}(input_channels={self.input_channels}): input of shape {list(x.shape)} "
                f"has no channel dim {self.channel_dim}"
            )
        got = x.shape[dim]
        if got != self.input_channels:
            raise BidlError(
                f"{name}(input_channels={self.input_channels}): expected {self.input_channels} "
                f"channels along dim {self.channel_dim}, got {got} (input shape {list(x.shape)}); "
                f"the layer before it produces a different channel count"
            )

    def _soma(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """``alpha``/``beta``/``theta``/``v_0`` in ``x``'s dtype, shaped to broadcast with ``x``."""
        p = getattr(self, key).to(x.dtype)
        if self.soma_params == "channel_share":
            shape = [1] * x.dim()
            shape[self.channel_dim] = p.numel()
            p = p.reshape(shape)
        return p

    def step(self, x: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        self._check_input(x)
        v = x + state["v"]  # integrate
        if self.norm is not None:
            v = self.norm(v)  # homeostasis on the state
        if self.training and self.noise > 0 and v.numel() > 1:
            v = v + self.noise * v.detach().std() * torch.randn_like(v)
        v_minus_theta = v - self._soma("theta", v)
        spike = self.spike_fn(v_minus_theta)  # fire
        v_reset = spike * self._soma("v_0", v) + (1.0 - spike) * v  # reset
        v_new = self._soma("alpha", v) * v_reset + self._soma("beta", v)  # leak
        if self.mode == "spike":
            out = spike
        else:
            out = (v, v_minus_theta, v_reset, v_new)[self._memb_index]
            if self._activation is not None:
                out = self._activation(out)
        return out, {"v": v_new}

    def multi_step(self, x_seq: torch.Tensor) -> torch.Tensor:
        """All steps of ``x_seq`` ``[T, B, ...]``: one fused Triton kernel for CUDA tensors
        when it computes exactly what ``step`` would (``kernels.fused_lif_applies``), else
        the reference loop over ``step``."""
        if (
            x_seq.is_cuda
            and type(self).step is Lif.step
            and type(self).multi_step is Lif.multi_step
            and fused_lif_applies(self, x_seq)
        ):
            self._check_input(x_seq[0])
            return fused_lif_multi_step(self, x_seq)
        return super().multi_step(x_seq)

    def extra_repr(self) -> str:
        parts = [f"mode={self.mode!r}"]
        if self.mode == "analog":
            parts.append(f"memb_mode={self.memb_mode!r}")
        parts.append(f"soma_params={self.soma_params!r}")
        if self.input_channels is not None:
            parts.append(f"input_channels={self.input_channels}")
        for key in _SOMA_NAMES:
            value = getattr(self, key)
            parts.append(
                f"{key}={value.item():g}" if value.numel() == 1 else f"{key}=[{value.numel()}]"
            )
        if self.learn:
            parts.append("learn=True")
        if self.noise:
            parts.append(f"noise={self.noise:g}")
        parts.append(f"spike_fn={self.spike_fn!r}")
        parts.append(super().extra_repr())
        return ", ".join(parts)
