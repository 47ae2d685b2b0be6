"""Tests of numeric.profile: streaming log-space norms of ∂s_T/∂s_k (docs/math.md §1, "long horizons").

Every expected value is computed independently of the code under test: the explicit ordered product
J_T J_{T-1} ⋯ J_{k+1} (numerator layout, docs/math.md conventions) and ``np.linalg.norm`` (LAPACK SVD)
of it, or a closed form from the mathematics (products of 0.5·orthogonal matrices; the
submultiplicative bound ‖∂h_T/∂h_k‖ ≤ η^{T-k} of Pascanu et al. 2013, docs/math.md §1).
"""

from __future__ import annotations

import doctest
import itertools
import json
import math
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradproof.numeric.profile as profile_module
from gradproof.derive.errors import GradproofError
from gradproof.numeric import gradient_profile, init
from gradproof.numeric.profile import GradientProfile, log_norm_profile, log_norm_profile_rnn

RAISE = {"all": "raise"}


def direct_norms(jacobians: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Spectral and Frobenius norms of P_k = J_T ⋯ J_{k+1}, k = 0..T-1, by explicit products.

    ``jacobians: (T, S, S)``, entry t-1 = J_t = ∂s_t/∂s_{t-1}.
    """
    T, S, _ = jacobians.shape
    spectral = np.empty(T)
    frobenius = np.empty(T)
    P = np.eye(S)
    for k in range(T - 1, -1, -1):
        P = P @ jacobians[k]  # P_k = P_{k+1} J_{k+1}; jacobians[k] is J_{k+1}
        spectral[k] = np.linalg.norm(P, 2)
        frobenius[k] = np.linalg.norm(P, "fro")
    return spectral, frobenius


def random_jacobians(rng: np.random.Generator, T: int, S: int, scale: float = 1.0) -> np.ndarray:
    return scale * rng.standard_normal((T, S, S)) / math.sqrt(S)


def rnn_jacobians(
    rng: np.random.Generator, T: int, S: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """d: (T, S) in (0, 1), W: (S, S) with ‖W‖₂ = 1.2 and J_t = D(d_{t-1}) W (docs/math.md §1)."""
    a = rng.standard_normal((S, S))
    W = 1.2 * a / np.linalg.norm(a, 2)
    d = rng.uniform(0.05, 1.0, size=(T, S))
    return d, W, d[:, :, None] * W[None, :, :]


def assert_matches_direct(p: GradientProfile, jacobians: np.ndarray, rtol: float) -> None:
    spectral, frobenius = direct_norms(jacobians)
    # |log a - log b| ≤ rtol is a relative tolerance rtol on the norms themselves.
    np.testing.assert_allclose(p.log_spectral, np.log(spectral), rtol=0, atol=rtol)
    np.testing.assert_allclose(p.log_frobenius, np.log(frobenius), rtol=0, atol=rtol)
    np.testing.assert_allclose(p.spectral, spectral, rtol=rtol, atol=0)
    np.testing.assert_allclose(p.frobenius, frobenius, rtol=rtol, atol=0)


class CountDense:
    """Counts the calls of the dense eigensolver fallback (to see which path ran)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = profile_module._gram_top

        def counted(m: np.ndarray) -> float:
            self.calls += 1
            return original(m)

        monkeypatch.setattr(profile_module, "_gram_top", counted)


# --------------------------------------------------------------------------------------------
# Against explicit products
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("S", range(1, 9))
@pytest.mark.parametrize("T", [1, 2, 7, 60])
def test_generic_equals_direct_products(S: int, T: int) -> None:
    rng = np.random.default_rng(1000 * S + T)
    jac = random_jacobians(rng, T, S)
    with np.errstate(**RAISE):
        p = log_norm_profile(reversed(jac), T, size=S)
        assert_matches_direct(p, jac, rtol=1e-10)
    assert p.T == T


@pytest.mark.parametrize("S", [24, 40, 64])
def test_certified_path_equals_direct_products(S: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """S > 16 takes the power-iteration path; it must agree with the SVD to ~1e-12 and be used."""
    rng = np.random.default_rng(S)
    T = 60
    d, W, jac = rnn_jacobians(rng, T, S)
    dense = CountDense(monkeypatch)
    with np.errstate(**RAISE):
        p = log_norm_profile((j for j in jac[::-1]), T, size=S)
        assert_matches_direct(p, jac, rtol=1e-12)
    assert dense.calls < T // 2, f"certificate accepted only {T - dense.calls} of {T} steps"


@settings(max_examples=40, deadline=None)
@given(
    S=st.integers(1, 36),
    T=st.integers(1, 30),
    seed=st.integers(0, 2**32 - 1),
    log_scale=st.floats(-3.0, 3.0),
    structured=st.booleans(),
)
def test_property_profile_equals_direct_norms(
    S: int, T: int, seed: int, log_scale: float, structured: bool
) -> None:
    """Wherever the explicit product's norms are finite and normal, the profile equals them."""
    rng = np.random.default_rng(seed)
    jac = rnn_jacobians(rng, T, S)[2] if structured else random_jacobians(rng, T, S)
    jac = jac * math.exp(log_scale)
    with np.errstate(over="ignore", under="ignore"):
        spectral, frobenius = direct_norms(jac)
    finite = (spectral > 1e-300) & (frobenius < 1e300)
    with np.errstate(**RAISE):
        p = log_norm_profile(list(jac[::-1]), T, size=S)
    np.testing.assert_allclose(p.log_spectral[finite], np.log(spectral[finite]), rtol=0, atol=1e-10)
    np.testing.assert_allclose(
        p.log_frobenius[finite], np.log(frobenius[finite]), rtol=0, atol=1e-10
    )
    assert np.all(p.log_spectral <= p.log_frobenius + 1e-12)  # ‖P‖₂ ≤ ‖P‖_F
    assert np.all(p.log_frobenius <= p.log_spectral + 0.5 * math.log(S) + 1e-12)  # ≤ √S ‖P‖₂


@pytest.mark.parametrize("S", [3, 20, 48])
def test_rnn_fast_path_equals_generic(S: int) -> None:
    rng = np.random.default_rng(7 + S)
    T = 50
    d, W, jac = rnn_jacobians(rng, T, S)
    with np.errstate(**RAISE):
        fast = log_norm_profile_rnn(d, W)
        generic = log_norm_profile(reversed(jac), T, size=S)
    np.testing.assert_allclose(fast.log_spectral, generic.log_spectral, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fast.log_frobenius, generic.log_frobenius, rtol=0, atol=1e-12)
    assert_matches_direct(fast, jac, rtol=1e-12)


def test_huge_and_tiny_factors_stay_exact() -> None:
    """Entries near 1e200 (‖J‖_F² overflows) and 1e-200 (products underflow): the log-norms are
    the sums of the logs of the scale factors and of the norms of the scaled products."""
    rng = np.random.default_rng(4)
    base = random_jacobians(rng, 4, 20)
    scales = np.array([1e200, 1e-200, 1e200, 1e150])
    with np.errstate(**RAISE):
        p = log_norm_profile(reversed(base * scales[:, None, None]), 4, size=20)
        spectral, frobenius = direct_norms(base)
    log_scale = np.cumsum(np.log(scales)[::-1])[::-1]  # Σ_{t>k} log c_t
    np.testing.assert_allclose(p.log_spectral, np.log(spectral) + log_scale, rtol=1e-14, atol=1e-10)
    np.testing.assert_allclose(
        p.log_frobenius, np.log(frobenius) + log_scale, rtol=1e-14, atol=1e-10
    )


def test_zero_product_gives_minus_infinity() -> None:
    """J_3 = 0 makes P_k = 0 exactly for every k ≤ 2, and leaves P_k for k ≥ 3 untouched."""
    rng = np.random.default_rng(3)
    jac = random_jacobians(rng, 6, 3)
    jac[2] = 0.0  # J_3
    with np.errstate(**RAISE):
        p = log_norm_profile(reversed(jac), 6, size=3)
    assert np.all(p.log_spectral[:3] == -np.inf) and np.all(p.log_frobenius[:3] == -np.inf)
    spectral, frobenius = direct_norms(jac[3:])  # the products for k = 3, 4, 5
    np.testing.assert_allclose(p.spectral[3:], spectral, rtol=1e-12, atol=0)
    np.testing.assert_allclose(p.frobenius[3:], frobenius, rtol=1e-12, atol=0)


# --------------------------------------------------------------------------------------------
# The certificate (Kato-Temple with the trace separation bound), tested as mathematics
# --------------------------------------------------------------------------------------------


def planted(rng: np.random.Generator, singular_values: np.ndarray) -> np.ndarray:
    """U diag(s) Vᵀ with random orthogonal U, V: a matrix with the given singular values."""
    S = singular_values.shape[0]
    q1, _ = np.linalg.qr(rng.standard_normal((S, S)))
    q2, _ = np.linalg.qr(rng.standard_normal((S, S)))
    return (q1 * singular_values) @ q2.T


@settings(max_examples=60, deadline=None)
@given(
    S=st.integers(2, 30),
    seed=st.integers(0, 2**32 - 1),
    lead=st.floats(1.0, 10.0),
    aligned=st.floats(0.0, 50.0),
)
def test_kato_temple_bound_holds_for_any_unit_vector(
    S: int, seed: int, lead: float, aligned: float
) -> None:
    """For unit u, θ = ‖Mᵀu‖², r = MMᵀu - θu, α = ‖M‖_F² - θ: θ ≤ σ_1², and if θ > α then
    σ_1² ≤ θ + ‖r‖²/(θ - α) (Temple 1928, Kato 1949), the bound numeric.profile relies on."""
    rng = np.random.default_rng(seed)
    s = np.sort(rng.uniform(0.0, 1.0, S))[::-1]
    s[0] = lead
    q1, _ = np.linalg.qr(rng.standard_normal((S, S)))
    q2, _ = np.linalg.qr(rng.standard_normal((S, S)))
    m = (q1 * s) @ q2.T  # top left singular vector q1[:, 0]
    u = rng.standard_normal(S) + aligned * q1[:, 0]
    u /= np.linalg.norm(u)
    w = m.T @ u
    theta = w @ w
    r = m @ w - theta * u
    alpha = np.sum(m * m) - theta
    lam = lead**2
    assert theta <= lam * (1 + 1e-13)
    if theta > alpha:
        assert lam <= theta + (r @ r) / (theta - alpha) + 1e-12 * lam


def test_certificate_refuses_a_non_top_eigenvector(monkeypatch: pytest.MonkeyPatch) -> None:
    """u = e_2 is an exact eigenvector of MMᵀ (zero residual) for λ_2 = 1, not λ_1 = 4. The
    separation test must reject it and the dense solver must give 4."""
    m = np.diag([2.0, 1.0] + [0.1] * 30)
    u = np.zeros(32)
    u[1] = 1.0
    dense = CountDense(monkeypatch)
    with np.errstate(**RAISE):
        lam, _ = profile_module._top_eigenvalue(m, float(np.sum(m * m)), u)
    assert dense.calls == 1
    assert lam == pytest.approx(4.0, rel=1e-14)


def test_dense_fallback_survives_an_eigensolver_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    """If LAPACK's symmetric eigensolver does not converge, the SVD gives the same value."""

    def failing(_: np.ndarray) -> np.ndarray:
        raise np.linalg.LinAlgError("Eigenvalues did not converge")

    rng = np.random.default_rng(8)
    m = planted(rng, np.r_[2.5, np.linspace(1.0, 0.0, 9)])
    monkeypatch.setattr(profile_module.np.linalg, "eigvalsh", failing)
    assert math.sqrt(profile_module._gram_top(m)) == pytest.approx(2.5, rel=1e-14)


@pytest.mark.parametrize(
    "spectrum",
    [
        pytest.param(np.full(32, 0.7), id="flat (multiple of orthogonal)"),
        pytest.param(np.r_[1.0, 1.0 - 1e-9, np.linspace(0.5, 0.0, 30)], id="near tie"),
        pytest.param(np.r_[1.0, np.zeros(31)], id="rank one"),
        pytest.param(np.r_[1.0, 0.999, np.full(30, 0.998)], id="slow convergence"),
        pytest.param(np.r_[1.0, 0.3, np.full(30, 0.01)], id="separated"),
        pytest.param(np.r_[0.9, np.geomspace(0.5, 1e-300, 31)], id="wide range"),
    ],
)
def test_top_eigenvalue_exact_on_hard_spectra(spectrum: np.ndarray) -> None:
    rng = np.random.default_rng(11)
    m = planted(rng, spectrum)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        lam, _ = profile_module._top_eigenvalue(m, float(np.sum(m * m)), None)
    assert math.sqrt(lam) == pytest.approx(spectrum[0], rel=1e-13)
    assert math.sqrt(lam) == pytest.approx(np.linalg.norm(m, 2), rel=1e-13)


# --------------------------------------------------------------------------------------------
# Long horizons (docs/math.md §1: 4^{-k} underflows float64 at k ≈ 538)
# --------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_long_horizon_half_orthogonal_is_exact() -> None:
    """J = 0.5·Q with Q orthogonal: every singular value of P_k is 0.5^{T-k}, so
    log‖P_k‖₂ = (T-k) log 0.5 and log‖P_k‖_F = (T-k) log 0.5 + ½ log S, exactly (math)."""
    T, S = 100_000, 4
    q, _ = np.linalg.qr(np.random.default_rng(5).standard_normal((S, S)))
    start = time.perf_counter()
    with np.errstate(**RAISE):
        p = log_norm_profile(itertools.repeat(0.5 * q, T), T, size=S)
    elapsed = time.perf_counter() - start
    expected = (T - np.arange(T)) * math.log(0.5)
    assert np.all(np.isfinite(p.log_spectral)) and np.all(np.isfinite(p.log_frobenius))
    np.testing.assert_allclose(p.log_spectral, expected, rtol=1e-9, atol=0)
    np.testing.assert_allclose(p.log_frobenius, expected + 0.5 * math.log(S), rtol=1e-9, atol=0)
    assert p.log_spectral[0] == pytest.approx(-69314.718, rel=1e-8)  # 0.0 in float64
    assert elapsed < 30.0, f"T = 1e5 at S = 4 took {elapsed:.1f} s"


@pytest.mark.slow
def test_long_horizon_contracting_rnn_is_finite_and_decreasing() -> None:
    """‖J_t‖₂ = ‖D_t W‖₂ ≤ ‖W‖₂ = 0.5 (d ∈ (0, 1]); by submultiplicativity (Pascanu et al. 2013,
    docs/math.md §1) log‖P_k‖ ≤ log‖P_{k+1}‖ + log 0.5 and log‖P_k‖ ≤ (T-k) log 0.5."""
    T, S = 100_000, 4
    rng = np.random.default_rng(6)
    a = rng.standard_normal((S, S))
    W = 0.5 * a / np.linalg.norm(a, 2)
    d = rng.uniform(0.5, 1.0, size=(T, S))
    with np.errstate(**RAISE):
        p = log_norm_profile_rnn(d, W)
    assert np.all(np.isfinite(p.log_spectral)) and np.all(np.isfinite(p.log_frobenius))
    assert np.all(np.diff(p.log_spectral) >= math.log(2.0) - 1e-9)
    bound = (T - np.arange(T)) * math.log(0.5)
    assert np.all(p.log_spectral <= bound + 1e-9 * np.abs(bound))
    assert p.log_spectral[0] < -69_000  # far below the float64 range, still finite
    # The latest entries against explicit products (short products do not underflow).
    spectral, frobenius = direct_norms(d[-40:, :, None] * W[None])
    np.testing.assert_allclose(p.spectral[-40:], spectral, rtol=1e-12, atol=0)
    np.testing.assert_allclose(p.frobenius[-40:], frobenius, rtol=1e-12, atol=0)


MEMORY_SCRIPT = textwrap.dedent("""
    import json, sys, time
    import numpy as np

    def hwm_kib():
        # VmHWM: this process's own peak RSS. (ru_maxrss is inherited across fork/exec on Linux,
        # so a child of a large pytest process would report the parent's peak.)
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

    from gradproof.numeric import gradient_profile, init, random_sequence
    from gradproof.numeric.profile import log_norm_profile_rnn

    T, S = 100_000, 64
    rng = np.random.default_rng(0)
    a = rng.standard_normal((S, S))
    W = a / np.linalg.norm(a, 2)
    d = rng.uniform(0.2, 1.0, size=(T, S))
    before = hwm_kib()
    start = time.perf_counter()
    with np.errstate(all="raise"):
        p = log_norm_profile_rnn(d, W)
    elapsed = time.perf_counter() - start
    after = hwm_kib()
    # the public API end to end: forward pass, derived diagonals, streamed profile
    params = init("rnn-tanh", hidden=S, inputs=4, seed=0, spectral_norm=0.9)
    xs = random_sequence(T, 4, seed=1)
    start = time.perf_counter()
    q = gradient_profile("rnn-tanh", params, xs)
    api_seconds = time.perf_counter() - start
    json.dump({"before_kib": before, "peak_kib": after, "seconds": elapsed,
               "api_peak_kib": hwm_kib(), "api_seconds": api_seconds,
               "api_finite": bool(np.isfinite(q.log_spectral).all()),
               "finite": bool(np.isfinite(p.log_spectral).all()),
               "first": float(p.log_spectral[0])}, sys.stdout)
    """)


@pytest.mark.slow
def test_memory_is_O_S2_for_a_long_rnn_profile() -> None:
    """T = 1e5, S = 64: storing the products would take T·S²·8 B = 3.3 GB; streaming needs O(S²)."""
    proc = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    # ru_maxrss is in KiB on Linux. The child reports its own peak (RUSAGE_SELF): the parent's
    # RUSAGE_CHILDREN is a maximum over every child this pytest process ever waited for.
    assert out["finite"] and out["first"] < -1000
    assert out["peak_kib"] < 300 * 1024, f"peak RSS {out['peak_kib'] / 1024:.0f} MiB"
    assert out["peak_kib"] - out["before_kib"] < 20 * 1024  # the call: O(S²) + two (T,) arrays
    assert out["seconds"] < 60, f"T = 1e5 at S = 64 took {out['seconds']:.1f} s"
    # numeric.gradient_profile end to end (issue: T = 100000 at hidden 64 under 300 MB peak RSS)
    assert out["api_finite"]
    assert out["api_peak_kib"] < 300 * 1024, f"gradient_profile peak RSS {out['api_peak_kib'] / 1024:.0f} MiB"


# --------------------------------------------------------------------------------------------
# The result object and the boundary
# --------------------------------------------------------------------------------------------


def test_profile_arrays_are_read_only_copies() -> None:
    logs = np.log([0.25, 0.5])
    p = GradientProfile(logs, logs + 0.1)
    with pytest.raises(ValueError, match="read-only"):
        p.log_spectral[0] = 0.0
    with pytest.raises(ValueError, match="read-only"):
        p.log_frobenius[0] = 0.0
    logs[0] = 123.0  # the caller's array stays the caller's
    assert p.log_spectral[0] == math.log(0.25)
    rng = np.random.default_rng(0)
    q = log_norm_profile_rnn(rng.uniform(size=(5, 3)), rng.standard_normal((3, 3)))
    assert not q.log_spectral.flags.writeable and not q.log_frobenius.flags.writeable
    with pytest.raises(AttributeError):
        q.log_spectral = np.zeros(5)  # type: ignore[misc]


def test_input_jacobians_are_not_modified() -> None:
    rng = np.random.default_rng(2)
    jac = random_jacobians(rng, 5, 20, scale=3.0)
    kept = jac.copy()
    log_norm_profile(reversed(jac), 5, size=20)
    np.testing.assert_array_equal(jac, kept)


BAD_CALLS = {
    "too few": (lambda: log_norm_profile([np.eye(2)] * 2, 3, size=2), "got 2"),
    "too many": (lambda: log_norm_profile([np.eye(2)] * 4, 3, size=2), "more than T = 3"),
    "wrong shape": (lambda: log_norm_profile([np.eye(3)], 1, size=2), r"\(2, 2\); got \(3, 3\)"),
    "nan": (lambda: log_norm_profile([np.full((2, 2), np.nan)], 1, size=2), "non-finite"),
    "T zero": (lambda: log_norm_profile([], 0, size=2), "T must be an integer ≥ 1"),
    "size float": (lambda: log_norm_profile([np.eye(2)], 1, size=2.0), "size must be"),
    "rnn W not square": (
        lambda: log_norm_profile_rnn(np.ones((3, 2)), np.ones((2, 3))),
        "square",
    ),
    "rnn d 1-D": (lambda: log_norm_profile_rnn(np.ones(2), np.eye(2)), r"\(T, n\)"),
    "rnn d inf": (lambda: log_norm_profile_rnn(np.full((2, 2), np.inf), np.eye(2)), "finite"),
    "overflow": (  # J_2 J_1 has entries 1.2e309: they overflow although the log-norm exists
        lambda: log_norm_profile([np.eye(8)[[0] * 8].T, np.full((8, 8), 1.5e308)], 2, size=8),
        "overflow",
    ),
    "profile 2-D": (lambda: GradientProfile(np.zeros((2, 2)), np.zeros((2, 2))), "1-D"),
    "profile lengths": (lambda: GradientProfile(np.zeros(2), np.zeros(3)), "same length"),
    "profile nan": (lambda: GradientProfile(np.array([np.nan]), np.zeros(1)), "NaN"),
}


@pytest.mark.parametrize("call, message", BAD_CALLS.values(), ids=BAD_CALLS.keys())
def test_bad_input_raises_gradproof_error(call, message: str) -> None:  # noqa: ANN001
    with pytest.raises(GradproofError, match=message):
        call()


def test_doctests_pass() -> None:
    result = doctest.testmod(profile_module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted >= 4 and result.failed == 0


def test_the_per_step_loops_run_with_one_blas_thread(monkeypatch):
    """numeric/threads.py: inside the profile's loop BLAS has one thread; the setting is restored."""
    import threadpoolctl

    import gradproof.numeric.profile as profile_mod

    def blas_threads() -> dict[str, int]:
        return {i["filepath"]: i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}

    seen: list[int] = []
    real = profile_mod._top_eigenvalue

    def spy(*args, **kwargs):
        seen.extend(blas_threads().values())
        return real(*args, **kwargs)

    monkeypatch.setattr(profile_mod, "_top_eigenvalue", spy)
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        p = init("lstm", hidden=3, inputs=2, seed=0)
        gradient_profile("lstm", p, np.ones((6, 2)))
        after = blas_threads()
    assert seen and set(seen) == {1}
    assert before and set(before.values()) == {2}
    assert {path: after[path] for path in before} == before
