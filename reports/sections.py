"""The report's sections, assembled from derivation objects and numbers computed by ``numeric``.

No mathematics lives here: every equation is ``derive.latex`` of an object the tests check, every
number comes from :mod:`numeric`, and the figures only draw those numbers (:mod:`reports.plots`).
Each ``section_*`` function returns ``(section, results)``: the template's section dict and the
numbers it shows, for ``results.json``.
"""

from __future__ import annotations

import platform
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sympy as sp

from .. import derive
from ..derive.algebra import latex, signed_terms
from ..derive.jacobians import Step
from ..numeric import (
    bound_profile,
    gradient_profile,
    init,
    random_sequence,
    regime,
    unroll,
    verify,
)
from . import diagrams, plots
from .figures import save
from .latex import escape_tex

__all__ = ["Context", "SECTIONS", "split_equation", "conventions"]


@dataclass(frozen=True)
class Context:
    """What every section needs: where figures go, the seed, the cells asked for."""

    figures: Path
    seed: int
    cells: tuple[str, ...]
    torch_model: Path | None = None
    user_model: Any = None  # reports.model_option.UserModel, checked before the sections run
    experiments: Path | None = None
    figure_formats: tuple[str, ...] = ("pdf", "png")  # the report writes ("pdf",): LaTeX reads only those


# ----------------------------------------------------------------------------------------------
# Small printing helpers (layout only)
# ----------------------------------------------------------------------------------------------


def split_equation(lhs: sp.Basic, rhs: sp.Basic, *, per_line: int = 1) -> list[str]:
    """``lhs = rhs`` as ``align*`` lines, one term of a long sum per line."""
    terms = [("-" if negative else "+", t) for negative, t in signed_terms(rhs)]
    lines = []
    for k in range(0, len(terms), per_line):
        chunk = terms[k : k + per_line]
        body = " ".join(
            (("- " if s == "-" else "") if (k == 0 and i == 0) else ("- " if s == "-" else "+ ")) + latex(t)
            for i, (s, t) in enumerate(chunk)
        )
        lines.append((f"{latex(lhs)} &= " if k == 0 else "&\\quad ") + body)
    return lines


def _eq_block(step: Step | sp.Basic, text: str | None = None, *, split: bool = True) -> list[dict]:
    eq = step.equation if isinstance(step, Step) else step
    words = text if text is not None else (step.text if isinstance(step, Step) else None)
    blocks: list[dict] = []
    if words:
        words = words[0].upper() + words[1:]
        blocks.append({"kind": "text", "text": _prose(words if words[-1] in ".:;" else words + ":")})
    if split and isinstance(eq, sp.Equality) and isinstance(eq.rhs, sp.MatAdd) and len(eq.rhs.args) > 2:
        blocks.append({"kind": "align", "lines": split_equation(eq.lhs, eq.rhs)})
    else:
        blocks.append({"kind": "equation", "math": latex(eq)})
    return blocks


def _prose(text: str) -> str:
    """Plain sentences (which may hold $…$ math from derive) made safe for LaTeX text mode."""
    parts = text.split("$")
    return "".join(escape_tex(p) if i % 2 == 0 else f"${p}$" for i, p in enumerate(parts))


def _fig(ctx: Context, fig: Any, stem: str, caption: str, width: float = 0.95) -> dict:
    save(fig, ctx.figures, stem, formats=ctx.figure_formats)
    return {"kind": "figure", "path": f"figures/{stem}.pdf", "caption": caption, "width": width,
            "label": f"fig:{stem}"}  # fmt: skip


def _cell_path_block(c: derive.Cell) -> sp.Expr:
    """The Jacobian on the cell's marked state-to-state edge (LSTM: diag(f))."""
    g = diagrams.cell_graph(c)
    return g.labels[next(iter(sorted(g.marked, key=str)))]


def _diagram(tikz: str, stem: str, caption: str) -> dict:
    """A figure block holding a TikZ picture drawn from a cell (reports.diagrams)."""
    return {"kind": "figure", "tikz": tikz, "caption": caption, "label": f"fig:{stem}"}


def _num(x: float, digits: int = 3) -> str:
    if not np.isfinite(x):
        return r"\infty" if x > 0 else r"-\infty"
    if 1e3 <= abs(x) < 1e5:
        return f"{x:,.0f}".replace(",", "\\,")
    if x != 0 and (abs(x) < 1e-3 or abs(x) >= 1e5):
        mant, exp = f"{x:.{digits - 1}e}".split("e")
        return rf"{mant} \times 10^{{{int(exp)}}}"
    return f"{x:.{digits}g}"


def refer_to_figures(blocks: list[dict]) -> list[dict]:
    """``blocks`` with every figure referenced from the text: a figure no text block refers to is
    pointed to at the end of the nearest text block before it ("… (Figure~\\ref{fig:x})"). A reference
    inside a note (a framed box) counts: adding a second one earlier would move the first mention away
    from the figure."""
    text_refs = " ".join(b.get("text", "") for b in blocks if b["kind"] in ("text", "note"))
    out: list[dict] = []
    for b in blocks:
        ref = f"\\ref{{{b.get('label')}}}"
        if b["kind"] == "figure" and b.get("label") and ref not in text_refs:
            last_text = next((j for j in range(len(out) - 1, -1, -1) if out[j]["kind"] == "text"), None)
            if last_text is None:
                out.append({"kind": "text", "text": f"Figure~{ref}:"})
            else:
                out[last_text] = {**out[last_text], "text": out[last_text]["text"].rstrip() + f" (Figure~{ref})"}
        out.append(b)
    return out


def _displays_once(blocks: list[dict]) -> list[dict]:
    """``blocks`` without a display whose math was already displayed earlier in the list.

    The text that introduced a dropped display (ending in a colon) now ends by pointing back to it.
    """
    seen: set[str] = set()
    out: list[dict] = []
    for b in blocks:
        if b["kind"] in ("equation", "align", "multline"):
            key = " ".join((b.get("math") or " \\\\ ".join(b["lines"])).replace("&", "").split())
            if key in seen:
                if out and out[-1]["kind"] == "text" and out[-1]["text"].rstrip().endswith(":"):
                    out[-1] = {**out[-1], "text": out[-1]["text"].rstrip()[:-1] + " (displayed above)."}
                continue
            seen.add(key)
        out.append(b)
    return out


def _motivation(text: str) -> dict:
    from .section_story import motivation

    return motivation(text)


def _takeaway(text: str) -> dict:
    from .section_story import takeaway

    return takeaway(text)


def _activation_math(name: str) -> str:
    """An activation's name as math, sigma(x) printed by derive (``tanh(3*x)`` -> \\tanh(3x))."""
    return derive.activation(name).latex_of("x")


def _zero_marker_note(contributions: np.ndarray) -> str:
    """The sentence that explains the plots' "exactly 0" marker, for terms indexed by k steps back."""
    zeros = [int(k) for k in np.nonzero(np.asarray(contributions) == 0.0)[0]]
    if not zeros:
        return ""
    T = len(contributions)
    why = (r", the term of step 1, which is multiplied by $h^{(0)} = 0$" if zeros == [T - 1] else "")
    return (r" A triangle on the bottom edge marks a term that is exactly $0$, whose logarithm $-\infty$ "
            r"cannot be drawn: here $k = " + ", ".join(map(str, zeros)) + "$" + why + ".")


def _align_definitions(cell: derive.Cell, names: dict | None = None) -> dict:
    return {"kind": "align", "lines": [f"{latex(_renamed(e.lhs, names))} &= {latex(_renamed(e.rhs, names))}"
                                       for e in cell.equations]}


def _torch_gate_names() -> dict[sp.MatrixSymbol, sp.MatrixSymbol]:
    """The report's name for PyTorch's GRU update gate: zeta, since z^{(t)} is the RNN's pre-activation
    (Section 1); its weights and bias follow (W_zeta, U_zeta, b_zeta). Printing only."""
    n, m = derive.algebra.N, derive.algebra.M
    return {sp.MatrixSymbol("z^{(t)}", n, 1): sp.MatrixSymbol(r"\zeta^{(t)}", n, 1),
            sp.MatrixSymbol("W_z", n, n): sp.MatrixSymbol(r"W_\zeta", n, n),
            sp.MatrixSymbol("U_z", n, m): sp.MatrixSymbol(r"U_\zeta", n, m),
            sp.MatrixSymbol("b_z", n, 1): sp.MatrixSymbol(r"b_\zeta", n, 1)}  # fmt: skip


