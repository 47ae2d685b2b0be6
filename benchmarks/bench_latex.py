"""Benchmark: the LaTeX part of ``gradproof report``, before and after, side by side in one run.

Two tables, both round-robin over ``--repeats`` (repeat 1 of every row, then repeat 2, ...), so a
change of machine load hits every row alike; medians of wall and CPU seconds (the CPU of pdflatex,
bibtex and latexmk: ``getrusage(RUSAGE_CHILDREN)``, less sensitive to a busy machine).

1. ``compile_pdf`` on a fixed report folder (report.tex, figures, refs.bib), each run in a fresh
   process and a fresh copy of the folder:

   * *new folder*: nothing from an earlier build (three passes + bibtex);
   * *rebuild*: the previous build's .aux/.toc/.out/.fdb_latexmk copied in first
     (``reports.report.reuse_latex_state``, as ``gradproof report`` does in the same ``--out``);

   for ``compile_pdf`` of another source tree (``--before``, e.g. main: ``git archive main | tar
   -x -C /tmp/before``), of this checkout with the preamble format cached (the usual case), with
   an empty cache (the first build ever: the format is dumped first) and with the format off.
   The text of every PDF (pdftotext) is compared with the first row's.

2. One pdflatex pass over the built folder, for the ideas of issue 13: plain, ``-draftmode`` (no
   PDF written), from the preamble format, format + draftmode, format with microtype's font
   expansion off, format with ``-interaction=batchmode``, and the format's dump itself.

Run from the repository root::

    python -m benchmarks.bench_latex [--repeats 5] [--tex DIR] [--before DIR] [--json PATH]

Without ``--tex`` the report folder is made first with ``gradproof report --no-pdf``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from benchmarks._results import write_json

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "latex.json"

#: ``python -c`` code: compile_pdf(argv[2]) from the source tree argv[1] ("" = the installed one);
#: prints the seconds it took
_COMPILE = (
    "import sys, time; src = sys.argv[1]\n"
    "if src:\n"
    "    sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]\n"
    "    sys.path.insert(0, src)\n"
    "from pathlib import Path\n"
    "from gradproof.reports.latex import compile_pdf\n"
    "t = time.perf_counter(); compile_pdf(Path(sys.argv[2]))\n"
    "print(time.perf_counter() - t)\n"
)
_FLAGS = ["-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "-file-line-error"]


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _latex_env(**extra: str) -> dict[str, str]:
    return {**os.environ, "openout_any": "p", "shell_escape": "f", "max_print_line": "10000", **extra}


def _compile(source: str, folder: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds of compile_pdf, CPU seconds of its LaTeX processes) in a fresh process."""
    cpu0 = _children_cpu()
    out = subprocess.run([sys.executable, "-c", _COMPILE, source, str(folder / "report.tex")], env=env,
                         check=True, capture_output=True, text=True).stdout  # fmt: skip
    return float(out.split()[-1]), _children_cpu() - cpu0


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    cpu0, t0 = _children_cpu(), time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0, _children_cpu() - cpu0


def _text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip


def _fresh(tex: Path, where: Path) -> Path:
    shutil.copytree(tex, where, ignore=shutil.ignore_patterns("report.pdf", "report.aux", "report.toc", "report.out",
                                                              "report.fdb_latexmk", "report.log", "report.bbl"))  # fmt: skip
    return where


