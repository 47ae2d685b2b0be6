"""The report's appendix of exercises with worked solutions.

Each solution is computed by gradproof (derive for γ, the bound, the gate paths and the one-unit
chain; numeric for clipping) and printed from those objects; the value of each answer goes into
results.json under ``exercises`` and a test recomputes it independently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from .. import derive
from ..derive import latex
from ..derive.scalar import B, U, W, scalar_chain
from ..numeric import clip_by_norm, clip_by_value
from .sections import Context, _num

__all__ = ["Exercise", "exercises", "section_exercises"]


@dataclass(frozen=True)
class Exercise:
    """One exercise: its title, question and worked solution (LaTeX text), and the answer's value."""

    key: str
    title: str
    question: str
    solution: str
    value: float


def _gamma_exercise() -> Exercise:
    act = derive.activation("tanh(3*x)")
    g = derive.gamma(act)
    return Exercise(
        "gamma_tanh3x", r"$\gamma$ of a steeper activation",
        r"The activation $\sigma(x) = " + act.latex_of("x") + r"$ replaces $\tanh$ in a vanilla RNN. Find "
        r"$\gamma = \sup_x |\sigma'(x)|$ and the threshold on $\sigma_{\max}(W_h)$ below which the gradient "
        r"must vanish.",
        r"$\sigma'(x) = " + sp.latex(act.derivative) + r"$ is largest where $\tanh(3x) = 0$, at $x = 0$, so "
        r"$\gamma = " + sp.latex(g) + r"$ and vanishing is guaranteed for $\sigma_{\max}(W_h) < 1/\gamma = "
        + sp.latex(1 / g) + r"$, " + sp.latex(g / derive.gamma("tanh")) + r" times smaller than for $\tanh$.",
        float(g),
    )


def _sigmoid_exercise() -> Exercise:
    act = derive.activation("sigmoid")
    g = derive.gamma(act)
    y = sp.Symbol(r"\sigma", positive=True)
    through_output = sp.latex(act.output_derivative(y)) if act.output_derivative else sp.latex(act.derivative)
    return Exercise(
        "threshold_sigmoid", "The sigmoid threshold",
        r"The lecture says ``the bound is 1 because we have sigmoid nonlinearity''. For a logistic-sigmoid "
        r"RNN, up to which $\sigma_{\max}(W_h)$ is vanishing guaranteed?",
        r"$\sigma' = " + through_output + r"$ peaks at $x = 0$ with $\gamma = " + sp.latex(g) + r"$, so the theorem "
        r"needs $\sigma_{\max}(W_h) < 1/\gamma = " + sp.latex(1 / g) + r"$, not $1$.",
        float(1 / g),
    )


def _bound_exercise(sigma_max: sp.Rational = sp.Rational(9, 10), span: int = 20) -> Exercise:
    eta = derive.gamma("tanh") * sigma_max
    bound = eta**span
    return Exercise(
        "bound_tanh", "The bound for a given $\\sigma_{\\max}$",
        rf"A $\tanh$ RNN has $\sigma_{{\max}}(W_h) = {sp.latex(sigma_max)}$. Bound "
        rf"$\|\partial h^{{(T)}}/\partial h^{{(T-{span})}}\|_2$.",
        rf"$\eta = \gamma\,\sigma_{{\max}}(W_h) = {sp.latex(eta)}$ and the norm is at most "
        rf"$\eta^{{{span}}} = {_num(float(bound), 4)}$, whatever the inputs.",
        float(bound),
    )


def _lstm_exercise(forget: sp.Rational = sp.Rational(19, 20), span: int = 50) -> Exercise:
    d = derive.step_jacobian("lstm")
    key = next(k for k in d.blocks if all(str(v).startswith("c") for v in k))
    block = sp.Eq(derive.algebra.JacobianSymbol(*key), d.blocks[key], evaluate=False)
    value = forget**span
    return Exercise(
        "lstm_cell_path", "The LSTM cell path",
        rf"In an LSTM every forget gate stays at $f = {sp.latex(forget)}$ for {span} steps. How much of "
        r"$\partial c^{(T)}$ does the cell path alone carry back to $c^{(T-" + str(span) + r")}$?",
        r"The cell block of the step Jacobian (Section~\ref{sec:lstm}) is $" + latex(block) + r"$, so along the "
        rf"cell path the product is $\operatorname{{diag}}(f)^{{{span}}}$ with norm "
        rf"$\left({sp.latex(forget)}\right)^{{{span}}} = {_num(float(value), 4)}$, with no weight matrix and no "
        r"$\sigma'$ in it. With $f = 1$ it would be exactly $1$.",
        float(value),
    )


