"""LaTeX infrastructure: escaping, the Jinja2 environment, rendering and compiling to PDF.

This module holds no mathematics. The report template only *places* strings that the caller
passes in: equations arrive already printed by ``sympy.latex``, paragraphs arrive already in
LaTeX, and only the few plain-text fields (title, subtitle, author, date, version, seed) are
escaped here with :func:`escape_tex`.

The context accepted by :func:`render_report` (validated up front, unknown keys refused)::

    title: str                  plain text, escaped          (required)
    date: str                   plain text, escaped          (required; passed in, never "now")
    version: str                plain text, escaped          (required; shown in the footer)
    seed: int | str | None      plain text, escaped          (required; shown in the footer)
    sections: list[Section]                                  (required)
    subtitle: str | None        plain text, escaped
    author: str | None          plain text, escaped
    abstract: str | None        LaTeX paragraph(s)
    conventions: list[str]      LaTeX, one item each ("Conventions" list after the contents)
    references: list[{key, text}]   ``\\bibitem{key} text``; cite with ``\\cite{key}``
    appendix: list[Section]     after ``\\appendix``

    Section = {title: LaTeX, label: str | None, blocks: list[Block]}

    Block kinds (LaTeX unless said otherwise; ``label`` keys match ``[A-Za-z][A-Za-z0-9:._-]*``):
      text       {text}
      subsection {title, label?}
      equation   {math: str | list[str], caption?, label?, tag?}
                 one string -> equation*; a list -> equation* wrapping aligned (lines joined by
                 ``\\\\``, each may hold ``&``); with ``label`` the equation is numbered (or
                 tagged with ``tag``) and can be cited by ``\\eqref{label}``; ``caption`` is a
                 lead-in sentence printed before the display
      align      {lines: list[str], caption?}             -> align*
      multline   {lines: list[str], caption?}             -> multline* (long displays that break)
      figure     {path | panels | tikz, caption?, label?, width=0.8}
                 tikz: a ``tikzpicture`` (reports.diagrams), placed as it is;
                 path: relative to the report directory, e.g. ``figures/vanish.pdf``;
                 panels: list of {path, caption?, label?, width?} -> subfigures side by side
      table      {columns: list[str], rows: list[list[str]], caption?, label?,
                  align="l" + "r"*(n-1), wide=False, long=False}
                 booktabs rules; ``wide`` shrinks it to the line width with ``\\resizebox``
                 when it is wider (never enlarges); ``long`` uses longtable (breaks across
                 pages, header repeated); cells are strings (format numbers first)
      itemize    {items: list[str], ordered=False}
      note       {text, title="Where the lecture is imprecise"}   a framed, tinted box
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import unicodedata
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from ..derive.errors import GradproofError
from .latex_format import SAFE_PATH_RE, format_cache_dir, preamble_format

__all__ = [
    "BLOCK_KINDS",
    "INSTALL_HINT",
    "LatexError",
    "LatexNotFound",
    "compile_pdf",
    "environment",
    "escape_tex",
    "find_engine",
    "overfull_boxes",
    "render_report",
]

INSTALL_HINT = (
    "apt-get install texlive-latex-base texlive-latex-recommended latexmk lmodern texlive-pictures "
    "texlive-latex-extra"
)
BLOCK_KINDS = (
    "text",
    "subsection",
    "equation",
    "align",
    "multline",
    "figure",
    "table",
    "itemize",
    "note",
)
_DISPLAY_KINDS = frozenset({"equation", "align", "multline"})


class LatexError(GradproofError):
    """LaTeX ran but failed; the message is one line naming the first error of the ``.log``."""


class LatexNotFound(GradproofError):
    """Neither ``latexmk`` nor ``pdflatex`` is on ``PATH``; the message says how to install one."""


# --------------------------------------------------------------------------------------------
# Escaping plain text
# --------------------------------------------------------------------------------------------

# One row per character that is special in LaTeX text mode (or that T1 turns into a ligature or
# a different glyph). The replacements work in T1 and OT1 and in hyperref's PDF strings.
_TEX_ESCAPES: dict[str, str] = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "$": r"\$",
    "&": r"\&",
    "#": r"\#",
    "%": r"\%",
    "_": r"\_",
    "^": r"\textasciicircum{}",
    "~": r"\textasciitilde{}",
    "<": r"\textless{}",  # T1 ligature << -> guillemet
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
    '"': r"\textquotedbl{}",
    "'": r"\textquotesingle{}",  # '' would become a closing double quote
    "`": r"\textasciigrave{}",  # `` and !` ?` ligatures
}
# Characters that form a ligature with themselves in T1 (-- en dash, ,, low quotes).
_SELF_LIGATURES = frozenset("-,")
_WHITESPACE_CONTROLS = frozenset("\t\n\r\v\f\x85\u2028\u2029")


def escape_tex(text: str) -> str:
    r"""Escape plain text (a title, a file name) for LaTeX text mode.

    Every character that LaTeX treats specially is replaced by a command that prints it,
    ligatures that would change the text (``--``, ``''``, ``<<``, ``,,``) are broken, line
    breaks and tabs become spaces, and other control characters are dropped. Non-ASCII text is
    passed through unchanged (the document uses ``utf8`` inputenc with T1 fonts).

    Parameters
    ----------
    text : str
        Plain text, not LaTeX.

    Returns
    -------
    str
        LaTeX source that prints ``text`` verbatim.

    Examples
    --------
    >>> print(escape_tex("50% of A&B_{x}"))
    50\% of A\&B\_\{x\}
    >>> print(escape_tex(r"\foo ~ #1 $"))
    \textbackslash{}foo \textasciitilde{} \#1 \$
    >>> print(escape_tex("a--b"))
    a-{}-b
    """
    if isinstance(text, jinja2.Undefined):
        str(text)  # a missing template variable: StrictUndefined raises UndefinedError naming it
    if not isinstance(text, str):
        raise GradproofError(
            f"escape_tex expects a str, got {type(text).__name__}: {text!r}; "
            "convert it with str() first"
        )
    out: list[str] = []
    last = len(text) - 1
    for i, ch in enumerate(text):
        if ch in _TEX_ESCAPES:
            out.append(_TEX_ESCAPES[ch])
        elif ch in _WHITESPACE_CONTROLS:
            out.append(" ")
        elif ch == "\ufeff" or unicodedata.category(ch) == "Cc":
            continue
        elif ch in _SELF_LIGATURES and i < last and text[i + 1] == ch:
            out.append(ch + "{}")
        else:
            out.append(ch)
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Jinja2 environment and rendering
# --------------------------------------------------------------------------------------------


def environment() -> jinja2.Environment:
    """A Jinja2 environment with LaTeX-safe delimiters for ``reports/templates``.

    Blocks are ``((* ... *))``, variables ``((( ... )))`` and comments ``((= ... =))``, so braces,
    ``%`` and ``#`` in LaTeX never clash with Jinja. Undefined names raise; nothing is
    auto-escaped (values are LaTeX unless passed through the ``tex`` filter, which is
    :func:`escape_tex`).
    """
    env = jinja2.Environment(
        loader=jinja2.PackageLoader(__package__, "templates"),
        block_start_string="((*",
        block_end_string="*))",
        variable_start_string="(((",
        variable_end_string=")))",
        comment_start_string="((=",
        comment_end_string="=))",
        line_statement_prefix=None,
        line_comment_prefix=None,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["tex"] = escape_tex
    return env


def render_report(context: Mapping[str, Any]) -> str:
    """Render ``templates/report.tex.j2`` with a validated context.

    Parameters
    ----------
    context : Mapping
        See the module docstring for the schema. It is validated first; an unknown key, a
        missing key, a wrong type or an unknown block kind raises :class:`GradproofError`
        naming the place (e.g. ``sections[2].blocks[0].rows[3]``).

    Returns
    -------
    str
        The LaTeX source. The same context always gives the same text.
    """
    normalized = _normalize_context(context)
    return environment().get_template("report.tex.j2").render(**normalized)


# ---- context validation ---------------------------------------------------------------------

_LABEL_RE = re.compile(r"[A-Za-z][A-Za-z0-9:._-]*\Z")
_FIGURE_PATH_RE = re.compile(r"(?:[A-Za-z0-9_-]+/)*[A-Za-z0-9_-]+(?:\.(?:pdf|png|jpe?g))?\Z")
_SIMPLE_ALIGN_RE = re.compile(r"[lcr|]+\Z")

_TOP_REQUIRED = ("title", "date", "version", "seed", "sections")
_TOP_OPTIONAL = ("subtitle", "author", "abstract", "conventions", "references", "appendix", "bibliography")

# kind -> (required fields, optional fields with defaults)
_BLOCK_FIELDS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "text": (("text",), {}),
    "subsection": (("title",), {"label": None}),
    "equation": (("math",), {"caption": None, "label": None, "tag": None}),
    "align": (("lines",), {"caption": None}),
    "multline": (("lines",), {"caption": None}),
    "figure": ((), {"path": None, "panels": None, "tikz": None, "caption": None, "label": None, "width": 0.8}),
    "table": (
        ("columns", "rows"),
        {"caption": None, "label": None, "align": None, "wide": False, "long": False},
    ),
    "itemize": (("items",), {"ordered": False}),
    "note": (("text",), {"title": "Where the lecture is imprecise"}),
}


def _fail(where: str, expected: str, got: Any, fix: str = "") -> GradproofError:
    shown = repr(got)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    tail = f"; {fix}" if fix else ""
    return GradproofError(f"report context {where}: expected {expected}, got {shown}{tail}")


def _check_keys(
    where: str, obj: Mapping[str, Any], required: Sequence[str], optional: Sequence[str]
) -> None:
    missing = [k for k in required if k not in obj]
    if missing:
        raise GradproofError(
            f"report context {where}: missing key(s) {', '.join(map(repr, missing))}; "
            f"required: {', '.join(required)}"
        )
    known = set(required) | set(optional)
    unknown = sorted(str(k) for k in obj if k not in known)
    if unknown:
        raise GradproofError(
            f"report context {where}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(known))}"
        )


def _str(where: str, value: Any, *, allow_none: bool = False, nonempty: bool = False) -> str | None:
    if value is None and allow_none:
        return None
    if not isinstance(value, str):
        raise _fail(where, "a str" + (" or None" if allow_none else ""), value)
    if nonempty and not value.strip():
        raise _fail(where, "a non-empty str", value)
    return value


def _str_list(where: str, value: Any, *, nonempty: bool = True) -> list[str]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise _fail(where, "a list of str", value)
    if nonempty and not value:
        raise _fail(where, "a non-empty list of str", value)
    return [_str(f"{where}[{i}]", v) for i, v in enumerate(value)]  # type: ignore[misc]


def _label(where: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _LABEL_RE.match(value):
        raise _fail(where, "a label matching [A-Za-z][A-Za-z0-9:._-]*", value)
    return value


def _fraction(where: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise _fail(where, "a fraction of the line width in (0, 1]", value)
    return f"{float(value):.4g}"


def _figure_path(where: str, value: Any) -> str:
    if isinstance(value, os.PathLike):
        value = Path(value).as_posix()
    if not isinstance(value, str) or not _FIGURE_PATH_RE.match(value):
        raise _fail(
            where,
            "a relative path like 'figures/name.pdf' (letters, digits, '_', '-', one "
            "extension pdf/png/jpg, no '..')",
            value,
        )
    return value


def _bool(where: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, "True or False", value)
    return value


def _normalize_block(where: str, block: Any) -> dict[str, Any]:
    if not isinstance(block, Mapping):
        raise _fail(where, "a dict with a 'kind'", block)
    kind = block.get("kind")
    if kind not in _BLOCK_FIELDS:
        raise _fail(f"{where}.kind", f"one of {', '.join(BLOCK_KINDS)}", kind)
    required, optional = _BLOCK_FIELDS[kind]
    _check_keys(where, block, ("kind", *required), tuple(optional))
    b: dict[str, Any] = {**optional, **block}
    out: dict[str, Any] = {"kind": kind}
    if kind == "text":
        out["text"] = _str(f"{where}.text", b["text"], nonempty=True)
    elif kind == "subsection":
        out["title"] = _str(f"{where}.title", b["title"], nonempty=True)
        out["label"] = _label(f"{where}.label", b["label"])
    elif kind == "equation":
        math = b["math"]
        out["lines"] = (
            [_str(f"{where}.math", math, nonempty=True)]
            if isinstance(math, str)
            else _str_list(f"{where}.math", math)
        )
        out["caption"] = _str(f"{where}.caption", b["caption"], allow_none=True)
        out["label"] = _label(f"{where}.label", b["label"])
        out["tag"] = _str(f"{where}.tag", b["tag"], allow_none=True, nonempty=True)
        if out["tag"] is not None and out["label"] is None:
            raise _fail(f"{where}.tag", "a tag only together with a label", b["tag"], "add 'label'")
    elif kind in ("align", "multline"):
        out["lines"] = _str_list(f"{where}.lines", b["lines"])
        if kind == "multline" and len(out["lines"]) < 2:
            raise _fail(
                f"{where}.lines",
                "at least two pieces for multline",
                b["lines"],
                "use 'equation' for one line",
            )
        out["caption"] = _str(f"{where}.caption", b["caption"], allow_none=True)
    elif kind == "figure":
        out["caption"] = _str(f"{where}.caption", b["caption"], allow_none=True)
        out["label"] = _label(f"{where}.label", b["label"])
        if sum(b[k] is not None for k in ("path", "panels", "tikz")) != 1:
            raise _fail(
                where,
                "exactly one of 'path', 'panels' or 'tikz'",
                {k: block.get(k) for k in ("path", "panels", "tikz")},
            )
        out["tikz"] = None
        if b["tikz"] is not None:
            tikz = _str(f"{where}.tikz", b["tikz"], nonempty=True)
            if not tikz.lstrip().startswith(r"\begin{tikzpicture}"):
                raise _fail(f"{where}.tikz", "a tikzpicture environment", tikz)
            out["tikz"], out["path"], out["panels"] = tikz, None, None
        elif b["path"] is not None:
            out["path"] = _figure_path(f"{where}.path", b["path"])
            out["width"] = _fraction(f"{where}.width", b["width"])
            out["panels"] = None
        else:
            panels = b["panels"]
            if isinstance(panels, (str, Mapping)) or not isinstance(panels, Sequence) or not panels:
                raise _fail(
                    f"{where}.panels",
                    "a non-empty list of {path, caption?, label?, width?}",
                    panels,
                )
            out["path"] = None
            out["panels"] = []
            default_width = 0.96 / len(panels)
            for j, panel in enumerate(panels):
                pw = f"{where}.panels[{j}]"
                if not isinstance(panel, Mapping):
                    raise _fail(pw, "a dict {path, caption?, label?, width?}", panel)
                _check_keys(pw, panel, ("path",), ("caption", "label", "width"))
                out["panels"].append(
                    {
                        "path": _figure_path(f"{pw}.path", panel["path"]),
                        "caption": _str(f"{pw}.caption", panel.get("caption"), allow_none=True),
                        "label": _label(f"{pw}.label", panel.get("label")),
                        "width": _fraction(f"{pw}.width", panel.get("width", default_width)),
                    }
                )
    elif kind == "table":
        columns = _str_list(f"{where}.columns", b["columns"])
        rows_in = b["rows"]
        if isinstance(rows_in, str) or not isinstance(rows_in, Sequence):
            raise _fail(f"{where}.rows", "a list of rows (lists of LaTeX cells)", rows_in)
        rows = []
        for r, row in enumerate(rows_in):
            cells = _str_list(f"{where}.rows[{r}]", row)
            if len(cells) != len(columns):
                raise _fail(
                    f"{where}.rows[{r}]",
                    f"{len(columns)} cells (one per column)",
                    row,
                    "format numbers as strings and pad missing cells with ''",
                )
            rows.append(cells)
        align = b["align"]
        if align is None:
            align = "l" + "r" * (len(columns) - 1)
        align = _str(f"{where}.align", align, nonempty=True)
        if _SIMPLE_ALIGN_RE.match(align) and len(align.replace("|", "")) != len(columns):
            raise _fail(f"{where}.align", f"{len(columns)} column specifiers", align)
        out.update(
            columns=columns,
            rows=rows,
            align=align,
            ncols=len(columns),
            caption=_str(f"{where}.caption", b["caption"], allow_none=True),
            label=_label(f"{where}.label", b["label"]),
            wide=_bool(f"{where}.wide", b["wide"]),
            long=_bool(f"{where}.long", b["long"]),
        )
        if out["wide"] and out["long"]:
            raise _fail(
                where, "at most one of 'wide' and 'long'", block, "a longtable cannot be resized"
            )
    elif kind == "itemize":
        out["items"] = _str_list(f"{where}.items", b["items"])
        out["ordered"] = _bool(f"{where}.ordered", b["ordered"])
    elif kind == "note":
        out["text"] = _str(f"{where}.text", b["text"], nonempty=True)
        out["title"] = _str(f"{where}.title", b["title"], allow_none=True)
    return out


def _normalize_sections(where: str, sections: Any) -> list[dict[str, Any]]:
    if isinstance(sections, (str, Mapping)) or not isinstance(sections, Sequence):
        raise _fail(where, "a list of sections {title, label?, blocks}", sections)
    out = []
    for i, section in enumerate(sections):
        sw = f"{where}[{i}]"
        if not isinstance(section, Mapping):
            raise _fail(sw, "a dict {title, label?, blocks}", section)
        _check_keys(sw, section, ("title", "blocks"), ("label",))
        blocks_in = section["blocks"]
        if isinstance(blocks_in, (str, Mapping)) or not isinstance(blocks_in, Sequence):
            raise _fail(f"{sw}.blocks", "a list of blocks", blocks_in)
        blocks = [_normalize_block(f"{sw}.blocks[{j}]", blk) for j, blk in enumerate(blocks_in)]
        # A display attaches to the paragraph before it: no blank line in front of a display.
        # A display with a lead-in caption starts a new paragraph with that caption.
        for blk, nxt in zip(blocks, [*blocks[1:], None]):
            blk["par_after"] = (
                nxt is None or nxt["kind"] not in _DISPLAY_KINDS or bool(nxt["caption"])
            )
        out.append(
            {
                "title": _str(f"{sw}.title", section["title"], nonempty=True),
                "label": _label(f"{sw}.label", section.get("label")),
                "blocks": blocks,
            }
        )
    return out


def _normalize_context(context: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(context, Mapping):
        raise _fail("(top level)", "a mapping", context)
    _check_keys("(top level)", context, _TOP_REQUIRED, _TOP_OPTIONAL)
    seed = context["seed"]
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, (int, str))):
        raise _fail("seed", "an int, a str or None", seed)
    references = []
    refs_in = context.get("references") or []
    if isinstance(refs_in, (str, Mapping)) or not isinstance(refs_in, Sequence):
        raise _fail("references", "a list of {key, text}", refs_in)
    for i, ref in enumerate(refs_in):
        rw = f"references[{i}]"
        if not isinstance(ref, Mapping):
            raise _fail(rw, "a dict {key, text}", ref)
        _check_keys(rw, ref, ("key", "text"), ())
        references.append(
            {
                "key": _label(f"{rw}.key", ref["key"]),
                "text": _str(f"{rw}.text", ref["text"], nonempty=True),
            }
        )
    return {
        "title": _str("title", context["title"], nonempty=True),
        "subtitle": _str("subtitle", context.get("subtitle"), allow_none=True),
        "author": _str("author", context.get("author"), allow_none=True),
        "date": _str("date", context["date"]),
        "version": _str("version", context["version"], nonempty=True),
        "seed": None if seed is None else str(seed),
        "abstract": _str("abstract", context.get("abstract"), allow_none=True),
        "conventions": _str_list("conventions", context.get("conventions") or [], nonempty=False),
        "sections": _normalize_sections("sections", context["sections"]),
        "appendix": _normalize_sections("appendix", context.get("appendix") or []),
        "references": references,
        "bibliography": _label("bibliography", context.get("bibliography")),  # a .bib stem next to the .tex
    }


# --------------------------------------------------------------------------------------------
# Compiling
# --------------------------------------------------------------------------------------------


def find_engine() -> str | None:
    """Path of ``latexmk`` if it is on ``PATH`` (preferred), else of ``pdflatex``, else None."""
    return shutil.which("latexmk") or shutil.which("pdflatex")


_ENGINE_FLAGS = (
    "-interaction=nonstopmode",
    "-halt-on-error",
    "-no-shell-escape",
    "-file-line-error",
)


def _latex_env() -> dict[str, str]:
    env = dict(os.environ)
    env["openout_any"] = "p"  # paranoid: no writing outside the report directory or to dotfiles
    env["shell_escape"] = "f"  # belt and braces with -no-shell-escape
    env["max_print_line"] = "10000"  # keep each log message on one line
    return env


def _run(cmd: list[str], cwd: Path, deadline: float) -> tuple[int, str]:
    """Run ``cmd`` in its own process group; kill the whole group on timeout or interrupt."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise subprocess.TimeoutExpired(cmd, 0)
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        env=_latex_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=remaining)
    except BaseException:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:  # pragma: no cover - already gone
            pass
        proc.communicate()
        raise
    return proc.returncode, out.decode("utf-8", errors="replace")


