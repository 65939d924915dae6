"""``SpikingCell``: what the LIF-family cells (``Lif``, ``LifPlus``) share.

Their options (norm, output mode, soma parameter sharing, learnability, noise, spike
function), the registration of soma parameters, the channel check of each input, and
the choice of output (spikes, or one of four membrane values in analog mode).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..registry import BidlError
from .base import StatefulCell
from .surrogate import build_spike_fn

MODES = ("spike", "analog")
SOMA_PARAMS = ("all_share", "channel_share")
ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
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

Draw = Callable[[tuple[int, ...]], torch.Tensor]


def build_activation(act: Any, owner: str = "Lif") -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A ``memb_mode`` activation: None / 'identity' (none), a callable, or a name."""
    if act is None:
        return None
    if isinstance(act, str):
        key = act.strip().lower()
        if key in ("identity", "none", ""):
            return None
        if key not in ACTIVATIONS:
            known = ", ".join(repr(k) for k in ACTIVATIONS)
            raise BidlError(
                f"{owner}: unknown memb_mode activation {act!r}; use None, a callable, or one of {known}"
            )
        return ACTIVATIONS[key]
    if callable(act):
        return act
    raise BidlError(
        f"{owner}: the memb_mode activation must be None, a callable or a name, got {type(act).__name__}"
    )


def membrane_noise(v: torch.Tensor, scale: float) -> torch.Tensor:
    """BIDL's training noise for ``v``: ``N(0, 1) * scale * std(v)``, the standard deviation
    taken per sample and channel over the dims after the channel (over all of ``v`` when
    it has no such dims). No gradient flows through it. Where that spread is undefined
    (one value per sample and channel) the noise is 0 rather than NaN."""
    dims = list(range(2, v.dim()))
    count = math.prod(v.shape[d] for d in dims) if dims else v.numel()
    with torch.no_grad():
        if count < 2:
            return torch.zeros_like(v)
        noise = torch.randn_like(v)
        return noise * (torch.std(v, dim=dims, keepdim=True) * scale)


