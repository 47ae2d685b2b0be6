"""The report's figures: each function takes numbers already computed and only draws them.

No mathematics happens here. Every function checks the shapes of what it is given, raises
:class:`derive.errors.GradproofError` with a one-line message when they do not fit, and returns a
:class:`matplotlib.figure.Figure` built in the report style (:func:`reports.figures.style`) and
sized for one A4 text column (6.3 in wide). Save it with :func:`reports.figures.save`.

Conventions shared by all figures
---------------------------------
* Logarithms arrive as *natural* logs and are drawn as ``log10`` values on a linear axis (divided by
  ln 10, never exponentiated), so ``exp(-8e4)`` or ``1e+300`` are plotted without under- or
  overflow. Non-finite entries are left out of the lines; an entry that is exactly ``-inf`` (a
  product that is exactly zero) or ``+inf`` is shown as a triangle on the bottom or top edge of the
  axes, with a legend entry saying so.
* Gradient profiles are indexed like :class:`numeric.profile.GradientProfile`: entry ``k``
  (``k = 0 .. T-1``) belongs to ``∂h_T/∂h_k``, i.e. to ``T - k`` steps back.
* No figure has a title (the LaTeX caption carries it); subplots may carry short panel titles.
* Colours are the Okabe-Ito palette of the report style; line styles differ as well, so the
  figures also read in greyscale.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib import patheffects
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Rectangle
from matplotlib.ticker import MaxNLocator, ScalarFormatter

from ..derive.errors import GradproofError
from .figures import style

__all__ = [
    "WIDTH",
    "bound_profiles",
    "cliff",
    "clipping_directions",
    "decay_comparison",
    "gate_regimes",
    "spectrum",
    "step_times",
    "transient_growth",
    "truncation",
]

WIDTH = 6.3
"""Figure width in inches: one A4 text column."""

_LN10 = math.log(10.0)
_BLUE, _VERMILLION, _GREEN, _PURPLE, _ORANGE, _SKY = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
)
_SERIES = (_BLUE, _VERMILLION, _GREEN, _PURPLE, _ORANGE, _SKY, "#000000")
_DASHES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1, 1, 1)), (0, (1, 1)), (0, (8, 2)))
_GREY = "#555555"
_DISTINCT = (_BLUE, _VERMILLION, _GREEN, _PURPLE, "#000000", _SKY)
"""Series colours for one axes with many curves: no two oranges (vermillion and orange) together."""

_STEPS_BACK = r"steps back $T - t$"
_LOG_GRAD = r"$\log_{10}\,\|\partial h^{(T)}/\partial h^{(t)}\|_2$"


# --------------------------------------------------------------------------- input checks


def _fail(where: str, message: str) -> GradproofError:
    return GradproofError(f"{where}: {message}")


def _array(
    where: str,
    name: str,
    value: Any,
    *,
    ndim: int = 1,
    complex_ok: bool = False,
    finite: bool = False,
) -> np.ndarray:
    """``value`` as a non-empty float64 (or complex128) array of ``ndim`` dimensions."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # ragged nested sequences
        raise _fail(where, f"'{name}' must be a numeric array, got {type(value).__name__} ({exc})")
    kinds = "biufc" if complex_ok else "biuf"
    if arr.dtype.kind not in kinds:
        wanted = "real or complex numbers" if complex_ok else "real numbers"
        raise _fail(where, f"'{name}' must hold {wanted}, got dtype {arr.dtype}")
    if arr.ndim != ndim or arr.size == 0:
        shape = "(N,)" if ndim == 1 else "(" + ", ".join("N" * ndim) + ")"
        raise _fail(
            where, f"'{name}' must be a non-empty {ndim}-D array {shape}, got shape {arr.shape}"
        )
    arr = arr.astype(np.complex128 if arr.dtype.kind == "c" else np.float64)
    if finite and not np.all(np.isfinite(arr)):
        raise _fail(where, f"'{name}' must be finite, got NaN or inf; drop those entries first")
    return arr


def _same_length(where: str, arrays: Mapping[str, np.ndarray]) -> int:
    lengths = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        listed = ", ".join(f"{name}: {n}" for name, n in lengths.items())
        raise _fail(where, f"expected arrays of the same length, got {listed}")
    return next(iter(lengths.values()))


def _scalar(where: str, name: str, value: Any, *, positive: bool = True) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise _fail(where, f"'{name}' must be a number, got {value!r}") from None
    if not math.isfinite(x) or (positive and x <= 0):
        kind = "a finite number > 0" if positive else "a finite number"
        raise _fail(where, f"'{name}' must be {kind}, got {value!r}")
    return x