def _renamed(expr: sp.Basic, names: dict | None) -> sp.Basic:
    """``expr`` with symbols renamed for printing (an equation stays an unevaluated equation)."""
    if not names:
        return expr
    if isinstance(expr, sp.Equality):
        return derive.algebra.equation(_renamed(expr.lhs, names), _renamed(expr.rhs, names))
    return expr.xreplace(names)


def conventions() -> list[str]:
    """The conventions, stated once at the top (docs/math.md)."""
    return [
        r"Vectors are columns; $\operatorname{diag}(v)$ is the diagonal matrix with $v$ on its diagonal "
        r"and $\odot$ the elementwise (Hadamard) product. Squares, products and $1 - v$ of vectors act "
        r"elementwise.",
        r"Jacobians are in numerator layout: $\frac{\partial h^{(t)}}{\partial h^{(t-1)}}$ has a row per "
        r"output and a column per input, so a chain is the ordered product "
        r"$J_T J_{T-1} \cdots J_{k+1}$ with the latest step on the left. The gradient of the scalar loss "
        r"$J = \sum_t J^{(t)}$ (one term $J^{(t)}$ per step) with respect to a parameter matrix $W$, "
        r"$\partial J/\partial W$, is the exception: it is printed in gradient layout, the shape of $W$ "
        r"(entry $(i, j)$ is $\partial J/\partial W_{ij}$), which is the transpose of the numerator-layout "
        r"row vector; the adjoint $\lambda^{(t)}$ is likewise a column.",
        r"$\sigma$ is the activation of the recurrence, as in the lecture, and $\sigma'$ its derivative; "
        r"the examples of Section~\ref{sec:rnn} take $\sigma = \tanh$, so $\sigma'$ prints as $\tanh'$ there, "
        r"and the gates of the LSTM and GRU use the logistic sigmoid, also written $\sigma$. "
        r"$\gamma = \sup_x |\sigma'(x)|$ is derived for each "
        r"activation, never typed in. $\sigma_{\max}(W) = \|W\|_2$ is the largest singular value and "
        r"$\rho(W)$ the largest eigenvalue modulus.",
        r"The LSTM's state is $s^{(t)} = [h^{(t)}; c^{(t)}]$, $h$ first. Logarithms in figures are "
        r"base 10; every product of Jacobians is accumulated in log space.",
    ]


# ----------------------------------------------------------------------------------------------
# Section 1: the vanilla RNN and the theorem
# ----------------------------------------------------------------------------------------------


def _rnn_regime_data(ctx: Context, *, hidden: int, steps: int) -> dict[str, Any]:
    """Measured profiles and both bounds for a vanishing and an exploding tanh RNN."""
    out = {}
    settings = {
        "vanishing": dict(spectral_norm=0.8, scale=1.0),
        "exploding": dict(spectral_radius=1.15, scale=1e-4),
    }
    for name, s in settings.items():
        kw = {k: v for k, v in s.items() if k != "scale"}
        p = init("rnn-tanh", hidden=hidden, inputs=4, seed=ctx.seed, **kw)
        if s["scale"] != 1.0:  # near the linear range: small inputs AND no bias (else max|z| reaches ~1)
            p = {**p, "b": np.zeros_like(p["b"])}
        xs = random_sequence(steps, 4, seed=ctx.seed + 1, scale=s["scale"])
        prof = gradient_profile("rnn-tanh", p, xs)
        z = unroll("rnn-tanh", p, xs).intermediates()["z"]
        bp = bound_profile("tanh", p["W_h"], z).with_measured(prof.log_spectral)
        out[name] = {"params": p, "profile": prof, "bound": bp, "regime": regime("tanh", p["W_h"]),
                     "max_abs_z": float(np.max(np.abs(z)))}
    return out