def _summary(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def _compile_table(args: argparse.Namespace, tex: Path, root: Path) -> dict:
    from gradproof.reports.report import reuse_latex_state

    warm = root / "cache-warm"
    rows: dict[str, tuple[str, dict[str, str] | None]] = {}
    if args.before is not None:
        rows["before (" + args.before.name + ")"] = (str(args.before.resolve()), None)
    rows["after, format cached"] = ("", {"GRADPROOF_LATEX_CACHE": str(warm)})
    rows["after, empty cache"] = ("", None)  # a new cache folder for every run
    rows["after, format off"] = ("", {"GRADPROOF_LATEX_CACHE": "off"})
    # the warm row starts warm: one untimed build fills its cache
    _compile("", _fresh(tex, root / "warmup"), _latex_env(GRADPROOF_LATEX_CACHE=str(warm)))
    wall: dict[str, list[float]] = {f"{r} | {s}": [] for r in rows for s in ("new folder", "rebuild")}
    cpu: dict[str, list[float]] = {k: [] for k in wall}
    same_text: dict[str, bool] = {}
    reference: str | None = None
    for k in range(args.repeats):
        for i, (row, (source, extra)) in enumerate(rows.items()):
            env = _latex_env(**(extra or {"GRADPROOF_LATEX_CACHE": str(root / f"cache-{k}-{i}")}))
            new = _fresh(tex, root / f"{k}-{i}-new")
            w, c = _compile(source, new, env)
            wall[f"{row} | new folder"].append(w)
            cpu[f"{row} | new folder"].append(c)
            again = _fresh(tex, root / f"{k}-{i}-again")
            reuse_latex_state(new, again)
            if extra is None and source == "":  # the empty-cache row: empty for the rebuild too
                env = _latex_env(GRADPROOF_LATEX_CACHE=str(root / f"cache-{k}-{i}-again"))
            w, c = _compile(source, again, env)
            wall[f"{row} | rebuild"].append(w)
            cpu[f"{row} | rebuild"].append(c)
            for pdf in (new / "report.pdf", again / "report.pdf"):
                text = _text(pdf)
                reference = text if reference is None else reference
                same_text[row] = same_text.get(row, True) and text == reference
            if k:  # keep the disk small: the first repeat's folders stay for inspection
                shutil.rmtree(new)
                shutil.rmtree(again)
    return {"wall_s": {n: _summary(v) for n, v in wall.items()},
            "cpu_s": {n: _summary(v) for n, v in cpu.items()}, "same_text_as_first_row": same_text}  # fmt: skip


def _pass_table(args: argparse.Namespace, tex: Path, root: Path) -> dict:
    from gradproof.reports.latex_format import preamble_format

    built = _fresh(tex, root / "passes")
    env = _latex_env(GRADPROOF_LATEX_CACHE="off")
    pdflatex = shutil.which("pdflatex") or "pdflatex"
    _timed(["latexmk", "-norc", "-pdf", *_FLAGS, "report.tex"], built, env)  # .aux/.toc/.bbl in place
    noexp = built / "noexpansion.tex"
    text = (built / "report.tex").read_text(encoding="utf-8")
    assert "expansion=\\gpexpansion" in text
    noexp.write_text(text.replace("expansion=\\gpexpansion", "expansion=false"), encoding="utf-8")
    shutil.copyfile(built / "report.aux", built / "noexpansion.aux")

    def dump(name: str, cache: str = "pass-cache") -> Path:
        def run(cmd: list[str], cwd: Path, deadline: float) -> tuple[int, str]:
            done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, check=False)
            return done.returncode, ""

        fmt = preamble_format(built / name, pdflatex=pdflatex, run=run, deadline=time.monotonic() + 300,
                              cache_dir=root / cache)  # fmt: skip
        assert fmt is not None, "no format could be dumped"
        return fmt

    fmt, fmt_noexp = dump("report.tex"), dump("noexpansion.tex")
    rows = {
        "plain": [pdflatex, *_FLAGS, "report.tex"],
        "plain, -draftmode": [pdflatex, "-draftmode", *_FLAGS, "report.tex"],
        "format": [pdflatex, f"-fmt={fmt}", *_FLAGS, "report.tex"],
        "format, -draftmode": [pdflatex, f"-fmt={fmt}", "-draftmode", *_FLAGS, "report.tex"],
        "format, -interaction=batchmode": [pdflatex, f"-fmt={fmt}", *_FLAGS[1:], "-interaction=batchmode",
                                           "report.tex"],  # fmt: skip
        "plain, microtype expansion off": [pdflatex, *_FLAGS, "noexpansion.tex"],
        "format, microtype expansion off": [pdflatex, f"-fmt={fmt_noexp}", *_FLAGS, "noexpansion.tex"],
    }
    wall: dict[str, list[float]] = {r: [] for r in [*rows, "dump the format (once per preamble)"]}
    cpu: dict[str, list[float]] = {r: [] for r in wall}
    for k in range(args.repeats):
        for row, cmd in rows.items():
            w, c = _timed(cmd, built, env)
            wall[row].append(w)
            cpu[row].append(c)
        t0, c0 = time.perf_counter(), _children_cpu()
        dump("report.tex", f"dump-cache-{k}")  # an empty cache: the dump itself
        wall["dump the format (once per preamble)"].append(time.perf_counter() - t0)
        cpu["dump the format (once per preamble)"].append(_children_cpu() - c0)
    return {"wall_s": {n: _summary(v) for n, v in wall.items()}, "cpu_s": {n: _summary(v) for n, v in cpu.items()}}


def _print(title: str, table: dict) -> None:
    print(f"\n{title}\n{'':<58}{'wall median':>12}{'min':>7}{'max':>7}{'CPU median':>12}")
    for name, v in table["wall_s"].items():
        print(f"{name:<58}{v['median']:>12.2f}{v['min']:>7.2f}{v['max']:>7.2f}"
              f"{table['cpu_s'][name]['median']:>12.2f}")  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--tex", type=Path, default=None, help="a report folder (gradproof report --no-pdf --out DIR)")
    ap.add_argument("--before", type=Path, default=None, help="another source tree to compare, e.g. main")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be 1 or more")
    with tempfile.TemporaryDirectory(prefix="bench-latex-") as root_name:
        root = Path(root_name)
        tex = args.tex
        if tex is None:
            tex = root / "tex"
            subprocess.run([sys.executable, "-m", "gradproof", "report", "--no-pdf", "--out", str(tex)], check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
        load0 = os.getloadavg()[0]
        compiles = _compile_table(args, tex, root)
        passes = _pass_table(args, tex, root)
        load1 = os.getloadavg()[0]
    result = {"repeats": args.repeats, "cores": os.cpu_count(), "load_average_1min": [load0, load1],
              "before": None if args.before is None else str(args.before),
              "compile_pdf": compiles, "one_pass": passes}  # fmt: skip
    print(f"LaTeX of the report, {args.repeats} runs each (round-robin), load average {load0:.1f} -> {load1:.1f} "
          f"on {os.cpu_count()} cores")  # fmt: skip
    _print("compile_pdf (seconds)", compiles)
    print("same PDF text as the first row:", compiles["same_text_as_first_row"])
    _print("one pdflatex pass over the built report (seconds)", passes)
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
