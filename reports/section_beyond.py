"""Report section "Beyond the vanilla RNN: skip connections, bidirectional and stacked RNNs".

Layout only: the equations are printed by :func:`derive.latex` from the derived objects of
:mod:`derive.skip` and :mod:`derive.architectures`; the numbers come from :mod:`numeric.deep` and
derive's counts, and every number shown is returned for results.json.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import sympy as sp

from .. import derive
from ..derive import architectures as arch
from ..derive import skip
from ..numeric.deep import feedforward_profile
from . import plots_beyond
from .latex import escape_tex
from .section_story import motivation, takeaway
from .sections import Context, _eq_block, _fig, _num, split_equation

__all__ = ["section_beyond", "causal_heatmap"]


def causal_heatmap(ctx: Context) -> tuple[list[dict], dict[str, Any]]:
    """‖∂o_t/∂x_s‖₂ of a unidirectional and a bidirectional tanh RNN, side by side.

    Both are evaluated from the derived Jacobians by :func:`numeric.input_sensitivity`; the
    causal zeros are exact zeros there, so they are counted, not estimated.
    """
    from ..numeric import StackedModel, input_sensitivity, random_sequence

    T, hidden, inputs = 12, 8, 3
    xs = random_sequence(T, inputs, seed=ctx.seed + 11)
    maps = {}
    for title, bidirectional in (("unidirectional", False), ("bidirectional", True)):
        model = StackedModel.init("rnn-tanh", hidden=hidden, inputs=inputs, bidirectional=bidirectional,
                                  seed=ctx.seed, spectral_norm=0.9)  # fmt: skip
        maps[title] = input_sensitivity(model, xs)
    uni, bi = maps["unidirectional"], maps["bidirectional"]
    zeros_uni = int(np.count_nonzero(uni == 0.0))
    zeros_bi = int(np.count_nonzero(bi == 0.0))
    future = float(np.max(uni[np.triu_indices(T, k=1)]))
    block = _fig(ctx, plots_beyond.causal_heatmaps(maps), "causal_heatmap", (
        r"$\|\partial o_t/\partial x_s\|_2$ of a $\tanh$ RNN (hidden " + str(hidden) + r", $T = " + str(T)
        + r"$, $\sigma_{\max}(W_h) = 0.9$), unidirectional and bidirectional (both directions concatenated, as "
        r"\texttt{torch.nn} returns them), evaluated from the derived Jacobians. The unidirectional map has "
        + str(zeros_uni) + r" exact zeros, every $s > t$ (largest entry above the diagonal: $" + _num(future)
        + r"$): its output at $t$ cannot see the future, which is what a language model needs. The bidirectional "
        r"one has " + str(zeros_bi) + r" zeros: every output sees the whole sequence, so it cannot serve as a "
        r"language model."
    ), width=0.8)  # fmt: skip
    results = {"causal_heatmap": {"T": T, "hidden": hidden, "unidirectional": uni, "bidirectional": bi,
                                  "zeros_unidirectional": zeros_uni, "zeros_bidirectional": zeros_bi}}  # fmt: skip
    return [block], results


def section_beyond(ctx: Context) -> tuple[dict, dict]:
    blocks: list[dict] = []
    results: dict[str, Any] = {}

    # -- skip connections ---------------------------------------------------------------------
    blocks.append(motivation(
        "The same product of Jacobians appears wherever layers are composed: through depth in a feed-forward "
        "stack, through depth and time in a stacked RNN, and in both directions of a bidirectional one. This "
        "section answers which of the remedies carry over, and what each architecture costs."
    ))
    blocks.append({"kind": "text", "text": (
        "Vanishing gradients are not just an RNN problem: any deep composition multiplies Jacobians. "
        "A skip connection adds a path whose Jacobian does not shrink. For a layer "
        r"$F(x) = \tanh(W x + b)$ the chain rule gives, for the residual block $y = x + F(x)$ \citep{he2016deep}:"
    )})  # fmt: skip
    res = skip.residual("layer-tanh")
    blocks.append({"kind": "equation", "math": res.latex()})
    blocks.append({"kind": "text", "text": "with the map's own Jacobian"})
    blocks.append({"kind": "equation", "math": derive.latex(res.steps[0].equation)})
    hw = skip.highway("layer-tanh")
    blocks.append({"kind": "text", "text": (
        r"For the highway block $y = T \odot H(x) + (1 - T) \odot x$ with the transform gate "
        r"$T = \sigma(W_T x + b_T)$ \citep{srivastava2015highway}:"
    )})  # fmt: skip
    blocks.append({"kind": "align", "lines": split_equation(hw.lhs, hw.result)})
    closed, opened = skip.highway_limit("layer-tanh", gate=0), skip.highway_limit("layer-tanh", gate=1)
    blocks.append({"kind": "text", "text": (
        r"With the gate closed ($T \equiv 0$, the limit $b_T \to -\infty$) and open ($T \equiv 1$):"
    )})  # fmt: skip
    blocks.append({"kind": "equation", "math": closed.latex() + r",\qquad " + opened.latex()})
    dn = skip.dense("layer-tanh")
    blocks.append({"kind": "text", "text": r"The dense block $y = [x; F(x)]$ \citep{huang2017densely} stacks the two:"})
    blocks.append({"kind": "equation", "math": dn.latex()})

    # -- gradient norm vs depth ---------------------------------------------------------------
    depth, width = 50, 32
    runs = {
        "plain, tanh": feedforward_profile(kind="plain", depth=depth, width=width, seed=ctx.seed, activation="tanh"),
        "plain, sigmoid": feedforward_profile(kind="plain", depth=depth, width=width, seed=ctx.seed, activation="sigmoid"),
        "residual, sigmoid": feedforward_profile(kind="residual", depth=depth, width=width, seed=ctx.seed, activation="sigmoid"),
        "highway, sigmoid ($b_T = -4$)": feedforward_profile(
            kind="highway", depth=depth, width=width, seed=ctx.seed, activation="sigmoid", gate_bias=-4.0
        ),
    }  # fmt: skip
    decades = {k: p.log10_decades for k, p in runs.items()}
    results["depth"] = {"depth": depth, "width": width, "log10_norm_at_input": decades,
                        "log_norms": {k: p.log_norms for k, p in runs.items()}}  # fmt: skip
    blocks.append(_fig(ctx, plots_beyond.depth_norms_figure({k: p.log_norms for k, p in runs.items()}),
                       "depth_norms", (
        rf"$\|\partial y_L/\partial y_l\|_2$ through a feed-forward stack of depth {depth}, width {width} "
        r"(weights $\mathcal N(0, 1/n)$, same seed), from the derived block Jacobians; checked against torch "
        r"autodiff in the tests. At the input: "
        + ", ".join(f"{escape_tex(k) if '$' not in k else k} $10^{{{v:.1f}}}$" for k, v in decades.items()) + "."
    )))  # fmt: skip

    # -- bidirectional --------------------------------------------------------------------------
    T = 4
    fwd = arch.causal_pattern("rnn-tanh", steps=T, direction="forward")
    bwd = arch.causal_pattern("rnn-tanh", steps=T, direction="backward")
    blocks.append({"kind": "text", "text": (
        r"A bidirectional RNN \citep{schuster1997bidirectional} runs a second recurrence backwards in time with its own weights; the output is "
        r"$[h^{(t)}_{\rightarrow}; h^{(t)}_{\leftarrow}]$. The blocks $\partial s^{(t)}/\partial x^{(s)}$ of each "
        rf"direction over $T = {T}$ steps, built from the step Jacobians $A$ and input Jacobians $K$:"
    )})  # fmt: skip
    blocks.append({"kind": "equation", "math": fwd.latex()})
    blocks.append({"kind": "equation", "math": bwd.latex()})
    results["causal_zero_blocks"] = {"T": T, "forward": len(fwd.zeros), "backward": len(bwd.zeros)}
    blocks.append({"kind": "text", "text": (
        rf"{len(fwd.zeros)} of the {T * T} forward blocks are exactly zero: $h^{{(t)}}_\rightarrow$ never sees "
        r"a later input, and the backward direction needs the whole sequence before it can start, which is why a "
        "bidirectional RNN cannot serve language modelling. The joint step of the two directions is block "
        r"diagonal in the joint state $h^{(k)}_{\leftrightarrow} = [h^{(k)}_{\rightarrow}; h^{(T+1-k)}_{\leftarrow}]$ "
        "(not the pre-activation $z$ of Section~\\ref{sec:rnn}); they mix only in the next layer:"
    )})  # fmt: skip
    joint = arch.bidirectional_step("rnn-tanh")
    z, z_prev = joint.lhs.numerator, joint.lhs.denominator  # printed as h_<->: z^{(t)} is the RNN's pre-activation
    both = {z: sp.MatrixSymbol(r"h_{\leftrightarrow}^{(k)}", *z.shape),
            z_prev: sp.MatrixSymbol(r"h_{\leftrightarrow}^{(k-1)}", *z_prev.shape)}  # fmt: skip
    blocks.append({"kind": "equation", "math": derive.latex(derive.algebra.equation(joint.lhs.xreplace(both), joint.result))})
    heat_blocks, heat_results = causal_heatmap(ctx)
    blocks += heat_blocks
    results.update(heat_results)

    # -- stacked ------------------------------------------------------------------------------
    st = arch.stack_steps("rnn-tanh", depth=2)
    blocks.append({"kind": "text", "text": (
        r"In a stack $h^{(t)}_l = f(W^l h^{(t-1)}_l + U^l h^{(t)}_{l-1} + b^l)$ each node has two local Jacobians, "
        "the time step and the depth step:"
    )})  # fmt: skip
    for s in st.steps:
        blocks += _eq_block(s)
    Tg, Lg, start = 4, 3, (1, 1)
    paths = arch.grid_paths(*start, Tg, Lg)
    sj = arch.stack_jacobian("rnn-tanh", t=start[0], l=start[1], steps=Tg, depth=Lg)
    formula = arch.path_count()
    blocks.append({"kind": "text", "text": (
        "The chain rule on the grid sums one ordered product per monotone path; there are"
    )})  # fmt: skip
    blocks.append({"kind": "equation", "math": derive.latex(arch.path_count_derivation()[-1].equation)})
    blocks.append({"kind": "text", "text": rf"of them. For $(t, l) = {start}$, $(T, L) = ({Tg}, {Lg})$:"})
    blocks.append({"kind": "align", "lines": split_equation(sj.lhs, sj.result, per_line=2)})
    blocks.append(_fig(ctx, plots_beyond.grid_paths_figure(paths, start=start, steps=Tg, depth=Lg, count=int(sj.count)),
                       "grid_paths", (
        rf"The {int(sj.count)} monotone grid paths from $s_{{{start[0]}}}^{{{start[1]}}}$ to "
        rf"$s_{{{Tg}}}^{{{Lg}}}$; each contributes one ordered product of $A$ and $B$ factors."
    )))  # fmt: skip
    big = int(formula.subs({sp.Symbol("T", integer=True, nonnegative=True): 100, sp.Symbol("t", integer=True, nonnegative=True): 1,
                            sp.Symbol("L", integer=True, nonnegative=True): 4, sp.Symbol("l", integer=True, nonnegative=True): 1}))  # fmt: skip
    results["paths"] = {"example": int(sj.count), "T100_L4_from_1_1": big}

    # -- takeaways ----------------------------------------------------------------------------
    n, m = 32, 8
    lstm_p, gru_p = derive.cell("lstm").parameter_count(n, m), derive.cell("gru").parameter_count(n, m)
    results["takeaways"] = {"lstm_parameters": lstm_p, "gru_parameters": gru_p}
    d = decades
    items = [
        rf"Skips when deep: at depth {depth} the plain sigmoid stack keeps $10^{{{d['plain, sigmoid']:.1f}}}$ "
        rf"of the gradient, the residual one $10^{{{d['residual, sigmoid']:.1f}}}$.",
        rf"Stacks multiply paths: from $(1, 1)$ to $(T, L) = (100, 4)$ there are ${_num(big)}$ paths, so the "
        r"gradient of a deep stack can grow with their number even when every factor has norm at most 1.",
        rf"Bidirectional only when the whole input is available: {len(fwd.zeros)} of {T * T} forward blocks "
        "are causal zeros, and the backward direction reads the future.",
        rf"LSTM by default, GRU when speed matters: at $n = {n}$, $m = {m}$ the GRU has {gru_p} parameters "
        rf"against the LSTM's {lstm_p} (a ratio of {gru_p / lstm_p:.2f}).",
        "Clip the gradient norm for the exploding side (see the clipping section); skips do not bound it.",
    ]
    blocks.append(takeaway(
        "Each measured above:\n\\begin{itemize}\n" + "\n".join(f"\\item {it}" for it in items) + "\n\\end{itemize}"
    ))
    return {"title": "Beyond the vanilla RNN: skip connections, bidirectional and stacked RNNs",
            "label": "sec:beyond", "blocks": blocks}, results  # fmt: skip
