"""numeric.torch_reference: hand-written torch cells vs torch.nn, both vs finite differences.

Conventions (CONTRACT.md): step Jacobians (T, S, S), entry t-1 = ∂s_t/∂s_{t-1}; input Jacobians
(T, S, m), entry t-1 = ∂s_t/∂x_t; J = Σ_t w_t · h_t. Closed forms used as expectations cite
docs/math.md; the finite differences are central with h = 1e-6.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from gradproof.derive.cells import CELL_NAMES, cell
from gradproof.derive.errors import GradproofError
from gradproof.numeric.convert import TORCH_CELLS
from gradproof.numeric.initialization import init, random_sequence
from gradproof.numeric.references import REFERENCES, get_reference
from gradproof.numeric.torch_reference import TorchModuleReference, TorchReference

N, M, T = 3, 2, 6
H = 1e-6


def _problem(name: str, seed: int, spectral_norm: float = 1.5, x_scale: float = 1.0):
    p = init(name, hidden=N, inputs=M, seed=seed, spectral_norm=spectral_norm)
    xs = random_sequence(T, M, seed=seed + 100, scale=x_scale)
    rng = np.random.default_rng(seed + 200)
    s0 = rng.uniform(-0.8, 0.8, cell(name).state_size(N))
    w = rng.standard_normal((T, N))
    return p, xs, s0, w


def _close(a: np.ndarray, b: np.ndarray, rtol: float) -> None:
    """Relative agreement, entrywise with an absolute floor rtol * max|b|."""
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * float(np.max(np.abs(b))))


# -- the hand-written cells vs the real modules --------------------------------------------------
CASES = [(0, 1.5, 1.0), (1, 0.6, 0.5), (2, 4.0, 3.0)]  # default-ish, contracting, saturating


@pytest.mark.parametrize("name", TORCH_CELLS)
@pytest.mark.parametrize("seed, spectral_norm, x_scale", CASES)
def test_reference_agrees_with_torch_nn(
    name: str, seed: int, spectral_norm: float, x_scale: float
) -> None:
    p, xs, s0, w = _problem(name, seed, spectral_norm, x_scale)
    ours, mod = TorchReference(), TorchModuleReference()
    S = cell(name).state_size(N)

    states = ours.forward(name, p, xs, s0)
    assert states.shape == (T + 1, S)
    _close(states, mod.forward(name, p, xs, s0), 1e-12)

    J = ours.step_jacobians(name, p, xs, s0)
    assert J.shape == (T, S, S)
    _close(J, mod.step_jacobians(name, p, xs, s0), 1e-12)

    Jx = ours.input_jacobians(name, p, xs, s0)
    assert Jx.shape == (T, S, M)
    _close(Jx, mod.input_jacobians(name, p, xs, s0), 1e-12)

    g = ours.parameter_gradients(name, p, xs, s0, loss_weights=w)
    g_mod = mod.parameter_gradients(name, p, xs, s0, loss_weights=w)
    assert list(g) == list(g_mod) == list(cell(name).parameter_names)
    scale = max(float(np.max(np.abs(v))) for v in g.values())
    for k in g:
        assert g[k].shape == p[k].shape
        np.testing.assert_allclose(g[k], g_mod[k], rtol=1e-12, atol=1e-12 * scale, err_msg=k)


def test_planted_wrong_mapping_is_detected() -> None:
    # The 1e-12 agreement above has power: swapping two LSTM gates' weights changes everything.
    p, xs, s0, _ = _problem("lstm", 3)
    swapped = dict(p, W_f=p["W_i"], W_i=p["W_f"])
    J = TorchReference().step_jacobians("lstm", p, xs, s0)
    J_bad = TorchModuleReference().step_jacobians("lstm", swapped, xs, s0)
    assert np.max(np.abs(J - J_bad)) > 1e-3


def test_lecture_gru_versus_torch_gru() -> None:
    # docs/math.md §4. With u = 1 - z (σ(-a) = 1 - σ(a): negate the z gate's parameters), W_h = W_n and
    # b_hn = 0, the two forms differ only in where r acts: W_h (r ⊙ h) vs r ⊙ (W_n h). They agree
    # when r = 1 (b_r = 40: σ(40) rounds to 1) and differ otherwise.
    p = init("gru-torch", hidden=N, inputs=M, seed=4, spectral_norm=2.0)
    p["b_hn"] = np.zeros(N)
    xs = random_sequence(4, M, seed=5)
    s0 = np.full(N, 0.7)

    def lecture(q: dict) -> dict:
        return {
            "W_u": -q["W_z"], "W_r": q["W_r"], "W_h": q["W_n"],
            "U_u": -q["U_z"], "U_r": q["U_r"], "U_h": q["U_n"],
            "b_u": -q["b_z"], "b_r": q["b_r"], "b_h": q["b_in"],
        }  # fmt: skip

    ref = TorchReference()
    a = ref.forward("gru", lecture(p), xs, s0)
    b = ref.forward("gru-torch", p, xs, s0)
    assert np.max(np.abs(a - b)) > 1e-3
    open_gate = dict(p, W_r=np.zeros((N, N)), U_r=np.zeros((N, M)), b_r=np.full(N, 40.0))
    np.testing.assert_allclose(
        ref.forward("gru", lecture(open_gate), xs, s0),
        ref.forward("gru-torch", open_gate, xs, s0),
        rtol=0,
        atol=1e-14,
    )


# -- closed forms (docs/math.md) ---------------------------------------------------------------------
def test_rnn_step_jacobian_is_diag_sigma_prime_times_W() -> None:
    # docs/math.md §1: ∂h_t/∂h_{t-1} = D(σ'(z_t)) W_h with z_t = W_h h_{t-1} + W_x x_t + b.
    for name, dsigma in [
        ("rnn-tanh", lambda z: 1.0 - np.tanh(z) ** 2),
        ("rnn-sigmoid", lambda z: np.exp(-z) / (1.0 + np.exp(-z)) ** 2),
        ("rnn-relu", lambda z: (z > 0).astype(float)),
    ]:
        p, xs, s0, _ = _problem(name, 6)
        ref = TorchReference()
        hs = ref.forward(name, p, xs, s0)
        J = ref.step_jacobians(name, p, xs, s0)
        with np.errstate(all="raise"):
            for t in range(1, T + 1):
                z = p["W_h"] @ hs[t - 1] + p["W_x"] @ xs[t - 1] + p["b"]
                D = np.diag(dsigma(z))
                np.testing.assert_allclose(J[t - 1], D @ p["W_h"], rtol=1e-13, atol=1e-15)
                Jx = ref.input_jacobians(name, p, xs, s0)[t - 1]
                np.testing.assert_allclose(Jx, D @ p["W_x"], rtol=1e-13, atol=1e-15)


def test_lstm_cell_block_is_diag_forget_gate() -> None:
    # docs/math.md §3: ∂c_t/∂c_{t-1} = D(f_t) exactly; ∂h_t/∂c_{t-1} = D(o ⊙ (1 - tanh² c_t) ⊙ f).
    p, xs, s0, _ = _problem("lstm", 7)
    ref = TorchReference()
    s = ref.forward("lstm", p, xs, s0)
    J = ref.step_jacobians("lstm", p, xs, s0)

    def sig(v: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-v))

    with np.errstate(all="raise"):
        for t in range(1, T + 1):
            h = s[t - 1, :N]
            f = sig(p["W_f"] @ h + p["U_f"] @ xs[t - 1] + p["b_f"])
            o = sig(p["W_o"] @ h + p["U_o"] @ xs[t - 1] + p["b_o"])
            c_t = s[t, N:]
            np.testing.assert_allclose(J[t - 1, N:, N:], np.diag(f), rtol=1e-14, atol=1e-16)
            np.testing.assert_allclose(
                J[t - 1, :N, N:], np.diag(o * (1 - np.tanh(c_t) ** 2) * f), rtol=1e-13, atol=1e-16
            )


# -- finite differences of the forward pass (sanity check for both references) ------------------
def _fd_step_jacobians(ref, name: str, p, xs, s0) -> tuple[np.ndarray, np.ndarray]:
    """Central differences of one step s_t(s_{t-1}, x_t), from the reference's own forward."""
    states = ref.forward(name, p, xs, s0)
    S = states.shape[1]
    Js, Jx = np.empty((T, S, S)), np.empty((T, S, M))
    for t in range(T):
        x = xs[t : t + 1]
        for j in range(S):
            e = np.zeros(S)
            e[j] = H
            plus = ref.forward(name, p, x, states[t] + e)[1]
            minus = ref.forward(name, p, x, states[t] - e)[1]
            Js[t, :, j] = (plus - minus) / (2 * H)
        for j in range(M):
            e = np.zeros((1, M))
            e[0, j] = H
            plus = ref.forward(name, p, x + e, states[t])[1]
            minus = ref.forward(name, p, x - e, states[t])[1]
            Jx[t, :, j] = (plus - minus) / (2 * H)
    return Js, Jx


