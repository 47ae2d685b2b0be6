"""Benchmark: the full Lyapunov spectrum of a tanh RNN, gradproof against a numpy and a torch loop.

The quantity is all S = n Lyapunov exponents (k = S) of ``h_t = tanh(W_h h_{t-1} + W_x x_t + b)``
by the QR method (Benettin et al. 1980; docs/math.md §1): hidden 128, inputs 16, T = 10⁴, seeded random
``W_h`` of spectral norm 1, standard normal inputs. Rows:

* ``gradproof`` — ``numeric.lyapunov_spectrum(derive.RNN("tanh"), params, xs)``: the derived
  Jacobian (only its diagonal factor v is evaluated, in chunks), re-orthonormalised by Cholesky-QR
  after each step while its condition estimate allows, else by Householder QR over adaptive groups
  of steps (see :mod:`numeric.lyapunov`);
* ``numpy loop`` — bare numpy: per step the forward step, A = diag(1 - h²) W_h Q,
  ``np.linalg.qr(A)``, accumulate log|diag R|;
* ``torch loop`` — the same loop in torch float64 (``torch.linalg.qr``).

All rows are timed in one run, round-robin (repeat 1 of every row, then repeat 2, …), after a
warm-up on a short sequence; medians, minima and ratios of medians are printed and written to JSON,
for wall-clock time and for the process's CPU time (``time.process_time``: every row runs on one
thread, so on a loaded machine the CPU time is the steadier measure of the work done; the targets
are judged on both).
The rows must agree (max |Δλ| ≤ 1e-8). Peak memory of each row is measured with ``tracemalloc``
(numpy and torch's CPU allocator are not both tracked by it, so torch's is not reported) at T/5 and
at T, in separate untimed runs: flat in T means the two peaks are about equal.

Run from the repository root::

    python -m benchmarks.bench_lyapunov [--hidden 128] [--steps 10000] [--repeats 3] [--json PATH]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from gradproof.derive import RNN
from gradproof.numeric import lyapunov_spectrum
from gradproof.numeric.lyapunov import initial_frame

__all__ = ["DEFAULT_JSON", "make_problem", "run_benchmark", "main"]

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "lyapunov.json"
AGREEMENT_ATOL = 1e-8


def make_problem(*, hidden: int = 128, steps: int = 10_000, inputs: int = 16, seed: int = 0) -> dict:
    """Seeded weights (‖W_h‖₂ = 1), small biases, standard normal inputs ``xs: (steps, inputs)``."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((hidden, hidden))
    return {
        "W_h": a / np.linalg.norm(a, 2),
        "W_x": rng.standard_normal((hidden, inputs)) / np.sqrt(inputs),
        "b": 0.1 * rng.standard_normal(hidden),
        "xs": rng.standard_normal((steps, inputs)),
    }


def gradproof_row(pb: dict) -> np.ndarray:
    params = {k: pb[k] for k in ("W_h", "W_x", "b")}
    return lyapunov_spectrum(RNN("tanh"), params, pb["xs"]).exponents


def numpy_loop(pb: dict) -> np.ndarray:
    W, U, b, xs = pb["W_h"], pb["W_x"], pb["b"], pb["xs"]
    n = W.shape[0]
    h = np.zeros(n)
    q = initial_frame(n, n)
    total = np.zeros(n)
    for x in xs:
        h = np.tanh(W @ h + U @ x + b)
        q, r = np.linalg.qr((1.0 - h * h)[:, None] * (W @ q))
        total += np.log(np.abs(np.diagonal(r)))
    return np.sort(total / xs.shape[0])[::-1]


def torch_loop(pb: dict) -> np.ndarray:
    import torch

    W, U, b, xs = (torch.from_numpy(np.ascontiguousarray(pb[k])) for k in ("W_h", "W_x", "b", "xs"))
    n = W.shape[0]
    h = torch.zeros(n, dtype=torch.float64)
    q = torch.from_numpy(initial_frame(n, n))
    total = torch.zeros(n, dtype=torch.float64)
    with torch.no_grad():
        for x in xs:
            h = torch.tanh(W @ h + U @ x + b)
            q, r = torch.linalg.qr((1.0 - h * h)[:, None] * (W @ q))
            total += torch.log(torch.abs(torch.diagonal(r)))
    return np.sort((total / xs.shape[0]).numpy())[::-1]


ROWS: dict[str, Callable[[dict], np.ndarray]] = {
    "gradproof": gradproof_row,
    "numpy loop": numpy_loop,
    "torch loop (float64)": torch_loop,
}


def _peak_bytes(row: Callable[[dict], np.ndarray], pb: dict) -> int:
    tracemalloc.start()
    try:
        row(pb)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _environment() -> dict[str, object]:
    import torch

    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
        "thread_env": {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS_", "OMP_", "MKL_"))},
        "loadavg_start": os.getloadavg(),
        "date": _dt.date.today().isoformat(),
    }


