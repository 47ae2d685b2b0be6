"""derive.define_cell: the parser, its errors, and the shipped cells proved against brute force."""

from __future__ import annotations

import pytest
import sympy as sp

from gradproof.derive import (
    GradproofError,
    SHIPPED_CELL_NAMES,
    cell,
    define_cell,
    input_jacobian,
    parameter_gradients,
    pascanu_bound,
    step_jacobian,
    bptt_product,
)
from gradproof.derive.equality import difference_is_zero

LSTM_TEXT = """
f = sigmoid(W_f @ h + U_f @ x + b_f)
i = sigmoid(W_i @ h + U_i @ x + b_i)
o = sigmoid(W_o @ h + U_o @ x + b_o)
g = tanh(W_c @ h + U_c @ x + b_c)
c = f * c + i * g
h = o * tanh(c)
"""


def _brute(c, n, m, which):
    e = c.explicit(n, m)
    d = step_jacobian(c) if which == "step" else input_jacobian(c)
    variable = e.state if which == "step" else e.x
    return d.explicit(n, m), e.next_state.jacobian(variable)


# n = 1 for every shipped cell; n = 2 for the one-state cells (the two-state LSTMs at n = 2 take
# minutes in difference_is_zero on a shared machine, see the slow test below).
CASES = [
    pytest.param(name, 1, marks=pytest.mark.slow) if name == "lstm-peephole" else (name, 1)
    for name in SHIPPED_CELL_NAMES
] + [
    pytest.param("mgu", 2, marks=pytest.mark.slow), ("indrnn", 2), ("indrnn", 3)
]


@pytest.mark.parametrize("name,n", CASES)
@pytest.mark.parametrize("which", ["step", "input"])
def test_shipped_cells_equal_brute_force(name, n, which):
    structured, brute = _brute(cell(name), n, 2, which)
    assert structured.shape == brute.shape
    assert difference_is_zero(structured, brute)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lstm-coupled", "lstm-peephole"])
def test_two_state_shipped_cells_equal_brute_force_n2(name):
    structured, brute = _brute(cell(name), 2, 1, "step")
    assert difference_is_zero(structured, brute)


def test_lstm_from_equations_matches_builtin_explicit_cell():
    mine = define_cell("my-lstm", ("h", "c"), LSTM_TEXT)
    assert mine.parameter_names == ("W_f", "U_f", "b_f", "W_i", "U_i", "b_i", "W_o", "U_o", "b_o",
                                    "W_c", "U_c", "b_c")  # fmt: skip
    a, b = mine.explicit(1, 1), cell("lstm").explicit(1, 1)
    assert a.next_state.shape == (2, 1)
    assert difference_is_zero(a.next_state, b.next_state)
    s, _ = _brute(mine, 1, 1, "step")
    assert difference_is_zero(s, step_jacobian("lstm").explicit(1, 1))


def test_shapes_inferred_from_use():
    c = cell("indrnn")
    assert c.parameter_shapes(3, 2) == {"u": (3,), "W_x": (3, 2), "b": (3,)}
    p = cell("lstm-peephole").parameter_shapes(2, 5)
    assert p["W_f"] == (2, 2) and p["U_o"] == (2, 5) and p["p_o"] == (2,)
    assert cell("lstm-peephole").state_size(4) == 8


def test_state_name_means_previous_until_reassigned_and_scaling():
    c = define_cell("leaky", "h", "h = 0.5 * h + 0.5 * tanh(W @ h + U @ x + b)\nh = h / 2")
    e = c.explicit(1, 1)
    h0, x0 = e.state[0], e.x[0]
    W, U, b = (e.parameters[k][0] for k in ("W", "U", "b"))
    want = (h0 / 2 + sp.tanh(W * h0 + U * x0 + b) / 2) / 2
    assert sp.simplify(e.next_state[0] - want) == 0
    s, brute = _brute(c, 2, 1, "step")
    assert difference_is_zero(s, brute)


def test_indrnn_step_jacobian_is_diagonal():
    d = step_jacobian("indrnn")
    n = d.explicit(2, 1)
    assert n[0, 1] == 0 and n[1, 0] == 0


def test_downstream_derive_functions_accept_defined_cells():
    c = cell("mgu")
    g = parameter_gradients(c)
    assert set(g.gradients) == set(c.parameter_names)
    assert bptt_product(c) is not None
    assert pascanu_bound(c) is not None


@pytest.mark.parametrize(
    "text,where,what",
    [
        ("h = foo(W @ h)", "line 1, column 5", "unknown function 'foo'"),
        ("f = sigmoid(W @ h)\nh = f * W", "line 2", "shape clash"),
        ("h = tanh(W @ h)\nc = h", "", "state 'q' is never assigned"),
        ("h = tanh(W @ h + z)\nz = h", "line 1", "'z' is used before it is assigned"),
        ("h = __import__('os')", "line 1", "unknown function '__import__'"),
        ("h = tanh(W.T @ h)", "line 1", "attribute access"),
        ("u = tanh(W @ h)\nh = tanh(V @ h)", "", "u is assigned but never used"),
        ("h = W(h)", "line 1", "unknown function 'W'"),
        ("h = tanh(x * h)", "line 1", "shape clash"),
        ("h = h / h", "line 1", "division by a vector"),
        ("h = tanh(W @ h) + 2", "line 1", "a number may only scale"),
        ("h = tanh(W @ h) if x else h", "line 1", "IfExp is not allowed"),
        ("h = tanh(h) +", "line 1", "not a valid assignment"),
        ("x = tanh(W @ h)", "line 1", "cannot assign to 'x'"),
        ("h = tanh(W @ h + W @ x)", "line 1", "shape clash"),
    ],
)
def test_bad_equations_name_the_line(text, where, what):
    state = ("h", "q") if "never assigned" in what else ("h",)
    with pytest.raises(GradproofError) as err:
        define_cell("bad", state, text)
    msg = str(err.value)
    assert where in msg and what in msg, msg
    assert "\n" not in msg
