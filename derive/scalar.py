r"""The one-unit RNN, the chain rule's product before any matrix: docs/math.md §1 at n = 1.

For hidden size n = 1 and input size m = 1 the vanilla RNN is the scalar recurrence

    z^{(k)} = w h^{(k-1)} + u x^{(k)} + b,        h^{(k)} = σ(z^{(k)}),

its step derivative is ∂h^{(k)}/∂h^{(k-1)} = w σ'(z^{(k)}), and the chain rule gives

    ∂h^{(T)}/∂h^{(t)} = ∏_{k=t+1}^{T} w σ'(z^{(k)}),    |∂h^{(T)}/∂h^{(t)}| ≤ (γ |w|)^{T-t}

with γ = sup|σ'| (Bengio, Simard and Frasconi 1994; Pascanu, Mikolov and Bengio 2013, whose
matrix theorem this is at n = 1). Nothing is typed: :func:`scalar_chain` takes the explicit 1 × 1
cell of :class:`derive.RNN` (the same object the matrix derivation checks), renames its symbols to
w, u, b and differentiates it with SymPy.

>>> from gradproof.derive.scalar import scalar_chain
>>> ch = scalar_chain("tanh")
>>> ch.gamma, ch.threshold
(1, 1)
>>> print(ch.step.rhs)
w*tanh'(Z(k))
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import sympy as sp

from .activations import X, Activation, activation
from .cells import RNN
from .equality import difference_is_zero
from .errors import GradproofError

__all__ = ["ScalarChain", "scalar_chain", "W", "U", "B", "K", "T", "t"]

W = sp.Symbol("w", real=True)
U = sp.Symbol("u", real=True)
B = sp.Symbol("b", real=True)
K = sp.Symbol("k", integer=True)
T = sp.Symbol("T", integer=True, positive=True)
t = sp.Symbol("t", integer=True, nonnegative=True)


class _Seq(sp.Function):
    """A quantity indexed by the step, printed with the step as a parenthesised superscript."""

    is_real = True
    base = ""

    def _latex(self, printer: Any) -> str:
        k = self.args[0]
        if isinstance(k, sp.Add):  # k - 1, not -1 + k
            k = sp.latex(k, order="none")
        else:
            k = printer._print(k)
        return f"{self.base}^{{({k})}}"


class Z(_Seq):
    """The pre-activation z^{(k)} of step k."""

    base = "z"


class H(_Seq):
    """The state h^{(k)} of step k."""

    base = "h"


class Xs(_Seq):
    """The input x^{(k)} of step k."""

    base = "x"


@lru_cache(maxsize=None)
def _applied(name: str, prime: bool) -> type[sp.Function]:
    """A one-argument SymPy function printed as σ(·) or σ'(·) of the activation ``name``."""
    act = activation(name)

    def _latex(self: sp.Function, printer: Any) -> str:
        arg = printer._print(self.args[0])
        return act.latex_prime_of(arg) if prime else act.latex_of(arg)

    label = "".join(ch if ch.isalnum() else "_" for ch in act.name)
    return type(f"{label}'" if prime else label, (sp.Function,), {"nargs": 1, "is_real": True, "_latex": _latex})


