"""Build the derivation report: LaTeX, PDF, figures and ``results.json``, atomically.

Everything is written into a temporary folder next to the output folder and moved into place only
when the run finishes, so an interrupted or failed run never leaves a report that looks complete.
``report.tex`` depends only on the seed, the cells and the model: the one measured quantity
(step times) lives in ``timings.tex``, which ``report.tex`` inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from ..derive.cells import CELL_NAMES, cell
from ..derive.errors import GradproofError
from . import sections
from .section_gates import load_experiment, section_gates
from .figures import use_style
from .latex import LatexError, compile_pdf, find_engine, render_report
from .output import AtomicDirectory, write_json

__all__ = ["ReportOptions", "ReportResult", "build_report"]


@dataclass(frozen=True)
class ReportOptions:
    """What ``gradproof report`` was asked for."""

    out: Path = Path("report")
    cells: tuple[str, ...] = CELL_NAMES
    torch_model: Path | None = None
    nonlinearity: str | None = None  # the nn.RNN nonlinearity, when the file does not record it
    prefix: str | None = None  # the recurrent module's key prefix inside a larger network
    experiments: Path | None = None
    title: str = "Vanishing and exploding gradients in recurrent networks"
    pdf: bool = True
    seed: int = 0


@dataclass(frozen=True)
class ReportResult:
    """Where the report went, and what happened to the PDF."""

    out: Path
    tex: Path
    pdf: Path | None
    messages: tuple[str, ...] = field(default=())


def _version() -> str:
    try:
        return version("gradproof")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "source"


#: README.txt of the report folder: what each file is (LaTeX's build files included).
FOLDER_README = """\
This folder was written by `gradproof report`.

report.pdf       the report
report.tex       its LaTeX source (compile again with: latexmk -pdf report.tex)
timings.tex      a table the source includes (timings of the gradient profile)
results.json     every number the report shows, machine-readable
figures/         the figures, as PDF
README.txt       this file

Files LaTeX (latexmk, pdflatex) leaves next to the PDF while building it; they can be deleted:
report.aux          cross-references and labels between passes
report.toc          the table of contents between passes
report.out          PDF bookmarks (hyperref)
report.log          the compiler's log: look here when the PDF is not built
report.fls          the files the compiler read and wrote (latexmk's record)
report.fdb_latexmk  latexmk's database of file checksums, to decide when to rerun
"""


def build_report(options: ReportOptions, *, progress: Callable[[str], None] | None = None) -> ReportResult:
    """Write the report into ``options.out``; returns the paths.

    Raises
    ------
    GradproofError
        on bad options, or (as :class:`reports.latex.LatexError`) when LaTeX fails; in that case
        the report folder holds the ``.tex`` and the log, and no PDF.
    """
    cells = tuple(cell(c).name for c in options.cells)
    if options.torch_model is not None and not Path(options.torch_model).is_file():
        raise GradproofError(f"--torch-model: no such file: {options.torch_model}")
    user_model = None
    if options.torch_model is not None:  # check the model before spending time on the sections
        from .model_option import load_user_model

        user_model = load_user_model(options.torch_model, nonlinearity=options.nonlinearity,
                                     prefix=options.prefix)  # fmt: skip
    if options.experiments is not None:
        load_experiment(options.experiments)  # fail before any work when it is unreadable
    say = progress or (lambda _msg: None)
    use_style()
    messages: list[str] = []
    latex_error: LatexError | None = None
    with AtomicDirectory(Path(options.out)) as tmp:
        figures = tmp / "figures"
        figures.mkdir()
        ctx = sections.Context(figures=figures, seed=options.seed, cells=cells, torch_model=options.torch_model,
                               user_model=user_model, experiments=options.experiments,
                               figure_formats=("pdf",))  # fmt: skip
        parts: list[tuple[str, Callable]] = [*sections.SECTIONS, ("gates", section_gates)]
        if options.torch_model is not None:
            parts.append(("model", sections.section_model))
        parts.append(("verification", sections.section_verification))
        built, results = [], {"seed": options.seed, "cells": list(cells), "version": _version()}
        total = len(parts) + 1 + int(options.pdf)
        for i, (name, make) in enumerate(parts, start=1):
            say(f"[{i}/{total}] section: {name}")
            section, numbers = make(ctx)
            section = {**section, "blocks": sections.refer_to_figures(section["blocks"])}
            built.append(section)
            results[name] = numbers
        context = {
            "title": options.title,
            "subtitle": "A derivation report: every equation printed by SymPy from the objects gradproof's tests check",
            "date": f"gradproof {_version()}, seed {options.seed}",
            "version": _version(),
            "seed": options.seed,
            "conventions": sections.conventions(),
            "sections": built,
        }
        say(f"[{len(parts) + 1}/{total}] writing report.tex and results.json")
        (tmp / "report.tex").write_text(render_report(context), encoding="utf-8")
        (tmp / "timings.tex").write_text(sections.timings_tex(results["gru"]), encoding="utf-8")
        write_json(tmp / "results.json", results)
        (tmp / "README.txt").write_text(FOLDER_README, encoding="utf-8")
        pdf: Path | None = None
        if options.pdf:
            if find_engine() is None:
                messages.append(
                    "no LaTeX engine found: wrote report.tex only; for the PDF install "
                    "texlive-latex-base texlive-latex-recommended latexmk lmodern (scripts/install-latex.sh)"
                )
            else:
                say(f"[{total}/{total}] compiling the PDF with latexmk")
                try:
                    compile_pdf(tmp / "report.tex")
                    pdf = Path(options.out) / "report.pdf"
                except LatexError as exc:
                    latex_error = exc
    out = Path(options.out)
    if latex_error is not None:
        raise latex_error
    return ReportResult(out=out, tex=out / "report.tex", pdf=pdf, messages=tuple(messages))

