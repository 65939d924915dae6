"""``SpikingBackbone``: one per-timestep definition, run with the time loop outside the
network (EIM) or inside each layer (IIM), read out per step (BIDL's ``...Itout`` models) or
once on the time-averaged features (BIDL's ``...It`` models)."""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from ...layers import TemporalAggregation
from ...neurons import reset_states, run_multi_step
from ...registry import BACKBONES, BidlError

READOUTS = ("per_step", "time_mean")


class TimeMeanReadout(TemporalAggregation):
    """The head run once on the time average of the body's features (BIDL's ``...It``).

    It keeps the temporal-aggregation protocol (``forward(y_seq)``, ``init_state``,
    ``step``), so a streaming run (the exported step graph) averages the features step by
    step and applies the head to the running mean: after the last step the output equals
    the whole-sequence one. The head stays registered in the backbone (its weights keep
    the names ``head.*``); this module only refers to it.
    """

    def __init__(self, head: nn.Module) -> None:
        super().__init__("mean")
        object.__setattr__(self, "_head", head)  # a reference, not a second registration

    def forward(self, y_seq: torch.Tensor) -> torch.Tensor:
        return self._head(super().forward(y_seq))

    def step(
        self, y_t: torch.Tensor, state: dict[str, torch.Tensor] | None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Fold in one step's features (running sum ``acc``, step count ``steps``, the
        states of ``init_state``) and apply the head to their running mean."""
        mean, state = super().step(y_t, state)
        return self._head(mean), state

    def extra_repr(self) -> str:
        return "time mean, then the head"


class SpikingBackbone(nn.Module):
    """A subclass builds ``self.body`` (spiking layers for one timestep, an ``nn.Sequential``),
    ``self.head`` (the readout) and calls ``super().__init__`` first and ``self.finish(split)``
    last; a non-sequential network may also set ``self.stem`` (run before the body).

    ``forward(xs)`` takes BIDL's layout ``[B, T, *input_shape]``, resets every state,
    runs the time loop outside (EIM) or inside the layers (IIM), and reads out:

    - ``readout='per_step'``: the head runs at every step and its outputs are aggregated
      over time (``amode``: 'mean' | 'sum' | 'pick');
    - ``readout='time_mean'``: the body's last feature map is averaged over time and the
      head runs once (BIDL's ``...It`` models).

    Both loop forms give the same output for either readout.

    ``take_segment([start, end])`` keeps body layers ``start..end-1`` (BIDL's
    ``split``): the first segment keeps the stem and takes the data, a later one takes
    the previous segment's activations ``[B, T, ...]`` and its ``input_shape`` says their
    shape; only the last keeps head and readout. Running the segments one after the
    other gives the whole model's output; weights keep the whole model's names.
    """

    #: 'float' (frames, spikes) or 'tokens' (integer ids, e.g. text)
    input_kind = "float"
    #: the keys of the config that built this backbone (set by the registry's ``build``),
    #: so that a shape error names the keys the config uses (``c0`` or ``input_channels``)
    config_keys: tuple[str, ...] = ()
    #: True for a network with layers that read all timesteps at once (temporal attention):
    #: it runs with the time loop inside only and has no per-step (streaming) form
    sequence_only = False

    def __init__(
        self,
        input_shape: Sequence[int],
        timestep: int,
        amode: str = "mean",
        use_inner_loop: bool = False,
        readout: str = "per_step",
    ):
        super().__init__()
        if readout not in READOUTS:
            raise BidlError(
                f"{type(self).__name__}: readout must be one of {', '.join(map(repr, READOUTS))}, "
                f"got {readout!r}"
            )
        if readout == "time_mean" and amode != "mean":
            raise BidlError(
                f"{type(self).__name__}: readout='time_mean' averages the features over time, "
                f"so amode must be 'mean' (got {amode!r}); use readout='per_step' for "
                f"amode={amode!r}"
            )
        self.input_shape = tuple(int(s) for s in input_shape)
        self.timestep = timestep
        self.use_inner_loop = use_inner_loop
        self.readout = readout
        self.aggregate = TemporalAggregation(amode)
        self.stem: nn.Module | None = None
        self.split: tuple[int, int] | None = None
        self.is_first_segment = True
        self.is_last_segment = True

    def finish(self, split: Sequence[int] | None = None) -> None:
        """Keep the segment ``split`` (if any) and set up the readout: the last step of
        every subclass's constructor."""
        self.take_segment(split)
        if self.readout == "time_mean" and self.is_last_segment:
            self.aggregate = TimeMeanReadout(self.head)

    # --- input -----------------------------------------------------------------------

    def input_axes(self) -> str:
        """Names of the per-step input dims, for error messages."""
        if self.input_kind == "tokens":
            return "token ids" if not self.input_shape else "tokens per step"
        if len(self.input_shape) == 3:
            return "channels, height, width"
        return "features"

    def input_key_names(self) -> str:
        """The config keys that set the input shape, as this backbone's config spells them."""
        spellings = (("c0", "input_channels"), ("h0", "h"), ("w0", "w"))
        return ", ".join(alias if alias in self.config_keys else key for alias, key in spellings)

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
                    else f"Make the model config ({self.input_key_names()}) "
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

    def step_head(self) -> nn.Module | None:
        """The part of the head that runs at every step (none when read out on the mean)."""
        return None if self.readout == "time_mean" else self.head

    def forward_step(self, x_t: torch.Tensor) -> torch.Tensor:
        """One timestep through stem, body (and the per-step head), using and updating the
        cells' states; ``aggregate`` turns the steps' results into the output."""
        if self.stem is not None:
            x_t = self.stem(x_t)
        y_t = self.body(x_t)
        head = self.step_head()
        return head(y_t) if head is not None else y_t

    def forward_sequence(self, x_seq: torch.Tensor) -> torch.Tensor:
        """All timesteps ``[T, B, ...]`` -> per-step results ``[T, B, ...]``."""
        if not self.use_inner_loop:
            return torch.stack([self.forward_step(x_t) for x_t in x_seq])
        if self.stem is not None:
            x_seq = run_multi_step(self.stem, x_seq)
        y_seq = run_multi_step(self.body, x_seq)
        head = self.step_head()
        return run_multi_step(head, y_seq) if head is not None else y_seq

    def forward(self, xs: torch.Tensor) -> torch.Tensor:
        self.check_input(xs)
        if self.is_first_segment:
            xs = self.prepare_input(xs)
        reset_states(self)
        outputs = self.forward_sequence(xs.transpose(0, 1))  # time-major inside
        if not self.is_last_segment:
            return outputs.transpose(0, 1)
        return self.aggregate(outputs)

    # --- BIDL's weight names -------------------------------------------------------------

    def bidl_module_names(self) -> dict[str, str | Sequence[str]]:
        """Module names of this network in BIDL's own model: ``{bidl_name: bidl_ref_name}``
        (or a list of alternatives, the first one BIDL writes today), for the modules that
        hold weights. ``bidl.models.convert`` reads BIDL checkpoints with it."""
        raise BidlError(
            f"{type(self).__name__} has no counterpart in BIDL: its weights cannot be read "
            f"from a BIDL checkpoint"
        )

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
        names = [name for name, _ in self.body.named_children()]
        self.split = (start, end)
        self.is_first_segment, self.is_last_segment = start == 0, end == len(layers)
        self.body = nn.Sequential(OrderedDict((names[i], layers[i]) for i in range(start, end)))
        if start > 0:
            self.stem = None
            self.input_kind = "float"
        if end < len(layers):
            self.head = nn.Identity()
            self.readout = "per_step"  # a segment that is not the last only passes activations

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


def constructor_signature(cls: type) -> inspect.Signature:
    """The keywords ``cls(...)`` takes, its base classes' included when an ``__init__``
    passes ``**kwargs`` on (so that config checks know every key a factory accepts)."""
    params: dict[str, inspect.Parameter] = {}
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        if init is object.__init__:
            break
        is_open = False
        for param in list(inspect.signature(init).parameters.values())[1:]:
            if param.kind is param.VAR_KEYWORD:
                is_open = True
            elif param.kind is not param.VAR_POSITIONAL:
                params.setdefault(param.name, param.replace(kind=param.KEYWORD_ONLY))
        if not is_open:
            return inspect.Signature(list(params.values()))
    var = inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)
    return inspect.Signature([*params.values(), var])


