"""Benchmark: checking a 64-unit LSTM's full BPTT gradient over 100 steps with gradproof.

The user's code is a hand-written numpy LSTM (stacked gates i, f, g, o as in ``torch.nn.LSTM``;
Hochreiter & Schmidhuber 1997) and its one-step VJP; the timed call is
:func:`gradproof.numeric.testing.check_recurrent_backward`, which runs BPTT with that VJP for a
random linear loss on the states and checks every step's VJP and the totals ∂loss/∂params,
∂loss/∂s0 against the complex-step reference through the forward step. Also timed, for scale:
the user's own forward + BPTT alone, the same check with the Richardson reference, and the
check of a planted bug up to its message (the failing parameter's entries computed one by one).

Run from the repository root::

    python -m benchmarks.bench_gradcheck [--hidden 64] [--inputs 32] [--steps 100] [--repeats 5] [--json PATH]

Target: the complex-step check's median under 2 s.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from gradproof.numeric.testing import check_recurrent_backward
from benchmarks._results import write_json

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "gradcheck.json"
TARGET_S = 2.0


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def lstm_step(p, s, x):
    h, c = s
    n = h.shape[0]
    z = p["W"] @ h + p["U"] @ x + p["b"]
    i, f, g, o = sigmoid(z[:n]), sigmoid(z[n : 2 * n]), np.tanh(z[2 * n : 3 * n]), sigmoid(z[3 * n :])
    c_next = f * c + i * g
    return o * np.tanh(c_next), c_next


def lstm_step_backward(p, s, x, grads):
    (h, c), (gh, gc) = s, grads
    n = h.shape[0]
    z = p["W"] @ h + p["U"] @ x + p["b"]
    i, f, g, o = sigmoid(z[:n]), sigmoid(z[n : 2 * n]), np.tanh(z[2 * n : 3 * n]), sigmoid(z[3 * n :])
    tc = np.tanh(f * c + i * g)
    dc = gc + gh * o * (1 - tc**2)
    dz = np.concatenate([dc * g * i * (1 - i), dc * c * f * (1 - f), dc * i * (1 - g**2), gh * tc * o * (1 - o)])
    return (p["W"].T @ dz, dc * f), {"W": np.outer(dz, h), "U": np.outer(dz, x), "b": dz}


def lstm_step_backward_wrong(p, s, x, grads):
    """The same VJP with tanh'(z_g) written 1 - g instead of 1 - g² (a planted bug)."""
    (h, c), (gh, gc) = s, grads
    n = h.shape[0]
    z = p["W"] @ h + p["U"] @ x + p["b"]
    i, f, g, o = sigmoid(z[:n]), sigmoid(z[n : 2 * n]), np.tanh(z[2 * n : 3 * n]), sigmoid(z[3 * n :])
    tc = np.tanh(f * c + i * g)
    dc = gc + gh * o * (1 - tc**2)
    dz = np.concatenate([dc * g * i * (1 - i), dc * c * f * (1 - f), dc * i * (1 - g), gh * tc * o * (1 - o)])
    return (p["W"].T @ dz, dc * f), {"W": np.outer(dz, h), "U": np.outer(dz, x), "b": dz}


def failing_check(p, xs, s0) -> str:
    try:
        check_recurrent_backward(lstm_step, lstm_step_backward_wrong, p, xs, s0)
    except AssertionError as e:
        return str(e)
    raise RuntimeError("the planted bug was not caught")


def problem(hidden: int, inputs: int, steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    k = 1 / np.sqrt(hidden)
    p = {
        "W": rng.uniform(-k, k, (4 * hidden, hidden)),
        "U": rng.uniform(-k, k, (4 * hidden, inputs)),
        "b": rng.uniform(-k, k, 4 * hidden),
    }
    xs = rng.standard_normal((steps, inputs))
    s0 = (0.1 * rng.standard_normal(hidden), 0.1 * rng.standard_normal(hidden))
    return p, xs, s0


def users_bptt(p, xs, s0):
    states = [s0]
    for x in xs:
        states.append(lstm_step(p, states[-1], x))
    g = (np.ones_like(s0[0]), np.zeros_like(s0[1]))
    total = {k: np.zeros_like(v) for k, v in p.items()}
    for t in range(len(xs) - 1, -1, -1):
        gs, gp = lstm_step_backward(p, states[t], xs[t], g)
        for k in total:
            total[k] += gp[k]
        g = (gs[0] + 1.0, gs[1])
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--inputs", type=int, default=32)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path, default=DEFAULT_JSON)
    a = ap.parse_args(argv)
    p, xs, s0 = problem(a.hidden, a.inputs, a.steps)
    n_params = sum(v.size for v in p.values())
    rows = {
        "check_recurrent_backward (complex step)": lambda: check_recurrent_backward(
            lstm_step, lstm_step_backward, p, xs, s0, method="complex-step"),
        "check_recurrent_backward (auto: detects complex step)": lambda: check_recurrent_backward(
            lstm_step, lstm_step_backward, p, xs, s0),
        "check_recurrent_backward (Richardson)": lambda: check_recurrent_backward(
            lstm_step, lstm_step_backward, p, xs, s0, method="richardson"),
        "a planted bug (tanh' as 1 - g): the failure message": lambda: failing_check(p, xs, s0),
        "the user's forward + BPTT alone": lambda: users_bptt(p, xs, s0),
    }  # fmt: skip
    load0 = os.getloadavg()
    times: dict[str, list[float]] = {k: [] for k in rows}
    for fn in rows.values():
        fn()  # warm-up (and the check must pass)
    for _ in range(a.repeats):  # round-robin, so a change of load hits every row alike
        for name, fn in rows.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    load1 = os.getloadavg()
    print(f"LSTM hidden {a.hidden}, inputs {a.inputs}, T = {a.steps}, {n_params} parameters, {a.repeats} repeats")
    print(f"{'row':<56} {'median s':>9} {'min s':>9}")
    print("-" * 76)
    result_rows = []
    for name, ts in times.items():
        med, mn = statistics.median(ts), min(ts)
        print(f"{name:<56} {med:9.4f} {mn:9.4f}")
        result_rows.append({"row": name, "median_s": med, "min_s": mn, "times_s": ts})
    main_median = statistics.median(times["check_recurrent_backward (complex step)"])
    met = main_median < TARGET_S
    print(f"\ntarget: complex-step check median {main_median:.3f} s < {TARGET_S} s: {'met' if met else 'NOT met'}")
    print("the planted bug's message starts:", failing_check(p, xs, s0)[:160], "...")
    print(f"load average {load0[0]:.1f} at the start, {load1[0]:.1f} at the end")
    out = {
        "benchmark": "gradcheck",
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "hidden": a.hidden, "inputs": a.inputs, "steps": a.steps, "parameters": n_params,
        "repeats": a.repeats, "rows": result_rows, "target_s": TARGET_S, "target_met": met,
        "python": sys.version.split()[0], "numpy": np.__version__, "platform": platform.platform(),
        "loadavg_start": load0, "loadavg_end": load1,
    }  # fmt: skip
    write_json(a.json, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