def _label(where: str, name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _fail(where, f"'{name}' must be a non-empty string, got {value!r}")
    return value


# --------------------------------------------------------------------------- drawing helpers


def _new_figure(height: float) -> Figure:
    return Figure(figsize=(WIDTH, height), layout="constrained")


def _finish(fig: Figure) -> Figure:
    """Lay out inside the report style, then freeze the layout and drop the layout engine.

    The layout pass (constrained layout's two passes, run by the figure's layout engine) creates
    the lazily made ticks under the report style, so they take its sizes whatever the caller's
    settings are when saving. Constrained layout with colour bars moves the axes a little on every
    pass; freezing it after this one makes every save of the figure give the same bytes.

    Cost: only the layout is computed here, not a full drawing, and with no layout engine left
    ``savefig`` draws the figure once per format instead of twice (matplotlib draws a figure
    that has a layout engine once more before printing it, to lay it out).
    """
    import matplotlib

    engine = fig.get_layout_engine()
    if engine is not None:
        engine.execute(fig)
    with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
        fig.set_layout_engine(None)  # None, not "none": a placeholder engine would still cost a draw
    return fig


def _log10(log_natural: np.ndarray) -> np.ndarray:
    """Natural logs -> log10 values, with non-finite entries set to NaN (left out of lines)."""
    out = np.full(log_natural.shape, np.nan)
    finite = np.isfinite(log_natural)
    out[finite] = log_natural[finite] / _LN10
    return out


def _plain_numbers(ax: Axes, axis: str = "y") -> None:
    """No offset ("+1e4") or shared exponent on a log10 axis: −34743 reads as −34743."""
    fmt = ScalarFormatter(useOffset=False)
    fmt.set_powerlimits((-6, 6))
    (ax.yaxis if axis == "y" else ax.xaxis).set_major_formatter(fmt)


_EDGE_LABELS = (r"exactly 0 ($\log = -\infty$), on the edge", r"$+\infty$ (overflow), on the edge")


def _legend_entries(axes: Sequence[Axes]) -> tuple[list[Any], list[str]]:
    """Handles and labels of ``axes``, each label once, the edge-mark entries last."""
    entries: dict[str, Any] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            entries.setdefault(label, handle)
    labels = sorted(entries, key=lambda label: label in _EDGE_LABELS)  # stable
    return [entries[label] for label in labels], labels


class _EdgeMarks:
    """Marks -inf / +inf entries of log series as triangles on the bottom / top edge of an axes."""

    def __init__(self) -> None:
        self.labelled = {"-": False, "+": False}

    def draw(self, ax: Axes, x: np.ndarray, log_values: np.ndarray, color: str) -> None:
        for sign, mask, y, marker in (
            ("-", np.isneginf(log_values), 0.0, "v"),
            ("+", np.isposinf(log_values), 1.0, "^"),
        ):
            if not mask.any():
                continue
            label = None
            if not self.labelled[sign]:
                label = _EDGE_LABELS[0] if sign == "-" else _EDGE_LABELS[1]
                self.labelled[sign] = True
            ax.plot(
                x[mask],
                np.full(int(mask.sum()), y),
                linestyle="none",
                marker=marker,
                markersize=5,
                color=color,
                clip_on=False,
                transform=ax.get_xaxis_transform(),
                label=label,
                zorder=4,
            )


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _figure_legend(
    fig: Figure, axes: Sequence[Axes], extra: Sequence[Any] = (), *, ncols: int | None = None
) -> None:
    """One legend below all panels, each label once (the panels share their series)."""
    handles, labels = _legend_entries(axes)
    for handle in extra:
        if handle.get_label() not in labels:
            handles.append(handle)
            labels.append(handle.get_label())
    if ncols is None:
        ncols = len(handles) if len(handles) <= 3 else math.ceil(len(handles) / 2)
    fig.legend(handles, labels, loc="outside lower center", ncols=ncols)


# --------------------------------------------------------------------------- 1. bound profiles


def bound_profiles(panels: Sequence[Mapping[str, Any]]) -> Figure:
    r"""Measured gradient norms against the two upper bounds of Pascanu et al. (docs/math.md §1).

    Parameters
    ----------
    panels : sequence of mappings, length 1 or 2 (drawn side by side)
        Each with the keys

        ``title`` : str
            Panel title, e.g. ``"vanishing: σ_max(W) = 0.8, η = 0.8"``.
        ``span`` : (T,) int
            Steps back ``T - t`` of each entry (the x-axis).
        ``log_measured`` : (T,)
            Natural log of :math:`\lVert\partial h_T/\partial h_t\rVert_2` (solid line).
        ``log_eta_bound`` : (T,)
            Natural log of :math:`\eta^{T-t}` (dashed).
        ``log_data_bound`` : (T,)
            Natural log of :math:`\prod_s \lVert D_s\rVert_2 \lVert W\rVert_2` (dotted).

        The logs may hold ``-inf``; those entries are marked on the bottom edge.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per panel; y is :math:`\log_{10}` on a linear scale.
    """
    where = "bound_profiles"
    if isinstance(panels, Mapping) or not isinstance(panels, Sequence):
        raise _fail(
            where, f"'panels' must be a list of 1 or 2 mappings, got {type(panels).__name__}"
        )
    if len(panels) not in (1, 2):
        raise _fail(where, f"'panels' must hold 1 or 2 panels, got {len(panels)}")
    keys = ("span", "log_measured", "log_eta_bound", "log_data_bound")
    checked = []
    for p, panel in enumerate(panels, start=1):
        if not isinstance(panel, Mapping):
            raise _fail(where, f"panel {p} must be a mapping, got {type(panel).__name__}")
        missing = [k for k in ("title", *keys) if k not in panel]
        if missing:
            raise _fail(
                where, f"panel {p} lacks the keys {missing}; it needs title and {list(keys)}"
            )
        arrays = {k: _array(where, f"panel {p} {k}", panel[k]) for k in keys}
        if not np.all(np.isfinite(arrays["span"])):
            raise _fail(where, f"panel {p} 'span' must be finite step counts")
        _same_length(where, {f"panel {p} {k}": a for k, a in arrays.items()})
        checked.append((_label(where, f"panel {p} title", panel["title"]), arrays))

    series = (
        ("log_measured", "measured", _BLUE, "-", 1.8),
        ("log_eta_bound", r"bound $\eta^{\,T-t}$", _VERMILLION, "--", 1.5),
        ("log_data_bound", r"data-dependent bound $\prod\, \|D_s\|_2\,\|W\|_2$", _GREEN, ":", 2.0),
    )
    with style():
        fig = _new_figure(2.9)
        axes = fig.subplots(1, len(checked), squeeze=False)[0]
        for ax, (title, arrays) in zip(axes, checked, strict=True):
            x = arrays["span"]
            marks = _EdgeMarks()
            for key, label, color, ls, lw in series:
                # the two bounds coincide where every unit is linear: markers keep them apart
                extra = {"marker": "o", "markevery": max(1, x.size // 8), "markersize": 3.5} if (
                    key == "log_data_bound") else {}
                ax.plot(
                    x, _log10(arrays[key]), color=color, linestyle=ls, linewidth=lw, label=label, **extra
                )
                marks.draw(ax, x, arrays[key], color)
            ax.set_title(title, fontsize=9, loc="left")
            ax.set_xlabel(_STEPS_BACK)
            ax.set_ylabel(_LOG_GRAD)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            _plain_numbers(ax)
        _figure_legend(fig, axes)
        return _finish(fig)


# --------------------------------------------------------------------------- 2. spectrum


def spectrum(eigenvalues: np.ndarray, singular_values: np.ndarray, gamma: float) -> Figure:
    r"""Eigenvalues against singular values of a recurrent matrix (docs/math.md §1, imprecision 1).

    Parameters
    ----------
    eigenvalues : (n,) complex
        The eigenvalues of W (left panel, complex plane, with the circles
        :math:`|\lambda| = 1` and :math:`|\lambda| = 1/\gamma`).
    singular_values : (n,)
        The singular values of W, any order (right panel, sorted descending, with horizontal lines
        at 1 and 1/γ).
    gamma : float
        γ = sup|σ'| of the activation, > 0.

    Returns
    -------
    matplotlib.figure.Figure
        Two axes: the complex plane (equal aspect) and the singular values.
    """
    where = "spectrum"
    lam = _array(where, "eigenvalues", eigenvalues, complex_ok=True, finite=True)
    sv = _array(where, "singular_values", singular_values, finite=True)
    _same_length(where, {"eigenvalues": lam, "singular_values": sv})
    if np.any(sv < 0):
        raise _fail(where, "'singular_values' must be >= 0, got a negative entry")
    g = _scalar(where, "gamma", gamma)
    inv = 1.0 / g
    same = math.isclose(inv, 1.0, rel_tol=1e-12)
    lam = lam.astype(np.complex128)
    sv_sorted = np.sort(sv)[::-1]

    unit_label = r"$|\lambda| = 1 = 1/\gamma$" if same else r"$|\lambda| = 1$"
    inv_label = rf"$|\lambda| = 1/\gamma = {_fmt(inv)}$"
    with style():
        fig = _new_figure(3.0)
        left, right = fig.subplots(1, 2, width_ratios=(1.0, 1.25))
        left.add_patch(Circle((0, 0), 1.0, fill=False, color=_GREY, linestyle="-"))
        if not same:
            left.add_patch(Circle((0, 0), inv, fill=False, color=_VERMILLION, linestyle="--"))
        left.scatter(
            lam.real, lam.imag, s=22, color=_BLUE, zorder=3, label=r"eigenvalues $\lambda_i(W)$"
        )
        reach = 1.12 * max(1.0, inv, float(np.max(np.abs(lam))))
        left.set_xlim(-reach, reach)
        left.set_ylim(-reach, reach)
        left.set_aspect("equal", adjustable="box")
        left.set_xlabel(r"Re $\lambda$")
        left.set_ylabel(r"Im $\lambda$")

        idx = np.arange(1, sv_sorted.size + 1)
        right.vlines(idx, 0.0, sv_sorted, color=_GREEN, linewidth=2.0)
        right.plot(idx, sv_sorted, "D", color=_GREEN, label=r"singular values $\sigma_i(W)$")
        right.axhline(1.0, color=_GREY, linestyle="-", linewidth=1.0)
        if not same:
            right.axhline(inv, color=_VERMILLION, linestyle="--", linewidth=1.2)
        right.set_ylim(0.0, 1.12 * max(1.0, inv, float(sv_sorted[0])))
        right.set_xlim(0.4, sv_sorted.size + 0.6)
        right.xaxis.set_major_locator(MaxNLocator(integer=True))
        right.set_xlabel(r"index $i$ (largest first)")
        right.set_ylabel(r"singular value $\sigma_i(W)$")
        # the circles (left) and the levels (right) share colour and style: one entry each
        levels = [
            Line2D([], [], color=_GREY, linestyle="-", label=unit_label + r" and $\sigma_i = 1$")
        ]
        if not same:
            levels.append(
                Line2D(
                    [],
                    [],
                    color=_VERMILLION,
                    linestyle="--",
                    label=inv_label + r" and $\sigma_i = 1/\gamma$",
                )
            )
        _figure_legend(fig, [], [left.collections[-1], right.lines[0], *levels], ncols=2)
        return _finish(fig)


# --------------------------------------------------------------------------- 3. transient growth


def transient_growth(
    ks: np.ndarray,
    norms: np.ndarray,
    rho: float,
    sigma_max: float,
    *,
    dense_ks: np.ndarray | None = None,
    dense_norms: np.ndarray | None = None,
) -> Figure:
    r"""‖W^k‖₂ of a non-normal matrix with ρ(W) < 1, against ρ^k and σ_max^k (docs/math.md §1).

    Parameters
    ----------
    ks : (K,) int
        Powers k ≥ 0 with a tabulated norm (drawn as markers).
    norms : (K,)
        :math:`\lVert W^k\rVert_2` (plain values, ≥ 0; 0 is marked on the bottom edge).
    rho, sigma_max : float
        Spectral radius ρ(W) and largest singular value σ_max(W), > 0; the lines
        :math:`k \log_{10}\rho` and :math:`k \log_{10}\sigma_{\max}` are drawn for comparison.
    dense_ks, dense_norms : (D,), optional
        A dense curve of the same quantity (thin line), given together.

    Returns
    -------
    matplotlib.figure.Figure
        One axes; y is :math:`\log_{10}\lVert W^k\rVert_2` on a linear scale. The y-range follows
        the measured norms and ρ^k; σ_max^k, which grows much faster, leaves through the top.
    """
    where = "transient_growth"
    k = _array(where, "ks", ks, finite=True)
    nv = _array(where, "norms", norms)
    _same_length(where, {"ks": k, "norms": nv})
    r = _scalar(where, "rho", rho)
    s = _scalar(where, "sigma_max", sigma_max)
    if np.any(nv < 0) or np.any(np.isnan(nv)) or np.any(np.isposinf(nv)):
        raise _fail(where, "'norms' must be finite and >= 0, got a negative, NaN or inf entry")
    if np.any(k < 0):
        raise _fail(where, "'ks' must be >= 0")
    if (dense_ks is None) != (dense_norms is None):
        raise _fail(where, "give 'dense_ks' and 'dense_norms' together, or neither")
    dense = None
    if dense_ks is not None:
        dk = _array(where, "dense_ks", dense_ks, finite=True)
        dn = _array(where, "dense_norms", dense_norms, finite=True)
        _same_length(where, {"dense_ks": dk, "dense_norms": dn})
        if np.any(dn < 0):
            raise _fail(where, "'dense_norms' must be >= 0")
        dense = (dk, dn)

    with np.errstate(divide="ignore"):
        log_nv = np.log(nv)
        log_dense = None if dense is None else np.log(dense[1])
    k_max = float(max(k.max(), 1.0 if dense is None else dense[0].max()))
    k_line = np.linspace(0.0, k_max, 200)
    rho_line = k_line * (math.log10(r))
    smax_line = k_line * (math.log10(s))

    with style():
        fig = _new_figure(2.8)
        ax = fig.subplots()
        if dense is not None:
            ax.plot(dense[0], _log10(log_dense), color=_BLUE, linewidth=1.2, label=r"$\|W^k\|_2$")
        ax.plot(
            k,
            _log10(log_nv),
            linestyle="-" if dense is None else "none",
            marker="o",
            markersize=5,
            color=_BLUE,
            label=r"$\|W^k\|_2$" if dense is None else r"$\|W^k\|_2$ at tabulated $k$",
        )
        ax.plot(
            k_line, rho_line, "--", color=_VERMILLION, label=rf"$\rho(W)^k$, $\rho = {_fmt(r)}$"
        )
        (smax_artist,) = ax.plot(
            k_line,
            smax_line,
            ":",
            color=_GREEN,
            linewidth=2.0,
            label=rf"$\sigma_{{\max}}(W)^k$, $\sigma_{{\max}} = {_fmt(s)}$",
        )
        _EdgeMarks().draw(ax, k, log_nv, _BLUE)
        ys = [_log10(log_nv), rho_line]
        if dense is not None:
            ys.append(_log10(log_dense))
        finite = np.concatenate([y[np.isfinite(y)] for y in ys])
        lo, hi = float(finite.min()), float(finite.max())
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        pad = 0.08 * (hi - lo) if hi > lo else 1.0
        ax.set_ylim(lo - pad, hi + pad)
        # every line and marker inside the frame: a margin on both ends of k, and the sigma_max line
        # drawn only up to the top of the axes
        ax.set_xlim(-0.02 * k_max, 1.02 * k_max)
        inside = smax_line <= hi + pad
        smax_artist.set_data(k_line[inside], smax_line[inside])
        ax.axhline(0.0, color=_GREY, linewidth=0.8)
        ax.set_xlabel(r"power $k$ (steps)")
        ax.set_ylabel(r"$\log_{10}\,\|W^k\|_2$")
        _plain_numbers(ax)
        ax.legend(*_legend_entries([ax]), loc="best")
        return _finish(fig)


# --------------------------------------------------------------------------- 4. the cliff


def cliff(
    w: np.ndarray,
    b: np.ndarray,
    loss: np.ndarray,
    log10_grad: np.ndarray,
    trajectories: Mapping[str, np.ndarray],
    *,
    indexing: str = "xy",
) -> Figure:
    r"""The cliff of the one-unit RNN and SGD with and without clipping on it (docs/math.md §2).

    Parameters
    ----------
    w : (Rw,)
        Grid of the weight w, increasing.
    b : (Rb,)
        Grid of the bias b, increasing.
    loss : (Rb, Rw)
        The loss E. With ``indexing="xy"`` (default) ``loss[i, j]`` is E at ``(w[j], b[i])``
        (rows follow b, as in ``np.meshgrid(w, b)``); with ``indexing="ij"`` it is E at
        ``(w[i], b[j])``, shape (Rw, Rb), as in :class:`numeric.cliff.Surface`.
    log10_grad : same shape and indexing as ``loss``
        :math:`\log_{10}\lVert\nabla E\rVert_2` (already base 10; ``-inf`` where the gradient is
        exactly 0 is left blank).
    trajectories : mapping of str to (steps + 1, 2)
        Each run's (w, b) after each update, row 0 the start; the keys are the legend labels,
        e.g. ``{"SGD": ..., "SGD + norm clipping": ...}``. Drawn on both panels, clipped to the
        grid.
    indexing : {"xy", "ij"}, keyword-only

    Returns
    -------
    matplotlib.figure.Figure
        Two axes (filled contours of E, heat map of log10 ‖∇E‖) and their colour bars.
    """
    where = "cliff"
    wv = _array(where, "w", w, finite=True)
    bv = _array(where, "b", b, finite=True)
    for name, v in (("w", wv), ("b", bv)):
        if v.size < 2 or np.any(np.diff(v) <= 0):
            raise _fail(where, f"'{name}' must be a strictly increasing grid of >= 2 points")
    if indexing not in ("xy", "ij"):
        raise _fail(
            where,
            f"'indexing' must be 'xy' (rows follow b) or 'ij' (rows follow w), got {indexing!r}",
        )
    grids = {}
    for name, value in (("loss", loss), ("log10_grad", log10_grad)):
        arr = _array(where, name, value, ndim=2)
        expected = (bv.size, wv.size) if indexing == "xy" else (wv.size, bv.size)
        if arr.shape != expected:
            raise _fail(
                where,
                f"'{name}' must have shape {expected} (indexing={indexing!r}, len(w)={wv.size}, "
                f"len(b)={bv.size}), got {arr.shape}; pass indexing='ij' for a meshgrid(w, b, indexing='ij')",
            )
        if (
            np.any(np.isnan(arr))
            or np.any(np.isposinf(arr))
            or (name == "loss" and np.any(np.isinf(arr)))
        ):
            raise _fail(where, f"'{name}' must be finite (log10_grad may be -inf), got NaN or inf")
        grids[name] = arr if indexing == "xy" else arr.T
    if not isinstance(trajectories, Mapping) or not trajectories:
        raise _fail(
            where, "'trajectories' must be a non-empty mapping of label -> (steps + 1, 2) array"
        )
    runs = {}
    for label, path in trajectories.items():
        _label(where, "trajectory label", label)
        arr = _array(where, f"trajectory {label!r}", path, ndim=2, finite=True)
        if arr.shape[1] != 2:
            raise _fail(
                where,
                f"trajectory {label!r} must have shape (steps + 1, 2) of (w, b), got {arr.shape}",
            )
        runs[label] = arr

    grad = np.ma.masked_invalid(grids["log10_grad"])
    halo = [patheffects.Stroke(linewidth=3.2, foreground="white"), patheffects.Normal()]
    colours = (_VERMILLION, _SKY, _ORANGE, _PURPLE, _GREEN, "#000000")
    with style():
        fig = _new_figure(3.2)
        left, right = fig.subplots(1, 2, sharex=True, sharey=True)
        loss = np.asarray(grids["loss"], dtype=float)
        lo, hi = float(np.nanmin(loss)), float(np.nanmax(loss))
        # square-root spaced levels: a low plateau and the valley below it get different colours
        levels = (np.linspace(0.0, math.sqrt(hi), 15) ** 2 if lo >= 0.0 and hi > 0.0 else 14)
        cs = left.contourf(wv, bv, loss, levels=levels, cmap="cividis")
        fig.colorbar(cs, ax=left, label=r"loss $E$", pad=0.02, fraction=0.06)
        im = right.pcolormesh(wv, bv, grad, shading="nearest", cmap="viridis", rasterized=True)
        fig.colorbar(im, ax=right, label=r"$\log_{10}\,\|\nabla E\|_2$", pad=0.02, fraction=0.06)
        for ax in (left, right):
            for (label, path), colour, ls in zip(
                runs.items(), colours * 4, _DASHES * 4, strict=False
            ):
                ax.plot(
                    path[:, 0],
                    path[:, 1],
                    color=colour,
                    linestyle=ls,
                    linewidth=1.6,
                    path_effects=halo,
                    label=label,
                )
                ax.plot(*path[0], "o", color=colour, markeredgecolor="white", markersize=6)
                ax.plot(*path[-1], "s", color=colour, markeredgecolor="white", markersize=6)
            ax.set_xlim(wv[0], wv[-1])
            ax.set_ylim(bv[0], bv[-1])
            ax.set_xlabel(r"weight $w$")
            ax.grid(False)
        left.set_ylabel(r"bias $b$")
        right.set_ylabel(r"bias $b$")
        right.tick_params(labelleft=True)
        handles = left.get_legend_handles_labels()[0]
        handles += [
            Line2D([], [], linestyle="none", marker="o", color=_GREY, label="start"),
            Line2D([], [], linestyle="none", marker="s", color=_GREY, label="end"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles))
        return _finish(fig)


# --------------------------------------------------------------------------- 5. decay comparison


def decay_comparison(curves: Mapping[str, np.ndarray], *, ylabel: str) -> Figure:
    r"""Several cells' gradient-norm profiles on one axes, against steps back.

    Parameters
    ----------
    curves : mapping of str to (T,)
        Legend label -> natural log of a norm, indexed like a gradient profile: entry ``k``
        belongs to ``T - k`` steps back (so entry 0 is the longest span). The curves may have
        different lengths. ``-inf`` entries are marked on the bottom edge.
    ylabel : str, keyword-only
        The quantity, e.g. ``r"$\|\partial s_T/\partial s_t\|_2$"``; the axis reads
        ``log10 <ylabel>``, so do not put a logarithm into it.

    Returns
    -------
    matplotlib.figure.Figure
        One axes; y is log10 on a linear scale.
    """
    where = "decay_comparison"
    quantity = _label(where, "ylabel", ylabel)
    if not isinstance(curves, Mapping) or not curves:
        raise _fail(
            where, "'curves' must be a non-empty mapping of label -> (T,) natural-log array"
        )
    checked = {
        _label(where, "curve label", k): _array(where, f"curve {k!r}", v) for k, v in curves.items()
    }
    with style():
        fig = _new_figure(2.8)
        ax = fig.subplots()
        marks = _EdgeMarks()
        for (label, values), colour, ls in zip(
            checked.items(), _DISTINCT * 4, _DASHES * 4, strict=False
        ):
            span = np.arange(values.size, 0, -1)
            ax.plot(span, _log10(values), color=colour, linestyle=ls, label=label)
            marks.draw(ax, span, values, colour)
        ax.set_xlabel(_STEPS_BACK)
        ax.set_ylabel(r"$\log_{10}$ " + quantity)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _plain_numbers(ax)
        ax.legend(*_legend_entries([ax]), loc="center left", bbox_to_anchor=(1.01, 0.5))
        return _finish(fig)


# --------------------------------------------------------------------------- 6. clipping directions


def clipping_directions(
    g: np.ndarray, threshold: float, norm_clipped: np.ndarray, value_clipped: np.ndarray
) -> Figure:
    r"""Norm clipping keeps the direction, value clipping does not (docs/math.md §2).

    Parameters
    ----------
    g : (2,)
        The gradient.
    threshold : float
        θ > 0: the radius of the circle :math:`\lVert g\rVert_2 = \theta` and the half-width of
        the square :math:`[-\theta, \theta]^2`.
    norm_clipped : (2,)
        g after norm clipping.
    value_clipped : (2,)
        g after value (element-wise) clipping.

    Returns
    -------
    matplotlib.figure.Figure
        One axes, equal aspect, legend on the right.
    """
    where = "clipping_directions"
    vecs = {
        name: _array(where, name, value, finite=True)
        for name, value in (
            ("g", g),
            ("norm_clipped", norm_clipped),
            ("value_clipped", value_clipped),
        )
    }
    for name, v in vecs.items():
        if v.shape != (2,):
            raise _fail(where, f"'{name}' must have shape (2,) (a 2-D vector), got {v.shape}")
    theta = _scalar(where, "threshold", threshold)
    arrows = (
        ("g", r"gradient $g$", _BLUE, "-"),
        ("norm_clipped", r"norm-clipped $c\, g/\|g\|_2$", _VERMILLION, "--"),
        ("value_clipped", r"value-clipped $\mathrm{clip}(g_i, -c, c)$", _GREEN, ":"),
    )
    points = np.vstack([*vecs.values(), [[-theta, -theta], [theta, theta]]])
    lo, hi = points.min(axis=0), points.max(axis=0)
    pad = 0.1 * float(np.max(hi - lo))
    lo, hi = lo - pad, hi + pad
    # the axes is about 3 in wide beside the legend; size the height to the data's aspect
    height = float(np.clip(3.0 * (hi[1] - lo[1]) / (hi[0] - lo[0]) + 0.7, 2.4, 3.2))
    with style():
        fig = _new_figure(height)
        ax = fig.subplots()
        ax.add_patch(
            Circle(
                (0, 0),
                theta,
                fill=False,
                color=_GREY,
                linewidth=1.0,
                label=rf"circle $\|g\|_2 = c = {_fmt(theta)}$",
            )
        )
        ax.add_patch(
            Rectangle(
                (-theta, -theta),
                2 * theta,
                2 * theta,
                fill=False,
                color=_PURPLE,
                linewidth=1.0,
                linestyle="-.",
                label=r"square $|g_i| \leq c$",
            )
        )
        for key, label, colour, ls in arrows:
            x, y = vecs[key]
            ax.plot(
                [0.0, x],
                [0.0, y],
                color=colour,
                linestyle=ls,
                linewidth=2.0,
                label=label,
                solid_capstyle="butt",
            )
            ax.annotate(
                "",
                xy=(x, y),
                xytext=(0.0, 0.0),
                zorder=3,
                arrowprops={
                    "arrowstyle": "-|>",
                    "color": colour,
                    "linewidth": 0,
                    "mutation_scale": 14,
                    "shrinkA": 0,
                    "shrinkB": 0,
                },
            )
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal", adjustable="box")
        ax.axhline(0.0, color=_GREY, linewidth=0.6)
        ax.axvline(0.0, color=_GREY, linewidth=0.6)
        ax.set_xlabel(r"component $g_1$")
        ax.set_ylabel(r"component $g_2$")
        ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5))
        return _finish(fig)