@dataclass(frozen=True)
class ScalarChain:
    r"""The one-unit RNN and its backpropagated product (all fields SymPy objects).

    Attributes
    ----------
    activation : the activation σ.
    definitions : (z^{(k)} = w h^{(k-1)} + u x^{(k)} + b,  h^{(k)} = σ(z^{(k)})).
    step : ∂h^{(k)}/∂h^{(k-1)} = w σ'(z^{(k)}), differentiated from the explicit 1 × 1 cell.
    product : ∂h^{(T)}/∂h^{(t)} = ∏_{k=t+1}^{T} w σ'(z^{(k)}).
    bound : |∂h^{(T)}/∂h^{(t)}| ≤ (γ |w|)^{T-t}.
    gamma : γ = sup_x |σ'(x)|; threshold : 1/γ, the |w| below which the product must vanish.
    """

    activation: Activation
    definitions: tuple[sp.Equality, sp.Equality]
    step: sp.Equality
    product: sp.Equality
    bound: sp.Rel
    gamma: sp.Expr
    threshold: sp.Expr

    def slope(self, arg: sp.Expr) -> sp.Expr:
        """σ'(arg) written out (``activation.derivative`` at ``arg``)."""
        return self.activation.derivative.subs(X, arg)

    def explicit_chain(self, span: int) -> tuple[sp.Expr, sp.Expr]:
        """(∂h^{(span)}/∂h^{(0)} by brute force, the product formula at the same pre-activations).

        The brute force composes the explicit cell ``span`` times from h^{(0)} with inputs
        x^{(1)} … x^{(span)} and differentiates the composition with SymPy; the formula is
        :attr:`product` with t = 0, T = ``span`` and each z^{(k)} replaced by the composition's
        pre-activation. The two are equal (tested).
        """
        if not isinstance(span, int) or span < 1:
            raise GradproofError(f"explicit_chain: expected a span >= 1 (an int), got {span!r}")
        sigma = sp.Lambda(X, self.activation.expr)
        h0 = sp.Symbol("h_0", real=True)
        state, pres = h0, []
        for k in range(1, span + 1):
            pre = W * state + U * sp.Symbol(f"x_{k}", real=True) + B
            pres.append(pre)
            state = sigma(pre)
        brute = sp.diff(state, h0)
        formula = sp.Mul(*[W * self.slope(p) for p in pres])
        return brute, formula


def _lhs(top: sp.Expr, bottom: sp.Expr) -> sp.Symbol:
    return sp.Symbol(rf"\frac{{\partial h^{{({sp.latex(top)})}}}}{{\partial h^{{({sp.latex(bottom)})}}}}", real=True)


@lru_cache(maxsize=None)
def _scalar_chain(act: Activation) -> ScalarChain:
    ex = RNN(act).explicit(1, 1)
    k_prev = sp.Add(K, -1, evaluate=False)
    rename = {ex.parameters["W_h"][0]: W, ex.parameters["W_x"][0]: U, ex.parameters["b"][0]: B}
    h_prev, x_k = sp.Symbol("h_prev", real=True), sp.Symbol("x_k", real=True)
    rename.update({ex.state[0]: h_prev, ex.x[0]: x_k})
    next_h = ex.next_state[0].xreplace(rename)
    pre = W * h_prev + U * x_k + B
    if not difference_is_zero(sp.Matrix([next_h]), sp.Matrix([act.expr.subs(X, pre)])):
        raise GradproofError(f"the explicit 1 x 1 cell of {act.name} is not sigma(w h + u x + b)")  # pragma: no cover
    derivative = sp.diff(next_h, h_prev)
    if not difference_is_zero(sp.Matrix([derivative]), sp.Matrix([W * act.derivative.subs(X, pre)])):
        raise GradproofError(f"d h/d h_prev of the 1 x 1 {act.name} cell is not w sigma'(z)")  # pragma: no cover
    sigma, slope = _applied(act.name, False), _applied(act.name, True)
    definitions = (
        sp.Eq(Z(K), sp.Add(W * H(k_prev), U * Xs(K), B, evaluate=False), evaluate=False),
        sp.Eq(H(K), sigma(Z(K)), evaluate=False),
    )
    step = sp.Eq(_lhs(K, k_prev), W * slope(Z(K)), evaluate=False)
    product = sp.Eq(_lhs(T, t), sp.Product(W * slope(Z(K)), (K, t + 1, T)), evaluate=False)
    g = act.gamma
    bound = sp.Le(sp.Abs(_lhs(T, t)), (g * sp.Abs(W)) ** (T - t), evaluate=False)
    return ScalarChain(act, definitions, step, product, bound, g, 1 / g)


def scalar_chain(spec: Activation | str = "tanh") -> ScalarChain:
    r"""The one-unit RNN h^{(k)} = σ(w h^{(k-1)} + u x^{(k)} + b) and ∏_{k=t+1}^{T} w σ'(z^{(k)}).

    Parameters
    ----------
    spec : an activation name, user expression or :class:`Activation` (as :func:`activation`).

    Returns
    -------
    ScalarChain
        Derived from the explicit 1 × 1 :class:`RNN` cell; raises :class:`GradproofError` for an
        unknown activation or one without a finite γ.
    """
    return _scalar_chain(activation(spec))
