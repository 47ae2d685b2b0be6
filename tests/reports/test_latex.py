"""Tests of reports.latex: escaping, the template, and compiling with a real LaTeX engine.

The compile tests really run latexmk/pdflatex (installed here and in CI) and read the PDF back
with pdftotext; nothing is mocked except, where said, which engine is found.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import jinja2
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradproof.derive.errors import GradproofError
from gradproof.reports import figures, latex
from gradproof.reports.latex import (
    LatexError,
    LatexNotFound,
    compile_pdf,
    environment,
    escape_tex,
    find_engine,
    overfull_boxes,
    render_report,
)

NASTY_TITLE = r"50% of A&B_{x} \foo ~ #1 $"

# --------------------------------------------------------------------------------------------
# escape_tex
# --------------------------------------------------------------------------------------------

ESCAPES = [
    ("plain", "Vanishing gradients", "Vanishing gradients"),
    ("percent", "50%", r"50\%"),
    ("ampersand", "A&B", r"A\&B"),
    ("underscore", "rnn_tanh.pt", r"rnn\_tanh.pt"),
    ("braces", "{x}", r"\{x\}"),
    ("backslash", r"\foo", r"\textbackslash{}foo"),
    ("two-backslashes", "\\\\", r"\textbackslash{}\textbackslash{}"),
    ("tilde", "~/runs", r"\textasciitilde{}/runs"),
    ("caret", "x^2", r"x\textasciicircum{}2"),
    ("hash-dollar", "#1 $", r"\#1 \$"),
    (
        "brief-title",
        NASTY_TITLE,
        r"50\% of A\&B\_\{x\} \textbackslash{}foo \textasciitilde{} \#1 \$",
    ),
    ("en-dash-ligature", "a--b", "a-{}-b"),
    ("em-dash-ligature", "---", "-{}-{}-"),
    ("single-hyphen", "gru-torch", "gru-torch"),
    ("guillemet-ligature", "<<a>>", r"\textless{}\textless{}a\textgreater{}\textgreater{}"),
    ("low-quote-ligature", "a,,b", "a,{},b"),
    (
        "quotes",
        'it\'s "q" `x`',
        r"it\textquotesingle{}s \textquotedbl{}q\textquotedbl{} \textasciigrave{}x\textasciigrave{}",
    ),
    ("bar", "a|b", r"a\textbar{}b"),
    ("newline-tab", "line\nbreak\ttab\r\n", "line break tab  "),
    ("paragraph-break", "a\n\nb", "a  b"),
    ("control-chars", "bell\x07null\x00esc\x1b del\x7f", "bellnullesc del"),
    ("c1-control-and-bom", "\ufeffa\x85b\x9bc", "a bc"),
    ("non-ascii", "café σ ü — 名前", "café σ ü — 名前"),
    ("empty", "", ""),
]


@pytest.mark.parametrize(
    ("text", "expected"), [e[1:] for e in ESCAPES], ids=[e[0] for e in ESCAPES]
)
def test_escape_tex_table(text: str, expected: str) -> None:
    assert escape_tex(text) == expected


@pytest.mark.parametrize("value", [None, 3, b"bytes", ["a"]], ids=["none", "int", "bytes", "list"])
def test_escape_tex_rejects_non_str(value: object) -> None:
    with pytest.raises(GradproofError, match="expects a str"):
        escape_tex(value)  # type: ignore[arg-type]


_ESCAPE_TOKENS = re.compile(
    r"\\text(?:backslash|asciitilde|asciicircum|less|greater|bar|quotedbl|quotesingle|asciigrave)\{\}"
    r"|\\[{}$&#%_]|-\{\}|,\{\}"
)


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
def test_escape_tex_leaves_no_active_character(text: str) -> None:
    """Property: after removing the escape sequences, nothing special to LaTeX is left."""
    escaped = escape_tex(text)
    rest = _ESCAPE_TOKENS.sub("", escaped)
    assert not set(rest) & set("\\{}$&#^_%~<>|\"'`"), (text, escaped)
    assert "--" not in rest and ",," not in rest
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in rest)


# --------------------------------------------------------------------------------------------
# environment and rendering (no LaTeX run)
# --------------------------------------------------------------------------------------------


def test_environment_uses_latex_safe_delimiters() -> None:
    env = environment()
    tpl = env.from_string("((= a comment =))((* if on *))\\x{((( v|tex )))}((* endif *)) {}%#\n")
    assert tpl.render(on=True, v="50%") == "\\x{50\\%} {}%#\n"  # trailing newline kept
    with pytest.raises(jinja2.UndefinedError):
        tpl.render(on=True)  # StrictUndefined: a missing name is an error, never ""
    assert env.autoescape is False
    assert env.filters["tex"] is escape_tex


def minimal_context(**blocks_or_keys: object) -> dict:
    blocks = blocks_or_keys.pop("blocks", [{"kind": "text", "text": "Hello."}])
    ctx = {
        "title": "Minimal",
        "date": "1 January 2025",
        "version": "0.1.0",
        "seed": 7,
        "sections": [{"title": "Only section", "label": "sec:only", "blocks": blocks}],
    }
    ctx.update(blocks_or_keys)
    return ctx


def full_context(figure_path: str) -> dict:
    """One of every block kind, the brief's nasty title, references and an appendix."""
    return {
        "title": NASTY_TITLE,
        "subtitle": "a subtitle with 100% & _",
        "author": "gradproof",
        "date": "1 January 2025",
        "version": "0.1.0",
        "seed": 1234,
        "abstract": r"We derive $\partial h^{(t)} / \partial h^{(t-1)}$.",
        "conventions": [r"$h^{(t)} \in \mathbb{R}^{n}$", r"$\odot$ is the Hadamard product"],
        "references": [
            {
                "key": "pascanu2013",
                "text": r"R.~Pascanu et al. \emph{On the difficulty of training RNNs}. ICML 2013.",
            }
        ],
        "sections": [
            {
                "title": "Vanishing gradients",
                "label": "sec:vanishing",
                "blocks": [
                    {"kind": "text", "text": r"The step Jacobian~\cite{pascanu2013} is"},
                    {"kind": "equation", "math": r"J_t = \operatorname{diag}(\sigma'(z_t)) W_h"},
                    {"kind": "text", "text": r"and its norm obeys~\eqref{eq:bound}."},
                    {
                        "kind": "equation",
                        "math": [r"\|J_t\| &\le \gamma \|W_h\|", r"&< 1"],
                        "label": "eq:bound",
                        "caption": "The bound:",
                    },
                    {"kind": "equation", "math": "x = y", "label": "eq:tagged", "tag": "B1"},
                    {"kind": "subsection", "title": "Products over steps", "label": "sec:products"},
                    {"kind": "align", "lines": [r"a &= b", r"c &= d"]},
                    {
                        "kind": "multline",
                        "lines": [r"a + b + c", r"+ d + e"],
                        "caption": "A long one:",
                    },
                    {"kind": "itemize", "items": ["first", "second"]},
                    {"kind": "itemize", "items": ["one", "two"], "ordered": True},
                    {"kind": "note", "text": r"The lecture uses $\gamma$ for two things."},
                    {
                        "kind": "figure",
                        "path": figure_path,
                        "caption": "Gradient norms.",
                        "label": "fig:norms",
                        "width": 0.7,
                    },
                    {
                        "kind": "figure",
                        "panels": [
                            {"path": figure_path, "caption": "left"},
                            {"path": figure_path, "caption": "right"},
                        ],
                        "caption": "Two panels.",
                    },
                    {
                        "kind": "table",
                        "columns": ["cell", r"$\max |e|$"],
                        "rows": [["rnn-tanh", "1.1e-16"], ["lstm", "2.2e-15"]],
                        "caption": "Errors.",
                        "label": "tab:errors",
                    },
                    # 14 columns of 12 characters: wider than the line, shrunk to fit (no overfull box)
                    {
                        "kind": "table",
                        "columns": [f"$c_{{{i}}}$" for i in range(14)],
                        "rows": [["1.234567e-16"] * 14] * 3,
                        "wide": True,
                    },
                    {
                        "kind": "table",
                        "columns": ["step", "value"],
                        "rows": [[str(i), str(i * i)] for i in range(70)],
                        "long": True,
                        "caption": "A long table.",
                    },
                    {"kind": "itemize", "items": [escape_tex(s) for s in NASTY_STRINGS]},
                ],
            }
        ],
        "appendix": [
            {
                "title": "Verification",
                "label": "app:verify",
                "blocks": [
                    {
                        "kind": "text",
                        "text": "See Table~\\ref{tab:errors} and Figure~\\ref{fig:norms}.",
                    }
                ],
            }
        ],
    }


