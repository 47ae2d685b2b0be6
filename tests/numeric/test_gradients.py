"""numeric.gradients: derived step/input Jacobians, BPTT gradients and the gradient profile.

Conventions (CONTRACT.md, docs/math.md top): numerator layout; step Jacobians ``(T, S, S)`` with entry
t-1 = ∂s_t/∂s_{t-1}; input Jacobians ``(T, S, m)`` with entry t-1 = ∂s_t/∂x_t; the loss of the
parameter gradients is J = Σ_t w_t · h_t with ``loss_weights w: (T, n)``; the LSTM state is [h; c].

What the expectations come from, never from the code under test:

* ``torch``: autograd of the cells typed again in torch from docs/math.md §1, §3, §4
  (:mod:`numeric.torch_reference`, itself tested against ``torch.nn`` in test_torch_reference.py);
* ``torch.nn``: the real ``nn.RNN`` / ``nn.LSTM`` / ``nn.GRU`` modules' forward and backward;
* ``complex-step`` (Squire & Trapp 1998) and ``finite-diff`` differentiate the forward definitions;
* closed forms: D(σ'(z_t)) W_h (docs/math.md §1, Pascanu et al. 2013 eq. 7), ∂c_t/∂c_{t-1} = D(f_t)
  (docs/math.md §3), the adjoint λ_t = Σ_{s≥t} (∂h_s/∂s_t)ᵀ w_s (the definition of the BPTT adjoint);
* the gradient profile against the explicit ordered product J_T ⋯ J_{k+1} and ``np.linalg.norm``,
  and against the Pascanu bound ‖∂h_T/∂h_k‖₂ ≤ η^{T-k}, η = γ λ₁ (docs/math.md §1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gradproof import numeric
from gradproof.derive.cells import CELL_NAMES, cell
from gradproof.derive.errors import GradproofError
from gradproof.numeric.gradients import adjoints
from gradproof.numeric.references import TOLERANCES, get_reference
from gradproof.numeric.testing import cells, parameters, sequences

RTOL = 1e-10  # the acceptance threshold (float64, relative)
#: absolute floor, as a fraction of the largest entry of the compared quantity: an entry that is a
#: sum of terms that cancel has an absolute rounding error ~ eps · (largest term), not ~ eps · |entry|.
FLOOR = 1e-12
RAISE = {"all": "raise"}
TORCH_NN_CELLS = ("rnn-tanh", "rnn-relu", "lstm", "gru-torch")  # cells with a torch.nn module

#: (hidden, inputs, T): hidden sizes 1, 2, 7, 32 and lengths 1, 5, 40.
CASES = [(1, 1, 1), (1, 2, 40), (2, 3, 5), (7, 3, 40), (32, 4, 1), (32, 5, 40)]


def _id(case: tuple[int, int, int]) -> str:
    return "n{}-m{}-T{}".format(*case)


def problem(name: str, hidden: int, inputs: int, T: int, seed: int = 0):  # noqa: N803
    """Seeded random weights (PyTorch's default U(-1/√n, 1/√n)), inputs, nonzero s0, loss weights."""
    p = numeric.init(name, hidden=hidden, inputs=inputs, seed=seed)
    xs = numeric.random_sequence(T, inputs, seed=seed + 1)
    rng = np.random.default_rng(seed + 2)
    s0 = rng.uniform(-0.9, 0.9, cell(name).state_size(hidden))
    w = rng.standard_normal((T, hidden))
    return p, xs, s0, w


def assert_close(actual: np.ndarray, expected: np.ndarray, what: str, rtol: float = RTOL) -> None:
    """Entrywise ``|a - b| <= rtol |b| + FLOOR · max|b|`` (and equal shapes)."""
    assert actual.shape == expected.shape, what
    scale = float(np.max(np.abs(expected), initial=0.0))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=FLOOR * scale, err_msg=what)


def analytic(name: str, p, xs, s0, w):
    with np.errstate(**RAISE):
        return (
            numeric.step_jacobians(name, p, xs, s0),
            numeric.input_jacobians(name, p, xs, s0),
            numeric.parameter_gradients(name, p, xs, s0, loss_weights=w),
        )


