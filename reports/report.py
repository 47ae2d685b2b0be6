"""Build the derivation report: LaTeX, PDF, figures and ``results.json``, atomically.

Everything is written into a temporary folder next to the output folder and moved into place only
when the run finishes, so an interrupted or failed run never leaves a report that looks complete.
``report.tex`` depends only on the seed, the cells and the model: the one measured quantity
(step times) lives in ``timings.tex``, which ``report.tex`` inputs.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import shutil
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from ..derive.cells import CELL_NAMES, cell
from ..derive.errors import GradproofError
from ..numeric.processes import die_with_parent
from . import sections
from .section_exercises import section_exercises
from .section_gates import load_experiment, section_gates
from .section_story import section_summary
from .figures import use_style
from .latex import LatexError, compile_pdf, find_engine, render_report
from .latex_format import format_cache_dir
from .output import AtomicDirectory, write_json

__all__ = ["ReportOptions", "ReportResult", "SECOND_PROCESS", "LATEX_STATE", "build_report", "recall_latex_state", "remember_latex_state", "reuse_latex_state", "run_parts"]


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
    equations: Path | None = None  # a user's cell: --equations FILE --state NAMES [--name NAME]
    state: str | None = None
    cell_name: str | None = None


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
refs.bib         the bibliography the source cites (BibTeX; latexmk runs bibtex)
results.json     every number the report shows, machine-readable
figures/         the figures, as PDF
README.txt       this file

Files LaTeX (latexmk, pdflatex) leaves next to the PDF while building it; they can be deleted:
report.aux          cross-references and labels between passes
report.toc          the table of contents between passes
report.bbl          the references list BibTeX made from refs.bib
report.blg          BibTeX's log
report.out          PDF bookmarks (hyperref)
report.log          the compiler's log: look here when the PDF is not built
report.fls          the files the compiler read and wrote (latexmk's record)
report.fdb_latexmk  latexmk's database of file checksums, to decide when to rerun
"""


Part = tuple[str, Callable[[sections.Context], tuple[dict, dict]]]

#: the sections built by the second process, beside the others, when two cores are free: about half
#: the work (the torch-based ones: PyTorch is imported in that process only); every other section,
#: also one added later, is built by the main process. Chosen with benchmarks/bench_report_split.py
#: (three runs each, load 1.1-1.6: both processes end at about 5.4 s, against 5.0 and 6.4 s with
#: "beyond" here too, as before the figures got cheaper)
SECOND_PROCESS: tuple[str, ...] = ("gru", "verification", "lstm")


def _build_part(make: Callable[[sections.Context], tuple[dict, dict]], ctx: sections.Context) -> tuple[dict, dict]:
    section, numbers = make(ctx)
    return {**section, "blocks": sections.refer_to_figures(section["blocks"])}, numbers


def _second_process(conn: Any, parts: Sequence[Part], ctx: sections.Context, indices: Sequence[int],
                    parent: int) -> None:
    """Body of the forked process: build ``parts[i]`` for ``i`` in ``indices``, send each back."""
    code = 0
    try:
        die_with_parent(parent)  # a main process killed with SIGKILL leaves nothing writing
        if "torch" in sys.modules:  # imported before the fork: its thread pool is the parent's
            sys.modules["torch"].set_num_threads(1)
        for i in indices:
            t0 = time.perf_counter()
            try:
                part = _build_part(parts[i][1], ctx)
            except BaseException as exc:  # sent to the main process, which raises it
                try:
                    blob = pickle.dumps(exc)
                except Exception:  # an exception that does not pickle: its type and message
                    blob = pickle.dumps(RuntimeError(f"{type(exc).__name__}: {exc}"))
                conn.send(("error", i, blob, 0.0))
                return
            conn.send(("ok", i, part, time.perf_counter() - t0))
    except BaseException:  # the main process is gone (broken pipe) or an interrupt: just stop
        code = 1
    finally:
        conn.close()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)  # no atexit handlers, no second flush of buffers copied from the parent


def _default_jobs() -> int:
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        cores = os.cpu_count() or 1
    return 2 if cores >= 2 else 1