# Printable ASCII and a little Latin-1; no "fi"/"fl"/"ff" (ligatures are extracted differently).
NASTY_STRINGS = [
    "50% of A&B_{x}",
    r"C:\Users\me\run~1\#2",
    "x^2 | y <z> a--b ,,c",
    'it\'s "quoted" `tick`',
    "$HOME/$USER",
    "café, naïve, über",
]


def test_render_is_deterministic_and_does_not_touch_context() -> None:
    ctx = full_context("figures/norms.pdf")
    before = copy.deepcopy(ctx)
    first = render_report(ctx)
    second = render_report(copy.deepcopy(ctx))
    assert first == second
    assert ctx == before


def test_render_places_caller_strings_verbatim() -> None:
    math = r"\frac{\partial h_t}{\partial h_{t-1}} = \operatorname{diag}(\sigma'(z_t)) W_h"
    tex = render_report(
        minimal_context(
            blocks=[
                {"kind": "text", "text": "Before:"},
                {"kind": "equation", "math": math},
                {"kind": "align", "lines": ["a &= b", "c &= d"]},
                {"kind": "table", "columns": ["x", "y"], "rows": [["1", "2"]], "wide": True},
            ]
        )
    )
    assert f"\\begin{{equation*}}\n  {math}\n\\end{{equation*}}" in tex
    assert "\\begin{align*}\n  a &= b \\\\\n  c &= d\n\\end{align*}" in tex
    # A display joins the paragraph before it: no blank line between "Before:" and the display.
    assert "Before:\n\\begin{equation*}" in tex
    assert "\\gpfittable" in tex and "x & y \\\\" in tex and "1 & 2 \\\\" in tex
    # Only the whitelisted packages of texlive-latex-base/-recommended are used, plus tikz
    # (texlive-pictures) and placeins (texlive-latex-extra), both in scripts/install-latex.sh.
    packages = set(re.findall(r"\\usepackage(?:\[[^\]]*\])?\{([^}]*)\}", tex))
    assert packages <= {
        "inputenc",
        "fontenc",
        "lmodern",
        "textcomp",
        "amsmath",
        "amssymb",
        "mathtools",
        "bm",
        "array",
        "booktabs",
        "longtable",
        "geometry",
        "graphicx",
        "xcolor",
        "caption",
        "subcaption",
        "microtype",
        "hyperref",
        "tikz",
        "placeins",
        "natbib",  # texlive-latex-base (kpsewhich natbib.sty), for the BibTeX references
    }
    assert not {"cleveref", "siunitx", "breqn"} & packages
    assert "\\allowdisplaybreaks" in tex and "\\sloppy" not in tex and "\\tableofcontents" in tex
    assert "gradproof~0.1.0" in tex and "seed~7" in tex