def _names(name: str | Sequence[str]) -> list[str]:
    return [name] if isinstance(name, str) else list(name)


def register_factory(cls: type[SpikingBackbone], names: str | Sequence[str], **defaults) -> None:
    """Register under ``names`` a factory that builds ``cls`` with other defaults
    (``use_inner_loop=True`` for IIM names, ``neuron='lifplus'`` for LIF+ names, ...)."""

    def build(**kwargs):
        for key, value in defaults.items():
            kwargs.setdefault(key, value)
        return cls(**kwargs)

    build.__name__ = build.__qualname__ = _names(names)[0]
    build.__module__ = cls.__module__  # where the user defined it, not this file
    build.__signature__ = constructor_signature(cls)
    settings = ", ".join(f"{key}={value!r}" for key, value in defaults.items())
    build.__doc__ = f"{cls.__name__} with {settings}."
    build.backbone_class, build.defaults = cls, dict(defaults)
    BACKBONES.register_module(name=_names(names), module=build)


#: the defaults of a BIDL ``...It`` name: time loop inside, head on the time-averaged features
IT_DEFAULTS = {"use_inner_loop": True, "readout": "time_mean"}


def register_spiking_backbone(eim_name: str | Sequence[str], iim_name: str | Sequence[str]):
    """Register a backbone class under its EIM name(s) (BIDL's ``...Itout``: per-step
    readout) and a factory under its IIM name(s) (BIDL's ``...It``: ``IT_DEFAULTS``)."""

    def register(cls: type[SpikingBackbone]) -> type[SpikingBackbone]:
        BACKBONES.register_module(name=[cls.__name__, *_names(eim_name)], module=cls)
        register_factory(cls, iim_name, **IT_DEFAULTS)
        return cls

    return register