def section_rnn(ctx: Context) -> tuple[dict, dict]:
    """Conventions, the vanilla RNN, its Jacobian, the ordered product, the theorem, the imprecisions."""
    rnn = derive.cell("rnn-tanh")
    generic = derive.RNN("tanh")
    d = derive.step_jacobian(generic)
    blocks: list[dict] = [
        _motivation(
            r"Section~\ref{sec:scalar} multiplied numbers; a real RNN multiplies matrices, which do not commute "
            r"and whose size is not one number. This section answers the lecture's central question with the "
            r"matrices in place: when is the product of step Jacobians guaranteed to vanish, when can it explode, "
            r"and which quantity of $W_h$ decides, its eigenvalues or its singular values?"
        ),
        {"kind": "text", "text": (
            "The vanilla RNN of the lecture, written by gradproof as a list of definitions "
            r"(here with $\sigma = \tanh$; any activation works the same way):"
        )},
        _align_definitions(rnn),
        {"kind": "text", "text": (
            r"Figure~\ref{fig:unrolled} unrolls the recurrence over time: the forward pass runs left to right, "
            r"and the gradient of $J = \sum_t J^{(t)}$ flows back through one step Jacobian per step."
        )},
        _diagram(diagrams.unrolled_tikz(rnn), "unrolled", (
            r"The recurrence unrolled over time, drawn from the cell's definitions (state $h$). Solid: the "
            r"forward pass. Dashed: the backward pass, $\partial J^{(t)}/\partial h^{(t)}$ into each state and "
            r"the step Jacobian $\partial h^{(t)}/\partial h^{(t-1)}$ on each backward edge, derived below."
        )),
        {"kind": "subsection", "title": "The step Jacobian, one chain-rule step at a time"},
    ]  # fmt: skip
    for st in d.steps:
        blocks += _eq_block(st)
    prod = derive.bptt_product(rnn)
    blocks.append({"kind": "subsection", "title": "The ordered product behind the gradient"})
    for st in prod.steps:
        blocks += _eq_block(st)
    grads = derive.parameter_gradients(rnn)
    blocks.append({"kind": "text", "text": (
        r"The parameter gradients are sums over time of local terms weighted by the adjoint "
        r"$\lambda^{(t)} = (\partial J / \partial h^{(t)})^\top$, which is exactly where the ordered "
        r"product enters:"
    )})  # fmt: skip
    blocks += _eq_block(grads.adjoint)
    blocks.append({"kind": "align", "lines": [
        latex(g).replace(" = ", " &= ", 1) for g in grads.gradients.values()
    ]})  # fmt: skip

    # The theorem
    thm = derive.pascanu_bound(rnn)
    blocks.append({"kind": "subsection", "title": r"The theorem of \texorpdfstring{\citet{pascanu2013difficulty}}{Pascanu, Mikolov and Bengio (2013)}"})
    for st in thm.statements[1:]:
        if st.text.startswith("the definition of"):  # η is defined inline in the step before
            continue
        blocks += _eq_block(st)
    gammas = {name: derive.gamma(name) for name in derive.BUILTIN_NAMES}
    gammas["tanh(3*x)"] = derive.gamma("tanh(3*x)")
    blocks.append({"kind": "text", "text": (
        r"Table~\ref{tab:gamma} gives $\gamma$ and the threshold $1/\gamma$ for each built-in activation."
    )})  # fmt: skip
    blocks.append({
        "kind": "table", "label": "tab:gamma",
        "caption": r"$\gamma = \sup|\sigma'|$ derived for each activation, and the threshold $1/\gamma$ "
                   r"on $\sigma_{\max}(W_h)$ below which vanishing is guaranteed.",
        "columns": ["activation", r"$\gamma$", r"$1/\gamma$"],
        "rows": [[f"${_activation_math(k)}$", f"${sp.latex(g, fold_short_frac=True)}$", f"${sp.latex(1 / g, fold_short_frac=True)}$"]
                 for k, g in gammas.items()],
        "align": "lrr",
    })  # fmt: skip
    blocks.append({"kind": "text", "text": "The linear case, where the eigenvalues do decide:"})
    for st in thm.linear_case:
        blocks += _eq_block(st)

    # Figures: bounds in both regimes, the spectrum, transient growth
    data = _rnn_regime_data(ctx, hidden=16, steps=60)
    panels = []
    results: dict[str, Any] = {"gamma": {k: str(v) for k, v in gammas.items()}, "regimes": {}}
    for name, item in data.items():
        r, bp = item["regime"], item["bound"]
        panels.append({
            "title": rf"{name}: $\sigma_{{\max}}$ = {r.sigma_max:.2f}, $\rho$ = {r.spectral_radius:.2f}",
            "span": bp.spans, "log_measured": bp.log_measured, "log_eta_bound": bp.log_eta_bound,
            "log_data_bound": bp.log_data_bound,
        })  # fmt: skip
        results["regimes"][name] = {
            **r.to_json(),
            "log_measured": bp.log_measured,
            "log_eta_bound": bp.log_eta_bound,
            "log_data_bound": bp.log_data_bound,
            "bound_holds": bool(np.all(bp.log_measured <= bp.log_eta_bound + 1e-9)),
            "max_abs_preactivation": item["max_abs_z"],
            "log10_growth_over_T": float(item["profile"].log_spectral[0] / np.log(10)),
            "longest_span": int(np.max(bp.spans)),
            "log10_rho_power_span": float(np.max(bp.spans) * np.log10(r.spectral_radius)),
        }
    van, exp = results["regimes"]["vanishing"], results["regimes"]["exploding"]
    blocks.append({"kind": "text", "text": (
        r"Figure~\ref{fig:bound_profiles} measures both regimes against both bounds, and "
        r"Figure~\ref{fig:truncation} shows what truncating the sum over time drops when the gradient vanishes."
    )})  # fmt: skip
    blocks.append(_fig(ctx, plots.bound_profiles(panels), "bound_profiles", (
        r"Measured $\|\partial h^{(T)}/\partial h^{(t)}\|_2$ of a $\tanh$ RNN (hidden 16, $T = 60$) against the "
        r"bound $\eta^{T-t}$ and the data-dependent bound $\prod_t \|\operatorname{diag}(\sigma'(z^{(t)}))\|_2"
        r"\,\|W_h\|_2$. Left: $W_h$ scaled to $\sigma_{\max} = 0.8$ (" + escape_tex(van["regime"]) + "). "
        r"Right: $\rho(W_h) = 1.15$ with inputs of size $10^{-4}$ and the bias set to zero, so the units stay "
        r"near their linear range ($\max_t \|z^{(t)}\|_\infty = " + _num(exp["max_abs_preactivation"]) + r"$) and "
        r"the gradient grows by $10^{" + f"{exp['log10_growth_over_T']:.2f}" + r"}$ over " + str(exp["longest_span"])
        + r" steps, against $\rho^{" + str(exp["longest_span"]) + r"} = 10^{" + f"{exp['log10_rho_power_span']:.2f}" + r"}$ ("
        + escape_tex(exp["regime"]) + ")."
    )))  # fmt: skip
    # Truncated BPTT (docs/math.md §7): what each step contributes to ∂J^{(T)}/∂W_h, and what a window drops
    from ..numeric.gradients import bptt_contributions

    van_p = data["vanishing"]["params"]
    T = 60
    w = np.zeros((T, 16))
    w[-1] = np.random.default_rng(ctx.seed).normal(size=16)
    contrib = bptt_contributions("rnn-tanh", van_p, random_sequence(T, 4, seed=ctx.seed + 1), parameter="W_h",
                                 loss_weights=w)[::-1]  # k = 0 .. T-1 steps back
    tau = 20
    with np.errstate(divide="ignore"):
        log_c = np.log(contrib)
    dropped = float(np.sum(contrib[tau + 1 :]) / np.sum(contrib))
    results["truncation"] = {"window": tau, "log_contribution": log_c, "share_dropped_by_window": dropped}
    blocks.append(_fig(ctx, plots.truncation(np.arange(T), log_c, tau), "truncation", (
        r"Truncated BPTT \citep{zhang2023dive}; \citet{tallec2017unbiasing} for the randomised variant. The norm of the term of step "
        r"$T - k$ in the BPTT sum for $\partial J^{(T)}/\partial W_h$ of the vanishing RNN above, against $k$. A "
        r"window of $\tau = " + str(tau) + r"$ steps drops terms that add up to a fraction $" + _num(dropped)
        + r"$ of the total magnitude here: exactly the long-range ones, which the vanishing gradient had "
        r"already made negligible." + _zero_marker_note(contrib)
    ), width=0.75))  # fmt: skip
    sig = init("rnn-sigmoid", hidden=16, inputs=4, seed=ctx.seed, spectral_norm=5.0)
    W = sig["W_h"]
    eig = np.linalg.eigvals(W)
    sv = np.linalg.svd(W, compute_uv=False)
    r_sig = regime("sigmoid", W)
    T_sig = 60
    prof_sig = gradient_profile("rnn-sigmoid", sig, random_sequence(T_sig, 4, seed=ctx.seed + 1))
    rate_sig = float(prof_sig.log_spectral[0] / np.log(10) / (T_sig - 1))
    results["spectrum"] = {"eigenvalues_abs": np.abs(eig), "singular_values": sv, **r_sig.to_json(),
                           "measured_steps": T_sig, "measured_log10_per_step": rate_sig,
                           "measured_log10_over_T": float(prof_sig.log_spectral[0] / np.log(10))}  # fmt: skip
    blocks.append({"kind": "text", "text": (
        r"The theorem's test reads the singular values, not the eigenvalues; Figure~\ref{fig:spectrum} shows both "
        r"for one sigmoid RNN, and what its gradient actually does."
    )})  # fmt: skip
    blocks.append(_fig(ctx, plots.spectrum(eig, sv, float(gammas["sigmoid"])), "spectrum", (
        r"A sigmoid RNN's $W_h$ (hidden 16, scaled to $\sigma_{\max} = 5$). Left: its eigenvalues with the unit "
        r"circle and the circle $|\lambda| = 1/\gamma = 4$. Right: its singular values. The theorem reads "
        r"the singular values: $\eta = " + _num(r_sig.eta) + r"$, so " + escape_tex(r_sig.regime) + r", which is "
        r"only a possibility: measured on a random input sequence ($T = " + str(T_sig) + r"$), the gradient "
        + ("vanishes" if rate_sig < 0 else "grows") + r", by a factor $10^{" + f"{rate_sig:.2f}" + r"}$ per step "
        r"($10^{" + f"{results['spectrum']['measured_log10_over_T']:.1f}" + r"}$ over the sequence): the "
        r"saturating units' $\sigma'$ are far below $\gamma$."
    )))  # fmt: skip

    # Where the lecture is imprecise
    from ..numeric.counterexamples import saturation_growth, transient_growth

    blocks.append({"kind": "subsection", "title": "Where the lecture is imprecise"})
    imp = {i.key: i for i in derive.imprecisions()}
    tg = transient_growth()
    exact = imp["eigenvalue-vs-singular-value"].witness["norms"]
    sat = saturation_growth()
    first = imp["eigenvalue-vs-singular-value"]
    growth_note = {"kind": "note", "title": "Largest eigenvalue above 1: exploding is possible, not certain", "text": (
        r"The lecture's converse, ``if the largest eigenvalue is greater than 1, the gradient will explode'', is "
        r"at most a necessary condition, and in singular-value form: the theorem's $\sigma_{\max}(W_h) \ge "
        r"1/\gamma$ is needed for the bound to allow growth, and $\rho(W_h) > 1$ does not make it happen. With "
        r"nonlinearities the eigenvalue test is neither necessary nor sufficient: the saturating example in the "
        r"box above grows with $\rho \approx " + _num(sat.spectral_radius) + r" < 1$, and the sigmoid network of "
        r"Figure~\ref{fig:spectrum} vanishes (by $10^{" + f"{rate_sig:.2f}" + r"}$ per step) although its "
        r"$\rho(W_h) = " + _num(r_sig.spectral_radius) + r" > 1$. In fairness to the lecture, the ``eigenvalue'' wording follows "
        r"the first arXiv version \citep{pascanu2012understanding}; the ICML version \citep{pascanu2013difficulty} "
        r"states the conditions with the largest singular value."
    )}  # fmt: skip
    blocks.append({"kind": "note", "title": first.title, "text": (
        "The lecture: ``" + escape_tex(first.lecture).replace(r"W\_h", "$W_h$") + "''. The theorem needs " + f"${first.latex()}$. "
        + _prose(first.reason) + r" With $W_h = " + latex(first.witness["W"]) + r"$, $\rho = "
        + sp.latex(first.witness["spectral_radius"]) + r"$ but $\|W_h^k\|_2 = "
        + ", ".join(_num(float(v)) for v in exact.values()) + r"$ for $k = "
        + ", ".join(str(k) for k in exact) + r"$: it grows for about " + str(tg.peak[0]) + r" steps "
        r"before it decays (Figure~\ref{fig:transient_growth}). With saturating units it is worse: $W = " + latex(sp.Matrix(sat.W)) + r"$ has "
        r"$\rho \approx " + _num(sat.spectral_radius) + r"$ and $\|W\|_2 \approx " + _num(sat.sigma_max)
        + r"$, yet with $D = \operatorname{diag}(0, 1)$, $\|(DW)^{" + str(sat.k) + r"}\|_2 \approx "
        + _num(sat.norm) + "$."
    )})  # fmt: skip
    blocks.append(growth_note)
    second = imp["sigmoid-threshold"]
    blocks.append({"kind": "note", "title": second.title, "text": (
        "The lecture: ``" + escape_tex(second.lecture) + "''. Derived: " + f"${second.latex()}$. "
        + _prose(second.reason)
    )})  # fmt: skip
    third = imp["wrong-factoring"]
    wit = third.witness
    blocks.append({"kind": "note", "title": third.title, "text": (
        "The lecture writes " + f"${latex(third.lecture_math)}$" + r" (with $\sigma'$; here $\sigma = \tanh$ "
        r"as in the rest of this section); the chain rule gives the ordered "
        + f"${latex(third.precise)}$. " + _prose(third.reason) + r" For instance with $W = "
        + latex(wit["W"]) + r"$, $D_1 = " + latex(wit["D1"]) + r"$, $D_2 = " + latex(wit["D2"])
        + r"$: $D_2 W D_1 W = " + latex(wit["ordered"]) + r"$ but $W^2 D_2 D_1 = " + latex(wit["lecture"]) + "$."
    )})  # fmt: skip
    ks = np.arange(0, 101)
    dense = np.array([np.linalg.norm(np.linalg.matrix_power(tg.W, int(k)), 2) for k in ks])
    blocks.append(_fig(ctx, plots.transient_growth(
        np.array(tg.ks), np.array(tg.norms), tg.spectral_radius, tg.sigma_max, dense_ks=ks, dense_norms=dense,
    ), "transient_growth", (
        r"Transient growth: $\|W^k\|_2$ for $W = " + latex(first.witness["W"]) + r"$, whose eigenvalues are "
        r"both $0.9$. The norm grows to " + _num(tg.peak[1]) + r" at $k = " + str(tg.peak[0]) + r"$ before the "
        r"spectral radius takes over."
    )))  # fmt: skip
    results["counterexamples"] = {
        "transient_growth": {"ks": list(tg.ks), "norms": list(tg.norms), "exact": {str(k): float(v) for k, v in exact.items()},
                             "spectral_radius": tg.spectral_radius, "sigma_max": tg.sigma_max},
        "saturation_growth": {"spectral_radius": sat.spectral_radius, "sigma_max": sat.sigma_max, "k": sat.k,
                              "norm": sat.norm},
    }  # fmt: skip
    blocks.append(_takeaway(
        r"Vanishing is guaranteed when $\eta = \gamma\,\sigma_{\max}(W_h) < 1$ (here $\sigma_{\max} = "
        + _num(van["sigma_max"]) + r"$: the gradient fell to $10^{" + f"{van['log10_growth_over_T']:.1f}" + r"}$ over "
        + str(van["longest_span"]) + r" steps); $\eta \ge 1$ only allows growth. The eigenvalues do not decide: "
        r"$\rho < 1$ still allowed $\|W^k\|_2$ to reach " + _num(tg.peak[1]) + r", and a sigmoid RNN with "
        r"$\rho = " + _num(r_sig.spectral_radius) + r"$ vanished by $10^{" + f"{rate_sig:.2f}" + r"}$ per step."
    ))
    return {"title": "The vanilla RNN and why its gradient vanishes", "label": "sec:rnn", "blocks": _displays_once(blocks)}, results