BAD_CONTEXTS = [
    ("missing-title", lambda c: c.pop("title"), "missing key"),
    ("unknown-top-key", lambda c: c.update(sectionz=[]), "unknown key"),
    ("empty-title", lambda c: c.update(title="  "), "non-empty"),
    ("seed-float", lambda c: c.update(seed=1.5), "seed"),
    (
        "unknown-kind",
        lambda c: c["sections"][0]["blocks"].append({"kind": "chart"}),
        r"sections\[0\]\.blocks\[1\]\.kind",
    ),
    (
        "block-typo",
        lambda c: c["sections"][0]["blocks"].append({"kind": "text", "txt": "x"}),
        "missing key",
    ),
    (
        "row-length",
        lambda c: c["sections"][0]["blocks"].append(
            {"kind": "table", "columns": ["a", "b"], "rows": [["1"]]}
        ),
        r"rows\[0\]: expected 2 cells",
    ),
    (
        "number-cell",
        lambda c: c["sections"][0]["blocks"].append(
            {"kind": "table", "columns": ["a"], "rows": [[1.5]]}
        ),
        "expected a str",
    ),
    (
        "align-count",
        lambda c: c["sections"][0]["blocks"].append(
            {"kind": "table", "columns": ["a", "b"], "rows": [], "align": "lcr"}
        ),
        "2 column specifiers",
    ),
    (
        "wide-and-long",
        lambda c: c["sections"][0]["blocks"].append(
            {"kind": "table", "columns": ["a"], "rows": [], "wide": True, "long": True}
        ),
        "at most one",
    ),
    (
        "figure-parent",
        lambda c: c["sections"][0]["blocks"].append({"kind": "figure", "path": "../secret.pdf"}),
        "relative path",
    ),
    (
        "figure-absolute",
        lambda c: c["sections"][0]["blocks"].append({"kind": "figure", "path": "/etc/x.pdf"}),
        "relative path",
    ),
    (
        "figure-space",
        lambda c: c["sections"][0]["blocks"].append({"kind": "figure", "path": "figures/a b.pdf"}),
        "relative path",
    ),
    (
        "figure-width",
        lambda c: c["sections"][0]["blocks"].append(
            {"kind": "figure", "path": "figures/a.pdf", "width": 1.5}
        ),
        r"\(0, 1\]",
    ),
    (
        "figure-both",
        lambda c: c["sections"][0]["blocks"].append(
            {"kind": "figure", "path": "a.pdf", "panels": [{"path": "b.pdf"}]}
        ),
        "exactly one",
    ),
    ("bad-label", lambda c: c["sections"][0].update(label="sec one"), "label matching"),
    (
        "tag-without-label",
        lambda c: c["sections"][0]["blocks"].append({"kind": "equation", "math": "x", "tag": "A"}),
        "add 'label'",
    ),
    (
        "multline-one-piece",
        lambda c: c["sections"][0]["blocks"].append({"kind": "multline", "lines": ["x"]}),
        "at least two",
    ),
    (
        "items-str",
        lambda c: c["sections"][0]["blocks"].append({"kind": "itemize", "items": "abc"}),
        "list of str",
    ),
    (
        "bad-reference-key",
        lambda c: c.update(references=[{"key": "a b", "text": "x"}]),
        r"references\[0\]\.key",
    ),
]