def check_against(reference: str, name: str, case: tuple[int, int, int], seed: int) -> None:
    hidden, inputs, T = case
    p, xs, s0, w = problem(name, hidden, inputs, T, seed)
    S = cell(name).state_size(hidden)
    J, Jx, g = analytic(name, p, xs, s0, w)
    assert J.shape == (T, S, S) and Jx.shape == (T, S, inputs)
    assert list(g) == list(cell(name).parameter_names)

    ref = get_reference(reference)
    assert_close(J, ref.step_jacobians(name, p, xs, s0), f"{name} step Jacobians vs {reference}")
    assert_close(Jx, ref.input_jacobians(name, p, xs, s0), f"{name} input Jacobians vs {reference}")
    g_ref = ref.parameter_gradients(name, p, xs, s0, loss_weights=w)
    for k in g:
        assert g[k].shape == p[k].shape, k
        assert_close(g[k], g_ref[k], f"{name} dJ/d{k} vs {reference}")

    report = numeric.verify(name, p, xs, s0, reference=reference, loss_weights=w)
    assert report.ok, report.table()
    assert (report.cell, report.reference, report.hidden, report.inputs, report.steps) == (
        name, reference, hidden, inputs, T,
    )  # fmt: skip
    # the criterion, stated here and not read from the code: 1e-10 relative
    assert all(c.rtol <= RTOL and c.max_rel <= RTOL for c in report.checks), report.table()


# -- requirement 1: every cell against autodiff and torch.nn -----------------------------------
@pytest.mark.parametrize("case", CASES, ids=_id)
@pytest.mark.parametrize("name", CELL_NAMES)
def test_agrees_with_torch_autodiff(name: str, case: tuple[int, int, int]) -> None:
    check_against("torch", name, case, seed=CASES.index(case))


# torch.nn's Jacobians are one autograd call per step: the largest case is the slow one
NN_CASES = [pytest.param(c, marks=pytest.mark.slow) if c == (32, 5, 40) else c for c in CASES]


@pytest.mark.parametrize("case", NN_CASES, ids=_id)
@pytest.mark.parametrize("name", TORCH_NN_CELLS)
def test_agrees_with_torch_nn_modules(name: str, case: tuple[int, int, int]) -> None:
    check_against("torch.nn", name, case, seed=10 + CASES.index(case))


@pytest.mark.parametrize("name", CELL_NAMES)
def test_agrees_with_torch_on_saturating_weights(name: str) -> None:
    # ‖W‖₂ = 3 and inputs of scale 3 drive the gates towards 0 and 1 (derivatives ~ 1e-3..1e-8).
    p = numeric.init(name, hidden=5, inputs=2, seed=7, spectral_norm=3.0)
    xs = numeric.random_sequence(12, 2, seed=8, scale=3.0)
    s0 = np.random.default_rng(9).uniform(-1, 1, cell(name).state_size(5))
    report = numeric.verify(name, p, xs, s0, reference="torch")
    assert report.ok, report.table()


@pytest.mark.parametrize("name", CELL_NAMES)
def test_agrees_with_complex_step(name: str) -> None:
    p, xs, s0, w = problem(name, 3, 2, 6, seed=3)
    J, Jx, g = analytic(name, p, xs, s0, w)
    ref = get_reference("complex-step")
    assert_close(J, ref.step_jacobians(name, p, xs, s0), "step Jacobians vs complex-step")
    assert_close(Jx, ref.input_jacobians(name, p, xs, s0), "input Jacobians vs complex-step")
    g_ref = ref.parameter_gradients(name, p, xs, s0, loss_weights=w)
    for k in g:
        assert_close(g[k], g_ref[k], f"dJ/d{k} vs complex-step")
    report = numeric.verify(name, p, xs, s0, reference="complex-step", loss_weights=w)
    assert report.ok, report.table()
    assert {c.rtol for c in report.checks} == {1e-10}


