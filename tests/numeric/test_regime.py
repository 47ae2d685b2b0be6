"""numeric.regime: the Pascanu et al. (2013) theorem on concrete matrices (docs/math.md §1)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradproof.derive.errors import GradproofError
from gradproof.numeric.regime import (
    BOUNDARY,
    EXPLODING,
    VANISHING,
    bound_profile,
    model_regime,
    regime,
)


def _rotation(theta: float) -> np.ndarray:
    return np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])


def _sigma_max_independent(W: np.ndarray) -> float:
    """sqrt of the largest eigenvalue of the symmetric WᵀW (not the SVD used by the code)."""
    return float(math.sqrt(max(np.linalg.eigvalsh(W.T @ W))))


# --------------------------------------------------------------------------- verdict table
# docs/math.md §1: eta = gamma * sigma_max; vanishing guaranteed when eta < 1, exploding possible
# when sigma_max > 1/gamma. gamma: tanh 1, sigmoid 1/4, relu 1, hard_sigmoid 1/6, tanh(3x) 3.
VERDICTS = [
    ("tanh", 0.5 * np.eye(3), "1", 0.5, VANISHING),
    ("tanh", 5.0 * np.eye(3), "1", 5.0, EXPLODING),
    # imprecision 2 of the lecture: for sigmoid the threshold is ||W|| < 4, not 1
    ("sigmoid", 2.0 * np.eye(2), "1/4", 0.5, VANISHING),
    ("sigmoid", 3.9 * _rotation(0.3), "1/4", 0.975, VANISHING),
    ("sigmoid", 4.1 * np.eye(2), "1/4", 1.025, EXPLODING),
    ("sigmoid", 4.0 * np.eye(2), "1/4", 1.0, BOUNDARY),
    ("relu", 0.9 * _rotation(1.0), "1", 0.9, VANISHING),
    ("hard_sigmoid", 5.0 * np.eye(2), "1/6", 5.0 / 6.0, VANISHING),
    ("hard_sigmoid", 7.0 * np.eye(2), "1/6", 7.0 / 6.0, EXPLODING),
    ("tanh(3*x)", 0.3 * np.eye(2), "3", 0.9, VANISHING),
    ("tanh(3*x)", 0.4 * np.eye(2), "3", 1.2, EXPLODING),
]


@pytest.mark.parametrize(
    "act, W, gamma_exact, eta, verdict", VERDICTS, ids=[f"{v[0]}-{v[3]:.3g}" for v in VERDICTS]
)
def test_verdict_table(act: str, W: np.ndarray, gamma_exact: str, eta: float, verdict: str) -> None:
    r = regime(act, W)
    assert r.gamma_exact == gamma_exact
    assert r.gamma == pytest.approx(float(eval(gamma_exact)), rel=1e-15)  # noqa: S307 - "1/4"
    assert r.eta == pytest.approx(eta, rel=1e-12)
    assert r.verdict == verdict == r.regime
    assert r.linear_verdict is None
    assert r.explanation.endswith(".") and "\n" not in r.explanation


def test_sigma_max_and_rho_are_independent_quantities() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        W = rng.standard_normal((4, 4))
        r = regime("tanh", W)
        assert r.sigma_max == pytest.approx(_sigma_max_independent(W), rel=1e-12)
        # ρ from the characteristic polynomial's roots, not from eigvals
        rho = max(abs(np.roots(np.poly(W))))
        assert r.spectral_radius == pytest.approx(rho, rel=1e-9)
        assert r.spectral_radius <= r.sigma_max * (1 + 1e-12)  # ρ ≤ σ_max (docs/math.md §1)


# --------------------------------------------------------------------------- linear case


def test_linear_case_disagrees_on_transient_growth_matrix() -> None:
    # docs/math.md §1, imprecision 1: ρ = 0.9 < 1 but σ_max ≈ 5.16 > 1
    r = regime("identity", [[0.9, 5.0], [0.0, 0.9]])
    assert r.linear_verdict == "vanishing"
    assert r.verdict == EXPLODING
    assert r.verdicts_disagree
    assert r.spectral_radius == pytest.approx(0.9, rel=1e-12)
    assert "disagree" in r.explanation


@pytest.mark.parametrize(
    "W, linear, general",
    [
        (1.1 * np.eye(2), "exploding", EXPLODING),
        (0.5 * np.eye(2), "vanishing", VANISHING),
        (_rotation(0.7), "marginal", BOUNDARY),  # orthogonal: ρ = σ_max = 1
    ],
    ids=["1.1I", "0.5I", "rotation"],
)
def test_linear_verdicts(W: np.ndarray, linear: str, general: str) -> None:
    r = regime("identity", W)
    assert (r.linear_verdict, r.verdict) == (linear, general)
    assert not r.verdicts_disagree


def test_linear_verdict_only_for_linear_units() -> None:
    assert regime("tanh", np.eye(2)).linear_verdict is None
    assert regime("relu", np.eye(2)).linear_verdict is None


# --------------------------------------------------------------------------- json


def test_to_json_keys_and_types() -> None:
    out = regime("identity", [[0.9, 5.0], [0.0, 0.9]]).to_json()
    for key in ("gamma", "sigma_max", "spectral_radius", "eta"):
        assert type(out[key]) is float
    assert out["regime"] == EXPLODING
    assert out["linear_verdict"] == "vanishing"
    assert out["gamma_exact"] == "1" and out["activation"] == "identity" and out["shape"] == [2, 2]
    assert json.loads(json.dumps(out)) == out
    assert "linear_verdict" not in regime("tanh", np.eye(2)).to_json()


# --------------------------------------------------------------------------- validation

BAD_MATRICES = {
    "not-square": (np.zeros((3, 4)), "(3, 4)"),
    "1-D": (np.zeros(3), "(3,)"),
    "3-D": (np.zeros((2, 2, 2)), "(2, 2, 2)"),
    "empty": (np.zeros((0, 0)), "(0, 0)"),
    "nan": (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
    "inf": (np.array([[1.0, np.inf], [0.0, 1.0]]), "inf"),
    "complex": (np.eye(2) * 1j, "complex"),
    "strings": (np.array([["a", "b"], ["c", "d"]]), "dtype"),
}


@pytest.mark.parametrize("W, fragment", BAD_MATRICES.values(), ids=BAD_MATRICES.keys())
def test_bad_matrices_raise_one_line(W: np.ndarray, fragment: str) -> None:
    with pytest.raises(GradproofError) as info:
        regime("tanh", W)
    msg = str(info.value)
    assert fragment in msg and "\n" not in msg and "expected" in msg


def test_unbounded_activation_is_refused() -> None:
    with pytest.raises(GradproofError):
        regime("x**2", np.eye(2))


def test_bad_activation_object() -> None:
    with pytest.raises(GradproofError, match="activation"):
        regime(3.0, np.eye(2))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the theorem itself


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    scale=st.floats(0.1, 3.0),
    act=st.sampled_from(["tanh", "sigmoid", "relu"]),
)
def test_every_step_jacobian_is_below_eta(seed: int, scale: float, act: str) -> None:
    """‖D(σ'(z)) W‖₂ ≤ η for any z (docs/math.md §1, the theorem's one-step bound)."""
    from gradproof.derive.activations import activation
    from gradproof.numeric.activations import numpy_pair

    rng = np.random.default_rng(seed)
    W = scale * rng.standard_normal((3, 3))
    r = regime(act, W)
    z = 5.0 * rng.standard_normal(3)
    with np.errstate(all="raise"):
        J = np.diag(numpy_pair(activation(act))[1](z)) @ W
    assert np.linalg.norm(J, 2) <= r.eta * (1 + 1e-12)


# --------------------------------------------------------------------------- bound profile


def _tanh_rnn(seed: int, n: int, m: int, T: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Independent vanilla-RNN code: returns (W_h, z) with z (T, n) the pre-activations."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((n, n))
    W *= scale / np.linalg.norm(W, 2)
    Wx = rng.standard_normal((n, m))
    b = 0.1 * rng.standard_normal(n)
    xs = rng.standard_normal((T, m))
    h = np.zeros(n)
    zs = []
    for t in range(T):
        z = W @ h + Wx @ xs[t] + b
        zs.append(z)
        h = np.tanh(z)
    return W, np.array(zs)


def test_bound_profile_against_direct_products() -> None:
    T, n = 30, 4
    W, z = _tanh_rnn(seed=3, n=n, m=2, T=T, scale=1.5)
    with np.errstate(all="raise"):
        prof = bound_profile("tanh", W, z)
    smax = _sigma_max_independent(W)
    assert prof.T == T and prof.log_eta_bound.shape == prof.log_data_bound.shape == (T,)
    np.testing.assert_array_equal(prof.spans, np.arange(T, 0, -1))
    np.testing.assert_allclose(prof.log_eta_bound, np.arange(T, 0, -1) * math.log(smax), rtol=1e-12)
    # data bound and measured norm, each k by an explicit product J_T ⋯ J_{k+1}
    measured = np.empty(T)
    for k in range(T):
        P = np.eye(n)
        data = 0.0
        for t in range(T, k, -1):  # z_t is row t-1
            d = 1.0 - np.tanh(z[t - 1]) ** 2
            P = P @ (np.diag(d) @ W)
            data += math.log(max(abs(d))) + math.log(smax)
        assert prof.log_data_bound[k] == pytest.approx(data, rel=1e-11, abs=1e-11)
        measured[k] = math.log(np.linalg.norm(P, 2))
    # the chain of bounds: measured ≤ data-dependent ≤ η^(T-k)
    assert np.all(measured <= prof.log_data_bound + 1e-10)
    assert np.all(prof.log_data_bound <= prof.log_eta_bound + 1e-10)
    attached = prof.with_measured(measured)
    assert prof.log_measured is None
    np.testing.assert_array_equal(attached.log_measured, measured)
    with pytest.raises(GradproofError, match=r"\(30,\)"):
        prof.with_measured(measured[:-1])


def test_bound_profile_long_horizon_stays_finite() -> None:
    """4^(-k) underflows float64 near k = 538 (docs/math.md §1); the log-space bound does not."""
    T = 3000
    W = 2.0 * np.eye(2)
    z = np.zeros((T, 2))  # σ'(0) = 1/4 for the sigmoid: each factor has norm exactly 1/2
    with np.errstate(all="raise"):
        prof = bound_profile("sigmoid", W, z)
    assert np.all(np.isfinite(prof.log_data_bound))
    assert prof.log_data_bound[0] == pytest.approx(T * math.log(0.5), rel=1e-12)
    assert prof.log_eta_bound[0] == pytest.approx(T * math.log(0.5), rel=1e-12)


def test_bound_profile_zero_derivative_gives_minus_inf() -> None:
    z = np.array([[-1.0, -2.0], [1.0, 1.0]])  # relu: σ'(z_1) = 0
    with np.errstate(all="raise"):
        prof = bound_profile("relu", np.eye(2), z)
    assert prof.log_data_bound[0] == -math.inf
    assert prof.log_data_bound[1] == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize(
    "z", [np.zeros((3, 3)), np.zeros(2), np.zeros((0, 2)), np.full((2, 2), np.nan)],
    ids=["wrong-n", "1-D", "T=0", "nan"],
)
def test_bound_profile_bad_pre_activations(z: np.ndarray) -> None:
    with pytest.raises(GradproofError, match="pre_activations"):
        bound_profile("tanh", np.eye(2), z)


# --------------------------------------------------------------------------- whole models


def test_model_regime_lstm_blocks_and_direct_path() -> None:
    rng = np.random.default_rng(0)
    n = 3
    p = {f"W_{g}": rng.standard_normal((n, n)) for g in "fioc"}
    p["b_f"] = np.array([1.0, 2.0, -1.0])
    m = model_regime("lstm", p)
    assert m.main == "W_c" and list(m.blocks) == ["W_f", "W_i", "W_o", "W_c"]
    assert [m.blocks[k].gamma_exact for k in m.blocks] == ["1/4", "1/4", "1/4", "1"]
    for k in m.blocks:
        assert m.blocks[k].sigma_max == pytest.approx(_sigma_max_independent(p[k]), rel=1e-12)
    d = m.direct_path
    assert d is not None and d.gate == "f" and d.verdict == "cannot explode"
    sig = lambda a: 1.0 / (1.0 + math.exp(-a))  # noqa: E731
    assert d.retain_at_rest == pytest.approx((sig(-1.0), sig(2.0)), rel=1e-14)
    upper = max(sig(p["b_f"][i] + np.abs(p["W_f"][i]).sum()) for i in range(n))
    assert d.retain_upper == pytest.approx(upper, rel=1e-14)
    assert upper ** d.half_life_steps == pytest.approx(0.5, rel=1e-12)
    out = json.loads(json.dumps(m.to_json()))
    assert out["regime"] == m.blocks["W_c"].verdict and out["model"] == "lstm"
    assert set(out["blocks"]) == {"W_f", "W_i", "W_o", "W_c"}


def test_model_regime_lecture_gru_uses_one_minus_u() -> None:
    n = 2
    p = {"W_u": np.zeros((n, n)), "W_r": np.eye(n), "W_h": np.eye(n), "b_u": np.array([3.0, -3.0])}
    d = model_regime("gru", p).direct_path
    assert d is not None and d.gate == "1-u"
    # 1 - u = σ(-b_u) at rest (docs/math.md §4, lecture convention)
    assert d.retain_at_rest == pytest.approx((1 / (1 + math.exp(3.0)), 1 / (1 + math.exp(-3.0))))


def test_model_regime_rejects_activation_for_gated_cells() -> None:
    p = {k: np.eye(2) for k in ("W_r", "W_z", "W_n")}
    p["b_z"] = np.zeros(2)
    with pytest.raises(GradproofError, match="fixed activations"):
        model_regime("gru-torch", p, activation="tanh")
