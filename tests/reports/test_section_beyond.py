"""Tests of the report section "Beyond the vanilla RNN" and its figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gradproof.derive import GradproofError
from gradproof.derive.architectures import grid_paths
from gradproof.numeric import feedforward_profile
from gradproof.reports import plots_beyond, sections
from gradproof.reports.section_beyond import causal_heatmap, section_beyond
from gradproof.reports.sections import Context


# the section is built once: every test reading it is on one worker (pyproject: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("section_beyond")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    figs = tmp_path_factory.mktemp("figures")
    ctx = Context(figures=figs, seed=0, cells=("rnn-tanh",))
    sec, res = section_beyond(ctx)
    return figs, sec, res


def test_section_is_registered_after_gru():
    names = [name for name, _ in sections.SECTIONS]
    assert names.index("beyond") == names.index("gru") + 1


def test_section_numbers_come_from_the_run(built):
    figs, sec, res = built
    assert sec["title"].startswith("Beyond the vanilla RNN")
    decades = res["depth"]["log10_norm_at_input"]
    assert decades["plain, sigmoid"] == pytest.approx(
        feedforward_profile(kind="plain", activation="sigmoid", depth=50, width=32, seed=0).log10_decades, rel=1e-12
    )
    assert decades["plain, sigmoid"] < -20 < decades["residual, sigmoid"]
    assert res["paths"] == {"example": 10, "T100_L4_from_1_1": 171700}  # C(5, 2) and C(102, 3)
    assert res["causal_zero_blocks"] == {"T": 4, "forward": 6, "backward": 6}
    box = sec["blocks"][-1]["text"]  # the closing takeaway box holds the list
    assert box.startswith("\\begin{gptakeaway}") and box.endswith("\\end{gptakeaway}")
    takeaways = box.split("\\item ")[1:]
    assert f"10^{{{decades['plain, sigmoid']:.1f}}}" in takeaways[0]
    json.dumps(res, default=lambda a: np.asarray(a).tolist())  # serialisable for results.json
    for stem in ("depth_norms", "grid_paths"):
        assert (figs / f"{stem}.pdf").stat().st_size > 1000
        assert (figs / f"{stem}.png").stat().st_size > 1000


def test_equations_are_printed_from_the_derivations(built):
    _, sec, _ = built
    maths = " ".join(b.get("math", "") if isinstance(b.get("math", ""), str) else "" for b in sec["blocks"])
    assert r"\frac{\partial y}{\partial x} = I + \frac{\partial F}{\partial x}" in maths
    assert r"\binom{L + T - l - t}{L - l}" in maths


def test_causal_heat_map_has_exactly_the_causal_zeros(tmp_path):
    # docs/math.md §6: ∂h→_t/∂x_s = 0 for s > t; a bidirectional output sees every input.
    blocks, results = causal_heatmap(Context(figures=tmp_path, seed=0, cells=()))
    r = results["causal_heatmap"]
    T = r["T"]
    uni, bi = np.asarray(r["unidirectional"]), np.asarray(r["bidirectional"])
    assert uni.shape == bi.shape == (T, T)
    above = np.triu(np.ones((T, T), dtype=bool), k=1)
    assert np.all(uni[above] == 0.0) and np.all(uni[~above] > 0.0)
    assert np.all(bi > 0.0)
    assert r["zeros_unidirectional"] == T * (T - 1) // 2 and r["zeros_bidirectional"] == 0
    (fig,) = blocks
    assert fig["kind"] == "figure" and (tmp_path / "causal_heatmap.png").is_file()
    assert f"{T * (T - 1) // 2} exact zeros" in fig["caption"]


def test_grid_figure_refuses_a_wrong_count():
    with pytest.raises(GradproofError, match="count"):
        plots_beyond.grid_paths_figure(grid_paths(1, 1, 3, 2), start=(1, 1), steps=3, depth=2, count=99)