def _fd_parameter_gradients(ref, name: str, p, xs, s0, w) -> dict[str, np.ndarray]:
    def loss(q) -> float:
        return float(np.sum(w * ref.forward(name, q, xs, s0)[1:, :N]))

    out = {}
    for k, v in p.items():
        g = np.empty_like(v)
        for idx in np.ndindex(v.shape):
            plus, minus = {**p, k: v.copy()}, {**p, k: v.copy()}
            plus[k][idx] += H
            minus[k][idx] -= H
            g[idx] = (loss(plus) - loss(minus)) / (2 * H)
        out[k] = g
    return out


REFERENCE_CELLS = [("torch", c) for c in CELL_NAMES] + [("torch.nn", c) for c in TORCH_CELLS]


@pytest.mark.parametrize(
    "ref_name, name", REFERENCE_CELLS, ids=[f"{r}-{c}" for r, c in REFERENCE_CELLS]
)
def test_against_finite_differences(ref_name: str, name: str) -> None:
    ref = get_reference(ref_name)
    p, xs, s0, w = _problem(name, 8, spectral_norm=1.2)
    with np.errstate(all="raise"):
        Js, Jx = _fd_step_jacobians(ref, name, p, xs, s0)
        np.testing.assert_allclose(ref.step_jacobians(name, p, xs, s0), Js, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(ref.input_jacobians(name, p, xs, s0), Jx, rtol=1e-6, atol=1e-8)
        fd = _fd_parameter_gradients(ref, name, p, xs, s0, w)
    g = ref.parameter_gradients(name, p, xs, s0, loss_weights=w)
    for k in p:
        np.testing.assert_allclose(g[k], fd[k], rtol=1e-6, atol=1e-8, err_msg=k)


def test_default_initial_state_is_zero() -> None:
    p, xs, _, w = _problem("lstm", 9)
    ref = TorchReference()
    zeros = np.zeros(2 * N)
    np.testing.assert_array_equal(ref.forward("lstm", p, xs), ref.forward("lstm", p, xs, zeros))
    a = ref.parameter_gradients("lstm", p, xs, loss_weights=w)
    b = TorchModuleReference().parameter_gradients("lstm", p, xs, zeros, loss_weights=w)
    for k in a:
        np.testing.assert_allclose(a[k], b[k], rtol=1e-12, atol=1e-14)


# -- registry and validation ------------------------------------------------------------------
def test_registry() -> None:
    assert isinstance(get_reference("torch"), TorchReference)
    assert isinstance(get_reference("torch.nn"), TorchModuleReference)
    assert get_reference("torch").name == "torch" and get_reference("torch.nn").name == "torch.nn"
    expected = r"unknown reference 'autograd'; choose one of: torch, torch\.nn, complex-step, finite-diff"
    with pytest.raises(GradproofError, match=expected):
        get_reference("autograd")


def test_registry_is_extensible(monkeypatch: pytest.MonkeyPatch) -> None:
    class Dummy:
        name = "dummy"

    monkeypatch.setitem(REFERENCES, "dummy", Dummy)
    assert isinstance(get_reference("dummy"), Dummy)
    with pytest.raises(GradproofError, match="finite-diff, dummy"):
        get_reference("nope")


@pytest.mark.parametrize("name", ["gru", "rnn-sigmoid"])
def test_module_reference_rejects_cells_without_module(name: str) -> None:
    p, xs, _, _ = _problem(name, 0)
    with pytest.raises(GradproofError, match="rnn-tanh, rnn-relu, lstm, gru-torch") as info:
        TorchModuleReference().step_jacobians(name, p, xs)
    assert "'torch' reference" in str(info.value)


def _bad(**changes) -> Callable[[], None]:
    def call() -> None:
        p, xs, s0, w = _problem("gru-torch", 0)
        args = dict(params=p, xs=xs, s0=s0, loss_weights=w) | changes
        TorchReference().parameter_gradients(
            "gru-torch", args["params"], args["xs"], args["s0"], loss_weights=args["loss_weights"]
        )

    return call


@pytest.mark.parametrize(
    "call, message",
    [
        pytest.param(_bad(xs=np.zeros(4)), r"xs must have shape \(T, inputs\)", id="xs-1d"),
        pytest.param(_bad(xs=np.zeros((0, M))), "T, inputs >= 1", id="xs-empty"),
        pytest.param(_bad(xs=np.full((T, M), np.nan)), "xs must be finite", id="xs-nan"),
        pytest.param(_bad(xs=np.zeros((T, M + 1))), "U_r .* must have shape", id="xs-width"),
        pytest.param(_bad(xs="abc"), "xs must be a real array", id="xs-string"),
        pytest.param(_bad(s0=np.zeros(N + 1)), r"s0 must have shape \(S,\) = \(3,\)", id="s0-size"),
        pytest.param(_bad(s0=np.array([0, np.inf, 0])), "s0 must be finite", id="s0-inf"),
        pytest.param(
            _bad(loss_weights=np.zeros((T, N + 1))), "loss_weights must have shape", id="w-shape"
        ),
        pytest.param(_bad(loss_weights=np.zeros(N)), "loss_weights must have shape", id="w-1d"),
        pytest.param(
            _bad(params=init("lstm", hidden=N, inputs=M, seed=0)), "must be exactly", id="params-cell"
        ),
        pytest.param(
            lambda: TorchReference().forward("nope", {}, np.zeros((2, 2))), "unknown cell", id="cell"
        ),
    ],
)
def test_bad_arguments(call: Callable[[], None], message: str) -> None:
    with pytest.raises(GradproofError, match=message) as info:
        call()
    assert "\n" not in str(info.value)
