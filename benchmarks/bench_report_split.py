"""Benchmark: how evenly the report's two processes share the sections (reports/report.py SECOND_PROCESS).

``build_report(..., jobs=2)`` (no PDF) is run ``--repeats`` times for the current
:data:`SECOND_PROCESS` and for each alternative given with ``--try`` (comma-separated section names
to use as the second process's set instead), round-robin. Each section's end time and CPU seconds
are recorded in the process that built it, so the table shows, per split, the medians of: when the
main process finished its own sections, when the second finished its, and the CPU seconds of each.
The split is balanced when the two ends are close; the report waits for the later one.

Run from the repository root::

    python -m benchmarks.bench_report_split [--repeats 3] [--try gru,verification,beyond] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from gradproof.reports import report as R
from benchmarks._results import write_json

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "report_split.json"


def _once(second: tuple[str, ...], root: Path) -> dict[str, float]:
    log = root / f"log{time.monotonic_ns()}"
    original, build = R.SECOND_PROCESS, R._build_part
    t0 = time.perf_counter()

    def timed(make, ctx):  # noqa: ANN001, ANN202 - the signature of report._build_part
        c0 = time.process_time()
        out = build(make, ctx)
        with open(log, "a", encoding="utf-8") as f:  # both processes append one line per section
            f.write(json.dumps([os.getpid(), time.perf_counter() - t0, time.process_time() - c0]) + "\n")
        return out

    R.SECOND_PROCESS, R._build_part = second, timed
    try:
        R.build_report(R.ReportOptions(out=root / f"out{time.monotonic_ns()}", pdf=False), jobs=2)
    finally:
        R.SECOND_PROCESS, R._build_part = original, build
    rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    main = [r for r in rows if r[0] == os.getpid()][:-1]  # the last one is the summary, built after both
    away = [r for r in rows if r[0] != os.getpid()]
    return {"main_end_s": main[-1][1], "second_end_s": away[-1][1] if away else 0.0,
            "main_cpu_s": sum(r[2] for r in main), "second_cpu_s": sum(r[2] for r in away),
            "total_s": time.perf_counter() - t0}  # fmt: skip


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--try", dest="alternatives", action="append", default=[],
                    help="another set of second-process sections, comma-separated (repeatable)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be 1 or more")
    splits = {",".join(R.SECOND_PROCESS) + " (current)": R.SECOND_PROCESS}
    for alt in args.alternatives:
        splits[alt] = tuple(x.strip() for x in alt.split(",") if x.strip())
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in splits}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="bench-split-") as root:
        for _ in range(args.repeats):
            for key, second in splits.items():
                runs[key].append(_once(second, Path(root)))
            loads.append(os.getloadavg()[0])
    fields = ("main_end_s", "second_end_s", "main_cpu_s", "second_cpu_s", "total_s")
    summary = {k: {f: statistics.median(r[f] for r in v) for f in fields} for k, v in runs.items()}
    print(f"build_report(jobs=2, no PDF), {args.repeats} runs per split, medians, load average "
          f"{min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores")  # fmt: skip
    print(f"{'second process builds':<44}" + "".join(f"{f:>14}" for f in fields))
    for k, v in summary.items():
        print(f"{k:<44}" + "".join(f"{v[f]:>14.2f}" for f in fields))
    result = {"repeats": args.repeats, "load_average_1min": loads, "summary": summary, "runs": runs}
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
