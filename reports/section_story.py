"""The report told as a story: motivation and takeaways, the one-unit warm-up, why vanishing
matters, and the closing table of practical takeaways.

Layout only: equations are ``derive.latex`` of the objects of :mod:`derive.scalar` and friends,
numbers come from :mod:`numeric` (``gradient_profile``, ``input_sensitivity``) and every number
a sentence or box shows is returned for results.json. Each ``section_*`` returns
``(section, results)`` like :mod:`reports.sections`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..derive import latex
from ..derive.scalar import scalar_chain
from ..numeric import StackedModel, gradient_profile, input_sensitivity, random_sequence
from .sections import Context, _num

__all__ = [
    "MOTIVATION_MARK",
    "motivation",
    "takeaway",
    "section_scalar",
    "section_why",
    "section_summary",
    "PRACTICAL",
    "Practical",
]

#: a LaTeX comment that opens every section's motivation paragraph (invisible; tests look for it)
MOTIVATION_MARK = "% gradproof: motivation"


def motivation(text: str) -> dict:
    """The paragraph that opens a section: why the reader should care, which question it answers."""
    return {"kind": "text", "text": f"{MOTIVATION_MARK}\n{text}"}


def takeaway(text: str) -> dict:
    """The box that closes a section (the template's ``gptakeaway`` environment, one style)."""
    return {"kind": "text", "text": "\\begin{gptakeaway}\n" + text + "\n\\end{gptakeaway}"}


def _log10(x: float) -> str:
    return f"10^{{{x:.1f}}}"


# ----------------------------------------------------------------------------------------------
# A one-unit warm-up
# ----------------------------------------------------------------------------------------------

SCALAR_WEIGHTS: tuple[float, ...] = (0.5, 0.9, 1.1, 2.0)
SCALAR_STEPS = 30


def scalar_products(*, weights: tuple[float, ...] = SCALAR_WEIGHTS, steps: int = SCALAR_STEPS,
                    seed: int = 0) -> dict[str, Any]:
    """|∂h^{(T)}/∂h^{(0)}| of the one-unit tanh RNN for each w, from :func:`numeric.gradient_profile`.

    Two runs per w, both with u = 1, b = 0, h^{(0)} = 0: at rest (x = 0, so z^{(k)} = 0 and
    σ'(z) = γ: the product is w^T) and driven by inputs ``xs: (steps, 1)`` drawn with ``seed``.
    Returns log10 values keyed by ``str(w)``.
    """
    xs_driven = random_sequence(steps, 1, seed=seed + 1)
    xs_rest = np.zeros((steps, 1))
    out: dict[str, Any] = {"steps": steps, "u": 1.0, "b": 0.0, "rows": {}}
    for w in weights:
        p = {"W_h": np.array([[w]]), "W_x": np.array([[1.0]]), "b": np.array([0.0])}
        row = {}
        for label, xs in (("rest", xs_rest), ("driven", xs_driven)):
            prof = gradient_profile("rnn-tanh", p, xs)
            row[f"log10_{label}"] = float(prof.log_spectral[0] / np.log(10))
        row["log10_bound"] = float(steps * np.log10(abs(w)))  # (γ|w|)^T with γ = 1 for tanh
        out["rows"][str(w)] = row
    return out


def section_scalar(ctx: Context) -> tuple[dict, dict]:
    """The one-unit RNN: ∂h^{(T)}/∂h^{(t)} = ∏ w σ'(z^{(k)}) before the matrix case."""
    ch = scalar_chain("tanh")
    data = scalar_products(seed=ctx.seed)
    rows = data["rows"]
    T = data["steps"]
    threshold = float(ch.threshold)
    below = [w for w in rows if abs(float(w)) < threshold]
    above = [w for w in rows if abs(float(w)) > threshold]
    grew = [w for w in above if rows[w]["log10_driven"] > 0]
    blocks: list[dict] = [
        motivation(
            "Everything this report says about vanishing and exploding gradients already happens with a "
            "single hidden unit, where no matrix hides it. This warm-up answers one question: what does "
            "the chain rule multiply when a gradient travels back in time, and when must that product "
            r"shrink? With $n = 1$ the vanilla RNN of Section~\ref{sec:rnn} has a scalar weight $w$ on the "
            "state, $u$ on the input and a bias $b$:"
        ),
        {"kind": "align", "lines": [latex(e, order="none").replace(" = ", " &= ", 1) for e in ch.definitions]},
        {"kind": "text", "text": "One step back, the chain rule gives a number, not a matrix:"},
        {"kind": "equation", "math": latex(ch.step)},
        {"kind": "text", "text": (
            r"and from step $T$ back to step $t$ these numbers multiply, one per step in between "
            r"\citep{bengio1994learning}:"
        )},
        {"kind": "equation", "math": latex(ch.product)},
        {"kind": "text", "text": (
            r"Every factor has $|\sigma'| \le \gamma$ (here $\gamma = " + latex(ch.gamma) + r"$ for $\tanh$), so"
        )},
        {"kind": "equation", "math": latex(ch.bound)},
        {"kind": "text", "text": (
            r"If $|w| < 1/\gamma = " + latex(ch.threshold) + r"$ the product must vanish, geometrically in "
            r"$T - t$. If $|w| > 1/\gamma$ it may grow, but only while the units stay where "
            r"$\sigma'(z^{(k)})$ is close to $\gamma$. Table~\ref{tab:scalar} measures both cases over "
            rf"$T = {T}$ steps, with $u = 1$, $b = 0$, $h^{{(0)}} = 0$: at rest ($x^{{(k)}} = 0$, so every "
            r"$z^{(k)} = 0$ and $\sigma'(z^{(k)}) = \gamma$) and driven by random inputs."
        )},
        {"kind": "table", "label": "tab:scalar",
         "caption": (rf"$|\partial h^{{({T})}}/\partial h^{{(0)}}|$ of the one-unit $\tanh$ RNN, measured "
                     r"(\texttt{gradient\_profile}), against the bound $(\gamma|w|)^{T}$."),
         "columns": [r"$w$", r"$\gamma |w|$", r"bound $(\gamma|w|)^{T}$", r"at rest", r"driven by inputs"],
         "rows": [[f"${float(w):g}$", f"${float(w) * float(ch.gamma):g}$", f"${_log10(r['log10_bound'])}$",
                   f"${_log10(r['log10_rest'])}$", f"${_log10(r['log10_driven'])}$"] for w, r in rows.items()],
         "align": "rrrrr"},
    ]  # fmt: skip
    results = {**data, "gamma": str(ch.gamma), "threshold": threshold, "below": below, "above": above,
               "grew_when_driven": grew}  # fmt: skip
    at_rest_equal = all(abs(r["log10_rest"] - r["log10_bound"]) < 1e-9 for r in rows.values())
    results["rest_attains_bound"] = at_rest_equal
    w_hi = above[-1] if above else None
    text = (
        rf"With one unit, $\partial h^{{(T)}}/\partial h^{{(t)}}$ is a product of $T - t$ numbers "
        r"$w\,\sigma'(z^{(k)})$. "
    )
    if below:
        text += (rf"For $|w| < 1/\gamma$ it vanishes for any input: $w = {float(below[0]):g}$ keeps "
                 rf"${_log10(rows[below[0]]['log10_driven'])}$ after {T} steps. ")
    if w_hi is not None:
        text += (rf"Above the threshold the bound allows growth, and at rest it is attained "
                 rf"(${_log10(rows[w_hi]['log10_rest'])}$ for $w = {float(w_hi):g}$), but driven by inputs "
                 rf"the saturating units give ${_log10(rows[w_hi]['log10_driven'])}$"
                 + (": the gradient vanishes anyway." if not grew else "."))
    blocks.append(takeaway(text))
    return {"title": "A one-unit warm-up", "label": "sec:scalar", "blocks": blocks}, results


# ----------------------------------------------------------------------------------------------
# Why vanishing is a problem
# ----------------------------------------------------------------------------------------------

WHY_CELLS = {"rnn-tanh": r"$\tanh$ RNN", "lstm": "LSTM"}
WHY_SIZES = dict(hidden=16, inputs=8, steps=60)
WHY_BACK = (1, 5, 10, 20)
SUBJECT_BACK = 3  # "The writer of the books": the subject is 3 words before the word that predicts the verb


def near_far(*, seed: int = 0) -> dict[str, Any]:
    r"""How much of ‖∂o_T/∂x_s‖₂ comes from far inputs, for a tanh RNN and an LSTM.

    One input sequence ``xs: (steps, inputs)``; each cell at PyTorch's initialisation
    (:meth:`numeric.StackedModel.init`, one layer) and :func:`numeric.input_sensitivity` S (T, T).
    ``share_far[k]`` = Σ_{s ≤ T-k} S[T, s] / Σ_s S[T, s] (inputs k or more steps back);
    ``subject_over_current`` = the geometric mean over t of S[t, t-3] / S[t, t].
    """
    sz = WHY_SIZES
    xs = random_sequence(sz["steps"], sz["inputs"], seed=seed + 5)
    T = sz["steps"]
    out: dict[str, Any] = {"sizes": sz, "back": list(WHY_BACK), "subject_back": SUBJECT_BACK, "cells": {}}
    for c in WHY_CELLS:
        model = StackedModel.init(c, hidden=sz["hidden"], inputs=sz["inputs"], seed=seed)
        S = input_sensitivity(model, xs)
        row = S[T - 1]
        share = {str(k): float(row[: T - k].sum() / row.sum()) for k in WHY_BACK}
        ratios = [S[t, t - SUBJECT_BACK] / S[t, t] for t in range(SUBJECT_BACK, T)]
        out["cells"][c] = {"share_far": share, "subject_over_current": float(np.exp(np.mean(np.log(ratios))))}
    return out


def section_why(ctx: Context) -> tuple[dict, dict]:
    """Near vs far signal; the lecture's language-model example, measured."""
    data = near_far(seed=ctx.seed)
    cells = data["cells"]
    k_far = WHY_BACK[2]
    rnn, lstm = cells["rnn-tanh"], cells["lstm"]
    blocks: list[dict] = [
        motivation(
            "A small number is not a problem in itself: an update can be rescaled. This section answers "
            "why a vanishing gradient nevertheless keeps a recurrent network from learning long-range "
            "structure, and what that looks like in a language model."
        ),
        {"kind": "text", "text": (
            r"The gradient of the loss $J = \sum_t J^{(t)}$ with respect to $W_h$ is a sum over time "
            r"(Section~\ref{sec:rnn}): the term for a dependency $k$ steps long carries a product of $k$ step "
            r"Jacobians. When those products vanish, the sum is dominated by its near terms, and the far terms, "
            r"the only ones that can teach the network a long dependency, are lost under them. The update then "
            r"follows short-range effects only. Worse, the small far signal is ambiguous: looking at the "
            r"gradient alone one cannot tell whether step $t$ and step $t + k$ are in fact unrelated in the "
            r"data (no dependency to learn) or whether they are related but the parameters are not yet the "
            r"ones that would carry the relation across $k$ steps (wrong parameters)."
        )},
        {"kind": "text", "text": (
            r"The lecture's example \citep{cs224n2019lecture7}, after \citet{linzen2016assessing}: to continue "
            r"``the writer of the books \dots'' a language model must choose between \emph{is} and \emph{are}. "
            r"The verb agrees with \emph{writer}, the word closest in the syntax (syntactic recency), not with "
            r"\emph{books}, the word closest in the sequence (sequential recency). A model whose gradient from "
            r"\emph{writer} has faded learns the second rule and writes \emph{are}. "
            r"Table~\ref{tab:near_far} measures how much of the sensitivity $\|\partial o^{(T)}/\partial "
            r"x^{(s)}\|_2$ of the last output reaches inputs $k$ or more steps back, for a $\tanh$ RNN and an "
            rf"LSTM at PyTorch's initialisation (hidden size {data['sizes']['hidden']}, one random input sequence, "
            rf"$T = {data['sizes']['steps']}$)."
        )},
        {"kind": "table", "label": "tab:near_far",
         "caption": (r"Share of $\sum_s \|\partial o^{(T)}/\partial x^{(s)}\|_2$ coming from inputs $k$ or more "
                     r"steps back ($s \le T - k$), from the derived Jacobians (\texttt{input\_sensitivity}); last "
                     rf"row: the sensitivity to the input {SUBJECT_BACK} steps back (the subject) relative to the "
                     r"current input (the distractor), geometric mean over positions."),
         "columns": ["", *WHY_CELLS.values()],
         "rows": [[f"$k = {k}$", *[f"${_num(cells[c]['share_far'][str(k)])}$" for c in WHY_CELLS]] for k in WHY_BACK]
                 + [[rf"$k = {SUBJECT_BACK}$ vs $0$", *[f"${_num(cells[c]['subject_over_current'])}$"
                                                      for c in WHY_CELLS]]],
         "align": "lrr"},
    ]  # fmt: skip
    better = "LSTM" if lstm["share_far"][str(k_far)] > rnn["share_far"][str(k_far)] else r"$\tanh$ RNN"
    blocks.append(takeaway(
        rf"Far inputs reach the gradient only through long products: at initialisation the $\tanh$ RNN's last "
        rf"output draws a share ${_num(rnn['share_far'][str(k_far)])}$ of its sensitivity from inputs {k_far} or "
        rf"more steps back, the LSTM's ${_num(lstm['share_far'][str(k_far)])}$ (more for the {better}). "
        rf"A subject {SUBJECT_BACK} words back weighs ${_num(rnn['subject_over_current'])}$ (RNN) and "
        rf"${_num(lstm['subject_over_current'])}$ (LSTM) of the current word: untrained, both favour "
        r"sequential recency; the gates of Sections~\ref{sec:lstm} to~\ref{sec:gates} are what training can "
        r"open to change that."
    ))
    return {"title": "Why a vanishing gradient is a problem", "label": "sec:why", "blocks": blocks}, data


# ----------------------------------------------------------------------------------------------
# The closing summary
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Practical:
    """One row of the closing table: a problem, how it shows, the remedy, and where the report
    treats it (section labels); ``measured`` picks a number from results.json (or None)."""

    problem: str
    symptom: str
    remedy: str
    where: tuple[str, ...]
    measured: tuple[str, ...] | None = None  # a path into results.json
    measured_text: str = ""


PRACTICAL: tuple[Practical, ...] = (
    Practical("vanishing gradient", "far terms of the BPTT sum negligible; only short dependencies learned",
              "gated cells (LSTM cell path, GRU direct path), keep-gate bias near ``keep''",
              ("sec:why", "sec:lstm", "sec:gru", "sec:gates"),
              ("why", "cells", "rnn-tanh", "share_far", "10"), "RNN share from $k \\ge 10$ back"),
    Practical("exploding gradient", "loss spikes, Inf or NaN, a jump off a cliff of the loss surface",
              "clip the gradient norm at a threshold $c$", ("sec:clipping",),
              ("clipping", "cliff", "final_loss_plain"), "final loss without clipping"),
    Practical("eigenvalue test misleads", "$\\rho(W_h) < 1$ with transient growth, $\\rho(W_h) > 1$ with decay",
              "read $\\eta = \\gamma\\,\\sigma_{\\max}(W_h)$, measure the profile", ("sec:scalar", "sec:rnn"),
              ("rnn", "counterexamples", "transient_growth", "sigma_max"), "$\\sigma_{\\max}$ of the $\\rho = 0.9$ example"),
    Practical("truncated BPTT", "a window of $\\tau$ steps drops the long-range terms",
              "fine when they vanish anyway; not for long dependencies", ("sec:rnn",),
              ("rnn", "truncation", "share_dropped_by_window"), "share dropped by $\\tau = 20$"),
    Practical("depth", "gradients vanish through many stacked layers",
              "residual or highway connections", ("sec:beyond",),
              ("beyond", "depth", "log10_norm_at_input", "residual, sigmoid"), "$\\log_{10}$ residual, depth 50"),
    Practical("a language model that sees the future", "bidirectional outputs depend on later inputs",
              "unidirectional RNN for language modelling", ("sec:beyond",),
              ("beyond", "causal_heatmap", "zeros_unidirectional"), "causal zeros, unidirectional"),
)


def _lookup(results: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = results
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def section_summary(ctx: Context, results: Mapping[str, Any]) -> tuple[dict, dict]:
    """The practical takeaways in one table (:data:`PRACTICAL`), each row pointing to its sections
    and quoting one number the report measured (looked up in ``results``, the results.json so far)."""
    rows, numbers = [], {}
    for p in PRACTICAL:
        value = _lookup(results, p.measured) if p.measured else None
        shown = "--"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            shown = p.measured_text + f": ${_num(float(value))}$"
            numbers[p.problem] = float(value)
        where = ", ".join(rf"\S\ref{{{lab}}}" for lab in p.where)
        rows.append([p.problem, p.symptom, p.remedy, shown, where])
    blocks: list[dict] = [
        motivation(
            "The sections above each answered one question. This table collects what a practitioner should "
            "carry away: each problem, how it shows in training, the remedy, and where the report derives "
            "and measures it (Table~\\ref{tab:practical})."
        ),
        {"kind": "table", "label": "tab:practical",
         "caption": "Practical takeaways: problem, symptom, remedy, one number measured here, and where.",
         "columns": ["problem", "symptom", "remedy", "measured here", "where"],
         "rows": rows,
         "align": r">{\raggedright\arraybackslash}p{0.14\linewidth}>{\raggedright\arraybackslash}p{0.24\linewidth}"
                  r">{\raggedright\arraybackslash}p{0.22\linewidth}>{\raggedright\arraybackslash}p{0.17\linewidth}"
                  r">{\raggedright\arraybackslash}p{0.1\linewidth}"},
        takeaway(
            r"The gradient through time is a product of step Jacobians. Keep its factors near norm 1 where long "
            r"dependencies matter (gates, skips), cap it where it can blow up (clipping), and judge it by "
            r"$\gamma\,\sigma_{\max}$ and by measuring, not by the eigenvalues alone."
        ),
    ]  # fmt: skip
    return {"title": "Summary: practical takeaways", "label": "sec:summary", "blocks": blocks}, {"measured": numbers}