# --------------------------------------------------------------------------- 7. step times


def step_times(
    labels: Sequence[str],
    medians_us: Sequence[float],
    spreads_us: Sequence[tuple[float, float]] | None = None,
) -> Figure:
    """Median time of one step per implementation, with min/max whiskers.

    Parameters
    ----------
    labels : sequence of str, length N
        One per bar, drawn top to bottom in the given order.
    medians_us : (N,)
        Median time in microseconds, > 0.
    spreads_us : sequence of (min, max), length N, optional
        The fastest and slowest time in microseconds, with min ≤ median ≤ max.

    Returns
    -------
    matplotlib.figure.Figure
        One axes of horizontal bars, each annotated with its median. The x-axis turns
        logarithmic when the times span more than a factor 50.
    """
    where = "step_times"
    if isinstance(labels, str) or not isinstance(labels, Sequence):
        raise _fail(where, f"'labels' must be a list of strings, got {type(labels).__name__}")
    names = [_label(where, "label", s) for s in labels]
    med = _array(where, "medians_us", medians_us, finite=True)
    if len(names) != med.size:
        raise _fail(
            where, f"expected one median per label, got {len(names)} labels and {med.size} medians"
        )
    if np.any(med <= 0):
        raise _fail(where, "'medians_us' must be > 0 microseconds")
    spread = None
    if spreads_us is not None:
        spread = _array(where, "spreads_us", spreads_us, ndim=2, finite=True)
        if spread.shape != (med.size, 2):
            raise _fail(
                where,
                f"'spreads_us' must have shape ({med.size}, 2) of (min, max), got {spread.shape}",
            )
        if np.any(spread[:, 0] > med) or np.any(spread[:, 1] < med) or np.any(spread[:, 0] <= 0):
            raise _fail(where, "'spreads_us' must satisfy 0 < min <= median <= max for every bar")
    hi = float(med.max() if spread is None else spread[:, 1].max())
    lo = float(med.min() if spread is None else spread[:, 0].min())
    log_x = hi / lo > 50.0
    y = np.arange(med.size)
    with style():
        fig = _new_figure(float(np.clip(0.9 + 0.32 * med.size, 2.4, 3.2)))
        ax = fig.subplots()
        xerr = None if spread is None else np.vstack([med - spread[:, 0], spread[:, 1] - med])
        ax.barh(
            y,
            med,
            height=0.6,
            color=_BLUE,
            xerr=xerr,
            error_kw={"ecolor": "#000000", "capsize": 3, "elinewidth": 1.0},
        )
        for yi, m, top in zip(y, med, med if spread is None else spread[:, 1], strict=True):
            text = f"{m:,.0f} µs" if m >= 1000 else f"{m:.3g} µs"
            ax.annotate(
                text,
                xy=(top, yi),
                xytext=(6, 0),
                textcoords="offset points",
                va="center",
                ha="left",
                fontsize=8.5,
            )
        ax.set_yticks(y, names)
        ax.set_ylabel("implementation")
        ax.invert_yaxis()
        ax.grid(False, axis="y")
        whiskers = "" if spread is None else "; whiskers: min – max"
        if log_x:
            ax.set_xscale("log")
            ax.set_xlim(lo / 2.0, hi * 4.0)
            ax.set_xlabel(f"median time per step (µs, log scale){whiskers}")
        else:
            ax.set_xlim(0.0, hi * 1.25)
            ax.set_xlabel(f"median time per step (µs){whiskers}")
        return _finish(fig)