@pytest.mark.parametrize("name", ["rnn-sigmoid", "lstm", "gru-torch"])
def test_agrees_with_finite_differences_at_documented_tolerance(name: str) -> None:
    # numeric.references documents central differences, h = 1e-6·max(1, |x|): ~1e-8 relative,
    # and accepts rtol 1e-5, atol 1e-7.
    assert TOLERANCES["finite-diff"] == (1e-5, 1e-7)
    p, xs, s0, w = problem(name, 3, 2, 5, seed=4)
    report = numeric.verify(name, p, xs, s0, reference="finite-diff", loss_weights=w)
    assert report.ok, report.table()
    assert {(c.rtol, c.atol) for c in report.checks} == {(1e-5, 1e-7)}
    # and it is far better than it needs to be: truncation O(h²) ~ 1e-12, rounding eps/h ~ 1e-10
    assert max(c.max_rel for c in report.checks) < 1e-7, report.table()


# -- closed forms (independent of any reference) -------------------------------------------------
@pytest.mark.parametrize("name, derivative", [
    ("rnn-tanh", lambda h, z: 1.0 - h**2),
    ("rnn-sigmoid", lambda h, z: h * (1.0 - h)),
    ("rnn-relu", lambda h, z: (z > 0).astype(np.float64)),
])  # fmt: skip
def test_rnn_step_jacobian_is_diag_sigma_prime_times_W(name: str, derivative) -> None:
    # docs/math.md §1 (Pascanu et al. 2013, eq. 7): ∂h_t/∂h_{t-1} = D(σ'(z_t)) W_h, in this order.
    p, xs, s0, _ = problem(name, 4, 2, 9, seed=5)
    states = numeric.unroll(name, p, xs, s0).states
    z = states[:-1] @ p["W_h"].T + xs @ p["W_x"].T + p["b"]
    d = derivative(states[1:], z)
    expected = d[:, :, None] * p["W_h"][None]
    with np.errstate(**RAISE):
        J = numeric.step_jacobians(name, p, xs, s0)
    assert_close(J, expected, "D(σ'(z)) W_h", rtol=1e-14)
    # ... and not the lecture's commuted W_h D(σ'(z)) (the factors do not commute)
    commuted = p["W_h"][None] * d[:, None, :]
    assert np.max(np.abs(J - commuted)) > 1e-3


def test_lstm_cell_to_cell_block_is_diag_forget_gate() -> None:
    # docs/math.md §3: ∂c_t/∂c_{t-1} = D(f_t) exactly (no peepholes), and ∂h_t/∂c_{t-1} =
    # D(o ⊙ (1 - tanh² c_t) ⊙ f).
    n = 3
    p, xs, s0, _ = problem("lstm", n, 2, 7, seed=6)
    states = numeric.unroll("lstm", p, xs, s0).states
    h_prev, c_t = states[:-1, :n], states[1:, n:]

    def sig(a):
        return 1.0 / (1.0 + np.exp(-a))

    f = sig(h_prev @ p["W_f"].T + xs @ p["U_f"].T + p["b_f"])
    o = sig(h_prev @ p["W_o"].T + xs @ p["U_o"].T + p["b_o"])
    J = numeric.step_jacobians("lstm", p, xs, s0)
    eye = np.eye(n)
    assert_close(J[:, n:, n:], f[:, :, None] * eye, "dc/dc = D(f)", rtol=1e-13)
    dh_dc = (o * (1.0 - np.tanh(c_t) ** 2) * f)[:, :, None] * eye
    assert_close(J[:, :n, n:], dh_dc, "dh/dc", rtol=1e-13)


def test_gru_update_gate_zero_keeps_the_state() -> None:
    # docs/math.md §4: with u = 0 the lecture GRU copies the state, h_t = h_{t-1}, and ∂h_t/∂h_{t-1} = I.
    # b_u = -60 gives u = σ(-60 + O(1)) ~ 1e-26: the gate is shut to far below rounding.
    p, xs, s0, _ = problem("gru", 3, 2, 4, seed=7)
    p = dict(p, b_u=np.full(3, -60.0))
    states = numeric.unroll("gru", p, xs, s0).states
    np.testing.assert_allclose(states, np.broadcast_to(s0, states.shape), rtol=0, atol=1e-24)
    J = numeric.step_jacobians("gru", p, xs, s0)
    np.testing.assert_allclose(J, np.broadcast_to(np.eye(3), J.shape), rtol=0, atol=1e-24)


