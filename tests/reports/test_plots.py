"""Tests of reports.plots: every figure draws the numbers it is given, and only those.

The figures hold no mathematics, so the tests check what a reader relies on: the right number of
panels, labelled axes, the given legend labels, log10 values that are the given natural logs
divided by ln 10 (never exponentiated, so -8e4 and ±inf are fine), reproducible files, and one
clear GradproofError for inputs that do not fit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from gradproof.derive.errors import GradproofError
from gradproof.reports import figures, plots

LN10 = math.log(10.0)
RNG_SEED = 20130616  # any fixed seed: the data below only has to look like the real profiles


@pytest.fixture(autouse=True)
def _restore_rcparams() -> Iterator[None]:
    with matplotlib.rc_context():
        yield


# --------------------------------------------------------------------------- synthetic inputs


def profile_panel(title: str, T: int = 30) -> dict[str, Any]:
    rng = np.random.default_rng(RNG_SEED)
    span = np.arange(T, 0, -1)
    eta = span * math.log(0.8)
    data = eta - np.cumsum(rng.uniform(0.0, 0.2, T))[::-1]
    measured = data - 0.1 * span
    measured[:2] = -np.inf  # a product that is exactly zero
    measured[2] = -8e4  # far below float64's range once exponentiated
    return {
        "title": title,
        "span": span,
        "log_measured": measured,
        "log_eta_bound": eta,
        "log_data_bound": data,
    }


def cliff_inputs() -> dict[str, Any]:
    w = np.linspace(3.0, 11.0, 9)
    b = np.linspace(-5.0, 8.0, 7)
    B, W = np.meshgrid(b, w, indexing="ij")  # (len(b), len(w)): rows follow b
    loss = (np.tanh(W + B) - 0.4) ** 2
    grad = -np.abs(W - B) / 3.0
    grad[0, 0] = -np.inf  # gradient exactly zero
    path = np.column_stack([np.linspace(4.5, 6.0, 11), np.linspace(-3.0, 2.0, 11)])
    return {
        "w": w,
        "b": b,
        "loss": loss,
        "log10_grad": grad,
        "trajectories": {"SGD": path, "SGD + norm clipping": path[:4] + 0.1},
    }


# name -> (builder, number of data axes, number of colour bars, labels that must be in a legend)
CASES: dict[str, tuple[Callable[[], Figure], int, int, list[str]]] = {
    "bound_profiles_two": (
        lambda: plots.bound_profiles([profile_panel("vanishing"), profile_panel("exploding")]),
        2,
        0,
        ["measured"],
    ),
    "bound_profiles_one": (
        lambda: plots.bound_profiles([profile_panel("one")]),
        1,
        0,
        ["measured"],
    ),
    "spectrum": (
        lambda: plots.spectrum(
            np.array([0.9 + 0.0j, 0.3 + 0.5j, 0.3 - 0.5j]), np.array([0.5, 5.2, 0.1]), 0.25
        ),
        2,
        0,
        [r"$|\lambda| = 1/\gamma = 4$ and $\sigma_i = 1/\gamma$", r"eigenvalues $\lambda_i(W)$"],
    ),
    "transient_growth": (
        lambda: plots.transient_growth(
            np.array([1, 2, 5, 10, 20, 50, 100]),
            np.array([5.16, 9.07, 16.4, 19.4, 13.5, 1.43, 0.0]),
            0.9,
            5.16,
            dense_ks=np.arange(0, 101),
            dense_norms=np.linspace(1.0, 0.01, 101),
        ),
        1,
        0,
        [r"$\rho(W)^k$, $\rho = 0.9$"],
    ),
    "cliff": (
        lambda: plots.cliff(**cliff_inputs()),
        2,
        2,
        ["SGD", "SGD + norm clipping", "start", "end"],
    ),
    "decay_comparison": (
        lambda: plots.decay_comparison(
            {
                "rnn-tanh": np.array([-8e4, -50.0, -1.0]),
                "lstm": np.array([-np.inf, -3.0, -2.0, 0.0]),
            },
            ylabel=r"$\|\partial s_T/\partial s_t\|_2$",
        ),
        1,
        0,
        ["rnn-tanh", "lstm"],
    ),
    "clipping_directions": (
        lambda: plots.clipping_directions(
            np.array([3.0, 1.0]), 1.0, np.array([3.0, 1.0]) / math.sqrt(10.0), np.array([1.0, 1.0])
        ),
        1,
        0,
        [r"gradient $g$"],
    ),
    "step_times": (
        lambda: plots.step_times(["numpy", "torch"], [12.0, 80.0], [(10.0, 15.0), (70.0, 120.0)]),
        1,
        0,
        [],
    ),
    "truncation": (
        lambda: plots.truncation(np.arange(40), np.r_[-0.2 * np.arange(39), -np.inf], 10),
        1,
        0,
        [r"window $\tau = 10$"],
    ),
    "gate_regimes": (
        lambda: plots.gate_regimes(["$W_f$", "$W_i$", "$W_c$"], [1.3, 4.6, 0.8], [4.0, 4.0, 1.0]),
        1,
        0,
        [r"threshold $1/\gamma$"],
    ),
}


def legend_texts(fig: Figure) -> set[str]:
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    return {t.get_text() for leg in legends for t in leg.get_texts()}


def data_axes(fig: Figure) -> list[Any]:
    return [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]


# --------------------------------------------------------------------------- every figure


@pytest.mark.parametrize("name", list(CASES))
def test_figure_draws_saves_and_is_labelled(name: str, tmp_path: Path) -> None:
    build, n_axes, n_bars, labels = CASES[name]
    fig = build()
    assert isinstance(fig, Figure)
    # one A4 column, no figure title (the LaTeX caption carries it)
    width, height = fig.get_size_inches()
    assert width == pytest.approx(6.3, abs=0.05) and 2.4 <= height <= 3.2
    assert fig.get_suptitle() == ""
    axes = data_axes(fig)
    assert len(axes) == n_axes and len(fig.axes) == n_axes + n_bars
    for ax in fig.axes:  # data axes and colour bars alike
        assert ax.get_xlabel().strip() or ax.get_label() == "<colorbar>"
        assert ax.get_ylabel().strip()
    assert set(labels) <= legend_texts(fig)
    paths = figures.save(fig, tmp_path, name)
    assert figures.is_valid_image(paths["pdf"]) and figures.is_valid_image(paths["png"])


@pytest.mark.parametrize("name", ["cliff", "step_times"])
def test_same_figure_gives_identical_png(name: str, tmp_path: Path) -> None:
    build = CASES[name][0]
    fig = build()
    first = figures.save(fig, tmp_path / "a", name)["png"].read_bytes()
    again = figures.save(fig, tmp_path / "b", name)["png"].read_bytes()
    rebuilt = figures.save(build(), tmp_path / "c", name)["png"].read_bytes()
    assert first == again == rebuilt


def test_style_does_not_leak_and_is_applied_inside() -> None:
    matplotlib.rcParams["font.size"] = 20.0
    matplotlib.rcParams["xtick.labelsize"] = 20.0
    fig = CASES["truncation"][0]()
    assert matplotlib.rcParams["font.size"] == 20.0  # caller's settings untouched
    ax = fig.axes[0]
    sizes = {t.get_fontsize() for t in ax.get_xticklabels()}
    assert sizes == {figures.RC["xtick.labelsize"]}
    assert ax.xaxis.label.get_fontsize() == figures.RC["axes.labelsize"]


# --------------------------------------------------------------------------- the numbers drawn


def test_bound_profiles_plots_log10_of_the_given_natural_logs() -> None:
    panel = profile_panel("p")
    fig = plots.bound_profiles([panel])
    ax = fig.axes[0]
    measured = next(line for line in ax.get_lines() if line.get_label() == "measured")
    np.testing.assert_array_equal(measured.get_xdata(), panel["span"])
    y = np.asarray(measured.get_ydata(), dtype=float)
    assert np.isnan(y[:2]).all()  # -inf is left out of the line ...
    assert y[2] == pytest.approx(-8e4 / LN10, rel=1e-15)  # ... and -8e4 is drawn as -34742.7
    np.testing.assert_allclose(y[3:], panel["log_measured"][3:] / LN10, rtol=1e-15, atol=0)
    # ... and the two exact zeros are marked on the bottom edge, with a legend entry
    marks = [line for line in ax.get_lines() if line.get_marker() == "v"]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [30, 29]
    assert any("infty" in t for t in legend_texts(fig))
    ylo, yhi = ax.get_ylim()
    assert ylo < -8e4 / LN10 < yhi


def test_decay_comparison_puts_entry_k_at_T_minus_k_steps_back() -> None:
    fig = CASES["decay_comparison"][0]()
    ax = fig.axes[0]
    assert ax.get_ylabel() == r"$\log_{10}$ $\|\partial s_T/\partial s_t\|_2$"
    lstm = next(line for line in ax.get_lines() if line.get_label() == "lstm")
    np.testing.assert_array_equal(lstm.get_xdata(), [4, 3, 2, 1])
    np.testing.assert_allclose(lstm.get_ydata()[1:], np.array([-3.0, -2.0, 0.0]) / LN10, rtol=1e-15)


def test_transient_growth_lines_are_k_log10_rho_and_sigma() -> None:
    fig = CASES["transient_growth"][0]()
    ax = fig.axes[0]
    rho = next(line for line in ax.get_lines() if line.get_label().startswith(r"$\rho"))
    k = np.asarray(rho.get_xdata())
    assert k[0] == 0 and k[-1] == 100
    np.testing.assert_allclose(rho.get_ydata(), k * math.log10(0.9), rtol=1e-12, atol=1e-15)
    tab = next(line for line in ax.get_lines() if "tabulated" in str(line.get_label()))
    np.testing.assert_allclose(tab.get_ydata()[:-1], np.log10([5.16, 9.07, 16.4, 19.4, 13.5, 1.43]))
    assert np.isnan(tab.get_ydata()[-1])  # ‖W^100‖ given as 0: marked on the edge instead
    # the y-range follows the data, not σ_max^k (which reaches 100·log10 5.16 ≈ 71)
    assert ax.get_ylim()[1] < 5.0


def test_spectrum_sorts_singular_values_and_keeps_equal_aspect() -> None:
    fig = CASES["spectrum"][0]()
    left, right = data_axes(fig)
    assert left.get_aspect() == 1.0
    markers = next(line for line in right.get_lines() if line.get_marker() == "D")
    np.testing.assert_array_equal(markers.get_ydata(), [5.2, 0.5, 0.1])
    assert 4.0 in {
        float(line.get_ydata()[0]) for line in right.get_lines() if len(line.get_ydata()) == 2
    }
    # the eigenvalues sit where they were given
    offsets = left.collections[-1].get_offsets()
    np.testing.assert_allclose(offsets, [[0.9, 0.0], [0.3, 0.5], [0.3, -0.5]])


def test_spectrum_tanh_draws_one_circle() -> None:
    fig = plots.spectrum(np.array([0.5, -0.5]), np.array([0.7, 0.5]), 1.0)
    left = data_axes(fig)[0]
    assert len(left.patches) == 1
    assert r"$|\lambda| = 1 = 1/\gamma$ and $\sigma_i = 1$" in legend_texts(fig)


@pytest.mark.parametrize("indexing", ["xy", "ij"])
def test_cliff_indexing(indexing: str) -> None:
    inputs = cliff_inputs()
    if indexing == "ij":  # numeric.cliff.Surface's layout: [i, j] at (w[i], b[j])
        inputs["loss"] = inputs["loss"].T
        inputs["log10_grad"] = inputs["log10_grad"].T
    fig = plots.cliff(**inputs, indexing=indexing)
    heat = data_axes(fig)[1].collections[0]
    expected = cliff_inputs()["log10_grad"]
    shown = np.ma.masked_invalid(np.asarray(heat.get_array()).reshape(expected.shape))
    np.testing.assert_array_equal(shown.mask, ~np.isfinite(expected))
    np.testing.assert_array_equal(shown.filled(0.0), np.where(np.isfinite(expected), expected, 0.0))


def test_clipping_directions_geometry() -> None:
    fig = CASES["clipping_directions"][0]()
    ax = fig.axes[0]
    assert ax.get_aspect() == 1.0
    ends = {
        line.get_label(): (line.get_xdata()[1], line.get_ydata()[1])
        for line in ax.get_lines()
        if not line.get_label().startswith("_")
    }
    assert ends[r"gradient $g$"] == (3.0, 1.0)
    assert ends[r"value-clipped $\mathrm{clip}(g_i, -c, c)$"] == (1.0, 1.0)
    # the whole picture is visible: the gradient's tip and the square's corners
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    assert x0 < -1.0 and x1 > 3.0 and y0 < -1.0 and y1 > 1.0


def test_step_times_switches_to_log_scale_for_wide_ranges() -> None:
    fig = CASES["step_times"][0]()
    ax = fig.axes[0]
    assert ax.get_xscale() == "linear"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["numpy", "torch"]
    assert [p.get_width() for p in ax.patches] == [12.0, 80.0]
    wide = plots.step_times(["a", "b"], [5.0, 50_000.0])
    assert wide.axes[0].get_xscale() == "log"
    assert "50,000 µs" in {t.get_text() for t in wide.axes[0].texts}


def test_truncation_shades_what_truncated_bptt_drops() -> None:
    fig = CASES["truncation"][0]()
    ax = fig.axes[0]
    span = ax.patches[0].get_x(), ax.patches[0].get_x() + ax.patches[0].get_width()
    assert span == (10.0, 39.0)
    assert any(line.get_marker() == "v" for line in ax.get_lines())  # the final -inf entry


def test_gate_regimes_bars_and_thresholds() -> None:
    fig = CASES["gate_regimes"][0]()
    ax = fig.axes[0]
    assert [p.get_height() for p in ax.patches] == [1.3, 4.6, 0.8]
    segments = ax.collections[0].get_segments()
    assert [float(s[0][1]) for s in segments] == [4.0, 4.0, 1.0]


# --------------------------------------------------------------------------- bad input


def _bad_panel(**change: Any) -> list[dict[str, Any]]:
    panel = profile_panel("p")
    panel.update(change)
    return [panel]


BAD: list[tuple[str, Callable[[], Any], str]] = [
    (
        "profile-length",
        lambda: plots.bound_profiles(_bad_panel(log_eta_bound=np.zeros(29))),
        "same length",
    ),
    ("profile-missing-key", lambda: plots.bound_profiles([{"title": "x"}]), "lacks the keys"),
    ("profile-three-panels", lambda: plots.bound_profiles([profile_panel("p")] * 3), "1 or 2"),
    ("profile-not-list", lambda: plots.bound_profiles(profile_panel("p")), "list of 1 or 2"),
    ("spectrum-length", lambda: plots.spectrum(np.ones(3), np.ones(2), 1.0), "same length"),
    ("spectrum-gamma", lambda: plots.spectrum(np.ones(2), np.ones(2), 0.0), "gamma"),
    ("spectrum-nan", lambda: plots.spectrum(np.array([np.nan, 1]), np.ones(2), 1.0), "finite"),
    ("transient-length", lambda: plots.transient_growth([1, 2], [1.0], 0.9, 2.0), "same length"),
    (
        "transient-dense-alone",
        lambda: plots.transient_growth([1], [1.0], 0.9, 2.0, dense_ks=[1]),
        "together",
    ),
    ("transient-negative", lambda: plots.transient_growth([1], [-1.0], 0.9, 2.0), ">= 0"),
    (
        "cliff-shape",
        lambda: plots.cliff(**{**cliff_inputs(), "loss": np.zeros((9, 7))}),
        "shape (7, 9)",
    ),
    (
        "cliff-trajectory",
        lambda: plots.cliff(**{**cliff_inputs(), "trajectories": {"a": np.zeros((3, 3))}}),
        "(steps + 1, 2)",
    ),
    (
        "cliff-grid",
        lambda: plots.cliff(**{**cliff_inputs(), "w": np.linspace(1, 0, 9)}),
        "increasing",
    ),
    ("cliff-indexing", lambda: plots.cliff(**cliff_inputs(), indexing="yx"), "indexing"),
    ("decay-empty", lambda: plots.decay_comparison({}, ylabel="y"), "non-empty mapping"),
    ("decay-2d", lambda: plots.decay_comparison({"a": np.zeros((2, 2))}, ylabel="y"), "1-D"),
    ("decay-ylabel", lambda: plots.decay_comparison({"a": np.zeros(2)}, ylabel=""), "ylabel"),
    (
        "clip-shape",
        lambda: plots.clipping_directions(np.ones(3), 1.0, np.ones(2), np.ones(2)),
        "shape (2,)",
    ),
    (
        "clip-threshold",
        lambda: plots.clipping_directions(np.ones(2), -1.0, np.ones(2), np.ones(2)),
        "threshold",
    ),
    ("times-length", lambda: plots.step_times(["a", "b"], [1.0]), "one median per label"),
    ("times-spread", lambda: plots.step_times(["a"], [1.0], [(2.0, 3.0)]), "min <= median"),
    ("times-label-str", lambda: plots.step_times("ab", [1.0, 2.0]), "list of strings"),
    ("truncation-length", lambda: plots.truncation(np.arange(3), np.zeros(4), 1), "same length"),
    ("truncation-window", lambda: plots.truncation(np.arange(3), np.zeros(3), 1.5), "window"),
    (
        "gates-length",
        lambda: plots.gate_regimes(["a", "b"], [1.0, 2.0], [4.0]),
        "one value per gate",
    ),
    ("gates-text", lambda: plots.gate_regimes(["a"], ["x"], [4.0]), "real numbers"),
]


@pytest.mark.parametrize(("case", "call", "match"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_one_line(case: str, call: Callable[[], Any], match: str) -> None:
    with pytest.raises(GradproofError, match=None) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    assert match in message, message
    assert message.split(":")[0] in plots.__all__  # names the figure function


def test_transient_growth_keeps_every_line_inside_the_axes() -> None:
    ax = CASES["transient_growth"][0]().axes[0]
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    for line in ax.get_lines():
        x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        ok = np.isfinite(x) & np.isfinite(y)
        assert np.all((x[ok] >= x0) & (x[ok] <= x1) & (y[ok] >= y0) & (y[ok] <= y1)), line.get_label()
    assert x0 < 0.0 and x1 > 100.0  # the k = 0 and k = 100 markers are not cut by the frame


def test_decay_comparison_never_puts_two_oranges_together() -> None:
    curves = {f"c{i}": -0.1 * np.arange(20, 0, -1.0) * (i + 1) for i in range(5)}
    ax = plots.decay_comparison(curves, ylabel="x").axes[0]
    colours = [line.get_color() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert len(colours) == 5 and len(set(colours)) == 5
    assert not {"#D55E00", "#E69F00"} <= set(colours)


def test_bound_profiles_axis_label_uses_the_texts_notation() -> None:
    fig = CASES["bound_profiles_two"][0]()
    assert fig.axes[0].get_ylabel() == r"$\log_{10}\,\|\partial h^{(T)}/\partial h^{(t)}\|_2$"
    bound = next(line for line in fig.axes[0].get_lines() if "data-dependent" in str(line.get_label()))
    assert bound.get_marker() == "o"  # told apart from eta^(T-t) where the two coincide


# --------------------------------------------------------------------------- laid out once, drawn once per format


def beyond_figures() -> dict[str, Callable[[], Figure]]:
    from gradproof.derive.architectures import grid_paths
    from gradproof.reports import plots_beyond

    paths = grid_paths(1, 1, 3, 2)
    heat = np.tril(np.exp(-np.add.outer(np.arange(6.0), np.arange(6.0))))
    return {
        "grid_paths": lambda: plots_beyond.grid_paths_figure(
            paths, start=(1, 1), steps=3, depth=2, count=len(paths)
        ),
        "depth_norms": lambda: plots_beyond.depth_norms_figure(
            {"plain": -np.arange(6.0)[::-1], "residual": np.zeros(6)}
        ),
        "causal_heatmap": lambda: plots_beyond.causal_heatmaps({"uni": heat, "bi": heat + heat.T}),
    }


ALL_BUILDERS: dict[str, Callable[[], Figure]] = {name: case[0] for name, case in CASES.items()}
ALL_BUILDERS.update(beyond_figures())


def _count_drawings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, every Figure.draw appends its renderer's type name to the list returned."""
    drawings: list[str] = []
    draw = Figure.draw

    def counted(self: Figure, renderer: Any) -> None:
        drawings.append(type(renderer).__name__)
        draw(self, renderer)

    monkeypatch.setattr(Figure, "draw", counted)
    return drawings


