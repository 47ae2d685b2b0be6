"""The report's text read as a lecturer would: floats referenced, no display twice, captions'
numbers from results.json, statements corrected (issue 15). Built once without the PDF."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from gradproof.reports import sections
from gradproof.reports.report import ReportOptions, build_report

pytestmark = pytest.mark.slow

_DISPLAY_RE = re.compile(r"\\begin\{(equation\*?|align\*|multline\*)\}(.*?)\\end\{\1\}", re.S)


def labels_without_ref(tex: str) -> list[str]:
    """Every ``\\label{fig:…}`` / ``\\label{tab:…}`` that no ``\\ref``/``\\cref`` names."""
    labels = re.findall(r"\\label\{((?:fig|tab):[^}]*)\}", tex)
    refs = set(re.findall(r"\\c?ref\{([^}]*)\}", tex))
    return [lab for lab in labels if lab not in refs]


def repeated_displays(tex: str) -> list[str]:
    """Display-math bodies (whitespace and alignment marks ignored) that occur more than once."""
    seen: dict[str, int] = {}
    for _, body in _DISPLAY_RE.findall(tex):
        key = " ".join(body.replace("&", "").split())
        seen[key] = seen.get(key, 0) + 1
    return [k for k, n in seen.items() if n > 1]


def test_the_checks_catch_what_they_should() -> None:
    tex = (r"\begin{figure}\label{fig:a}\end{figure}\begin{table}\label{tab:b}\end{table} see \ref{fig:a}"
           "\n\\begin{equation*}\n  x = 1\n\\end{equation*}\n\\begin{align*}\n  x &= 1\n\\end{align*}\n")
    assert labels_without_ref(tex) == ["tab:b"]
    assert repeated_displays(tex) == ["x = 1"]
    assert repeated_displays(tex.replace("x &= 1", "y &= 1")) == []


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[str, dict, str]:
    out = tmp_path_factory.mktemp("t") / "report"
    mp = pytest.MonkeyPatch()
    fast = sections.step_time_comparison
    mp.setattr(sections, "step_time_comparison", lambda: fast(sizes=(32, 64), steps=10, batch=4, repeats=2))
    try:
        build_report(ReportOptions(out=out, cells=("rnn-tanh", "lstm", "gru", "gru-torch"), seed=0, pdf=False))
    finally:
        mp.undo()
    return ((out / "report.tex").read_text(), json.loads((out / "results.json").read_text()),
            (out / "timings.tex").read_text())


def test_every_figure_and_table_is_referenced(built) -> None:
    tex, _, _ = built
    assert len(re.findall(r"\\label\{fig:", tex)) >= 8 and len(re.findall(r"\\label\{tab:", tex)) >= 3
    assert labels_without_ref(tex) == []


def test_no_display_is_printed_twice(built) -> None:
    tex, _, _ = built
    assert len(_DISPLAY_RE.findall(tex)) > 30
    assert repeated_displays(tex) == []


def test_figure_1_does_what_its_caption_says(built) -> None:
    tex, results, _ = built
    exp = results["rnn"]["regimes"]["exploding"]
    # near the linear range: small pre-activations, so the growth follows rho^k (within a factor 10)
    assert exp["max_abs_preactivation"] < 0.5
    assert exp["log10_growth_over_T"] == pytest.approx(exp["log10_rho_power_span"], abs=1.0)
    assert f"10^{{{exp['log10_growth_over_T']:.2f}}}" in tex and "bias set to zero" in tex


def test_figure_3_shows_the_measured_outcome(built) -> None:
    tex, results, _ = built
    sp_ = results["rnn"]["spectrum"]
    assert sp_["regime"] == "exploding possible" and sp_["measured_log10_per_step"] < 0
    assert f"10^{{{sp_['measured_log10_per_step']:.2f}}}$ per step" in tex
    assert sp_["spectral_radius"] > 1  # so the eigenvalue test is not sufficient, as the text says


def test_figure_6_gives_the_outcome_of_both_runs(built) -> None:
    tex, results, _ = built
    c = results["clipping"]["cliff"]
    assert c["final_loss_plain"] > 10 * c["final_loss_clipped"]
    assert sections._num(c["final_loss_plain"]) in tex and sections._num(c["final_loss_clipped"]) in tex
    assert "stuck on the plateau" in tex


def test_the_clipping_threshold_is_not_theta(built) -> None:
    tex, _, _ = built
    clipping = tex[tex.index(r"\section{Exploding gradients"): tex.index(r"\section{LSTM")]
    assert r"\theta" not in clipping and "c = 1" in clipping


def test_corrected_statements(built) -> None:
    tex, _, _ = built
    assert "only for normal" not in tex and r"\operatorname{diag}(2) \oplus" in tex
    assert "Cho et al. 2014 also write" not in tex and "update gate of Cho et al. (2014), who call it $z$" in tex
    assert "first arXiv version" in tex and "neither necessary nor sufficient" in tex
    assert r"J = \sum_t J^{(t)}" in tex and "gradient layout" in tex
    assert r"\texttt{hard\_sigmoid}" in tex and "largest eigenvalue of $W_h$" in tex


def test_the_timing_compares_both_engines_forward_and_backward(built) -> None:
    _, results, timings = built
    st = results["gru"]["step_time"]
    assert set(st["engines"]) == {"default", "no-onednn"}
    for engine in st["engines"].values():
        assert set(engine) == {"32", "64"}
        for per in engine.values():
            assert per["lstm"]["median_us"] > 0 and per["gru-torch"]["median_us"] > 0
            assert per["lstm_over_gru"] == pytest.approx(per["lstm"]["median_us"] / per["gru-torch"]["median_us"])
            assert "forward + backward" in per["lstm"]["engine"]
    assert "oneDNN disabled" in st["engines"]["no-onednn"]["32"]["lstm"]["engine"]
    assert "with oneDNN disabled" in timings and "with the default engine" in timings
    assert "kernels' overheads" not in timings


def test_timings_sentence_follows_the_numbers() -> None:
    def stats(us: float) -> dict:
        return {"median_us": us, "min_us": us, "max_us": us, "engine": "x"}

    def results(ratio_small: float, ratio_big: float) -> dict:
        per = {n: {"lstm": stats(r * 10.0), "gru-torch": stats(10.0), "lstm_over_gru": r}
               for n, r in (("8", ratio_small), ("16", ratio_big))}
        return {"step_time": {"sizes": [8, 16], "engines": {"default": per, "no-onednn": per}}}

    assert "faster at every size" in sections.timings_tex(results(1.3, 1.4))
    assert r"\emph{not} faster at any size" in sections.timings_tex(results(0.8, 0.9))
    text = sections.timings_tex(results(0.9, 1.2))
    assert "faster at some sizes only" in text and "0.90 to 1.20" in text
