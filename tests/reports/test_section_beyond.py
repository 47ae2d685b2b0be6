"""Tests of the report section "Beyond the vanilla RNN" and its figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gradproof.derive import GradproofError
from gradproof.derive.architectures import grid_paths
from gradproof.numeric import depth_profile
from gradproof.reports import plots_beyond, sections
from gradproof.reports.section_beyond import causal_heatmap_hook, section_beyond
from gradproof.reports.sections import Context


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
        depth_profile(kind="plain", activation="sigmoid", depth=50, width=32, seed=0).log10_decades, rel=1e-12
    )
    assert decades["plain, sigmoid"] < -20 < decades["residual, sigmoid"]
    assert res["paths"] == {"example": 10, "T100_L4_from_1_1": 171700}  # C(5, 2) and C(102, 3)
    assert res["causal_zero_blocks"] == {"T": 4, "forward": 6, "backward": 6}
    takeaways = next(b for b in sec["blocks"] if b["kind"] == "itemize")["items"]
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


def test_placeholder_hook_adds_nothing_yet(tmp_path):
    assert causal_heatmap_hook(Context(figures=tmp_path, seed=0, cells=())) == ([], {})


def test_grid_figure_refuses_a_wrong_count():
    with pytest.raises(GradproofError, match="count"):
        plots_beyond.grid_paths_figure(grid_paths(1, 1, 3, 2), start=(1, 1), steps=3, depth=2, count=99)