def compile_pdf(tex_path: Path, *, timeout: float = 300, use_format: bool = True) -> Path:
    """Compile ``tex_path`` to PDF next to it, without shell escape.

    Uses ``latexmk -pdf`` (with ``-norc``, so no rc file can change the command) when available,
    otherwise ``pdflatex`` run twice (three times if the log asks for a rerun). Both run with
    ``-interaction=nonstopmode -halt-on-error -no-shell-escape -file-line-error`` in the
    directory of ``tex_path``, with ``openout_any=p``.

    Each pass starts from a precompiled format of the document's preamble when one can be used
    (:mod:`reports.latex_format`: dumped once with ``mylatexformat`` into a per-user cache keyed
    by the preamble text and the TeX files it read); this saves the preamble's share of every
    pass. When no format fits, or a run with the format fails, the document is compiled again
    without one, so the format can only make a build faster, never different for the reader.

    Parameters
    ----------
    tex_path : Path
        The ``.tex`` file. It is never deleted, also not on failure.
    timeout : float
        Seconds for the whole compilation; the engine's process group is killed after it.
    use_format : bool
        Use (and if needed build) the cached preamble format. ``GRADPROOF_LATEX_CACHE=off`` in
        the environment turns it off as well.

    Returns
    -------
    Path
        The PDF.

    Raises
    ------
    LatexNotFound
        No engine on ``PATH``; the message says what to install.
    LatexError
        The engine failed or timed out; one line naming the first error in the log, e.g.
        ``LaTeX failed: report.tex:42: Undefined control sequence \\foo (log: report.log; the
        .tex is kept)``.
    """
    tex_path = Path(tex_path)
    if tex_path.suffix != ".tex" or not tex_path.is_file():
        raise GradproofError(f"compile_pdf: expected an existing .tex file, got {str(tex_path)!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise GradproofError(f"compile_pdf: expected timeout > 0 seconds, got {timeout!r}")
    engine = find_engine()
    if engine is None:
        raise LatexNotFound(
            "no LaTeX engine found: neither latexmk nor pdflatex is on PATH; the .tex is kept; "
            f"to build the PDF install one, e.g. `{INSTALL_HINT}` (Debian/Ubuntu)"
        )
    workdir = tex_path.resolve().parent
    log_path = workdir / (tex_path.stem + ".log")
    pdf_path = workdir / (tex_path.stem + ".pdf")
    deadline = time.monotonic() + float(timeout)
    try:
        fmt = None
        direct = shutil.which("pdflatex")
        if use_format and direct is not None and SAFE_PATH_RE.match(direct):
            fmt = preamble_format(workdir / tex_path.name, pdflatex=direct, run=_run,
                                  deadline=deadline, cache_dir=format_cache_dir())  # fmt: skip
        rc, output = _passes(engine, direct, fmt, workdir, tex_path.name, deadline)
        if rc != 0 and fmt is not None:  # never let the format be the reason for a failure
            rc, output = _passes(engine, direct, None, workdir, tex_path.name, deadline)
    except subprocess.TimeoutExpired:
        raise LatexError(
            f"LaTeX did not finish within {timeout:g} s and was stopped "
            f"(log: {log_path.name}; the .tex is kept); raise the timeout or look for a loop "
            "in the LaTeX source"
        ) from None
    if rc == 0 and pdf_path.is_file():
        return pdf_path
    raise LatexError(_failure_message(log_path, Path(engine).name, rc, output))


def _passes(engine: str, direct: str | None, fmt: Path | None, workdir: Path, name: str,
            deadline: float) -> tuple[int, str]:  # fmt: skip
    """The engine passes (latexmk, or pdflatex and bibtex), each from ``fmt`` when given."""
    stem = Path(name).stem
    log_path = workdir / (stem + ".log")
    with_fmt = [f"-fmt={fmt}"] if fmt is not None else []
    if Path(engine).name.startswith("latexmk"):
        cmd = [engine, "-norc", "-pdf"]
        if fmt is not None:  # latexmk runs this through sh: both paths match SAFE_PATH_RE
            cmd.append(f"-pdflatex={direct} -fmt={fmt} %O %S")
        rc, output = _run([*cmd, *_ENGINE_FLAGS, name], workdir, deadline)
        # latexmk decides from file hashes and can stop while the log still says "Label(s)
        # may have changed. Rerun": then the contents point to wrong pages. Run the engine
        # itself until the log and the .aux/.toc files are stable (bounded).
        for _ in range(_EXTRA_RUNS):
            if rc != 0 or direct is None or not _asks_for_rerun(log_path):
                break
            rc, output = _run([direct, *with_fmt, *_ENGINE_FLAGS, name], workdir, deadline)
        return rc, output
    bibtex = shutil.which("bibtex")
    for attempt in range(4):
        rc, output = _run([engine, *with_fmt, *_ENGINE_FLAGS, name], workdir, deadline)
        if rc != 0:
            break
        if attempt == 0 and bibtex and "\\bibdata" in _read(workdir / (stem + ".aux")):
            _run([bibtex, stem], workdir, deadline)  # the references list (natbib)
            continue
        if attempt >= 1 and not _asks_for_rerun(log_path):
            break
    return rc, output


#: extra engine runs after latexmk when the log still asks for one
_EXTRA_RUNS = 3


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _asks_for_rerun(log_path: Path) -> bool:
    try:
        text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(
        phrase in text
        for phrase in ("Rerun to get", "Rerun LaTeX", "Label(s) may have changed", "Rerun to get outlines")
    )


_FILE_LINE_RE = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+): (?P<msg>.+)$")
_CONTEXT_RE = re.compile(r"^l\.(?P<line>\d+) ?(?P<text>.*)$")
_CONTINUATION_RE = re.compile(r"^\([A-Za-z@]+\)\s+(?P<text>\S.*)$")
_LAST_CS_RE = re.compile(r"(\\(?:[A-Za-z@]+|.))\s*$")


