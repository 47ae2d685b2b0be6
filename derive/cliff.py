"""The "cliff": a one-unit recurrent network whose loss surface has walls (docs/math.md §2).

Pascanu, Mikolov and Bengio (2013, §3) show the loss of the single unit

.. math::

    x_t = w\\,\\sigma(x_{t-1}) + b, \\qquad x_0 = \\tfrac12, \\qquad
    E = \\bigl(\\sigma(x_N) - \\tfrac{7}{10}\\bigr)^2, \\quad N = 50,

as a surface over (w, b) with narrow walls where the gradient explodes. This module derives, with
scalar ``sympy.diff``, the one-step derivatives and the BPTT sum

.. math::

    \\frac{\\partial E}{\\partial w} = \\frac{\\partial E}{\\partial x_N}
    \\sum_{t=1}^{N} \\Bigl(\\prod_{s=t+1}^{N} \\frac{\\partial x_s}{\\partial x_{s-1}}\\Bigr)
    \\frac{\\partial x_t}{\\partial w}.

σ and σ' appear as the opaque functions :class:`Sigma` and :class:`SigmaPrime` (printed σ, σ');
:meth:`CliffModel.concrete` replaces them by the sigmoid of :mod:`derive.activations`, and
``numeric.cliff`` compiles the expressions with ``lambdify``.
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy
from sympy import Eq, Function, IndexedBase, Lambda, Product, Rational, Sum, Symbol

from .errors import GradproofError

__all__ = [
    "Sigma",
    "SigmaPrime",
    "CliffModel",
    "cliff_model",
    "w",
    "b",
    "x_prev",
    "x_N",
    "x",
]

# --------------------------------------------------------------------------- symbols

w = Symbol("w", real=True)
b = Symbol("b", real=True)
x_prev = Symbol("x_{t-1}", real=True)
x_N = Symbol("x_N", real=True)
x = IndexedBase("x", real=True)
_t = Symbol("t", integer=True, positive=True)
_s = Symbol("s", integer=True, positive=True)


class Sigma(Function):
    """σ, the unit's activation, kept opaque so formulas read σ(x_{t-1}).

    d/dx σ(x) = σ'(x) (:class:`SigmaPrime`); :meth:`CliffModel.concrete` substitutes the
    sigmoid and its derivative derived in :mod:`derive.activations`.
    """

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sympy.Expr:
        return SigmaPrime(self.args[0])

    def _latex(self, printer: sympy.printing.latex.LatexPrinter, exp: str | None = None) -> str:
        base = r"\sigma\left(%s\right)" % printer._print(self.args[0])
        return base if exp is None else r"%s^{%s}" % (base, exp)


class SigmaPrime(Function):
    """σ', the derivative of :class:`Sigma` (opaque)."""

    nargs = 1

    def _latex(self, printer: sympy.printing.latex.LatexPrinter, exp: str | None = None) -> str:
        base = r"\sigma'\left(%s\right)" % printer._print(self.args[0])
        return base if exp is None else r"%s^{%s}" % (base, exp)


class _Display(Symbol):
    """A left-hand side such as ∂x_t/∂w, printed from its stored LaTeX."""

    def __new__(cls, name: str, tex: str) -> _Display:
        obj = super().__new__(cls, name)
        obj._tex = tex
        return obj

    def __getnewargs_ex__(self):  # pragma: no cover - pickling support
        return ((self.name, self._tex), {})

    def _latex(self, printer: sympy.printing.latex.LatexPrinter) -> str:
        return self._tex


