"""Functions with number parameters inside define_cell equations: leaky_relu(z, 0.2), elu(z, 1.5) …"""

from __future__ import annotations

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from gradproof.derive import GradproofError, activation, define_cell, step_jacobian, input_jacobian
from gradproof.derive.activations import X
from gradproof.derive.algebra import Act
from gradproof.derive.equality import difference_is_zero

#: (function call as written, σ(u) written out independently of derive.activations)
CASES = [
    ("leaky_relu(W @ h + U @ x + b, 0.2)",
     lambda u: sp.Piecewise((u, u > 0), (sp.Rational(1, 5) * u, True))),
    ("elu(W @ h + U @ x + b, 1.5)",
     lambda u: sp.Piecewise((u, u > 0), (sp.Rational(3, 2) * (sp.exp(u) - 1), True))),
    ("celu(W @ h + U @ x + b, 0.5)",
     lambda u: sp.Piecewise((u, u > 0), (sp.Rational(1, 2) * (sp.exp(2 * u) - 1), True))),
    ("hardtanh(W @ h + U @ x + b, -2, 2)",
     lambda u: sp.Piecewise((-2, u <= -2), (2, u >= 2), (u, True))),
    ("softplus(W @ h + U @ x + b, 2)",
     lambda u: sp.Piecewise((u, 2 * u > 20), (sp.log(1 + sp.exp(2 * u)) / 2, True))),
    ("softplus(W @ h + U @ x + b, 2, 5)",
     lambda u: sp.Piecewise((u, 2 * u > 5), (sp.log(1 + sp.exp(2 * u)) / 2, True))),
]  # fmt: skip


def _cell(call: str):
    return define_cell("p", ("h",), f"h = {call}")


@pytest.mark.parametrize("call,sigma", CASES, ids=[c for c, _ in CASES])
def test_parameterised_function_means_what_the_activation_parser_means(call, sigma):
    c = _cell(call)
    (_, rhs), = c.definitions
    assert isinstance(rhs, Act)
    fn, params = call.split("(", 1)[0], call.split(", ", 1)[1].rstrip(")")
    assert rhs.activation == activation(f"{fn}(x, {params})")
    # the same function as written out by hand, on a few points either side of every kink
    for point in (-3, -2, sp.Rational(-1, 3), 0, sp.Rational(1, 7), 2, sp.Rational(5, 2), 10, 11):
        assert sp.simplify(rhs.activation.expr.subs(X, point) - sigma(sp.S(point))) == 0


@pytest.mark.parametrize("call,sigma", CASES, ids=[c for c, _ in CASES])
@pytest.mark.parametrize("n", [1, 2])
def test_parameterised_cell_equals_brute_force(call, sigma, n):
    c = _cell(call)
    e = c.explicit(n, 1)
    # the explicit next state against σ written out by hand
    W, U, b = e.parameters["W"], e.parameters["U"], e.parameters["b"]
    z = W * e.state + U * e.x + b
    assert e.next_state == z.applyfunc(lambda u: activation(rhs_spec(call)).expr.subs(X, u))
    for d, var in ((step_jacobian(c), e.state), (input_jacobian(c), e.x)):
        structured = d.explicit(n, 1)
        brute = e.next_state.jacobian(var)
        assert difference_is_zero(structured, brute)
    # and by hand: diag(σ'(z)) W, σ' from the independent σ
    u = sp.Symbol("u", real=True)
    prime = sp.diff(sigma(u), u)
    by_hand = sp.diag(*[prime.subs(u, zi) for zi in z]) * W
    assert difference_is_zero(step_jacobian(c).explicit(n, 1), by_hand)


def rhs_spec(call: str) -> str:
    fn, params = call.split("(", 1)[0], call.split(", ", 1)[1].rstrip(")")
    return f"{fn}(x, {params})"


def test_default_parameters_keep_the_plain_name():
    c = define_cell("d", ("h",), "h = leaky_relu(W @ h + b, 0.01)")
    (_, rhs), = c.definitions
    assert rhs.activation.name == "leaky_relu"
    assert c.program[0][2][1] == "leaky_relu(x, 0.01)"


def test_parameters_nested_and_negative():
    c = define_cell("n", ("h",), "g = hardtanh(W @ h + b, -0.5, 1.5)\nh = elu(g, 2) * g")
    specs = [node[2][1] for node in c.program]
    assert specs[0] == "hardtanh(x, -0.5, 1.5)"
    assert c.definitions[1][1].args[0].activation == activation("elu(x, 2)")


BAD = [
    ("h = leaky_relu(W @ h + b, a)", "line 1, column 27", "number literal"),
    ("h = leaky_relu(W @ h + b, 0.1 * 2)", "line 1, column 27", "number literal"),
    ("h = leaky_relu(W @ h + b, b)", "line 1, column 27", "number literal"),
    ("g = tanh(W @ h)\nh = elu(g, 1, 2)", "line 2, column 5", "at most 1 number parameter"),
    ("h = tanh(W @ h, 2)", "line 1, column 5", "exactly one argument"),
    ("h = celu(W @ h + b, 0)", "line 1, column 5", "alpha"),
    ("h = softplus(W @ h + b, 0)", "line 1, column 5", "beta"),
    ("h = leaky_relu(W @ h + b, slope=0.2)", "line 1, column 5", "keyword"),
    ("h = leaky_relu(W @ h + b, 1e999)", "line 1, column 27", "finite"),
    ("h = leaky_relu(W @ h + b, __import__('os'))", "line 1, column 27", "number literal"),
    ("h = leaky_relu(W @ h + b, True)", "line 1, column 27", "number literal"),
]


@pytest.mark.parametrize("text,where,what", BAD)
def test_bad_parameters_name_line_and_column(text, where, what):
    with pytest.raises(GradproofError) as info:
        define_cell("bad", ("h",), text)
    message = str(info.value)
    assert where in message and what in message
    assert "\n" not in message


@settings(max_examples=25, deadline=None)
@given(
    slope=st.fractions(min_value=-2, max_value=2, max_denominator=50),
)
def test_leaky_relu_slope_property(slope):
    """For any literal slope, the Jacobian at a negative pre-activation is slope · W (n = 1)."""
    text = f"h = leaky_relu(W @ h + b, {float(slope)!r})"
    c = define_cell("l", ("h",), text)
    e = c.explicit(1, 1)
    J = step_jacobian(c).explicit(1, 1)
    w, b, h = e.parameters["W"][0, 0], e.parameters["b"][0], e.state[0]
    at = {w: 1, b: -5, h: 1}  # z = -4 < 0
    assert J.subs(at)[0, 0] == sp.Rational(repr(float(slope)))
