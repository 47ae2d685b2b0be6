"""Step and input Jacobians of a cell, derived by gradproof's chain rule (docs/math.md §1, §3, §4).

>>> from gradproof.derive import RNN, step_jacobian, latex
>>> print(latex(step_jacobian(RNN("tanh")).result))
\\operatorname{diag}\\left(\\tanh'\\left(z^{(t)}\\right)\\right) W_{h}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from .algebra import (
    Act,
    JacobianSymbol,
    OneMinus,
    equation,
    explicit,
    jacobian,
    latex,
    terms_to_expr,
    text,
)
from .cells import Cell, cell as _cell

__all__ = [
    "Step",
    "Derivation",
    "step_jacobian",
    "input_jacobian",
    "state_symbols",
]


@dataclass(frozen=True)
class Step:
    """One step of a derivation: a sentence (may hold inline ``$…$`` math) and an equation."""

    text: str
    equation: sp.Basic

    def latex(self) -> str:
        return latex(self.equation)

    def _latex(self, printer: object) -> str:
        return self.latex()

    def _sympystr(self, printer: object) -> str:
        return text(self.equation)

    def __str__(self) -> str:
        return text(self.equation)

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex()}$"


def state_symbols(c: Cell) -> tuple[sp.MatrixSymbol, sp.MatrixSymbol]:
    """s^{(t-1)}, s^{(t)}: the whole state as one symbol (h, or [h; c] for the LSTM)."""
    if len(c.state_previous) == 1:
        return c.state_previous[0], c.state_next[0]
    rows = sum((s.shape[0] for s in c.state_previous), sp.S.Zero)
    return sp.MatrixSymbol("s^{(t-1)}", rows, 1), sp.MatrixSymbol("s^{(t)}", rows, 1)


@dataclass(frozen=True)
class Derivation:
    """A derived Jacobian: the SymPy result, the steps that produce it, and its LaTeX.

    Attributes
    ----------
    title : what is derived, in words.
    cell : the cell it belongs to.
    lhs : the quantity, e.g. ∂h^{(t)}/∂h^{(t-1)}.
    result : the structured SymPy matrix expression (a ``BlockMatrix`` for the LSTM).
    blocks : (output block, input block) -> structured expression.
    references : named Jacobians used inside ``result`` -> their expressions (LSTM: ∂c/∂h).
    steps : the chain-rule story, one :class:`Step` per intermediate.
    """

    title: str
    cell: Cell
    lhs: sp.Expr
    result: sp.Expr
    blocks: Mapping[tuple[sp.MatrixSymbol, sp.MatrixSymbol], sp.Expr]
    references: Mapping[JacobianSymbol, sp.Expr]
    steps: tuple[Step, ...]

    @property
    def equation(self) -> sp.Equality:
        """``lhs = result``; every printer (str, pretty, LaTeX, Jupyter) shows it in the lecture's
        notation with correct precedence."""
        return equation(self.lhs, self.result)

    @property
    def where(self) -> tuple[sp.Equality, ...]:
        """The named Jacobians ``result`` refers to, as equations (LSTM: ∂c/∂h = …)."""
        return tuple(equation(ref, expr) for ref, expr in self.references.items())

    def latex(self) -> str:
        """``lhs = result`` in the lecture's notation."""
        return latex(self.equation)

    def latex_steps(self) -> str:
        r"""The chain-rule steps, the result and what it refers to, as one ``aligned`` block.

        Each line is ``lhs &= rhs``; the result's line comes after the steps it is built from,
        and the named Jacobians it uses follow under ``\text{where}``.
        """
        lines = []
        for s in self.steps:
            lhs, rhs = s.equation.lhs, s.equation.rhs
            lines.append(f"{latex(lhs)} &= {latex(rhs)}")
        lines.append(rf"\text{{so}}\quad {latex(self.lhs)} &= {latex(self.result)}")
        for i, eq in enumerate(self.where):
            label = r"\text{where}\quad " if i == 0 else ""
            lines.append(f"{label}{latex(eq.lhs)} &= {latex(eq.rhs)}")
        return "\\begin{aligned}\n" + " \\\\\n".join(lines) + "\n\\end{aligned}"

    def _latex(self, printer: object) -> str:
        return self.latex()

    def _sympystr(self, printer: object) -> str:
        return str(self)

    def __str__(self) -> str:
        lines = [text(s.equation) for s in self.steps]
        lines.append("so " + text(self.equation))
        lines += ["where " + text(eq) for eq in self.where]
        return "\n".join(lines)

    def _pretty(self, printer: object) -> object:
        from sympy.printing.pretty.stringpict import prettyForm

        return prettyForm(str(self))

    def _repr_latex_(self) -> str:
        """Jupyter: the chain-rule steps, then ``lhs = result`` (and the Jacobians it names)."""
        return f"$\\displaystyle {self.latex_steps()}$"

    def explicit(self, hidden: int, inputs: int) -> sp.Matrix:
        """The structured result evaluated with the scalar symbols of ``cell.explicit``."""
        env = dict(self.cell.explicit(hidden, inputs).environment)
        for ref, expr in self.references.items():
            env[ref] = explicit(expr, env)
        return explicit(self.result, env)


