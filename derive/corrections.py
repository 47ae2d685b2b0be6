r"""Where the lecture is imprecise, with the precise statement and the reason (docs/math.md §1).

Each :class:`Imprecision` carries the lecture's claim (as the lecture writes it), the precise
statement as SymPy, the reason in words, and an exact *witness* computed here with SymPy: the
numbers a report prints beside the claim are derived, never pasted.

>>> from gradproof.derive.corrections import imprecisions
>>> [i.key for i in imprecisions()]
['eigenvalue-vs-singular-value', 'sigmoid-threshold', 'wrong-factoring']
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import sympy as sp

from .activations import gamma
from .algebra import ActPrime, Diag, OrderedProduct, latex
from .cells import symbols
from .theorem import SigmaMax, SpectralRadius

__all__ = ["Imprecision", "imprecisions", "transient_growth_norms", "factoring_witness"]


@dataclass(frozen=True)
class Imprecision:
    """One imprecise statement of the lecture and its correction.

    Attributes
    ----------
    key : a short identifier.
    title : a heading.
    lecture : the lecture's words (plain text, quoted).
    lecture_math : the lecture's formula as SymPy (None if it states no formula).
    precise : the precise statement as SymPy.
    reason : why, in one or two sentences.
    witness : exact numbers that show the difference (name -> SymPy value).
    """

    key: str
    title: str
    lecture: str
    lecture_math: sp.Basic | None
    precise: sp.Basic
    reason: str
    witness: dict = field(default_factory=dict)

    def latex(self) -> str:
        return latex(self.precise)

    def _latex(self, printer: object) -> str:
        return self.latex()

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex()}$"


def transient_growth_norms(W: sp.Matrix, ks: tuple[int, ...]) -> dict[int, sp.Expr]:
    """‖W^k‖₂ exactly: the square root of the largest eigenvalue of (W^k)ᵀ W^k."""
    out = {}
    for k in ks:
        P = W**k
        G = P.T * P
        out[k] = sp.sqrt(max(G.eigenvals(), key=lambda e: sp.N(e, 50)))
    return out


def factoring_witness() -> dict[str, sp.Matrix]:
    """Exact 2×2 matrices with D_2 W D_1 W ≠ W² D_2 D_1: the lecture's factoring fails."""
    W = sp.Matrix([[0, 1], [1, 0]])
    D1 = sp.diag(1, sp.Rational(1, 2))
    D2 = sp.diag(sp.Rational(1, 3), 1)
    return {"W": W, "D1": D1, "D2": D2, "ordered": D2 * W * D1 * W, "lecture": W**2 * D2 * D1}


@lru_cache(maxsize=None)
def imprecisions() -> tuple[Imprecision, ...]:
    """The three imprecisions of docs/math.md §1, in the order the report prints them."""
    W = sp.MatrixSymbol("W_h", symbols.h.shape[0], symbols.h.shape[0])
    g_sig, g_tanh = gamma("sigmoid"), gamma("tanh")

    Wt = sp.Matrix([[sp.Rational(9, 10), 5], [0, sp.Rational(9, 10)]])
    ks = (1, 2, 5, 10, 20, 50, 100)
    rho = max(abs(e) for e in Wt.eigenvals())
    first = Imprecision(
        key="eigenvalue-vs-singular-value",
        title="Largest eigenvalue or largest singular value?",
        lecture="if the largest eigenvalue of W_h is less than 1, the gradient will shrink exponentially",
        lecture_math=sp.Lt(SpectralRadius(W), 1),
        precise=sp.Implies(sp.Lt(SigmaMax(W), 1 / sp.Symbol(r"\gamma", positive=True)),
                           sp.Symbol(r"\text{vanishing}")),  # fmt: skip
        reason=(
            "The proof bounds each step by the spectral norm $\\|W_h\\|_2 = \\sigma_{\\max}(W_h)$, the "
            "largest singular value. The spectral radius $\\rho(W_h) \\le \\sigma_{\\max}(W_h)$, with equality "
            "for normal $W_h$ and for some others (such as $\\operatorname{diag}(2) \\oplus "
            "\\left[\\begin{smallmatrix} 0 & 1 \\\\ 0 & 0 \\end{smallmatrix}\\right]$), and it governs "
            "$\\|W_h^k\\|$ only as $k \\to \\infty$: a non-normal $W_h$ "
            "with $\\rho < 1$ can grow for many steps first."
        ),
        witness={
            "W": Wt,
            "spectral_radius": rho,
            "sigma_max": transient_growth_norms(Wt, (1,))[1],
            "norms": transient_growth_norms(Wt, ks),
        },
    )
    second = Imprecision(
        key="sigmoid-threshold",
        title="The threshold for the sigmoid is 4, not 1",
        lecture="the bound is 1 because we have sigmoid nonlinearity",
        lecture_math=sp.Lt(SigmaMax(W), 1),
        precise=sp.Implies(sp.Lt(SigmaMax(W), 1 / g_sig), sp.Symbol(r"\text{vanishing}")),
        reason=(
            f"For the sigmoid $\\gamma = \\sup \\sigma' = {sp.latex(g_sig)}$ (at 0), so the sufficient "
            f"condition is $\\sigma_{{\\max}}(W_h) < 1/\\gamma = {sp.latex(1 / g_sig)}$; the threshold 1 belongs "
            f"to tanh, whose $\\gamma = {sp.latex(g_tanh)}$."
        ),
        witness={"gamma_sigmoid": g_sig, "gamma_tanh": g_tanh, "threshold_sigmoid": 1 / g_sig,
                 "threshold_tanh": 1 / g_tanh},  # fmt: skip
    )
    t, i, j = sp.Symbol("t", integer=True), sp.Symbol("i", integer=True), sp.Symbol("j", integer=True)
    D = Diag(ActPrime("tanh", symbols.vector("z")))
    lecture_form = sp.MatMul(sp.MatPow(W, i - j), OrderedProduct(D, t, j, i))
    ordered = OrderedProduct(sp.MatMul(D, W), t, j, i)
    third = Imprecision(
        key="wrong-factoring",
        title="The product does not factor as $W_h^{i-j}$ times the diagonals",
        lecture="∂J/∂h^(j) = ∂J/∂h^(i) · W_h^(i−j) · ∏ diag(σ'(…))",
        lecture_math=lecture_form,
        precise=ordered,
        reason=(
            "$\\operatorname{diag}(\\sigma'(z^{(t)}))$ and $W_h$ do not commute, so the ordered product "
            "cannot be regrouped; the norm bound survives anyway, because submultiplicativity does not "
            "care about the order."
        ),
        witness=factoring_witness(),
    )
    return (first, second, third)