def _check_options(
    name: str,
    mode: str,
    soma_params: str,
    input_channels: int | None,
    channel_dim: int,
    memb_mode: Any,
) -> None:
    if mode not in MODES:
        raise BidlError(f"{name}: unknown mode {mode!r}; use one of {', '.join(map(repr, MODES))}")
    if soma_params not in SOMA_PARAMS:
        raise BidlError(
            f"{name}: unknown soma_params {soma_params!r}; "
            f"use one of {', '.join(map(repr, SOMA_PARAMS))}"
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
        raise BidlError(f"{name}: input_channels must be a positive int, got {input_channels!r}")
    if (
        not isinstance(memb_mode, (tuple, list))
        or len(memb_mode) != 2
        or memb_mode[0] not in MEMB_MODES
    ):
        raise BidlError(
            f"{name}: memb_mode must be (index, activation) with index in 0-3 "
            f"({'; '.join(f'{k}: {v}' for k, v in MEMB_MODES.items())}), got {memb_mode!r}"
        )


class SpikingCell(StatefulCell):
    r"""A stateful cell with soma parameters, a spike function and BIDL's output options.

    Args:
        norm: a module applied to the membrane after integration (e.g. ``BatchNorm2d``).
        mode: ``'spike'`` (output spikes) or ``'analog'`` (output a membrane value).
        memb_mode: ``(index, activation)`` for analog mode; ``index`` 0-3 picks the value
            (``MEMB_MODES``), ``activation`` is None (identity), a callable, or
            ``'relu'``, ``'sigmoid'``, ``'tanh'``.
        soma_params: ``'all_share'`` (one value of each soma parameter) or
            ``'channel_share'`` (one value per channel along ``channel_dim``).
        input_channels: the channel count; required by ``'channel_share'``, and when given
            every input is checked against it.
        channel_dim: the channel dimension of a one-step input (1 for ``[B, C, ...]``).
        learn: make the soma parameters trainable ``nn.Parameter``\ s (else buffers).
        noise: scale of BIDL's Gaussian membrane noise in training (``membrane_noise``).
        spike_func: the spike function, anything ``build_spike_fn`` accepts
            (default: rectangular surrogate, ``a=0.5``).
    """

    def __init__(
        self,
        norm: nn.Module | None = None,
        mode: str = "spike",
        memb_mode: Sequence[Any] = (0, None),
        soma_params: str = "all_share",
        input_channels: int | None = None,
        channel_dim: int = 1,
        learn: bool = False,
        noise: float = 0.0,
        spike_func: Any = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        _check_options(name, mode, soma_params, input_channels, channel_dim, memb_mode)
        noise = float(noise)
        if not noise >= 0:
            raise BidlError(f"{name}: noise must be >= 0, got {noise}")
        if norm is not None and not callable(norm):
            raise BidlError(f"{name}: norm must be a module (or None), got {type(norm).__name__}")

        self.norm = norm
        self.mode = mode
        self.memb_mode = (int(memb_mode[0]), memb_mode[1])
        self._memb_index = int(memb_mode[0])
        self._activation = build_activation(memb_mode[1], name)
        self.soma_params = soma_params
        self.input_channels = input_channels
        self.channel_dim = channel_dim
        self.learn = bool(learn)
        self.noise = noise
        self.spike_fn = build_spike_fn(spike_func)
        self.soma_names: tuple[str, ...] = ()

    # --- soma parameters ------------------------------------------------------------

    def soma_shape(self) -> tuple[int, ...]:
        """Shape of each stored soma parameter: ``()`` or ``(input_channels,)``."""
        return () if self.soma_params == "all_share" else (self.input_channels,)

    def register_soma(self, key: str, value: Any, draw: Draw) -> None:
        """Store soma parameter ``key``: ``value``, or ``draw(shape)`` when it is None
        (BIDL draws unset parameters at construction); a parameter if ``learn``."""
        tensor = draw(self.soma_shape()) if value is None else self._soma_tensor(key, value)
        if self.learn:
            setattr(self, key, nn.Parameter(tensor))
        else:
            self.register_buffer(key, tensor)
        self.soma_names = (*self.soma_names, key)

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

    def _soma(self, key: str, x: torch.Tensor) -> torch.Tensor:
        """Soma parameter ``key`` in ``x``'s dtype, shaped to broadcast with ``x``."""
        p = getattr(self, key).to(x.dtype)
        if self.soma_params == "channel_share":
            shape = [1] * x.dim()
            shape[self.channel_dim] = p.numel()
            p = p.reshape(shape)
        return p

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

    def _noisy(self, v: torch.Tensor) -> torch.Tensor:
        """``v`` plus the training noise (``v`` itself in eval mode or without noise)."""
        if self.training and self.noise > 0:
            return v + membrane_noise(v, self.noise)
        return v

    def _output(self, spike: torch.Tensor, *membrane: torch.Tensor) -> torch.Tensor:
        """The spikes in mode 'spike'; else the ``memb_mode`` pick of the four membrane
        values (after integration, minus threshold, after reset, the new state)."""
        if self.mode == "spike":
            return spike
        out = membrane[self._memb_index]
        return out if self._activation is None else self._activation(out)

    def extra_repr(self) -> str:
        parts = [f"mode={self.mode!r}"]
        if self.mode == "analog":
            parts.append(f"memb_mode={self.memb_mode!r}")
        parts.append(f"soma_params={self.soma_params!r}")
        if self.input_channels is not None:
            parts.append(f"input_channels={self.input_channels}")
        for key in self.soma_names:
            value = getattr(self, key)
            parts.append(
                f"{key}={value.item():g}" if value.numel() == 1 else f"{key}=[{value.numel()}]"
            )
        if self.learn:
            parts.append("learn=True")
        if self.noise:
            parts.append(f"noise={self.noise:g}")
        if not isinstance(self.spike_fn, nn.Module):  # a module shows as a child
            parts.append(f"spike_fn={self.spike_fn!r}")
        parts.append(super().extra_repr())
        return ", ".join(parts)
