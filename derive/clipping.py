"""Gradient clipping, stated symbolically (docs/math.md §2; Pascanu, Mikolov, Bengio 2013, Algorithm 1).

Norm clipping rescales the whole gradient (all parameters together) when its norm reaches the
threshold θ:

.. math::

    \\hat g = \\begin{cases} g & \\lVert g \\rVert < \\theta \\\\
                             \\dfrac{\\theta}{\\lVert g \\rVert}\\, g & \\text{otherwise,} \\end{cases}

i.e. ĝ = s g with the positive scalar s = min(1, θ/‖g‖): the direction is kept and
‖ĝ‖ = min(‖g‖, θ). PyTorch's ``clip_grad_norm_`` uses s = min(1, θ/(‖g‖ + ε)), ε = 10⁻⁶.
Value clipping acts on every component on its own, ĝ_i = max(−c, min(c, g_i)), and so in general
turns the gradient.

The numeric layer (``numeric.clipping``) compiles :attr:`NormClipping.scale` and
:attr:`NormClipping.torch_scale` with ``lambdify``; nothing here imports numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy
from sympy import Eq, Max, Min, Piecewise, Symbol

__all__ = ["Norm", "NormClipping", "ValueClipping", "ClippingRules", "clipping_rules"]


class Norm(sympy.Function):
    """‖g‖, the Euclidean norm of the whole gradient, as an opaque positive scalar.

    Printed as ``\\left\\lVert g \\right\\rVert``. (Positive: a zero gradient is never clipped,
    so the case ‖g‖ = 0 never reaches θ/‖g‖.)
    """

    is_real = True
    is_positive = True

    def _latex(self, printer: sympy.printing.latex.LatexPrinter) -> str:
        return r"\left\lVert %s \right\rVert" % printer._print(self.args[0])

    def _sympystr(self, printer: sympy.printing.str.StrPrinter) -> str:
        return "||%s||" % printer._print(self.args[0])


class _LatexMixin:
    """``latex()``, the printer hook (the rule's equation) and Jupyter's ``_repr_latex_``."""

    def _latex(self, printer: sympy.printing.latex.LatexPrinter) -> str:
        return printer._print(self.equation)

    def latex(self) -> str:
        """LaTeX of the rule (``sympy.latex(self)`` gives the same)."""
        return sympy.latex(self)

    def _repr_latex_(self) -> str:
        return "$\\displaystyle " + self.latex() + "$"


@dataclass(frozen=True)
class NormClipping(_LatexMixin):
    """Norm clipping (Pascanu et al. 2013, Algorithm 1) as SymPy expressions.

    Attributes
    ----------
    gradient : Symbol
        g, the gradient of all parameters stacked into one vector (a scalar symbol standing for
        the vector; the rule only multiplies it by a scalar).
    threshold : Symbol
        θ > 0.
    epsilon : Symbol
        ε ≥ 0 of PyTorch's variant.
    clipped : Symbol
        ĝ.

    Examples
    --------
    >>> rule = NormClipping()
    >>> rule.scale
    Piecewise((1, theta > ||g||), (theta/||g||, True))
    """

    gradient: Symbol = field(default_factory=lambda: Symbol("g"))
    threshold: Symbol = field(default_factory=lambda: Symbol("theta", positive=True))
    epsilon: Symbol = field(default_factory=lambda: Symbol("epsilon", nonnegative=True))
    clipped: Symbol = field(default_factory=lambda: Symbol("ghat"))

    @property
    def norm(self) -> sympy.Expr:
        """‖g‖."""
        return Norm(self.gradient)

    @property
    def condition(self) -> sympy.Basic:
        """‖g‖ < θ: the gradient is left alone."""
        return self.norm < self.threshold

    @property
    def rule(self) -> Piecewise:
        """ĝ = g if ‖g‖ < θ, else θ g / ‖g‖."""
        g, theta = self.gradient, self.threshold
        return Piecewise((g, self.condition), (theta * g / self.norm, True))

    @property
    def scale(self) -> Piecewise:
        """s with ĝ = s g: 1 if ‖g‖ < θ, else θ/‖g‖ (a positive scalar)."""
        return Piecewise((sympy.Integer(1), self.condition), (self.threshold / self.norm, True))

    @property
    def clipped_norm(self) -> Piecewise:
        """‖ĝ‖ = s ‖g‖ (s > 0): ‖g‖ below the threshold, θ at or above it."""
        return sympy.piecewise_fold(self.scale * self.norm)

    @property
    def torch_scale(self) -> sympy.Expr:
        """PyTorch ``clip_grad_norm_``: s = min(1, θ/(‖g‖ + ε))."""
        return Min(sympy.Integer(1), self.threshold / (self.norm + self.epsilon))

    @property
    def equation(self) -> Eq:
        """ĝ = rule."""
        return Eq(self.clipped, self.rule, evaluate=False)



@dataclass(frozen=True)
class ValueClipping(_LatexMixin):
    """Value (element-wise) clipping: every component g_i is clamped to [−c, c] on its own.

    Attributes
    ----------
    component : Symbol
        g_i, one real component of the gradient.
    limit : Symbol
        c > 0.
    clipped : Symbol
        ĝ_i.

    Examples
    --------
    >>> ValueClipping().rule_minmax
    Max(-c, Min(c, g_i))
    """

    component: Symbol = field(default_factory=lambda: Symbol("g_i", real=True))
    limit: Symbol = field(default_factory=lambda: Symbol("c", positive=True))
    clipped: Symbol = field(default_factory=lambda: Symbol("ghat_i"))

    @property
    def rule(self) -> Piecewise:
        """ĝ_i = −c if g_i < −c, c if g_i > c, g_i otherwise."""
        gi, c = self.component, self.limit
        return Piecewise((-c, gi < -c), (c, gi > c), (gi, True))

    @property
    def rule_minmax(self) -> sympy.Expr:
        """The same rule as max(−c, min(c, g_i))."""
        return Max(-self.limit, Min(self.limit, self.component))

    @property
    def equation(self) -> Eq:
        """ĝ_i = rule."""
        return Eq(self.clipped, self.rule, evaluate=False)



@dataclass(frozen=True)
class ClippingRules(_LatexMixin):
    """Both clipping rules of docs/math.md §2, for one report section or notebook cell."""

    norm: NormClipping = field(default_factory=NormClipping)
    value: ValueClipping = field(default_factory=ValueClipping)

    def _latex(self, printer: sympy.printing.latex.LatexPrinter) -> str:
        return (
            r"\begin{gathered}"
            + printer._print(self.norm.equation)
            + r" \\ "
            + printer._print(self.value.equation)
            + r"\end{gathered}"
        )


def clipping_rules() -> ClippingRules:
    """The norm and value clipping rules.

    Examples
    --------
    >>> r"\\lVert g \\right\\rVert" in clipping_rules().latex()
    True
    """
    return ClippingRules()