# ----------------------------------------------------------------------------------------------
# Section 2: exploding gradients and clipping
# ----------------------------------------------------------------------------------------------


def section_clipping(ctx: Context) -> tuple[dict, dict]:
    """Norm and value clipping, and the cliff of docs/math.md §2."""
    from ..derive.cliff import cliff_model
    from ..derive.clipping import ClippingRules, NormClipping
    from ..numeric import cliff, clip_by_norm, clip_by_value

    # one name, c, for the threshold of both rules (theta names the parameters elsewhere)
    rules = ClippingRules(norm=NormClipping(threshold=sp.Symbol("c", positive=True)))
    g = np.array([3.0, 0.6])
    theta = 1.0
    by_norm = clip_by_norm(g, theta)
    by_value = clip_by_value(g, theta)
    gn, gv = np.asarray(by_norm.grads), np.asarray(by_value.grads)
    cos_v = float(gv @ g / (np.linalg.norm(gv) * np.linalg.norm(g)))
    model = cliff_model()
    surf = cliff.surface()
    plain, clipped = cliff.compare_clipping()
    blocks: list[dict] = [
        _motivation(
            "Vanishing makes learning slow; exploding makes it fail outright, with one step that lands on a "
            "loss of Inf or NaN or throws away everything learned so far. This section answers what to do about "
            "the exploding side, and why the standard fix keeps the gradient's direction."
        ),
        {"kind": "text", "text": (
            "When the product of Jacobians grows, one gradient step can throw the parameters far away. "
            "\\citet[Algorithm~1]{pascanu2013difficulty} rescale the gradient of all parameters together when its "
            "norm exceeds a threshold $c$; clipping each entry at $c$ instead (the older alternative) "
            "changes the direction (Figure~\\ref{fig:clipping_directions}):"
        )},
        {"kind": "equation", "math": latex(rules)},
        _fig(ctx, plots.clipping_directions(g, theta, gn, gv), "clipping_directions", (
            r"Clipping $g = (" + ", ".join(_num(v) for v in g) + r")$ at $c = 1$: norm clipping keeps the "
            r"direction (cosine 1) and shortens the step to " + _num(float(np.linalg.norm(gn))) + r"; value "
            r"clipping gives $(" + ", ".join(_num(v) for v in gv) + r")$, at cosine " + _num(cos_v, 4)
            + r" from the gradient."
        ), width=0.75),
        {"kind": "text", "text": (
            "The paper's heuristic for $c$: around the average gradient norm; thresholds from half to "
            "ten times that still converged in its experiments. The lecture's picture of a bad update is "
            "the one-unit recurrence below, whose loss surface has a cliff (Figure~\\ref{fig:cliff}):"
        )},
        {"kind": "equation", "math": latex(model)},
        _fig(ctx, plots.cliff(surf.w, surf.b, surf.loss.T, surf.log10_grad_norm.T,
                              {"SGD": plain.params, "SGD + norm clipping": clipped.params}), "cliff", (
            r"The cliff: left the loss $E(w, b)$, right $\log_{10}\|\nabla E\|$ over the same grid, with "
            r"gradients from the derived formulas. The same SGD run from the same start, without clipping "
            r"(longest step " + _num(plain.longest_step[1]) + r") and with norm clipping at $c = "
            + _num(clipped.threshold) + r"$ (longest step " + _num(clipped.longest_step[1]) + r"). After the same "
            r"number of steps the run without clipping ends at loss $" + _num(float(plain.losses[-1])) + "$"
            + (r", stuck on the plateau the jump threw it onto" if plain.losses[-1] > 10 * clipped.losses[-1] else "")
            + r"; the clipped run ends at $" + _num(float(clipped.losses[-1])) + r"$, down in the valley."
        )),  # fmt: skip
    ]
    results = {
        "example_gradient": g, "threshold": theta, "norm_clipped": gn, "value_clipped": gv,
        "value_clipping_cosine": cos_v,
        "cliff": {"cliff_height_log10": surf.cliff_height, "longest_step_plain": plain.longest_step[1],
                  "longest_step_clipped": clipped.longest_step[1], "threshold": clipped.threshold,
                  "final_loss_plain": float(plain.losses[-1]), "final_loss_clipped": float(clipped.losses[-1])},
    }  # fmt: skip
    blocks.append(_takeaway(
        r"Clip the norm, not the entries: at $c = 1$ norm clipping kept the direction of $g$ while value "
        r"clipping turned it to cosine " + _num(cos_v, 4) + r". On the cliff the same SGD run ended at loss $"
        + _num(float(plain.losses[-1])) + r"$ unclipped and $" + _num(float(clipped.losses[-1])) + r"$ clipped."
    ))
    return {"title": "Exploding gradients and clipping", "label": "sec:clipping", "blocks": _displays_once(blocks)}, results


