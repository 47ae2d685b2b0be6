"""Layout of the built report: every figure and table lands on the page of its first reference or the
next one (page of each float from the .aux, pages of the references from pdftotext page by page)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gradproof.reports.sections import refer_to_figures

from .conftest import DEFAULT_REPORT_GROUP

pytestmark = DEFAULT_REPORT_GROUP

_LABEL = re.compile(r"\\newlabel\{((fig|tab):[^}]*)\}\{\{([^}]*)\}\{(\d+)\}")


def float_pages(aux: str) -> dict[str, tuple[str, str, int]]:
    """label -> (word, number, page) for every figure and table label in a ``.aux``."""
    words = {"fig": "Figure", "tab": "Table"}
    return {m[1]: (words[m[2]], m[3], int(m[4])) for m in _LABEL.finditer(aux)}


def first_mention(pages: list[str], word: str, number: str) -> int | None:
    """1-based page of the first "Figure 3" (not the caption "Figure 3:") in the pages' text."""
    pattern = re.compile(rf"\b{word}\s+{re.escape(number)}(?![\d.]*\d)(?!:)")
    for k, page in enumerate(pages, start=1):
        if pattern.search(page):
            return k
    return None


def misplaced(report: Path, *, slack: int = 1) -> list[str]:
    """Floats more than ``slack`` pages after (or before) their first reference, as readable lines."""
    text = subprocess.run(["pdftotext", "-layout", str(report / "report.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    pages = text.split("\f")
    out = []
    for label, (word, number, page) in float_pages((report / "report.aux").read_text()).items():
        ref = first_mention(pages, word, number)
        if ref is None or not ref <= page <= ref + slack:
            out.append(f"{label} ({word} {number}) on page {page}, first referenced on page {ref}")
    return out


def test_the_helpers_read_aux_and_text():
    aux = (r"\newlabel{fig:a}{{3}{5}{Caption}{figure.caption.9}{}}" "\n"
           r"\newlabel{tab:b}{{1}{2}{}{table.caption.1}{}}" "\n" r"\newlabel{sec:rnn}{{1}{2}{x}{section.1}{}}")  # fmt: skip
    assert float_pages(aux) == {"fig:a": ("Figure", "3", 5), "tab:b": ("Table", "1", 2)}
    pages = ["Figure 3: a caption only", "text, see Figure 31 and Figure 3.5", "as Figure 3 shows"]
    assert first_mention(pages, "Figure", "3") == 3
    assert first_mention(pages, "Table", "1") is None


def test_a_reference_inside_a_note_counts_as_the_first_mention():
    fig = {"kind": "figure", "path": "figures/a.pdf", "label": "fig:a"}
    blocks = [{"kind": "text", "text": "Earlier."}, {"kind": "note", "text": r"See Figure~\ref{fig:a}."}, fig]
    assert refer_to_figures(blocks) == blocks  # no second, earlier reference added
    unreferenced = [{"kind": "text", "text": "Earlier."}, {"kind": "note", "text": "No reference."}, fig]
    assert refer_to_figures(unreferenced)[0]["text"] == r"Earlier. (Figure~\ref{fig:a})"


@pytest.fixture(scope="module")
def report(default_report) -> Path:
    assert shutil.which("pdftotext"), "pdftotext is needed (poppler-utils; scripts/install-latex.sh)"
    return default_report


@pytest.mark.slow
def test_every_float_lands_on_the_page_of_its_first_reference_or_the_next(report):
    labels = float_pages((report / "report.aux").read_text())
    assert {"fig:unrolled", "fig:cell_lstm", "fig:cell_gru"} <= set(labels)
    # Known exception: Section "Why gates help" is short text with four large figures: all of its
    # paragraphs fit on one page while the figures fill the next two, so its last two figures land on
    # the second page after their first reference (two float pages before the next section's barrier).
    # Every other float is on the page of its first reference or the next.
    gates = {"fig:phase_diagram", "fig:lyapunov_spectra"}
    assert [m for m in misplaced(report) if m.split()[0] not in gates] == []
    assert misplaced(report, slack=2) == []


@pytest.mark.slow
def test_the_diagrams_are_placed_in_their_sections(report):
    """Each section starts with \\FloatBarrier (placeins): a float never drifts into the next section."""
    aux = (report / "report.aux").read_text()
    section = {m[1]: int(m[2]) for m in re.finditer(r"\\newlabel\{(sec:[^}]*)\}\{\{[^}]*\}\{(\d+)\}", aux)}
    pages = float_pages(aux)
    assert section["sec:rnn"] <= pages["fig:unrolled"][2] < section["sec:clipping"]
    assert section["sec:lstm"] <= pages["fig:cell_lstm"][2] < section["sec:gru"]
    assert section["sec:gru"] <= pages["fig:cell_gru"][2] <= section["sec:beyond"]


@pytest.mark.slow
def test_the_two_gru_jacobians_are_tagged_and_referenced_and_pytorchs_gate_is_zeta(report):
    tex = (report / "report.tex").read_text()
    gru = tex[tex.index(r"\label{sec:gru}"):tex.index(r"\label{sec:beyond}")]
    for tag, label in (("GRU-L", "eq:gru_jacobian_lecture"), ("GRU-P", "eq:gru_jacobian_torch")):
        assert rf"\tag{{{tag}}}\label{{{label}}}" in gru and rf"\eqref{{{label}}}" in gru
    # z^{(t)} is the RNN's pre-activation; PyTorch's update gate is printed as zeta, in every display
    assert "z^{(t)}" in tex[:tex.index(r"\label{sec:clipping}")]
    displays = re.findall(r"\\begin\{(?:align|multline)\*\}(.*?)\\end", gru, flags=re.S)
    assert any(r"\zeta^{(t)}" in d for d in displays)
    assert not any("z^{(t)}" in d.replace(r"\zeta^{(t)}", "") for d in displays)
    assert "W_{z}" not in gru and r"W_{\zeta}" in gru
    # nor is z the bidirectional joint state of Section 5 (z^{(k)} stays the pre-activation of the
    # one-unit warm-up, as z^{(t)} is in Section 1)
    beyond = tex[tex.index(r"\label{sec:beyond}"):tex.index(r"\label{sec:gates}")]
    assert "z^{(k)}" not in beyond and r"\partial h_{\leftrightarrow}^{(k)}" in tex


def test_no_tab_character_in_the_report_sources():
    """A tab in a raw string once printed "$\\tanh$" as "$<TAB>anh$" and "\\texttt" as "<TAB>exttt" in a
    caption (Section 5); the sources are spaces only."""
    root = Path(__file__).resolve().parents[2] / "reports"
    offenders = [p.name for p in sorted(root.rglob("*")) if p.suffix in (".py", ".j2") and "\t" in p.read_text()]
    assert offenders == []
