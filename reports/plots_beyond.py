"""Figures of the section "Beyond the vanilla RNN": the grid-path picture and gradient norm vs depth.

Drawing only: every number comes from derive/numeric (path lists from
:func:`derive.architectures.grid_paths`, log norms from :func:`numeric.depth_profile`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..derive.errors import GradproofError
from .figures import style

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

    return fig


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

    return fig