def run_benchmark(
    *, hidden: int = 128, steps: int = 10_000, repeats: int = 3, json_path: Path | None = DEFAULT_JSON,
    echo: Callable[[str], None] = print,
) -> dict:  # fmt: skip
    """Time every row, check agreement, measure peak memory at T/5 and T; print and write JSON."""
    env = _environment()
    pb = make_problem(hidden=hidden, steps=steps)
    warm = make_problem(hidden=hidden, steps=50)
    for row in ROWS.values():
        row(warm)
    times: dict[str, list[float]] = {name: [] for name in ROWS}
    cpu: dict[str, list[float]] = {name: [] for name in ROWS}
    values: dict[str, np.ndarray] = {}
    for rep in range(repeats):
        for name, row in ROWS.items():
            t0, c0 = time.perf_counter(), time.process_time()
            values[name] = row(pb)
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
        echo(f"repeat {rep + 1}/{repeats}: " + ", ".join(
            f"{k} {v[-1]:.2f} s ({cpu[k][-1]:.2f} s CPU)" for k, v in times.items()))  # fmt: skip
    short = make_problem(hidden=hidden, steps=max(1, steps // 5))
    memory = {
        name: {"T/5": _peak_bytes(ROWS[name], short), "T": _peak_bytes(ROWS[name], pb)}
        for name in ("gradproof", "numpy loop")
    }
    ref = values["gradproof"]
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    doc = {
        "problem": {"hidden": hidden, "inputs": 16, "steps": steps, "k": hidden, "seed": 0},
        "environment": {**env, "loadavg_end": os.getloadavg()},
        "rows": {
            name: {
                "median_s": med[name], "min_s": min(times[name]), "repeats": repeats,
                "ratio_to_gradproof": med[name] / med["gradproof"],
                "median_cpu_s": med_cpu[name], "min_cpu_s": min(cpu[name]),
                "cpu_ratio_to_gradproof": med_cpu[name] / med_cpu["gradproof"],
                "max_abs_diff_exponents": float(np.max(np.abs(values[name] - ref))),
            }
            for name in ROWS
        },  # fmt: skip
        "peak_memory_bytes": memory,
        "largest_exponent": float(ref[0]),
        "smallest_exponent": float(ref[-1]),
    }
    agree = all(r["max_abs_diff_exponents"] <= AGREEMENT_ATOL for r in doc["rows"].values())
    vs_numpy = med["numpy loop"] / med["gradproof"]
    vs_torch = med["torch loop (float64)"] / med["gradproof"]
    cpu_numpy = med_cpu["numpy loop"] / med_cpu["gradproof"]
    cpu_torch = med_cpu["torch loop (float64)"] / med_cpu["gradproof"]
    mem = memory["gradproof"]
    flat = mem["T"] <= 1.25 * mem["T/5"] + 2**20
    doc["targets"] = {
        "no slower than the numpy loop": {
            "speedup": vs_numpy, "speedup_cpu": cpu_numpy, "met": vs_numpy >= 1.0 and cpu_numpy >= 1.0},
        "at least 2x faster than torch": {
            "speedup": vs_torch, "speedup_cpu": cpu_torch, "met": vs_torch >= 2.0 and cpu_torch >= 2.0},
        "memory flat in T": {"T/5": mem["T/5"], "T": mem["T"], "met": flat},
        "rows agree to 1e-8": {"met": agree},
    }
    echo(f"\nfull Lyapunov spectrum, tanh RNN, hidden {hidden}, T = {steps}, k = {hidden}")
    echo(f"{'row':24s} {'median s':>9s} {'min s':>9s} {'x gradproof':>11s} {'CPU s':>9s} {'x (CPU)':>8s} "
         f"{'max |Δλ|':>9s}")  # fmt: skip
    for name, r in doc["rows"].items():
        echo(f"{name:24s} {r['median_s']:9.3f} {r['min_s']:9.3f} {r['ratio_to_gradproof']:11.2f} "
             f"{r['median_cpu_s']:9.3f} {r['cpu_ratio_to_gradproof']:8.2f} "
             f"{r['max_abs_diff_exponents']:9.1e}")  # fmt: skip
    echo("peak traced memory (tracemalloc): " + "; ".join(
        f"{k}: {v['T/5'] / 2**20:.2f} MiB at T/5, {v['T'] / 2**20:.2f} MiB at T" for k, v in memory.items()))  # fmt: skip
    echo(f"λ1 = {ref[0]:.4f}, λS = {ref[-1]:.4f} per step")
    echo("load average (1 min) at start / end: "
         f"{env['loadavg_start'][0]:.2f} / {doc['environment']['loadavg_end'][0]:.2f} on {env['cpu_count']} CPUs")
    for k, v in doc["targets"].items():
        extra = f" ({v['speedup']:.2f}x wall, {v['speedup_cpu']:.2f}x CPU)" if "speedup" in v else ""
        echo(f"target: {k}{extra}: {'met' if v['met'] else 'NOT met'}")
    if json_path is not None:
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        echo(f"wrote {path}")
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"default {DEFAULT_JSON}")
    args = parser.parse_args(argv)
    run_benchmark(hidden=args.hidden, steps=args.steps, repeats=args.repeats, json_path=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
