"""Surrogate spike functions: a Heaviside step forward, a smooth stand-in gradient backward.

Every spike function ``fn`` maps a membrane potential minus threshold ``x`` to spikes
``(x > 0)`` in ``x``'s dtype. The step has zero gradient almost everywhere, so training
replaces ``d spike / d x`` by a surrogate ``g(x)``:

=============  ====================  ==================================================
class          defaults              surrogate gradient ``g(x)``
=============  ====================  ==================================================
``Rectangle``  ``a=0.5``             ``1 / (2a)`` where ``|x| < a``, else 0 (BIDL default)
``Sigmoid``    ``alpha=4.0``         ``alpha * s * (1 - s)`` with ``s = sigmoid(alpha x)``
``ATan``       ``alpha=2.0``         ``(alpha / 2) / (1 + (pi / 2 * alpha * x) ** 2)``
``Triangle``   ``a=1.0``             ``max(0, 1 / a - |x| / a ** 2)``
=============  ====================  ==================================================

Each class runs its own ``torch.autograd.Function``. When no gradient is wanted (no grad
mode, or an input that does not require grad, as in inference and graph export) the call
is a plain comparison, so exported graphs hold no custom autograd node.

``build_spike_fn(spec)`` turns a config value into a spike function: ``None`` (the
default, ``Rectangle()``), a name (``'rectangle'``/``'rect'``, ``'sigmoid'``, ``'atan'``,
``'triangle'``), a dict ``dict(type='atan', alpha=2.0)``, or any callable, used as is.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..registry import BidlError


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """``1`` where ``x > 0``, else ``0``, in ``x``'s dtype (no gradient)."""
    return (x > 0).to(x.dtype)


class _SurrogateSpikeFn(torch.autograd.Function):
    """Heaviside forward; the backward uses the surrogate's own ``grad`` (one formula each)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, surrogate: SurrogateSpike) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.grad(x).to(grad_out.dtype), None


class SurrogateSpike(nn.Module):
    """Base of the surrogate spike functions: ``fn(x)`` gives spikes ``(x > 0)``.

    Subclasses set ``_param`` (the name of their one shape parameter) and implement
    ``grad(x)``, the surrogate derivative, which the backward pass uses. A spike function
    is a module without parameters, so a cell's firing is visible to forward hooks (its
    input is the membrane minus threshold). Two are equal when their type and parameter
    are; as modules they hash by identity.
    """

    name: str = ""
    _param: str

    def __init__(self, value: float) -> None:
        super().__init__()
        value = float(value)
        if not math.isfinite(value) or value <= 0:
            raise BidlError(
                f"{type(self).__name__}: {self._param} must be a positive number, got {value!r}"
            )
        setattr(self, self._param, value)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.is_grad_enabled() and x.requires_grad:
            return _SurrogateSpikeFn.apply(x, self)
        return heaviside(x)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """The surrogate gradient ``d spike / d x`` at ``x``."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"{self._param}={getattr(self, self._param)!r}"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and getattr(self, self._param) == getattr(
            other, self._param
        )

    # modules are kept in sets (named_modules): equal spike functions of two cells stay two
    __hash__ = nn.Module.__hash__


class Rectangle(SurrogateSpike):
    """Rectangular window: gradient ``1 / (2a)`` where ``|x| < a``, else 0 (BIDL's default)."""

    name = "rectangle"
    _param = "a"

    def __init__(self, a: float = 0.5) -> None:
        super().__init__(a)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return (x.abs() < self.a).to(x.dtype) / (2.0 * self.a)


class Sigmoid(SurrogateSpike):
    """Derivative of ``sigmoid(alpha x)``: ``alpha * s * (1 - s)``."""

    name = "sigmoid"
    _param = "alpha"

    def __init__(self, alpha: float = 4.0) -> None:
        super().__init__(alpha)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.alpha * x)
        return self.alpha * s * (1.0 - s)


class ATan(SurrogateSpike):
    """Derivative of ``atan(pi/2 alpha x) / pi + 1/2``: ``(alpha/2) / (1 + (pi/2 alpha x)^2)``."""

    name = "atan"
    _param = "alpha"

    def __init__(self, alpha: float = 2.0) -> None:
        super().__init__(alpha)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return (self.alpha / 2.0) / (1.0 + (math.pi / 2.0 * self.alpha * x) ** 2)


class Triangle(SurrogateSpike):
    """Triangular window of half-width ``a``: gradient ``max(0, 1/a - |x|/a^2)``."""

    name = "triangle"
    _param = "a"

    def __init__(self, a: float = 1.0) -> None:
        super().__init__(a)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return (1.0 / self.a - x.abs() / (self.a * self.a)).clamp(min=0.0)


#: the spike-function names accepted by ``build_spike_fn`` (lower case)
SPIKE_FUNCTIONS: dict[str, type[SurrogateSpike]] = {
    "rectangle": Rectangle,
    "rect": Rectangle,
    "sigmoid": Sigmoid,
    "atan": ATan,
    "triangle": Triangle,
}


def _known() -> str:
    return ", ".join(repr(n) for n in SPIKE_FUNCTIONS)


def _lookup(name: str) -> type[SurrogateSpike]:
    cls = SPIKE_FUNCTIONS.get(name.strip().lower())
    if cls is None:
        raise BidlError(f"unknown spike function {name!r}; known names: {_known()}")
    return cls


def build_spike_fn(spec: Any = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """Make a spike function from a config value.

    ``None`` gives ``Rectangle()``; a string names one of ``SPIKE_FUNCTIONS``; a dict
    ``dict(type=NAME, **params)`` also sets its parameter; a ``SurrogateSpike`` subclass is
    instantiated with its defaults; any other callable ``fn(x) -> spikes`` is used as is.
    """
    if spec is None:
        return Rectangle()
    if isinstance(spec, str):
        return _lookup(spec)()
    if isinstance(spec, dict):
        if "type" not in spec:
            raise BidlError(
                f"a spike function dict needs a 'type' key (one of {_known()}); got keys {sorted(spec)}"
            )
        kind = spec["type"]
        cls = _lookup(kind) if isinstance(kind, str) else kind
        params = {k: v for k, v in spec.items() if k != "type"}
        try:
            return cls(**params)
        except TypeError as err:
            raise BidlError(f"spike function {kind!r}: {err}") from None
    if isinstance(spec, type) and issubclass(spec, SurrogateSpike):
        return spec()
    if callable(spec):
        return spec
    raise BidlError(
        f"spike_func must be None, a name ({_known()}), a dict with 'type', or a callable; "
        f"got {type(spec).__name__}"
    )
