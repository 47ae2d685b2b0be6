"""Figures of the section "Beyond the vanilla RNN": the grid-path picture and gradient norm vs depth.

Drawing only: every number comes from derive/numeric (path lists from
:func:`derive.architectures.grid_paths`, log norms from :func:`numeric.feedforward_profile`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..derive.errors import GradproofError
from .figures import style
from .plots import _finish

__all__ = ["grid_paths_figure", "depth_norms_figure"]


def grid_paths_figure(
    paths: Sequence[Sequence[tuple[int, int]]], *, start: tuple[int, int], steps: int, depth: int, count: int
) -> Figure:
    """The (t, l) grid of a stacked RNN with every monotone path from ``start`` to (steps, depth).

    Parameters
    ----------
    paths : the node sequences after ``start`` (as :func:`derive.architectures.grid_paths` gives).
    start : (t, l), the node differentiated against.
    steps, depth : T and L.
    count : the number of paths from the derived formula, printed in the title.
    """
    if len(paths) != count:
        raise GradproofError(f"grid_paths_figure: {len(paths)} paths given but count={count}")
    with style():
        fig = Figure(figsize=(5.2, 3.2))
        ax = fig.add_subplot()
        for t in range(0, steps + 1):
            for l in range(1, depth + 1):
                ax.plot(t, l, "o", color="0.75", ms=7, zorder=1)
        offsets = np.linspace(-0.12, 0.12, max(len(paths), 1))
        colours = [f"C{k % 10}" for k in range(len(paths))]
        for k, p in enumerate(paths):
            nodes = [start, *p]
            xs = np.array([n[0] for n in nodes], dtype=float) + offsets[k] * 0.6
            ys = np.array([n[1] for n in nodes], dtype=float) + offsets[k]
            ax.plot(xs, ys, "-", color=colours[k], lw=1.6, alpha=0.8, zorder=2)
        ax.plot(*start, "o", color="C3", ms=10, zorder=3)
        ax.plot(steps, depth, "s", color="k", ms=9, zorder=3)
        ax.annotate(f"$s_{{{start[0]}}}^{{{start[1]}}}$", start, xytext=(-14, -16), textcoords="offset points")
        ax.annotate(f"$s_{{{steps}}}^{{{depth}}}$", (steps, depth), xytext=(6, 6), textcoords="offset points")
        ax.set_xticks(range(0, steps + 1))
        ax.set_yticks(range(1, depth + 1))
        ax.set_xlim(-0.5, steps + 0.7)
        ax.set_ylim(0.5, depth + 0.6)
        ax.set_xlabel("time step $t$ (a move right: factor $A = D(f')W^l$)")
        ax.set_ylabel("layer $l$ (up: $B = D(f')U^l$)")
        ax.set_title(f"{count} monotone paths from $(t, l) = {start}$ to $(T, L) = ({steps}, {depth})$")
        return _finish(fig)


def depth_norms_figure(curves: Mapping[str, np.ndarray]) -> Figure:
    r"""log10 ‖∂y_L/∂y_l‖₂ against the layer l, one curve per stack kind.

    Parameters
    ----------
    curves : label -> (L + 1,) natural logs, entry l for layer l (entry L is 0).
    """
    if not curves:
        raise GradproofError("depth_norms_figure: 'curves' must be a non-empty mapping")
    with style():
        fig = Figure(figsize=(5.6, 3.4))
        ax = fig.add_subplot()
        for k, (label, v) in enumerate(curves.items()):
            v = np.asarray(v, dtype=float)
            ax.plot(np.arange(v.size), v / math.log(10.0), "-", color=f"C{k}", lw=1.8, label=label)
        ax.axhline(0.0, color="0.6", lw=0.8, ls=":")
        ax.set_xlabel("layer $l$ (the output is layer $L$)")
        ax.set_ylabel(r"$\log_{10}\|\partial y_L/\partial y_l\|_2$")
        ax.legend(loc="best", frameon=False)
        return _finish(fig)


def causal_heatmaps(panels: Mapping[str, np.ndarray]) -> Figure:
    r"""log10 ‖∂o_t/∂x_s‖₂ as heat maps side by side, exact zeros drawn as blank cells.

    Parameters
    ----------
    panels : title -> (T, T) array, entry [t, s] for output step t and input step s (from
        :func:`numeric.input_sensitivity`); zeros are the causal zeros.
    """
    if not panels:
        raise GradproofError("causal_heatmaps: 'panels' must be a non-empty mapping")
    logs = {}
    for title, a in panels.items():
        a = np.asarray(a, dtype=float)
        if a.ndim != 2 or a.shape[0] != a.shape[1]:
            raise GradproofError(f"causal_heatmaps: panel {title!r} must be a (T, T) array, got {a.shape}")
        with np.errstate(divide="ignore"):
            logs[title] = np.where(a > 0, np.log10(np.where(a > 0, a, 1.0)), np.nan)
    finite = np.concatenate([v[np.isfinite(v)] for v in logs.values()])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (-1.0, 0.0)
    with style():
        fig = Figure(figsize=(3.1 * len(logs) + 0.9, 3.2))
        axes = fig.subplots(1, len(logs), squeeze=False)[0]
        image = None
        for ax, (title, v) in zip(axes, logs.items()):
            T = v.shape[0]
            image = ax.imshow(v, origin="upper", cmap="viridis", vmin=lo, vmax=hi,
                              extent=(0.5, T + 0.5, T + 0.5, 0.5))  # fmt: skip
            ax.set_facecolor("white")
            ax.grid(False)
            ax.set_title(title)
            ax.set_xlabel("input step $s$")
            ax.set_ylabel("output step $t$")
        bar = fig.colorbar(image, ax=list(axes), shrink=0.85)
        bar.set_label(r"$\log_{10}\|\partial o_t/\partial x_s\|_2$ (white: exactly 0)")
        return _finish(fig)
