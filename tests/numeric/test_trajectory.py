"""numeric.trajectory: the forward pass the Jacobians are evaluated along.

Conventions (CONTRACT.md): ``xs: (T, m)``; ``s0: (S,)`` zeros by default, S = n (2n for the
LSTM, ordered [h; c]); ``states: (T + 1, S)`` = s_0 … s_T. The expected values come from the
torch reference (cells typed in from docs/math.md §1, §3, §4), the real ``torch.nn`` modules, and the
gate formulas of docs/math.md written again in numpy below.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from gradproof import numeric
from gradproof.derive.cells import CELL_NAMES, cell
from gradproof.derive.errors import GradproofError
from gradproof.numeric.references import get_reference
from gradproof.numeric.trajectory import Trajectory

RAISE = {"all": "raise"}
TORCH_NN_CELLS = ("rnn-tanh", "rnn-relu", "lstm", "gru-torch")


def sigmoid(a: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-a))


def problem(name: str, n: int = 3, m: int = 2, T: int = 7, seed: int = 0):  # noqa: N803
    p = numeric.init(name, hidden=n, inputs=m, seed=seed)
    xs = numeric.random_sequence(T, m, seed=seed + 1)
    s0 = np.random.default_rng(seed + 2).uniform(-0.9, 0.9, cell(name).state_size(n))
    return p, xs, s0


# -- shapes and defaults -------------------------------------------------------------------------
@pytest.mark.parametrize("name", CELL_NAMES)
def test_states_shape_default_s0_and_hidden_part(name: str) -> None:
    n, T = 3, 7
    p, xs, _ = problem(name, n=n, T=T)
    with np.errstate(**RAISE):
        traj = numeric.unroll(name, p, xs)
    S = cell(name).state_size(n)
    assert isinstance(traj, Trajectory)
    assert traj.states.shape == (T + 1, S) and traj.states.dtype == np.float64
    assert S == (2 * n if name == "lstm" else n)
    np.testing.assert_array_equal(traj.states[0], np.zeros(S))  # s0 defaults to zeros
    np.testing.assert_array_equal(traj.hidden_states, traj.states[:, :n])
    assert (traj.T, traj.hidden, traj.inputs) == (T, n, 2)
    assert traj.cell.name == name
    # s0 = None and s0 = zeros are the same trajectory
    np.testing.assert_array_equal(numeric.unroll(name, p, xs, np.zeros(S)).states, traj.states)


def test_trajectory_is_frozen() -> None:
    p, xs, _ = problem("rnn-tanh")
    traj = numeric.unroll("rnn-tanh", p, xs)
    with pytest.raises(dataclasses.FrozenInstanceError):
        traj.states = np.zeros(1)  # type: ignore[misc]


def test_lists_and_integer_arrays_are_accepted() -> None:
    p, xs, _ = problem("rnn-tanh", m=1, T=3)
    a = numeric.unroll("rnn-tanh", p, [[1], [0], [2]]).states
    b = numeric.unroll("rnn-tanh", p, np.array([[1.0], [0.0], [2.0]])).states
    np.testing.assert_array_equal(a, b)


# -- against the references ----------------------------------------------------------------------
@pytest.mark.parametrize("n, m, T", [(1, 1, 1), (3, 2, 7), (16, 4, 40)])
@pytest.mark.parametrize("name", CELL_NAMES)
def test_unroll_equals_torch_forward(name: str, n: int, m: int, T: int) -> None:  # noqa: N803
    p, xs, s0 = problem(name, n=n, m=m, T=T, seed=n)
    with np.errstate(**RAISE):
        states = numeric.unroll(name, p, xs, s0).states
    expected = get_reference("torch").forward(name, p, xs, s0)
    np.testing.assert_allclose(states, expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(states[0], s0)


@pytest.mark.parametrize("name", TORCH_NN_CELLS)
def test_unroll_equals_torch_nn_forward(name: str) -> None:
    p, xs, s0 = problem(name, n=5, m=3, T=20, seed=3)
    states = numeric.unroll(name, p, xs, s0).states
    np.testing.assert_allclose(states, get_reference("torch.nn").forward(name, p, xs, s0), rtol=1e-12, atol=1e-14)


def test_rnn_forward_by_hand() -> None:
    # docs/math.md §1: h_t = tanh(W_h h_{t-1} + W_x x_t + b)
    p, xs, s0 = problem("rnn-tanh", n=4, m=3, T=6)
    h = s0
    expected = [h]
    for x in xs:
        h = np.tanh(p["W_h"] @ h + p["W_x"] @ x + p["b"])
        expected.append(h)
    np.testing.assert_allclose(numeric.unroll("rnn-tanh", p, xs, s0).states, expected, rtol=1e-14, atol=1e-15)


# -- intermediates -------------------------------------------------------------------------------
KEYS = {
    "rnn-tanh": {"z", "h"}, "rnn-sigmoid": {"z", "h"}, "rnn-relu": {"z", "h"},
    "lstm": {"f", "i", "o", "c_tilde", "c", "h"},
    "gru": {"u", "r", "h_tilde", "h"},
    "gru-torch": {"r", "z", "n", "h"},
}  # fmt: skip


@pytest.mark.parametrize("name", CELL_NAMES)
def test_intermediates_keys_and_shapes(name: str) -> None:
    n, T = 3, 5
    p, xs, s0 = problem(name, n=n, T=T)
    traj = numeric.unroll(name, p, xs, s0)
    inter = traj.intermediates()
    assert KEYS[name] <= set(inter)
    for k, v in inter.items():
        assert v.shape == (T, n), k
    # recomputed in one batched evaluation: equal to the stepwise forward up to rounding
    np.testing.assert_allclose(inter["h"], traj.states[1:, :n], rtol=1e-14, atol=1e-16)
    # a window of steps start+1 … stop
    part = traj.intermediates(2, 4)
    for k in inter:
        np.testing.assert_allclose(part[k], inter[k][2:4], rtol=1e-14, atol=1e-16, err_msg=k)


def test_lstm_intermediates_by_hand() -> None:
    # docs/math.md §3: f, i, o = σ(W_• h + U_• x + b_•); c̃ = tanh(W_c h + U_c x + b_c);
    # c = f ⊙ c_prev + i ⊙ c̃; h = o ⊙ tanh(c)
    n = 4
    p, xs, s0 = problem("lstm", n=n, m=3, T=6)
    traj = numeric.unroll("lstm", p, xs, s0)
    inter = traj.intermediates()
    h_prev, c_prev = traj.states[:-1, :n], traj.states[:-1, n:]

    def pre(g: str) -> np.ndarray:
        return h_prev @ p[f"W_{g}"].T + xs @ p[f"U_{g}"].T + p[f"b_{g}"]

    f, i, o, g = sigmoid(pre("f")), sigmoid(pre("i")), sigmoid(pre("o")), np.tanh(pre("c"))
    c = f * c_prev + i * g
    for key, value in {"f": f, "i": i, "o": o, "c_tilde": g, "c": c, "h": o * np.tanh(c)}.items():
        np.testing.assert_allclose(inter[key], value, rtol=1e-13, atol=1e-15, err_msg=key)
    np.testing.assert_allclose(traj.states[1:, n:], c, rtol=1e-13, atol=1e-15)


def test_gru_torch_intermediates_by_hand() -> None:
    # docs/math.md §4 (PyTorch form): n = tanh(U_n x + b_in + r ⊙ (W_n h + b_hn)); h' = (1-z) n + z h
    p, xs, s0 = problem("gru-torch", n=3, m=2, T=5)
    traj = numeric.unroll("gru-torch", p, xs, s0)
    inter = traj.intermediates()
    h = traj.states[:-1]
    r = sigmoid(h @ p["W_r"].T + xs @ p["U_r"].T + p["b_r"])
    z = sigmoid(h @ p["W_z"].T + xs @ p["U_z"].T + p["b_z"])
    cand = np.tanh(xs @ p["U_n"].T + p["b_in"] + r * (h @ p["W_n"].T + p["b_hn"]))
    for key, value in {"r": r, "z": z, "n": cand, "h": (1 - z) * cand + z * h}.items():
        np.testing.assert_allclose(inter[key], value, rtol=1e-13, atol=1e-15, err_msg=key)


# -- complex trajectories (what the complex-step reference runs on) -----------------------------
def test_complex_inputs_give_a_complex_trajectory() -> None:
    p, xs, s0 = problem("gru", T=4)
    real = numeric.unroll("gru", p, xs, s0).states
    traj = numeric.unroll("gru", p, xs + 0j, s0)
    assert traj.states.dtype == np.complex128
    np.testing.assert_allclose(traj.states.real, real, rtol=1e-14, atol=1e-16)  # complex rounding
    np.testing.assert_array_equal(traj.states.imag, 0.0)


# -- bad inputs ------------------------------------------------------------------------------------
def _params(name: str = "lstm", n: int = 2, m: int = 3):
    return numeric.init(name, hidden=n, inputs=m, seed=0)


def _with(name: str, **changes):
    return dict(_params(name), **changes)


def _without(name: str, key: str):
    p = _params(name)
    del p[key]
    return p


XS = np.ones((4, 3))
BAD = [
    ("xs-1d", "lstm", _params(), np.ones(4), None, r"xs must have shape \(T, inputs\).*got \(4,\)"),
    ("xs-3d", "lstm", _params(), np.ones((4, 3, 1)), None, r"xs must have shape \(T, inputs\)"),
    ("xs-empty", "lstm", _params(), np.ones((0, 3)), None, r"T, inputs >= 1, got \(0, 3\)"),
    ("xs-wrong-inputs", "lstm", _params(), np.ones((4, 2)), None, r"U_f of lstm .* must have shape \(2, 2\), got \(2, 3\)"),
    ("xs-strings", "lstm", _params(), [["a", "b", "c"]], None, r"xs must hold numbers"),
    ("xs-nan", "lstm", _params(), np.full((4, 3), np.nan), None, r"xs must be finite"),
    ("xs-inf", "lstm", _params(), np.full((4, 3), np.inf), None, r"xs must be finite"),
    ("s0-h-only", "lstm", _params(), XS, np.zeros(2), r"s0 must have shape \(S,\) = \(4,\) for lstm, got \(2,\)"),
    ("s0-2d", "rnn-tanh", _params("rnn-tanh"), XS, np.zeros((2, 1)), r"s0 must have shape \(S,\) = \(2,\)"),
    ("s0-nan", "gru", _params("gru"), XS, np.array([0.0, np.nan]), r"s0 must be finite"),
    ("param-nan", "lstm", _with("lstm", b_o=np.array([0.0, np.nan])), XS, None, r"parameter b_o must be finite"),
    ("param-inf", "gru-torch", _with("gru-torch", W_n=np.full((2, 2), np.inf)), XS, None, r"parameter W_n must be finite"),
    ("param-missing", "lstm", _without("lstm", "U_c"), XS, None, r"missing \['U_c'\]"),
    ("param-unexpected", "rnn-relu", _with("rnn-relu", W_y=np.eye(2)), XS, None, r"unexpected \['W_y'\]"),
    ("param-wrong-shape", "gru", _with("gru", W_h=np.eye(3)), XS, None, r"must have shape \(2, 2\), got \(3, 3\)"),
    ("param-complex", "rnn-tanh", _with("rnn-tanh", b=np.zeros(2) + 0j), XS, None, r"parameter b must hold real numbers"),
    ("params-not-a-dict", "rnn-tanh", [np.eye(2)], XS, None, r"parameters must be a dict"),
    ("cell-unknown", "lstmx", _params(), XS, None, r"unknown cell 'lstmx'; choose one of: rnn-tanh, .*gru-torch"),
    ("cell-not-a-name", 7, _params(), XS, None, r"cell"),
]  # fmt: skip


@pytest.mark.parametrize("name, params, xs, s0, match", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_inputs_raise_gradproof_error(name, params, xs, s0, match: str) -> None:
    with pytest.raises(GradproofError, match=match):
        numeric.unroll(name, params, xs, s0)


def test_gradproof_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        numeric.unroll("lstm", _params(), np.ones(4))


# -- overflow in the forward pass ----------------------------------------------------------------
def test_relu_overflow_names_the_step() -> None:
    # relu RNN, W_h = a I, W_x = 0, b = 1: h_1 = 1, h_t = a h_{t-1} + 1 grows like a^{t-1} and
    # leaves float64 at a step computed here in plain Python floats (which overflow to inf).
    a, n = 1e10, 3
    p = {"W_h": a * np.eye(n), "W_x": np.zeros((n, 1)), "b": np.ones(n)}
    h, step = 0.0, 0
    while math.isfinite(h):
        step += 1
        h = a * h + 1.0
    assert 30 < step < 40
    with pytest.raises(GradproofError, match=rf"forward pass of rnn-relu overflowed at step {step}\b"):
        numeric.unroll("rnn-relu", p, np.zeros((200, 1)))
    # one step fewer is fine, and huge but finite
    states = numeric.unroll("rnn-relu", p, np.zeros((step - 1, 1))).states
    assert np.all(np.isfinite(states)) and states[-1, 0] > 1e300


def test_saturating_cells_do_not_overflow() -> None:
    # tanh/sigmoid saturate instead of overflowing, even with enormous weights
    for name in ("rnn-tanh", "rnn-sigmoid", "lstm", "gru", "gru-torch"):
        p = numeric.init(name, hidden=3, inputs=2, seed=0, scale=1e6)
        with np.errstate(**RAISE):
            states = numeric.unroll(name, p, numeric.random_sequence(50, 2, seed=1)).states
        assert np.all(np.isfinite(states)), name