# ----------------------------------------------------------------------------------------------
# Section 3: LSTM
# ----------------------------------------------------------------------------------------------

BLOCK_NAMES = {("h", "h"): "hh", ("h", "c"): "hc", ("c", "h"): "ch", ("c", "c"): "cc"}


def section_lstm(ctx: Context) -> tuple[dict, dict]:
    lstm = derive.cell("lstm")
    d = derive.step_jacobian(lstm)
    thm = derive.pascanu_bound(lstm)
    blocks: list[dict] = [
        _motivation(
            "Clipping treats the exploding side; the vanishing side needs a different architecture. The LSTM "
            "was built for it. This section answers where, in the LSTM's step Jacobian, a gradient can pass "
            "without being multiplied by $W_h$ and $\\sigma'$, and whether that path is open at initialisation."
        ),
        {"kind": "text", "text": r"The LSTM with a forget gate \citep{hochreiter1997long,gers2000learning}:"},
        _align_definitions(lstm),
        {"kind": "text", "text": (
            r"Figure~\ref{fig:cell_lstm} draws the cell from these definitions: one node per gate and "
            r"intermediate, an edge wherever a definition uses a symbol. The cell path from $c^{(t-1)}$ to "
            r"$c^{(t)}$ is the only edge from a previous state straight to a new one, and its Jacobian is $"
            + latex(_cell_path_block(lstm)) + r"$, with no weight matrix on it."
        )},
        _diagram(diagrams.cell_tikz(lstm), "cell_lstm", (
            r"The LSTM cell drawn from its definitions: previous state and new state (blue), gates and the "
            r"candidate (orange), input (dashed); the thick edge is the cell path $c^{(t-1)} \to c^{(t)}$, "
            r"labelled with its block of the step Jacobian."
        )),
        {"kind": "text", "text": (
            r"Its state is $[h^{(t)}; c^{(t)}]$, so the step Jacobian has four blocks. Derived block by block "
            r"(the $\partial c/\partial h$ block is kept by name inside $\partial h/\partial h$):"
        )},
    ]  # fmt: skip
    for (out, var), expr in d.blocks.items():
        blocks.append({"kind": "align", "lines": split_equation(derive.algebra.JacobianSymbol(out, var), expr)})
    for st in thm.direct:
        blocks += _eq_block(st)
    # decay of RNN, LSTM and GRU on the same axes, same seed and sequence
    hidden, steps = 32, 200
    xs = random_sequence(steps, 8, seed=ctx.seed + 2)
    curves, results = {}, {"hidden": hidden, "steps": steps, "final_log10": {}}
    for name in ("rnn-tanh", "lstm", "gru", "gru-torch"):
        p = init(name, hidden=hidden, inputs=8, seed=ctx.seed)
        prof = gradient_profile(name, p, xs)
        curves[name] = prof.log_spectral
        results["final_log10"][name] = float(prof.log_spectral[0] / np.log(10))
    # the cell path alone vs the total derivative, for the LSTM
    p = init("lstm", hidden=hidden, inputs=8, seed=ctx.seed)
    f = unroll("lstm", p, xs).intermediates()["f"]
    cell_path = np.cumsum(np.log(np.max(f, axis=1))[::-1])[::-1]
    curves["lstm: cell path ∏ max f"] = cell_path
    results["lstm_cell_path_bound_log10"] = float(cell_path[0] / np.log(10))
    final = results["final_log10"]
    blocks.append({"kind": "text", "text": (
        r"Figure~\ref{fig:decay_comparison} puts the four cells side by side on one input sequence."
    )})  # fmt: skip
    blocks.append(_fig(ctx, plots.decay_comparison(curves, ylabel=r"$\|\partial s^{(T)}/\partial s^{(t)}\|_2$"),
                       "decay_comparison", (
        r"$\|\partial s^{(T)}/\partial s^{(t)}\|_2$ for a $\tanh$ RNN, an LSTM and both GRUs with the same seed, "
        r"hidden size 32 and the same input sequence ($T = 200$, PyTorch-style initialisation, so the forget gate "
        r"starts near $1/2$), and the LSTM's cell-path bound $\prod_t \max_k f^{(t)}_k$. After 200 steps: "
        + ", ".join(f"{escape_tex(k)} $10^{{{v:.1f}}}$" for k, v in final.items())
        + r", cell path $10^{" + f"{results['lstm_cell_path_bound_log10']:.1f}" + r"}$. With gates near $1/2$ "
        r"every cell still vanishes; the gates only help when they learn to stay near 1 (forget) or 0 (update)."
    )))  # fmt: skip
    blocks.append(_takeaway(
        r"The cell path $\partial c^{(t)}/\partial c^{(t-1)} = \operatorname{diag}(f^{(t)})$ carries the gradient "
        r"with no weight matrix and no $\sigma'$, so its size is set by the forget gate alone. At initialisation "
        r"($f \approx 1/2$) it still vanishes: the cell-path bound is $10^{" + f"{results['lstm_cell_path_bound_log10']:.1f}"
        + r"}$ after " + str(steps) + r" steps, the LSTM's measured norm $10^{" + f"{final['lstm']:.1f}" + r"}$."
    ))
    return {"title": "LSTM: the cell as a shortcut", "label": "sec:lstm", "blocks": _displays_once(blocks)}, results


# ----------------------------------------------------------------------------------------------
# Section 4: GRU
# ----------------------------------------------------------------------------------------------


TIMING_SIZES: tuple[int, ...] = (64, 128, 256)
"""Hidden sizes of the LSTM/GRU timing (input size = hidden / 2, :data:`TIMING_STEPS` steps, batch 16)."""

TIMING_THREADS = 1
"""PyTorch intra-op threads while timing (``torch.set_num_threads``; restored afterwards)."""

TIMING_WARMUPS = 1
"""Untimed runs before the timed ones at each size and engine (allocations, kernel selection). Only the
first run of all is slow (torch's first use); a second warm-up measured like the timed runs
(``python -m benchmarks.bench_step_timing``)."""

TIMING_STEPS = 25
"""Sequence length of the timed runs. The time per step at 25 steps is that at 50 to within the
run-to-run spread of either (the per-call overhead is a few µs against 100-1000 µs per step), for
less than half the time (``python -m benchmarks.bench_step_timing``)."""

TIMING_ENGINES: tuple[str, ...] = ("default", "no-onednn")
"""PyTorch's default CPU engine (oneDNN where it has a fused kernel: nn.LSTM, not nn.GRU), and the
same modules with ``torch.backends.mkldnn.flags(enabled=False)``, where both use the plain ATen cells."""