def _first_error(log_text: str) -> str | None:
    """The first error of a TeX log as one line (``file:line: message culprit``), or None."""
    lines = log_text.splitlines()
    for i, line in enumerate(lines):
        m = _FILE_LINE_RE.match(line)
        if m and not line.startswith("l."):
            where = f"{m['file'].removeprefix('./')}:{m['line']}: "
            msg = m["msg"]
        elif line.startswith("! "):
            where = ""
            msg = line[2:]
        else:
            continue
        msg = msg.strip()
        follows = lines[i + 1 : i + 16]
        # A message continues on indented lines or on "(package)   ..." lines.
        first_context = ""
        for follow in follows:
            cont = _CONTINUATION_RE.match(follow)
            if cont:
                msg = f"{msg} {cont['text'].strip()}"
            elif follow[:1].isspace() and follow.strip():
                msg = f"{msg} {follow.strip()}"
            else:
                first_context = follow.strip()
                break
        context = ""
        for follow in follows:
            ctx = _CONTEXT_RE.match(follow)
            if ctx:
                context = ctx["text"].strip()
                if not where:
                    where = f"line {ctx['line']}: "
                break
        msg = msg.rstrip(".")
        # TeX's first context line ends with the offending token (inside a macro, it is the
        # macro's expansion, not the input line l.N).
        culprit = None
        if msg.startswith("Undefined control sequence"):
            culprit = _LAST_CS_RE.search(
                _CONTEXT_RE.sub(r"\g<text>", first_context)
            ) or _LAST_CS_RE.search(context)
        if culprit:
            msg = f"{msg} {culprit.group(1)}"
        elif context:
            near = context if len(context) <= 50 else "..." + context[-47:]
            msg = f"{msg} (near: {near})"
        return " ".join(f"{where}{msg}".split())
    return None