def _partial(num: str, den: str) -> _Display:
    return _Display(f"d{num}/d{den}", r"\frac{\partial %s}{\partial %s}" % (num, den))


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class CliffModel:
    """The one-unit model of the cliff and its derivatives, as SymPy expressions.

    Parameters
    ----------
    steps : int
        N, the number of recurrent steps (50 in the lecture).
    x0 : Rational
        Initial state (1/2).
    target : Rational
        Target of σ(x_N) (7/10).
    activation : str
        σ, by name for :func:`derive.activations.activation` (``"sigmoid"``).

    All results are properties, derived on demand from :attr:`step` and :attr:`loss` with
    ``sympy.diff``.

    Examples
    --------
    >>> m = CliffModel()
    >>> m.dx_dxprev
    w*SigmaPrime(x_{t-1})
    >>> m.dx_dw, m.dx_db
    (Sigma(x_{t-1}), 1)
    """

    steps: int = 50
    x0: sympy.Rational = Rational(1, 2)
    target: sympy.Rational = Rational(7, 10)
    activation: str = "sigmoid"

    def __post_init__(self) -> None:
        if isinstance(self.steps, bool) or int(self.steps) != self.steps or self.steps < 1:
            raise GradproofError(f"expected steps as an integer >= 1, got {self.steps!r}")
        object.__setattr__(self, "steps", int(self.steps))
        object.__setattr__(self, "x0", sympy.nsimplify(self.x0))
        object.__setattr__(self, "target", sympy.nsimplify(self.target))

    # ---- the model
    @property
    def step(self) -> sympy.Expr:
        """x_t = w σ(x_{t-1}) + b, as an expression in x_{t-1}, w, b."""
        return w * Sigma(x_prev) + b

    @property
    def loss(self) -> sympy.Expr:
        """E = (σ(x_N) − target)², as an expression in x_N."""
        return (Sigma(x_N) - self.target) ** 2

    # ---- one-step derivatives (scalar diff)
    @property
    def dx_dxprev(self) -> sympy.Expr:
        """∂x_t/∂x_{t-1} = w σ'(x_{t-1})."""
        return sympy.diff(self.step, x_prev)

    @property
    def dx_dw(self) -> sympy.Expr:
        """∂x_t/∂w = σ(x_{t-1})."""
        return sympy.diff(self.step, w)

    @property
    def dx_db(self) -> sympy.Expr:
        """∂x_t/∂b = 1."""
        return sympy.diff(self.step, b)

    @property
    def dE_dxN(self) -> sympy.Expr:
        """∂E/∂x_N = 2 (σ(x_N) − target) σ'(x_N)."""
        return sympy.diff(self.loss, x_N)

    # ---- BPTT
    def _at(self, expr: sympy.Expr, index: sympy.Expr) -> sympy.Expr:
        return expr.subs(x_prev, x[index])

    def _bptt(self, local: sympy.Expr) -> sympy.Expr:
        N = self.steps
        chain = Product(self._at(self.dx_dxprev, _s - 1), (_s, _t + 1, N))
        return self.dE_dxN.subs(x_N, x[N]) * Sum(chain * self._at(local, _t - 1), (_t, 1, N))

    @property
    def grad_w(self) -> sympy.Expr:
        """∂E/∂w = ∂E/∂x_N Σ_{t=1..N} (∏_{s=t+1..N} w σ'(x_{s-1})) σ(x_{t-1}), in x[0..N]."""
        return self._bptt(self.dx_dw)

    @property
    def grad_b(self) -> sympy.Expr:
        """∂E/∂b = ∂E/∂x_N Σ_{t=1..N} ∏_{s=t+1..N} w σ'(x_{s-1})."""
        return self._bptt(self.dx_db)

    # ---- concrete forms
    def concrete(self, expr: sympy.Expr) -> sympy.Expr:
        """Replace σ and σ' by the activation's expression and its derived derivative."""
        from .activations import X, activation

        act = activation(self.activation)
        return expr.replace(Sigma, Lambda(X, act.expr)).replace(
            SigmaPrime, Lambda(X, act.derivative)
        )

    def trajectory(self) -> list[sympy.Expr]:
        """[x_0, x_1, ..., x_N] as explicit expressions in w and b (opaque σ)."""
        xs: list[sympy.Expr] = [self.x0]
        for _ in range(self.steps):
            xs.append(self.step.subs(x_prev, xs[-1]))
        return xs

    def unrolled_loss(self) -> sympy.Expr:
        """E(w, b) written out through all N steps (opaque σ; use for small N)."""
        return self.loss.subs(x_N, self.trajectory()[-1])

    def evaluate_bptt(self, expr: sympy.Expr) -> sympy.Expr:
        """Expand a BPTT sum (:attr:`grad_w`, :attr:`grad_b`) and insert x_t(w, b)."""
        xs = self.trajectory()
        expanded = expr.doit()
        return expanded.xreplace({x[i]: xs[i] for i in range(self.steps + 1)})

    # ---- printing
    @property
    def equations(self) -> tuple[Eq, ...]:
        """The model and its derivatives as equations, in reading order."""
        N = self.steps
        return (
            Eq(Symbol("x_t"), self.step, evaluate=False),
            Eq(x[0], self.x0, evaluate=False),
            Eq(Symbol("E"), self.loss.subs(x_N, x[N]), evaluate=False),
            Eq(_partial("x_t", "x_{t-1}"), self.dx_dxprev, evaluate=False),
            Eq(_partial("x_t", "w"), self.dx_dw, evaluate=False),
            Eq(_partial("x_t", "b"), self.dx_db, evaluate=False),
            Eq(_partial("E", f"x_{{{N}}}"), self.dE_dxN.subs(x_N, x[N]), evaluate=False),
            Eq(_partial("E", "w"), self.grad_w, evaluate=False),
            Eq(_partial("E", "b"), self.grad_b, evaluate=False),
        )

    def _latex(self, printer: sympy.printing.latex.LatexPrinter) -> str:
        lines = []
        for eq in self.equations:
            lines.append(printer._print(eq.lhs) + " &= " + printer._print(eq.rhs))
        return r"\begin{aligned}" + r" \\ ".join(lines) + r"\end{aligned}"

    def latex(self) -> str:
        """The model and its derivatives as one LaTeX ``aligned`` block."""
        return sympy.latex(self)

    def _repr_latex_(self) -> str:
        return "$\\displaystyle " + self.latex() + "$"


def cliff_model(*, steps: int = 50, x0: sympy.Rational = Rational(1, 2),
                target: sympy.Rational = Rational(7, 10)) -> CliffModel:
    """The lecture's cliff model (docs/math.md §2): N = 50, x_0 = 1/2, target 7/10, sigmoid."""
    return CliffModel(steps=steps, x0=x0, target=target)
