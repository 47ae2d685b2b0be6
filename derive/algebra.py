"""Dimension-free vector algebra of recurrent cells, and gradproof's own chain rule over it.

A cell is written with SymPy matrix expressions: :class:`~sympy.MatrixSymbol` vectors and
matrices, ``MatAdd``, ``MatMul``, ``HadamardProduct``, and the few elementwise nodes defined here
(:class:`Act`, :class:`ActPrime`, :class:`OneMinus`, :class:`Square`, :class:`Diag`,
:class:`JacobianSymbol`). SymPy's own matrix calculus cannot be used on these (docs/math.md: the
transpose of the Jacobian for ``tanh(W h)``, ``ValueError`` on Hadamard products), so
:func:`jacobian` applies the chain rule itself, one rule per node type:

=====================  ===========================================================
expression             derivative with respect to a vector ``v``
=====================  ===========================================================
``v``                  ``I``
other symbol           ``0``, or the derivative of its definition (intermediates)
``a + b``              ``da + db``
``W a`` (W constant)   ``W da``
``a ⊙ b``              ``D(b) da + D(a) db``
``σ(a)``               ``D(σ'(a)) da`` (or ``D(y ⊙ (1 - y))`` through the output y)
``1 - a``              ``-da``
=====================  ===========================================================

Every structured result is turned back into an explicit :class:`~sympy.Matrix` by
:func:`explicit` so the tests can prove it equal to ``Matrix.jacobian`` of the explicit cell.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import reduce

import sympy as sp
from sympy.matrices.expressions import MatrixExpr
from sympy.core.symbol import Str
from sympy.printing.latex import LatexPrinter
from sympy.printing.str import StrPrinter

from .activations import X, Activation, activation

__all__ = [
    "N",
    "M",
    "Act",
    "ActPrime",
    "OneMinus",
    "Square",
    "Diag",
    "JacobianSymbol",
    "BPTTSum",
    "OrderedProduct",
    "Term",
    "jacobian",
    "terms_to_expr",
    "explicit",
    "latex",
    "text",
    "GradproofLatexPrinter",
    "GradproofTextPrinter",
    "hadamard",
    "signed_terms",
    "Equation",
    "equation",
]

#: The hidden size, symbolic.
N = sp.Symbol("n", integer=True, positive=True)
#: The input size, symbolic.
M = sp.Symbol("m", integer=True, positive=True)


# ----------------------------------------------------------------------------------------------
# Elementwise nodes
# ----------------------------------------------------------------------------------------------


class _Printed:
    """Printer hooks so that SymPy's own printers show a node in the lecture's notation.

    ``sympy.latex``, ``str``, ``sympy.pretty`` and Jupyter's ``_repr_latex_`` of any expression
    holding these nodes print each node (and everything below it) with gradproof's printers, so
    that precedence is right (``o ⊙ (1 - tanh² c)``, never ``o ∘ 1 - tanh² c``).
    """

    #: wrap in parentheses when a foreign printer places this node inside a product
    _loose = False

    def _latex(self, printer: LatexPrinter) -> str:
        ours = isinstance(printer, GradproofLatexPrinter)
        out = self._gp_latex(printer if ours else GradproofLatexPrinter())
        return out if ours or not self._loose else rf"\left({out}\right)"

    def _sympystr(self, printer: StrPrinter) -> str:
        ours = isinstance(printer, GradproofTextPrinter)
        p = printer if ours else GradproofTextPrinter()
        out = getattr(p, f"_print_{type(self).__name__}")(self)
        return out if ours or not self._loose else f"({out})"

    def _pretty(self, printer: object) -> object:
        from sympy.printing.pretty.stringpict import prettyForm

        out = text(self)
        return prettyForm(f"({out})" if self._loose else out)


class _Elementwise(_Printed, MatrixExpr):
    """A vector-valued node whose shape is that of its (last) vector argument."""

    is_commutative = False

    @property
    def vector(self) -> sp.Expr:
        return self.args[-1]

    @property
    def shape(self):  # type: ignore[override]
        return self.vector.shape


class _Activated(_Elementwise):
    """A node ``Node(Str(activation name), a)`` applying something of an activation elementwise."""

    def __new__(cls, spec: str | Str | Activation, arg: sp.Expr):
        act = activation(str(spec) if isinstance(spec, Str) else spec)
        return super().__new__(cls, Str(act.name), arg)

    @property
    def activation(self) -> Activation:
        return activation(str(self.args[0]))


class Act(_Activated):
    """σ(a): an activation applied elementwise; ``Act(name, a)``."""

    def _gp_latex(self, printer: LatexPrinter) -> str:
        return self.activation.latex_of(printer._print(self.vector))


class ActPrime(_Activated):
    """σ'(a): the activation's derivative applied elementwise."""

    def _gp_latex(self, printer: LatexPrinter) -> str:
        return self.activation.latex_prime_of(printer._print(self.vector))


class OneMinus(_Elementwise):
    """1 - a, elementwise."""

    _loose = True

    def __new__(cls, arg: sp.Expr):
        return super().__new__(cls, arg)

    def _gp_latex(self, printer: LatexPrinter) -> str:
        inner = printer._print(self.vector)
        if isinstance(self.vector, (sp.MatAdd, sp.HadamardProduct)):
            inner = rf"\left({inner}\right)"
        return f"1 - {inner}"


class Square(_Elementwise):
    """a ⊙ a, written a² (elementwise)."""

    def __new__(cls, arg: sp.Expr):
        return super().__new__(cls, arg)

    def _gp_latex(self, printer: LatexPrinter) -> str:
        arg = self.vector
        if isinstance(arg, Act) and arg.activation.name in ("tanh",):
            return rf"\tanh^{{2}}\left({printer._print(arg.vector)}\right)"
        inner = printer._print(arg)
        if isinstance(arg, sp.MatrixSymbol) and "^" not in arg.name:
            return f"{inner}^{{2}}"
        return rf"\left({inner}\right)^{{2}}"


class Diag(_Printed, MatrixExpr):
    """D(v) = diag(v): the square matrix with the vector v on its diagonal."""

    is_commutative = False

    def __new__(cls, vector: sp.Expr):
        return super().__new__(cls, vector)

    @property
    def vector(self) -> sp.Expr:
        return self.args[0]

    @property
    def shape(self):  # type: ignore[override]
        return (self.vector.shape[0], self.vector.shape[0])

    def _gp_latex(self, printer: LatexPrinter) -> str:
        return rf"\operatorname{{diag}}\left({printer._print(self.vector)}\right)"


class JacobianSymbol(_Printed, MatrixExpr):
    """∂a/∂b, a Jacobian kept by name inside a larger formula (numerator layout)."""

    is_commutative = False

    def __new__(cls, numerator: sp.MatrixSymbol, denominator: sp.MatrixSymbol):
        return super().__new__(cls, numerator, denominator)

    @property
    def numerator(self) -> sp.MatrixSymbol:
        return self.args[0]

    @property
    def denominator(self) -> sp.MatrixSymbol:
        return self.args[1]

    @property
    def shape(self):  # type: ignore[override]
        return (self.numerator.shape[0], self.denominator.shape[0])

    def _gp_latex(self, printer: LatexPrinter) -> str:
        return (
            rf"\frac{{\partial {printer._print(self.numerator)}}}"
            rf"{{\partial {printer._print(self.denominator)}}}"
        )


class _Indexed(_Printed, MatrixExpr):
    """A sum or product of ``body(index)`` for ``lower … upper`` (printed, not evaluated)."""

    is_commutative = False

    def __new__(cls, body: sp.Expr, index: sp.Symbol, lower: sp.Expr, upper: sp.Expr):
        return super().__new__(cls, body, index, sp.sympify(lower), sp.sympify(upper))  # safe: ints

    @property
    def shape(self):  # type: ignore[override]
        return self.args[0].shape


class BPTTSum(_Indexed):
    """Σ_{t=1}^{T} term(t): a sum over time steps."""

    def _gp_latex(self, printer: LatexPrinter) -> str:
        term, index, lower, upper = (printer._print(a) for a in self.args)
        return rf"\sum_{{{index}={lower}}}^{{{upper}}} {term}"


class OrderedProduct(_Indexed):
    """∏_{lower < t ≤ upper} factor(t), ordered with t decreasing from left to right."""

    def _gp_latex(self, printer: LatexPrinter) -> str:
        factor, index, lower, upper = (printer._print(a) for a in self.args)
        return rf"\prod_{{{lower} < {index} \leq {upper}}} {factor}"


def hadamard(vectors: Sequence[sp.Expr]) -> sp.Expr:
    """The Hadamard product of ``vectors`` (one vector is returned as it is)."""
    flat: list[sp.Expr] = []
    for v in vectors:
        flat.extend(v.args if isinstance(v, sp.HadamardProduct) else (v,))
    if not flat:
        raise ValueError("hadamard() needs at least one vector")
    return flat[0] if len(flat) == 1 else sp.HadamardProduct(*flat)


# ----------------------------------------------------------------------------------------------
# The chain rule
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Term:
    """One term ``sign · F_1 F_2 ⋯ F_k`` of a Jacobian (sign ±1, or a rational scale).

    Each factor is ``("diag", (v_1, …))`` for D(v_1 ⊙ …), ``("mat", A)`` for a matrix, or
    ``("sum", (Term, …))`` for a parenthesised sum kept factored. No factors means the identity.
    """

    sign: int
    factors: tuple[tuple[str, object], ...] = ()

    def negated(self) -> Term:
        return Term(-self.sign, self.factors)

    def left_diag(self, vectors: tuple[sp.Expr, ...]) -> Term:
        if self.factors and self.factors[0][0] == "diag":
            merged = tuple(vectors) + tuple(self.factors[0][1])  # type: ignore[arg-type]
            return Term(self.sign, (("diag", merged),) + self.factors[1:])
        return Term(self.sign, (("diag", tuple(vectors)),) + self.factors)

    def left_matrix(self, matrix: sp.Expr) -> Term:
        return Term(self.sign, (("mat", matrix),) + self.factors)

    @property
    def tail(self) -> tuple[tuple[str, object], ...]:
        """The factors after a leading diagonal (what like terms must share)."""
        return self.factors[1:] if self.factors and self.factors[0][0] == "diag" else self.factors

    @property
    def diag(self) -> tuple[sp.Expr, ...]:
        return self.factors[0][1] if self.factors and self.factors[0][0] == "diag" else ()  # type: ignore[return-value]


Sum = tuple[Term, ...]


def _order(s: Sum) -> Sum:
    """Terms with fewer matrix factors first: D(1 - u) + D(…) W_u + …"""
    return tuple(sorted(s, key=lambda t: sum(1 for k, _ in t.factors if k != "diag")))


def _left_diag(vectors: tuple[sp.Expr, ...], s: Sum) -> Sum:
    if not s:
        return ()
    if len(s) == 1:
        return (s[0].left_diag(vectors),)
    return (Term(1, (("diag", vectors), ("sum", _order(s)))),)


def _left_matrix(matrix: sp.Expr, s: Sum) -> Sum:
    if not s:
        return ()
    if len(s) == 1:
        return (s[0].left_matrix(matrix),)
    return (Term(1, (("mat", matrix), ("sum", _order(s)))),)


@dataclass(frozen=True)
class _Context:
    definitions: Mapping[sp.MatrixSymbol, sp.Expr]
    variable: sp.MatrixSymbol
    gate_form: bool
    keep: frozenset[sp.MatrixSymbol]
    opaque: frozenset[sp.MatrixSymbol] = frozenset()
    memo: dict = field(default_factory=dict, compare=False)


def _output_form(act: Activation, y: sp.Expr) -> sp.Expr | None:
    """σ'(z) written through the output y = σ(z) as a vector expression, when σ allows it."""
    if act.output_derivative is None:
        return None
    ys = sp.Symbol("y")
    scalar = sp.sympify(act.output_derivative(ys))  # safe: a SymPy expression
    return _scalar_to_vector(scalar, ys, y)


