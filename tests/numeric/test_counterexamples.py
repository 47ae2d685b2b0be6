"""numeric.counterexamples against the numbers quoted in docs/math.md §1 (imprecision 1)."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest

from gradproof.derive.errors import GradproofError
from gradproof.numeric.counterexamples import eigen_vs_singular, saturation_growth, transient_growth


def _half_unit_of_last_digit(quoted: str) -> float:
    """The rounding tolerance a quoted number carries: '16.4' -> 0.05, '5.5e3' -> 50."""
    exponent = Decimal(quoted).as_tuple().exponent
    assert isinstance(exponent, int)
    return 0.5 * 10.0**exponent


# docs/math.md §1: "‖W^k‖₂ = 5.16, 9.07, 16.4, 19.4, 13.5, 1.43, 0.015 for k = 1, 2, 5, 10, 20, 50, 100"
MATH_MD_TRANSIENT = {1: "5.16", 2: "9.07", 5: "16.4", 10: "19.4", 20: "13.5", 50: "1.43", 100: "0.015"}


@pytest.mark.parametrize("k, quoted", MATH_MD_TRANSIENT.items(), ids=[f"k={k}" for k in MATH_MD_TRANSIENT])
def test_transient_growth_matches_math_md(k: int, quoted: str) -> None:
    r = transient_growth()
    assert math.isclose(r.norm(k), float(quoted), rel_tol=0.0, abs_tol=_half_unit_of_last_digit(quoted))


def test_transient_growth_closed_form() -> None:
    """W = 0.9 I + 5 E_12 gives W^k = [[a, c], [0, a]] with a = 0.9^k, c = 5 k 0.9^(k-1);
    its largest singular value is (c + sqrt(c² + 4a²)) / 2 (σ1 σ2 = a², σ1² + σ2² = 2a² + c²)."""
    ks = tuple(range(0, 121))
    r = transient_growth(ks=ks)
    a = 0.9 ** np.array(ks, dtype=float)
    c = 5.0 * np.array(ks) * 0.9 ** (np.array(ks, dtype=float) - 1)
    np.testing.assert_allclose(r.norms, (c + np.sqrt(c**2 + 4 * a**2)) / 2, rtol=1e-12)


def test_transient_growth_shape_of_the_curve() -> None:
    r = transient_growth()
    assert r.spectral_radius == pytest.approx(0.9, rel=1e-12) and r.spectral_radius < 1
    assert r.sigma_max > 1
    norms = list(r.norms)
    assert norms[:4] == sorted(norms[:4])  # k = 1, 2, 5, 10: growth first
    assert norms[0] > 1 and max(norms) > 19
    assert norms[-1] < 0.02  # and decay in the end
    assert r.peak[0] == 10


def test_saturation_growth_matches_math_md() -> None:
    # docs/math.md §1: "W = [[-1, 1], [-2, 1.5]] (ρ ≈ 0.707, ‖W‖₂ ≈ 2.87) with D = diag(0, 1)
    # gives ‖(DW)^20‖ ≈ 5.5e3"
    r = saturation_growth()
    assert math.isclose(r.spectral_radius, 0.707, abs_tol=_half_unit_of_last_digit("0.707"))
    assert math.isclose(r.sigma_max, 2.87, abs_tol=_half_unit_of_last_digit("2.87"))
    assert math.isclose(r.norm, 5.5e3, abs_tol=_half_unit_of_last_digit("5.5e3"))
    assert r.k == 20


def test_saturation_growth_closed_forms() -> None:
    r = saturation_growth()
    # complex pair: |λ|² = det W = -1.5 + 2 = 0.5
    assert r.spectral_radius == pytest.approx(math.sqrt(0.5), rel=1e-12)
    # ‖W‖₂² = largest eigenvalue of WᵀW = [[5, -4], [-4, 3.25]]
    tr, det = 8.25, 5 * 3.25 - 16
    assert r.sigma_max == pytest.approx(math.sqrt((tr + math.sqrt(tr**2 - 4 * det)) / 2), rel=1e-12)
    # DW = [[0, 0], [-2, 1.5]]: rank one, (DW)^k = 1.5^(k-1) DW, ‖DW‖₂ = sqrt(4 + 2.25) = 2.5
    assert r.spectral_radius_DW == pytest.approx(1.5, rel=1e-12)
    np.testing.assert_allclose(r.norms, 2.5 * 1.5 ** np.arange(20), rtol=1e-12)
    assert r.norm == pytest.approx(2.5 * 1.5**19, rel=1e-12)


def test_saturation_quote_is_the_DW_reading() -> None:
    """The other readings of docs/math.md's sentence do not give 5.5e3: (WD)^20 with the same D gives
    ≈ 4.0e3, and D = diag(1, 0) keeps ‖(DW)^k‖ = √2 for every k."""
    W = np.array([[-1.0, 1.0], [-2.0, 1.5]])
    D = np.diag([0.0, 1.0])
    wd = np.linalg.norm(np.linalg.matrix_power(W @ D, 20), 2)
    assert not math.isclose(wd, 5.5e3, abs_tol=50)
    other = saturation_growth(D=np.diag([1.0, 0.0]))
    np.testing.assert_allclose(other.norms, math.sqrt(2.0), rtol=1e-12)


def test_eigen_vs_singular() -> None:
    sym = eigen_vs_singular([[2.0, 1.0], [1.0, -3.0]])
    assert sym.is_normal and sym.spectral_radius == pytest.approx(sym.sigma_max, rel=1e-12)
    rot = eigen_vs_singular([[0.0, -1.0], [1.0, 0.0]])
    assert rot.is_normal and rot.gap == pytest.approx(0.0, abs=1e-12)
    tri = eigen_vs_singular([[0.9, 5.0], [0.0, 0.9]])
    assert not tri.is_normal and tri.gap > 4
    # W = [[a, c], [0, a]]: WWᵀ − WᵀW = [[c², 0], [0, −c²]], Frobenius norm √2 c² = 25√2
    assert tri.commutator_norm == pytest.approx(25 * math.sqrt(2), rel=1e-12)


@pytest.mark.parametrize(
    "call",
    [
        lambda: transient_growth(np.zeros((2, 3))),
        lambda: transient_growth(ks=(-1,)),
        lambda: transient_growth(ks=()),
        lambda: saturation_growth(k=0),
        lambda: saturation_growth(D=np.ones((2, 2))),
        lambda: saturation_growth(D=np.eye(3)),
        lambda: eigen_vs_singular([[np.nan]]),
    ],
    ids=["W-not-square", "negative-k", "no-k", "k=0", "D-not-diagonal", "D-wrong-shape", "nan"],
)
def test_bad_arguments(call) -> None:
    with pytest.raises(GradproofError):
        call()