# --------------------------------------------------------------------------- 8. truncation


def truncation(k: np.ndarray, log_contribution: np.ndarray, window: int) -> Figure:
    r"""The gradient contribution of step t − k against k, and what truncated BPTT drops (docs/math.md §7).

    Parameters
    ----------
    k : (K,) int
        Steps back k ≥ 0.
    log_contribution : (K,)
        Natural log of the magnitude of the term of step t − k in the full BPTT sum; ``-inf``
        entries are marked on the bottom edge.
    window : int
        The truncation window τ ≥ 0: terms with k > τ are dropped (shaded).

    Returns
    -------
    matplotlib.figure.Figure
        One axes; y is log10 on a linear scale.
    """
    where = "truncation"
    kv = _array(where, "k", k, finite=True)
    lc = _array(where, "log_contribution", log_contribution)
    _same_length(where, {"k": kv, "log_contribution": lc})
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 0:
        raise _fail(
            where, f"'window' must be an integer >= 0 (the window τ in steps), got {window!r}"
        )
    if np.any(kv < 0):
        raise _fail(where, "'k' must be >= 0 steps back")
    k_hi = float(max(kv.max(), window))
    with style():
        fig = _new_figure(2.6)
        ax = fig.subplots()
        ax.axvspan(
            window,
            k_hi,
            color=_ORANGE,
            alpha=0.18,
            linewidth=0,
            label=r"dropped by truncated BPTT ($k > \tau$)",
        )
        ax.axvline(
            window,
            color=_VERMILLION,
            linestyle="--",
            linewidth=1.3,
            label=rf"window $\tau = {int(window)}$",
        )
        ax.plot(
            kv,
            _log10(lc),
            color=_BLUE,
            marker="o" if kv.size <= 40 else None,
            markersize=3,
            label=r"term of step $T - k$",
        )
        _EdgeMarks().draw(ax, kv, lc, _BLUE)
        ax.set_xlim(float(min(kv.min(), window)), k_hi)
        ax.set_xlabel(r"steps back $k$")
        ax.set_ylabel(r"$\log_{10}$ |contribution|")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _plain_numbers(ax)
        ax.legend(*_legend_entries([ax]), loc="best")
        return _finish(fig)


