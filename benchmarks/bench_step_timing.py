"""Benchmark: the report's LSTM/GRU step timing with fewer warm-ups and shorter sequences.

``reports.sections.step_time_comparison`` measures what the report's GRU section prints (torch.nn
LSTM vs GRU, forward + backward, 3 sizes x 2 engines). Its own cost is the question here: the
same medians for less total time. Timed round-robin over ``--repeats`` runs, one configuration
after the other (warm-ups, timed repeats, steps):

* ``before``: 2 warm-ups, 7 repeats, 50 steps (the report until issue 13);
* ``now``: :data:`TIMING_WARMUPS`, 7 repeats, :data:`TIMING_STEPS` (what the report runs);
* two more: 1 warm-up with 5 repeats at 50 and at 25 steps.

Printed per quantity (each median time per step and each LSTM/GRU ratio): the median over the runs
and the run-to-run spread, (max - min) / median; then the seconds per comparison. A shorter
configuration is acceptable when its medians agree with ``before`` within the spreads and its
spreads are no wider.

Run from the repository root::

    python -m benchmarks.bench_step_timing [--repeats 4] [--json PATH]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from gradproof.reports import sections
from benchmarks._results import write_json

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "step_timing.json"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be 1 or more")
    configs = {
        "before (2, 7, 50)": (2, 7, 50),
        f"now ({sections.TIMING_WARMUPS}, 7, {sections.TIMING_STEPS})": (sections.TIMING_WARMUPS, 7, sections.TIMING_STEPS),
        "(1, 5, 50)": (1, 5, 50),
        "(1, 5, 25)": (1, 5, 25),
    }
    values: dict[str, list[dict[str, float]]] = {k: [] for k in configs}
    seconds: dict[str, list[float]] = {k: [] for k in configs}
    warmups = sections.TIMING_WARMUPS
    loads = [os.getloadavg()[0]]
    sections.step_time_comparison(sizes=(sections.TIMING_SIZES[0],), steps=5, repeats=1)  # torch's first use
    try:
        for _ in range(args.repeats):
            for key, (w, repeats, steps) in configs.items():
                sections.TIMING_WARMUPS = w
                t0 = time.perf_counter()
                out = sections.step_time_comparison(repeats=repeats, steps=steps)
                seconds[key].append(time.perf_counter() - t0)
                row = {}
                for engine, per in out["engines"].items():
                    for n, t in per.items():
                        row[f"{engine}/{n}/lstm us"] = t["lstm"]["median_us"]
                        row[f"{engine}/{n}/gru us"] = t["gru-torch"]["median_us"]
                        row[f"{engine}/{n}/ratio"] = t["lstm_over_gru"]
                values[key].append(row)
            loads.append(os.getloadavg()[0])
    finally:
        sections.TIMING_WARMUPS = warmups
    summary = {
        key: {q: {"median": statistics.median(r[q] for r in rows),
                  "spread": (max(r[q] for r in rows) - min(r[q] for r in rows)) / statistics.median(r[q] for r in rows)}
              for q in rows[0]}
        for key, rows in values.items()
    }  # fmt: skip
    print(f"step_time_comparison, {args.repeats} runs per configuration (warm-ups, repeats, steps), "
          f"load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores")  # fmt: skip
    print(f"{'quantity':<24}" + "".join(f"{k:>22}" for k in configs))
    print(f"{'':<24}" + "".join(f"{'median  spread':>22}" for _ in configs))
    for q in summary[next(iter(configs))]:
        print(f"{q:<24}" + "".join(f"{summary[k][q]['median']:>14.2f}{summary[k][q]['spread']:>8.2f}" for k in configs))
    print(f"{'seconds per comparison':<24}" + "".join(f"{statistics.median(seconds[k]):>22.2f}" for k in configs))
    result = {"repeats": args.repeats, "load_average_1min": loads, "configs": {k: list(v) for k, v in configs.items()},
              "summary": summary, "seconds": seconds, "runs": values}  # fmt: skip
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
