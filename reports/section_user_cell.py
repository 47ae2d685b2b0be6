"""The report's section for a user's own cell (``gradproof report --equations FILE --state h,c``).

The equations are shown as typed (escaped text), then as parsed; every block of the step Jacobian,
the named Jacobians it uses and the derived norm bound are printed by ``derive.latex`` from the
derived objects; the numbers (verification errors against the torch reference built from the same
equations and against complex-step, every γ, η, the verdicts, the gradient profile) come from
:mod:`numeric` and go into ``results.json`` under ``user_cell``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import sympy as sp

from .. import derive
from ..derive.algebra import JacobianSymbol, latex
from ..derive.theorem import Norm, norm_bound
from ..numeric import gradient_profile, init, random_sequence, verify
from ..numeric.regime import bound_profile, regime
from . import plots
from .latex import escape_tex
from .section_story import motivation, takeaway
from .sections import Context, _align_definitions, _displays_once, _fig, _num, _prose, split_equation

__all__ = ["section_user_cell", "HIDDEN", "INPUTS", "VERIFY_STEPS", "PROFILE_STEPS"]

HIDDEN, INPUTS, VERIFY_STEPS, PROFILE_STEPS = 4, 3, 10, 60
REFERENCES = ("torch", "complex-step")


def _typed(source: str) -> dict:
    """The equations exactly as typed, line by line, in typewriter type (escaped, never parsed)."""
    lines = [ln.rstrip() for ln in source.strip("\n").splitlines() if ln.strip()]
    # "\ " keeps every space and still lets a long line break
    body = r"\\ ".join(escape_tex(ln).replace(" ", "\\ ") for ln in lines)
    return {"kind": "text", "text": r"\begin{quote}\raggedright\small\ttfamily " + body + r"\end{quote}"}


_LONG = 250  # characters of LaTeX beyond which a product of a sum and other factors is split


def _term_lines(term: sp.Expr) -> list[str]:
    """One term of the bound as one line, or, when it is a long product (a + b) c, as lines
    ``\\Big(a``, ``+ b``, ``\\Big) c`` (layout only; each piece printed by ``derive.latex``)."""
    text = latex(term)
    if len(text) <= _LONG or not isinstance(term, sp.Mul):
        return [text]
    sums = [f for f in term.args if isinstance(f, sp.Add)]
    if not sums:
        return [text]
    others = [f for f in term.args if f is not sums[0]]
    lines = [r"\Big(" + latex(sums[0].args[0])]
    lines += [r"\qquad + " + latex(a) for a in sums[0].args[1:]]
    lines.append(r"\qquad \Big) " + latex(sp.Mul(*others)))
    return lines


def _bound_lines(lhs: sp.Expr, bound: sp.Expr) -> list[str]:
    """``lhs ≤ bound`` as align lines, one term of a long sum per line."""
    terms = list(bound.args) if isinstance(bound, sp.Add) else [bound]
    out: list[str] = []
    for k, t in enumerate(terms):
        pieces = _term_lines(t)
        head = f"{latex(lhs)} &\\le " if k == 0 else "&\\quad + "
        out.append(head + pieces[0])
        out += ["&\\quad " + piece for piece in pieces[1:]]
    return out


def _jacobian_blocks(c: derive.Cell) -> tuple[list[dict], list[dict]]:
    """The step Jacobian block by block, the named Jacobians, and the derived norm bound."""
    d = derive.step_jacobian(c)
    jac: list[dict] = []
    bound: list[dict] = []
    if len(d.blocks) == 1:
        jac.append({"kind": "align", "lines": split_equation(d.equation.lhs, d.equation.rhs)})
        bound.append({"kind": "align", "lines": _bound_lines(Norm(d.lhs), norm_bound(d.result))})
    else:
        parts = []
        for (out, var), expr in d.blocks.items():
            J = JacobianSymbol(out, var)
            jac.append({"kind": "align", "lines": split_equation(J, expr)})
            bound.append({"kind": "align", "lines": _bound_lines(Norm(J), norm_bound(expr))})
            parts.append(Norm(J) ** 2)
        bound.append({"kind": "equation", "math": latex(sp.Le(Norm(d.lhs), sp.sqrt(sp.Add(*parts)), evaluate=False))})
    for ref, expr in d.references.items():
        jac.append({"kind": "align", "lines": split_equation(ref, expr)})
        bound.append({"kind": "align", "lines": _bound_lines(Norm(ref), norm_bound(expr))})
    return jac, bound


def _gamma_line(g: Any) -> str:
    """``γ_name &= value`` (closed form) or ``γ_name &∈ [lo, hi]`` (certified enclosure)."""
    name = g.activation.replace("_", r"\_")
    gamma = sp.Symbol(r"\gamma_{\mathrm{" + name + "}}")
    if g.exact is not None:  # the derived closed form itself (the SymPy object, never re-parsed)
        return f"{latex(gamma)} &= {latex(derive.gamma_enclosure(g.activation).exact)}"
    lo, hi = sp.Float(float(sp.Rational(g.lo)), 15), sp.Float(g.hi_float, 15)
    return f"{latex(gamma)} &\\in {latex(sp.Interval(lo, hi))}"


def section_user_cell(ctx: Context, *, cell: derive.Cell, source: str, origin: str) -> tuple[dict, dict]:
    """The section for the user's cell ``cell`` (its equations ``source``, read from ``origin``)."""
    c = cell
    p = init(c, hidden=HIDDEN, inputs=INPUTS, seed=ctx.seed)
    S = c.state_size(HIDDEN)
    state = ", ".join(getattr(c, "state", ()))
    # --- verification against the torch reference from the same equations, and complex-step
    xs_v = random_sequence(VERIFY_STEPS, INPUTS, seed=ctx.seed + 3)
    s0 = np.random.default_rng(ctx.seed).uniform(-0.5, 0.5, size=S)
    checks, rows = {}, []
    for ref in REFERENCES:
        rep = verify(c, p, xs_v, s0, reference=ref)
        by: dict[str, float] = {}
        for ch in rep.checks:
            key = "params" if ch.quantity.startswith("dJ/") else ch.quantity
            by[key] = max(by.get(key, 0.0), ch.max_rel)
        checks[ref] = {"ok": rep.ok, "max_rel": by, "report": rep.to_json()}
        rows.append([escape_tex(ref)] + [f"${_num(by[k], 2)}$" for k in ("step Jacobian", "input Jacobian", "params")]
                    + ["yes" if rep.ok else r"\textbf{NO}"])  # fmt: skip
    # --- the theorem: γ, η, verdicts
    r = regime(c, p)
    # --- the gradient profile and its bounds
    xs = random_sequence(PROFILE_STEPS, INPUTS, seed=ctx.seed + 4)
    prof = gradient_profile(c, p, xs)
    bp = bound_profile(c, p, xs).with_measured(prof.log_spectral)
    holds = bool(np.all(prof.log_spectral <= bp.log_data_bound + 1e-9))
    results: dict[str, Any] = {
        "name": c.name, "state": list(getattr(c, "state", ())), "equations": source, "file": origin,
        "hidden": HIDDEN, "inputs": INPUTS, "seed": ctx.seed,
        "verification": {"steps": VERIFY_STEPS, **checks},
        "regime": r.to_json(),
        "profile": {"steps": PROFILE_STEPS, "log_spectral": prof.log_spectral, "log_data_bound": bp.log_data_bound,
                    "log_eta_bound": bp.log_eta_bound, "data_bound_holds": holds,
                    "log10_measured_over_T": float(prof.log_spectral[0] / np.log(10)),
                    "log10_data_bound_over_T": float(bp.log_data_bound[0] / np.log(10))},
    }  # fmt: skip
    ver, reg, pro = results["verification"], results["regime"], results["profile"]
    jac, bound = _jacobian_blocks(c)
    blocks: list[dict] = [
        motivation(
            "A researcher's first question is about their own recurrence. This section answers it for the cell "
            "given on the command line with the same machinery as the lecture's cells: its step Jacobian derived "
            "from the equations, checked against two independent references, and the bound of "
            "\\citet{pascanu2013difficulty} carried through its structure to a verdict on vanishing and exploding."
        ),
        {"kind": "text", "text": (
            "The cell \\texttt{" + escape_tex(c.name) + "} (state " + escape_tex(state) + ") was given as equations in "
            "\\texttt{" + escape_tex(origin.replace("\\", "/").rsplit("/", 1)[-1]) + "}, exactly as typed:"
        )},
        _typed(source),
        {"kind": "text", "text": "Parsed by gradproof's whitelist parser (never evaluated as code), they read:"},
        _align_definitions(c),
        {"kind": "text", "text": (
            "Its step Jacobian, derived by the chain rule over these definitions"
            + (", block by block" if len(jac) > 1 else "") + ":"
        )},
        *jac,
        {"kind": "text", "text": (
            f"Verified on random weights (hidden {results['hidden']}, input {results['inputs']}, "
            f"$T = {ver['steps']}$, seed {ctx.seed}, a random initial state) against autodiff of torch code built "
            "from the same equations (\\texttt{torch}) and against complex-step differentiation of the forward "
            "pass; Table~\\ref{tab:user_cell_verification} gives the largest relative errors (tolerance $10^{-10}$)."
        )},
        {"kind": "table", "columns": ["reference", "step Jacobian", "input Jacobian", r"$\partial J/\partial\theta$", "ok"],
         "rows": rows, "align": "lrrrc", "label": "tab:user_cell_verification",
         "caption": "Largest relative error of each derived quantity of the cell against each reference."},
        {"kind": "text", "text": (
            "The bound of \\citet{pascanu2013difficulty} generalises through the derived structure: the triangle inequality "
            "over sums, submultiplicativity over products and $\\|\\operatorname{diag}(v)\\|_2 = \\max_k |v_k|$ give"
        )},
        *bound,
        {"kind": "text", "text": "with, for each activation of the cell, $\\gamma = \\sup_x|\\sigma'(x)|$ derived by calculus "
                                 "(or enclosed by certified interval arithmetic where it has no closed form):"},
    ]  # fmt: skip
    blocks.append({"kind": "align", "lines": [_gamma_line(g) for g in r.gammas.values()]})
    eta = reg["eta"]
    blocks.append({"kind": "text", "text": _prose(
        "The supremum of this bound over the inputs is "
        + (f"$\\eta = {_num(eta)}$" if eta is not None else "infinite")
        + f", so the verdict is: {reg['regime']}. " + reg["explanation"][0].upper() + reg["explanation"][1:]
    )})
    if r.blocks:
        blocks.append({"kind": "table",
                       "columns": ["block", "activation", r"$\gamma$", r"$\sigma_{\max}$", r"$\rho$", r"$\eta$", "verdict"],
                       "rows": [[escape_tex(k), escape_tex(b["activation"]),
                                 escape_tex(b["gamma_exact"]) if len(b["gamma_exact"]) <= 12 else f"$\\le {_num(b['gamma'], 6)}$",
                                 f"${_num(b['sigma_max'])}$", f"${_num(b['spectral_radius'])}$", f"${_num(b['eta'])}$",
                                 escape_tex(b["regime"])] for k, b in reg["blocks"].items()],
                       "align": "llrrrrl", "label": "tab:user_cell_blocks",
                       "caption": "Each recurrent parameter's term alone (worst block: "
                                  + escape_tex(str(reg["worst_block"])) + ")."})  # fmt: skip
        blocks.append({"kind": "text", "text": "Table~\\ref{tab:user_cell_blocks}: " + escape_tex(reg["note"])})
    curves = {"measured": prof.log_spectral, "data-dependent bound": bp.log_data_bound}
    if eta is not None and math.isfinite(eta):
        curves[r"$\eta^{T-t}$"] = bp.log_eta_bound
    blocks.append({"kind": "text", "text": (
        f"Figure~\\ref{{fig:user_cell_profile}}: on a random input sequence ($T = {pro['steps']}$, zero initial "
        f"state) the gradient norm changes by "
        f"$10^{{{pro['log10_measured_over_T']:.2f}}}$ over the whole sequence, below the data-dependent bound "
        f"$10^{{{pro['log10_data_bound_over_T']:.2f}}}$ (the derived bound evaluated step by step)"
        + (" at every span." if pro["data_bound_holds"] else r"; \textbf{the bound fails at some span}.")
    )})
    blocks.append(_fig(ctx, plots.decay_comparison(curves, ylabel=r"$\|\partial s^{(T)}/\partial s^{(t)}\|_2$"),
                       "user_cell_profile", (
        r"$\|\partial s^{(T)}/\partial s^{(t)}\|_2$ of \texttt{" + escape_tex(c.name) + "} (hidden "
        + str(HIDDEN) + ") against the product of the per-step bounds"
        + (r" and $\eta^{T-t}$." if r"$\eta^{T-t}$" in curves else " (no data-free bound: it grows with the state).")
    )))  # fmt: skip
    blocks.append(takeaway(
        "\\texttt{" + escape_tex(c.name) + "}: "
        + ("every derived quantity agrees with every reference within $10^{-10}$"
           if all(checks[ref]["ok"] for ref in REFERENCES) else "\\textbf{a derived quantity disagrees with a reference}")
        + " (Table~\\ref{tab:user_cell_verification}); "
        + ("its bound gives $\\eta = " + _num(eta) + "$, so " + escape_tex(reg["regime"]) if eta is not None and math.isfinite(eta)
           else "its bound has no data-free supremum (it grows with the state), so only the measured profile decides")
        + f"; measured over $T = {pro['steps']}$ steps the gradient norm changed by $10^{{{pro['log10_measured_over_T']:.2f}}}$."
    ))
    title = "Your cell: " + escape_tex(c.name)
    # a named Jacobian that is also a block of the state Jacobian is displayed once
    return {"title": title, "label": "sec:user_cell", "blocks": _displays_once(blocks)}, results