# ----------------------------------------------------------------------------------------------


def _rule(rhs: sp.Expr, gate_form: bool) -> str:
    """Which chain rule the top of a definition needs, in words."""
    if isinstance(rhs, Act):
        act = rhs.activation
        how = (
            f" (written through the gate's own value: ${act.latex_name}' = "
            f"{sp.latex(act.output_derivative(sp.Symbol(act.latex_name)))}$)"
            if act.output_derivative is not None and gate_form
            else ""
        )
        return (
            "elementwise activation: the chain rule gives the diagonal matrix of its derivative "
            f"times the derivative of its argument{how}"
        )
    if isinstance(rhs, sp.MatAdd) and any(isinstance(a, sp.HadamardProduct) for a in rhs.args):
        return (
            "sum of Hadamard products: product rule "
            "$\\partial(a \\odot b) = \\operatorname{diag}(b)\\,\\partial a + "
            "\\operatorname{diag}(a)\\,\\partial b$ on each term"
        )
    if isinstance(rhs, sp.HadamardProduct):
        return (
            "Hadamard product: product rule "
            "$\\partial(a \\odot b) = \\operatorname{diag}(b)\\,\\partial a + "
            "\\operatorname{diag}(a)\\,\\partial b$"
        )
    if isinstance(rhs, OneMinus):
        return "$1 - a$ elementwise: the derivative changes sign"
    return "affine map: a matrix times the variable contributes that matrix"


def _derive(c: Cell, variables: tuple[sp.MatrixSymbol, ...], title: str, lhs: sp.Expr) -> Derivation:
    defs = dict(c.definitions)
    outputs = c.state_next
    blocks: dict[tuple[sp.MatrixSymbol, sp.MatrixSymbol], sp.Expr] = {}
    references: dict[JacobianSymbol, sp.Expr] = {}
    steps: list[Step] = []
    for v in variables:
        for name, rhs in c.definitions:
            terms = jacobian(name, v, defs, gate_form=c.gate_form, keep=frozenset(outputs) - {name})
            if not terms:
                continue
            expr = terms_to_expr(terms, name.shape[0], v.shape[0])
            steps.append(Step(_rule(rhs, c.gate_form), equation(JacobianSymbol(name, v), expr)))
            if name in outputs:
                blocks[(name, v)] = expr
    for (out, v), expr in blocks.items():
        for ref in expr.atoms(JacobianSymbol):
            references[ref] = blocks[(ref.numerator, ref.denominator)]
    rows = []
    for out in outputs:
        row = []
        for v in variables:
            row.append(blocks.get((out, v), sp.ZeroMatrix(out.shape[0], v.shape[0])))
        rows.append(row)
    result = rows[0][0] if len(rows) == 1 and len(rows[0]) == 1 else sp.BlockMatrix(rows)
    return Derivation(title, c, lhs, result, blocks, references, tuple(steps))


@lru_cache(maxsize=None)
def _step_jacobian(c: Cell) -> Derivation:
    s_prev, s = state_symbols(c)
    return _derive(
        c, c.state_previous, f"step Jacobian of {c.name}", JacobianSymbol(s, s_prev)
    )


@lru_cache(maxsize=None)
def _input_jacobian(c: Cell) -> Derivation:
    _, s = state_symbols(c)
    return _derive(c, (c.input,), f"input Jacobian of {c.name}", JacobianSymbol(s, c.input))


def step_jacobian(cell: Cell | str) -> Derivation:
    r"""∂s^{(t)}/∂s^{(t-1)} in structured form.

    Vanilla RNN: :math:`\operatorname{diag}(\sigma'(z^{(t)}))\,W_h`; the LSTM as the 2×2 block
    matrix of docs/math.md §3 (state ``[h; c]``); the GRU as the sums of docs/math.md §4.
    """
    return _step_jacobian(_cell(cell))


def input_jacobian(cell: Cell | str) -> Derivation:
    r"""∂s^{(t)}/∂x^{(t)} in structured form (vanilla RNN: :math:`\operatorname{diag}(\sigma'(z))W_x`)."""
    return _input_jacobian(_cell(cell))
