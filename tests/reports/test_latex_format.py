"""The cached preamble format (reports.latex_format): faster passes, the same PDF for the reader.

Every test points ``GRADPROOF_LATEX_CACHE`` at its own folder, so a format is dumped exactly when
a test expects it. "The same for the reader" is checked on what a reader sees: the text of every
page and the pixels of every page rendered by pdftoppm.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from gradproof.reports import latex, latex_format
from gradproof.reports.latex import compile_pdf
from gradproof.reports.latex_format import format_cache_dir, split_preamble

PREAMBLE = (
    "\\documentclass{article}\n"
    "\\usepackage{amsmath}\n"
    "\\usepackage[colorlinks=true]{hyperref}\n"
    "\\AtBeginDocument{\\ifdefined\\pdftrailerid\\pdftrailerid{}\\pdfinfoomitdate=1 \\fi}\n"
)


def _document(preamble: str = PREAMBLE, sections: int = 12) -> str:
    body = "\n".join(
        rf"\section{{Part {k}}}\label{{sec:{k}}}" + "\n" + ("Some words of text. " * (40 + 50 * (k % 3)))
        + "\n\\begin{equation}\\label{eq:" + str(k) + "} x_{" + str(k) + "} = \\sum_t a_t^2 \\end{equation}"
        for k in range(1, sections + 1)
    )
    return (f"{preamble}\\begin{{document}}\n\\tableofcontents\n"
            f"See Section~\\ref{{sec:{sections}}} on page~\\pageref{{sec:{sections}}} and \\eqref{{eq:2}}.\n"
            f"{body}\n\\end{{document}}\n")  # fmt: skip


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv(latex_format.CACHE_ENV, str(folder))
    return folder / "formats"


@pytest.fixture
def dumps(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The ``pdflatex -ini`` commands run (one per format dumped)."""
    seen: list[list[str]] = []
    run = latex._run

    def recording(cmd: list[str], cwd: Path, deadline: float) -> tuple[int, str]:
        if "-ini" in cmd:
            seen.append(cmd)
        return run(cmd, cwd, deadline)

    monkeypatch.setattr(latex, "_run", recording)
    return seen


def _build(directory: Path, text: str, **kwargs: bool) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.tex").write_text(text, encoding="utf-8")
    return compile_pdf(directory / "report.tex", **kwargs)


def _used_format(directory: Path) -> bool:
    first = (directory / "report.log").read_text(encoding="utf-8", errors="replace").splitlines()[0]
    return "preloaded format=report " in first


def _pages(pdf: Path, out: Path) -> list[bytes]:
    out.mkdir()
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(out / "p")], check=True, timeout=120)
    return [p.read_bytes() for p in sorted(out.glob("p*.png"))]


def _text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True, timeout=60).stdout  # fmt: skip


def test_split_preamble_takes_the_lines_before_begin_document() -> None:
    assert split_preamble(_document()) == PREAMBLE
    assert split_preamble("\\documentclass{article}\\begin{document}x\\end{document}\n") is None
    assert split_preamble(PREAMBLE + "\\begin{document}\n\\begin{document}\n") is None
    assert split_preamble("%&other\n" + PREAMBLE + "\\begin{document}\nx\n\\end{document}\n") is None
    # lines mylatexformat's scanner could stop at before \begin{document}: no format
    assert split_preamble(PREAMBLE + "\\csname endofdump\\endcsname\n\\begin{document}\n") is None
    assert split_preamble(PREAMBLE + "\\newcommand\\x{\\begin{documentation}}\n\\begin{document}\n") is None
    assert split_preamble("\\relax\n\\begin{document}\nx\n\\end{document}\n") is None  # no class


def test_format_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(latex_format.CACHE_ENV, str(tmp_path / "here"))
    assert format_cache_dir() == tmp_path / "here"
    monkeypatch.setenv(latex_format.CACHE_ENV, "off")
    assert format_cache_dir() is None
    monkeypatch.delenv(latex_format.CACHE_ENV)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert format_cache_dir() == tmp_path / "xdg" / "gradproof" / "latex"