@pytest.mark.parametrize(
    ("mutate", "message"), [b[1:] for b in BAD_CONTEXTS], ids=[b[0] for b in BAD_CONTEXTS]
)
def test_render_rejects_bad_context_with_one_line(mutate, message: str) -> None:
    ctx = minimal_context()
    mutate(ctx)
    with pytest.raises(GradproofError, match=message) as info:
        render_report(ctx)
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("report context ")


# --------------------------------------------------------------------------------------------
# compiling (real LaTeX)
# --------------------------------------------------------------------------------------------


def pdf_text(pdf: Path) -> str:
    out = subprocess.run(
        ["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True, check=True
    )
    return out.stdout.decode("utf-8")


def write_report(directory: Path, ctx: dict) -> Path:
    tex = directory / "report.tex"
    tex.write_text(render_report(ctx), encoding="utf-8")
    return tex


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Compile the full example once (latexmk): every block kind and a real figure."""
    directory = tmp_path_factory.mktemp("full")
    import matplotlib

    with matplotlib.rc_context():
        figures.use_style()
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        t = np.arange(1, 31)
        ax.semilogy(t, 0.8**t, label="decay")
        ax.set_title("Gradient norm figure")
        figures.save(fig, directory / "figures", "norms")
    tex = write_report(directory, full_context("figures/norms.pdf"))
    start = time.perf_counter()
    pdf = compile_pdf(tex)
    seconds = time.perf_counter() - start
    return {"dir": directory, "tex": tex, "pdf": pdf, "seconds": seconds, "text": pdf_text(pdf)}


@pytest.mark.slow
def test_full_report_compiles_and_shows_the_title_verbatim(full_report: dict) -> None:
    pdf = full_report["pdf"]
    assert pdf == full_report["dir"] / "report.pdf"
    assert figures.is_valid_image(pdf)
    text = " ".join(full_report["text"].split())
    assert NASTY_TITLE in text
    for s in NASTY_STRINGS:
        assert " ".join(s.split()) in text, s
    # references, equation numbers and the table of contents were resolved (several runs)
    assert "??" not in text
    assert "[1]" in text and "(B1)" in text
    assert "Contents" in text and "Products over steps" in text
    # footer on the pages, the figure embedded (its title text is extractable), note box title
    assert "gradproof 0.1.0 · seed 1234" in text
    assert "Gradient norm figure" in text
    assert "Where the lecture is imprecise" in text


@pytest.mark.slow
def test_full_report_has_no_overfull_boxes(full_report: dict) -> None:
    assert overfull_boxes(full_report["dir"] / "report.log", min_pt=1.0) == []


@pytest.mark.slow
def test_pdf_is_byte_reproducible(full_report: dict, tmp_path: Path) -> None:
    """Same .tex compiled again elsewhere -> the same PDF bytes (no dates, no trailer ID)."""
    shutil.copytree(full_report["dir"] / "figures", tmp_path / "figures")
    tex = tmp_path / "report.tex"
    shutil.copy(full_report["tex"], tex)
    assert compile_pdf(tex).read_bytes() == full_report["pdf"].read_bytes()


def test_latex_error_names_first_error_line(tmp_path: Path) -> None:
    ctx = minimal_context(
        blocks=[
            {"kind": "text", "text": "Fine."},
            {"kind": "text", "text": r"Broken \undefinedmacro here."},
        ]
    )
    tex = write_report(tmp_path, ctx)
    expected_line = next(
        i for i, line in enumerate(tex.read_text().splitlines(), 1) if "undefinedmacro" in line
    )
    with pytest.raises(LatexError) as info:
        compile_pdf(tex)
    message = str(info.value)
    assert "\n" not in message
    assert message == (
        f"LaTeX failed: report.tex:{expected_line}: Undefined control sequence \\undefinedmacro "
        "(log: report.log; the .tex is kept)"
    )
    assert tex.is_file()
    assert isinstance(info.value, GradproofError)


def test_shell_escape_is_off_even_if_the_environment_enables_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    body = r"\immediate\write18{touch pwned}Text after the attempt."
    # Control: with shell_escape=t in the environment, a plain pdflatex run does execute it, so
    # this test would notice if compile_pdf let it through.
    control = tmp_path / "control"
    control.mkdir()
    write_report(control, minimal_context(blocks=[{"kind": "text", "text": body}]))
    env = {**os.environ, "shell_escape": "t"}
    subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "report.tex"],
        cwd=control,
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert (control / "pwned").exists()

    monkeypatch.setenv("shell_escape", "t")
    guarded = tmp_path / "guarded"
    guarded.mkdir()
    tex = write_report(guarded, minimal_context(blocks=[{"kind": "text", "text": body}]))
    compile_pdf(tex)
    assert not (guarded / "pwned").exists()
    log = (guarded / "report.log").read_text(encoding="utf-8", errors="replace")
    assert "write18 enabled" not in log
    assert "Text after the attempt." in pdf_text(guarded / "report.pdf")


def test_writing_outside_the_report_directory_is_refused(tmp_path: Path) -> None:
    inner = tmp_path / "inner"
    inner.mkdir()
    body = r"\newwrite\gpw\immediate\openout\gpw=../outside.txt\immediate\write\gpw{x}\immediate\closeout\gpw"
    tex = write_report(inner, minimal_context(blocks=[{"kind": "text", "text": body}]))
    with pytest.raises(LatexError, match="write on file"):
        compile_pdf(tex)
    assert not (tmp_path / "outside.txt").exists()


def test_pdflatex_fallback_runs_twice_and_overfull_boxes_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pdflatex = shutil.which("pdflatex")
    assert pdflatex is not None
    monkeypatch.setattr(latex, "find_engine", lambda: pdflatex)
    # \noindent\hbox to 1.2\linewidth makes one line exactly 0.2 \linewidth too wide;
    # \linewidth = 210mm - 2 * 2.2cm = 166mm (geometry margin in the template).
    ctx = minimal_context(blocks=[{"kind": "text", "text": r"\noindent\hbox to 1.2\linewidth{}"}])
    tex = write_report(tmp_path, ctx)
    pdf = compile_pdf(tex)
    assert not (tmp_path / "report.fdb_latexmk").exists()  # latexmk was not used
    text = pdf_text(pdf)
    assert re.search(r"1\s+Only section\s+1", text)  # table of contents filled: a second run
    boxes = overfull_boxes(tmp_path / "report.log")
    assert len(boxes) == 1
    size = float(re.search(r"\(([0-9.]+)pt too wide\)", boxes[0]).group(1))
    expected = 0.2 * 166 / 25.4 * 72.27  # mm -> TeX points
    assert size == pytest.approx(expected, abs=0.05)
    assert overfull_boxes(tmp_path / "report.log", min_pt=expected + 1) == []


def test_timeout_stops_a_looping_document(tmp_path: Path) -> None:
    tex = write_report(
        tmp_path, minimal_context(blocks=[{"kind": "text", "text": r"\def\gploop{\gploop}\gploop"}])
    )
    start = time.monotonic()
    with pytest.raises(LatexError, match=r"did not finish within 1\.5 s"):
        compile_pdf(tex, timeout=1.5)
    assert time.monotonic() - start < 10
    assert tex.is_file()


def test_no_engine_raises_latex_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    assert find_engine() is None
    tex = write_report(tmp_path, minimal_context())
    with pytest.raises(LatexNotFound) as info:
        compile_pdf(tex)
    message = str(info.value)
    assert "\n" not in message
    assert "apt-get install texlive-latex-base texlive-latex-recommended latexmk" in message


def test_find_engine_prefers_latexmk() -> None:
    assert find_engine() == shutil.which("latexmk")


@pytest.mark.parametrize("bad", ["report.txt", "missing.tex"], ids=["suffix", "missing"])
def test_compile_pdf_rejects_non_tex(tmp_path: Path, bad: str) -> None:
    (tmp_path / "report.txt").write_text("x")
    with pytest.raises(GradproofError, match="existing .tex file"):
        compile_pdf(tmp_path / bad)


# --------------------------------------------------------------------------------------------
# log parsing on hand-written logs
# --------------------------------------------------------------------------------------------

LOGS = [
    (
        "file-line",
        "(./report.tex\n./report.tex:42: Undefined control sequence.\nl.42 some text \\foo\n                 more\n",
        "LaTeX failed: report.tex:42: Undefined control sequence \\foo (log: report.log; the .tex is kept)",
    ),
    (
        "inside-macro",
        "./report.tex:9: Undefined control sequence.\n\\mymacro ->x \\undefinedzz \n                     y\nl.9 a \\mymacro\n",
        "LaTeX failed: report.tex:9: Undefined control sequence \\undefinedzz (log: report.log; the .tex is kept)",
    ),
    (
        "bang-form",
        "! Missing $ inserted.\n<inserted text> \n                $\nl.17 x^\n        2\n",
        "LaTeX failed: line 17: Missing $ inserted (near: x^) (log: report.log; the .tex is kept)",
    ),
    (
        "continued-message",
        "./report.tex:5: LaTeX Error: Unicode character ☃ (U+2603)\n               not set up for use with LaTeX.\n\nl.5 a ☃\n",
        "LaTeX failed: report.tex:5: LaTeX Error: Unicode character ☃ (U+2603) not set up for use with LaTeX (near: a ☃) (log: report.log; the .tex is kept)",
    ),
    (
        "package-error",
        "/usr/share/texmf/x.sty:12: Package foo Error: Bad option `z'.\n(foo)                Use one of a, b.\n\nl.3 \\usepackage[z]{foo}\n",
        "LaTeX failed: /usr/share/texmf/x.sty:12: Package foo Error: Bad option `z'. Use one of a, b (near: \\usepackage[z]{foo}) (log: report.log; the .tex is kept)",
    ),
    (
        "no-error-in-log",
        "This is pdfTeX\nOutput written on report.pdf (1 page).\n",
        "LaTeX failed: latexmk exited with code 12 and the log names no error (log: report.log; the .tex is kept)",
    ),
]


@pytest.mark.parametrize(("log", "expected"), [x[1:] for x in LOGS], ids=[x[0] for x in LOGS])
def test_failure_message_from_log(tmp_path: Path, log: str, expected: str) -> None:
    (tmp_path / "report.log").write_text(log, encoding="utf-8")
    assert latex._failure_message(tmp_path / "report.log", "latexmk", 12, "") == expected


def test_failure_message_without_log(tmp_path: Path) -> None:
    message = latex._failure_message(tmp_path / "report.log", "pdflatex", 1, "kpathsea: fatal\n\n")
    assert message == (
        "LaTeX failed: pdflatex exited with code 1 and wrote no report.log "
        "(last output: kpathsea: fatal); the .tex is kept"
    )


def test_overfull_boxes_parses_sizes(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    log.write_text(
        "Overfull \\hbox (12.3456pt too wide) in paragraph at lines 10--12\n"
        "[]\\T1/lmr/m/n/10.95 text\n"
        "Underfull \\hbox (badness 10000) in paragraph at lines 3--4\n"
        "Overfull \\vbox (3.0pt too high) has occurred while \\output is active\n"
        "Overfull \\hbox (0.5pt too wide) detected at line 99\n",
        encoding="utf-8",
    )
    assert overfull_boxes(log) == [
        "Overfull \\hbox (12.3456pt too wide) in paragraph at lines 10--12",
        "Overfull \\hbox (0.5pt too wide) detected at line 99",
    ]
    assert overfull_boxes(log, min_pt=1.0) == [
        "Overfull \\hbox (12.3456pt too wide) in paragraph at lines 10--12"
    ]
    with pytest.raises(GradproofError, match="cannot read the log"):
        overfull_boxes(tmp_path / "missing.log")


# -- a stable table of contents (issue 16 item 4) ------------------------------------------------
def _long_toc_document(sections: int = 60) -> str:
    # a contents list longer than a page: every pass moves the headings, so the page numbers
    # need three passes to settle (the case latexmk was seen to stop early on)
    body = "\n".join(
        rf"\section{{Heading number {k} of the test}}" + "\n" + ("Words of filler text. " * (20 + 37 * (k % 5)))
        for k in range(1, sections + 1)
    )
    return (
        "\\documentclass{article}\n\\begin{document}\n\\tableofcontents\n\\clearpage\n"
        f"{body}\n\\end{{document}}\n"
    )


def _page_texts(pdf: Path) -> list[str]:
    pages = int(re.search(r"Pages:\s+(\d+)", subprocess.run(
        ["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout).group(1))  # fmt: skip
    return [
        subprocess.run(["pdftotext", "-layout", "-f", str(k), "-l", str(k), str(pdf), "-"],
                       capture_output=True, text=True, check=True).stdout  # fmt: skip
        for k in range(1, pages + 1)
    ]


def test_table_of_contents_points_to_the_pages_of_the_headings(tmp_path: Path) -> None:
    tex = tmp_path / "toc.tex"
    tex.write_text(_long_toc_document(), encoding="utf-8")
    pages = _page_texts(compile_pdf(tex))
    toc_entries: dict[int, int] = {}
    heading_pages: dict[int, int] = {}
    for number, text in enumerate(pages, start=1):
        for line in text.splitlines():
            m = re.match(r"\s*(\d+)\s+Heading number (\d+) of the test\b(.*)$", line)
            if not m:
                continue
            k = int(m.group(2))
            tail = re.findall(r"(\d+)\s*$", m.group(3))
            if tail:  # a contents line ends with its page number
                toc_entries[k] = int(tail[0])
            else:
                heading_pages[k] = number
    assert len(toc_entries) == len(heading_pages) == 60
    assert toc_entries == heading_pages
    assert not latex._asks_for_rerun(tmp_path / "toc.log")


def test_compile_reruns_when_latexmk_stops_while_labels_may_have_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tex = tmp_path / "r.tex"
    tex.write_text("\\documentclass{article}\\begin{document}x\\end{document}\n", encoding="utf-8")
    calls: list[str] = []
    stale = "LaTeX Warning: Label(s) may have changed. Rerun to get cross-references right.\n"

    def fake_run(cmd: list[str], cwd: Path, deadline: float) -> tuple[int, str]:
        calls.append(Path(cmd[0]).name)
        (cwd / "r.pdf").write_bytes(b"%PDF")
        # latexmk's pass and the first extra pass leave a stale log; the next one is stable
        (cwd / "r.log").write_text(stale if len(calls) < 3 else "Output written on r.pdf\n", encoding="utf-8")
        return 0, ""

    monkeypatch.setattr(latex, "find_engine", lambda: "/usr/bin/latexmk")
    monkeypatch.setattr(latex, "_run", fake_run)
    compile_pdf(tex)
    assert calls == ["latexmk", "pdflatex", "pdflatex"]

    calls.clear()
    monkeypatch.setattr(latex, "_run", lambda cmd, cwd, deadline: (
        calls.append(Path(cmd[0]).name), (cwd / "r.log").write_text(stale, encoding="utf-8"), (0, ""))[-1])
    compile_pdf(tex)  # bounded: latexmk and three more runs, then stop
    assert calls == ["latexmk", "pdflatex", "pdflatex", "pdflatex"]
