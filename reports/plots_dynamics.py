r"""Figures of "Why gates help, measured": sweeps, the phase diagram, Lyapunov spectra, training.

Drawing only, in the report's style (:mod:`reports.figures`, the palette and helpers of
:mod:`reports.plots`); every number comes in as an argument. Exponents are natural logs per
step, as :func:`numeric.lyapunov_spectrum` returns them; gradient norms are shown as log10.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from .figures import style
from .plots import _DASHES, _GREY, _SERIES, WIDTH, _array, _fail, _finish, _log10

__all__ = ["gate_sweep", "sweep_profiles", "phase_diagram", "lyapunov_spectra", "adding_curves",
           "adding_dynamics"]  # fmt: skip

_LAMBDA = r"largest Lyapunov exponent $\lambda_1$ (per step)"


def _new(height: float, cols: int = 1, rows: int = 1, **kw: Any) -> tuple[Figure, Any]:
    fig = Figure(figsize=(WIDTH, height), layout="constrained")
    return fig, fig.subplots(rows, cols, squeeze=False, **kw)


def gate_sweep(gated: Mapping[str, Mapping[str, Any]], rnn: Mapping[str, Any]) -> Figure:
    r"""λ₁ against the keep bias β for the gated cells, and against σ_max(W_h) for the RNN.

    Parameters
    ----------
    gated : label -> {"values": (V,) β, "largest": (V,), "stderr": (V,)}.
    rnn : {"values": (A,) σ_max, "largest": (A,), "stderr": (A,), "threshold": 1/γ}.
    """
    where = "gate_sweep"
    if not gated:
        raise _fail(where, "'gated' must name at least one cell")
    with style():
        fig, axes = _new(2.9, cols=2, sharey=True)
        a, b = axes[0]
        for (label, s), colour, mk in zip(gated.items(), _SERIES, "osD^v", strict=False):
            x = _array(where, "values", s["values"])
            a.errorbar(x, _array(where, "largest", s["largest"]), yerr=_array(where, "stderr", s["stderr"]),
                       color=colour, marker=mk, markersize=3.5, capsize=2, label=label)  # fmt: skip
        a.axhline(0.0, color=_GREY, linewidth=0.8)
        a.set_xlabel(r"keep bias $\beta$ ($b_f = \beta$, $b_\zeta = \beta$, $b_u = -\beta$)")
        a.set_ylabel(_LAMBDA)
        a.set_title("gated cells: the gate that keeps the state")
        a.legend(loc="lower right")
        x = _array(where, "rnn values", rnn["values"])
        b.errorbar(x, _array(where, "rnn largest", rnn["largest"]), yerr=_array(where, "rnn stderr", rnn["stderr"]),
                   color=_SERIES[3], marker="o", markersize=3.5, capsize=2, label=r"$\tanh$ RNN")  # fmt: skip
        b.axvline(float(rnn["threshold"]), color="#000000", linestyle="--", linewidth=1.0,
                  label=r"$\sigma_{\max} = 1/\gamma$")  # fmt: skip
        b.axhline(0.0, color=_GREY, linewidth=0.8)
        b.set_xlabel(r"$\sigma_{\max}(W_h)$")
        b.set_title(r"vanilla $\tanh$ RNN: the weights' norm")
        b.legend(loc="lower right")
        return _finish(fig)


def sweep_profiles(panels: Sequence[Mapping[str, Any]]) -> Figure:
    r"""Gradient profiles log10‖∂s_T/∂s_t‖₂ for a few swept values, one panel per cell.

    Parameters
    ----------
    panels : each {"title": str, "curves": {label: (T,) natural-log profile}}.
    """
    where = "sweep_profiles"
    if not panels:
        raise _fail(where, "'panels' must hold at least one panel")
    with style():
        fig, axes = _new(2.9, cols=len(panels), sharey=True)
        for ax, panel in zip(axes[0], panels, strict=True):
            for (label, values), colour, ls in zip(panel["curves"].items(), _SERIES, _DASHES, strict=False):
                v = _array(where, f"curve {label!r}", values)
                ax.plot(np.arange(v.size, 0, -1), _log10(v), color=colour, linestyle=ls, label=label)
            ax.set_title(panel["title"])
            ax.set_xlabel(r"steps back $T - t$")
            ax.legend(loc="lower left", fontsize=8)
        axes[0][0].set_ylabel(r"$\log_{10}\|\partial s_T/\partial s_t\|_2$")
        return _finish(fig)


def phase_diagram(norms: Any, biases: Any, largest: Any, *, title: str) -> Figure:
    r"""λ₁ over (σ_max of the recurrent matrices, keep bias β) as a colour map, 0 marked.

    Parameters
    ----------
    norms : (A,); biases : (B,); largest : (B, A), row j is ``biases[j]``.
    """
    where = "phase_diagram"
    x = _array(where, "norms", norms)
    y = _array(where, "biases", biases)
    z = _array(where, "largest", largest, ndim=2)
    if z.shape != (y.size, x.size):
        raise _fail(where, f"'largest' must have shape (len(biases), len(norms)) = {(y.size, x.size)}, got {z.shape}")
    with style():
        fig, axes = _new(3.2)
        ax = axes[0][0]
        low = min(float(z.min()), -1e-3)
        high = max(float(z.max()), 1e-3)
        mesh = ax.pcolormesh(np.arange(x.size + 1) - 0.5, np.arange(y.size + 1) - 0.5, z, cmap="RdBu_r",
                             norm=TwoSlopeNorm(vcenter=0.0, vmin=low, vmax=high), shading="flat")  # fmt: skip
        for j in range(y.size):
            for i in range(x.size):
                v = z[j, i]
                dark = abs(v) > 0.55 * (high if v > 0 else -low)
                ax.text(i, j, f"{v:.2g}", ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")  # fmt: skip
        ax.set_xticks(np.arange(x.size), [f"{v:g}" for v in x])
        ax.set_yticks(np.arange(y.size), [f"{v:g}" for v in y])
        ax.grid(False)
        ax.set_xlabel(r"$\sigma_{\max}$ of every recurrent matrix $W_\bullet$")
        ax.set_ylabel(r"keep bias $\beta$")
        ax.set_title(title)
        fig.colorbar(mesh, ax=ax, label=r"$\lambda_1$ per step")
        return _finish(fig)


def lyapunov_spectra(spectra: Mapping[str, Mapping[str, Any]]) -> Figure:
    r"""The full spectra of several cells, and the convergence of λ₁ with its standard error.

    Parameters
    ----------
    spectra : label -> {"exponents": (S,), "steps": (P,), "running": (P, S) or (P,) for λ₁,
        "stderr": float, the standard error of λ₁}.
    """
    where = "lyapunov_spectra"
    if not spectra:
        raise _fail(where, "'spectra' must name at least one cell")
    with style():
        fig, axes = _new(3.0, cols=2)
        a, b = axes[0]
        for (label, s), colour, mk in zip(spectra.items(), _SERIES, "osD^v", strict=False):
            ex = _array(where, "exponents", s["exponents"])
            a.plot((np.arange(ex.size) + 0.5) / ex.size, ex, color=colour, marker=mk, markersize=3,
                   linewidth=1.0, label=f"{label} (S = {ex.size})")  # fmt: skip
            steps = _array(where, "steps", s["steps"])
            run = np.asarray(s["running"], dtype=float)
            top = run[:, 0] if run.ndim == 2 else run
            b.plot(steps, top, color=colour, label=label)
            se = float(s["stderr"])
            b.fill_between([steps[0], steps[-1]], top[-1] - 2 * se, top[-1] + 2 * se, color=colour, alpha=0.15,
                           linewidth=0)  # fmt: skip
        a.axhline(0.0, color=_GREY, linewidth=0.8)
        a.set_xlabel(r"index $i/S$ (exponents sorted, largest first)")
        a.set_ylabel(r"Lyapunov exponent $\lambda_i$ (per step)")
        a.set_title("full spectrum")
        a.legend(loc="lower left", fontsize=8)
        b.set_xscale("log")
        b.set_xlabel("steps used (after the warm-up)")
        b.set_ylabel(r"running estimate of $\lambda_1$")
        b.set_title(r"convergence (band: final $\pm 2$ s.e.)")
        return _finish(fig)


def adding_curves(runs: Sequence[Mapping[str, Any]], *, baseline: float, solved: float) -> Figure:
    """Test MSE against training step, one panel per sequence length, one line per cell."""
    where = "adding_curves"
    lengths = sorted({int(r["T"]) for r in runs})
    if not lengths:
        raise _fail(where, "'runs' is empty")
    cells = list(dict.fromkeys(r["cell"] for r in runs))
    with style():
        fig, axes = _new(3.1, cols=len(lengths), sharey=True)
        for ax, T in zip(axes[0], lengths, strict=True):
            for r in runs:
                if int(r["T"]) != T:
                    continue
                j = cells.index(r["cell"])
                ax.plot(r["curve_steps"], r["test_mse"], color=_SERIES[j], linestyle=_DASHES[j],
                        label=f"{r['cell']} (n = {r['hidden']})")  # fmt: skip
            ax.axhline(baseline, color="#000000", linestyle=":", linewidth=1.0, label="baseline: predict 1")
            ax.axhline(solved, color=_GREY, linestyle="--", linewidth=0.8, label="solved below")
            ax.set_yscale("log")
            ax.set_title(f"T = {T}")
            ax.set_xlabel("training step")
        axes[0][0].set_ylabel("test MSE")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=8)
        return _finish(fig)


def adding_dynamics(runs: Sequence[Mapping[str, Any]]) -> Figure:
    """λ₁ of every trained cell before and after training, per length; and the longest length's profiles."""
    where = "adding_dynamics"
    if not runs:
        raise _fail(where, "'runs' is empty")
    lengths = sorted({int(r["T"]) for r in runs})
    cells = list(dict.fromkeys(r["cell"] for r in runs))
    with style():
        fig, axes = _new(3.0, cols=2)
        a, b = axes[0]
        width = 0.8 / len(cells)
        for j, c in enumerate(cells):
            xs = np.arange(len(lengths)) + (j - (len(cells) - 1) / 2) * width
            by_t = {int(r["T"]): r for r in runs if r["cell"] == c}
            before = [by_t[T]["before"]["largest_exponent"] if T in by_t else np.nan for T in lengths]
            after = [by_t[T]["after"]["largest_exponent"] if T in by_t else np.nan for T in lengths]
            a.scatter(xs, before, marker="o", facecolors="none", edgecolors=_SERIES[j], s=22)
            a.scatter(xs, after, marker="o", color=_SERIES[j], s=22, label=c)
            for x0, y0, y1 in zip(xs, before, after, strict=True):
                a.annotate("", (x0, y1), (x0, y0), arrowprops=dict(arrowstyle="->", color=_SERIES[j], lw=0.9))
        a.axhline(0.0, color=_GREY, linewidth=0.8)
        a.set_xticks(np.arange(len(lengths)), [f"T = {T}" for T in lengths])
        a.grid(False, axis="x")
        a.set_ylabel(r"$\lambda_1$ per step")
        a.set_title("before (open) → after (filled) training")
        fig.legend(*a.get_legend_handles_labels(), loc="outside lower left", ncols=len(cells), fontsize=8)
        T = lengths[-1]
        for r in runs:
            if int(r["T"]) != T:
                continue
            j = cells.index(r["cell"])
            for key, ls in (("before", ":"), ("after", "-")):
                v = _array(where, "log_spectral", r[key]["log_spectral"])
                b.plot(np.arange(v.size, 0, -1), _log10(v), color=_SERIES[j], linestyle=ls,
                       label=f"{r['cell']}, {key}")  # fmt: skip
        b.set_xlabel(r"steps back $T - t$")
        b.set_ylabel(r"$\log_{10}\|\partial s_T/\partial s_t\|_2$")
        b.set_title(f"gradient profile at T = {T}")
        b.legend(loc="lower left", fontsize=7)
        return _finish(fig)
