"""Surrogate spike functions: Heaviside forward, the documented gradient backward."""

from __future__ import annotations

import math
import pickle

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bidl.neurons import (
    SPIKE_FUNCTIONS,
    ATan,
    Rectangle,
    Sigmoid,
    SurrogateSpike,
    Triangle,
    build_spike_fn,
)
from bidl.registry import BidlError

ALL = [
    Rectangle(),
    Rectangle(a=0.25),
    Sigmoid(),
    Sigmoid(alpha=10.0),
    ATan(),
    ATan(0.5),
    Triangle(),
    Triangle(a=0.3),
]


# Each surrogate's derivative, written out from its formula in plain Python.
def expected_grad(fn: SurrogateSpike, x: float) -> float:
    if isinstance(fn, Rectangle):
        return 1.0 / (2 * fn.a) if abs(x) < fn.a else 0.0
    if isinstance(fn, Sigmoid):
        s = 1.0 / (1.0 + math.exp(-fn.alpha * x))
        return fn.alpha * s * (1 - s)
    if isinstance(fn, ATan):
        return (fn.alpha / 2) / (1 + (math.pi / 2 * fn.alpha * x) ** 2)
    if isinstance(fn, Triangle):
        return max(0.0, 1 / fn.a - abs(x) / fn.a**2)
    raise AssertionError(fn)


def grad_of(fn, x: torch.Tensor, upstream: torch.Tensor | None = None) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    out = fn(x)
    out.backward(torch.ones_like(x) if upstream is None else upstream)
    return x.grad


@pytest.mark.parametrize("fn", ALL, ids=repr)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_is_heaviside_in_input_dtype(fn, dtype):
    x = torch.tensor([-2.0, -0.1, 0.0, 1e-6, 0.1, 3.0], dtype=dtype)
    out = fn(x.clone().requires_grad_(True))
    assert out.dtype == dtype
    assert out.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]  # 0 at exactly 0: x > 0
    with torch.no_grad():
        assert fn(x).tolist() == out.tolist()