def _scalar_to_vector(e: sp.Expr, ys: sp.Symbol, y: sp.Expr) -> sp.Expr:
    """Map a polynomial in the scalar y to the elementwise vector expression in the vector y."""
    if e == ys:
        return y
    if e.is_Mul:
        coeff, rest = e.as_coeff_mul()
        if coeff == -1 and len(rest) == 1 and rest[0].is_Add:
            return _scalar_to_vector(sp.expand(-rest[0]), ys, y)
        parts = [_scalar_to_vector(a, ys, y) for a in e.args]
        return hadamard(parts)
    if e.is_Pow and e.exp == 2:
        return Square(_scalar_to_vector(e.base, ys, y))
    if e.is_Add:
        const, rest = e.as_coeff_Add()
        if const == 1:
            return OneMinus(_scalar_to_vector(sp.expand(-rest), ys, y))
    raise NotImplementedError(f"cannot write {e} elementwise")


def _d(expr: sp.Expr, ctx: _Context, *, name: sp.MatrixSymbol | None = None) -> Sum:
    if expr == ctx.variable:
        return (Term(1),)
    if expr in ctx.opaque:
        return (Term(1, (("mat", JacobianSymbol(expr, ctx.variable)),)),)
    if isinstance(expr, sp.MatrixSymbol):
        if expr not in ctx.definitions:
            return ()
        if expr in ctx.memo:
            inner = ctx.memo[expr]
        else:
            inner = _simplify(_d(ctx.definitions[expr], ctx, name=expr))
            ctx.memo[expr] = inner
        if expr in ctx.keep and len(inner) > 1:
            return (Term(1, (("mat", JacobianSymbol(expr, ctx.variable)),)),)
        return inner
    if isinstance(expr, sp.MatAdd):
        return tuple(t for a in expr.args for t in _d(a, ctx))
    if isinstance(expr, sp.MatMul):
        coeff, mats = expr.as_coeff_matrices()
        *constants, last = mats
        out = _d(last, ctx)
        for c in reversed(constants):
            if _depends(c, ctx):
                raise NotImplementedError(f"matrix factor {c} depends on {ctx.variable}")
            out = _left_matrix(c, out)
        if coeff == -1:
            return tuple(t.negated() for t in out)
        if coeff != 1:
            if not coeff.is_Rational:
                raise NotImplementedError(f"scalar coefficient {coeff} in {expr}")
            return tuple(Term(t.sign * coeff, t.factors) for t in out)
        return out
    if isinstance(expr, sp.HadamardProduct):
        args = expr.args
        out: list[Term] = []
        for i, a in enumerate(args):
            others = tuple(args[:i] + args[i + 1 :])
            out.extend(_left_diag(others, _d(a, ctx)))
        return tuple(out)
    if isinstance(expr, Act):
        inner = _d(expr.vector, ctx)
        if not inner:
            return ()
        y = name if name is not None else expr
        slope = _output_form(expr.activation, y) if ctx.gate_form else None
        if slope is None:
            slope = ActPrime(expr.activation, expr.vector)
        return _left_diag((slope,), inner)
    if isinstance(expr, OneMinus):
        return tuple(t.negated() for t in _d(expr.vector, ctx))
    raise NotImplementedError(f"no chain rule for {type(expr).__name__}: {expr}")


