"""Tests of numeric.activations: the numpy (float64, complex128) and torch versions of σ and σ'.

The σ and γ table comes from tests/derive/test_activations.py (docs/math.md §1 and the calculus written
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
from gradproof.derive.gamma_interval import gamma_interval as gradproof_gamma_interval
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


@pytest.fixture(autouse=True)
def _float64_torch():
    """float64 torch tensors inside this module's tests only (the default is process-wide)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)



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
    # while gradproof's σ' is exactly 1/6 (and γ = 1/6, docs/math.md §1).
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
# Property: γ bounds σ' everywhere (docs/math.md §1, the definition of γ)
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


# ---------------------------------------------------------------------------------------------
# Named torch.nn.functional activations (issue 10): σ' and the kink conventions against PyTorch's
# own functions in float64 autograd, and γ enclosures against mpmath at 50 digits.
# ---------------------------------------------------------------------------------------------
# fmt: off
NAMED_CASES = [
    # spec                     torch σ (PyTorch's own function)                 kinks
    ("leaky_relu",             lambda t: F.leaky_relu(t),                       [0.0]),
    ("leaky_relu(x, 0.2)",     lambda t: F.leaky_relu(t, 0.2),                  [0.0]),
    ("elu",                    F.elu,                                           [0.0]),
    ("elu(x, 1.5)",            lambda t: F.elu(t, 1.5),                         [0.0]),
    ("selu",                   F.selu,                                          [0.0]),
    ("celu(x, 2)",             lambda t: F.celu(t, 2.0),                        [0.0]),
    ("gelu",                   F.gelu,                                          []),
    ("silu",                   F.silu,                                          []),
    ("mish",                   F.mish,                                          []),
    ("softplus",               F.softplus,                                      [20.0]),
    ("softplus(x, 2)",         lambda t: F.softplus(t, 2.0),                    [10.0]),
    ("softsign",               F.softsign,                                      [0.0]),
    ("hardtanh",               F.hardtanh,                                      [-1.0, 1.0]),
    ("hardtanh(x, -2, 2)",     lambda t: F.hardtanh(t, -2.0, 2.0),              [-2.0, 2.0]),
    ("logsigmoid",             F.logsigmoid,                                    []),
    ("relu",                   torch.relu,                                      [0.0]),
    ("max(x, 0)",              lambda t: torch.maximum(t, torch.zeros_like(t)), [0.0]),
    ("min(x, 0)",              lambda t: torch.minimum(t, torch.zeros_like(t)), [0.0]),
    ("where(x > 0, x, 0.1*x)", lambda t: torch.where(t > 0, t, 0.1 * t),       [0.0]),
]
# fmt: on
NAMED_IDS = [case[0] for case in NAMED_CASES]


@pytest.mark.parametrize(("spec", "torch_sigma", "kinks"), NAMED_CASES, ids=NAMED_IDS)
def test_named_derivative_and_kinks_match_torch_autograd(spec, torch_sigma, kinks) -> None:
    act = activation(spec)
    x = np.union1d(np.linspace(-8.0, 25.0, 3301), kinks)
    reference = torch_derivative(torch_sigma, x)
    with np.errstate(all="raise"):
        ours = numpy_pair(act)[1](x)
    np.testing.assert_allclose(ours, reference, rtol=1e-12, atol=1e-13, err_msg=spec)
    np.testing.assert_allclose(
        numpy_pair(act)[0](x), torch_sigma(torch.tensor(x)).numpy(), rtol=1e-12, atol=1e-13
    )
    for k in kinks:  # the convention at the kink, symbolically: σ'(k) is torch's gradient there
        exact = act.derivative.subs(X, sp.Rational(k))
        assert float(exact) == pytest.approx(torch_derivative(torch_sigma, np.array([k]))[0], abs=1e-15)
    # torch_function is PyTorch's own function with the parameters of the spec
    np.testing.assert_allclose(
        torch_derivative(torch_function(act), x), reference, rtol=1e-15, atol=1e-15
    )


@pytest.mark.parametrize("spec", ["silu", "mish", "gelu", "elu(x, 1.5)", "softsign", "logsigmoid"])
def test_named_complex_step_where_analytic(spec: str) -> None:
    # complex-step (Squire & Trapp 1998) away from kinks: Im σ(x + ih)/h = σ'(x).
    f, fp = numpy_pair(activation(spec))
    x = np.linspace(-6.0, 6.0, 121) + 0.05  # avoid the kink at 0 of elu/softsign
    with np.errstate(all="raise"):
        step = f(x + 1e-30j).imag / 1e-30
    np.testing.assert_allclose(step, fp(x), rtol=1e-12, atol=1e-14)


