"""Backpropagation through time: the ordered product and the parameter gradients (docs/math.md §1).

For a loss :math:`J = \\sum_t J^{(t)}` the adjoint of the state obeys

.. math::
    \\lambda^{(t)} = \\Big(\\frac{\\partial J^{(t)}}{\\partial s^{(t)}}\\Big)^{\\top}
    + \\Big(\\frac{\\partial s^{(t+1)}}{\\partial s^{(t)}}\\Big)^{\\top} \\lambda^{(t+1)},

and a parameter that enters the cell as ``P v`` (a matrix times a vector) has the gradient
:math:`\\sum_t G_P^{(t)\\top} \\lambda^{(t)} v^{(t)\\top}`, with :math:`G_P = \\partial s^{(t)} /
\\partial (P v)` derived by the chain rule with the previous state held fixed. A bias ``b`` has
:math:`\\sum_t G_b^{(t)\\top} \\lambda^{(t)}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from .algebra import (
    BPTTSum,
    Diag,
    JacobianSymbol,
    OrderedProduct,
    explicit,
    jacobian,
    latex,
    terms_to_expr,
)
from .cells import Cell, cell as _cell
from .jacobians import Step, state_symbols, step_jacobian

__all__ = [
    "BPTTProduct",
    "ParameterGradient",
    "ParameterGradients",
    "bptt_product",
    "parameter_gradients",
    "site_symbol",
]

T_INDEX = sp.Symbol("t", integer=True)
I_INDEX = sp.Symbol("i", integer=True)
J_INDEX = sp.Symbol("j", integer=True)
T_LAST = sp.Symbol("T", integer=True, positive=True)


@dataclass(frozen=True)
class BPTTProduct:
    r"""∂J^{(i)}/∂s^{(j)} = ∂J^{(i)}/∂s^{(i)} ∏_{j<t≤i} ∂s^{(t)}/∂s^{(t-1)}, an *ordered* product.

    The factor with the largest t stands on the left. ``expanded`` substitutes the structured step
    Jacobian for the factor.
    """

    cell: Cell
    lhs: sp.Expr
    result: sp.Expr
    expanded: sp.Expr
    steps: tuple[Step, ...]

    @property
    def factor(self) -> sp.Expr:
        """The structured step Jacobian that the product repeats."""
        return step_jacobian(self.cell).result

    def latex(self) -> str:
        return latex(sp.Eq(self.lhs, self.result, evaluate=False))

    def _latex(self, printer: object) -> str:
        return self.latex()

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex()}$"

    def explicit_chain(self, hidden: int, inputs: int, span: int) -> tuple[sp.Matrix, sp.Matrix]:
        """(ordered product of explicit step Jacobians, the composed map's state) over ``span`` steps.

        Step k uses fresh input symbols ``x{r}_{k}``; the returned state is s^{(span)} as an
        expression of s^{(0)}, so ``state.jacobian(s0)`` is the brute-force check.
        """
        ex = self.cell.explicit(hidden, inputs)
        deriv = step_jacobian(self.cell)
        state = ex.state
        product = sp.eye(state.shape[0])
        for k in range(1, span + 1):
            xk = sp.Matrix(inputs, 1, lambda r, _: sp.Symbol(f"x{r}_{k}", real=True))
            sub = dict(zip(list(ex.state) + list(ex.x), list(state) + list(xk)))
            jk = deriv.explicit(hidden, inputs).xreplace(sub)
            product = jk * product
            state = ex.next_state.xreplace(sub)
        return product, state


@lru_cache(maxsize=None)
def _bptt_product(c: Cell) -> BPTTProduct:
    s_prev, s = state_symbols(c)
    s_i = sp.MatrixSymbol(s.name.replace("(t)", "(i)"), s.shape[0], 1)
    s_j = sp.MatrixSymbol(s.name.replace("(t)", "(j)"), s.shape[0], 1)
    dJ = sp.MatrixSymbol(r"\frac{\partial J^{(i)}}{\partial " + s_i.name + "}", 1, s.shape[0])
    lhs = sp.MatrixSymbol(r"\frac{\partial J^{(i)}}{\partial " + s_j.name + "}", 1, s.shape[0])
    result = sp.MatMul(dJ, OrderedProduct(JacobianSymbol(s, s_prev), T_INDEX, J_INDEX, I_INDEX))
    factor = step_jacobian(c).result
    expanded = sp.MatMul(dJ, OrderedProduct(factor, T_INDEX, J_INDEX, I_INDEX))
    steps = (
        Step(
            "chain rule through the states between step j and step i; the factors do not commute, "
            "so the product is ordered with the latest step on the left",
            sp.Eq(lhs, result, evaluate=False),
        ),
        Step("each factor is the step Jacobian", sp.Eq(JacobianSymbol(s, s_prev), factor, evaluate=False)),
        Step("substituted", sp.Eq(lhs, expanded, evaluate=False)),
    )
    return BPTTProduct(c, lhs, result, expanded, steps)


def bptt_product(cell: Cell | str) -> BPTTProduct:
    """The ordered product for ∂J^{(i)}/∂s^{(j)} (docs/math.md §1)."""
    return _bptt_product(_cell(cell))


# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParameterGradient:
    """The BPTT sum for one parameter.

    Attributes
    ----------
    name : the parameter's name (``W_h``, ``b_f``, …).
    symbol : its MatrixSymbol.
    site : the vector the parameter produces (``W_h h^{(t-1)}``), or the bias itself.
    right : v in ``P v`` (``h^{(t-1)}`` or ``x^{(t)}``), ``None`` for a bias.
    local : G = ∂s^{(t)}/∂site with s^{(t-1)} fixed, structured (S × n).
    references : named Jacobians used in ``local``.
    result : the SymPy sum ``Σ_t Gᵀ λ^{(t)} vᵀ``.
    """

    name: str
    symbol: sp.MatrixSymbol
    site: sp.Expr
    right: sp.Expr | None
    local: sp.Expr
    references: Mapping[JacobianSymbol, sp.Expr]
    result: sp.Expr

    def latex(self) -> str:
        lhs = sp.MatrixSymbol(r"\frac{\partial J}{\partial " + latex(self.symbol) + "}", *self.symbol.shape)
        return latex(sp.Eq(lhs, self.result, evaluate=False))

    def _latex(self, printer: object) -> str:
        return self.latex()

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex()}$"


@dataclass(frozen=True)
class ParameterGradients:
    """∂J/∂θ for every parameter θ of a cell, as BPTT sums over the adjoint λ^{(t)}."""

    cell: Cell
    adjoint: Step
    gradients: Mapping[str, ParameterGradient]

    def __getitem__(self, name: str) -> ParameterGradient:
        return self.gradients[name]

    def latex(self) -> str:
        return r" \\ ".join(g.latex() for g in self.gradients.values())

    def _latex(self, printer: object) -> str:
        return self.latex()

    def _repr_latex_(self) -> str:
        return "$\\begin{gathered}" + self.latex() + "\\end{gathered}$"

    def explicit_local(self, name: str, hidden: int, inputs: int) -> sp.Matrix:
        """G for parameter ``name`` evaluated with the explicit cell's symbols (site = its value)."""
        g = self.gradients[name]
        env = dict(self.cell.explicit(hidden, inputs).environment)
        site_value = explicit(g.site, env)
        env[site_symbol(g)] = site_value
        for ref, expr in g.references.items():
            env[ref] = explicit(expr, env)
        return explicit(g.local, env)


def _site_of(symbol: sp.MatrixSymbol, site: sp.Expr) -> sp.MatrixSymbol:
    """a_P: the vector symbol standing for the site ``P v`` of parameter P."""
    return sp.MatrixSymbol(r"a_{" + latex(symbol) + "}", site.shape[0], 1)


def site_symbol(g: ParameterGradient) -> sp.MatrixSymbol:
    """The variable a parameter's local Jacobian is taken with respect to (a_P, or the bias)."""
    return g.symbol if g.right is None else _site_of(g.symbol, g.site)


@lru_cache(maxsize=None)
def _parameter_gradients(c: Cell) -> ParameterGradients:
    s_prev, s = state_symbols(c)
    lam = sp.MatrixSymbol(r"\lambda^{(t)}", s.shape[0], 1)
    lam_next = sp.MatrixSymbol(r"\lambda^{(t+1)}", s.shape[0], 1)
    dJt = sp.MatrixSymbol(r"\frac{\partial J^{(t)}}{\partial " + s.name + "}", 1, s.shape[0])
    s_next = sp.MatrixSymbol(s.name.replace("(t)", "(t+1)"), s.shape[0], 1)
    adjoint = Step(
        "adjoint of the state, accumulated backwards from $t = T$ (with $\\lambda^{(T+1)} = 0$)",
        sp.Eq(
            lam,
            sp.MatAdd(sp.Transpose(dJt), sp.MatMul(sp.Transpose(JacobianSymbol(s_next, s)), lam_next)),
            evaluate=False,
        ),
    )
    gradients: dict[str, ParameterGradient] = {}
    outputs = c.state_next
    for name, sym in c.parameter_symbols().items():
        sites = [
            m
            for _, rhs in c.definitions
            for m in rhs.atoms(sp.MatMul)
            if m.args[0] == sym
        ]
        is_vector = sym.shape[1] == 1
        if is_vector:
            site, right, site_sym = sym, None, sym
            defs = dict(c.definitions)
        else:
            if len(sites) != 1:
                raise NotImplementedError(f"{name} enters {c.name} {len(sites)} times")
            site = sites[0]
            right = site.args[1] if len(site.args) == 2 else sp.MatMul(*site.args[1:])
            site_sym = _site_of(sym, site)
            defs = {lhs: rhs.xreplace({site: site_sym}) for lhs, rhs in c.definitions}
        blocks = []
        refs: dict[JacobianSymbol, sp.Expr] = {}
        block_of: dict[sp.MatrixSymbol, sp.Expr] = {}
        for out in outputs:
            terms = jacobian(out, site_sym, defs, gate_form=c.gate_form, keep=frozenset(outputs) - {out})
            expr = terms_to_expr(terms, out.shape[0], site_sym.shape[0])
            block_of[out] = expr
            blocks.append([expr])
        for expr in block_of.values():
            for ref in expr.atoms(JacobianSymbol):
                refs[ref] = block_of[ref.numerator]
        local = blocks[0][0] if len(blocks) == 1 else sp.BlockMatrix(blocks)
        gt = local if isinstance(local, Diag) else sp.Transpose(local)
        body = sp.MatMul(gt, lam) if right is None else sp.MatMul(gt, lam, sp.Transpose(right))
        result = BPTTSum(body, T_INDEX, 1, T_LAST)
        gradients[name] = ParameterGradient(name, sym, site, right, local, refs, result)
    return ParameterGradients(c, adjoint, gradients)


def parameter_gradients(cell: Cell | str) -> ParameterGradients:
    """∂J/∂θ for every parameter as a BPTT sum (docs/math.md §1: derived, not copied)."""
    return _parameter_gradients(_cell(cell))