@contextmanager
def _onednn_disabled(torch: Any) -> Iterator[None]:
    """``torch.backends.mkldnn.flags(enabled=False)``, without its note about TF32 on Intel GPUs (the flags
    call re-sets ``allow_tf32`` on entry and exit, which warns on a CPU build)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
        with torch.backends.mkldnn.flags(enabled=False):
            yield


def _median_step_time(name: str, *, hidden: int, inputs: int, steps: int, batch: int, repeats: int,
                      engine: str = "default") -> dict:
    """Median time per step of torch.nn's module, forward + backward (float32, CPU).

    ``engine`` is one of :data:`TIMING_ENGINES`. Falls back to gradproof's numpy forward when PyTorch
    is absent (then ``engine`` is ignored and says so).
    """
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        from contextlib import nullcontext

        torch.manual_seed(0)
        module = {"lstm": torch.nn.LSTM, "gru-torch": torch.nn.GRU}[name](inputs, hidden)
        x = torch.randn(steps, batch, inputs, generator=torch.Generator().manual_seed(0))
        ctx = _onednn_disabled(torch) if engine == "no-onednn" else nullcontext()

        def run() -> None:
            module.zero_grad(set_to_none=True)
            module(x)[0].sum().backward()

        times = []
        threads = torch.get_num_threads()
        # one intra-op thread: on small matrices a second thread gains little on an idle machine and
        # makes the times 10x longer and erratic when the other core is busy (a shared machine, or the
        # report's other sections running beside this one)
        torch.set_num_threads(TIMING_THREADS)
        try:
            with ctx:
                for _ in range(TIMING_WARMUPS):  # warm-up: allocations and kernel selection
                    run()
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    run()
                    times.append((time.perf_counter() - t0) / steps * 1e6)
        finally:
            torch.set_num_threads(threads)
        label = f"torch.nn forward + backward, float32, batch {batch}, {TIMING_THREADS} thread, " + (
            "oneDNN disabled" if engine == "no-onednn" else "default engine")
    else:
        p = init(name, hidden=hidden, inputs=inputs, seed=0)
        xs = random_sequence(steps, inputs, seed=0)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            unroll(name, p, xs)
            times.append((time.perf_counter() - t0) / steps * 1e6)
        label = "gradproof numpy forward, batch 1"
    return {"median_us": float(np.median(times)), "min_us": float(np.min(times)),
            "max_us": float(np.max(times)), "engine": label}  # fmt: skip


def step_time_comparison(*, sizes: tuple[int, ...] = TIMING_SIZES, steps: int = TIMING_STEPS, batch: int = 16,
                         repeats: int = 7) -> dict:
    """LSTM and GRU (torch.nn) step times, forward + backward, with both engines at each hidden size.

    Returns ``{"sizes", "steps", "batch", "repeats", "engines": {engine: {str(hidden): {"lstm": …,
    "gru-torch": …, "lstm_over_gru": float}}}}``: measured, not seeded, so the report prints it from
    ``timings.tex`` only.
    """
    engines: dict[str, dict] = {}
    for engine in TIMING_ENGINES:
        per = {}
        for n in sizes:
            t = {name: _median_step_time(name, hidden=n, inputs=n // 2, steps=steps, batch=batch,
                                         repeats=repeats, engine=engine) for name in ("lstm", "gru-torch")}
            t["lstm_over_gru"] = t["lstm"]["median_us"] / t["gru-torch"]["median_us"]
            per[str(n)] = t
        engines[engine] = per
    return {"sizes": list(sizes), "steps": steps, "batch": batch, "repeats": repeats,
            "threads": TIMING_THREADS, "engines": engines}  # fmt: skip


def _thousands(k: int | None) -> str:
    return "--" if k is None else f"{k:,}".replace(",", "\\,")


def _torch_parameter_count(name: str, n: int, m: int) -> int | None:
    """Parameters of the real torch.nn module (None when PyTorch has no such cell or is absent)."""
    if name not in TORCH_NN:
        return None
    try:
        from ..numeric.convert import to_torch
    except ImportError:
        return None
    module = to_torch(name, init(name, hidden=n, inputs=m, seed=0))
    return int(sum(p.numel() for p in module.parameters()))


def section_gru(ctx: Context) -> tuple[dict, dict]:
    lecture, torch_form = derive.cell("gru"), derive.cell("gru-torch")
    zeta = _torch_gate_names()  # PyTorch's update gate z printed as zeta (z^{(t)} is the RNN's pre-activation)
    blocks: list[dict] = [
        _motivation(
            "The GRU promises the LSTM's shortcut with fewer gates. This section answers what its shortcut is, "
            "why the lecture's GRU and PyTorch's are not the same function, and what the fewer gates buy in "
            "parameters and time."
        ),
        {"kind": "text", "text": (
            "Two conventions are in use. The lecture's \\citep{cs224n2019lecture7} applies the reset gate before the matrix "
            "product and updates with $u$:"
        )},
        _align_definitions(lecture),
        {"kind": "text", "text": (
            "PyTorch's \\texttt{nn.GRU} (and cuDNN) applies it after the product, to $W_n h^{(t-1)} + b_{hn}$, "
            "and keeps the state with the gate PyTorch calls $z$, written $\\zeta$ here because $z^{(t)}$ is the "
            "pre-activation of Section~\\ref{sec:rnn}:"
        )},
        _align_definitions(torch_form, zeta),
        {"kind": "text", "text": (
            r"Figure~\ref{fig:cell_gru} draws both forms from these definitions. In both, the previous state "
            r"reaches the new one directly, through a diagonal factor and no weight matrix, besides the "
            r"paths through the gates and the candidate."
        )},
        _diagram(diagrams.cell_tikz(lecture, column_width=1.9, legend=False, title="lecture (CS224n)") + "\n\\hfill\n"
                 + diagrams.cell_tikz(torch_form, column_width=1.9, legend=False, title=r"PyTorch (\texttt{nn.GRU})",
                                                       names=zeta),
                 "cell_gru", (
            r"The two GRU cells drawn from their definitions (nodes and edges as in Figure~\ref{fig:cell_lstm}). "
            r"The thick edge is the direct path $h^{(t-1)} \to h^{(t)}$, labelled with its Jacobian along that "
            r"edge alone; the full block adds the paths through the gates and the candidate."
        )),
        {"kind": "text", "text": (
            r"So $\zeta = 1 - u$: it is the update gate of \citet{cho2014learning}, who call it $z$ and keep the state "
            r"with it as PyTorch does but, like the lecture, apply the reset before the matrix product. The gates are "
            r"stacked in the order $(r, \zeta, n)$ (PyTorch's $(r, z, n)$) in \texttt{weight\_ih\_l0} and \texttt{weight\_hh\_l0}, and because $r$ "
            r"multiplies $b_{hn}$, PyTorch's two candidate biases are not redundant. The two forms are "
            r"different functions unless $r = 1$."
        )},
    ]  # fmt: skip
    for c, words, names, tag in ((lecture, "The lecture's GRU: its step Jacobian, derived,", None, "lecture"),
                                 (torch_form, "PyTorch's GRU: its step Jacobian, derived,", zeta, "torch")):
        d = derive.step_jacobian(c)
        blocks.append({"kind": "text", "text": words})
        # multline, not align: the longest term of PyTorch's form does not fit beside the left-hand side
        lines = [ln.replace(" &= ", " = ", 1).replace("&\\quad ", "", 1)
                 for ln in split_equation(_renamed(d.lhs, names), _renamed(d.result, names))]
        lines[-1] += rf" \tag{{GRU-{'L' if tag == 'lecture' else 'P'}}}\label{{eq:gru_jacobian_{tag}}}"
        blocks.append({"kind": "multline", "lines": lines} if len(lines) > 1 else {"kind": "equation",
                                                                                   "math": lines[0]})
    thm_l, thm_t = derive.pascanu_bound(lecture), derive.pascanu_bound(torch_form)
    st_l, st_t = thm_l.direct[0], thm_t.direct[0]
    blocks.append({"kind": "text", "text": _prose(
        st_l.text[0].upper() + st_l.text[1:].rstrip(":.") + ", for the lecture's GRU"
    ) + r", from \eqref{eq:gru_jacobian_lecture}, and for PyTorch's, from \eqref{eq:gru_jacobian_torch}:"})  # fmt: skip
    blocks.append({"kind": "align", "lines": [
        latex(st_l.equation).replace(" = ", r" &= ", 1) + r" &&\text{(lecture)}",
        latex(_renamed(st_t.equation, zeta)).replace(" = ", r" &= ", 1) + r" &&\text{(PyTorch)}",
    ]})  # fmt: skip
    n, m = 128, 64
    counts = {}
    for name in ("rnn-tanh", "lstm", "gru", "gru-torch"):
        c = derive.cell(name)
        counts[name] = {"gradproof": c.parameter_count(n, m), "torch": _torch_parameter_count(name, n, m)}
    blocks.append({"kind": "text", "text": (
        r"Table~\ref{tab:parameter_counts} counts the parameters per layer, derived and in PyTorch."
    )})  # fmt: skip
    blocks.append({
        "kind": "table",
        "caption": r"Parameters per layer at hidden size $n = 128$ and input size $m = 64$: one bias per gate as "
                   r"derived, and PyTorch's count, which stores two bias vectors per gate. The LSTM has "
                   r"$4(n^2 + nm + n)$, the lecture's GRU $3(n^2 + nm + n)$.",
        "columns": ["cell", "derived", "PyTorch"],
        "rows": [[escape_tex(k), _thousands(v["gradproof"]), _thousands(v["torch"])] for k, v in counts.items()],
        "align": "lrr", "label": "tab:parameter_counts",
    })  # fmt: skip
    timing = step_time_comparison()
    mid = timing["sizes"][len(timing["sizes"]) // 2]  # the figure's size
    ref = timing["engines"]["default"][str(mid)]
    blocks.append({"kind": "text", "text": (
        "``GRUs are faster'': measured here with PyTorch's modules on this machine's CPU, forward and backward "
        f"pass of a {timing['steps']}-step sequence, batch {timing['batch']}, input size half the hidden size, "
        f"median of {timing['repeats']} runs, once with PyTorch's default engine (which runs \\texttt{{nn.LSTM}} "
        "through a fused oneDNN kernel and \\texttt{nn.GRU} without one) and once with oneDNN disabled, where "
        "both run the same kind of kernel (Figure~\\ref{fig:step_times}): \\input{timings.tex}"
    )})  # fmt: skip
    labels, medians, ranges = [], [], []
    for engine, short in (("default", "default"), ("no-onednn", "no oneDNN")):
        for name, cell_label in (("lstm", "LSTM"), ("gru-torch", "GRU")):
            t = timing["engines"][engine][str(mid)][name]
            labels.append(f"{cell_label}, {short}")
            medians.append(t["median_us"])
            ranges.append((t["min_us"], t["max_us"]))
    blocks.append(_fig(ctx, plots.step_times(labels, medians, ranges), "step_times", (
        f"Median time per step, forward and backward, at hidden size {mid} (bars), with the fastest "
        f"and slowest of {timing['repeats']} runs (whiskers), with PyTorch's default engine and with oneDNN "
        "disabled."
    )))  # fmt: skip
    results = {"parameter_counts": counts, "step_time": timing, "lstm_over_gru": ref["lstm_over_gru"]}
    blocks.append(_takeaway(
        r"The GRU's direct path $\operatorname{diag}(1 - u^{(t)})$ plays the LSTM cell path's role with one gate "
        r"fewer: " + _thousands(counts["gru"]["gradproof"]) + r" parameters against " + _thousands(counts["lstm"]["gradproof"])
        + rf" at $n = {n}$, $m = {m}$. Whether that makes it faster depends on the engine (the timings above); "
        r"whether it learns as well depends on the task."
    ))
    return {"title": "GRU: two conventions", "label": "sec:gru", "blocks": _displays_once(blocks)}, results


def timings_tex(results: dict) -> str:
    """The one paragraph of measured (not derived, not seeded) numbers, kept out of report.tex.

    The sentence is chosen from the numbers: for each engine, whether the GRU step was faster at every
    size, at none, or at some.
    """
    t = results["step_time"]
    sizes = [str(n) for n in t["sizes"]]

    def one(engine: str) -> str:
        per = t["engines"][engine]
        ratios = [per[n]["lstm_over_gru"] for n in sizes]
        times = ", ".join(f"{per[n]['lstm']['median_us']:.0f} vs {per[n]['gru-torch']['median_us']:.0f}" for n in sizes)
        if all(r > 1 for r in ratios):
            verdict = "the GRU step is faster at every size"
        elif all(r <= 1 for r in ratios):
            verdict = r"the GRU step is \emph{not} faster at any size"
        else:
            verdict = "the GRU step is faster at some sizes only"
        lo, hi = min(ratios), max(ratios)
        return (rf"{times}\,$\mu$s (LSTM vs GRU) at hidden sizes {', '.join(sizes)}: {verdict}, "
                f"time ratio LSTM/GRU {lo:.2f} to {hi:.2f}")

    threads = t.get("threads")
    on = "" if threads is None else ("on one CPU thread, " if threads == 1 else f"on {threads} CPU threads, ")
    return (
        f"{on}with oneDNN disabled, {one('no-onednn')}; with the default engine, {one('default')}. "
        "The GRU does 3 gate blocks of work where the LSTM does 4 (the parameter counts in "
        r"Table~\ref{tab:parameter_counts}), a ratio of $4/3 \approx 1.33$; a difference between the two "
        "engines is one of implementation, not of the cells.\n"
    )


# ----------------------------------------------------------------------------------------------
# Section 6: verification appendix
# ----------------------------------------------------------------------------------------------

TORCH_NN = ("rnn-tanh", "rnn-relu", "lstm", "gru-torch")


def section_verification(ctx: Context) -> tuple[dict, dict]:
    rows, results = [], {"checks": []}
    hidden, inputs, steps = 8, 4, 20
    for name in ctx.cells:
        refs = ["torch", "complex-step"] + (["torch.nn"] if name in TORCH_NN else [])
        p = init(name, hidden=hidden, inputs=inputs, seed=ctx.seed)
        xs = random_sequence(steps, inputs, seed=ctx.seed + 3)
        s0 = np.random.default_rng(ctx.seed).normal(scale=0.5, size=derive.cell(name).state_size(hidden))
        for ref in refs:
            rep = verify(name, p, xs, s0, reference=ref)
            by = {}
            for c in rep.checks:
                key = "params" if c.quantity.startswith("dJ/") else c.quantity
                by[key] = max(by.get(key, 0.0), c.max_rel)
            rows.append([escape_tex(name), escape_tex(ref)] + [f"${_num(by[k], 2)}$" for k in
                        ("step Jacobian", "input Jacobian", "params")] + ["yes" if rep.ok else r"\textbf{NO}"])
            results["checks"].append(rep.to_json())
    blocks = [
        _motivation(
            "Every equation in this report was printed from an object; this section answers whether those "
            "objects are right, by comparing them with independent references on numbers."
        ),
        {"kind": "text", "text": (
            f"Every derived quantity of every cell, evaluated on random weights (hidden {hidden}, input {inputs}, "
            f"$T = {steps}$, a random nonzero initial state, seed {ctx.seed}) and compared at every step with "
            "autodiff of torch code written independently of the symbolic layer (\\texttt{torch}), with the "
            "real \\texttt{torch.nn} modules' own backward where PyTorch has the cell, and with complex-step "
            "differentiation of the forward pass. The table gives the largest error relative to the largest "
            "entry of the reference at that step; the tolerance is $10^{-10}$. Separately, the test suite "
            "proves every structured Jacobian equal to SymPy's brute-force \\texttt{Matrix.jacobian} of the "
            "explicit cell for hidden sizes 1, 2 and 3. Table~\\ref{tab:verification} lists the errors."
        )},
        {"kind": "table", "columns": ["cell", "reference", "step Jacobian", "input Jacobian",
                                      r"$\partial J/\partial\theta$", "ok"],
         "rows": rows, "align": "llrrrc", "long": True, "label": "tab:verification",
         "caption": "Largest relative error of each derived quantity against each reference."},
        {"kind": "text", "text": "Versions: " + escape_tex(_versions()) + "."},
    ]  # fmt: skip
    results["all_ok"] = all(r["ok"] for r in results["checks"])
    worst = max((c["max_rel"] for r in results["checks"] for c in r["checks"]), default=0.0)
    results["worst_relative_error"] = worst
    blocks.append(_takeaway(
        f"{len(results['checks'])} comparisons; " + ("all within" if results["all_ok"] else "\\textbf{not} all within")
        + r" $10^{-10}$, the largest relative error $" + _num(worst, 2) + "$."
    ))
    return {"title": "Verification", "label": "sec:verification", "blocks": blocks}, results


def _versions() -> str:
    import matplotlib

    parts = [f"Python {platform.python_version()}", f"SymPy {sp.__version__}", f"NumPy {np.__version__}",
             f"Matplotlib {matplotlib.__version__}"]  # fmt: skip
    try:
        import torch

        parts.append(f"PyTorch {torch.__version__}")
    except ImportError:
        parts.append("PyTorch not installed")
    return ", ".join(parts)


# ----------------------------------------------------------------------------------------------
# A user's model
# ----------------------------------------------------------------------------------------------


def _model_motivation(file_name: str) -> dict:
    return _motivation(
        "The sections so far measured weights drawn at random. A trained model's own weights decide "
        "its regime, so this section runs the same checks on \\texttt{" + escape_tex(file_name) + "}: the "
        "theorem's verdict for every recurrent block, the gradient norm measured on a sequence, and the "
        "derived Jacobians against the model's own autograd."
    )


def _model_takeaway(regimes: Mapping[str, Any], far_log: float, steps: int, where: str = "") -> dict:
    """The box closing "Your model": the largest η of ``regimes`` (block -> :class:`numeric.regime.Regime`)
    with its block and verdict, and the measured ‖∂s_T/∂s_0‖ (``far_log``, a natural log, from
    results.json's ``log_spectral``)."""
    from ..numeric.regime import VANISHING

    worst = max(regimes, key=lambda k: regimes[k].eta)
    kind = ("vanishing is guaranteed in every block" if all(r.verdict == VANISHING for r in regimes.values())
            else "the theorem allows growth there, so the measurement decides")  # fmt: skip
    far = r"$10^{" + f"{far_log / np.log(10):.1f}" + r"}$" if np.isfinite(far_log) else "exactly $0$"
    return _takeaway(
        r"The largest $\eta = \gamma\,\sigma_{\max}$ of the model is $" + _num(regimes[worst].eta) + r"$, in "
        + escape_tex(worst) + ": " + kind + r". Measured over $T = " + str(steps) + r"$ steps, "
        r"$\|\partial s^{(T)}/\partial s^{(0)}\|_2$ is " + far + where + "."
    )


def section_model(ctx: Context) -> tuple[dict, dict]:
    from ..numeric.regime import model_regime
    from .model_option import load_user_model

    assert ctx.torch_model is not None
    user = ctx.user_model if ctx.user_model is not None else load_user_model(ctx.torch_model)
    if not user.single:
        return _section_stacked_model(ctx, user)
    c, p = user.model.cell, dict(user.model.layers[0][0])
    n, m = user.model.hidden, user.model.inputs
    mr = model_regime(c, p)
    names = list(mr.blocks)
    xs = random_sequence(100, m, seed=ctx.seed + 4)
    prof = gradient_profile(c, p, xs)
    rep = verify(c, p, xs[:20], reference="torch.nn")
    blocks: list[dict] = [
        {"kind": "text", "text": (
            "The model \\texttt{" + escape_tex(ctx.torch_model.name) + "} is a \\texttt{" + escape_tex(c.name)
            + f"}} with hidden size {n} and input size {m}"
            + (" (keys under \\texttt{" + escape_tex(user.file.prefix) + "})" if user.file.prefix else "")
            + ". " + escape_tex(mr.note)
        )},
        {"kind": "table", "columns": ["block", r"$\gamma$", r"$\sigma_{\max}$", r"$\rho$", r"$\eta$", "verdict"],
         "rows": [[escape_tex(k), f"${r.gamma_exact}$", f"${_num(r.sigma_max)}$", f"${_num(r.spectral_radius)}$",
                   f"${_num(r.eta)}$", escape_tex(r.verdict)] for k, r in mr.blocks.items()],
         "align": "lrrrrl", "caption": "The theorem's verdict for each recurrent block of the model."},
        _fig(ctx, plots.gate_regimes(names, [mr.blocks[k].sigma_max for k in names],
                                     [1 / mr.blocks[k].gamma for k in names]), "model_gates",
             r"$\sigma_{\max}$ of each recurrent block of the model against its threshold $1/\gamma$."),
        _fig(ctx, plots.decay_comparison({c.name: prof.log_spectral},
                                         ylabel=r"$\|\partial s_T/\partial s_t\|_2$"), "model_profile",
             r"The model's $\|\partial s^{(T)}/\partial s^{(t)}\|_2$ on a random input sequence ($T = 100$)."),
        {"kind": "text", "text": (
            "Verified against the model's own autograd (\\texttt{torch.nn}, 20 steps): "
            + ("every quantity within $10^{-10}$" if rep.ok else "FAILED: " + escape_tex(rep.worst.describe()))
            + f", largest relative error ${_num(rep.worst.max_rel, 2)}$."
        )},
    ]  # fmt: skip
    results = {"model": mr.to_json(), "log_spectral": prof.log_spectral, "verification": rep.to_json()}
    blocks.insert(0, _model_motivation(ctx.torch_model.name))
    blocks.append(_model_takeaway(mr.blocks, float(prof.log_spectral[0]), len(xs)))
    return {"title": "Your model", "label": "sec:model", "blocks": blocks}, results


def _section_stacked_model(ctx: Context, user: Any) -> tuple[dict, dict]:
    """"Your model" for a stacked or bidirectional module: every layer and direction."""
    from ..numeric.stacked import stack_regime, time_profiles
    from ..numeric.stacked_verify import verify_torch_module

    assert ctx.torch_model is not None
    mdl = user.model
    sr = stack_regime(mdl)
    T = 100
    xs = random_sequence(T, mdl.inputs, seed=ctx.seed + 4)
    profiles = time_profiles(mdl, xs)
    rep = verify_torch_module(user.module, xs[:10])
    rows = [[escape_tex(label), escape_tex(k), f"${r.gamma_exact}$", f"${_num(r.sigma_max)}$",
             f"${_num(r.spectral_radius)}$", f"${_num(r.eta)}$", escape_tex(r.verdict)]
            for label, mr in sr.layers for k, r in mr.blocks.items()]  # fmt: skip
    labels = [label for label, _ in sr.layers]
    curves = {label: profiles[l][d].log_spectral for label, (l, d) in zip(labels, mdl.blocks())}
    main = [(label, mr.main, mr.main_regime) for label, mr in sr.layers]
    blocks: list[dict] = [
        {"kind": "text", "text": (
            "The model \\texttt{" + escape_tex(ctx.torch_model.name) + "} is a \\texttt{" + escape_tex(mdl.cell.name)
            + "} stack: " + escape_tex(user.describe())
            + (" (keys under \\texttt{" + escape_tex(user.file.prefix) + "})" if user.file.prefix else "")
            + ". Every layer and direction is analysed as its own recurrence over the outputs of the layer below; "
            + escape_tex(sr.layers[0][1].note)
        )},
        {"kind": "table", "columns": ["layer", "block", r"$\gamma$", r"$\sigma_{\max}$", r"$\rho$", r"$\eta$",
                                      "verdict"],
         "rows": rows, "align": "llrrrrl", "long": True,
         "caption": "The theorem's verdict for each recurrent block of every layer and direction."},
        {"kind": "text", "text": escape_tex(sr.explanation[0].upper() + sr.explanation[1:])},
        _fig(ctx, plots.gate_regimes([lab.replace("forward", "fwd").replace("reverse", "rev") + f"\n${k[0]}_{{{k[2:]}}}$"
                                      for lab, k, _ in main], [r.sigma_max for _, _, r in main],
                                     [1 / r.gamma for _, _, r in main]), "model_gates",
             r"$\sigma_{\max}$ of the headline recurrent block of every layer and direction against $1/\gamma$."),
        _fig(ctx, plots.decay_comparison(curves, ylabel=r"$\|\partial s_T/\partial s_t\|_2$"), "model_profile",
             r"Each layer's and direction's $\|\partial s^{(T)}/\partial s^{(t)}\|_2$ over its own input "
             r"(the layer below's outputs) on a random input sequence ($T = 100$)."),
        {"kind": "text", "text": (
            "Verified against the model's own autograd (\\texttt{torch.autograd} of the module itself, 10 steps; "
            "step, input and depth Jacobians of every layer and direction, and the chained "
            "$\\partial o_t/\\partial x_s$ and $\\partial o_T/\\partial h_0$): "
            + ("every quantity within $10^{-10}$" if rep.ok else "FAILED: " + escape_tex(rep.worst.describe()))
            + f", largest relative error ${_num(rep.worst.max_rel, 2)}$."
        )},
    ]  # fmt: skip
    results = {
        "model": sr.to_json(),
        "log_spectral": {label: curves[label] for label in labels},
        "verification": rep.to_json(),
    }
    blocks.insert(0, _model_motivation(ctx.torch_model.name))
    every = {f"{label}, {k}": r for label, mr in sr.layers for k, r in mr.blocks.items()}
    blocks.append(_model_takeaway(every, min(float(c[0]) for c in curves.values()), T,
                                  " (the smallest over the layers and directions)"))
    return {"title": "Your model", "label": "sec:model", "blocks": blocks}, results


def section_beyond(ctx: Context) -> tuple[dict, dict]:
    """Skip connections, bidirectional and stacked RNNs (reports/section_beyond.py, which builds on
    the helpers of this module, so it is imported when the section runs)."""
    from .section_beyond import section_beyond as build

    return build(ctx)

def section_scalar(ctx: Context) -> tuple[dict, dict]:
    """The one-unit warm-up (reports/section_story.py, imported when the section runs)."""
    from .section_story import section_scalar as build

    return build(ctx)


def section_why(ctx: Context) -> tuple[dict, dict]:
    """Why vanishing is a problem (reports/section_story.py, imported when the section runs)."""
    from .section_story import section_why as build

    return build(ctx)


SECTIONS: tuple[tuple[str, Callable[[Context], tuple[dict, dict]]], ...] = (
    ("scalar", section_scalar),
    ("rnn", section_rnn),
    ("why", section_why),
    ("clipping", section_clipping),
    ("lstm", section_lstm),
    ("gru", section_gru),
    ("beyond", section_beyond),
)
