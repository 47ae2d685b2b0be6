"""Benchmark: BLAS threads in the per-step loops, on an idle machine and with one core kept busy.

The quantity is ``numeric.gradient_profile`` of an LSTM (hidden 64, inputs 8, T = 1000, seeded),
timed in four settings side by side, round-robin over ``--repeats`` runs:

* BLAS limited to one thread inside the loops (gradproof's default, numeric/threads.py) or left
  at OpenBLAS's default (the limit lifted by patching ``threadpool_limits`` to a no-op);
* the machine idle, or one core kept busy by another process (a Python busy loop, started before
  and stopped after each timing).

The target (issue 13): with one core busy, the default is no more than 2x slower than idle.

Run from the repository root::

    python -m benchmarks.bench_threads [--hidden 64] [--steps 1000] [--repeats 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import threadpoolctl

import gradproof as gp
from gradproof.numeric import threads

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "threads.json"


def _spin(stop) -> None:  # the other process: keeps one core busy until told to stop
    x = 0
    while not stop.is_set():
        x += 1


@contextlib.contextmanager
def busy_core(on: bool) -> Iterator[None]:
    if not on:
        yield
        return
    stop = mp.Event()
    proc = mp.Process(target=_spin, args=(stop,), daemon=True)
    proc.start()
    time.sleep(0.2)  # let it reach the core
    try:
        yield
    finally:
        stop.set()
        proc.join()


@contextlib.contextmanager
def blas_limit(limited: bool) -> Iterator[None]:
    if limited:
        yield
        return
    real = threads.threadpool_limits
    threads.threadpool_limits = lambda **_: contextlib.nullcontext()  # type: ignore[assignment]
    try:
        yield
    finally:
        threads.threadpool_limits = real  # type: ignore[assignment]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_threads", description=__doc__.split("\n")[0])
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = ap.parse_args(argv)

    params = gp.init("lstm", hidden=args.hidden, inputs=8, seed=0, spectral_norm=1.0)
    xs = gp.random_sequence(args.steps, 8, seed=1)
    gp.gradient_profile("lstm", params, xs)  # warm-up: compile the derived formulas once
    settings = [(limited, busy) for busy in (False, True) for limited in (True, False)]
    times: dict[tuple[bool, bool], list[float]] = {s: [] for s in settings}
    for _ in range(args.repeats):
        for limited, busy in settings:
            with busy_core(busy), blas_limit(limited):
                t = time.perf_counter()
                gp.gradient_profile("lstm", params, xs)
                times[(limited, busy)].append(time.perf_counter() - t)

    med = {s: statistics.median(v) for s, v in times.items()}
    blas = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    print(f"LSTM gradient_profile, hidden {args.hidden}, T = {args.steps}, {args.repeats} repeats, "
          f"{os.cpu_count()} cores, BLAS {blas[0]['internal_api'] if blas else '?'} "
          f"default threads {blas[0]['num_threads'] if blas else '?'}")  # fmt: skip
    print(f"{'BLAS threads in the loops':<28}{'idle (s)':>10}{'1 core busy (s)':>17}{'busy/idle':>11}")
    rows = []
    for limited in (True, False):
        idle, busy = med[(limited, False)], med[(limited, True)]
        label = "1 (gradproof's default)" if limited else "library default"
        print(f"{label:<28}{idle:>10.3f}{busy:>17.3f}{busy / idle:>11.2f}")
        rows.append({"blas_threads": "1" if limited else "default", "idle_median_s": idle,
                     "busy_median_s": busy, "busy_over_idle": busy / idle,
                     "idle_runs_s": times[(limited, False)], "busy_runs_s": times[(limited, True)]})  # fmt: skip
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"hidden": args.hidden, "steps": args.steps, "repeats": args.repeats,
                                     "blas": blas, "loadavg": os.getloadavg(), "rows": rows}, indent=2))  # fmt: skip
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