def _gru_exercise(u: sp.Rational = sp.Rational(1, 50), span: int = 100) -> Exercise:
    st = derive.pascanu_bound("gru").direct[0]
    value = (1 - u) ** span
    return Exercise(
        "gru_direct_path", "The GRU direct path",
        rf"In the lecture's GRU the update gate stays at $u = {sp.latex(u)}$ for {span} steps. What does the "
        r"direct path keep of the gradient over those steps?",
        r"The direct path of the step Jacobian is $" + latex(st.equation) + r"$, so over " + str(span)
        + rf" steps it is $(1 - u)^{{{span}}} = {_num(float(value), 4)}$: small $u$ keeps the state and "
        r"its gradient.",
        float(value),
    )


def _clipping_exercise() -> Exercise:
    g = np.array([3.0, 4.0])
    c = 1.0
    by_norm = np.asarray(clip_by_norm(g, c).grads)
    by_value = np.asarray(clip_by_value(g, c).grads)
    cos = float(by_value @ g / (np.linalg.norm(by_value) * np.linalg.norm(g)))
    vec = lambda v: "(" + ", ".join(f"{x:g}" for x in v) + ")"  # noqa: E731
    return Exercise(
        "clipping_cosine", "Norm versus value clipping",
        rf"Clip $g = {vec(g)}$ at $c = {c:g}$ by norm and by value. Which keeps the direction?",
        rf"Norm clipping gives $g\,c/\|g\| = {vec(by_norm)}$, the same direction; value clipping gives "
        rf"${vec(by_value)}$, at cosine ${_num(cos, 4)}$ from $g$ (Section~\ref{{sec:clipping}}).",
        cos,
    )


def _scalar_exercise(w: sp.Rational = sp.Rational(1, 2), span: int = 5) -> Exercise:
    ch = scalar_chain("tanh")
    brute, _ = ch.explicit_chain(span)
    sub = {W: w, U: 0, B: 0, sp.Symbol("h_0", real=True): 0}
    value = sp.nsimplify(brute.subs(sub))
    return Exercise(
        "scalar_rest", "The one-unit chain at rest",
        rf"The one-unit $\tanh$ RNN of Section~\ref{{sec:scalar}} has $w = {sp.latex(w)}$, $u = b = 0$ and "
        rf"starts at $h^{{(0)}} = 0$. Compute $\partial h^{{({span})}}/\partial h^{{(0)}}$.",
        r"Every $z^{(k)} = 0$, where $\tanh'(0) = \gamma = 1$, so $" + latex(ch.product) + r"$ gives $w^{"
        + str(span) + r"} = " + sp.latex(value) + r"$ (differentiating the " + str(span) + r"-fold composition "
        r"directly gives the same).",
        float(value),
    )


def exercises() -> tuple[Exercise, ...]:
    """The appendix's exercises, each solved by gradproof."""
    return (_scalar_exercise(), _gamma_exercise(), _sigmoid_exercise(), _bound_exercise(), _lstm_exercise(),
            _gru_exercise(), _clipping_exercise())


def section_exercises(ctx: Context) -> tuple[dict, dict]:
    """The appendix: each exercise, then its worked solution."""
    blocks: list[dict] = [{"kind": "text", "text": (
        "Each answer below was computed by gradproof (\\texttt{derive} or \\texttt{numeric}) and printed from "
        "the objects; the values are in \\texttt{results.json} under \\texttt{exercises}."
    )}]
    results: dict[str, Any] = {}
    for i, ex in enumerate(exercises(), start=1):
        blocks.append({"kind": "text", "text": rf"\paragraph{{Exercise {i}: {ex.title}.}} {ex.question}"})
        blocks.append({"kind": "text", "text": rf"\emph{{Solution.}} {ex.solution}"})
        results[ex.key] = ex.value
    return {"title": "Exercises with solutions", "label": "sec:exercises", "blocks": blocks}, results