def test_the_format_gives_the_same_pages_and_is_dumped_once(
    tmp_path: Path, cache: Path, dumps: list[list[str]]
) -> None:
    plain = _build(tmp_path / "plain", _document(), use_format=False)
    assert not _used_format(tmp_path / "plain") and dumps == [] and not cache.exists()
    fast = _build(tmp_path / "fast", _document())
    assert _used_format(tmp_path / "fast") and len(dumps) == 1
    again = _build(tmp_path / "again", _document())
    assert _used_format(tmp_path / "again") and len(dumps) == 1  # from the cache
    text = _text(plain)
    assert "??" not in text and re.search(r"Section 12 on page \d+ and \(2\)", " ".join(text.split()))
    assert _text(fast) == text
    assert _pages(fast, tmp_path / "png-fast") == _pages(plain, tmp_path / "png-plain")
    assert again.read_bytes() == fast.read_bytes()
    # the trailer ID set in an \AtBeginDocument hook survives the format: no /ID, no date
    for pdf in (plain, fast):
        assert b"/ID [" not in pdf.read_bytes() and b"/CreationDate" not in pdf.read_bytes()
    assert [p.name for p in cache.iterdir()] == [next(cache.iterdir()).name]  # one entry, no build-*


def test_a_changed_preamble_gets_its_own_format(tmp_path: Path, cache: Path, dumps: list[list[str]]) -> None:
    _build(tmp_path / "one", _document())
    other = PREAMBLE.replace("\\usepackage{amsmath}\n", "\\usepackage{amsmath}\n\\newcommand\\gpword{WORDX}\n")
    pdf = _build(tmp_path / "two", _document(other).replace("Part 3}", "Part 3 \\gpword}"))
    assert len(dumps) == 2 and _used_format(tmp_path / "two")
    assert "Part 3 WORDX" in _text(pdf)  # the new command came from the new format
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 2


def test_a_format_whose_files_changed_is_dumped_again(tmp_path: Path, cache: Path, dumps: list[list[str]]) -> None:
    _build(tmp_path / "one", _document())
    (entry,) = cache.iterdir()
    manifest = json.loads((entry / "manifest.json").read_text(encoding="utf-8"))
    some_file = next(p for p in manifest["files"] if p.endswith(".sty"))
    manifest["files"][some_file][1] -= 1  # as if a TeX Live update had replaced the package
    (entry / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    _build(tmp_path / "two", _document())
    assert len(dumps) == 2 and _used_format(tmp_path / "two")


def test_a_damaged_format_is_never_used(tmp_path: Path, cache: Path, dumps: list[list[str]]) -> None:
    reference = _text(_build(tmp_path / "one", _document()))
    (entry,) = cache.iterdir()
    fmt = entry / "report.fmt"
    fmt.write_bytes(fmt.read_bytes()[:1000])  # truncated: its size no longer matches the manifest
    assert _text(_build(tmp_path / "two", _document())) == reference
    assert len(dumps) == 2 and _used_format(tmp_path / "two")


def test_a_failing_run_with_the_format_is_redone_without_it(
    tmp_path: Path, cache: Path, dumps: list[list[str]]
) -> None:
    reference = _text(_build(tmp_path / "one", _document()))
    (entry,) = cache.iterdir()
    fmt = entry / "report.fmt"
    fmt.write_bytes(fmt.read_bytes()[:1000])
    manifest = json.loads((entry / "manifest.json").read_text(encoding="utf-8"))
    manifest["fmt"] = latex_format._stamp(str(fmt))  # damage the manifest does not see
    (entry / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert _text(_build(tmp_path / "two", _document())) == reference
    assert len(dumps) == 1 and not _used_format(tmp_path / "two")


@pytest.mark.parametrize("where", ["a file", "a space"])
def test_an_unusable_cache_falls_back_to_plain_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dumps: list[list[str]], where: str
) -> None:
    if where == "a file":
        blocker = tmp_path / "blocker"
        blocker.write_text("not a folder\n", encoding="utf-8")
        monkeypatch.setenv(latex_format.CACHE_ENV, str(blocker / "cache"))
    else:
        monkeypatch.setenv(latex_format.CACHE_ENV, str(tmp_path / "with space"))
    pdf = _build(tmp_path / "doc", _document())
    assert not _used_format(tmp_path / "doc") and dumps == []
    assert "??" not in _text(pdf)


def test_the_cache_keeps_the_most_recent_formats(tmp_path: Path, cache: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(latex_format, "_KEEP", 2)
    for k in range(3):
        _build(tmp_path / f"d{k}", _document(PREAMBLE + f"\\newcommand\\gpk{{{k}}}\n", sections=1))
    kept = sorted(cache.iterdir(), key=lambda p: p.stat().st_mtime)
    assert len(kept) == 2
    assert "\\newcommand\\gpk{2}" in (kept[-1] / "report.tex").read_text(encoding="utf-8")