@pytest.mark.parametrize("fn", ALL, ids=repr)
def test_gradient_matches_formula(fn):
    xs = torch.linspace(-2.5, 2.5, 101, dtype=torch.float64)
    got = grad_of(fn, xs)
    want = torch.tensor([expected_grad(fn, float(v)) for v in xs], dtype=torch.float64)
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(fn.grad(xs), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("fn", ALL, ids=repr)
def test_gradient_scales_upstream_gradient(fn):
    x = torch.tensor([-0.2, 0.05, 0.3], dtype=torch.float64)
    up = torch.tensor([2.0, -3.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(grad_of(fn, x, up), up * fn.grad(x))


@pytest.mark.parametrize("a", [0.5, 0.25, 1.0])
def test_rectangle_gradient_exact(a):
    inside = torch.tensor([-a * 0.99, -a / 2, 0.0, a / 3, a * 0.99])
    outside = torch.tensor([-5.0, -a * 1.01, a * 1.01, a * 2, 7.0])
    fn = Rectangle(a)
    g_in = grad_of(fn, inside)
    g_out = grad_of(fn, outside)
    assert g_in.tolist() == [1.0 / (2 * a)] * 5
    assert g_out.tolist() == [0.0] * 5


def test_rectangle_default_is_bidl_default():
    assert Rectangle().a == 0.5
    assert grad_of(Rectangle(), torch.tensor([0.0, 0.49, 0.51])).tolist() == [1.0, 1.0, 0.0]


def test_default_parameters():
    assert Sigmoid().alpha == 4.0
    assert ATan().alpha == 2.0
    assert Triangle().a == 1.0
    # ATan peaks at alpha/2, sigmoid at alpha/4, triangle at 1/a
    assert grad_of(ATan(), torch.zeros(1)).item() == pytest.approx(1.0)
    assert grad_of(Sigmoid(), torch.zeros(1)).item() == pytest.approx(1.0)
    assert grad_of(Triangle(), torch.zeros(1)).item() == pytest.approx(1.0)


def test_no_grad_path_builds_no_graph():
    x = torch.randn(5)
    out = Rectangle()(x)
    assert out.grad_fn is None
    with torch.no_grad():
        assert Rectangle()(x.requires_grad_(True)).grad_fn is None


def test_half_precision():
    x = torch.tensor([-1.0, 0.2, 0.6], dtype=torch.float16, requires_grad=True)
    out = Rectangle()(x)
    assert out.dtype == torch.float16
    out.sum().backward()
    assert x.grad.dtype == torch.float16
    assert x.grad.tolist() == [0.0, 1.0, 0.0]


def test_repr_and_equality():
    assert repr(Rectangle()) == "Rectangle(a=0.5)"
    assert repr(Sigmoid(alpha=3)) == "Sigmoid(alpha=3.0)"
    assert repr(ATan()) == "ATan(alpha=2.0)"
    assert repr(Triangle(a=0.5)) == "Triangle(a=0.5)"
    assert Rectangle() == Rectangle(0.5)
    assert Rectangle() != Rectangle(0.3)
    assert Rectangle(1.0) != Triangle(1.0)
    assert pickle.loads(pickle.dumps(ATan(3.0))) == ATan(3.0)


@pytest.mark.parametrize("cls", [Rectangle, Sigmoid, ATan, Triangle])
@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf")])
def test_bad_parameter(cls, bad):
    with pytest.raises(BidlError, match="must be a positive number"):
        cls(bad)


# --- build_spike_fn -------------------------------------------------------------------


def test_build_default_is_rectangle():
    assert build_spike_fn(None) == Rectangle(0.5)
    assert build_spike_fn() == Rectangle(0.5)


@pytest.mark.parametrize(
    ("name", "want"),
    [
        ("rectangle", Rectangle()),
        ("rect", Rectangle()),
        ("Rect", Rectangle()),
        ("sigmoid", Sigmoid()),
        ("atan", ATan()),
        ("ATan", ATan()),
        ("triangle", Triangle()),
    ],
)
def test_build_from_name(name, want):
    assert build_spike_fn(name) == want


def test_build_from_dict():
    assert build_spike_fn(dict(type="atan", alpha=3.0)) == ATan(3.0)
    assert build_spike_fn({"type": "rect", "a": 0.25}) == Rectangle(0.25)
    assert build_spike_fn(dict(type=Triangle, a=2.0)) == Triangle(2.0)
    assert build_spike_fn(dict(type="sigmoid")) == Sigmoid()


def test_build_from_callable_and_class():
    def custom(x):
        return (x > 1).float()

    assert build_spike_fn(custom) is custom
    fn = ATan(5.0)
    assert build_spike_fn(fn) is fn
    assert build_spike_fn(Sigmoid) == Sigmoid()


def test_build_errors():
    with pytest.raises(BidlError) as err:
        build_spike_fn("gaussian")
    msg = str(err.value)
    assert "'gaussian'" in msg
    for name in SPIKE_FUNCTIONS:
        assert repr(name) in msg
    with pytest.raises(BidlError, match="'type' key"):
        build_spike_fn(dict(alpha=2.0))
    with pytest.raises(BidlError, match="spike function 'atan'.*'a'"):
        build_spike_fn(dict(type="atan", a=2.0))
    with pytest.raises(BidlError, match="spike_func must be"):
        build_spike_fn(3.0)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=40),
    st.sampled_from(ALL),
)
def test_spikes_are_binary_and_match_sign(values, fn):
    x = torch.tensor(values, dtype=torch.float64, requires_grad=True)
    out = fn(x)
    assert set(out.tolist()) <= {0.0, 1.0}
    assert out.tolist() == [1.0 if v > 0 else 0.0 for v in values]
    out.sum().backward()
    assert torch.all(x.grad >= 0)
    assert torch.isfinite(x.grad).all()