def _depends(expr: sp.Expr, ctx: _Context) -> bool:
    return any(
        s == ctx.variable or (s in ctx.definitions and _d(s, ctx))
        for s in expr.atoms(sp.MatrixSymbol)
    )


def _simplify(s: Sum) -> Sum:
    """Collect like terms (same factors after the diagonal) and order terms simply.

    ``a D(x ⊙ w) T - D(y ⊙ w) T`` becomes ``D((x - y) ⊙ w) T``: the common Hadamard factors are
    pulled out and the rest summed (positive parts first).
    """
    groups: dict[tuple, list[Term]] = {}
    for t in s:
        groups.setdefault(t.tail, []).append(t)
    out: list[Term] = []
    for tail, ts in groups.items():
        if len(ts) == 1:
            out.append(ts[0])
            continue
        common = list(ts[0].diag)
        for t in ts[1:]:
            rest = list(t.diag)
            common = [v for v in common if v in rest and (rest.remove(v) or True)]
        rests = []
        for t in ts:
            r = list(t.diag)
            for v in common:
                r.remove(v)
            rests.append((t.sign, r))
        if not common or any(not r for _, r in rests):
            out.extend(ts)
            continue
        rests.sort(key=lambda p: -p[0])
        parts = [hadamard(r) if sign == 1 else sp.MatMul(sign, hadamard(r)) for sign, r in rests]
        total = sp.MatAdd(*parts)
        out.append(Term(1, (("diag", (total, *common)),) + tail))
    return _order(tuple(out))


