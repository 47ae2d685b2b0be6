"""The report's section "Why gates help, measured": Lyapunov exponents, gate sweeps, training.

Every number comes from :mod:`numeric` (``lyapunov_spectrum``, ``numeric.sweeps``) or from an
adding-problem ``results.json`` written by ``gradproof experiment adding``; every sentence that
states a conclusion is chosen by comparing those numbers, never typed in as a result. The sizes
are small so the whole section costs a few seconds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .. import derive
from ..derive.errors import GradproofError
from ..numeric import init, lyapunov_spectrum, random_sequence
from ..numeric.sweeps import gate_sweep, norm_sweep, phase_diagram
from . import plots_dynamics
from .latex import escape_tex
from .section_story import motivation, takeaway
from .sections import Context, _fig, _num

__all__ = ["section_gates", "load_experiment"]

GATED = {"lstm": "LSTM ($b_f$)", "gru": "GRU, lecture ($b_u$)", "gru-torch": "GRU, PyTorch ($b_\\zeta$)"}
SIZES = dict(hidden=8, inputs=4, steps=120, warmup=20)
BIASES = (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0)
NORMS = (0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0)
PHASE_NORMS = (0.5, 1.0, 2.0, 3.0, 4.0)
PHASE_BIASES = (-2.0, 0.0, 2.0, 4.0, 6.0)
NEUTRAL = 0.02  # |λ₁| below this per step: a gradient keeps e^{-0.02·100} ≈ 14% of its size over 100 steps


def load_experiment(folder: Path) -> dict[str, Any]:
    """The adding-problem results.json in ``folder``, checked enough to draw it."""
    path = Path(folder) / "results.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise GradproofError(f"--experiments: no results.json in {folder}; run gradproof experiment adding --out {folder}") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise GradproofError(f"--experiments: cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list) or "baseline_mse" not in data:
        raise GradproofError(f"--experiments: {path} is not an adding-problem result (no 'runs'); rerun gradproof experiment adding")
    return data


def _largest_phrase(x: float, se: float) -> str:
    return f"${_num(x)} \\pm {_num(se, 2)}$"


def _sweeps(ctx: Context) -> tuple[list[dict], dict]:
    seed = ctx.seed
    gated = {c: gate_sweep(c, biases=BIASES, seed=seed, profile=c == "lstm", **SIZES) for c in GATED}
    rnn = norm_sweep("rnn-tanh", norms=NORMS, seed=seed, **SIZES)
    gamma = float(derive.gamma("tanh"))
    results: dict[str, Any] = {"sizes": SIZES, "gated": {c: s.to_json() for c, s in gated.items()},
                               "rnn": rnn.to_json(), "gamma_tanh": gamma}  # fmt: skip
    neutral_at = {}
    for c, s in gated.items():
        hit = np.nonzero(np.abs(s.largest) < NEUTRAL)[0]
        neutral_at[c] = float(s.values[hit[0]]) if hit.size else None
    results["neutral_level"] = NEUTRAL
    results["neutral_from_bias"] = neutral_at
    rnn_neutral = np.nonzero(np.abs(rnn.largest) < NEUTRAL)[0]
    results["rnn_neutral_norms"] = rnn.values[rnn_neutral].tolist()
    results["rnn_max_largest"] = float(rnn.largest.max())
    results["rnn_argmax_norm"] = float(rnn.values[int(np.argmax(rnn.largest))])

    fig = plots_dynamics.gate_sweep(
        {GATED[c]: {"values": s.values, "largest": s.largest, "stderr": s.stderr} for c, s in gated.items()},
        {"values": rnn.values, "largest": rnn.largest, "stderr": rnn.stderr, "threshold": 1.0 / gamma},
    )
    parts = []
    for c, s in gated.items():
        at = neutral_at[c]
        parts.append(
            f"{GATED[c].split(' (')[0]} from $\\lambda_1 = {_num(s.largest[0])}$ at $\\beta = {s.values[0]:g}$ to "
            f"${_num(s.largest[-1])}$ at $\\beta = {s.values[-1]:g}$"
            + (f" ($|\\lambda_1| < {NEUTRAL}$ from $\\beta = {at:g}$)" if at is not None else f" (never within {NEUTRAL} of 0)")
        )
    if rnn_neutral.size:
        rnn_text = (f"the tanh RNN comes within {NEUTRAL} of 0 only at $\\sigma_{{\\max}} \\in \\{{"
                    + ", ".join(f"{v:g}" for v in rnn.values[rnn_neutral]) + "\\}$")
    else:
        rnn_text = (f"the tanh RNN never comes within {NEUTRAL} of 0 on this grid: its largest exponent peaks at "
                    f"${_num(results['rnn_max_largest'])}$ at $\\sigma_{{\\max}} = {results['rnn_argmax_norm']:g}$")
    gated_best = max(float(np.max(-np.abs(s.largest))) for s in gated.values())
    rnn_best = float(np.max(-np.abs(rnn.largest)))
    if gated_best > rnn_best:
        verdict = (r"A gate gives a knob that moves $\lambda_1$ towards 0 monotonically and parks it there for a whole "
                   r"range of biases; the RNN's only knob, the weights' norm, crosses the neutral line at best at one point, "
                   r"and saturated units pull it back down.")  # fmt: skip
    else:
        verdict = (r"On this grid the RNN gets as close to $\lambda_1 = 0$ as the gated cells: the gates' advantage is not "
                   r"visible at these sizes.")  # fmt: skip
    results["closest_to_zero"] = {"gated": -gated_best, "rnn": -rnn_best}
    sz = SIZES
    blocks = [_fig(ctx, fig, "gate_sweep", (
        rf"Largest Lyapunov exponent $\lambda_1$ ($\pm$ one block standard error; hidden size {sz['hidden']}, "
        rf"$T = {sz['steps']}$ after a warm-up of {sz['warmup']}, the same weights and inputs along each curve). "
        r"Left: the bias of the gate that keeps the state, $\beta$, with PyTorch's initialisation elsewhere; "
        r"right: the tanh RNN's $\sigma_{\max}(W_h)$ through $1/\gamma = " + f"{1 / gamma:g}" + r"$. "
        + "; ".join(parts) + "; " + rnn_text + ". " + verdict
    ))]  # fmt: skip
    pick_b = [b for b in (-2.0, 0.0, 2.0, 6.0) if b in gated["lstm"].values]
    pick_s = [v for v in (0.5, 1.0, 2.0, 3.0) if v in rnn.values]
    lstm_curves = {f"$\\beta = {b:g}$": gated["lstm"].log_spectral[list(gated["lstm"].values).index(b)] for b in pick_b}
    rnn_curves = {f"$\\sigma_{{\\max}} = {v:g}$": rnn.log_spectral[list(rnn.values).index(v)] for v in pick_s}
    results["profiles_log10_at_T"] = {
        "lstm": {str(b): float(gated["lstm"].log_spectral[list(gated["lstm"].values).index(b), 0] / np.log(10)) for b in pick_b},
        "rnn-tanh": {str(v): float(rnn.log_spectral[list(rnn.values).index(v), 0] / np.log(10)) for v in pick_s},
    }
    prof = results["profiles_log10_at_T"]
    blocks.append(_fig(ctx, plots_dynamics.sweep_profiles([
        {"title": r"LSTM, forget bias $\beta$", "curves": lstm_curves},
        {"title": r"$\tanh$ RNN, $\sigma_{\max}(W_h)$", "curves": rnn_curves},
    ]), "sweep_profiles", (
        rf"The gradient profiles behind the left and right panels above, $T = {sz['steps']}$. After {sz['steps']} steps "
        r"the LSTM keeps $\|\partial s_T/\partial s_0\|_2 = 10^{" + f"{prof['lstm'][str(pick_b[-1])]:.1f}" + r"}$ at $\beta = "
        + f"{pick_b[-1]:g}" + r"$ against $10^{" + f"{prof['lstm'][str(pick_b[0])]:.1f}" + r"}$ at $\beta = " + f"{pick_b[0]:g}"
        + r"$; the RNN's best of these is $10^{" + f"{max(prof['rnn-tanh'].values()):.1f}" + r"}$."
    )))  # fmt: skip
    return blocks, results


def _phase(ctx: Context) -> tuple[list[dict], dict]:
    d = phase_diagram("lstm", norms=PHASE_NORMS, biases=PHASE_BIASES, hidden=SIZES["hidden"],
                      inputs=SIZES["inputs"], steps=SIZES["steps"], warmup=SIZES["warmup"], seed=ctx.seed,
                      workers=1, progress=False)  # fmt: skip  # one batch: no process pool inside the report
    res = d.to_json()
    z = d.largest
    neutral = np.abs(z) < NEUTRAL
    res["neutral_fraction_by_bias"] = neutral.mean(axis=1).tolist()
    res["exploding_points"] = int(np.sum(z > NEUTRAL))
    low, high = neutral.mean(axis=1)[0], neutral.mean(axis=1)[-1]
    if high > low:
        text = (f"with $\\beta = {d.biases[-1]:g}$, {int(neutral[-1].sum())} of {z.shape[1]} norms are within "
                f"{NEUTRAL} of 0, against {int(neutral[0].sum())} with $\\beta = {d.biases[0]:g}$: the forget bias, "
                "not the weights, decides whether the LSTM remembers")
    else:
        text = "on this grid the forget bias does not widen the neutral band"
    expl = res["exploding_points"]
    text += (f"; {expl} of {z.size} points have $\\lambda_1 > {NEUTRAL}$ (exploding)" if expl
             else f"; no point has $\\lambda_1 > {NEUTRAL}$: the sigmoid and tanh saturate before the product can grow")
    fig = plots_dynamics.phase_diagram(d.norms, d.biases, z, title=r"LSTM: $\lambda_1$ per step")
    return [_fig(ctx, fig, "phase_diagram", (
        rf"Phase diagram of the LSTM (hidden size {d.hidden}, $T = {d.steps}$): $\lambda_1$ over the norm of every recurrent "
        r"matrix and the forget bias, all grid points computed together. Blue: gradients vanish; white: they are kept; red: they grow. "
        + text[0].upper() + text[1:] + "."
    ), width=0.8)], res  # fmt: skip


def _spectra(ctx: Context) -> tuple[list[dict], dict]:
    cells = {"rnn-tanh": r"$\tanh$ RNN", "lstm": "LSTM", "gru-torch": "GRU (PyTorch)"}
    hidden, steps, warmup = 8, 400, 40
    xs = random_sequence(steps, 4, seed=ctx.seed + 11)
    spectra, res = {}, {"hidden": hidden, "steps": steps, "warmup": warmup, "cells": {}}
    for c, label in cells.items():
        s = lyapunov_spectrum(c, init(c, hidden=hidden, inputs=4, seed=ctx.seed), xs, warmup=warmup)
        spectra[label] = {"exponents": s.exponents, "steps": s.steps, "running": s.running[:, 0],
                          "stderr": float(s.stderr[0])}  # fmt: skip
        res["cells"][c] = {**s.to_json(), "running": s.running[:, 0].tolist()}
    top = {c: (r["exponents"][0], r["stderr"][0]) for c, r in res["cells"].items()}
    order = sorted(top, key=lambda c: -top[c][0])
    res["order_by_largest"] = order
    fig = plots_dynamics.lyapunov_spectra(spectra)
    return [_fig(ctx, fig, "lyapunov_spectra", (
        rf"Full Lyapunov spectra (hidden size {hidden}, PyTorch's default initialisation, the same inputs, $T = {steps}$ "
        rf"after a warm-up of {warmup}) and the running estimate of $\lambda_1$. "
        + ", ".join(f"{escape_tex(c)}: $\\lambda_1 = {_num(top[c][0])} \\pm {_num(top[c][1], 2)}$" for c in order)
        + r". The sum of each spectrum equals the mean of $\log|\det J_t|$ (tested). "
        + ("At initialisation every cell is contractive: all three lose gradient at every step, so "
           "the gates help only once training moves them."
           if all(top[c][0] < -NEUTRAL for c in order) else
           f"{escape_tex(order[0])} is the least contractive at initialisation.")
    ))], res  # fmt: skip


def _moved(outcome: dict, cells: list[str], T: int) -> str:
    """Which cells training moved towards λ₁ = 0 (within NEUTRAL), chosen from the numbers."""
    near, away = [], []
    for c in cells:
        r = outcome.get((c, T))
        if r is None:
            continue
        b, a = abs(r["before"]["largest_exponent"]), abs(r["after"]["largest_exponent"])
        (near if a < NEUTRAL and a < b else away).append(escape_tex(c))
    if near and away:
        return (f"Training brought {', '.join(near)} to $|\\lambda_1| < {NEUTRAL}$, the regime where a gradient survives "
                f"the whole sequence, but not {', '.join(away)}.")
    if near:
        return f"Training brought every cell to $|\\lambda_1| < {NEUTRAL}$."
    return f"Training brought no cell to $|\\lambda_1| < {NEUTRAL}$."


def _experiment(ctx: Context, data: dict) -> tuple[list[dict], dict]:
    runs = data["runs"]
    lengths = sorted({int(r["T"]) for r in runs})
    cells = list(dict.fromkeys(r["cell"] for r in runs))
    outcome = {(r["cell"], int(r["T"])): r for r in runs}
    rows = []
    for T in lengths:
        row = [f"{T}"]
        for c in cells:
            r = outcome.get((c, T))
            row.append("--" if r is None else f"${_num(r['final_test_mse'])}$ ({escape_tex(r['outcome'])})")
        rows.append(row)
    gated = [c for c in cells if not c.startswith("rnn")]
    rnn = [c for c in cells if c.startswith("rnn")]
    claims = []
    for T in lengths:
        rnn_failed = all(outcome[(c, T)]["outcome"] == "failed" for c in rnn if (c, T) in outcome)
        solvers = [c for c in gated if (c, T) in outcome and outcome[(c, T)]["outcome"] == "solved"]
        if rnn and rnn_failed and solvers:
            claims.append(f"at $T = {T}$ the RNN failed while {', '.join(escape_tex(s) for s in solvers)} solved it")
        elif rnn and not rnn_failed:
            claims.append(f"at $T = {T}$ the RNN reached test MSE ${_num(outcome[(rnn[0], T)]['final_test_mse'])}$")
        else:
            claims.append(f"at $T = {T}$ no gated cell solved it within {data['config']['steps']} steps")
    res = {"source": "results.json of gradproof experiment adding", "summary": data.get("summary"),
           "final_test_mse": {f"{c}@{T}": outcome[(c, T)]["final_test_mse"] for (c, T) in outcome},
           "claims": claims}  # fmt: skip
    cfg = data["config"]
    blocks: list[dict] = [
        {"kind": "subsection", "title": "Trained: the adding problem"},
        {"kind": "text", "text": (
            "The adding problem \\citep{hochreiter1997long}: two values of a random sequence are marked, one in "
            "each half, and the network must output their sum at the end. Predicting 1 gives test MSE "
            f"${_num(data['baseline_mse'])}$; a model counts as solving a length below ${_num(data['solved_mse'])}$ "
            f"and as failing above ${_num(data['failed_above'])}$. Each cell has about {cfg['budget']} parameters, "
            f"trained for {cfg['steps']} Adam steps (learning rate {cfg['lr']:g}, batch {cfg['batch']}, norm clipping at "
            f"{cfg['clip']:g}, seed {cfg['seed']}). Measured: " + "; ".join(claims) + "."
        )},
        {"kind": "table", "columns": ["$T$", *[escape_tex(c) for c in cells]], "rows": rows,
         "align": "l" + "r" * len(cells), "caption": "Final test MSE (outcome) of each cell at each length."},
        _fig(ctx, plots_dynamics.adding_curves(runs, baseline=data["baseline_mse"], solved=data["solved_mse"]),
             "adding_curves", "Test MSE during training, per sequence length; dotted: the baseline of always answering 1."),
        _fig(ctx, plots_dynamics.adding_dynamics(runs), "adding_dynamics", (
            "Largest Lyapunov exponent of each cell before and after training (left) and the gradient profile at the "
            "longest length (right). "
            + "; ".join(f"{escape_tex(c)} at $T = {lengths[-1]}$: $\\lambda_1$ ${_num(outcome[(c, lengths[-1])]['before']['largest_exponent'])}$ "
                        f"$\\to$ ${_num(outcome[(c, lengths[-1])]['after']['largest_exponent'])}$"
                        for c in cells if (c, lengths[-1]) in outcome) + ". " + _moved(outcome, cells, lengths[-1])
        )),
    ]  # fmt: skip
    return blocks, res


def section_gates(ctx: Context) -> tuple[dict, dict]:
    """Lyapunov spectra, the keep-gate and norm sweeps, the phase diagram, and (optionally) training."""
    lstm = derive.cell("lstm")
    d = derive.step_jacobian(lstm)
    key = next(k for k in d.blocks if all(str(v).startswith("c") for v in k))  # ∂c^{(t)}/∂c^{(t-1)}
    cc = d.blocks[key]
    blocks: list[dict] = [
        motivation(
            "The theorem and the gate paths say what can happen; they do not say what does happen over a long "
            "sequence, nor whether the gates really make the difference. This section answers that by "
            "measurement: how fast does the gradient of each cell shrink or grow per step, and which knob moves it?"
        ),
        {"kind": "text", "text": (
            r"The theorem bounds the gradient; what it actually does over a long span is measured by the Lyapunov "
            r"exponents of the product $J_T J_{T-1} \cdots J_1$: $\lambda_1 < 0$ means $\|\partial s_T/\partial s_t\|_2$ "
            r"shrinks like $e^{\lambda_1 (T-t)}$, $\lambda_1 > 0$ that it grows, $\lambda_1 \approx 0$ that it is kept. "
            r"gradproof computes them by re-orthonormalising the derived step Jacobians (the QR method of "
            r"\citet{benettin1980lyapunov}, as \citet{engelken2020lyapunov} and \citet{vogt2022lyapunov} do for "
            r"RNNs), in natural logarithms per step. The LSTM's cell path is "
            r"where a gate acts directly on this product; its derived block, $"
            + derive.latex(derive.algebra.JacobianSymbol(*key)) + " = " + derive.latex(cc)
            + r"$ (Section~\ref{sec:lstm}), shows that a forget gate near 1 keeps the cell's contribution to the product. The experiments below vary the bias "
            r"$\beta$ of the gate that keeps the state: the LSTM's $b_f = \beta$, PyTorch's GRU $b_\zeta = \beta$ ($\zeta = 1$ "
            r"keeps the state), and the lecture's GRU $b_u = -\beta$ ($u = 0$ keeps it). Figure~\ref{fig:gate_sweep} "
            r"sweeps that bias, and Figure~\ref{fig:sweep_profiles} shows the gradient profiles behind the sweep."
        )},
    ]  # fmt: skip
    results: dict[str, Any] = {}
    b, results["sweeps"] = _sweeps(ctx)
    blocks += b
    blocks.append({"kind": "text", "text": (
        r"The sweep turns one knob at a time. Figure~\ref{fig:phase_diagram} turns two together, the forget bias "
        r"and the norm of every recurrent matrix of the LSTM, to show which of the two decides whether the "
        r"gradient is kept."
    )})
    b, results["phase_diagram"] = _phase(ctx)
    blocks += b
    blocks.append({"kind": "text", "text": (
        r"The sweeps follow $\lambda_1$ alone. Figure~\ref{fig:lyapunov_spectra} gives every exponent of the three "
        r"cells at PyTorch's default initialisation, with the running estimate of $\lambda_1$ that shows the QR "
        r"method has settled."
    )})
    b, results["spectra"] = _spectra(ctx)
    blocks += b
    experiments = getattr(ctx, "experiments", None)
    if experiments is not None:
        b, results["adding"] = _experiment(ctx, load_experiment(experiments))
        blocks += b
    else:
        blocks.append({"kind": "text", "text": (
            r"Run \texttt{gradproof experiment adding --out DIR} and \texttt{gradproof report --experiments DIR} to add "
            r"the trained models (the adding problem) to this section."
        )})  # fmt: skip
    sw = results["sweeps"]
    lstm_at = sw["neutral_from_bias"].get("lstm")
    spectra = results["spectra"]["cells"]
    blocks.append(takeaway(
        r"Measured, a gate's bias is the knob: the LSTM's largest exponent comes within " + f"{NEUTRAL}" + r" of 0 "
        + (rf"from a forget bias $\beta = {lstm_at:g}$ on" if lstm_at is not None else "at no forget bias of the grid")
        + r", while the closest the $\tanh$ RNN gets by scaling its weights is $|\lambda_1| = "
        + _num(results["sweeps"]["closest_to_zero"]["rnn"]) + r"$. At PyTorch's initialisation all three cells are "
        + ("contractive" if all(c["exponents"][0] < 0 for c in spectra.values()) else "not all contractive")
        + r" ($\lambda_1$ of the LSTM $" + _num(spectra["lstm"]["exponents"][0]) + r"$ per step)."
    ))
    return {"title": "Why gates help, measured", "label": "sec:gates", "blocks": blocks}, results