def run_parts(parts: Sequence[Part], ctx: sections.Context, *, say: Callable[[str], None], total: int,
              jobs: int | None = None) -> list[tuple[dict, dict]]:
    """Build every section: ``[(section, numbers), ...]`` in the order of ``parts``.

    With ``jobs`` ≥ 2 (more than two are used as two) a forked second process builds the sections named in :data:`SECOND_PROCESS`
    while this one builds the rest; each section writes its own figures, and the results come
    back through a pipe, so the report is the same as with ``jobs=1`` (one after the other, here).
    ``fork`` shares the imported modules and ``ctx`` without pickling. PyTorch's thread pool does
    not survive a fork (a child's first multi-threaded op hangs once the parent has used it), so
    when this process has imported torch the second one runs torch on one thread.
    """
    jobs = _default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise GradproofError(f"jobs: expected 1 or more processes, got {jobs}")
    away = [i for i, (name, _) in enumerate(parts) if name in SECOND_PROCESS]
    if jobs == 1 or not away or len(away) == len(parts):
        away = []
    out: list[tuple[dict, dict] | None] = [None] * len(parts)
    proc, conn, done = None, None, False
    if away:
        mp = multiprocessing.get_context("fork")
        conn, child = mp.Pipe(duplex=False)
        sys.stdout.flush()
        sys.stderr.flush()
        proc = mp.Process(target=_second_process, args=(child, parts, ctx, away, os.getpid()),
                           daemon=True)
        with warnings.catch_warnings():  # Python 3.12+: fork with threads running (tqdm's monitor)
            warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*fork\(\)")
            proc.start()
        child.close()
    try:
        for i, (name, make) in enumerate(parts):
            if i in away:
                continue
            say(f"[{i + 1}/{total}] section: {name}")
            out[i] = _build_part(make, ctx)
        for _ in away:
            try:
                status, i, payload, _seconds = conn.recv()
            except EOFError:
                proc.join()
                raise GradproofError(
                    f"report: the second process building the sections {', '.join(parts[i][0] for i in away)} "
                    f"stopped without a result (exit code {proc.exitcode}); run again, or with one process "
                    "(build_report(..., jobs=1)) to see where"
                ) from None
            if status == "error":
                raise pickle.loads(payload)
            say(f"[{i + 1}/{total}] section: {parts[i][0]} (second process)")
            out[i] = payload
        done = True
    finally:
        if proc is not None:
            conn.close()
            if done:  # it has sent everything and is exiting
                proc.join(timeout=5)
            if proc.is_alive():  # an error here, or an interrupt: do not leave it running
                proc.kill()
                proc.join()
    return [part for part in out if part is not None]


#: LaTeX's record of the previous build in the same folder. Copied into the new build, it lets
#: latexmk stop after one pass when the labels, contents and bookmarks it writes are the ones it read
#: (a rebuild whose page numbers did not move); otherwise latexmk runs as many passes as a first
#: build (three), as it decides from these same files. No PDF is copied: at least one pass always runs.
LATEX_STATE: tuple[str, ...] = ("report.aux", "report.toc", "report.out", "report.fdb_latexmk")


def reuse_latex_state(previous: Path, build: Path) -> list[str]:
    """Copy :data:`LATEX_STATE` files (regular files only) from ``previous`` into ``build``, each
    replaced atomically (a reader of ``build`` sees the old file or the new one, never half of one).

    Returns the names copied (none when ``previous`` is missing or holds no earlier build).
    """
    copied = []
    for name in LATEX_STATE:
        source = Path(previous) / name
        if source.is_file() and not source.is_symlink():
            partial = Path(build) / f".{name}.{os.getpid()}"
            shutil.copyfile(source, partial)
            os.replace(partial, Path(build) / name)
            copied.append(name)
    return copied


def _state_cache() -> Path | None:
    root = format_cache_dir()
    return None if root is None else root / "last-build"