def jacobian(
    expr: sp.Expr,
    variable: sp.MatrixSymbol,
    definitions: Mapping[sp.MatrixSymbol, sp.Expr],
    *,
    gate_form: bool = False,
    keep: frozenset[sp.MatrixSymbol] = frozenset(),
    opaque: frozenset[sp.MatrixSymbol] = frozenset(),
) -> Sum:
    """∂expr/∂variable by gradproof's chain rule, as a tuple of :class:`Term`.

    Parameters
    ----------
    expr : vector expression (k, 1), or a defined symbol.
    variable : vector symbol (n, 1).
    definitions : the cell's intermediates, name -> definition; inlined by the chain rule.
    gate_form : write σ' of a named gate through its output, e.g. D(f ⊙ (1 - f)).
    keep : intermediates whose Jacobian stays a named factor ∂y/∂v when it is a sum.
    opaque : maps F(v) known only by name (a skip block over any layer or cell): their Jacobian
        is always the named factor ∂F/∂v, J_F.
    """
    ctx = _Context(definitions, variable, gate_form, keep, opaque)
    return _simplify(_d(expr, ctx, name=expr if isinstance(expr, sp.MatrixSymbol) else None))


def _diag_expr(vectors: tuple[sp.Expr, ...]) -> sp.Expr:
    return Diag(hadamard(vectors))