def _failure_message(log_path: Path, engine: str, rc: int, output: str) -> str:
    try:
        log_text = log_path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        log_text = None
    if log_text is None:
        tail = next((ln.strip() for ln in reversed(output.splitlines()) if ln.strip()), "no output")
        return (
            f"LaTeX failed: {engine} exited with code {rc} and wrote no {log_path.name} "
            f"(last output: {tail[:120]}); the .tex is kept"
        )
    first = _first_error(log_text) or f"{engine} exited with code {rc} and the log names no error"
    return f"LaTeX failed: {first} (log: {log_path.name}; the .tex is kept)"


_OVERFULL_RE = re.compile(r"^Overfull \\hbox \((?P<pt>[0-9.]+)pt too wide\).*$")


def overfull_boxes(log_path: Path, *, min_pt: float = 0.0) -> list[str]:
    r"""The ``Overfull \hbox`` warnings of a LaTeX log, in order, each with its size in pt.

    Parameters
    ----------
    log_path : Path
        A ``.log`` written by pdflatex.
    min_pt : float
        Keep only boxes more than this many points too wide.

    Returns
    -------
    list[str]
        Lines such as ``Overfull \hbox (12.3pt too wide) in paragraph at lines 40--42``.
    """
    try:
        text = Path(log_path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise GradproofError(
            f"overfull_boxes: cannot read the log {str(log_path)!r}: {exc.strerror}"
        ) from None
    found = []
    for line in text.splitlines():
        m = _OVERFULL_RE.match(line)
        if m and float(m["pt"]) > min_pt:
            found.append(line.strip())
    return found