def remember_latex_state(build: Path) -> list[str]:
    """Keep the :data:`LATEX_STATE` files of a finished build in the per-user LaTeX cache.

    The next build into a *new* folder starts from them (:func:`recall_latex_state`), as a rebuild
    in the same folder does. Each file is replaced atomically (two reports may end at once); a cache
    that cannot be written is skipped (returns the names kept, none then).
    """
    target = _state_cache()
    if target is None:
        return []
    try:
        target.mkdir(parents=True, exist_ok=True)
        return reuse_latex_state(build, target)
    except OSError:
        return []


def recall_latex_state(build: Path) -> list[str]:
    """Copy the last build's :data:`LATEX_STATE` from the per-user cache into ``build``.

    Only a starting point: latexmk reruns pdflatex and BibTeX until the .aux, .toc and .out it
    writes are the ones it read, so a state from another report costs passes, never correctness.
    """
    source = _state_cache()
    try:
        return [] if source is None else reuse_latex_state(source, build)
    except OSError:
        return []


def build_report(options: ReportOptions, *, progress: Callable[[str], None] | None = None,
                 jobs: int | None = None) -> ReportResult:
    """Write the report into ``options.out``; returns the paths.

    ``jobs`` processes build the sections (default: 2 where the CPU has two cores and ``fork``
    exists, see :func:`run_parts`); ``jobs=1`` builds them one after the other in this process.
    The files written are the same either way.

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
    from .cell_option import read_user_cell

    mine = read_user_cell(None if options.equations is None else str(options.equations), options.state,
                          options.cell_name)  # fmt: skip
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
        if mine is not None:
            from functools import partial

            from .section_user_cell import section_user_cell

            parts.append(("user_cell", partial(section_user_cell, cell=mine[0], source=mine[1],
                                               origin=str(options.equations))))  # fmt: skip
        parts.append(("verification", sections.section_verification))
        parts.append(("exercises", section_exercises))  # the appendix
        results: dict[str, Any] = {"seed": options.seed, "cells": list(cells), "version": _version()}
        total = len(parts) + 2 + int(options.pdf)  # + the summary, + writing
        named = dict(zip((name for name, _ in parts), run_parts(parts, ctx, say=say, total=total, jobs=jobs)))
        # the summary quotes the numbers the other sections measured (some in the second process),
        # so it is built once they are all back, and placed before the verification appendix
        say(f"[{len(parts) + 1}/{total}] section: summary")
        for name, _ in parts[: parts.index(("verification", sections.section_verification))]:
            results[name] = named[name][1]
        named["summary"] = _build_part(lambda c: section_summary(c, results), ctx)
        order = [name for name, _ in parts]
        order.insert(order.index("verification"), "summary")
        built = []
        for name in order:
            built.append(named[name][0])
            results[name] = named[name][1]
        context = {
            "title": options.title,
            "subtitle": "A derivation report: every equation printed by SymPy from the objects gradproof's tests check",
            "date": f"gradproof {_version()}, seed {options.seed}",
            "version": _version(),
            "seed": options.seed,
            "conventions": sections.conventions(),
            "sections": built[:-1],
            "appendix": built[-1:],
            "bibliography": "refs",
        }
        say(f"[{len(parts) + 2}/{total}] writing report.tex and results.json")
        (tmp / "report.tex").write_text(render_report(context), encoding="utf-8")
        (tmp / "timings.tex").write_text(sections.timings_tex(results["gru"]), encoding="utf-8")
        write_json(tmp / "results.json", results)
        (tmp / "README.txt").write_text(FOLDER_README, encoding="utf-8")
        (tmp / "refs.bib").write_bytes((Path(__file__).parent / "templates" / "refs.bib").read_bytes())
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
                    if not reuse_latex_state(Path(options.out), tmp):
                        recall_latex_state(tmp)  # a new folder starts from the last build anywhere
                    compile_pdf(tmp / "report.tex")
                    remember_latex_state(tmp)
                    pdf = Path(options.out) / "report.pdf"
                except LatexError as exc:
                    latex_error = exc
    out = Path(options.out)
    if latex_error is not None:
        raise latex_error
    return ReportResult(out=out, tex=out / "report.tex", pdf=pdf, messages=tuple(messages))