def terms_to_expr(s: Sum, rows: sp.Expr, cols: sp.Expr) -> sp.Expr:
    """A SymPy matrix expression for a sum of terms (``ZeroMatrix`` for none)."""
    if not s:
        return sp.ZeroMatrix(rows, cols)
    exprs = [_term_expr(t, rows, cols) for t in s]
    return exprs[0] if len(exprs) == 1 else sp.MatAdd(*exprs)


def _term_expr(t: Term, rows: sp.Expr, cols: sp.Expr) -> sp.Expr:
    factors: list[sp.Expr] = []
    for kind, value in t.factors:
        if kind == "diag":
            factors.append(_diag_expr(value))  # type: ignore[arg-type]
        elif kind == "mat":
            factors.append(value)  # type: ignore[arg-type]
        else:
            factors.append(terms_to_expr(value, rows, cols))  # type: ignore[arg-type]
    if not factors:
        factors = [sp.Identity(rows)]
    if t.sign != 1:  # -1, or a rational scale from a defined cell (derive.define)
        return sp.MatMul(t.sign, *factors)
    return factors[0] if len(factors) == 1 else sp.MatMul(*factors)


# ----------------------------------------------------------------------------------------------
# Explicit evaluation (brute-force checks)
# ----------------------------------------------------------------------------------------------


def explicit(expr: sp.Expr, env: Mapping[sp.Expr, sp.Matrix]) -> sp.Matrix:
    """Evaluate a structured expression to an explicit :class:`~sympy.Matrix`.

    ``env`` maps every :class:`~sympy.MatrixSymbol` (and :class:`JacobianSymbol`) that occurs to
    an explicit matrix of the right size, and the size symbols ``N``, ``M`` to integers.
    """
    if expr in env:
        return env[expr]
    if isinstance(expr, sp.MatrixSymbol | JacobianSymbol):
        raise KeyError(f"no explicit value for {expr}")
    if isinstance(expr, sp.MatAdd):
        return reduce(lambda a, b: a + b, (explicit(a, env) for a in expr.args))
    if isinstance(expr, sp.MatMul):
        coeff, mats = expr.as_coeff_matrices()
        value = reduce(lambda a, b: a * b, (explicit(a, env) for a in mats))
        return value * coeff if coeff != 1 else value
    if isinstance(expr, sp.HadamardProduct):
        return reduce(lambda a, b: a.multiply_elementwise(b), (explicit(a, env) for a in expr.args))
    if isinstance(expr, Act):
        f = expr.activation
        return explicit(expr.vector, env).applyfunc(lambda v: f.expr.subs(X, v))
    if isinstance(expr, ActPrime):
        f = expr.activation
        return explicit(expr.vector, env).applyfunc(lambda v: f.derivative.subs(X, v))
    if isinstance(expr, OneMinus):
        return explicit(expr.vector, env).applyfunc(lambda v: 1 - v)
    if isinstance(expr, Square):
        return explicit(expr.vector, env).applyfunc(lambda v: v**2)
    if isinstance(expr, Diag):
        return sp.diag(*explicit(expr.vector, env))
    if isinstance(expr, sp.Identity | sp.ZeroMatrix):
        sizes = {k: env[k] for k in (N, M) if k in env}
        rows, cols = int(expr.rows.subs(sizes)), int(expr.cols.subs(sizes))
        return sp.eye(rows) if isinstance(expr, sp.Identity) else sp.zeros(rows, cols)
    if isinstance(expr, sp.BlockMatrix):
        blocks = expr.blocks
        return sp.Matrix.vstack(
            *[
                sp.Matrix.hstack(*[explicit(blocks[i, j], env) for j in range(blocks.cols)])
                for i in range(blocks.rows)
            ]
        )
    if isinstance(expr, sp.Transpose):
        return explicit(expr.arg, env).T
    raise NotImplementedError(f"explicit(): {type(expr).__name__}")


