"""The theorem objects and the lecture's imprecisions (docs/math.md §1, §3, §4)."""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

from gradproof import derive
from gradproof.derive.algebra import ActPrime, Diag, OneMinus, latex
from gradproof.derive.cells import symbols
from gradproof.derive.corrections import factoring_witness, transient_growth_norms
from gradproof.derive.theorem import MaxAbs, Norm, SigmaMax, direct_path, norm_bound


@pytest.mark.parametrize(
    ("name", "gamma"),
    [("rnn-tanh", sp.S.One), ("rnn-sigmoid", sp.Rational(1, 4)), ("rnn-relu", sp.S.One),
     ("rnn-hard_sigmoid", sp.Rational(1, 6))],
)
def test_rnn_theorem_uses_the_derived_gamma(name, gamma):
    # docs/math.md §1: η = γ σ_max(W_h), vanishing when σ_max < 1/γ, exploding needs σ_max > 1/γ.
    thm = derive.pascanu_bound(name)
    assert thm.gamma == gamma
    assert thm.threshold == 1 / gamma
    W = sp.MatrixSymbol("W_h", symbols.h.shape[0], symbols.h.shape[0])
    assert sp.simplify(thm.eta - gamma * SigmaMax(W)) == 0
    relations = [s.equation for s in thm.statements]
    vanishing = [r for r in relations if isinstance(r, sp.Implies)]
    assert vanishing and vanishing[0].args[0] == sp.Lt(SigmaMax(W), 1 / gamma)
    assert sp.Gt(SigmaMax(W), 1 / gamma) in relations
    # the step Jacobian the proof starts from is the derived one
    assert relations[0] == derive.step_jacobian(name).equation
    text = thm.latex()
    assert r"\sigma_{\max}\left(W_{h}\right)" in text and r"\eta^{i - j}" in text


def test_rnn_bound_from_structure_is_maxabs_times_sigma_max():
    # norm_bound(diag(σ'(z)) W_h) = max|σ'(z)| σ_max(W_h): submultiplicativity, docs/math.md §1.
    z = symbols.vector("z")
    W = sp.MatrixSymbol("W_h", symbols.h.shape[0], symbols.h.shape[0])
    expected = MaxAbs(ActPrime("tanh", z)) * SigmaMax(W)
    assert derive.pascanu_bound("rnn-tanh").bound == expected
    assert norm_bound(sp.MatAdd(Diag(z), sp.MatMul(-1, Diag(z), W))) == MaxAbs(z) + MaxAbs(z) * SigmaMax(W)


def test_gated_direct_paths_are_the_gate_diagonals():
    # docs/math.md §4: the direct path is D(1 - u) (lecture GRU) and D(z) (PyTorch's GRU).
    u, z = symbols.vector("u"), symbols.vector("z")
    assert direct_path(derive.step_jacobian("gru").result) == Diag(OneMinus(u))
    assert direct_path(derive.step_jacobian("gru-torch").result) == Diag(z)
    assert direct_path(derive.step_jacobian("rnn-tanh").result) is None
    # docs/math.md §3: the LSTM's cell path is ∂c/∂c = D(f), and the report states it is a truncation
    thm = derive.pascanu_bound("lstm")
    f = symbols.vector("f")
    assert thm.direct[0].equation.rhs == Diag(f)
    assert "truncation" in thm.direct[-1].text
    assert thm.gamma is None and thm.eta is None
    assert isinstance(thm.statements[1].equation, sp.Le)
    assert isinstance(thm.statements[1].equation.lhs, Norm)


def test_linear_case_states_spectral_radius():
    thm = derive.pascanu_bound("rnn-tanh")
    text = " ".join(latex(s.equation) for s in thm.linear_case)
    assert r"\rho\left(W_{h}\right) < 1" in text and r"\rho\left(W_{h}\right) \leq \sigma_{\max}" in text


