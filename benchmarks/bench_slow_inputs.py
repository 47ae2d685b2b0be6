"""The slow-input bound: how long the worst short inputs found take to answer.

Each row runs ``gradproof bound --activation EXPR --weights W.npy`` in a fresh process (so no
cached γ), timed around ``reports.cli.main`` inside it, with the default time budget of the command (5 s, see
``reports/cli.py``), three times, and gives the median and maximum wall time, the exit code and
whether the answer was γ or the one-line "too costly" stop. The inputs are the slowest the CLI
fuzz (``benchmarks/fuzz_cli.py``) and hand search found: long sums of sines (the case of issue
14), deep nesting, long sums, large powers. Run from the repository root::

    python -m benchmarks.bench_slow_inputs [--repeats 3] [--json PATH]

Results go to ``benchmarks/results/slow_inputs.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gradproof.reports.cli import DEFAULT_TIME_LIMIT

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "slow_inputs.json"

#: (label, activation text); every text is at most 500 characters (the parser's limit).
INPUTS: list[tuple[str, str]] = [
    ("tanh (baseline)", "tanh"),
    ("tanh(3*x)+sin(x)", "tanh(3*x)+sin(x)"),
    ("issue 14: tanh(x)+sin(1*x)+...+sin(39*x)", "tanh(x)+" + "+".join(f"sin({k}*x)" for k in range(1, 40))),
    ("tanh(x)+sin(1*x)+...+sin(10*x)", "tanh(x)+" + "+".join(f"sin({k}*x)" for k in range(1, 11))),
    ("sum of 25 tanh(k*x)/k", "+".join(f"tanh({k}*x)/{k}" for k in range(1, 26))),
    ("sin nested 30 deep", "sin(" * 30 + "x" + ")" * 30),
    ("tanh nested 80 deep", "tanh(" * 80 + "x" + ")" * 80),
    ("x+x+...+x (250 terms)", "+".join(["x"] * 250)),
    ("sigmoid(x)*tanh(x)*sin(x)*cos(x)", "sigmoid(x)*tanh(x)*sin(x)*cos(x)"),
    ("tanh(x)**40", "tanh(x)**40"),
    ("sin(x)**3+cos(2*x)**5+tanh(x)**7", "sin(x)**3+cos(2*x)**5+tanh(x)**7"),
]


_CHILD = """
import contextlib, io, json, sys, time
from gradproof.reports.cli import main
args = json.loads(sys.argv[1])
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    main(["bound", "--activation", "tanh", "--weights", args[-1]])  # imports before the clock
out, err = io.StringIO(), io.StringIO()
start = time.perf_counter()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    code = main(args)
print(json.dumps({"seconds": time.perf_counter() - start, "code": code, "stdout": out.getvalue(),
                  "stderr": err.getvalue()}))
"""


def time_one(expr: str, weights: str, *, limit: float | None) -> tuple[float, int, str]:
    """Seconds, exit code and answer of one ``bound`` run, in a fresh process (no cache).

    The time is measured inside the child around ``reports.cli.main`` (interpreter start and
    the first imports excluded: they are the same for every input).
    """
    args = ["bound", "--activation", expr, "--weights", weights]
    if limit is not None:
        args = ["--time-limit", f"{limit:g}", *args]
    done = subprocess.run([sys.executable, "-c", _CHILD, json.dumps(args)], capture_output=True,
                          text=True, check=True, timeout=600)  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    code = result["code"]
    if code == 0:
        line = next(ln for ln in result["stdout"].splitlines() if "gamma = sup" in ln)
        return result["seconds"], code, "gamma = " + line.split("sup|sigma'|", 1)[1].split("(")[0].strip()
    last = (result["stderr"].strip().splitlines() or [""])[-1]
    return result["seconds"], code, last[:120]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--limit", type=float, default=None,
                        help="time budget in seconds [default: the command's, 5 s]")  # fmt: skip
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)

    weights = str(Path(tempfile.mkdtemp(prefix="gradproof-slow-")) / "W.npy")
    np.save(weights, 0.5 * np.eye(3))
    load_start = os.getloadavg() if hasattr(os, "getloadavg") else None
    rows = []
    limit = args.limit if args.limit is not None else DEFAULT_TIME_LIMIT
    print(f"gradproof bound --activation EXPR: budget {limit:g} s, median of {args.repeats}")
    print(f"{'input':<44} {'chars':>5} {'median s':>9} {'max s':>7} {'code':>4}  answer")
    for label, expr in INPUTS:
        runs = [time_one(expr, weights, limit=args.limit) for _ in range(args.repeats)]
        seconds = [r[0] for r in runs]
        code, answer = runs[-1][1], runs[-1][2]
        answer = "stopped: too costly" if "stopped after" in answer else answer
        rows.append({"input": label, "expression": expr, "chars": len(expr), "median_s": statistics.median(seconds),
                     "max_s": max(seconds), "runs_s": seconds, "code": code, "answer": answer})  # fmt: skip
        print(f"{label:<44} {len(expr):>5} {statistics.median(seconds):>9.2f} {max(seconds):>7.2f} {code:>4}  {answer[:60]}")
    worst = max(r["max_s"] for r in rows)
    print(f"slowest answer: {worst:.2f} s (budget {limit:g} s)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "budget_seconds": limit, "repeats": args.repeats, "rows": rows, "slowest_s": worst,
        "load_average_start": load_start,
        "load_average_end": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "python": sys.version.split()[0], "platform": platform.platform(),
    }, indent=2) + "\n", encoding="utf-8")  # fmt: skip
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
