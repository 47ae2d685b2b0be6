"""Benchmark: how long the command line makes a user wait, in fresh interpreters.

Each row is one command run as a new process (what a user types), timed from start to exit with
``time.perf_counter``; rows run **round-robin** (repeat 1 of every row, then repeat 2, ...) after
one warm-up each, so a change of machine load hits every row alike. The table gives medians (and
the median CPU time, user + system, which a busy machine inflates less than wall time), the
ratios the targets are stated in (issue 13), and which of SymPy, numpy, torch, matplotlib (and
SciPy) each command imported (one extra run with ``python -X importtime``).

Targets: ``gradproof --help`` within 3x of ``python -c "import click"``; ``gradproof derive lstm``
within 2x of ``python -c "import sympy"``; ``gradproof verify`` (default) at most 1.5 s; no command
imports torch, matplotlib or SymPy unless it uses them. ``python -c "import torch"`` is shown too:
the default reference of ``verify`` is PyTorch, so its import is a floor under that command.

``gradproof ...`` is run as ``python -m gradproof ...`` from ``--source`` (default: this checkout).
``--before DIR`` adds the same ``gradproof`` rows run from another checkout (e.g. main's code before
a change), interleaved in the same round-robin so both see the same load::

    git archive BASE | tar -x -C /tmp/before
    python -m benchmarks.bench_cli --before /tmp/before

Run from the repository root::

    python -m benchmarks.bench_cli [--repeats 5] [--json PATH] [--source DIR] [--before DIR] [--python PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from benchmarks._results import write_json

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JSON = ROOT / "benchmarks" / "results" / "cli.json"
HEAVY = ("sympy", "numpy", "torch", "matplotlib", "scipy")

#: What each command may import (the command uses it); anything else heavy is a miss.
ALLOWED: dict[str, set[str]] = {
    "gradproof --help": set(),
    "gradproof derive lstm": {"sympy"},
    "gradproof bound": {"numpy", "sympy"},  # γ of the activation is derived symbolically
    "gradproof verify": {"numpy", "sympy", "torch"},
}


def rows(python: str, weights: str) -> dict[str, list[str]]:
    """Row label -> argv (run from the checkout measured)."""
    gp = [python, "-m", "gradproof"]
    return {
        'python -c "import click"': [python, "-c", "import click"],
        'python -c "import sympy"': [python, "-c", "import sympy"],
        'python -c "import torch"': [python, "-c", "import torch"],  # the floor under verify's default
        "gradproof --help": [*gp, "--help"],
        "gradproof derive lstm": [*gp, "derive", "lstm"],
        "gradproof bound": [*gp, "bound", "--activation", "tanh", "--weights", weights],
        "gradproof verify": [*gp, "verify"],
    }


#: No time budget: on a busy machine a command could hit its default 5 s stop and fail the run.
ENV = {**os.environ, "GRADPROOF_TIME_LIMIT": "0"}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(argv: list[str], cwd: Path) -> tuple[float, float]:
    """(wall, CPU) seconds of one run; CPU (user + system) is less sensitive to a busy machine."""
    cpu = _children_cpu()
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-500:]}")
    return elapsed, _children_cpu() - cpu


def heavy_imports(argv: list[str], cwd: Path) -> list[str]:
    """The heavy top-level packages one run imports (from ``-X importtime``)."""
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], cwd=cwd, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, env=ENV)  # fmt: skip
    names = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    return [m for m in HEAVY if m in names]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5, help="timed runs per row (after one warm-up)")
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write the results")
    ap.add_argument("--source", type=Path, default=ROOT, help="checkout whose gradproof is run (python -m gradproof)")
    ap.add_argument("--before", type=Path, default=None, help="also run the gradproof rows from this checkout")
    ap.add_argument("--python", default=sys.executable, help="the interpreter (default: this one)")
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")

    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        weights = str(Path(tmp) / "W.npy")
        w = np.random.default_rng(0).normal(size=(64, 64))
        np.save(weights, 0.9 * w / np.linalg.norm(w, 2))  # spectral norm 0.9: a vanishing regime
        cwd = args.source.resolve()
        table = {label: (argv_, cwd) for label, argv_ in rows(args.python, weights).items()}
        if args.before is not None:
            table |= {f"before: {label}": (argv_, args.before.resolve())
                      for label, argv_ in rows(args.python, weights).items() if label.startswith("gradproof")}  # fmt: skip
        load_start = os.getloadavg()
        times: dict[str, list[float]] = {label: [] for label in table}
        cpu: dict[str, list[float]] = {label: [] for label in table}
        for argv_, where in table.values():  # warm-up: byte-code caches, the OS's file cache
            run_once(argv_, where)
        for _ in range(args.repeats):
            for label, (argv_, where) in table.items():
                wall, used = run_once(argv_, where)
                times[label].append(wall)
                cpu[label].append(used)
        imports = {label: heavy_imports(argv_, where) for label, (argv_, where) in table.items() if "gradproof" in label}
        load_end = os.getloadavg()

    med = {label: statistics.median(t) for label, t in times.items()}
    click_s, sympy_s = med['python -c "import click"'], med['python -c "import sympy"']
    targets = {
        "gradproof --help": ("<= 3x import click", med["gradproof --help"] / click_s, med["gradproof --help"] <= 3 * click_s),
        "gradproof derive lstm": ("<= 2x import sympy", med["gradproof derive lstm"] / sympy_s,
                                  med["gradproof derive lstm"] <= 2 * sympy_s),
        "gradproof verify": ("<= 1.5 s", None, med["gradproof verify"] <= 1.5),
    }  # fmt: skip
    extra = {label: sorted(set(found) - ALLOWED.get(label.removeprefix("before: "), set()))
             for label, found in imports.items()}  # fmt: skip
    for label in ("gradproof --help", "gradproof derive lstm", "gradproof verify"):
        if f"before: {label}" in med:
            goal, _, _ = targets[label]
            m = med[f"before: {label}"]
            base = {"gradproof --help": click_s, "gradproof derive lstm": sympy_s}.get(label)
            limit = {"gradproof --help": 3 * click_s, "gradproof derive lstm": 2 * sympy_s}.get(label, 1.5)
            targets[f"before: {label}"] = (goal, None if base is None else m / base, m <= limit)

    print(f"source {cwd}, python {args.python}, {args.repeats} repeats round-robin, "
          f"load average {load_start[0]:.1f} -> {load_end[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    print(f"{'command':36s} {'median s':>9s} {'min s':>7s} {'CPU s':>6s}  {'ratio':>6s}  {'target':20s} {'met':4s} imports")
    for label, t in times.items():
        goal, ratio, ok = targets.get(label, ("", None, None))
        found = ",".join(imports.get(label, [])) or ("-" if label in imports else "")
        if extra.get(label):
            found += f" (unneeded: {','.join(extra[label])})"
        print(f"{label:36s} {med[label]:9.3f} {min(t):7.3f} {statistics.median(cpu[label]):6.2f}  {'' if ratio is None else f'{ratio:5.2f}x':>6s}  "
              f"{goal:20s} {'' if ok is None else ('yes' if ok else 'NO'):4s} {found}")  # fmt: skip
    result = {
        "source": str(cwd),
        "before": None if args.before is None else str(args.before.resolve()),
        "python": args.python,
        "repeats": args.repeats,
        "load_average": {"start": load_start, "end": load_end},
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "times": times,
        "median": med,
        "cpu": cpu,
        "cpu_median": {label: statistics.median(c) for label, c in cpu.items()},
        "targets": {k: {"target": g, "ratio": r, "met": ok} for k, (g, r, ok) in targets.items()},
        "imports": imports,
        "unneeded_imports": extra,
    }
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
