"""numeric.lyapunov_spectrum: the identities of the QR (Benettin) method and an independent check.

Sources: Benettin et al. (1980) for the method; docs/math.md §1 ("long horizons") for the recursion
J_t Q_{t-1} = Q_t R_t; the identities are linear algebra: |det R_t| = |det J_t| because Q is
orthogonal, and for a constant J = W the QR iteration is the orthogonal (Schur) iteration, whose
R converges to the Schur form with the eigenvalues on its diagonal.
"""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import torch

from gradproof import numeric
from gradproof.derive import GradproofError
from gradproof.numeric import (
    gradient_profile,
    init,
    lyapunov_spectrum,
    random_sequence,
    step_jacobians,
)
from gradproof.numeric import lyapunov as lyapunov_module
from gradproof.numeric.lyapunov import initial_frame
from gradproof.numeric.torch_reference import TorchModuleReference, TorchReference

CELLS = ("rnn-tanh", "rnn-sigmoid", "lstm", "gru", "gru-torch")
SEEDS = (0, 1, 2)


def _torch_qr_exponents(jacobians: np.ndarray, warmup: int) -> np.ndarray:
    """An independent QR loop in torch float64 on Jacobians from torch autograd, sorted."""
    J = torch.from_numpy(jacobians)
    S = J.shape[1]
    q = torch.from_numpy(initial_frame(S, S))
    total = torch.zeros(S, dtype=torch.float64)
    for t in range(J.shape[0]):
        q, r = torch.linalg.qr(J[t] @ q)
        if t >= warmup:
            total += torch.log(torch.abs(torch.diagonal(r)))
    return np.sort((total / (J.shape[0] - warmup)).numpy())[::-1]