def test_transient_growth_numbers_match_math_md():
    # docs/math.md §1: W = [[0.9, 5], [0, 0.9]] has ρ = 0.9 but ‖W^k‖₂ = 5.16, 9.07, 16.4, 19.4, 13.5,
    # 1.43, 0.015 for k = 1, 2, 5, 10, 20, 50, 100 (quoted to 3 significant digits).
    W = sp.Matrix([[sp.Rational(9, 10), 5], [0, sp.Rational(9, 10)]])
    quoted = {1: 5.16, 2: 9.07, 5: 16.4, 10: 19.4, 20: 13.5, 50: 1.43, 100: 0.015}
    exact = transient_growth_norms(W, tuple(quoted))
    for k, q in quoted.items():
        assert float(exact[k]) == pytest.approx(q, rel=5e-3 if k < 100 else 2e-2)
    # and numpy agrees with the exact values
    Wn = np.array(W, dtype=float)
    for k in quoted:
        assert float(exact[k]) == pytest.approx(np.linalg.norm(np.linalg.matrix_power(Wn, k), 2), rel=1e-12)
    imp = {i.key: i for i in derive.imprecisions()}
    assert imp["eigenvalue-vs-singular-value"].witness["spectral_radius"] == sp.Rational(9, 10)


def test_sigmoid_threshold_is_four_not_one():
    # docs/math.md §1, imprecision 2: for the sigmoid γ = 1/4, so the threshold is 4; 1 belongs to tanh.
    imp = {i.key: i for i in derive.imprecisions()}["sigmoid-threshold"]
    assert imp.witness["threshold_sigmoid"] == 4
    assert imp.witness["threshold_tanh"] == 1
    assert r"< 4" in imp.latex()


def test_factoring_witness_differs():
    # docs/math.md §1, imprecision 3: D_2 W D_1 W ≠ W² D_2 D_1 in general (D and W do not commute).
    w = factoring_witness()
    assert w["ordered"] == w["D2"] * w["W"] * w["D1"] * w["W"]
    assert w["lecture"] == w["W"] ** 2 * w["D2"] * w["D1"]
    assert w["ordered"] != w["lecture"]
    # the norm bound survives: ‖D_2 W D_1 W‖ ≤ ‖D_2‖‖W‖‖D_1‖‖W‖
    norm = lambda A: np.linalg.norm(np.array(A, dtype=float), 2)  # noqa: E731
    assert norm(w["ordered"]) <= norm(w["D2"]) * norm(w["W"]) ** 2 * norm(w["D1"]) + 1e-15


def test_theorem_prints_through_printer_hooks():
    thm = derive.pascanu_bound("rnn-sigmoid")
    assert sp.latex(thm) == thm.latex()
    assert thm._repr_latex_().startswith("$")
    for imp in derive.imprecisions():
        assert sp.latex(imp) == imp.latex()


def test_direct_path_of_an_ungated_skip_and_of_two_gated_terms():
    # Found by the random-cell property of tests/numeric/test_cell_regime.py: a cell h = h + g has
    # the identity as its direct path (no gate vector); two gated copies of h sum to no single diag.
    skip = derive.define_cell("skip", ("h",), "g = sigmoid(W @ h + U @ x + b)\nh = h + g")
    th = derive.pascanu_bound(skip)
    assert direct_path(derive.step_jacobian(skip).result) == sp.Identity(derive.algebra.N)
    assert [st.equation.rhs for st in th.direct] == [sp.Identity(derive.algebra.N), sp.Integer(1)]
    two = derive.define_cell("two", ("h",), "u = sigmoid(W @ h + U @ x + b)\nv = sigmoid(V @ h + P @ x + c)\nh = u * h + v * h")
    statements = derive.pascanu_bound(two).direct
    assert len(statements) == 1 and isinstance(statements[0].equation.rhs, sp.MatAdd)
    assert all(isinstance(t, Diag) for t in statements[0].equation.rhs.args)
