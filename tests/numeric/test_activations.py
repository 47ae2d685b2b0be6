"""Tests of numeric.activations: the numpy (float64, complex128) and torch versions of σ and σ'.

The σ and γ table comes from tests/derive/test_activations.py (MATH.md §1 and the calculus written
beside each row); numeric references are PyTorch autograd (float64), complex-step and mpmath.
"""

from __future__ import annotations

import math
from typing import Callable

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gradproof.derive.activations import BUILTIN_NAMES, X, activation
from gradproof.derive.errors import GradproofError
from gradproof.numeric.activations import numpy_pair, torch_function
from tests.derive.test_activations import (
    KINKS,
    SPECS,
    TORCH_SIGMA,
    F,
    _case_id,
    _grid,
    torch_derivative,
)

torch.set_default_dtype(torch.float64)


def sigma_np(spec: str) -> Callable:
    return numpy_pair(activation(spec))[0]


def sigma_prime_np(spec: str) -> Callable:
    return numpy_pair(activation(spec))[1]


# act.torch is PyTorch's own function; its hardsigmoid backward is only float32-accurate.
TORCH_ATOL = {"hard_sigmoid": 1e-8}


def assert_derivative_matches_autograd(
    name: str, derivative: Callable, torch_sigma: Callable, x: np.ndarray, atol: float
) -> None:
    """``derivative(x)`` equals torch autograd of ``torch_sigma`` on x: (N,)."""
    with np.errstate(all="raise"):
        ours = derivative(x)
    reference = torch_derivative(torch_sigma, x)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=atol, err_msg=name)


@pytest.mark.parametrize("spec", SPECS, ids=_case_id)
def test_numpy_derivative_matches_torch_autograd(spec: str) -> None:
    act = activation(spec)
    x = _grid()
    with np.errstate(all="raise"):
        ours = sigma_prime_np(spec)(x)
    np.testing.assert_allclose(ours, torch_derivative(TORCH_SIGMA[spec], x), rtol=0, atol=1e-12)
    assert_derivative_matches_autograd(
        act.name, sigma_prime_np(spec), torch_function(act), x, atol=TORCH_ATOL.get(spec, 1e-12)
    )

def test_relu_kink_convention_matches_torch() -> None:
    relu = activation("relu")
    at = np.array([0.0])
    assert relu.derivative.subs(X, 0) == 0  # the convention, symbolically
    assert numpy_pair(relu)[1](at)[0] == 0.0
    assert torch_derivative(torch.relu, at)[0] == 0.0  # PyTorch's own choice
    assert relu.derivative.subs(X, sp.Rational(1, 10**9)) == 1


@pytest.mark.parametrize("kink", [-3.0, 3.0])
def test_hard_sigmoid_kink_convention_matches_torch(kink: float) -> None:
    hs = activation("hard_sigmoid")
    at = np.array([kink, np.nextafter(kink, 0.0), np.nextafter(kink, kink * 2)])  # on, in, out
    torch_grad = torch_derivative(F.hardsigmoid, at)  # PyTorch's nn.Hardsigmoid itself
    assert torch_grad[0] == 0.0 and torch_grad[2] == 0.0  # 0 at ±3 and outside
    np.testing.assert_allclose(torch_grad[1], 1 / 6, rtol=0, atol=1e-8)  # 1/6 just inside
    np.testing.assert_array_equal(numpy_pair(hs)[1](at), [0.0, 1 / 6, 0.0])
    assert hs.derivative.subs(X, int(kink)) == 0
    assert hs.derivative.subs(X, sp.Rational(int(kink) * 999, 1000)) == sp.Rational(1, 6)


def test_torch_hardsigmoid_backward_uses_float32_slope() -> None:
    # Documents why TORCH_ATOL relaxes hard_sigmoid: torch's float64 backward returns float32(1/6),
    # while gradproof's σ' is exactly 1/6 (and γ = 1/6, MATH.md §1).
    torch_slope = torch_derivative(F.hardsigmoid, np.array([0.25]))[0]
    assert abs(torch_slope - 1 / 6) < 1e-8
    assert sigma_prime_np("hard_sigmoid")(np.array([0.25]))[0] == 1 / 6