def test_adjoints_are_sums_of_transposed_products() -> None:
    # λ_t = ∂J/∂s_t = Σ_{s ≥ t} (∂s_s/∂s_t)ᵀ P_h w_s, with P_h putting w_s on the h part.
    rng = np.random.default_rng(11)
    T, S, n = 6, 4, 2
    Js = rng.standard_normal((T, S, S))
    w = rng.standard_normal((T, n))
    lam = adjoints(Js, w, n)
    for t in range(T):  # λ for step t+1
        expected = np.zeros(S)
        P = np.eye(S)  # ∂s_{s}/∂s_{t+1}, s = t+1, t+2, …
        for s in range(t, T):
            if s > t:
                P = Js[s] @ P
            ws = np.zeros(S)
            ws[:n] = w[s]
            expected += P.T @ ws
        np.testing.assert_allclose(lam[t], expected, rtol=1e-12, atol=1e-12)


def test_linear_loss_gradient_of_the_bias_of_a_one_step_rnn() -> None:
    # One step of h_1 = tanh(W_h h_0 + W_x x_1 + b): ∂(w·h_1)/∂b = w ⊙ (1 - h_1²) (docs/math.md §1).
    p, xs, s0, w = problem("rnn-tanh", 3, 2, 1, seed=12)
    h1 = np.tanh(p["W_h"] @ s0 + p["W_x"] @ xs[0] + p["b"])
    g = numeric.parameter_gradients("rnn-tanh", p, xs, s0, loss_weights=w)
    np.testing.assert_allclose(g["b"], w[0] * (1 - h1**2), rtol=1e-14, atol=0)
    np.testing.assert_allclose(g["W_h"], np.outer(w[0] * (1 - h1**2), s0), rtol=1e-14, atol=1e-17)
    np.testing.assert_allclose(g["W_x"], np.outer(w[0] * (1 - h1**2), xs[0]), rtol=1e-14, atol=1e-17)


@pytest.mark.parametrize("bad, match", [
    (np.ones((4, 3)), r"loss_weights must have shape \(T, hidden\) = \(5, 3\), got \(4, 3\)"),
    (np.ones(15), r"loss_weights must have shape .* got \(15,\)"),
    (np.full((5, 3), np.nan), r"loss_weights must be finite"),
], ids=["wrong-T", "flat", "nan"])  # fmt: skip
def test_bad_loss_weights(bad, match: str) -> None:
    p, xs, s0, _ = problem("gru", 3, 2, 5)
    with pytest.raises(GradproofError, match=match):
        numeric.parameter_gradients("gru", p, xs, s0, loss_weights=bad)


