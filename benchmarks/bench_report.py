"""Benchmark: the wall time of ``gradproof report``, whole and per section.

Measured, round-robin over ``--repeats`` runs (the median is reported, with the machine's load
average next to it: on a shared machine the absolute times move with the other processes):

* ``gradproof report --out TMP`` in a new folder each time (PDF included, LaTeX from nothing);
* the same command again into the folder of the previous run (PDF included, LaTeX starts from
  the previous build's .aux/.toc: one pass when nothing moved);
* ``gradproof report --out TMP --no-pdf``;
* the CPU seconds of each command and the processes it started (``getrusage(RUSAGE_CHILDREN)``):
  less sensitive to the other processes of a shared machine than the wall time;
* per section: ``build_report(..., jobs=1)`` in this process, one section after the other, the
  wall and CPU time between the progress messages ``[k/N] section: NAME``.

The targets (issues 12 and 13): ≤ 6 s median on 2 cores with the PDF (issue 13), < 30 s
(issue 12).

Run from the repository root::

    python -m benchmarks.bench_report [--repeats 3] [--json PATH] [--no-sections] [--source DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from benchmarks._results import write_json

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "report.json"


#: ``python -c`` code that runs ``gradproof`` from another source tree (argv[1]), past the editable
#: install's finder: to time another checkout (e.g. ``git archive main | tar -x -C DIR``) with the
#: same interpreter and packages
_FROM_SOURCE = (
    "import runpy, sys; src = sys.argv.pop(1); "
    "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
    "sys.path.insert(0, src); sys.argv[0] = 'gradproof'; "
    "runpy.run_module('gradproof', run_name='__main__', alter_sys=True)"
)


def _command(out: Path, *extra: str, source: Path | None = None) -> list[str]:
    head = [sys.executable, "-m", "gradproof"] if source is None else [sys.executable, "-c", _FROM_SOURCE, str(source)]
    return [*head, "report", "--out", str(out), *extra]


def _timed(cmd: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and every process it started: LaTeX, workers)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _sections_once(out: Path) -> dict[str, dict[str, float]]:
    """Wall and CPU seconds of each step of one in-process, one-process build (PDF included)."""
    from gradproof.reports.report import ReportOptions, build_report

    marks: list[tuple[str, float, float]] = []

    def progress(message: str) -> None:
        marks.append((message.partition("] ")[2], time.perf_counter(), time.process_time()))

    marks.append(("start", time.perf_counter(), time.process_time()))
    build_report(ReportOptions(out=out), progress=progress, jobs=1)
    marks.append(("end", time.perf_counter(), time.process_time()))
    return {
        name: {"wall_s": t1 - t0, "cpu_s": c1 - c0}
        for (name, t0, c0), (_, t1, c1) in zip(marks[1:-1], marks[2:])
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    ap.add_argument("--no-sections", action="store_true", help="skip the per-section (one-process) runs")
    ap.add_argument("--source", type=Path, default=None,
                    help="time the gradproof of this source tree instead (e.g. main before a change); "
                    "implies --no-sections")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be 1 or more")
    runs: dict[str, list[float]] = {"pdf, new folder": [], "pdf, rebuild": [], "no pdf": []}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    loads: list[float] = []
    sections: list[dict[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-report-") as root_name:
        root = Path(root_name)
        for r in range(args.repeats):
            loads.append(os.getloadavg()[0])
            src = args.source
            for key, cmd in (("pdf, new folder", _command(root / f"new{r}", source=src)),
                             ("pdf, rebuild", _command(root / f"new{r}", source=src)),
                             ("no pdf", _command(root / f"tex{r}", "--no-pdf", source=src))):  # fmt: skip
                wall, seconds = _timed(cmd)
                runs[key].append(wall)
                cpu[key].append(seconds)
            if not args.no_sections and src is None:
                sections.append(_sections_once(root / f"sections{r}"))
            loads.append(os.getloadavg()[0])
    result: dict = {
        "repeats": args.repeats,
        "source": "this checkout" if args.source is None else str(args.source),
        "cores": os.cpu_count(),
        "load_average_1min": {"min": min(loads), "median": statistics.median(loads), "max": max(loads)},
        "wall_s": {k: {"median": statistics.median(v), "min": min(v), "max": max(v), "runs": v}
                   for k, v in runs.items()},  # fmt: skip
        "cpu_s": {k: {"median": statistics.median(v), "runs": v} for k, v in cpu.items()},
    }
    print(f"gradproof report, {args.repeats} runs each, load average {result['load_average_1min']['min']:.1f}"
          f"-{result['load_average_1min']['max']:.1f} on {os.cpu_count()} cores")  # fmt: skip
    print(f"{'run':<24}{'median s':>10}{'min s':>9}{'max s':>9}{'CPU s':>9}")
    for k, v in result["wall_s"].items():
        print(f"{k:<24}{v['median']:>10.2f}{v['min']:>9.2f}{v['max']:>9.2f}{result['cpu_s'][k]['median']:>9.2f}")
    if sections:
        names = list(sections[0])
        result["sections_one_process"] = {
            name: {
                "wall_s": statistics.median(s[name]["wall_s"] for s in sections if name in s),
                "cpu_s": statistics.median(s[name]["cpu_s"] for s in sections if name in s),
            }
            for name in names
        }
        print(f"\nper step, one process (build_report(jobs=1)), medians\n{'step':<40}{'wall s':>8}{'cpu s':>8}")
        for name, v in result["sections_one_process"].items():
            print(f"{name:<40}{v['wall_s']:>8.2f}{v['cpu_s']:>8.2f}")
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