@pytest.mark.parametrize("spec", SPECS, ids=_case_id)
def test_numpy_forward_matches_torch(spec: str) -> None:
    act = activation(spec)
    x = np.concatenate([_grid(), [-700.0, -40.0, 40.0, 700.0]])
    with np.errstate(all="raise"):
        ours = numpy_pair(act)[0](x)
    reference = TORCH_SIGMA[spec](torch.tensor(x)).numpy()
    # a few ulp apart: torch and numpy round differently (e.g. (x+3)/6 against x/6 + 1/2)
    np.testing.assert_allclose(ours, reference, rtol=1e-14, atol=1e-16)
    np.testing.assert_allclose(torch_function(act)(torch.tensor(x)).numpy(), reference, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("spec", SPECS, ids=_case_id)
def test_complex_step_matches_numpy_derivative(spec: str) -> None:
    # Im σ(x + ih)/h = σ'(x) + O(h²) with no cancellation (Squire & Trapp 1998); h = 1e-30.
    act = activation(spec)
    x = np.union1d(np.linspace(-30.0, 30.0, 601), KINKS)
    h = 1e-30
    with np.errstate(all="raise"):
        step = numpy_pair(act)[0](x + 1j * h).imag / h
        expected = numpy_pair(act)[1](x)
    np.testing.assert_allclose(step, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", BUILTIN_NAMES)
@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=["float64", "complex128"])
def test_builtins_are_stable_for_huge_arguments(name: str, dtype: type) -> None:
    act = activation(name)
    x = np.array([-1e4, -800.0, -710.0, -40.0, 0.0, 40.0, 710.0, 800.0, 1e4])
    z = x.astype(dtype) + (1e-30j if dtype is np.complex128 else 0.0)
    with np.errstate(all="raise"):  # any overflow / invalid / underflow warning fails the test
        value, slope = numpy_pair(act)[0](z), numpy_pair(act)[1](z)
    assert value.dtype == dtype and slope.dtype == dtype
    # reference: the SymPy σ and σ' in mpmath at 9000 digits, as 1 - tanh²(1e4) ≈ 1e-8686 cancels
    # 8686 digits (SymPy's own evalf gives up and returns 1e-165 there)
    mp_sigma = sp.lambdify(X, act.expr, "mpmath")
    mp_slope = sp.lambdify(X, act.derivative, "mpmath")
    with mpmath.workdps(9000):
        want_value = np.array([float(mp_sigma(mpmath.mpf(v))) for v in x])
        want_slope = np.array([float(mp_slope(mpmath.mpf(v))) for v in x])
    np.testing.assert_allclose(value.real, want_value, rtol=1e-14, atol=1e-300)
    np.testing.assert_allclose(slope.real, want_slope, rtol=1e-14, atol=1e-300)


def test_user_expression_does_not_overflow_in_numpy() -> None:
    # softplus'(x) = e^x/(e^x + 1) is inf/inf in float64 for x > 709; the result is still 1.
    act = activation("softplus(x)")
    x = np.array([-1e4, -800.0, 0.0, 800.0, 1e4])
    with np.errstate(all="raise"):
        value, slope = numpy_pair(act)[0](x), numpy_pair(act)[1](x)
    np.testing.assert_allclose(value, [0.0, 0.0, math.log(2.0), 800.0, 1e4], rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(slope, [0.0, 0.0, 0.5, 1.0, 1.0], rtol=1e-15, atol=1e-300)


def test_numpy_accepts_scalars_and_keeps_shape() -> None:
    act = activation("tanh")
    assert numpy_pair(act)[0](0.5).shape == ()
    assert numpy_pair(act)[1](np.zeros((2, 3))).shape == (2, 3)
    assert sigma_prime_np("x/2+x")(np.zeros((4,))).shape == (4,)  # constant σ'
    with pytest.raises(GradproofError, match="float or complex"):
        numpy_pair(act)[0](np.array(["a"]))


def test_planted_wrong_derivative_is_caught() -> None:
    # The autograd comparison used above must fail on a wrong numpy rule (tanh' ≠ 1 - tanh).
    wrong = lambda z: 1 - np.tanh(z)  # noqa: E731
    with pytest.raises(AssertionError, match="tanh-wrong"):
        assert_derivative_matches_autograd("tanh-wrong", wrong, torch.tanh, _grid(), atol=1e-12)
    assert_derivative_matches_autograd("tanh", sigma_prime_np("tanh"), torch.tanh, _grid(), atol=1e-12)



def test_unbounded_activation_is_still_usable_numerically() -> None:
    # x**2 is a legal σ; only its γ does not exist.
    act = activation("x**2")
    assert act.derivative == 2 * X
    np.testing.assert_allclose(numpy_pair(act)[1](np.array([1.5])), [3.0], rtol=1e-15)


# ---------------------------------------------------------------------------------------------
# Property: γ bounds σ' everywhere (MATH.md §1, the definition of γ)
# ---------------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_gamma_bounds_the_derivative(data: st.DataObject) -> None:
    spec = data.draw(st.sampled_from(SPECS), label="spec")
    xs = data.draw(
        st.lists(st.floats(-1e4, 1e4, allow_nan=False), min_size=1, max_size=20), label="x"
    )
    act = activation(spec)
    with np.errstate(all="raise"):
        slope = numpy_pair(act)[1](np.array(xs))
    assert np.all(np.abs(slope) <= float(act.gamma) + 1e-12)
