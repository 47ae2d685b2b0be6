"""The report's LaTeX passes: a rebuild whose labels did not move takes one pass, not three.

latexmk decides from the .aux, .toc and .out files; reports.report.reuse_latex_state hands it the
previous build's, so it can see that a pass changed none of them; a build into a new folder gets the
last build's from the per-user cache (remember_latex_state / recall_latex_state). The counts are read from
latexmk's own output ("Run number k of rule 'pdflatex'").
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gradproof.reports import latex
from gradproof.reports.report import LATEX_STATE, recall_latex_state, remember_latex_state, reuse_latex_state


def _document(sections: int, extra: str = "") -> str:
    body = "\n".join(
        rf"\section{{Heading number {k}}}\label{{sec:{k}}}" + "\n" + ("Filler words here. " * (30 + 41 * (k % 4)))
        for k in range(1, sections + 1)
    )
    return ("\\documentclass{article}\n\\usepackage{hyperref}\n\\begin{document}\n\\tableofcontents\n"
            f"See Section~\\ref{{sec:{sections}}} on page~\\pageref{{sec:{sections}}}. {extra}\n"
            f"{body}\n\\end{{document}}\n")  # fmt: skip


def _compile(directory: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    """Compile ``directory/report.tex`` with latexmk: (pdflatex passes, the PDF's text)."""
    directory.mkdir(exist_ok=True)
    (directory / "report.tex").write_text(text, encoding="utf-8")
    outputs: list[str] = []
    run = latex._run

    def counting(cmd: list[str], cwd: Path, deadline: float) -> tuple[int, str]:
        rc, out = run(cmd, cwd, deadline)
        if "-ini" not in cmd:  # dumping the preamble's format is not a pass over the document
            outputs.append(out if Path(cmd[0]).name == "latexmk" else "Run number 1 of rule 'pdflatex'\n")
        return rc, out

    monkeypatch.setattr(latex, "_run", counting)
    monkeypatch.setattr(latex, "find_engine", lambda: shutil.which("latexmk"))
    pdf = latex.compile_pdf(directory / "report.tex")
    monkeypatch.setattr(latex, "_run", run)
    passes = sum(len(re.findall(r"Run number \d+ of rule 'pdflatex'", out)) for out in outputs)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    return passes, text


def _toc_is_right(text: str, sections: int) -> None:
    assert "??" not in text
    pages = text.split("\f")
    heading_page = {}
    for number, page in enumerate(pages, start=1):
        for k in re.findall(r"^\s*(\d+)\s+Heading number \1\s*$", page, flags=re.M):
            heading_page[int(k)] = number
    toc = {int(k): int(p) for k, p in re.findall(r"^\s*(\d+)\s+Heading number \1[ .]+(\d+)\s*$", text, re.M)}
    assert len(heading_page) == sections and toc == heading_page
    assert f"on page {heading_page[sections]}" in " ".join(text.split())


def test_a_rebuild_with_the_same_layout_takes_one_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first, text = _compile(tmp_path / "first", _document(40), monkeypatch)
    assert first >= 2  # nothing to start from: the contents and page references need passes
    _toc_is_right(text, 40)
    (tmp_path / "again").mkdir()
    assert reuse_latex_state(tmp_path / "first", tmp_path / "again") == list(LATEX_STATE)
    again, text_again = _compile(tmp_path / "again", _document(40), monkeypatch)
    assert again == 1
    assert text_again == text


def test_a_rebuild_whose_pages_moved_takes_the_passes_it_needs(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    _compile(tmp_path / "first", _document(40), monkeypatch)
    (tmp_path / "moved").mkdir()
    reuse_latex_state(tmp_path / "first", tmp_path / "moved")
    # a longer first page pushes every heading down: the old .aux and .toc are now wrong
    passes, text = _compile(tmp_path / "moved", _document(40, "Longer text. " * 400), monkeypatch)
    assert passes >= 2
    _toc_is_right(text, 40)


def test_reuse_latex_state_copies_only_regular_files(tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "report.aux").write_text("\\relax\n", encoding="utf-8")
    (tmp_path / "elsewhere.toc").write_text("not ours\n", encoding="utf-8")
    (old / "report.toc").symlink_to(tmp_path / "elsewhere.toc")
    (old / "report.pdf").write_bytes(b"%PDF-old")
    assert reuse_latex_state(old, new) == ["report.aux"]
    assert sorted(p.name for p in new.iterdir()) == ["report.aux"]  # never the old PDF
    assert reuse_latex_state(tmp_path / "missing", new) == []


def test_a_new_folder_starts_from_the_last_build_kept_in_the_cache(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADPROOF_LATEX_CACHE", str(tmp_path / "cache"))
    first, text = _compile(tmp_path / "first", _document(40), monkeypatch)
    assert first >= 2
    assert remember_latex_state(tmp_path / "first") == list(LATEX_STATE)
    (tmp_path / "elsewhere").mkdir()
    assert recall_latex_state(tmp_path / "elsewhere") == list(LATEX_STATE)
    again, text_again = _compile(tmp_path / "elsewhere", _document(40), monkeypatch)
    assert again == 1 and text_again == text
    # a different document from that state: the passes it needs, and right contents
    (tmp_path / "other").mkdir()
    recall_latex_state(tmp_path / "other")
    passes, text_other = _compile(tmp_path / "other", _document(40, "Longer text. " * 400), monkeypatch)
    assert passes >= 2
    _toc_is_right(text_other, 40)


def test_the_state_cache_can_be_turned_off_or_be_unwritable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "report.aux").write_text("\\relax\n", encoding="utf-8")
    monkeypatch.setenv("GRADPROOF_LATEX_CACHE", "off")
    assert remember_latex_state(tmp_path / "build") == []
    assert recall_latex_state(tmp_path / "build") == []
    (tmp_path / "blocker").write_text("a file, not a folder\n", encoding="utf-8")
    monkeypatch.setenv("GRADPROOF_LATEX_CACHE", str(tmp_path / "blocker"))
    assert remember_latex_state(tmp_path / "build") == []
    (tmp_path / "new").mkdir()
    assert recall_latex_state(tmp_path / "new") == []
