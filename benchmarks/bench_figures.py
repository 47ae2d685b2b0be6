"""Benchmark: the CPU time of the report's figures, per figure, this checkout against another.

Each run is a new process that builds the report without the PDF, in one process
(``build_report(ReportOptions(out=TMP, pdf=False), jobs=1)``) and records, per figure stem:

* ``draw_s``: the CPU seconds from the figure's creation (``Figure.__init__``) to the call of
  :func:`reports.figures.save` (drawing the artists, then the layout pass of ``plots._finish``);
* ``save_s``: the CPU seconds of ``figures.save`` (``savefig``: the PDF drawing, font subsetting);
* the CPU seconds of the whole build, and the size of each PDF.

CPU seconds (``time.process_time``), not wall time: the machine is shared. With ``--source DIR``
the same runs are made with the gradproof of that source tree (e.g. ``git archive main | tar -x -C
DIR``; ``--source`` may be repeated), round-robin with this checkout, and all are shown side by
side (medians of ``--repeats`` runs).

Run from the repository root::

    python -m benchmarks.bench_figures [--repeats 3] [--source DIR ...] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from benchmarks._results import write_json

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "figures.json"

#: the code of one measured run, in a new process: argv = [src or "", out folder]
_WORKER = r"""
import json, sys, time
src, out = sys.argv[1], sys.argv[2]
if src:
    sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]
    sys.path.insert(0, src)
from pathlib import Path
import matplotlib.figure
from gradproof.reports import sections
from gradproof.reports.report import ReportOptions, build_report

born = {}
init = matplotlib.figure.Figure.__init__
def counted_init(self, *args, **kwargs):
    born[id(self)] = time.process_time()
    init(self, *args, **kwargs)
matplotlib.figure.Figure.__init__ = counted_init

stems = {}
save = sections.save
def timed_save(fig, figures_dir, stem, **kwargs):
    c0 = time.process_time()
    paths = save(fig, figures_dir, stem, **kwargs)
    c1 = time.process_time()
    stems[stem] = {"draw_s": c0 - born.pop(id(fig), c0), "save_s": c1 - c0,
                   "pdf_bytes": Path(paths["pdf"]).stat().st_size if "pdf" in paths else 0}
    return paths
sections.save = timed_save

c0 = time.process_time()
build_report(ReportOptions(out=Path(out), pdf=False), jobs=1)
total = time.process_time() - c0
print(json.dumps({"build_cpu_s": total, "figures": stems}))
"""


def _one_run(source: Path | None, out: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", _WORKER, "" if source is None else str(source), str(out)],
                          check=True, capture_output=True, text=True)  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def _summary(runs: list[dict]) -> dict:
    stems = list(runs[0]["figures"])
    per = {
        stem: {
            key: statistics.median(r["figures"][stem][key] for r in runs if stem in r["figures"])
            for key in ("draw_s", "save_s", "pdf_bytes")
        }
        for stem in stems
    }
    med = statistics.median
    return {
        "build_cpu_s": {"median": med(r["build_cpu_s"] for r in runs), "runs": [r["build_cpu_s"] for r in runs]},
        "figures_cpu_s": {
            "median": med(sum(f["draw_s"] + f["save_s"] for f in r["figures"].values()) for r in runs),
            "runs": [sum(f["draw_s"] + f["save_s"] for f in r["figures"].values()) for r in runs],
        },
        "save_cpu_s": {"median": med(sum(f["save_s"] for f in r["figures"].values()) for r in runs)},
        "draw_cpu_s": {"median": med(sum(f["draw_s"] for f in r["figures"].values()) for r in runs)},
        "per_figure": per,
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    ap.add_argument("--source", type=Path, action="append", default=[],
                    help="also time the gradproof of this source tree (e.g. main before a change), side by side; "
                    "may be given more than once")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be 1 or more")
    trees: dict[str, Path | None] = {str(src): src.resolve() for src in args.source}
    trees["this checkout"] = None
    runs: dict[str, list[dict]] = {k: [] for k in trees}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="bench-figures-") as root_name:
        root = Path(root_name)
        for r in range(args.repeats):
            for i, (name, src) in enumerate(trees.items()):
                runs[name].append(_one_run(src, root / f"run{r}-{i}"))
            loads.append(os.getloadavg()[0])
    result = {
        "repeats": args.repeats,
        "cores": os.cpu_count(),
        "load_average_1min": {"min": min(loads), "max": max(loads)},
        "trees": {name: _summary(v) for name, v in runs.items()},
    }
    names = list(trees)
    print(f"report figures, CPU seconds, medians of {args.repeats} runs (build_report(pdf=False, jobs=1)), "
          f"load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores")  # fmt: skip
    head = "".join(f"{n[-18:]:>20}" for n in names)
    print(f"{'':<28}{head}")
    for key, label in (("build_cpu_s", "whole build"), ("figures_cpu_s", "all figures (draw + save)"),
                       ("draw_cpu_s", "  draw + layout"), ("save_cpu_s", "  save (PDF)")):  # fmt: skip
        print(f"{label:<28}" + "".join(f"{result['trees'][n][key]['median']:>20.2f}" for n in names))
    print(f"\nper figure: draw + save CPU s (PDF kB){'':<4}" + "".join(f"{n[-18:]:>20}" for n in names))
    for stem in result["trees"][names[-1]]["per_figure"]:
        cells = []
        for n in names:
            f = result["trees"][n]["per_figure"].get(stem)
            cells.append("-" if f is None else f"{f['draw_s']:.2f}+{f['save_s']:.2f} ({f['pdf_bytes'] / 1000:.0f})")
        print(f"{stem:<42}" + "".join(f"{c:>20}" for c in cells))
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
