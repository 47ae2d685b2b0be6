"""The report's text read as a lecturer would: floats referenced, no display twice, captions'
numbers from results.json, statements corrected (issue 15). Built once without the PDF."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from gradproof.reports import sections

from .conftest import DEFAULT_REPORT_GROUP

pytestmark = [pytest.mark.slow, DEFAULT_REPORT_GROUP]

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
def built(default_report) -> tuple[str, dict, str]:
    out = default_report
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
    assert "Cho et al. 2014 also write" not in tex and "update gate of \\citet{cho2014learning}, who call it $z$" in tex
    assert "first arXiv version" in tex and "neither necessary nor sufficient" in tex
    assert r"J = \sum_t J^{(t)}" in tex and "gradient layout" in tex
    assert r"\operatorname{hardsigmoid}\left(x\right)" in tex and "largest eigenvalue of $W_h$" in tex  # as math


def test_the_timing_compares_both_engines_forward_and_backward(built) -> None:
    _, results, timings = built
    st = results["gru"]["step_time"]
    assert set(st["engines"]) == {"default", "no-onednn"}
    for engine in st["engines"].values():
        assert set(engine) == {str(n) for n in sections.TIMING_SIZES} and len(engine) >= 2
        for per in engine.values():
            assert per["lstm"]["median_us"] > 0 and per["gru-torch"]["median_us"] > 0
            assert per["lstm_over_gru"] == pytest.approx(per["lstm"]["median_us"] / per["gru-torch"]["median_us"])
            assert "forward + backward" in per["lstm"]["engine"]
    assert "oneDNN disabled" in st["engines"]["no-onednn"][str(sections.TIMING_SIZES[0])]["lstm"]["engine"]
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


# -- the report told as a story (issue 15, h15a) -------------------------------------------------


def _leaves(x):
    if isinstance(x, dict):
        for v in x.values():
            yield from _leaves(v)
    elif isinstance(x, list):
        for v in x:
            yield from _leaves(v)
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        yield float(x)
    elif isinstance(x, str):
        for m in re.findall(r"-?\d+(?:\.\d+)?", x):
            yield float(m)


def _forms(v: float) -> set[str]:
    """The ways the report prints a number of results.json (sections._num, fixed decimals, log10)."""
    import math

    if not math.isfinite(v):
        return set()
    out = {sections._num(v, d) for d in (2, 3, 4)}
    for f in (".1f", ".2f", "g"):
        out |= {format(v, f), format(v / math.log(10), f)}
    if v == int(v):
        out.add(str(int(v)))
    return {o.replace(r"\,", "") for o in out}


_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?(?: \\times 10\^\{-?\d+\})?")


def numbers_in(text: str) -> list[str]:
    """The numbers a sentence states: references and citations dropped, 10^{x} read as x."""
    text = re.sub(r"\\(?:ref|cite[tp]?|label)(?:\[[^]]*\])?\{[^}]*\}", "", text)
    text = re.sub(r"(?<!\\times )10\^\{(-?\d+(?:\.\d+)?)\}", r"\1", text)
    return _NUMBER_RE.findall(text.replace(r"\,", ""))


def unknown_numbers(tex: str, results: dict) -> list[tuple[str, str]]:
    known: set[str] = set()
    for v in _leaves(results):
        known |= _forms(v)
    boxes = re.findall(r"\\begin\{gptakeaway\}(.*?)\\end\{gptakeaway\}", tex, re.S)
    solutions = re.findall(r"\\emph\{Solution\.\}(.*)", tex.split("\\appendix", 1)[1])
    return [(n, t[:60]) for t in boxes + solutions for n in numbers_in(t)
            if n not in known and not (n.lstrip("-").isdigit() and abs(int(n)) <= 2)]


def test_the_number_check_catches_a_typed_number() -> None:
    tex = "\\begin{gptakeaway}kept $10^{-3.5}$ and $0.25$\\end{gptakeaway}\\appendix\\emph{Solution.} $0.125$\n"
    assert unknown_numbers(tex, {"a": -3.5 * 2.302585092994046, "b": 0.25, "c": 0.125}) == []
    assert unknown_numbers(tex, {"a": -3.5 * 2.302585092994046, "b": 0.25}) == [("0.125", " $0.125$")]


def test_every_number_in_a_takeaway_or_solution_is_in_results_json(built) -> None:
    tex, results, _ = built
    assert unknown_numbers(tex, results) == []


def test_each_section_opens_with_motivation_and_closes_with_a_takeaway(built) -> None:
    from gradproof.reports.section_story import MOTIVATION_MARK

    tex, _, _ = built
    body = tex.split("\\begin{document}", 1)[1].split("\\bibliography", 1)[0]
    parts = re.split(r"\\section\{", body)[1:]
    mine = {"scalar", "rnn", "why", "clipping", "lstm", "gru", "beyond", "gates", "summary", "verification"}
    labels = [re.search(r"\\label\{sec:([^}]*)\}", part).group(1) for part in parts]
    assert mine <= set(labels)
    for part, label in zip(parts, labels):
        if label not in mine:  # a section another issue adds
            continue
        title = part.split("}", 1)[0]
        after_heading = part.split("\n", 1)[1].lstrip()
        assert after_heading.startswith(MOTIVATION_MARK), title
        assert part.count("\\begin{gptakeaway}") == 1, title
        # the box closes the section: only floats may follow it
        tail = part.split("\\end{gptakeaway}", 1)[1]
        assert not re.search(r"\\begin\{(equation|align|multline)", tail), title
    assert "\\newenvironment{gptakeaway}" in tex


def test_the_appendix_has_exercises_with_solutions(built) -> None:
    tex, results, _ = built
    appendix = tex.split("\\appendix", 1)[1]
    n = appendix.count("\\paragraph{Exercise ")
    assert 5 <= n <= 8 and appendix.count("\\emph{Solution.}") == n == len(results["exercises"])


def test_every_citation_is_in_refs_bib(built) -> None:
    tex, _, _ = built
    bib = (Path(sections.__file__).parent / "templates" / "refs.bib").read_text()
    keys = set(re.findall(r"^@\w+\{([^,]+),", bib, re.M))
    cited = {k.strip() for group in re.findall(r"\\cite[tp]?\*?(?:\[[^]]*\])?\{([^}]*)\}", tex) for k in group.split(",")}
    assert len(cited) >= 12 and cited <= keys
    assert "\\bibliography{refs}" in tex and "\\usepackage[round,sort]{natbib}" in tex
    # no author-year citation typed in the running text any more
    for typed in ("Pascanu et al. (2013", "Cho et al. (2014)", "(He et al. 2016)", "Hochreiter and Schmidhuber 1997"):
        assert typed not in tex


def test_the_one_unit_example_comes_before_the_matrix_case(built) -> None:
    from gradproof.derive.scalar import scalar_chain

    tex, results, _ = built
    assert tex.index("\\label{sec:scalar}") < tex.index("\\label{sec:rnn}") < tex.index("\\label{sec:why}")
    assert derive_latex(scalar_chain("tanh").product) in tex
    rows = results["scalar"]["rows"]
    assert rows["0.5"]["log10_rest"] == pytest.approx(30 * np.log10(0.5), abs=1e-9)
    assert all(r["log10_driven"] <= r["log10_bound"] + 1e-9 for r in rows.values())
    assert "syntactic recency" in tex and "sequential recency" in tex


def derive_latex(obj) -> str:
    from gradproof.derive import latex

    return latex(obj)
