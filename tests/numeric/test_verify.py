"""numeric.verify: the gradient checker is library code, and it must catch planted wrong derivatives.

STYLE.md practice 8 (after HIPS/autograd's ``check_grads`` tests): a perturbed formula, built
only for the test, must fail the check with a message that names the quantity, the block and the
step. The planted formulas are wrong in ways docs/math.md warns about:

* LSTM ∂c_t/∂c_{t-1} = D(f_t) (docs/math.md §3) replaced by D(f_t ⊙ f_t);
* RNN D(σ'(z_t)) W_h (docs/math.md §1) replaced by the commuted W_h D(σ'(z_t)) (the lecture's
  factoring, "D_t and W_h do not commute") and by D(σ'(z_t)) W_hᵀ (the transpose SymPy's
  ``MatrixSymbol.diff`` returns, docs/math.md top).

The expected errors are computed from the *reference's* Jacobians (torch autograd), not from the
code under test: with the reference block b_t = D(f_t), the planted block is D(f_t²), so the error
is |f_t - f_t²| = f_t(1 - f_t).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import sympy as sp

from gradproof import numeric
from gradproof.derive.algebra import Diag, hadamard
from gradproof.derive.cells import CELL_NAMES, cell
from gradproof.derive.errors import GradproofError
from gradproof.derive.jacobians import Derivation, step_jacobian
from gradproof.numeric.references import get_reference
from gradproof.numeric.verify import GATES, Check, Verification, compare, gate_of, state_blocks

RTOL, ATOL = 1e-10, 1e-13  # numeric.references.TOLERANCES["torch"], the 1e-10


# -- planted wrong derivatives -------------------------------------------------------------------
def lstm_step_with_f_squared() -> Derivation:
    """The LSTM step Jacobian with the ∂c/∂c block D(f) replaced by D(f ⊙ f)."""
    d = step_jacobian("lstm")
    blocks = d.result.blocks
    dcdc = blocks[1, 1]
    assert isinstance(dcdc, Diag)  # D(f), docs/math.md §3
    f = dcdc.vector
    grid = [[blocks[i, j] for j in range(2)] for i in range(2)]
    grid[1][1] = Diag(hadamard([f, f]))
    return dataclasses.replace(d, result=sp.BlockMatrix(grid))


def rnn_step_commuted(name: str = "rnn-tanh") -> Derivation:
    """W_h D(σ'(z)) instead of D(σ'(z)) W_h."""
    d = step_jacobian(name)
    D, W = d.result.args
    assert isinstance(D, Diag) and isinstance(W, sp.MatrixSymbol) and W.name == "W_h"
    return dataclasses.replace(d, result=sp.MatMul(W, D))


def rnn_step_transposed(name: str = "rnn-tanh") -> Derivation:
    """D(σ'(z)) W_hᵀ instead of D(σ'(z)) W_h."""
    d = step_jacobian(name)
    D, W = d.result.args
    return dataclasses.replace(d, result=sp.MatMul(D, W.T))


def lstm_problem(n: int = 3, m: int = 2, T: int = 8, seed: int = 0):  # noqa: N803
    p = numeric.init("lstm", hidden=n, inputs=m, seed=seed)
    xs = numeric.random_sequence(T, m, seed=seed + 1)
    s0 = np.random.default_rng(seed + 2).uniform(-0.9, 0.9, 2 * n)
    return p, xs, s0


def test_the_planted_lstm_formula_is_really_different() -> None:
    # guard: the perturbation must change the numbers, or the tests below prove nothing
    p, xs, s0 = lstm_problem()
    good = numeric.step_jacobians("lstm", p, xs, s0)
    bad = numeric.step_jacobians("lstm", p, xs, s0, step=lstm_step_with_f_squared())
    n = 3
    np.testing.assert_array_equal(bad[:, :n, :], good[:, :n, :])  # h rows untouched
    np.testing.assert_array_equal(bad[:, n:, :n], good[:, n:, :n])
    f = np.einsum("tii->ti", good[:, n:, n:])
    np.testing.assert_allclose(np.einsum("tii->ti", bad[:, n:, n:]), f * f, rtol=1e-15, atol=0)
    # the planted derivation is not cached in place of the real one
    np.testing.assert_array_equal(numeric.step_jacobians("lstm", p, xs, s0), good)


@pytest.mark.parametrize("reference", ["torch", "torch.nn", "complex-step"])
def test_verify_catches_lstm_forget_gate_squared(reference: str) -> None:
    n, T = 3, 8
    p, xs, s0 = lstm_problem(n=n, T=T)
    report = numeric.verify("lstm", p, xs, s0, reference=reference, step=lstm_step_with_f_squared())
    assert not report.ok
    failed = [c for c in report.checks if not c.ok]
    # only the planted block fails; the other blocks, the input Jacobians and the gradients pass
    assert [(c.quantity, c.block) for c in failed] == [("step Jacobian", "dc/dc")]
    check = failed[0]
    assert report.worst is check
    assert isinstance(check.worst_step, int) and 1 <= check.worst_step <= T

    # expected numbers from the reference's Jacobians: block b_t = D(f_t), planted a_t = D(f_t²)
    ref = get_reference(reference).step_jacobians("lstm", p, xs, s0)
    f = np.einsum("tii->ti", ref[:, n:, n:])
    err = np.max(f * (1 - f), axis=1)  # max |f - f²| per step
    scale = np.max(f, axis=1)
    assert check.max_abs == pytest.approx(float(err.max()), rel=1e-12)
    assert check.max_rel == pytest.approx(float(np.max(err / scale)), rel=1e-12)
    assert check.worst_step == int(np.argmax(err / (ATOL + RTOL * scale))) + 1

    text = check.describe()
    assert "step Jacobian, block dc/dc" in text
    assert f"at step {check.worst_step}" in text and "FAILED" in text
    table = report.table()
    row = next(line for line in table.splitlines() if "dc/dc" in line)
    assert "step Jacobian" in row and row.rstrip().endswith("FAIL") and str(check.worst_step) in row


@pytest.mark.parametrize("name", ["rnn-tanh", "rnn-sigmoid", "rnn-relu"])
def test_verify_catches_commuted_rnn_factors(name: str) -> None:
    # docs/math.md §1: the lecture's W_h^{i-j} ∏ D(σ'(z_t)) factoring is wrong; one step of it is
    # W_h D(σ'(z_t)), which differs from D(σ'(z_t)) W_h unless the diagonal is constant.
    p = numeric.init(name, hidden=4, inputs=2, seed=1)
    xs = numeric.random_sequence(6, 2, seed=2)
    s0 = np.random.default_rng(3).uniform(0.1, 0.9, 4)
    report = numeric.verify(name, p, xs, s0, step=rnn_step_commuted(name))
    failed = [c for c in report.checks if not c.ok]
    assert [(c.quantity, c.block) for c in failed] == [("step Jacobian", "")]
    assert failed[0].worst_step in range(1, 7)
    assert failed[0].max_rel > 1e-3
    assert "step Jacobian:" in failed[0].describe() and "at step" in failed[0].describe()


def test_verify_catches_transposed_recurrent_matrix() -> None:
    p = numeric.init("rnn-tanh", hidden=4, inputs=2, seed=1)
    assert np.max(np.abs(p["W_h"] - p["W_h"].T)) > 0.1  # not symmetric, so Wᵀ is really wrong
    xs = numeric.random_sequence(6, 2, seed=2)
    report = numeric.verify("rnn-tanh", p, xs, step=rnn_step_transposed())
    failed = [c for c in report.checks if not c.ok]
    assert [(c.quantity, c.block) for c in failed] == [("step Jacobian", "")]


def test_a_formula_with_an_unknown_node_is_a_clear_error() -> None:
    # A node numeric cannot evaluate must fail loudly (GradproofError), never give a wrong "ok".
    import dataclasses

    import sympy as sp

    from gradproof.derive import step_jacobian

    d = step_jacobian("rnn-tanh")
    odd = dataclasses.replace(d, result=sp.MatMul(d.result, sp.Inverse(d.result.args[1])))
    p = numeric.init("rnn-tanh", hidden=4, inputs=2, seed=1)
    with pytest.raises(GradproofError, match="cannot evaluate"):
        numeric.verify("rnn-tanh", p, np.ones((3, 2)), step=odd)


class _WrongGradientReference:
    """The torch reference with dJ/dW_f scaled by 1 + 1e-6: a planted wrong parameter gradient."""

    name = "torch"

    def __init__(self) -> None:
        self._ref = get_reference("torch")

    def __getattr__(self, attr: str):
        return getattr(self._ref, attr)

    def parameter_gradients(self, *args, **kwargs):
        g = self._ref.parameter_gradients(*args, **kwargs)
        return dict(g, W_f=g["W_f"] * (1 + 1e-6))


def test_verify_catches_a_wrong_parameter_gradient_and_names_the_gate() -> None:
    p, xs, s0 = lstm_problem()
    report = numeric.verify("lstm", p, xs, s0, reference=_WrongGradientReference())
    failed = [c for c in report.checks if not c.ok]
    assert [(c.quantity, c.block, c.worst_step) for c in failed] == [
        ("dJ/dW_f", "forget gate f", None)
    ]
    assert failed[0].max_rel == pytest.approx(1e-6 / (1 + 1e-6), rel=1e-6)
    assert "dJ/dW_f, block forget gate f" in failed[0].describe()


@pytest.mark.parametrize("factor", [1 + 1e-8, 1 - 1e-8, -1.0])
def test_compare_catches_a_scaled_parameter_gradient(factor: float) -> None:
    p, xs, s0 = lstm_problem()
    w = np.random.default_rng(5).standard_normal((xs.shape[0], 3))
    ours = numeric.parameter_gradients("lstm", p, xs, s0, loss_weights=w)
    ref = get_reference("torch").parameter_gradients("lstm", p, xs, s0, loss_weights=w)
    good = compare(ours["U_o"], ref["U_o"], quantity="dJ/dU_o", rtol=RTOL, atol=ATOL, per_step=False)
    assert good.ok and good.worst_step is None
    bad = compare(
        ours["U_o"] * factor, ref["U_o"], quantity="dJ/dU_o", block="output gate o",
        rtol=RTOL, atol=ATOL, per_step=False,
    )  # fmt: skip
    assert not bad.ok
    assert bad.max_rel == pytest.approx(abs(factor - 1), rel=1e-4)
    assert "dJ/dU_o, block output gate o" in bad.describe() and "FAILED" in bad.describe()


# -- compare on hand-made numbers -----------------------------------------------------------------
def test_compare_reports_exact_errors_and_the_worst_step() -> None:
    b = np.ones((4, 2, 2))
    b[2] *= 100.0
    a = b.copy()
    a[1, 0, 1] += 1e-9  # relative 1e-9 at step 2
    a[2, 1, 1] += 5e-9  # relative 5e-11 at step 3: bigger absolute, smaller relative error
    check = compare(a, b, quantity="step Jacobian", block="dh/dh", rtol=RTOL, atol=ATOL)
    assert check.max_abs == pytest.approx(5e-9, rel=1e-6)
    assert check.max_rel == pytest.approx(1e-9, rel=1e-6)
    assert check.worst_step == 2
    assert not check.ok
    loose = compare(a, b, quantity="q", rtol=1e-8, atol=0.0)
    assert loose.ok and loose.worst_step == 2


def test_compare_on_zero_reference_and_non_finite_values() -> None:
    z = np.zeros((3, 2, 2))
    same = compare(z, z, quantity="q", rtol=RTOL, atol=ATOL)
    assert same.ok and same.max_abs == 0.0 and same.max_rel == 0.0
    a = z.copy()
    a[1, 0, 0] = 1e-20  # below atol: still ok, but infinitely wrong relative to zero
    tiny = compare(a, z, quantity="q", rtol=RTOL, atol=ATOL)
    assert tiny.ok and tiny.max_rel == np.inf
    a[2, 1, 1] = np.nan
    assert not compare(a, z, quantity="q", rtol=RTOL, atol=ATOL).ok
    inf = z.copy()
    inf[0, 0, 0] = np.inf
    assert not compare(inf, z, quantity="q", rtol=RTOL, atol=ATOL).ok


# -- the Verification object -----------------------------------------------------------------------
@pytest.mark.parametrize("name", CELL_NAMES)
def test_verification_lists_every_block_and_parameter(name: str) -> None:
    c = cell(name)
    p = numeric.init(c, hidden=2, inputs=3, seed=0)
    report = numeric.verify(c, p, numeric.random_sequence(4, 3, seed=1), reference="complex-step")
    assert isinstance(report, Verification) and report.ok
    got = [(ch.quantity, ch.block) for ch in report.checks]
    if name == "lstm":
        jac = [("step Jacobian", b) for b in ("dh/dh", "dh/dc", "dc/dh", "dc/dc")]
        jac += [("input Jacobian", "dh/dx"), ("input Jacobian", "dc/dx")]
    else:
        jac = [("step Jacobian", ""), ("input Jacobian", "")]
    assert got[: len(jac)] == jac
    assert [q for q, _ in got[len(jac) :]] == [f"dJ/d{k}" for k in c.parameter_names]
    for ch in report.checks[len(jac) :]:
        assert ch.worst_step is None
    for ch in report.checks[: len(jac)]:
        assert ch.worst_step in range(1, 5)


@pytest.mark.parametrize("name, parameter, gate", [
    ("lstm", "W_f", "forget gate f"), ("lstm", "U_i", "input gate i"), ("lstm", "b_o", "output gate o"),
    ("lstm", "W_c", "candidate c~"), ("gru", "W_u", "update gate u"), ("gru", "b_r", "reset gate r"),
    ("gru", "U_h", "candidate h~"), ("gru-torch", "W_z", "update gate z"),
    ("gru-torch", "b_in", "candidate n (input bias)"), ("gru-torch", "b_hn", "candidate n (recurrent bias)"),
    ("rnn-tanh", "W_h", "recurrent matrix"), ("rnn-relu", "W_x", "input matrix"), ("rnn-sigmoid", "b", "bias"),
])  # fmt: skip
def test_gate_names(name: str, parameter: str, gate: str) -> None:
    # the gate each parameter belongs to, from the cell definitions in CONTRACT.md / docs/math.md §3, §4
    assert gate_of(cell(name), parameter) == gate
    assert set(GATES) == {"lstm", "gru", "gru-torch"}


def test_state_blocks() -> None:
    assert state_blocks(cell("lstm"), 3) == [("h", slice(0, 3)), ("c", slice(3, 6))]
    assert state_blocks(cell("gru-torch"), 4) == [("h", slice(0, 4))]


def test_table_json_and_tolerance_overrides() -> None:
    p, xs, s0 = lstm_problem(T=4)
    planted = lstm_step_with_f_squared()
    report = numeric.verify("lstm", p, xs, s0, reference="complex-step", step=planted)
    data = json.loads(json.dumps(report.to_json()))
    assert data["ok"] is False and data["cell"] == "lstm" and data["reference"] == "complex-step"
    assert (data["hidden"], data["inputs"], data["steps"]) == (3, 2, 4)
    bad = [c for c in data["checks"] if not c["ok"]]
    assert [(c["quantity"], c["block"]) for c in bad] == [("step Jacobian", "dc/dc")]
    assert str(report) == report.table()
    assert report.table().splitlines()[0] == "lstm vs complex-step (hidden 3, inputs 2, T 4)"
    # a loose tolerance accepts even the planted formula: |f - f²| ≤ f ≤ 10 · max f
    loose = numeric.verify("lstm", p, xs, s0, reference="complex-step", step=planted, rtol=10.0)
    assert loose.ok and {c.rtol for c in loose.checks} == {10.0}


def test_default_loss_weights_are_seeded() -> None:
    p, xs, s0 = lstm_problem(T=3)
    a = numeric.verify("lstm", p, xs, s0, reference="complex-step").to_json()
    b = numeric.verify("lstm", p, xs, s0, reference="complex-step").to_json()
    assert a == b


def test_verify_rejects_bad_reference_and_bad_inputs() -> None:
    p, xs, s0 = lstm_problem(T=3)
    with pytest.raises(GradproofError, match="unknown reference 'autograd'"):
        numeric.verify("lstm", p, xs, s0, reference="autograd")
    with pytest.raises(GradproofError, match=r"s0 must have shape \(S,\) = \(6,\)"):
        numeric.verify("lstm", p, xs, s0[:3])
    with pytest.raises(GradproofError, match="torch.nn"):
        numeric.verify("gru", numeric.init("gru", hidden=2, inputs=2, seed=0), xs, reference="torch.nn")


def test_check_is_frozen() -> None:
    ch = Check("q", "", 0.0, 0.0, 1, RTOL, ATOL, True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ch.ok = False  # type: ignore[misc]


# -- finite differences across a kink (issue 16 item 7) ------------------------------------------
def relu_on_the_kink(n: int = 4, m: int = 2, T: int = 6):  # noqa: N803
    """rnn-relu with z_1[0] = 1e-9: every finite difference of step 1 straddles relu's kink."""
    p = dict(numeric.init("rnn-relu", hidden=n, inputs=m, seed=1))
    xs = numeric.random_sequence(T, m, seed=2)
    s0 = np.random.default_rng(3).uniform(0.1, 0.9, n)
    z1 = p["W_h"] @ s0 + p["W_x"] @ xs[0] + p["b"]
    b = p["b"].copy()
    b[0] += 1e-9 - z1[0]
    p["b"] = b
    return p, xs, s0