# -- requirement 3a: the gradient profile equals the direct product -----------------------------
def direct_log_norms(Js: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
    """log ‖J_T ⋯ J_{k+1}‖ (2 and F) for k = 0..T-1 by explicit products; nan where outside
    [1e-150, 1e150] (norms there may be inaccurate or not representable), -inf where exactly 0."""
    T, S, _ = Js.shape
    out = np.full((2, T), np.nan)
    P = np.eye(S)
    with np.errstate(over="raise", invalid="raise", divide="raise", under="ignore"):
        for k in range(T - 1, -1, -1):
            P = P @ Js[k]  # Js[k] = J_{k+1}, so P = J_T ⋯ J_{k+1}
            for row, order in enumerate((2, "fro")):
                if not np.any(P):
                    out[row, k] = -np.inf
                    continue
                v = float(np.linalg.norm(P, order))
                if 1e-150 < v < 1e150:
                    out[row, k] = math.log(v)
    return out[0], out[1]


def _compare_profile(prof, Js) -> int:
    spec, fro = direct_log_norms(Js)
    compared = 0
    for got, want in ((prof.log_spectral, spec), (prof.log_frobenius, fro)):
        zero = want == -np.inf
        assert np.all(got[zero] == -np.inf)
        finite = np.isfinite(want)
        np.testing.assert_allclose(got[finite], want[finite], rtol=0, atol=1e-10)
        compared += int(finite.sum())
    return compared


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(
    drawn=parameters(cells(), spectral_norm=st.floats(0.2, 3.0)),
    T=st.integers(1, 40),
    data=st.data(),
)
def test_profile_equals_direct_product(drawn, T: int, data) -> None:  # noqa: N803
    c, p = drawn
    n = p[next(iter(p))].shape[0]  # the first parameter is always a recurrent (n, n) matrix
    m = next(v.shape[1] for k, v in p.items() if k.startswith("U_") or k == "W_x")
    xs = data.draw(sequences(T, m, scale=2.0), label="xs")
    s0 = data.draw(
        arrays(np.float64, c.state_size(n), elements=st.floats(-1, 1, allow_nan=False)), label="s0"
    )
    prof = numeric.gradient_profile(c, p, xs, s0)
    assert prof.log_spectral.shape == prof.log_frobenius.shape == (T,)
    Js = numeric.step_jacobians(c, p, xs, s0)
    _compare_profile(prof, Js)
    # ‖P‖₂ ≤ ‖P‖_F ≤ √S ‖P‖₂
    finite = np.isfinite(prof.log_spectral)
    assert np.all(prof.log_spectral[finite] <= prof.log_frobenius[finite] + 1e-12)
    assert np.all(
        prof.log_frobenius[finite] <= prof.log_spectral[finite] + 0.5 * math.log(c.state_size(n)) + 1e-12
    )


@pytest.mark.parametrize("name", CELL_NAMES)
def test_profile_matches_direct_product_for_every_cell(name: str) -> None:
    # deterministic companion of the property above (every cell, hidden 7, inputs 3, T 40)
    p, xs, s0, _ = problem(name, 7, 3, 40, seed=13)
    prof = numeric.gradient_profile(name, p, xs, s0)
    assert _compare_profile(prof, numeric.step_jacobians(name, p, xs, s0)) == 80


def test_profile_of_a_dead_relu_rnn_is_minus_infinity() -> None:
    # every unit of a relu RNN off at step 3 ⇒ J_3 = 0 ⇒ ∂h_T/∂h_k = 0 for every k < 3
    p = numeric.init("rnn-relu", hidden=3, inputs=1, seed=0)
    p = dict(p, W_x=np.ones((3, 1)), b=np.zeros(3))
    xs = np.array([[1.0], [1.0], [-1e3], [1.0], [1.0]])
    prof = numeric.gradient_profile("rnn-relu", p, xs)
    assert np.all(prof.log_spectral[:3] == -np.inf) and np.all(prof.log_frobenius[:3] == -np.inf)
    assert np.all(np.isfinite(prof.log_spectral[3:]))


def test_profile_rejects_complex_inputs() -> None:
    p = numeric.init("rnn-tanh", hidden=2, inputs=1, seed=0)
    with pytest.raises(GradproofError, match="real"):
        numeric.gradient_profile("rnn-tanh", p, np.ones((3, 1)) + 0j)


# -- requirement 4: a long horizon --------------------------------------------------------------
@pytest.mark.slow
def test_long_horizon_contracting_rnn_is_finite_and_matches_the_tail() -> None:
    # T = 100000, tanh, hidden 8, ‖W_h‖₂ = 0.5: ‖∂h_T/∂h_k‖ ≤ 0.5^{T-k} (γ = 1, docs/math.md §1), which
    # underflows float64 after ~1075 steps; the profile must stay finite in log space.
    T, n, m = 100_000, 8, 3
    p = numeric.init("rnn-tanh", hidden=n, inputs=m, seed=0, spectral_norm=0.5)
    xs = numeric.random_sequence(T, m, seed=1)
    prof = numeric.gradient_profile("rnn-tanh", p, xs)
    assert prof.T == T
    assert np.all(np.isfinite(prof.log_spectral)) and np.all(np.isfinite(prof.log_frobenius))
    steps = T - np.arange(T)  # T - k
    assert np.all(prof.log_spectral <= steps * math.log(0.5) + 1e-12 * steps + 1e-12)
    assert prof.log_spectral[0] < -69_000  # far below the float64 range (log 2^-1074 ≈ -744)

    # the last 50 steps, by the explicit product along the same trajectory
    tail = 50
    states = numeric.unroll("rnn-tanh", p, xs).states
    Js = numeric.step_jacobians("rnn-tanh", p, xs[T - tail :], states[T - tail])
    spec, fro = direct_log_norms(Js)
    assert np.all(np.isfinite(spec)) and np.all(np.isfinite(fro))
    np.testing.assert_allclose(prof.log_spectral[T - tail :], spec, rtol=0, atol=1e-10)
    np.testing.assert_allclose(prof.log_frobenius[T - tail :], fro, rtol=0, atol=1e-10)
