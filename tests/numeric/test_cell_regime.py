"""numeric.regime / bound_profile for cells defined by equations (numeric/cell_regime.py).

Every bound is checked against an independent computation: the step Jacobians of the torch
reference built from the same equations (numeric.torch_reference, autodiff of separate torch code)
and the brute-force ordered product J_T ⋯ J_{k+1} of those Jacobians (docs/math.md §1, numerator
layout). The expected η of the vanilla RNN is γ σ_max(W) (Pascanu et al. 2013, docs/math.md §1),
that of IndRNN γ max|u| (Li et al. 2018: the recurrent matrix is diag(u)).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradproof.numeric as num
from gradproof.derive import SHIPPED_CELL_NAMES, cell, define_cell
from gradproof.numeric.cell_regime import UNDECIDED, CellRegime, step_bounds
from gradproof.numeric.regime import EXPLODING, VANISHING, bound_profile, model_regime, regime
from gradproof.numeric.torch_reference import TorchReference
from tests.derive.test_define_random import cells as random_cells

HIDDEN, INPUTS, T = 3, 2, 12


def _torch_jacobians(c, p, xs, s0):
    return TorchReference().step_jacobians(c, p, xs, s0)


def _spectral(J: np.ndarray) -> np.ndarray:
    """‖J_t‖₂ from the eigenvalues of JᵀJ (not the SVD the code under test uses)."""
    return np.sqrt(np.array([max(0.0, max(np.linalg.eigvalsh(j.T @ j))) for j in J]))


def _brute_log_products(J: np.ndarray) -> np.ndarray:
    """log ‖J_T ⋯ J_{k+1}‖₂ for k = 0..T-1, by multiplying the matrices out."""
    T_ = J.shape[0]
    out = np.empty(T_)
    P = np.eye(J.shape[1])
    for k in range(T_ - 1, -1, -1):
        P = P @ J[k]
        norm = _spectral(P[None])[0]
        out[k] = math.log(norm) if norm > 0 else -math.inf
    return out


@pytest.mark.parametrize("act, gamma", [("tanh", 1.0), ("sigmoid", 0.25), ("relu", 1.0)])
def test_defined_vanilla_rnn_gives_pascanu_eta(act, gamma):
    c = define_cell("my-rnn", ("h",), f"h = {act}(W @ h + U @ x + b)")
    p = num.init(c, hidden=4, inputs=2, seed=7)
    r = regime(c, p)
    assert isinstance(r, CellRegime)
    sigma = float(np.sqrt(max(np.linalg.eigvalsh(p["W"].T @ p["W"]))))
    assert r.eta == pytest.approx(gamma * sigma, rel=1e-12)
    assert r.eta == pytest.approx(regime(act, p["W"]).eta, rel=1e-14)
    assert r.verdict == (VANISHING if gamma * sigma < 1 else EXPLODING)
    assert list(r.blocks) == ["W"] and r.main == "W"


@pytest.mark.parametrize("u, verdict", [((0.5, -0.9, 0.2), VANISHING), ((0.5, -1.3, 0.2), EXPLODING)])
def test_indrnn_eta_is_max_abs_u(u, verdict):
    c = cell("indrnn")
    p = dict(num.init(c, hidden=3, inputs=2, seed=1))
    p["u"] = np.array(u)
    r = regime("indrnn", p)  # a shipped cell by name
    assert r.eta == pytest.approx(max(abs(v) for v in u), rel=1e-15)
    assert r.verdict == verdict
    assert r.blocks["u"].sigma_max == pytest.approx(max(abs(v) for v in u), rel=1e-14)


@pytest.mark.parametrize("name", SHIPPED_CELL_NAMES)
def test_step_bound_is_above_every_torch_step_jacobian(name):
    c = cell(name)
    p = num.init(c, hidden=HIDDEN, inputs=INPUTS, seed=3)
    xs = num.random_sequence(T, INPUTS, seed=4, scale=2.0)
    s0 = np.random.default_rng(5).uniform(-1, 1, size=c.state_size(HIDDEN))
    beta = step_bounds(c, p, xs, s0)
    norms = _spectral(_torch_jacobians(c, p, xs, s0))
    assert beta.shape == (T,)
    assert np.all(norms <= beta * (1 + 1e-12))
    # not vacuous: within a modest factor of the true norm
    assert np.all(beta <= 10 * norms)


@pytest.mark.parametrize("name", SHIPPED_CELL_NAMES)
def test_bound_profile_is_above_the_brute_force_product(name):
    c = cell(name)
    p = num.init(c, hidden=HIDDEN, inputs=INPUTS, seed=8)
    xs = num.random_sequence(T, INPUTS, seed=9)
    s0 = np.random.default_rng(10).uniform(-1, 1, size=c.state_size(HIDDEN))
    bp = bound_profile(c, p, xs, s0)
    brute = _brute_log_products(_torch_jacobians(c, p, xs, s0))
    assert bp.T == T and bp.activation == name
    with np.errstate(invalid="ignore"):  # -inf <= -inf
        assert np.all((brute <= bp.log_data_bound + 1e-10) | (brute == -math.inf))
    r = regime(c, p)
    if math.isfinite(r.eta):  # the data-free bound holds from an initial state in [-1, 1]
        assert np.all(bp.log_data_bound <= bp.log_eta_bound + 1e-10)
        np.testing.assert_allclose(bp.log_eta_bound, np.arange(T, 0, -1) * math.log(r.eta), rtol=1e-14)
    else:
        assert np.all(bp.log_eta_bound == math.inf)


def test_indrnn_step_bound_is_the_exact_step_norm():
    """J_t = diag(relu'(z_t) ⊙ u) is diagonal, so β_t = max_i |J_t,ii| = ‖J_t‖₂ exactly, and the
    data bound of span T - k is Σ_{t>k} log ‖J_t‖₂."""
    c = cell("indrnn")
    p = num.init(c, hidden=HIDDEN, inputs=INPUTS, seed=2)
    p = {**p, "b": np.abs(p["b"]) + 3.0}  # z > 0 on this trajectory: no zero factor
    xs = num.random_sequence(T, INPUTS, seed=2, scale=0.1)
    J = _torch_jacobians(c, p, xs, np.zeros(HIDDEN))
    step_norms = np.max(np.abs(np.einsum("tii->ti", J)), axis=1)
    np.testing.assert_allclose(step_bounds(c, p, xs), step_norms, rtol=1e-14, atol=0)
    expected = np.cumsum(np.log(step_norms)[::-1])[::-1]
    np.testing.assert_allclose(bound_profile(c, p, xs).log_data_bound, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name, bounded", [("mgu", {"h"}), ("lstm-coupled", {"h", "c"}), ("lstm-peephole", {"h"})])
def test_state_ranges_hold_on_trajectories(name, bounded):
    """h = (1-f) h + f g and c = f c + (1-f) g are convex mixes, so they stay in [-1, 1]; the
    peephole cell's c = f c + i g can grow (both gates near 1), so no range is claimed for it."""
    c = cell(name)
    p = num.init(c, hidden=HIDDEN, inputs=INPUTS, seed=11)
    r = regime(c, p)
    ranges = dict(r.state_ranges)
    assert {k for k, (lo, hi) in ranges.items() if math.isfinite(lo) and math.isfinite(hi)} == bounded
    xs = num.random_sequence(200, INPUTS, seed=12, scale=5.0)
    s0 = np.random.default_rng(13).uniform(-1, 1, size=c.state_size(HIDDEN))
    states = num.unroll(c, p, xs, s0).states
    for k, s in enumerate(c.state):
        lo, hi = ranges[s]
        block = states[:, k * HIDDEN : (k + 1) * HIDDEN]
        assert np.all(block >= lo - 1e-15) and np.all(block <= hi + 1e-15)
    if name == "lstm-peephole":
        assert r.verdict == UNDECIDED and "c(t-1)" in r.unbounded and r.eta == math.inf


def test_mgu_blocks_and_worst_block():
    c = cell("mgu")
    p = num.init(c, hidden=HIDDEN, inputs=INPUTS, seed=0)
    r = model_regime("mgu", p)
    assert isinstance(r, CellRegime)
    expected = {"W_f": 0.25 * np.linalg.svd(p["W_f"])[1][0], "W_h": 1.0 * np.linalg.svd(p["W_h"])[1][0]}
    assert {k: b.eta for k, b in r.blocks.items()} == pytest.approx(expected, rel=1e-12)
    assert r.main == max(expected, key=expected.get)
    assert {"sigmoid", "tanh"} <= set(r.gammas) and r.gammas["sigmoid"].exact == "1/4"
    out = r.to_json()
    assert out["worst_block"] == r.main and out["regime"] == r.verdict


def test_certified_gamma_for_a_cell_without_closed_form():
    c = define_cell("swishy", ("h",), "h = silu(W @ h + U @ x + b)")
    p = num.init(c, hidden=2, inputs=1, seed=0)
    r = regime(c, p)
    g = r.gammas["silu"]
    import mpmath

    mpmath.mp.dps = 40
    d = lambda x: mpmath.diff(lambda y: y / (1 + mpmath.exp(-y)), x)  # noqa: E731 - silu'
    top = d(mpmath.findroot(lambda x: mpmath.diff(d, x), 2.4))  # sup|silu'| at silu'' = 0
    assert g.exact is None
    assert Fraction(g.lo) <= Fraction(str(top - mpmath.mpf(10) ** -35)) and top <= mpmath.mpf(g.hi_float)
    assert r.eta == pytest.approx(g.hi_float * np.linalg.norm(p["W"], 2), rel=1e-14)
    assert "certified" in g.text


@settings(max_examples=20, deadline=None)
@given(scale=st.floats(0.05, 3.0), seed=st.integers(0, 2**16))
def test_property_torch_norms_below_beta_below_eta(scale, seed):
    c = cell("mgu")
    p = {k: scale * v for k, v in num.init(c, hidden=2, inputs=2, seed=seed).items()}
    xs = num.random_sequence(5, 2, seed=seed + 1, scale=3.0)
    s0 = np.random.default_rng(seed).uniform(-1, 1, size=2)
    beta = step_bounds(c, p, xs, s0)
    norms = _spectral(_torch_jacobians(c, p, xs, s0))
    eta = regime(c, p).eta
    assert np.all(norms <= beta * (1 + 1e-12) + 1e-300)
    assert np.all(beta <= eta * (1 + 1e-12))


def test_builtin_rnn_by_name_matches_the_activation_form():
    """bound_profile("rnn-tanh", params, xs) and bound_profile("tanh", W_h, z) are the same bounds
    (docs/math.md §1: β_t = max|tanh'(z_t)| σ_max(W_h), η = γ σ_max(W_h))."""
    p = num.init("rnn-tanh", hidden=4, inputs=2, seed=3)
    xs = num.random_sequence(15, 2, seed=4)
    z = num.unroll("rnn-tanh", p, xs).intermediates()["z"]
    a = bound_profile("rnn-tanh", p, xs)
    b = bound_profile("tanh", p["W_h"], z)
    np.testing.assert_allclose(a.log_data_bound, b.log_data_bound, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(a.log_eta_bound, b.log_eta_bound, rtol=1e-13, atol=1e-13)
    assert a.eta == pytest.approx(b.eta, rel=1e-14)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c=random_cells(), seed=st.integers(0, 2**16), scale=st.floats(0.1, 3.0))
def test_property_random_cells_bounds_are_sound(c, seed, scale):
    """For random compositions of gates, states, products, sums and 1 - a: the torch step
    Jacobians never exceed the derived step bound β_t, β_t never exceeds η, and the states stay
    inside the ranges claimed from an initial state in [-1, 1]."""
    p = {k: scale * v for k, v in num.init(c, hidden=2, inputs=2, seed=seed).items()}
    xs = num.random_sequence(6, 2, seed=seed + 1, scale=3.0)
    s0 = np.random.default_rng(seed).uniform(-1, 1, size=c.state_size(2))
    beta = step_bounds(c, p, xs, s0)
    norms = _spectral(_torch_jacobians(c, p, xs, s0))
    assert np.all(norms <= beta * (1 + 1e-12) + 1e-300)
    r = regime(c, p)
    if math.isfinite(r.eta):
        assert np.all(beta <= r.eta * (1 + 1e-12))
    states = num.unroll(c, p, xs, s0).states
    for k, (name, (lo, hi)) in enumerate(r.state_ranges):
        block = states[:, k * 2 : (k + 1) * 2]
        assert np.all(block >= lo - 1e-12) and np.all(block <= hi + 1e-12), name