@pytest.mark.parametrize("name", list(ALL_BUILDERS))
def test_layout_is_done_once_and_each_format_is_one_drawing(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fig = ALL_BUILDERS[name]()
    # frozen, and no layout engine left: savefig has no reason to draw the figure a second time
    assert fig.get_layout_engine() is None
    frozen = [ax.get_position(original=True).bounds for ax in fig.axes]
    # laid out: constrained layout leaves 3/72 in pads at the top and right where the default
    # subplot parameters (no layout) would leave 0.1 x the width and 0.12 x the height
    box = fig.get_tightbbox()
    width, height = fig.get_size_inches()
    assert width - box.x1 < 0.1 and height - box.y1 < 0.1
    drawings = _count_drawings(monkeypatch)
    paths = figures.save(fig, tmp_path, name)
    assert len(drawings) == 2, drawings  # one for the PDF, one for the PNG
    assert [ax.get_position(original=True).bounds for ax in fig.axes] == frozen  # saving moved nothing
    assert all(figures.is_valid_image(p) for p in paths.values())


@pytest.mark.parametrize("name", ["cliff", "spectrum", "causal_heatmap"])  # colour bars, fixed aspect
def test_same_figure_gives_identical_pdf(name: str, tmp_path: Path) -> None:
    build = ALL_BUILDERS[name]
    first = figures.save(build(), tmp_path / "a", name, formats=("pdf",))["pdf"].read_bytes()
    again = figures.save(build(), tmp_path / "b", name, formats=("pdf",))["pdf"].read_bytes()
    assert first == again


def test_every_text_glyph_is_in_the_text_font() -> None:
    """The text font has every character the figures write outside $...$, so none is missing or wrong.

    (matplotlib's Computer Modern .ttf files map some code points to other glyphs, e.g. 'µ' to a
    grave accent: a cmap lookup, not only the absence of a warning, is what shows a font fits.)
    """
    from matplotlib.font_manager import FontProperties, findfont, get_font
    from matplotlib.text import Text

    with figures.style():
        path = findfont(FontProperties(family=matplotlib.rcParams["font.family"]), fallback_to_default=False)
    charmap = get_font(path).get_charmap()
    used = set("µ–∏−×±≤≥·")  # from the report's own labels (step times, LSTM cell path, edges)
    for build in ALL_BUILDERS.values():
        for text in build().findobj(Text):
            used |= {c for i, part in enumerate(text.get_text().split("$")) if i % 2 == 0 for c in part}
    used -= {"\n"}
    assert len(used) > 40
    missing = sorted(c for c in used if ord(c) not in charmap)
    assert missing == []


def test_rasterized_surface_keeps_the_savefig_resolution(tmp_path: Path) -> None:
    import re

    fig = CASES["cliff"][0]()
    surface = fig.axes[1]  # the rasterized pcolormesh of log10 |grad|
    width_in = surface.get_position().width * fig.get_figwidth()
    pdf = figures.save(fig, tmp_path, "cliff", formats=("pdf",))["pdf"].read_bytes()
    widths = [int(w) for w in re.findall(rb"/Subtype /Image /Width (\d+)", pdf)]
    assert widths, "no raster image in the PDF"
    # at savefig's 150 dpi whatever the caller's rcParams (not 72, the PDF's own, nor figure.dpi)
    assert max(widths) == pytest.approx(width_in * figures.PNG_DPI, abs=3)


def test_one_drawing_per_format_also_under_the_global_style(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After use_style() (as `gradproof report` and `experiment` call it), figure.constrained_layout.use
    is on globally: savefig's own restore of a frozen figure's layout engine must not bring a
    constrained-layout engine back (it did: a third drawing, and the PNG's colour bar moved)."""
    import matplotlib

    with matplotlib.rc_context():
        figures.use_style()
        assert matplotlib.rcParams["figure.constrained_layout.use"] is True
        fig = CASES["cliff"][0]()
        drawings = _count_drawings(monkeypatch)
        first = figures.save(fig, tmp_path / "a", "cliff")
        assert len(drawings) == 2, drawings
        assert fig.get_layout_engine() is None
        again = figures.save(fig, tmp_path / "b", "cliff")
        assert first["png"].read_bytes() == again["png"].read_bytes()
        assert first["pdf"].read_bytes() == again["pdf"].read_bytes()
