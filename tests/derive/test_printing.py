"""Printing in the lecture's notation (STYLE.md 3), and the doctests of every derive module.

Notation targets: docs/math.md's conventions (D(v) = diag(v), ⊙ Hadamard, W_h, h^{(t-1)}), and the
lecture's σ'(z) through the gate value for gates (docs/math.md §3: f(1-f)).
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
    # docs/math.md §1: ∂h_t/∂h_{t-1} = D(σ'(z_t)) W_h, written diag(tanh'(z^{(t)})) W_h
    text = step_jacobian("rnn-tanh").latex()
    lhs, rhs = text.split(" = ")
    assert lhs == r"\frac{\partial h^{(t)}}{\partial h^{(t-1)}}"
    assert rhs == r"\operatorname{diag}\left(\tanh'\left(z^{(t)}\right)\right) W_{h}"
    assert r"\sigma'\left(z^{(t)}\right)" in step_jacobian("rnn-sigmoid").latex()


def test_gates_print_their_slope_through_their_value():
    # docs/math.md §3: D(c_{t-1} ⊙ f(1-f)) W_f, D(o ⊙ (1 - tanh² c_t)); §4: D(1 - u) first for the GRU
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
    assert d._repr_latex_() == f"$\\displaystyle {d.latex_steps()}$"
    assert r"\text{so}\quad " + d.latex().replace(" = ", " &= ", 1) in d.latex_steps()
    assert sp.latex(d) == d.latex()  # sympy.latex finds Derivation._latex (printer hook)
    assert latex(d.equation) == d.latex()


def test_lstm_hidden_block_references_the_cell_block():
    # docs/math.md §3: ∂h_t/∂h_{t-1} = D(tanh c ⊙ o(1-o)) W_o + D(o ⊙ (1 - tanh²c)) ∂c_t/∂h_{t-1}
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


# ----------------------------------------------------------------------------------------------
# Precedence: every printed form parsed back and evaluated, against the structured object
# ----------------------------------------------------------------------------------------------
#
# A small reader of the notation (written from docs/math.md's conventions, not from the printers):
# sums of terms, a term is a matrix product (juxtaposition, ``*`` or ``⋅``) of Hadamard products
# (``\odot``/``⊙``) of atoms; ``1``, a symbol, ``diag(...)``, ``σ(...)``/``σ'(...)``, ``(...)``,
# ``[...]``, each optionally squared. A misplaced parenthesis — ``o ⊙ 1 - tanh² c`` read as
# ``(o ⊙ 1) - tanh² c`` — evaluates to a different matrix, so the comparison fails.

import numpy as np  # noqa: E402

from gradproof.derive.activations import X, activation  # noqa: E402
from gradproof.derive.algebra import GradproofLatexPrinter, text  # noqa: E402

#: how the lecture writes each activation (latex, text) -> activation name
FUNCTIONS = {
    r"\tanh": "tanh", "tanh": "tanh", r"\sigma": "sigmoid", "σ": "sigmoid",
    r"\operatorname{relu}": "relu", "relu": "relu",
    r"\operatorname{hardsigmoid}": "hard_sigmoid", "hard_sigmoid": "hard_sigmoid",
}  # fmt: skip
PUNCT = [
    (r"\operatorname{diag}", "diag"), ("diag", "diag"), (r"\left(", "("), (r"\right)", ")"),
    (r"\left[", "["), (r"\right]", "]"), ("(", "("), (")", ")"), ("[", "["), ("]", "]"),
    (r"\odot", "⊙"), ("⊙", "⊙"), (r"\circ", "⊙"), ("∘", "⊙"), ("+", "+"), ("-", "-"),
    ("^{2}", "²"), ("²", "²"), ("'", "'"), ("*", "*"), ("⋅", "*"), ("1", "1"),
    (r"\begin{matrix}", "begin"), (r"\end{matrix}", "end"), ("&", "&"), (r"\\", "row"),
    ("|", "&"), ("\n", "row"),
]  # fmt: skip


def _tokens(s: str, names: dict[str, object]) -> list[tuple[str, object]]:
    words = sorted(
        [(k, ("sym", k)) for k in names]
        + [(k, ("fn", v)) for k, v in FUNCTIONS.items()]
        + [(k, (v, None)) for k, v in PUNCT],
        key=lambda p: -len(p[0]),
    )
    out, i = [], 0
    while i < len(s):
        if s[i] == " ":
            i += 1
            continue
        for word, tok in words:
            if s.startswith(word, i):
                out.append(tok)
                i += len(word)
                break
        else:
            raise AssertionError(f"cannot read {s[i:i + 30]!r} in {s!r}")
    return out


class _Reader:
    def __init__(self, toks, env):
        self.toks, self.i, self.env = toks, 0, env

    def peek(self):
        return self.toks[self.i][0] if self.i < len(self.toks) else None

    def take(self, kind):
        assert self.peek() == kind, (kind, self.toks[self.i :])
        self.i += 1
        return self.toks[self.i - 1]

    def expr(self):
        sign = -1 if self.peek() == "-" else 1
        if sign < 0:
            self.take("-")
        value = sign * self.term()
        while self.peek() in ("+", "-"):
            op = self.take(self.peek())[0]
            value = value + self.term() if op == "+" else value - self.term()
        return value

    def term(self):
        value = self.hadamard()
        while self.peek() not in (None, "+", "-", ")", "]", "&", "row", "end"):
            if self.peek() == "*":
                self.take("*")
            value = value @ self.hadamard()
        return value

    def hadamard(self):
        value = self.atom()
        while self.peek() == "⊙":
            self.take("⊙")
            value = value * self.atom()
        return value

    def group(self):
        close = {"(": ")", "[": "]"}[self.peek()]
        self.take(self.peek())
        if self.peek() == "begin":
            self.take("begin")
            value = self.matrix("end")
            self.take(close)
            return value
        first = self.expr()
        if self.peek() in ("&", "row"):
            value = self.matrix(close, first)
            return value
        self.take(close)
        return first

    def matrix(self, close, first=None):
        rows, row = [], [first if first is not None else self.expr()]
        while self.peek() != close:
            kind = self.take(self.peek())[0]
            if kind == "row":
                rows.append(row)
                row = []
            row.append(self.expr())
        self.take(close)
        rows.append(row)
        return np.block(rows)

    def atom(self):
        kind = self.peek()
        if kind == "1":
            self.take("1")
            value = 1.0
        elif kind == "sym":
            value = self.env[self.take("sym")[1]]
        elif kind == "diag":
            self.take("diag")
            value = np.diagflat(self.group())
        elif kind == "fn":
            f = activation(self.take("fn")[1])
            prime = self.peek() == "'"
            if prime:
                self.take("'")
            power = self.peek() == "²"
            if power:
                self.take("²")
            g = sp.lambdify(X, f.derivative if prime else f.expr, "numpy")
            value = np.vectorize(lambda v: float(g(v)))(self.group())
            value = value**2 if power else value
        else:
            value = self.group()
        if self.peek() == "²":
            self.take("²")
            value = value**2
        return value


def _read(printed: str, env: dict[str, object]) -> np.ndarray:
    body = printed.strip().removeprefix("$").removesuffix("$").removeprefix(r"\displaystyle ")
    if body.startswith("Matrix(["):  # SymPy's str of a block matrix: Matrix([[a, b], [c, d]])
        rows = body.removeprefix("Matrix([").removesuffix("])").strip().strip("[]").split("],\n[")
        return np.block([[_read(cell.strip(), env) for cell in row.split(", ")] for row in rows])
    reader = _Reader(_tokens(body, env), env)
    value = reader.expr()
    assert reader.i == len(reader.toks), (printed, reader.toks[reader.i :])
    return np.asarray(value, dtype=float)


def _environments(d, hidden=2, inputs=3, seed=0):
    """Random values for every symbol of ``d``, keyed by every way a printer writes them."""
    rng = np.random.default_rng(seed)
    sizes = {derive.algebra.N: hidden, derive.algebra.M: inputs}
    exprs = [d.result, *d.blocks.values(), *(s.equation.rhs for s in d.steps)]
    atoms = set().union(*(e.atoms(sp.MatrixSymbol, JacobianSymbol) for e in exprs))
    numeric, symbolic = {}, {}
    for a in atoms:
        shape = tuple(int(sp.sympify(k).subs(sizes)) for k in a.shape)
        value = rng.uniform(0.1, 0.9, size=shape)  # gate values in (0, 1), pre-activations off the kinks
        symbolic[a] = sp.Matrix(value)
        for printed in {GradproofLatexPrinter()._print(a), text(a), sp.latex(a), str(a)}:
            numeric[printed] = value
    symbolic.update(sizes)
    return numeric, symbolic


def _displays(d):
    """(which expression, how printed, printed rhs) for every way a user can display them."""
    out = [
        ("result", "derive.latex", latex(d.result)),
        ("result", "_repr_latex_", d.result._repr_latex_()),
        ("result", "str", str(d.result)),
        ("result", "sympy.latex", sp.latex(d.result)),
    ]
    for how, printer in [("latex", latex), ("sympy.latex", sp.latex), ("str", str),
                         ("_repr_latex_", lambda e: e._repr_latex_())]:  # fmt: skip
        whole = printer(d.equation).strip("$").removeprefix(r"\displaystyle ")
        out.append(("result", f"{how}(equation)", whole.split(" = ", 1)[1]))
    for key, block in d.blocks.items():
        out += [(("block", key), how, p(block)) for how, p in [("latex", latex), ("sympy.latex", sp.latex), ("str", str)]]
    for s in d.steps:
        key = ("step", s.equation.lhs)
        out += [(key, how, p(s.equation.rhs)) for how, p in [("latex", latex), ("sympy.latex", sp.latex), ("str", str)]]
        out.append((key, "str(equation)", str(s.equation).split(" = ", 1)[1]))
        out.append((key, "_repr_latex_(step)", s._repr_latex_().strip("$").removeprefix(r"\displaystyle ").split(" = ", 1)[1]))
    return out


@pytest.mark.parametrize("name", ALL_CELLS)
@pytest.mark.parametrize("which", ["step", "input"])
def test_every_printed_form_reads_back_to_the_same_matrix(name, which):
    d = (step_jacobian if which == "step" else input_jacobian)(name)
    numeric, symbolic = _environments(d)
    exprs = {"result": d.result, **{("block", k): v for k, v in d.blocks.items()}}
    exprs.update({("step", s.equation.lhs): s.equation.rhs for s in d.steps})
    truth = {k: np.array(derive.algebra.explicit(e, symbolic), dtype=float) for k, e in exprs.items()}
    seen = 0
    for key, how, printed in _displays(d):
        for raw in RAW_FORMS + ["Act(", "Square("]:
            assert raw not in printed, (key, how, raw, printed)
        got = _read(printed, numeric)
        np.testing.assert_allclose(got, truth[key], rtol=1e-12, atol=1e-12, err_msg=f"{key} {how}: {printed}")
        seen += 1
    assert seen >= 8 + 4 * len(d.steps)


def test_the_reader_catches_the_reported_misprint():
    # the example: o ∘ 1 - tanh²(c) reads as (o ⊙ 1) - tanh² c, not o ⊙ (1 - tanh² c)
    env = {"o": np.array([[0.5]]), "c": np.array([[0.3]])}
    wrong = _read(r"\operatorname{diag}\left(o \circ 1 - \tanh^{2}\left(c\right)\right)", env)
    right = _read(r"\operatorname{diag}\left(o \odot \left(1 - \tanh^{2}\left(c\right)\right)\right)", env)
    assert right[0, 0] == pytest.approx(0.5 * (1 - np.tanh(0.3) ** 2), rel=1e-14)
    assert wrong[0, 0] == pytest.approx(0.5 - np.tanh(0.3) ** 2, rel=1e-14)


def test_pretty_shows_the_lecture_notation():
    d = step_jacobian("lstm")
    for shown in (sp.pretty(d.result), sp.pretty(d.equation), sp.pretty(d), str(d)):
        for raw in ["Diag(", "HadamardProduct", "Act(", "OneMinus", "Square("]:
            assert raw not in shown, (raw, shown)
    assert "o(t) ⊙ (1 - tanh²(c(t)))" in sp.pretty(d.result)


def test_derivation_repr_latex_shows_its_steps():
    d = step_jacobian("lstm")
    shown = d._repr_latex_()
    for s in d.steps:
        assert latex(s.equation.lhs) + " &= " + latex(s.equation.rhs) in shown
    # the result comes after the steps and the Jacobian it names is defined under "where"
    assert shown.index(r"\text{so}") > shown.index(latex(d.steps[-1].equation.rhs))
    assert r"\text{where}\quad \frac{\partial c^{(t)}}{\partial h^{(t-1)}} &=" in shown