def _mp_sup(fp: Callable, kinks: list[float]) -> mpmath.mpf:
    """max |σ'| by mpmath at 50 digits: a dense grid on [-40, 60] and far points, then local
    refinement (a bracketed maximisation) around the five best grid points."""
    with mpmath.workdps(50):
        grid = [mpmath.mpf(-40) + mpmath.mpf(k) / 50 for k in range(5001)]
        grid += [mpmath.mpf(s) * 10**e for e in (2, 4, 8) for s in (-1, 1)]
        grid += [mpmath.mpf(k) for k in kinks]
        values = sorted(((abs(fp(x)), x) for x in grid), reverse=True)
        best = values[0][0]
        for _, x in values[:5]:
            a, b = x - mpmath.mpf(1) / 50, x + mpmath.mpf(1) / 50
            for _ in range(120):  # golden-section search for max |σ'| on [a, b]
                c, d = b - (b - a) / mpmath.phi, a + (b - a) / mpmath.phi
                if abs(fp(c)) > abs(fp(d)):
                    b = d
                else:
                    a = c
            best = max(best, abs(fp((a + b) / 2)))
        return best


# mish's enclosure (no closed form: the root step stops at its cost limit) takes several seconds.
GAMMA_SPECS = [
    "sigmoid", "tanh", "relu", "hard_sigmoid", "identity",
    *(pytest.param(s, marks=pytest.mark.slow) if s == "mish" else s for s in NAMED_IDS),
]  # fmt: skip


@pytest.mark.parametrize("spec", GAMMA_SPECS)
def test_gamma_interval_encloses_mpmath_supremum(spec: str) -> None:
    act = activation(spec)
    lo, hi = gradproof_gamma_interval(spec)
    assert lo.is_Rational and hi.is_Rational and lo <= hi
    assert hi - lo <= sp.Rational(1, 10**12) * hi
    fp = sp.lambdify(X, act.derivative, "mpmath")
    kinks = dict((case[0], case[2]) for case in NAMED_CASES).get(spec, [-3.0, 0.0, 3.0])
    numeric = _mp_sup(fp, kinks)
    with mpmath.workdps(50):
        lo_mp = mpmath.mpf(lo.p) / lo.q
        hi_mp = mpmath.mpf(hi.p) / hi.q
        assert numeric <= hi_mp * (1 + mpmath.mpf(10) ** -40)  # no point beats the upper bound
        # the supremum is reached up to the sampling (softplus/logsigmoid approach 1 as |x| → ∞)
        assert numeric >= lo_mp * (1 - mpmath.mpf(10) ** -12)


@settings(max_examples=15, deadline=None)
@given(
    slope=st.fractions(min_value=-3, max_value=3, max_denominator=100).filter(lambda s: s != 0),
    alpha=st.fractions(min_value=sp.Rational(1, 10), max_value=4, max_denominator=100),
)
def test_gamma_interval_of_random_parameters(slope, alpha) -> None:
    # leaky_relu: σ' ∈ {1, s}, so γ = max(1, |s|); elu: σ' = 1 or α e^x ≤ α, so γ = max(1, α);
    # celu: σ' = 1 or e^{x/α} ≤ 1, so γ = 1 (torch.nn.functional's definitions).
    s, a = sp.Rational(slope.numerator, slope.denominator), sp.Rational(alpha.numerator, alpha.denominator)
    for spec, true in [
        (f"leaky_relu(x, {s})", max(sp.S.One, abs(s))),
        (f"elu(x, {a})", max(sp.S.One, a)),
        (f"celu(x, {a})", sp.S.One),
    ]:
        lo, hi = gradproof_gamma_interval(spec)
        assert lo <= true <= hi, spec


def test_silu_gamma_is_certified_not_exact() -> None:
    import gradproof as gp

    lo, hi = gp.gamma_interval("x*sigmoid(x)")
    assert not gp.gamma_is_exact("silu") and gp.gamma("silu") == hi
    assert gp.gamma_is_exact("sigmoid") and gp.gamma("sigmoid") == sp.Rational(1, 4)
    # SiLU's γ: σ'' = 0 at the root x* ≈ 2.3994 of 2 + x(1 - 2σ(x)) = 0 (mpmath, 50 digits)
    with mpmath.workdps(50):
        sig = lambda t: 1 / (1 + mpmath.exp(-t))  # noqa: E731
        root = mpmath.findroot(lambda t: 2 + t * (1 - 2 * sig(t)), 2.4)
        true = sig(root) * (1 + root * (1 - sig(root)))
        assert mpmath.mpf(lo.p) / lo.q <= true <= mpmath.mpf(hi.p) / hi.q


def test_unknown_name_lists_every_accepted_name() -> None:
    with pytest.raises(GradproofError) as info:
        activation("swish(x)")
    message = str(info.value)
    for name in ("leaky_relu", "elu", "selu", "celu", "gelu", "silu", "mish", "softplus",
                 "softsign", "hardtanh", "logsigmoid", "max", "min", "where"):
        assert name in message
