"""Printing in the lecture's notation (STYLE.md 3), and the doctests of every derive module.

Notation targets: MATH.md's conventions (D(v) = diag(v), ⊙ Hadamard, W_h, h^{(t-1)}), and the
lecture's σ'(z) through the gate value for gates (MATH.md §3: f(1-f)).
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest
import sympy as sp

from gradproof import derive
from gradproof.derive import cell, input_jacobian, latex, parameter_gradients, step_jacobian
from gradproof.derive.algebra import Diag, JacobianSymbol
from gradproof.derive.cells import symbols

from .conftest import ALL_CELLS, GATED_CELLS

#: the recurrent weight matrices each cell's step Jacobian must name (CONTRACT.md keys)
RECURRENT_WEIGHTS = {
    "rnn-tanh": ["W_{h}"],
    "rnn-sigmoid": ["W_{h}"],
    "rnn-relu": ["W_{h}"],
    "rnn-hard_sigmoid": ["W_{h}"],
    "lstm": ["W_{f}", "W_{i}", "W_{o}", "W_{c}"],
    "gru": ["W_{u}", "W_{r}", "W_{h}"],
    "gru-torch": ["W_{r}", "W_{z}", "W_{n}"],
}

#: what SymPy's raw printers would leak into the lecture's formulas
RAW_FORMS = ["DiagMatrix", r"\circ", "HadamardProduct", "Diag(", "ActPrime", "OneMinus", r"\mathbb{I}"]


@pytest.mark.parametrize("name", ALL_CELLS)
def test_step_jacobian_latex_uses_the_lecture_notation(name):
    text = step_jacobian(name).latex()
    assert r"\operatorname{diag}" in text
    assert "h^{(t-1)}" in text
    for w in RECURRENT_WEIGHTS[name]:
        assert w in text, (w, text)
    if name in GATED_CELLS:
        assert r"\odot" in text
    for raw in RAW_FORMS:
        assert raw not in text, (raw, text)


@pytest.mark.parametrize("name", ALL_CELLS)
def test_input_jacobian_latex_uses_the_lecture_notation(name):
    text = input_jacobian(name).latex()
    assert r"\operatorname{diag}" in text and "x^{(t)}" in text
    for raw in RAW_FORMS:
        assert raw not in text, (raw, text)


def test_vanilla_rnn_prints_as_in_the_lecture():
    # MATH.md §1: ∂h_t/∂h_{t-1} = D(σ'(z_t)) W_h, written diag(tanh'(z^{(t)})) W_h
    text = step_jacobian("rnn-tanh").latex()
    lhs, rhs = text.split(" = ")
    assert lhs == r"\frac{\partial h^{(t)}}{\partial h^{(t-1)}}"
    assert rhs == r"\operatorname{diag}\left(\tanh'\left(z^{(t)}\right)\right) W_{h}"
    assert r"\sigma'\left(z^{(t)}\right)" in step_jacobian("rnn-sigmoid").latex()


def test_gates_print_their_slope_through_their_value():
    # MATH.md §3: D(c_{t-1} ⊙ f(1-f)) W_f, D(o ⊙ (1 - tanh² c_t)); §4: D(1 - u) first for the GRU
    lstm = step_jacobian("lstm").latex()
    assert r"c^{(t-1)} \odot f^{(t)} \odot \left(1 - f^{(t)}\right)" in lstm
    assert r"1 - \tanh^{2}\left(c^{(t)}\right)" in lstm
    gru = step_jacobian("gru").latex()
    assert gru.split(" = ")[1].startswith(r"\operatorname{diag}\left(1 - u^{(t)}\right) + ")
    torch_form = step_jacobian("gru-torch").latex()
    assert torch_form.split(" = ")[1].startswith(r"\operatorname{diag}\left(z^{(t)}\right) + ")


@pytest.mark.parametrize("name", ALL_CELLS)
@pytest.mark.parametrize("which", ["step", "input"])
def test_printer_hooks(name, which):
    d = (step_jacobian if which == "step" else input_jacobian)(name)
    assert d._repr_latex_() == f"$\\displaystyle {d.latex()}$"
    assert sp.latex(d) == d.latex()  # sympy.latex finds Derivation._latex (printer hook)
    assert latex(d.equation) == d.latex()


def test_lstm_hidden_block_references_the_cell_block():
    # MATH.md §3: ∂h_t/∂h_{t-1} = D(tanh c ⊙ o(1-o)) W_o + D(o ⊙ (1 - tanh²c)) ∂c_t/∂h_{t-1}
    d = step_jacobian("lstm")
    dc_dh = JacobianSymbol(symbols.c, symbols.h_prev)
    hh = d.blocks[(symbols.h, symbols.h_prev)]
    assert dc_dh in hh.atoms(JacobianSymbol)
    assert dict(d.references) == {dc_dh: d.blocks[(symbols.c, symbols.h_prev)]}
    assert r"\frac{\partial c^{(t)}}{\partial h^{(t-1)}}" in latex(hh)
    # the block matrix is [[∂h/∂h, ∂h/∂c], [∂c/∂h, ∂c/∂c]]: state [h; c], h first
    blocks = d.result.blocks
    assert blocks[1, 1] == Diag(next(lhs for lhs, _ in cell("lstm").definitions if lhs.name == "f^{(t)}"))
    assert blocks[0, 0] == hh


@pytest.mark.parametrize("name", ["rnn-tanh", "lstm", "gru", "gru-torch"])
def test_parameter_gradients_print_as_bptt_sums(name):
    grads = parameter_gradients(name)
    text = grads.latex()
    assert sp.latex(grads) == text
    assert grads._repr_latex_().startswith("$") and grads._repr_latex_().endswith("$")
    for g in grads.gradients.values():
        one = g.latex()
        assert r"\sum_{t=1}^{T}" in one and r"\lambda^{(t)}" in one
        assert sp.latex(g) == one and g._repr_latex_() == f"$\\displaystyle {one}$"
        for raw in RAW_FORMS:
            assert raw not in one, (raw, one)


def test_latex_of_plain_nodes():
    v = sp.MatrixSymbol("v^{(t)}", derive.algebra.N, 1)
    assert latex(Diag(v)) == r"\operatorname{diag}\left(v^{(t)}\right)"
    assert latex(sp.HadamardProduct(v, v)) == r"v^{(t)} \odot v^{(t)}"
    assert latex(derive.algebra.OneMinus(v)) == "1 - v^{(t)}"


# ----------------------------------------------------------------------------------------------
# Doctests of every module of derive/
# ----------------------------------------------------------------------------------------------

MODULES = ["gradproof.derive"] + [f"gradproof.derive.{m.name}" for m in pkgutil.iter_modules(derive.__path__)]


@pytest.mark.parametrize("module_name", MODULES)
def test_doctests(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, verbose=False, report=True)
    assert result.failed == 0, f"{module_name}: {result.failed} of {result.attempted} doctests failed"