def test_finite_differences_across_a_kink_are_not_judged_not_failed() -> None:
    p, xs, s0 = relu_on_the_kink()
    z1 = p["W_h"] @ s0 + p["W_x"] @ xs[0] + p["b"]
    assert abs(z1[0]) < 2e-9  # really on the kink: a step of 1e-6 crosses it
    exact = numeric.verify("rnn-relu", p, xs, s0, reference="complex-step")
    assert exact.ok and all(c.status == "ok" for c in exact.checks)
    report = numeric.verify("rnn-relu", p, xs, s0, reference="finite-diff")
    step = report.checks[0]
    # the central difference averages relu's two slopes: an error of |W_h[0, j]|/2 at step 1, less
    # the 1e-9 the kink sits off centre (1e-9 / (2 · 1e-6) = 5e-4)
    expected = np.max(np.abs(p["W_h"][0])) / 2 - 5e-4
    assert step.worst_step == 1 and step.max_abs == pytest.approx(expected, rel=1e-6)
    assert step.ok and step.status == "not judged" and 1 <= step.not_judged <= 4
    assert report.ok  # not FAIL, so the CLI exits 0
    table = report.table()
    assert "rtol 1e-05, atol 1e-07" in table and "not judged" in table and "FAIL" not in table
    assert report.to_json()["checks"][0]["status"] == "not judged"


