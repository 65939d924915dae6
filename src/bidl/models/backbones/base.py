"""``SpikingBackbone``: one per-timestep definition, run with the time loop outside the
network (EIM, BIDL's ``...Itout`` models) or inside each layer (IIM, ``...It``)."""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from ...layers import TemporalAggregation
from ...neurons import reset_states, run_multi_step
from ...registry import BACKBONES, BidlError


class SpikingBackbone(nn.Module):
    """A subclass builds ``self.body`` (spiking layers for one timestep, an ``nn.Sequential``),
    ``self.head`` (the per-timestep readout) and calls ``super().__init__`` first; a
    non-sequential network may also set ``self.stem`` (run before the body, default None).

    ``forward(xs)`` takes BIDL's layout ``[B, T, *input_shape]``, resets every state,
    runs the time loop outside (EIM) or inside the layers (IIM), and aggregates the
    per-step outputs over time (``amode``: 'mean' | 'sum' | 'pick').

    ``take_segment([start, end])`` keeps body layers ``start..end-1`` only (BIDL's
    ``split``): the first segment keeps the stem and takes the data, a later one takes
    the previous segment's activations ``[B, T, ...]`` and its ``input_shape`` says their
    shape; only the last keeps head and aggregation. Running the segments one after the
    other gives the whole model's output; weights keep the whole model's names.
    """

    #: 'float' (frames, spikes) or 'tokens' (integer ids, e.g. text)
    input_kind = "float"

    def __init__(
        self,
        input_shape: Sequence[int],
        timestep: int,
        amode: str = "mean",
        use_inner_loop: bool = False,
    ):
        super().__init__()
        self.input_shape = tuple(int(s) for s in input_shape)
        self.timestep = timestep
        self.use_inner_loop = use_inner_loop
        self.aggregate = TemporalAggregation(amode)
        self.stem: nn.Module | None = None
        self.split: tuple[int, int] | None = None
        self.is_first_segment = True
        self.is_last_segment = True

    # --- input -----------------------------------------------------------------------

    def input_axes(self) -> str:
        """Names of the per-step input dims, for error messages."""
        if self.input_kind == "tokens":
            return "token ids" if not self.input_shape else "tokens per step"
        if len(self.input_shape) == 3:
            return "channels, height, width"
        return "features"

    def check_input(self, xs: torch.Tensor) -> None:
        expected = len(self.input_shape) + 2
        if xs.dim() != expected or tuple(xs.shape[2:]) != self.input_shape:
            dims = ", ".join(["B", "T", *(str(s) for s in self.input_shape)])
            what = "the previous segment's output" if not self.is_first_segment else ""
            raise BidlError(
                f"{type(self).__name__} expects input [{dims}] (batch, time, "
                f"{self.input_axes()}); got {list(xs.shape)}. "
                + (
                    f"Feed it {what} (split={list(self.split)})."
                    if what
                    else "Make the model config (input_channels, h, w) "
                    "match what the data pipeline produces."
                )
            )
        if self.input_kind == "tokens" and (xs.is_floating_point() or xs.is_complex()):
            raise BidlError(
                f"{type(self).__name__} expects integer token ids, got {xs.dtype}; "
                f"the text pipeline must produce token indices"
            )

    def example_input(self, batch: int = 2, generator: torch.Generator | None = None):
        """A synthetic batch ``[B, T, *input_shape]`` of the declared kind (sparse spikes)."""
        shape = (batch, self.timestep, *self.input_shape)
        return (torch.rand(shape, generator=generator) < 0.3).float()

    def prepare_input(self, xs: torch.Tensor) -> torch.Tensor:
        """Whole-sequence preprocessing of the data before the steps (first segment only)."""
        return xs

    # --- running ---------------------------------------------------------------------

    def forward_step(self, x_t: torch.Tensor) -> torch.Tensor:
        """One timestep through stem, body and head, using and updating the cells' states."""
        if self.stem is not None:
            x_t = self.stem(x_t)
        return self.head(self.body(x_t))

    def forward_sequence(self, x_seq: torch.Tensor) -> torch.Tensor:
        """All timesteps ``[T, B, ...]`` -> per-step outputs ``[T, B, ...]``."""
        if self.use_inner_loop:
            if self.stem is not None:
                x_seq = run_multi_step(self.stem, x_seq)
            return run_multi_step(self.head, run_multi_step(self.body, x_seq))
        return torch.stack([self.forward_step(x_t) for x_t in x_seq])

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        self.check_input(xs)
        if self.is_first_segment:
            xs = self.prepare_input(xs)
        reset_states(self)
        outputs = self.forward_sequence(xs.transpose(0, 1))  # time-major inside
        if not self.is_last_segment:
            return outputs.transpose(0, 1)
        return self.aggregate(outputs)

    # --- segments (multi-device deployment) -----------------------------------------------

    def take_segment(self, split: Sequence[int] | None) -> None:
        """Keep only body layers ``split[0]..split[1]-1`` (see the class docstring)."""
        if split is None:
            return
        layers = list(self.body)
        if (
            not isinstance(split, (list, tuple))
            or len(split) != 2
            or not all(isinstance(i, int) and not isinstance(i, bool) for i in split)
            or not 0 <= split[0] < split[1] <= len(layers)
        ):
            raise BidlError(
                f"{type(self).__name__}: split must be [start, end] with "
                f"0 <= start < end <= {len(layers)} (its number of layers), got {split!r}"
            )
        start, end = split
        if start > 0:
            self.input_shape = self._activation_shape(start)
        self.split = (start, end)
        self.is_first_segment, self.is_last_segment = start == 0, end == len(layers)
        self.body = nn.Sequential(OrderedDict((str(i), layers[i]) for i in range(start, end)))
        if start > 0:
            self.stem = None
            self.input_kind = "float"
        if end < len(layers):
            self.head = nn.Identity()

    @torch.no_grad()
    def _activation_shape(self, layer: int) -> tuple[int, ...]:
        """Shape of one sample's activation entering body layer ``layer`` (one step)."""
        training = self.training
        self.eval()
        x_t = self.example_input(batch=1)[:, 0]
        if self.stem is not None:
            x_t = self.stem(x_t)
        for module in list(self.body)[:layer]:
            x_t = module(x_t)
        reset_states(self)
        self.train(training)
        return tuple(x_t.shape[1:])

    def segment_state_dict(self, whole: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The entries of the whole model's ``state_dict`` that this segment holds."""
        missing = [key for key in self.state_dict() if key not in whole]
        if missing:
            raise BidlError(
                f"{type(self).__name__}(split={self.split}): the given weights lack "
                f"{missing[:3]}{' ...' if len(missing) > 3 else ''}; pass the whole "
                f"backbone's state_dict of the same configuration"
            )
        return {key: whole[key] for key in self.state_dict()}


def _names(name: str | Sequence[str]) -> list[str]:
    return [name] if isinstance(name, str) else list(name)


def register_factory(cls: type[SpikingBackbone], names: str | Sequence[str], **defaults) -> None:
    """Register under ``names`` a factory that builds ``cls`` with other defaults
    (``use_inner_loop=True`` for IIM names, ``neuron='lifplus'`` for LIF+ names, ...)."""

    def build(**kwargs):
        for key, value in defaults.items():
            kwargs.setdefault(key, value)
        return cls(**kwargs)

    build.__name__ = _names(names)[0]
    build.__signature__ = inspect.signature(cls)
    settings = ", ".join(f"{key}={value!r}" for key, value in defaults.items())
    build.__doc__ = f"{cls.__name__} with {settings}."
    build.backbone_class, build.defaults = cls, dict(defaults)
    BACKBONES.register_module(name=_names(names), module=build)


def register_spiking_backbone(eim_name: str | Sequence[str], iim_name: str | Sequence[str]):
    """Register a backbone class under its EIM name(s) and a factory under its IIM name(s).

    Both build the same class; the IIM names default ``use_inner_loop=True``.
    """

    def register(cls: type[SpikingBackbone]) -> type[SpikingBackbone]:
        BACKBONES.register_module(name=[cls.__name__, *_names(eim_name)], module=cls)
        register_factory(cls, iim_name, use_inner_loop=True)
        return cls

    return register