@pytest.mark.parametrize("seed", SEEDS)
def test_linear_recurrence_exponents_are_log_eigenvalue_moduli(seed: int) -> None:
    # W = V diag(λ) V⁻¹ with real eigenvalues whose moduli are at least 0.15 apart in log: after a
    # warm-up of 400 steps the frame is the Schur basis to within exp(-0.15·400) ≈ 1e-26, and from
    # then on every R_t is the Schur form, diag |λ_i|: the estimates are exact to rounding.
    rng = np.random.default_rng(seed)
    n = 5
    logs = np.log(0.95) - np.cumsum(rng.uniform(0.15, 0.4, n))
    lam = rng.choice([-1.0, 1.0], n) * np.exp(logs)
    V = rng.standard_normal((n, n))
    p = init("rnn-identity", hidden=n, inputs=2, seed=seed)
    p["W_h"] = V @ np.diag(lam) @ np.linalg.inv(V)
    with np.errstate(all="raise"):
        spec = lyapunov_spectrum("rnn-identity", p, random_sequence(600, 2, seed=seed + 10), warmup=400)
    np.testing.assert_allclose(spec.exponents, np.sort(np.log(np.abs(lam)))[::-1], rtol=0, atol=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_linear_recurrence_with_complex_eigenvalues(seed: int) -> None:
    # A Gaussian W has complex pairs: within a pair the QR frame rotates, so each exponent of the
    # pair converges like O(1)/T (log of the ratio of the pair's areas at both ends, a bounded
    # quantity), while their sum (the area growth of the pair's plane) is exact after the warm-up.
    rng = np.random.default_rng(seed)
    n, T = 6, 3000
    W = rng.standard_normal((n, n))
    eig = np.linalg.eigvals(W)
    W *= 0.95 / np.max(np.abs(eig))
    p = init("rnn-identity", hidden=n, inputs=2, seed=seed)
    p["W_h"] = W
    spec = lyapunov_spectrum("rnn-identity", p, random_sequence(T, 2, seed=seed), warmup=200)
    expected = np.sort(np.log(np.abs(np.linalg.eigvals(W))))[::-1]
    np.testing.assert_allclose(spec.exponents, expected, rtol=0, atol=20 / T)
    np.testing.assert_allclose(spec.exponents.sum(), expected.sum(), rtol=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", CELLS)
def test_sum_of_exponents_is_mean_log_det(name: str, seed: int) -> None:
    # |det R_t| = |det J_t Q_{t-1}| = |det J_t| (Q orthogonal): the sum of all S exponents is the
    # mean of log|det J_t| exactly, up to rounding.
    p = init(name, hidden=4, inputs=3, seed=seed, spectral_norm=1.3)
    xs = random_sequence(300, 3, seed=seed + 5)
    spec = lyapunov_spectrum(name, p, xs, warmup=20)
    _, logdet = np.linalg.slogdet(step_jacobians(name, p, xs)[20:])
    np.testing.assert_allclose(spec.exponents.sum(), logdet.mean(), rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_largest_exponent_is_the_slope_of_the_gradient_profile(seed: int) -> None:
    # With k = 1 the method follows one vector: T·λ_1 = log‖P_0 q_0‖ exactly, and
    # log‖P_0 q_0‖ ≤ log‖P_0‖₂ ≤ log‖P_0 q_0‖ - log|cos∠(q_0, v_1)|, v_1 the top right singular
    # vector of P_0. So 0 ≤ log‖P_0‖₂ - Tλ_1 ≤ -log|cos∠(q_0, v_1)|, independent of T; for a
    # direction in R^8, |cos| < e^-10 has probability below 1e-4 (seed 1 gives 5.3). The least-squares slope of log‖∂s_T/∂s_k‖₂ against T - k measures
    # the same rate from the same trajectory with other weights: it differs by the statistical
    # fluctuation of finite-time exponents, a few block standard errors.
    T = 4000
    p = init("rnn-tanh", hidden=8, inputs=3, seed=seed, spectral_norm=1.8)
    xs = random_sequence(T, 3, seed=seed)
    spec = lyapunov_spectrum("rnn-tanh", p, xs, k=1)
    prof = gradient_profile("rnn-tanh", p, xs)
    gap = prof.log_spectral[0] - T * spec.largest
    assert -1e-8 * T <= gap <= 10.0
    slope = np.polyfit(np.arange(T, 0, -1), prof.log_spectral, 1)[0]
    assert spec.stderr[0] > 0
    assert abs(slope - spec.largest) <= 3 * spec.stderr[0] + 10 / T


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", (*CELLS, "rnn-identity"))
def test_agrees_with_a_torch_qr_loop_on_torch_autograd_jacobians(name: str, seed: int) -> None:
    p = init(name, hidden=4, inputs=2, seed=seed, spectral_norm=1.2)
    xs = random_sequence(250, 2, seed=seed + 1)
    jac = TorchReference().step_jacobians(name, p, xs)  # torch.func.jacrev of a hand-written step
    expected = _torch_qr_exponents(jac, warmup=10)
    spec = lyapunov_spectrum(name, p, xs, warmup=10)
    np.testing.assert_allclose(spec.exponents, expected, rtol=0, atol=1e-8)


def test_a_users_torch_model(tmp_path) -> None:
    torch.manual_seed(3)
    module = torch.nn.LSTM(input_size=2, hidden_size=3).double()
    path = tmp_path / "model.pt"
    torch.save(module.state_dict(), path)
    c, p = numeric.from_torch(numeric.load_torch_model(path))
    xs = random_sequence(200, 2, seed=4)
    jac = TorchModuleReference().step_jacobians(c, p, xs)  # the nn.LSTM's own autograd
    spec = lyapunov_spectrum(c, p, xs, warmup=5)
    np.testing.assert_allclose(spec.exponents, _torch_qr_exponents(jac, warmup=5), rtol=0, atol=1e-8)


@pytest.mark.parametrize("name", ("rnn-tanh", "lstm"))
def test_k_largest_are_the_top_of_the_full_spectrum(name: str) -> None:
    p = init(name, hidden=4, inputs=2, seed=7, spectral_norm=1.4)
    xs = random_sequence(400, 2, seed=8)
    full = lyapunov_spectrum(name, p, xs, warmup=50)
    top = lyapunov_spectrum(name, p, xs, k=3, warmup=50)
    # the first k columns of the frame evolve on their own (R is upper triangular)
    np.testing.assert_allclose(top.exponents, full.exponents[:3], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ("rnn-tanh", "gru"))
def test_result_does_not_depend_on_the_chunking(name: str, monkeypatch) -> None:
    p = init(name, hidden=3, inputs=2, seed=1, spectral_norm=1.1)
    xs = random_sequence(300, 2, seed=2)
    whole = lyapunov_spectrum(name, p, xs)
    monkeypatch.setattr(lyapunov_module, "_CHUNK_DIAG", 7)
    monkeypatch.setattr(lyapunov_module, "_CHUNK_FLOATS", 9 * 5)  # 5 steps of a 3×3 Jacobian
    monkeypatch.setattr(lyapunov_module, "MAX_GROUP", 1)
    chunked = lyapunov_spectrum(name, p, xs)
    np.testing.assert_allclose(chunked.exponents, whole.exponents, rtol=0, atol=1e-13)
    np.testing.assert_allclose(chunked.running, whole.running, rtol=0, atol=1e-13)


def test_running_estimates_and_standard_error() -> None:
    p = init("lstm", hidden=3, inputs=2, seed=0)
    xs = random_sequence(1000, 2, seed=0)
    spec = lyapunov_spectrum("lstm", p, xs, warmup=100)
    assert spec.T == 1000 and spec.warmup == 100 and spec.k == 6
    assert spec.steps[-1] == 900 and spec.running.shape == (spec.steps.size, 6)
    assert spec.steps.size <= lyapunov_module.RUNNING_POINTS + lyapunov_module.BLOCKS
    np.testing.assert_array_equal(spec.running[-1], spec.exponents)
    assert np.all(np.diff(spec.exponents) <= 0)
    assert np.all(spec.stderr > 0) and np.all(spec.stderr < 0.1)
    assert not spec.exponents.flags.writeable
    # the standard error is that of the block means: recompute it from the running sums
    blocks = np.linspace(0, 900, spec.blocks + 1).round().astype(int)
    assert set(blocks[1:]) <= set(spec.steps.tolist())
    sums = np.array([spec.running[list(spec.steps).index(b)] * b for b in blocks[1:]])
    means = np.diff(np.vstack([np.zeros(6), sums]), axis=0) / np.diff(blocks)[:, None]
    np.testing.assert_allclose(spec.stderr, means.std(axis=0, ddof=1) / np.sqrt(spec.blocks), rtol=1e-9)


@pytest.mark.parametrize("warmup", [0, 3])
def test_short_runs_fill_every_checkpoint(warmup: int) -> None:
    # fewer than 100 counted steps: the first running point used to round to step 0, which with no
    # warm-up was never reached, so no checkpoint was taken (running uninitialised, stderr 0)
    p = init("lstm", hidden=3, inputs=2, seed=0)
    xs = random_sequence(40 + warmup, 2, seed=0)
    spec = lyapunov_spectrum("lstm", p, xs, warmup=warmup)
    assert spec.steps[0] == 1 and spec.steps[-1] == 40
    np.testing.assert_array_equal(spec.steps, np.arange(1, 41))
    assert np.all(np.isfinite(spec.running))
    np.testing.assert_array_equal(spec.running[-1], spec.exponents)
    assert np.all(spec.stderr > 0)
    # the running estimate after j steps is the mean of the first j per-step sums: after one step,
    # log|R_ii| of one QR of J_1 Q_0 (Householder, sorted like the exponents)
    J = step_jacobians("lstm", p, xs)
    q = initial_frame(6, 6)
    for t in range(warmup):
        q, _ = np.linalg.qr(J[t] @ q)
    _, r = np.linalg.qr(J[warmup] @ q)
    first = np.log(np.abs(np.diagonal(r)))
    np.testing.assert_allclose(np.sort(spec.running[0]), np.sort(first), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(k=0), "k must be an integer in"),
        (dict(k=7), "k must be an integer in"),
        (dict(k=2.0), "k must be an integer in"),
        (dict(warmup=50), "warmup must be an integer in"),
        (dict(warmup=-1), "warmup must be an integer in"),
    ],
    ids=["k=0", "k>S", "k float", "warmup=T", "warmup<0"],
)
def test_bad_arguments(kwargs: dict, match: str) -> None:
    p = init("lstm", hidden=3, inputs=2, seed=0)
    with pytest.raises(GradproofError, match=match):
        lyapunov_spectrum("lstm", p, random_sequence(50, 2, seed=0), **kwargs)


def test_complex_input_is_refused() -> None:
    p = init("rnn-tanh", hidden=2, inputs=1, seed=0)
    with pytest.raises(GradproofError, match="real parameters"):
        lyapunov_spectrum("rnn-tanh", p, np.ones((5, 1)) * (1 + 1j))


def test_module_doctests() -> None:
    result = doctest.testmod(lyapunov_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 1 and result.failed == 0