# ----------------------------------------------------------------------------------------------
# Printing in the lecture's notation
# ----------------------------------------------------------------------------------------------


def signed_terms(expr: sp.Expr) -> list[tuple[bool, sp.Expr]]:
    """The terms of a sum as (negative?, term without its -1), in the stored order."""
    args = expr.args if isinstance(expr, sp.MatAdd) else (expr,)
    out = []
    for term in args:
        if isinstance(term, sp.MatMul) and term.args[0] == -1:
            rest = term.args[1:]
            out.append((True, rest[0] if len(rest) == 1 else sp.MatMul(*rest)))
        else:
            out.append((False, term))
    return out


class GradproofLatexPrinter(LatexPrinter):
    """SymPy's LaTeX printer with the lecture's notation.

    Terms of a sum keep their order, ⊙ is ``\\odot``, the identity is ``I``, and the nodes of
    this module print through their own ``_latex`` hooks.
    """

    printmethod = "_latex"

    def _print_MatAdd(self, expr: sp.MatAdd) -> str:
        return _join_signed(self, expr, "- ")

    def _print_MatMul(self, expr: sp.MatMul) -> str:
        parts = []
        args = list(expr.args)
        prefix = ""
        if args and args[0] == -1:
            prefix = "- "
            args = args[1:]
        for a in args:
            text = self._print(a)
            if isinstance(a, sp.MatAdd):
                text = rf"\left[{text}\right]"
            elif isinstance(a, sp.HadamardProduct):
                text = rf"\left({text}\right)"
            parts.append(text)
        return prefix + " ".join(parts)

    def _print_HadamardProduct(self, expr: sp.HadamardProduct) -> str:
        parts = []
        for a in expr.args:
            text = self._print(a)
            if isinstance(a, (sp.MatAdd, OneMinus)):
                text = rf"\left({text}\right)"
            parts.append(text)
        return r" \odot ".join(parts)

    def _print_Identity(self, expr: sp.Identity) -> str:
        return "I"

    def _print_ZeroMatrix(self, expr: sp.ZeroMatrix) -> str:
        return "0"

    def _print_Transpose(self, expr: sp.Transpose) -> str:
        inner = self._print(expr.arg)
        if not isinstance(expr.arg, sp.MatrixSymbol) or inner.startswith(r"\frac"):
            inner = rf"\left({inner}\right)"
        elif "^" in inner:
            inner = f"{{{inner}}}"
        return rf"{inner}^{{\top}}"


def _join_signed(printer: LatexPrinter | StrPrinter, expr: sp.MatAdd, leading_minus: str) -> str:
    out = ""
    for i, (negative, term) in enumerate(signed_terms(expr)):
        text = printer._print(term)
        if i == 0:
            out = (leading_minus if negative else "") + text
        else:
            out += (" - " if negative else " + ") + text
    return out


class Equation(sp.Equality):
    """``lhs = rhs`` that every printer (``str``, ``sympy.pretty``, ``sympy.latex``, Jupyter)
    shows in the lecture's notation, with the terms in gradproof's order."""

    def _latex(self, printer: LatexPrinter) -> str:
        p = printer if isinstance(printer, GradproofLatexPrinter) else GradproofLatexPrinter()
        return f"{p._print(self.lhs)} = {p._print(self.rhs)}"

    def _sympystr(self, printer: StrPrinter) -> str:
        p = printer if isinstance(printer, GradproofTextPrinter) else GradproofTextPrinter()
        return f"{p._print(self.lhs)} = {p._print(self.rhs)}"

    def _pretty(self, printer: object) -> object:
        from sympy.printing.pretty.stringpict import prettyForm

        return prettyForm(self._sympystr(GradproofTextPrinter()))


def equation(lhs: sp.Expr, rhs: sp.Expr) -> Equation:
    """``lhs = rhs`` unevaluated, printed in the lecture's notation by every printer."""
    return Equation(lhs, rhs, evaluate=False)


def latex(expr: object, **settings: object) -> str:
    """LaTeX in the lecture's notation (diag, ⊙, W_h, h^{(t)})."""
    return GradproofLatexPrinter(settings).doprint(expr)


Printer = Callable[[object], str]


