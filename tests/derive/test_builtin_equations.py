"""The built-in cells are parsed from their equation text (derive.cells.BUILTIN_EQUATIONS).

The reference below is the hand-written SymPy construction the library used before the built-ins
were written as equations; it is kept here only as an independent check that the parsed
definitions are *structurally identical* (same SymPy tree, same symbols, same order).
"""

from __future__ import annotations

import pytest
import sympy as sp

from gradproof.derive import cell, define_cell, step_jacobian
from gradproof.derive.algebra import M, N, Act, OneMinus
from gradproof.derive.cells import BUILTIN_EQUATIONS, GRU, LSTM, RNN, symbols


def _W(name):
    return sp.MatrixSymbol(name, N, N)


def _U(name):
    return sp.MatrixSymbol(name, N, M)


def _b(name):
    return sp.MatrixSymbol(name, N, 1)


def _affine(W, U, b):
    return sp.MatAdd(sp.MatMul(_W(W), symbols.h_prev), sp.MatMul(_U(U), symbols.x), _b(b))


def hand_written(c):
    """The previous hand-written definitions (independent of the parser)."""
    h_prev, c_prev, x = symbols.h_prev, symbols.c_prev, symbols.x
    v = symbols.vector
    if isinstance(c, RNN):
        z = v("z")
        return (
            (z, sp.MatAdd(sp.MatMul(_W("W_h"), h_prev), sp.MatMul(_U("W_x"), x), _b("b"))),
            (symbols.h, Act(c.activation, z)),
        )
    if isinstance(c, LSTM):
        f, i, o, g = v("f"), v("i"), v("o"), sp.MatrixSymbol(r"\tilde{c}^{(t)}", N, 1)
        return (
            (f, Act("sigmoid", _affine("W_f", "U_f", "b_f"))),
            (i, Act("sigmoid", _affine("W_i", "U_i", "b_i"))),
            (o, Act("sigmoid", _affine("W_o", "U_o", "b_o"))),
            (g, Act("tanh", _affine("W_c", "U_c", "b_c"))),
            (symbols.c, sp.MatAdd(sp.HadamardProduct(f, c_prev), sp.HadamardProduct(i, g))),
            (symbols.h, sp.HadamardProduct(o, Act("tanh", symbols.c))),
        )
    if isinstance(c, GRU) and c.reset == "before":
        u, r, ht = v("u"), v("r"), sp.MatrixSymbol(r"\tilde{h}^{(t)}", N, 1)
        candidate = sp.MatAdd(
            sp.MatMul(_W("W_h"), sp.HadamardProduct(r, h_prev)), sp.MatMul(_U("U_h"), x), _b("b_h")
        )
        return (
            (u, Act("sigmoid", _affine("W_u", "U_u", "b_u"))),
            (r, Act("sigmoid", _affine("W_r", "U_r", "b_r"))),
            (ht, Act("tanh", candidate)),
            (symbols.h, sp.MatAdd(sp.HadamardProduct(OneMinus(u), h_prev), sp.HadamardProduct(u, ht))),
        )
    r, z, mm, nn = v("r"), v("z"), v("m"), v("n")
    return (
        (r, Act("sigmoid", _affine("W_r", "U_r", "b_r"))),
        (z, Act("sigmoid", _affine("W_z", "U_z", "b_z"))),
        (mm, sp.MatAdd(sp.MatMul(_W("W_n"), h_prev), _b("b_hn"))),
        (nn, Act("tanh", sp.MatAdd(sp.MatMul(_U("U_n"), x), _b("b_in"), sp.HadamardProduct(r, mm)))),
        (symbols.h, sp.MatAdd(sp.HadamardProduct(OneMinus(z), nn), sp.HadamardProduct(z, h_prev))),
    )


NAMES = ["rnn-tanh", "rnn-sigmoid", "rnn-relu", "rnn-hard_sigmoid", "rnn[x*sigmoid(x)]",
         "rnn-leaky_relu", "lstm", "gru", "gru-torch"]  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_parsed_definitions_are_structurally_identical(name):
    c = cell(name)
    parsed, reference = c.definitions, hand_written(c)
    assert len(parsed) == len(reference)
    for (lhs, rhs), (lhs0, rhs0) in zip(parsed, reference):
        assert lhs == lhs0
        assert rhs == rhs0  # SymPy structural equality: the same tree
        assert sp.srepr(rhs) == sp.srepr(rhs0)


@pytest.mark.parametrize("name", NAMES)
def test_parameters_and_state_unchanged(name):
    c = cell(name)
    found = {s.name for _, rhs in hand_written(c) for s in rhs.atoms(sp.MatrixSymbol)}
    assert set(c.parameter_names) <= found
    assert list(c.parameter_symbols()) == list(c.parameter_names)
    two = isinstance(c, LSTM)
    assert c.state_next == ((symbols.h, symbols.c) if two else (symbols.h,))
    assert c.state_previous == ((symbols.h_prev, symbols.c_prev) if two else (symbols.h_prev,))


def test_builtin_text_is_the_define_cell_language():
    """The same text through the public define_cell gives the same Jacobian (labels aside)."""
    state, text = BUILTIN_EQUATIONS["lstm"]
    defined = define_cell("lstm-from-text", state, text)
    e1, e2 = cell("lstm").explicit(1, 1), defined.explicit(1, 1)
    assert e1.next_state == e2.next_state
    j = step_jacobian(cell("gru")).explicit(1, 1) - step_jacobian(
        define_cell("g", *BUILTIN_EQUATIONS["gru"])).explicit(1, 1)
    assert sp.simplify(j) == sp.zeros(1, 1)


def test_every_builtin_has_text():
    assert set(BUILTIN_EQUATIONS) == {"rnn", "lstm", "gru", "gru-torch"}
    for state, text in BUILTIN_EQUATIONS.values():
        assert "=" in text and state[0] == "h"
