"""The Cholesky-QR path of numeric.lyapunov_spectrum, against one Householder QR per step.

Sources: Cholesky-QR (Stathopoulos & Wu 2002; Fukaya et al. 2014): A = Q R with R = chol(AᵀA)ᵀ;
the block inverse of a triangular matrix is linear algebra. The reference here is an independent
loop: the step Jacobians of ``numeric.step_jacobians`` (checked against torch autograd elsewhere)
and ``np.linalg.qr`` once per step, and for one cell torch autograd Jacobians with torch's QR.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gradproof.numeric import init, lyapunov_spectrum, random_sequence, step_jacobians
from gradproof.numeric import lyapunov as lyapunov_module
from gradproof.numeric.lyapunov import _cholesky_qr, _lower_inverse, initial_frame
from gradproof.numeric.torch_reference import TorchReference


def _one_qr_per_step(jacobians: np.ndarray, warmup: int) -> np.ndarray:
    """Householder QR after every step, numpy, sorted descending."""
    S = jacobians.shape[1]
    q = initial_frame(S, S)
    total = np.zeros(S)
    for t, J in enumerate(jacobians):
        q, r = np.linalg.qr(J @ q)
        if t >= warmup:
            total += np.log(np.abs(np.diagonal(r)))
    return np.sort(total / (jacobians.shape[0] - warmup))[::-1]


def _counting(monkeypatch) -> dict[str, int]:
    """Count accepted and rejected Cholesky-QR steps."""
    counts = {"accepted": 0, "rejected": 0}
    original = lyapunov_module._cholesky_qr

    def wrapped(a: np.ndarray):
        result = original(a)
        counts["rejected" if result is None else "accepted"] += 1
        return result

    monkeypatch.setattr(lyapunov_module, "_cholesky_qr", wrapped)
    return counts


@pytest.mark.parametrize("k", [1, 2, 7, 16, 17, 31, 32, 33, 48, 100, 128, 130])
def test_lower_inverse(k: int) -> None:
    rng = np.random.default_rng(k)
    a = rng.standard_normal((k + 5, k))
    L = np.linalg.cholesky(a.T @ a)
    inv = _lower_inverse(L)
    assert inv.shape == (k, k)
    assert np.all(np.triu(inv, 1) == 0.0)  # exactly lower triangular: the flag is preserved
    np.testing.assert_allclose(inv @ L, np.eye(k), rtol=0, atol=1e-12 * np.linalg.cond(L))
    np.testing.assert_allclose(inv, np.linalg.inv(L), rtol=0, atol=1e-13 * np.abs(inv).max() * np.linalg.cond(L))


@settings(max_examples=40, deadline=None)
@given(k=st.integers(1, 70), seed=st.integers(0, 2**32 - 1), scale=st.floats(-3.0, 3.0))
def test_lower_inverse_property(k: int, seed: int, scale: float) -> None:
    # L = diag(10^(scale·u)) (I + N/k), N strictly lower Gaussian: well-conditioned unit part,
    # rows scaled over up to 6 orders of magnitude
    rng = np.random.default_rng(seed)
    L = np.diag(10.0 ** (scale * rng.uniform(-1, 1, k))) @ (np.eye(k) + np.tril(rng.standard_normal((k, k)), -1) / k)
    inv = _lower_inverse(L)
    assert np.all(np.triu(inv, 1) == 0.0)
    np.testing.assert_allclose(inv @ L, np.eye(k), rtol=0, atol=1e-12)


def test_cholesky_qr_step_matches_householder() -> None:
    rng = np.random.default_rng(0)
    a = rng.standard_normal((40, 24)) @ np.diag(np.exp(rng.uniform(-3, 3, 24)))
    q, logs = _cholesky_qr(a)
    q_h, r_h = np.linalg.qr(a)
    np.testing.assert_allclose(logs, np.log(np.abs(np.diagonal(r_h))), rtol=0, atol=1e-11)
    kappa = np.linalg.cond(a)
    np.testing.assert_allclose(q.T @ q, np.eye(24), rtol=0, atol=1e-15 * kappa**2)
    # the same flag: q = q_h U with U upper triangular (signs included)
    U = q_h.T @ q
    assert np.abs(np.tril(U, -1)).max() <= 1e-14 * kappa
    np.testing.assert_allclose(np.abs(np.diagonal(U)), 1.0, rtol=0, atol=1e-15 * kappa**2)


def test_cholesky_qr_refuses_ill_conditioned_and_rank_deficient() -> None:
    rng = np.random.default_rng(1)
    a = rng.standard_normal((30, 20))
    a[:, 5] = a[:, 3]  # rank deficient: Cholesky breaks down or κ is astronomically large
    assert _cholesky_qr(a) is None
    b = rng.standard_normal((30, 20)) @ np.diag(np.logspace(0, -7, 20))  # κ ≈ 1e7 > 1e6
    assert _cholesky_qr(b) is None
    c = rng.standard_normal((30, 20)) @ np.diag(np.logspace(0, -2, 20))  # κ ≈ 1e2
    assert _cholesky_qr(c) is not None


@pytest.mark.parametrize(
    "name, hidden, spectral_norm",
    [("rnn-tanh", 32, 1.0), ("rnn-tanh", 20, 2.5), ("lstm", 10, 1.3), ("gru", 18, 1.2), ("gru-torch", 17, 1.5)],
)
def test_cholesky_path_agrees_with_one_qr_per_step(name: str, hidden: int, spectral_norm: float, monkeypatch) -> None:
    p = init(name, hidden=hidden, inputs=3, seed=4, spectral_norm=spectral_norm)
    xs = random_sequence(300, 3, seed=5)
    expected = _one_qr_per_step(step_jacobians(name, p, xs), warmup=10)
    counts = _counting(monkeypatch)
    spec = lyapunov_spectrum(name, p, xs, warmup=10)
    assert counts["accepted"] >= 100  # the path under test was taken
    np.testing.assert_allclose(spec.exponents, expected, rtol=0, atol=1e-10)
    np.testing.assert_allclose(spec.exponents.sum(), expected.sum(), rtol=0, atol=1e-11)


@pytest.mark.parametrize("name", ["rnn-tanh", "rnn-sigmoid", "lstm", "gru", "gru-torch", "rnn-identity"])
def test_cholesky_path_on_small_states_forced(name: str, monkeypatch) -> None:
    monkeypatch.setattr(lyapunov_module, "CHOLESKY_MIN_K", 1)
    p = init(name, hidden=4, inputs=2, seed=2, spectral_norm=1.2)
    xs = random_sequence(250, 2, seed=3)
    expected = _one_qr_per_step(step_jacobians(name, p, xs), warmup=10)
    counts = _counting(monkeypatch)
    spec = lyapunov_spectrum(name, p, xs, warmup=10)
    assert counts["accepted"] >= 50
    np.testing.assert_allclose(spec.exponents, expected, rtol=0, atol=1e-10)


def test_cholesky_path_agrees_with_torch_autograd_qr_loop(monkeypatch) -> None:
    # an LSTM with S = 32: the independent check of the issue (torch autograd Jacobians, torch QR)
    p = init("lstm", hidden=16, inputs=2, seed=1, spectral_norm=1.2)
    xs = random_sequence(120, 2, seed=2)
    J = torch.from_numpy(TorchReference().step_jacobians("lstm", p, xs))
    q = torch.from_numpy(initial_frame(32, 32))
    total = torch.zeros(32, dtype=torch.float64)
    for t in range(J.shape[0]):
        q, r = torch.linalg.qr(J[t] @ q)
        if t >= 5:
            total += torch.log(torch.abs(torch.diagonal(r)))
    expected = np.sort((total / (J.shape[0] - 5)).numpy())[::-1]
    counts = _counting(monkeypatch)
    spec = lyapunov_spectrum("lstm", p, xs, warmup=5)
    assert counts["accepted"] >= 80
    np.testing.assert_allclose(spec.exponents, expected, rtol=0, atol=1e-8)


def test_rejected_cholesky_steps_fall_back_to_householder(monkeypatch) -> None:
    p = init("rnn-tanh", hidden=24, inputs=3, seed=6, spectral_norm=1.0)
    xs = random_sequence(200, 3, seed=7)
    expected = _one_qr_per_step(step_jacobians("rnn-tanh", p, xs), warmup=0)
    monkeypatch.setattr(lyapunov_module, "CHOLESKY_MAX_KAPPA", 1.0)  # nothing passes: κ ≥ 1 always
    counts = _counting(monkeypatch)
    spec = lyapunov_spectrum("rnn-tanh", p, xs)
    assert counts["accepted"] == 0 and counts["rejected"] >= 2
    # one attempt, then CHOLESKY_BACKOFF Householder steps before the next attempt
    assert counts["rejected"] <= 200 // lyapunov_module.CHOLESKY_BACKOFF + 1
    np.testing.assert_allclose(spec.exponents, expected, rtol=0, atol=1e-10)


@settings(max_examples=60, deadline=None)
@given(
    k=st.integers(1, 40),
    extra=st.integers(0, 10),
    spread=st.floats(0.0, 12.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_cholesky_qr_step_property(k: int, extra: int, spread: float, seed: int) -> None:
    # columns scaled over up to e^12: either refused, or the same diagonal and the same flag as
    # Householder QR to the accuracy the κ limit guarantees
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k + extra, k)) * np.exp(spread * rng.uniform(-0.5, 0.5, k))
    result = _cholesky_qr(a)
    kappa = np.linalg.cond(a)
    if result is None:
        assert kappa > 1e3  # only ill-conditioned frames are refused (κ_F ≤ k·κ)
        return
    q, logs = result
    q_h, r_h = np.linalg.qr(a)
    np.testing.assert_allclose(logs, np.log(np.abs(np.diagonal(r_h))), rtol=0, atol=1e-15 * kappa**2 + 1e-13)
    U = q_h.T @ q
    assert np.abs(np.tril(U, -1)).max(initial=0.0) <= 1e-14 * kappa + 1e-15
    np.testing.assert_allclose(q.T @ q, np.eye(k), rtol=0, atol=1e-15 * kappa**2 + 1e-14)
