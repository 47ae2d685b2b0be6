"""γ always finishes (a cost limit on the closed-form root step), and the tails |x| ≥ 2^1100 of the
certified enclosure rest on a monotonicity argument, not on a SymPy limit."""

from __future__ import annotations

import sys
from fractions import Fraction

import mpmath
import pytest
import sympy as sp

import gradproof.derive  # noqa: F401  (loads the modules below)
from gradproof.derive import gamma, gamma_enclosure, gamma_is_exact
from gradproof.derive.activations import ACTIVATION_NAMES, X, activation

GI = sys.modules["gradproof.derive.gamma_interval"]
G = sys.modules["gradproof.derive.gamma"]

SLOW = {"mish"}
NAMES = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in ACTIVATION_NAMES]


@pytest.mark.parametrize("name", NAMES)
def test_gamma_finishes_for_every_named_activation(name):
    value = gamma(name)
    enclosure = gamma_enclosure(name)
    assert value.is_number and value.is_finite and value > 0
    assert enclosure.lo <= enclosure.hi
    assert enclosure.hi - enclosure.lo <= sp.Rational(1, 10**12) * enclosure.hi
    if gamma_is_exact(name):
        assert enclosure.lo <= value <= enclosure.hi and enclosure.reason == ""
        if value.is_Rational:
            assert enclosure.lo == enclosure.hi == value
    else:
        assert value == enclosure.hi and "cost limit" in enclosure.reason


def _mish_prime(x):
    s = mpmath.log1p(mpmath.exp(x))  # softplus
    return mpmath.tanh(s) + x * mpmath.sech(s) ** 2 / (1 + mpmath.exp(-x))


@pytest.mark.slow
def test_mish_enclosure_agrees_with_mpmath_50_digits():
    enclosure = gamma_enclosure("mish")
    assert not enclosure.is_exact and gamma("mish") == enclosure.hi
    assert enclosure.tails == "monotone"
    with mpmath.workdps(50):
        # mish'' = 0 at the maximum of mish' (x* ≈ 1.49), by mpmath's own differentiation
        root = mpmath.findroot(lambda t: mpmath.diff(_mish_prime, t), mpmath.mpf("1.49"))
        peak = _mish_prime(root)
        # the negative dip of mish' (x ≈ -2.2) is smaller in size
        dip = mpmath.findroot(lambda t: mpmath.diff(_mish_prime, t), mpmath.mpf("-2.2"))
        assert abs(_mish_prime(dip)) < peak
        lo = mpmath.mpf(enclosure.lo.p) / enclosure.lo.q
        hi = mpmath.mpf(enclosure.hi.p) / enclosure.hi.q
        assert lo <= peak <= hi
        assert hi - lo <= mpmath.mpf(10) ** -12 * hi
        assert mpmath.nstr(peak, 15) == "1.08849816125173"


def test_closed_form_root_step_refuses_a_decimal_written_as_a_fraction():
    """The cost limit: nsimplify's p/q with 45 digits is not accepted as a closed form."""
    decimal = sp.Rational(2981142358970856918588837816395819642255667, 10**42)
    assert G._cost(decimal) > G._MAX_CANDIDATE_COST
    assert G._cost(sp.sqrt(2) + 1) <= G._MAX_CANDIDATE_COST
    assert G._cost(sp.log(3) / 2) <= G._MAX_CANDIDATE_COST


def test_closed_forms_are_still_found_within_the_limit():
    assert gamma("erf(x)") == 2 / sp.sqrt(sp.pi)
    assert sp.simplify(gamma("gelu") - (sp.exp(-1) / sp.sqrt(sp.pi) + sp.erf(1) / 2 + sp.S.Half)) == 0
    assert gamma("tanh(3*x)") == 3


# -- the tails -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_tails_are_bounded_without_a_limit(name):
    bounds = GI._tail_bounds(name)
    fp = sp.lambdify(X, activation(name).derivative, "mpmath")
    with mpmath.workdps(50):
        for sign, (ub, how) in bounds.items():
            assert how in ("interval", "monotone"), (name, sign, how)
            samples = [abs(fp(sign * mpmath.mpf(2) ** e)) for e in (1100, 1101, 1500, 3000)]
            ub_mp = mpmath.mpf(ub.numerator) / ub.denominator
            assert max(samples) <= ub_mp  # valid on the ray
            assert ub_mp <= max(samples) * (1 + mpmath.mpf(10) ** -15) + mpmath.mpf(2) ** -100  # tight


def test_silu_and_mish_tails_use_the_log_rational_argument():
    for name in ("silu", "mish"):
        assert {how for _, how in GI._tail_bounds(name).values()} == {"monotone"}
    assert gamma_enclosure("silu").tails == "monotone"


T = GI._T


def test_log_rational_ray_bound_values():
    reach = mpmath.mpf(2) ** 20
    form = 1 / (1 + T) - sp.log(T) * T / (1 + T) ** 2  # SiLU' at +∞ in t = e^{-x}
    ub = GI._log_rational_ray_bound(form, reach)
    assert Fraction(1) <= ub <= Fraction(1) + Fraction(1, 2**100)
    with mpmath.workdps(40):  # the true values on the ray are below the bound
        for e in (20, 21, 30):
            t = mpmath.exp(-(mpmath.mpf(2) ** e))
            value = 1 / (1 + t) - mpmath.log(t) * t / (1 + t) ** 2
            assert value <= mpmath.mpf(ub.numerator) / ub.denominator


@pytest.mark.parametrize(
    "form",
    [sp.log(T), 1 / T, sp.log(T) ** 2 / (1 + T), sp.exp(T) + T * sp.log(T), sp.sin(sp.log(T))],
    ids=["log", "pole", "log-squared", "not-rational", "oscillating"],
)
def test_log_rational_ray_bound_refuses_what_it_cannot_prove(form):
    assert GI._log_rational_ray_bound(form, mpmath.mpf(2) ** 1100) is None


def test_power_decay_ray_bound():
    reach = mpmath.mpf(2) ** 1100
    ub = GI._power_decay_ray_bound(X * sp.exp(-X) + 1, 1, reach)
    assert Fraction(1) <= ub <= Fraction(1) + Fraction(1, 2**100)
    assert GI._power_decay_ray_bound(X * sp.exp(-X), -1, reach) is None  # grows towards -∞
    assert GI._power_decay_ray_bound(X**2 * sp.exp(-X**2 / 2), -1, reach) < Fraction(1, 2**3990)


@pytest.mark.parametrize("first_import", [
    "from gradproof.derive import gamma_interval as f; print(f('tanh'))",
    "from gradproof.derive.gamma_interval import gamma_interval as f; print(f('tanh'))",
    "from gradproof.derive.gamma import gamma as f; print(f('tanh'))",
])
def test_each_gamma_module_can_be_the_first_import(first_import):
    # activations.py used to import gamma/gamma_interval at its end, a cycle that failed whenever a
    # program's first import was one of those modules (a fresh interpreter shows it; this one cannot).
    import subprocess

    run = subprocess.run([sys.executable, "-c", first_import], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() in ("(1, 1)", "1")