# ----------------------------------------------------------------------------------------------
# Plain-text printing (terminal)
# ----------------------------------------------------------------------------------------------

_TEXT_NAMES = {r"\tilde{c}": "c̃", r"\tilde{h}": "h̃", r"\lambda": "λ"}


def _text_name(name: str) -> str:
    base, _, sup = name.partition("^")
    base = _TEXT_NAMES.get(base, base)
    if sup:
        sup = sup.strip("{}")
        return f"{base}{sup}"
    return base


class GradproofTextPrinter(StrPrinter):
    """Plain Unicode text in the lecture's notation, for the terminal: ``diag(σ'(z(t))) W_h``."""

    def _print_MatrixSymbol(self, expr: sp.MatrixSymbol) -> str:
        return _text_name(expr.name)

    def _print_MatAdd(self, expr: sp.MatAdd) -> str:
        return _join_signed(self, expr, "-")

    def _print_MatMul(self, expr: sp.MatMul) -> str:
        args = list(expr.args)
        prefix = ""
        if args and args[0] == -1:
            prefix, args = "-", args[1:]
        parts = [
            f"[{self._print(a)}]" if isinstance(a, sp.MatAdd)
            else f"({self._print(a)})" if isinstance(a, sp.HadamardProduct)
            else self._print(a)
            for a in args
        ]  # fmt: skip
        return prefix + " ".join(parts)

    def _print_HadamardProduct(self, expr: sp.HadamardProduct) -> str:
        return " ⊙ ".join(
            f"({self._print(a)})" if isinstance(a, (sp.MatAdd, OneMinus)) else self._print(a)
            for a in expr.args
        )

    def _print_Act(self, expr: Act) -> str:
        name = expr.activation.name
        label = {"sigmoid": "σ"}.get(name, name)
        return f"{label}({self._print(expr.vector)})"

    def _print_ActPrime(self, expr: ActPrime) -> str:
        name = expr.activation.name
        label = {"sigmoid": "σ"}.get(name, name)
        return f"{label}'({self._print(expr.vector)})"

    def _print_OneMinus(self, expr: OneMinus) -> str:
        inner = self._print(expr.vector)
        if isinstance(expr.vector, (sp.MatAdd, sp.HadamardProduct)):
            inner = f"({inner})"
        return f"1 - {inner}"

    def _print_Square(self, expr: Square) -> str:
        arg = expr.vector
        if isinstance(arg, Act) and arg.activation.name == "tanh":
            return f"tanh²({self._print(arg.vector)})"
        inner = self._print(arg)
        if isinstance(arg, sp.MatrixSymbol):
            return f"{inner}²" if "^" not in arg.name else f"({inner})²"
        return f"({inner})²"

    def _print_Diag(self, expr: Diag) -> str:
        return f"diag({self._print(expr.vector)})"

    def _print_JacobianSymbol(self, expr: JacobianSymbol) -> str:
        return f"∂{self._print(expr.numerator)}/∂{self._print(expr.denominator)}"

    def _print_Identity(self, expr: sp.Identity) -> str:
        return "I"

    def _print_ZeroMatrix(self, expr: sp.ZeroMatrix) -> str:
        return "0"

    def _print_Transpose(self, expr: sp.Transpose) -> str:
        inner = self._print(expr.arg)
        return f"{inner}ᵀ" if isinstance(expr.arg, sp.MatrixSymbol) else f"({inner})ᵀ"

    def _print_BPTTSum(self, expr: BPTTSum) -> str:
        term, index, lower, upper = expr.args
        return f"Σ_{{{index}={lower}..{upper}}} {self._print(term)}"

    def _print_OrderedProduct(self, expr: OrderedProduct) -> str:
        factor, index, lower, upper = expr.args
        return f"∏_{{{lower}<{index}≤{upper}}} {self._print(factor)}"

    def _print_BlockMatrix(self, expr: sp.BlockMatrix) -> str:
        rows = []
        for i in range(expr.blocks.rows):
            rows.append(" | ".join(self._print(expr.blocks[i, j]) for j in range(expr.blocks.cols)))
        return "[ " + "\n  ".join(rows) + " ]"

    def _print_Equality(self, expr: sp.Equality) -> str:
        return f"{self._print(expr.lhs)} = {self._print(expr.rhs)}"


def text(expr: object) -> str:
    """Plain Unicode text in the lecture's notation (for terminals)."""
    return GradproofTextPrinter().doprint(expr)