# --------------------------------------------------------------------------- 9. gate regimes


def gate_regimes(
    names: Sequence[str], sigma_max: Sequence[float], thresholds: Sequence[float]
) -> Figure:
    r"""σ_max of each gate's recurrent block of a user's LSTM/GRU, with its threshold 1/γ.

    Parameters
    ----------
    names : sequence of str, length G
        The blocks, e.g. ``["$W_f$", "$W_i$", "$W_o$", "$W_c$"]`` (mathtext allowed).
    sigma_max : (G,)
        Largest singular value of each block, ≥ 0.
    thresholds : (G,)
        1/γ of the activation that block feeds (4 for a sigmoid gate, 1 for tanh), > 0.

    Returns
    -------
    matplotlib.figure.Figure
        One axes: a bar per block, its threshold as a black tick across the bar.
    """
    where = "gate_regimes"
    if isinstance(names, str) or not isinstance(names, Sequence):
        raise _fail(where, f"'names' must be a list of strings, got {type(names).__name__}")
    labels = [_label(where, "name", s) for s in names]
    sv = _array(where, "sigma_max", sigma_max, finite=True)
    th = _array(where, "thresholds", thresholds, finite=True)
    if not len(labels) == sv.size == th.size:
        raise _fail(
            where,
            f"expected one value per gate, got {len(labels)} names, {sv.size} sigma_max and {th.size} thresholds",
        )
    if np.any(sv < 0) or np.any(th <= 0):
        raise _fail(where, "'sigma_max' must be >= 0 and 'thresholds' > 0")
    x = np.arange(sv.size)
    with style():
        fig = _new_figure(2.6)
        ax = fig.subplots()
        ax.bar(x, sv, width=0.6, color=_BLUE, label=r"$\sigma_{\max}$ of the recurrent block")
        ax.hlines(
            th, x - 0.42, x + 0.42, color="#000000", linewidth=2.2, label=r"threshold $1/\gamma$"
        )
        ax.set_xticks(x, labels)
        ax.set_xlim(-0.6, sv.size - 0.4)
        ax.set_ylim(0.0, 1.18 * float(max(sv.max(), th.max())))
        ax.grid(False, axis="x")
        ax.set_xlabel("recurrent weight block")
        ax.set_ylabel(r"largest singular value $\sigma_{\max}$")
        handles, names_ = ax.get_legend_handles_labels()
        order = [names_.index(n) for n in sorted(names_, key=lambda n: "threshold" in n)]
        fig.legend(
            [handles[i] for i in order],
            [names_[i] for i in order],
            loc="outside upper center",
            ncols=2,
        )
        return _finish(fig)
