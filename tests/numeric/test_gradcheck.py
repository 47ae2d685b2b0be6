"""numeric.gradcheck: correct hand-written backward passes pass, planted wrong ones fail with the
message a user needs (STYLE.md practice 8).

The models are written out here by hand, as a user would: an Elman tanh RNN
h_t = tanh(W h_{t-1} + U x_t + b) (Elman 1990) and an LSTM with stacked gates (i, f, g, o) in
PyTorch's order, c_t = f ⊙ c_{t-1} + i ⊙ g, h_t = o ⊙ tanh(c_t) (Hochreiter & Schmidhuber 1997;
docs/ and docs/math.md §3 for the block Jacobians). Each planted bug is one line changed in the
backward pass; the expected entry, gate block and step are derived from where that line acts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gradproof.numeric.gradcheck import (
    check_gradient,
    check_jacobian,
    check_jvp,
    check_recurrent_backward,
    check_vjp,
)

N, M, T = 4, 3, 6
ROOT = Path(__file__).resolve().parents[2]


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# -- a hand-written numpy RNN ----------------------------------------------------------------------
def rnn_params(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"W": 0.5 * rng.standard_normal((N, N)), "U": rng.standard_normal((N, M)), "b": 0.1 * rng.standard_normal(N)}


def rnn_step(p, h, x):
    return np.tanh(p["W"] @ h + p["U"] @ x + p["b"])


def rnn_step_backward(bug: str | None = None):
    def backward(p, h, x, g):
        h_next = rnn_step(p, h, x)
        dz = g * (1 - h_next**2) if bug != "activation" else g * (1 - h_next)
        gW = np.outer(dz, h) if bug != "transpose" else np.outer(h, dz)
        gb = dz if bug != "factor" else 2 * dz
        g_h = p["W"].T @ dz if bug != "sign" else -(p["W"].T @ dz)
        return g_h, {"W": gW, "U": np.outer(dz, x), "b": gb}

    return backward


def data(seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((T, M)), 0.5 * rng.standard_normal(N)


def failure(fn, *args, **kwargs) -> str:
    with pytest.raises(AssertionError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def test_a_correct_rnn_backward_passes_at_tight_tolerance() -> None:
    xs, h0 = data()
    check_recurrent_backward(rnn_step, rnn_step_backward(), rnn_params(), xs, h0)
    # the complex step is exact to rounding: the check also passes at 1e-12
    check_recurrent_backward(rnn_step, rnn_step_backward(), rnn_params(), xs, h0, rtol=1e-12, atol=1e-14)


def test_transposed_weight_gradient() -> None:
    xs, h0 = data()
    msg = failure(check_recurrent_backward, rnn_step, rnn_step_backward("transpose"), rnn_params(), xs, h0)
    assert msg.startswith("∂loss/∂params['W'] is wrong: first wrong at step 1 of 6")
    assert "likely cause: a transpose" in msg and "yours = " in msg and "reference = " in msg
    assert "relative error" in msg


def test_sign_of_the_state_gradient() -> None:
    xs, h0 = data()
    msg = failure(check_recurrent_backward, rnn_step, rnn_step_backward("sign"), rnn_params(), xs, h0)
    assert msg.startswith("∂loss/∂s0 is wrong: first wrong at step 1 of 6")
    assert "w.r.t. the state s (g_s)" in msg and "likely cause: a sign" in msg


def test_factor_of_two_in_the_bias_gradient() -> None:
    xs, h0 = data()
    msg = failure(check_recurrent_backward, rnn_step, rnn_step_backward("factor"), rnn_params(), xs, h0)
    assert msg.startswith("∂loss/∂params['b'] is wrong")
    assert "likely cause: a factor of 2: yours equals 2 × the reference" in msg


def test_wrong_activation_derivative_names_the_first_parameter() -> None:
    xs, h0 = data()
    msg = failure(check_recurrent_backward, rnn_step, rnn_step_backward("activation"), rnn_params(), xs, h0)
    assert msg.startswith("∂loss/∂params['W'] is wrong: first wrong at step 1 of 6 (steps counted from 1; 6 of 6")
    # the values printed are the entry's: yours uses 1 - h instead of 1 - h²
    assert "differs at entry (" in msg and "out of tolerance" in msg


def test_the_first_wrong_step_comes_from_the_per_step_vjps() -> None:
    # with h0 = 0 the transposed W gradient is correct at step 1 (outer(dz, 0) = 0): first wrong = 2
    xs, _ = data()
    msg = failure(check_recurrent_backward, rnn_step, rnn_step_backward("transpose"), rnn_params(), xs, np.zeros(N))
    assert msg.startswith("∂loss/∂params['W'] is wrong: first wrong at step 2 of 6 (steps counted from 1; 5 of 6")
    assert "step_backward's gradient at step 2 w.r.t. params['W']" in msg


def test_a_backward_that_reads_its_cache_one_step_off() -> None:
    # the user's backward ignores (h, x) and reads their own forward cache, indexed one step early
    p, (xs, h0) = rnn_params(), data()
    hs = [h0]
    for x in xs:
        hs.append(rnn_step(p, hs[-1], x))
    calls = iter(range(T - 1, -1, -1))  # BPTT visits steps T..1

    def backward(p, h, x, g):
        t = max(next(calls) - 1, 0)
        return rnn_step_backward()(p, hs[t], xs[t], g)

    msg = failure(check_recurrent_backward, rnn_step, backward, p, xs, h0)
    assert "first wrong at step 2 of 6" in msg
    assert "likely cause: one step off in time: your step_backward at step 2 equals the derivative at the previous step (1)" in msg


# -- a hand-written numpy LSTM (stacked gates i, f, g, o) ------------------------------------------
def lstm_params(n: int = N, m: int = M, seed: int = 2) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "W": 0.4 * rng.standard_normal((4 * n, n)),
        "U": 0.4 * rng.standard_normal((4 * n, m)),
        "b": 0.1 * rng.standard_normal(4 * n),
    }


def lstm_gates(p, h, x):
    n = h.shape[0]
    z = p["W"] @ h + p["U"] @ x + p["b"]
    return sigmoid(z[:n]), sigmoid(z[n : 2 * n]), np.tanh(z[2 * n : 3 * n]), sigmoid(z[3 * n :])


def lstm_step(p, s, x):
    h, c = s
    i, f, g, o = lstm_gates(p, h, x)
    c_next = f * c + i * g
    return o * np.tanh(c_next), c_next


def lstm_step_backward(bug: str | None = None):
    def backward(p, s, x, grads):
        (h, c), (gh, gc) = s, grads
        i, f, g, o = lstm_gates(p, h, x)
        c_next = f * c + i * g
        tc = np.tanh(c_next)
        dc = gc + gh * o * (1 - tc**2) if bug != "missing term" else gc
        dz = np.concatenate([
            dc * g * i * (1 - i),
            dc * c * f * (1 - f) * (2.0 if bug == "forget factor" else 1.0),
            dc * i * (1 - g**2) if bug != "activation" else dc * i * (1 - g),
            gh * tc * o * (1 - o),
        ])  # fmt: skip
        return (p["W"].T @ dz, dc * f), {"W": np.outer(dz, h), "U": np.outer(dz, x), "b": dz}

    return backward


def lstm_data(seed: int = 3, c0_zero: bool = False):
    rng = np.random.default_rng(seed)
    s0 = (0.5 * rng.standard_normal(N), np.zeros(N) if c0_zero else 0.5 * rng.standard_normal(N))
    return rng.standard_normal((T, M)), s0


def test_a_correct_lstm_backward_passes() -> None:
    xs, s0 = lstm_data()
    check_recurrent_backward(lstm_step, lstm_step_backward(), lstm_params(), xs, s0, rtol=1e-12, atol=1e-14)


def test_lstm_missing_gate_term() -> None:
    # dc lacks gh ⊙ o ⊙ tanh'(c): the gates fed by dc (i, f, g: blocks 0, 1, 2) are wrong, o is not
    xs, s0 = lstm_data()
    msg = failure(check_recurrent_backward, lstm_step, lstm_step_backward("missing term"), lstm_params(), xs, s0)
    assert msg.startswith("∂loss/∂params['W'] is wrong: first wrong at step 1 of 6")
    assert "likely cause: only gate block(s) [0, 1, 2] are wrong" in msg


def test_lstm_wrong_activation_derivative_names_the_gate_block() -> None:
    # tanh'(z_g) written as 1 - g instead of 1 - g²: only the cell-candidate block g (block 2) is wrong
    xs, s0 = lstm_data()
    msg = failure(check_recurrent_backward, lstm_step, lstm_step_backward("activation"), lstm_params(), xs, s0)
    assert "(gate block 2 of 0..3, row " in msg
    assert "likely cause: only gate block(s) [2] are wrong" in msg


def test_lstm_forget_gate_factor_appears_only_once_the_cell_is_nonzero() -> None:
    # the forget-gate term is dc ⊙ c_{t-1} ⊙ f(1-f): with c_0 = 0 step 1 is right, step 2 is the first wrong
    xs, s0 = lstm_data(c0_zero=True)
    msg = failure(check_recurrent_backward, lstm_step, lstm_step_backward("forget factor"), lstm_params(), xs, s0)
    assert msg.startswith("∂loss/∂params['W'] is wrong: first wrong at step 2 of 6")
    assert "(gate block 1 of 0..3, row " in msg and "only gate block(s) [1] are wrong" in msg


# -- whole-sequence BPTT, checked as a VJP and as a gradient -----------------------------------------
def rnn_forward(params, xs, h0):
    hs, h = [], h0
    for x in xs:
        h = rnn_step(params, h, x)
        hs.append(h)
    return np.stack(hs)  # (T, N)


def rnn_vjp(bug: str | None = None):
    def vjp(params, xs, h0, g_hs):
        hs = rnn_forward(params, xs, h0)
        prev = np.vstack([h0, hs[:-1]])
        dparams = {k: np.zeros_like(v) for k, v in params.items()}
        dxs = np.zeros_like(xs)
        carry = np.zeros_like(h0)
        for t in range(len(xs) - 1, -1, -1):
            dz = (g_hs[t] + carry) * (1 - hs[t] ** 2)
            dparams["W"] += np.outer(dz, prev[t])
            dparams["U"] += np.outer(dz, xs[t])
            dparams["b"] += dz
            dxs[t - 1 if bug == "off by one" else t] = params["U"].T @ dz
            carry = params["W"].T @ dz
        return dparams, dxs, carry

    return vjp


def test_whole_sequence_vjp_passes_and_an_off_by_one_input_gradient_is_named() -> None:
    p, (xs, h0) = rnn_params(), data()
    check_vjp(rnn_forward, rnn_vjp(), p, xs, h0)
    check_vjp(rnn_forward, rnn_vjp(), p, xs, h0, full=True)
    msg = failure(check_vjp, rnn_forward, rnn_vjp("off by one"), p, xs, h0)
    assert msg.startswith("VJP of rnn_forward (Jᵀg, random g) w.r.t. argument 'xs' differs at entry (")
    assert "likely cause: one step off in time: your entry for step t is the reference's for step t+1" in msg


def test_check_gradient_on_a_params_dict() -> None:
    p, (xs, h0) = rnn_params(), data()
    w = np.random.default_rng(5).standard_normal((T, N))

    def loss(params):
        return np.sum(w * rnn_forward(params, xs, h0))

    def grad(params, bug=None):
        d = rnn_vjp()(params, xs, h0, w)[0]
        if bug:
            d["W"] = d["W"].T
        return d

    check_gradient(loss, grad, p)
    msg = failure(check_gradient, loss, lambda q: grad(q, bug=True), p)
    assert msg.startswith("gradient of loss w.r.t. params['W'] differs at entry (")
    assert "likely cause: a transpose" in msg


# -- the function-level checks: shapes, several arguments, non-analytic functions --------------------
A = np.array([[1.0, 2.0, 0.5], [-3.0, 4.0, 1.0]])  # (p, k) = (2, 3)


def f_one(x):
    return np.tanh(A @ x)


def jac_one(x):
    return (1 - np.tanh(A @ x) ** 2)[:, None] * A  # (2, 3)


def test_check_jacobian_shape_contract_and_sign() -> None:
    x = np.array([0.3, -0.1, 0.2])
    check_jacobian(f_one, jac_one, x)
    check_jacobian(f_one, jac_one, x, full=True)
    msg = failure(check_jacobian, f_one, lambda x: -jac_one(x), x)
    assert msg.startswith("Jacobian of f_one w.r.t. argument 'x' differs at row ")
    assert "likely cause: a sign" in msg
    msg = failure(check_jacobian, f_one, lambda x: jac_one(x).T, x)
    assert "expected shape (2, 3) (outputs, entries of the argument), got (3, 2)" in msg


def test_check_jacobian_with_two_arguments_takes_a_tuple_of_blocks() -> None:
    def f(x, y):
        return np.sin(x) * y[0] + y[1] ** 2

    def jac(x, y):
        return np.diag(np.cos(x) * y[0]), np.stack([np.sin(x), np.full(3, 2 * y[1])], axis=1)

    x, y = np.array([0.1, 0.2, 0.3]), np.array([1.5, -0.5])
    check_jacobian(f, jac, x, y)
    msg = failure(check_jacobian, f, lambda x, y: (jac(x, y)[0], 2 * jac(x, y)[1]), x, y)
    assert "w.r.t. argument 'y'" in msg and "likely cause: a factor of 2" in msg


def test_a_square_jacobian_transposed() -> None:
    W = np.array([[0.2, -1.0], [0.7, 0.4]])
    msg = failure(check_jacobian, lambda x: np.tanh(W @ x), lambda x: ((1 - np.tanh(W @ x) ** 2)[:, None] * W).T,
                  np.array([0.3, -0.6]))  # fmt: skip
    assert "likely cause: a transpose: yours equals the reference transposed (the error vanishes on Jᵀ)" in msg


def test_non_analytic_functions_fall_back_to_richardson() -> None:
    # |x| and max() do not accept complex input: the Richardson central difference is used, and the
    # default tolerance (from its error estimate) still passes the right derivative and fails 2x
    W = np.array([[0.5, -1.0], [2.0, 0.3]])

    def f(x):
        z = W @ x
        return np.abs(z) + np.maximum(z, 0.0) ** 2

    def jac(x):
        z = W @ x
        return (np.sign(z) + 2 * np.maximum(z, 0.0))[:, None] * W

    x = np.array([0.7, 0.2])
    check_jacobian(f, jac, x)
    msg = failure(check_jacobian, f, lambda x: 2 * jac(x), x)
    assert "likely cause: a factor of 2" in msg


def test_check_jvp_and_nested_tuple_arguments() -> None:
    def f(state, x):
        h, c = state
        return np.tanh(h * x[0]) + c * x[1]

    def jvp(state, x, dstate, dx):
        (h, c), (dh, dc) = state, dstate
        return (1 - np.tanh(h * x[0]) ** 2) * (dh * x[0] + h * dx[0]) + dc * x[1] + c * dx[1]

    state, x = (np.array([0.1, 0.5]), np.array([-0.3, 0.2])), np.array([0.8, -1.2])
    check_jvp(f, jvp, state, x)
    msg = failure(check_jvp, f, lambda s, x, ds, dx: jvp(s, x, ds, dx) - 2 * ds[1] * x[1], state, x)
    assert msg.startswith("JVP of f along a random tangent of state[1] differs at output entry")
    assert "likely cause: a sign" in msg


# -- torch code, tensors in and out -----------------------------------------------------------------
def torch_params() -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in lstm_params().items()}


def torch_lstm_step(p, s, x):
    h, c = s
    n = h.shape[0]
    z = p["W"] @ h + p["U"] @ x + p["b"]
    i, f, g, o = torch.sigmoid(z[:n]), torch.sigmoid(z[n : 2 * n]), torch.tanh(z[2 * n : 3 * n]), torch.sigmoid(z[3 * n :])
    c_next = f * c + i * g
    return o * torch.tanh(c_next), c_next


def torch_lstm_backward(bug: str | None = None):
    def backward(p, s, x, grads):
        (h, c), (gh, gc) = s, grads
        assert isinstance(h, torch.Tensor) and isinstance(gh, torch.Tensor)  # no conversion by the user
        n = h.shape[0]
        z = p["W"] @ h + p["U"] @ x + p["b"]
        i, f, g, o = torch.sigmoid(z[:n]), torch.sigmoid(z[n : 2 * n]), torch.tanh(z[2 * n : 3 * n]), torch.sigmoid(z[3 * n :])
        tc = torch.tanh(f * c + i * g)
        dc = gc + gh * o * (1 - tc**2) if bug != "missing term" else gc
        dz = torch.cat([dc * g * i * (1 - i), dc * c * f * (1 - f), dc * i * (1 - g**2), gh * tc * o * (1 - o)])
        if bug == "sign":
            dz = torch.cat([dz[:n], dz[n : 2 * n], dz[2 * n : 3 * n], -dz[3 * n :]])
        return (p["W"].T @ dz, dc * f), {"W": torch.outer(dz, h), "U": torch.outer(dz, x), "b": dz}

    return backward


def torch_data():
    xs, (h0, c0) = lstm_data()
    return torch.from_numpy(xs), (torch.from_numpy(h0), torch.from_numpy(c0))


def test_torch_lstm_backward_passes_and_fails_like_numpy() -> None:
    xs, s0 = torch_data()
    check_recurrent_backward(torch_lstm_step, torch_lstm_backward(), torch_params(), xs, s0, rtol=1e-12, atol=1e-14)
    msg = failure(check_recurrent_backward, torch_lstm_step, torch_lstm_backward("missing term"), torch_params(), xs, s0)
    assert msg.startswith("∂loss/∂params['W'] is wrong: first wrong at step 1 of 6")
    assert "only gate block(s) [0, 1, 2] are wrong" in msg
    msg = failure(check_recurrent_backward, torch_lstm_step, torch_lstm_backward("sign"), torch_params(), xs, s0)
    assert "(gate block 3 of 0..3, row " in msg and "likely cause: only gate block(s) [3] are wrong" in msg


def test_torch_functions_for_every_check() -> None:
    W = torch.tensor([[0.3, -1.2], [0.8, 0.5]], dtype=torch.float64)
    x = torch.tensor([0.4, -0.7], dtype=torch.float64)

    def f(x):
        return torch.tanh(W @ x)

    def jac(x):
        return (1 - torch.tanh(W @ x) ** 2)[:, None] * W

    # W is a real tensor closed over, so W @ (complex x) fails in torch: Richardson is used
    check_jacobian(f, jac, x)
    check_jacobian(f, jac, x, full=True)
    check_vjp(f, lambda x, g: W.T @ ((1 - torch.tanh(W @ x) ** 2) * g), x)
    check_jvp(f, lambda x, v: (1 - torch.tanh(W @ x) ** 2) * (W @ v), x)
    assert "likely cause: a transpose" in failure(check_jacobian, f, lambda x: jac(x).T, x)

    params = {"W": W, "b": torch.tensor([0.1, -0.2], dtype=torch.float64)}

    def loss(p):
        return torch.sum(torch.tanh(p["W"] @ x + p["b"]) ** 2)

    def grad(p, factor=1.0):
        h = torch.tanh(p["W"] @ x + p["b"])
        dz = 2 * h * (1 - h**2)
        return {"W": torch.outer(dz, x), "b": factor * dz}

    check_gradient(loss, grad, params)
    msg = failure(check_gradient, loss, lambda p: grad(p, factor=-1.0), params)
    assert msg.startswith("gradient of loss w.r.t. params['b'] differs at entry (") and "likely cause: a sign" in msg


# -- what pytest shows, and the README's example -----------------------------------------------------
def test_pytest_shows_the_users_line_not_gradproofs_frames(tmp_path) -> None:
    (tmp_path / "test_user.py").write_text(
        "import numpy as np\n"
        "from gradproof.numeric.testing import check_jacobian\n\n"
        "def test_mine():\n"
        "    check_jacobian(np.sin, lambda x: np.diag(-np.cos(x)), np.array([0.1, 0.2]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user.py"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "check_jacobian(np.sin, lambda x: np.diag(-np.cos(x)), np.array([0.1, 0.2]))" in out.stdout
    assert "likely cause: a sign" in out.stdout
    assert "gradcheck.py" not in out.stdout


@pytest.mark.slow  # a pytest subprocess importing torch, SymPy and Hypothesis
def test_the_readme_example_runs_and_passes() -> None:
    example = ROOT / "examples" / "test_my_rnn_backward.py"
    readme = (ROOT / "README.md").read_text()
    assert example.read_text().strip() in readme  # the README shows the same file
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(example)],
        capture_output=True, text=True, cwd=example.parent, timeout=300, check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert " passed" in out.stdout


# -- the pytest plugin (registered by the pytest11 entry point) --------------------------------------
PLUGIN_TEST = '''
import numpy as np
from gradproof.numeric import init, random_sequence

def test_fixtures(gradproof_seed, gradproof_rng, gradproof_params, gradproof_sequence):
    print("SEED", gradproof_seed)
    assert gradproof_rng.standard_normal() == np.random.default_rng(gradproof_seed).standard_normal()
    p = gradproof_params("lstm", hidden=3, inputs=2, spectral_norm=0.5)
    q = init("lstm", hidden=3, inputs=2, seed=gradproof_seed, spectral_norm=0.5)
    assert p.keys() == q.keys() and all(np.array_equal(p[k], q[k]) for k in p)
    t = gradproof_params("rnn-tanh", hidden=2, inputs=2, torch=True)
    assert type(t["W_h"]).__name__ == "Tensor" and str(t["W_h"].dtype) == "torch.float64"
    assert np.array_equal(gradproof_sequence(5, 2), random_sequence(5, 2, seed=gradproof_seed + 1))

def test_fails(gradproof_seed):
    assert False
'''


@pytest.mark.slow  # a pytest subprocess per seed
@pytest.mark.parametrize("seed", [None, 7])
def test_the_plugin_seeds_its_fixtures(tmp_path, seed) -> None:
    (tmp_path / "test_plugin_user.py").write_text(PLUGIN_TEST)
    option = [] if seed is None else [f"--gradproof-seed={seed}"]
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-s", "-p", "no:cacheprovider", "test_plugin_user.py", *option],
        capture_output=True, text=True, cwd=tmp_path, timeout=300, check=False,
    )
    expected = 0 if seed is None else seed
    assert "1 failed, 1 passed" in out.stdout, out.stdout + out.stderr
    assert f"SEED {expected}" in out.stdout
    assert f"gradproof fixtures used seed {expected}: rerun with --gradproof-seed {expected}" in out.stdout
    assert ("gradproof: --gradproof-seed=7" in out.stdout) == (seed == 7)


def test_a_large_parameter_is_located_row_by_row() -> None:
    # W: (80, 20) = 1600 entries > ENTRY_BUDGET: each row is checked along one direction, the
    # entries computed only in the wrong rows; the wrong tanh' touches block g only (rows 40..59)
    n, m = 20, 3
    p = lstm_params(n, m, seed=4)
    rng = np.random.default_rng(6)
    xs, s0 = rng.standard_normal((3, m)), (0.5 * rng.standard_normal(n), 0.5 * rng.standard_normal(n))
    check_recurrent_backward(lstm_step, lstm_step_backward(), p, xs, s0)
    msg = failure(check_recurrent_backward, lstm_step, lstm_step_backward("activation"), p, xs, s0)
    assert msg.startswith("∂loss/∂params['W'] is wrong: first wrong at step 1 of 3")
    assert "(gate block 2 of 0..3, row " in msg
    assert "[1600 entries: each of the 80 rows was checked along one random direction, 20 of 80 rows wrong;" in msg
    assert "likely cause: only gate block(s) [2] are wrong" in msg


def test_jacobian_rows_and_columns_are_named_by_output_step_and_argument_entry() -> None:
    # f(W) = all states of a 3-step linear recurrence h_t = W h_{t-1}, h_0 = e: output (3, 2), W (2, 2)
    h0 = np.array([1.0, 0.5])

    def f(W):
        hs, h = [], h0
        for _ in range(3):
            h = W @ h
            hs.append(h)
        return np.stack(hs)

    def jac(W, bug=False):
        J = np.zeros((3, 2, 2, 2))  # ∂h_t[i]/∂W[a, b], by the product rule
        dh = np.zeros((2, 2, 2))
        h = h0
        for t in range(3):
            new = np.einsum("ij,jab->iab", W, dh)
            for a in range(2):
                new[a, a, :] += h
            dh, h = new, W @ h
            J[t] = dh
        if bug:
            J[2, 1, 0, 1] += 1.0
        return J

    W = np.array([[0.9, -0.2], [0.4, 0.7]])
    check_jacobian(f, jac, W)
    msg = failure(check_jacobian, f, lambda W: jac(W, bug=True), W)
    assert msg.startswith("Jacobian of f w.r.t. argument 'W' differs at row 5, column 1; row 5 is output entry "
                          "(2, 1); column 1 is entry (0, 1) of the argument: ")


# -- the numpy RNN's planted bugs, in torch -----------------------------------------------------------
def torch_rnn_step(p, h, x):
    return torch.tanh(p["W"] @ h + p["U"] @ x + p["b"])


def torch_rnn_step_backward(bug: str | None = None):
    def backward(p, h, x, g):
        h_next = torch_rnn_step(p, h, x)
        dz = g * (1 - h_next**2) if bug != "activation" else g * (1 - h_next)
        gW = torch.outer(dz, h) if bug != "transpose" else torch.outer(h, dz)
        gb = dz if bug != "factor" else 2 * dz
        g_h = p["W"].T @ dz if bug != "sign" else -(p["W"].T @ dz)
        return g_h, {"W": gW, "U": torch.outer(dz, x), "b": gb}

    return backward


@pytest.mark.parametrize(
    ("bug", "start", "cause"),
    [
        ("transpose", "∂loss/∂params['W'] is wrong: first wrong at step 1 of 6", "likely cause: a transpose"),
        ("sign", "∂loss/∂s0 is wrong: first wrong at step 1 of 6", "likely cause: a sign"),
        ("factor", "∂loss/∂params['b'] is wrong: first wrong at step 1 of 6", "likely cause: a factor of 2"),
        ("activation", "∂loss/∂params['W'] is wrong: first wrong at step 1 of 6", "out of tolerance"),
    ],
)
def test_torch_rnn_planted_bugs_give_the_numpy_messages(bug: str, start: str, cause: str) -> None:
    p = {k: torch.from_numpy(v) for k, v in rnn_params().items()}
    xs, h0 = (torch.from_numpy(a) for a in data())
    check_recurrent_backward(torch_rnn_step, torch_rnn_step_backward(), p, xs, h0, rtol=1e-12, atol=1e-14)
    msg = failure(check_recurrent_backward, torch_rnn_step, torch_rnn_step_backward(bug), p, xs, h0)
    assert msg.startswith(start) and cause in msg
    # the same place and values (to rounding: torch's and numpy's matmul round differently) as numpy's
    numpy_msg = failure(check_recurrent_backward, rnn_step, rnn_step_backward(bug), rnn_params(), *data())
    assert msg.split(": yours = ")[0] == numpy_msg.split(": yours = ")[0]

    def values(m: str) -> tuple[float, float]:
        tail = m.split(": yours = ")[1]
        return float(tail.split(",")[0]), float(tail.split("reference = ")[1].split(",")[0])

    np.testing.assert_allclose(values(msg), values(numpy_msg), rtol=1e-12)