def test_a_wrong_formula_still_fails_on_the_kink() -> None:
    # the reference's uncertainty widens the tolerance only by what it cannot tell apart
    p, xs, s0 = relu_on_the_kink()
    report = numeric.verify("rnn-relu", p, xs, s0, reference="finite-diff", step=rnn_step_commuted("rnn-relu"))
    assert not report.ok and report.checks[0].status == "FAIL"


def test_compare_with_uncertainty() -> None:
    b = np.array([[1.0, 2.0]])
    a = b + np.array([[0.0, 0.5]])
    plain = compare(a, b, quantity="q", rtol=1e-5, atol=1e-7)
    assert not plain.ok and plain.status == "FAIL"
    unsure = compare(a, b, quantity="q", rtol=1e-5, atol=1e-7, uncertainty=np.array([[0.0, 0.6]]))
    assert unsure.ok and unsure.status == "not judged" and (unsure.not_judged, unsure.entries) == (1, 2)
    too_far = compare(a, b, quantity="q", rtol=1e-5, atol=1e-7, uncertainty=np.array([[0.0, 0.4]]))
    assert not too_far.ok


@pytest.mark.slow
def test_the_reported_false_alarm_is_gone(capsys) -> None:
    from gradproof.reports.cli import main

    code = main(["verify", "--reference", "finite-diff", "--cell", "rnn-relu", "--hidden", "32", "--steps", "200"])
    out, _ = capsys.readouterr()
    assert code == 0, out
    assert "FAIL" not in out and "not judged" in out and "rtol 1e-05, atol 1e-07" in out
