"""Benchmark: the full gradient-norm profile of a tanh RNN, gradproof against torch and numpy.

The quantity is the spectral norm of ∂h_T/∂h_k for every k = 0..T-1 (docs/math.md §1), for a tanh RNN
``h_t = tanh(W_h h_{t-1} + W_x x_t + b)`` with hidden 128, inputs 16, T = 512 and a seeded random
``W_h`` of spectral norm exactly 1. Every row is timed side by side in one run, round-robin (so a
change of machine load hits every row alike), after one warm-up; the table reports the median and
the minimum of ``--repeats`` runs and the ratio to the numpy floor. The rows must agree: the
largest relative difference of the spectral norms against gradproof is printed per row.

Run from the repository root::

    python -m benchmarks.bench_profile [--hidden 128] [--steps 512] [--repeats 5] [--json PATH]

``gradproof bench`` runs the same code (it loads this file from the source checkout).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gradproof.numeric.profile import log_norm_profile_rnn

__all__ = ["DEFAULT_JSON", "Problem", "make_problem", "run_benchmark", "main"]

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "profile.json"
AGREEMENT_RTOL = 1e-8
Echo = Callable[[str], None]


# --------------------------------------------------------------------------------------------
# The problem
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """A seeded tanh RNN and its inputs.

    ``W: (n, n)`` with ‖W‖₂ = 1, ``U: (n, m)``, ``b: (n,)``, ``xs: (T, m)``; h_0 = 0.
    """

    W: np.ndarray
    U: np.ndarray
    b: np.ndarray
    xs: np.ndarray
    seed: int

    @property
    def hidden(self) -> int:
        return int(self.W.shape[0])

    @property
    def steps(self) -> int:
        return int(self.xs.shape[0])

    @property
    def inputs(self) -> int:
        return int(self.xs.shape[1])


def make_problem(
    *, hidden: int = 128, steps: int = 512, inputs: int = 16, seed: int = 0
) -> Problem:
    """Random weights (W_h scaled to spectral norm 1), small biases, standard normal inputs."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((hidden, hidden))
    W = a / np.linalg.norm(a, 2)  # noqa: N806
    U = rng.standard_normal((hidden, inputs)) / math.sqrt(inputs)  # noqa: N806
    b = 0.1 * rng.standard_normal(hidden)
    xs = rng.standard_normal((steps, inputs))
    return Problem(W=W, U=U, b=b, xs=xs, seed=seed)


# --------------------------------------------------------------------------------------------
# numpy rows
# --------------------------------------------------------------------------------------------


def numpy_forward(pb: Problem) -> np.ndarray:
    """``d: (T, n)`` with ``d[t-1] = 1 - h_t²`` = tanh'(z_t), by a plain numpy loop."""
    pre = pb.xs @ pb.U.T + pb.b  # (T, n): W_x x_t + b for t = 1..T
    h = np.zeros(pb.hidden)
    d = np.empty((pb.steps, pb.hidden))
    for t in range(pb.steps):
        h = np.tanh(pb.W @ h + pre[t])
        d[t] = 1.0 - h * h
    return d


def gradproof_rnn(pb: Problem) -> np.ndarray:
    """Forward pass + :func:`numeric.profile.log_norm_profile_rnn`; returns log-norms (T,)."""
    return log_norm_profile_rnn(numpy_forward(pb), pb.W).log_spectral


def numpy_floor(pb: Problem) -> np.ndarray:
    """Forward pass, the row-scaled chain P ← (P D_k) W, and ``np.linalg.norm(P, 2)`` per k."""
    d = numpy_forward(pb)
    out = np.empty(pb.steps)
    P = np.eye(pb.hidden)  # noqa: N806
    for k in range(pb.steps - 1, -1, -1):
        P = (P * d[k]) @ pb.W  # noqa: N806
        out[k] = np.linalg.norm(P, 2)
    return out


def _gradient_profile_api() -> Callable[[Problem], np.ndarray] | str:
    """The lead's ``numeric.gradient_profile`` if it exists, else the reason it is unavailable."""
    try:
        from gradproof.derive import RNN
        from gradproof.numeric import gradient_profile
    except ImportError as exc:
        return f"unavailable ({exc})"
    cell = RNN(activation="tanh")

    def run(pb: Problem) -> np.ndarray:
        params = {"W_h": pb.W, "W_x": pb.U, "b": pb.b}
        return np.asarray(gradient_profile(cell, params, pb.xs).log_spectral)

    return run


# --------------------------------------------------------------------------------------------
# torch rows
# --------------------------------------------------------------------------------------------


def _torch_tensors(pb: Problem):  # noqa: ANN202 - torch is imported lazily
    import torch

    as_t = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    return as_t(pb.W), as_t(pb.U), as_t(pb.b), as_t(pb.xs)


def torch_jacrev_per_t(pb: Problem) -> np.ndarray:
    """As a user would write it: for each k, ``jacrev`` of h_k ↦ h_T, then ``matrix_norm(J, 2)``."""
    import torch
    from torch.func import jacrev

    W, U, b, xs = _torch_tensors(pb)  # noqa: N806
    T = pb.steps  # noqa: N806
    with torch.no_grad():
        hs = [torch.zeros(pb.hidden, dtype=torch.float64)]
        for t in range(T):
            hs.append(torch.tanh(W @ hs[-1] + U @ xs[t] + b))
    out = torch.empty(T, dtype=torch.float64)
    for k in range(T):

        def h_T_of_h_k(h: torch.Tensor, k: int = k) -> torch.Tensor:  # noqa: N802
            for t in range(k, T):
                h = torch.tanh(W @ h + U @ xs[t] + b)
            return h

        out[k] = torch.linalg.matrix_norm(jacrev(h_T_of_h_k)(hs[k]), 2)
    return out.numpy()


def _torch_jacobians(pb: Problem):  # noqa: ANN202
    """All ∂h_T/∂h_k at once: one forward pass with zero perturbations ε_k added to h_k.

    ``jacrev`` with respect to a TUPLE of T separate (n,) tensors; one (T, n) tensor is
    quadratic in T (each index's backward scatters into a (T, n) zero tensor, under vmap).
    Returns ``(T, n, n)``.
    """
    import torch
    from torch.func import jacrev

    W, U, b, xs = _torch_tensors(pb)  # noqa: N806
    pre = (xs @ U.T + b).unbind(0)
    T = pb.steps  # noqa: N806
    h0 = torch.zeros(pb.hidden, dtype=torch.float64)

    def h_T(eps: tuple[torch.Tensor, ...]) -> torch.Tensor:  # noqa: N802
        h = h0 + eps[0]
        for t in range(T):
            h = torch.tanh(W @ h + pre[t])
            if t + 1 < T:
                h = h + eps[t + 1]
        return h

    eps = tuple(torch.zeros(pb.hidden, dtype=torch.float64) for _ in range(T))
    return torch.stack(jacrev(h_T)(eps))


def torch_jacrev_tuple_svdvals(pb: Problem) -> np.ndarray:
    import torch

    return torch.linalg.svdvals(_torch_jacobians(pb))[..., 0].numpy()


def torch_jacrev_tuple_matrix_norm(pb: Problem) -> np.ndarray:
    import torch

    return torch.linalg.matrix_norm(_torch_jacobians(pb), 2).numpy()


def torch_jacrev_tuple_gram_eigvalsh(pb: Problem) -> np.ndarray:
    """Largest eigenvalue of the Gram matrix. Each J is first divided by its Frobenius norm:
    unscaled, J Jᵀ underflows to 0 once ‖J‖ < 1e-154 (it reaches 1e-228 at T = 512)."""
    import torch

    J = _torch_jacobians(pb)  # noqa: N806
    scale = torch.linalg.matrix_norm(J, "fro")[:, None, None]
    Js = J / scale  # noqa: N806
    return (torch.linalg.eigvalsh(Js @ Js.mT)[..., -1].sqrt() * scale[:, 0, 0]).numpy()


def torch_hand_chain_svdvals(pb: Problem) -> np.ndarray:
    """No autodiff: the chain (P D_k) W written by hand in torch, then batched ``svdvals``."""
    import torch

    W, U, b, xs = _torch_tensors(pb)  # noqa: N806
    T, n = pb.steps, pb.hidden  # noqa: N806
    with torch.no_grad():
        pre = xs @ U.T + b
        h = torch.zeros(n, dtype=torch.float64)
        d = torch.empty(T, n, dtype=torch.float64)
        for t in range(T):
            h = torch.tanh(W @ h + pre[t])
            d[t] = 1.0 - h * h
        P = torch.empty(T, n, n, dtype=torch.float64)  # noqa: N806
        m = torch.eye(n, dtype=torch.float64)
        for k in range(T - 1, -1, -1):
            m = (m * d[k]) @ W
            P[k] = m
        return torch.linalg.svdvals(P)[..., 0].numpy()


TORCH_VARIANTS: dict[str, Callable[[Problem], np.ndarray]] = {
    "jacrev(ε tuple) + svdvals": torch_jacrev_tuple_svdvals,
    "jacrev(ε tuple) + matrix_norm(2)": torch_jacrev_tuple_matrix_norm,
    "jacrev(ε tuple) + eigvalsh(J Jᵀ)": torch_jacrev_tuple_gram_eigvalsh,
    "hand-written chain (no autodiff) + svdvals": torch_hand_chain_svdvals,
}


# --------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------


@dataclass
class _Row:
    name: str
    fn: Callable[[Problem], np.ndarray]
    returns_log: bool = False
    budget_s: float | None = None  # one run only if the first run took longer than this
    times: list[float] | None = None
    log_norms: np.ndarray | None = None
    note: str = ""

    def run_once(self, pb: Problem) -> None:
        start = time.perf_counter()
        out = self.fn(pb)
        elapsed = time.perf_counter() - start
        self.times = [*(self.times or []), elapsed]
        if self.log_norms is None:
            with np.errstate(divide="ignore"):
                self.log_norms = np.asarray(out) if self.returns_log else np.log(np.asarray(out))

    def wants_more(self, repeats: int) -> bool:
        done = len(self.times or [])
        if done >= repeats:
            return False
        times = self.times or []
        return self.budget_s is None or not times or times[0] < self.budget_s


def _rel_diff(logs: np.ndarray, ref_logs: np.ndarray) -> float:
    """max_k |x_k / y_k - 1| computed from the logs (no underflow for long horizons)."""
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(np.expm1(logs - ref_logs))
    both_zero = (logs == -np.inf) & (ref_logs == -np.inf)
    return float(np.max(np.where(both_zero, 0.0, np.where(np.isnan(diff), np.inf, diff))))


def _environment() -> dict[str, object]:
    import torch

    blas_env = {
        k: v for k, v in sorted(os.environ.items()) if k.startswith(("OPENBLAS", "OMP_", "MKL_"))
    }
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_num_threads": torch.get_num_threads(),
        "blas_env": blas_env,
        "loadavg_at_start": list(os.getloadavg()),
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def run_benchmark(
    *,
    hidden: int = 128,
    steps: int = 512,
    repeats: int = 5,
    json_path: Path | str | None = DEFAULT_JSON,
    inputs: int = 16,
    seed: int = 0,
    naive_budget: float = 120.0,
    echo: Echo = print,
) -> dict[str, object]:
    """Time every row side by side, check that they agree, print a table, write JSON.

    ``naive_budget``: the O(T²) ``jacrev`` per t row always runs at the full T; if its first
    run takes longer than this many seconds it is not repeated, and the table says so.
    Returns the JSON document as a dict.
    """
    if hidden < 1 or steps < 1 or repeats < 1:
        raise ValueError(f"hidden, steps and repeats must be ≥ 1; got {hidden}, {steps}, {repeats}")
    env = _environment()
    pb = make_problem(hidden=hidden, steps=steps, inputs=inputs, seed=seed)
    echo(
        f"gradient-norm profile of a tanh RNN: hidden={hidden}, inputs={inputs}, T={steps}, "
        f"seed={seed}, repeats={repeats}"
    )
    echo(
        f"threads: torch.get_num_threads()={env['torch_num_threads']}, "
        f"cpu_count={env['cpu_count']},"
        f" BLAS env={env['blas_env'] or '{}'}, loadavg={env['loadavg_at_start']}"
    )

    rows = [_Row("gradproof", gradproof_rnn, returns_log=True)]
    api = _gradient_profile_api()
    if isinstance(api, str):
        api_note = api
        echo(f"row 'gradproof (gradient_profile API)': {api}")
    else:
        api_note = ""
        rows.append(_Row("gradproof (gradient_profile API)", api, returns_log=True))
    naive = _Row("torch jacrev per t", torch_jacrev_per_t, budget_s=naive_budget)
    variants = [_Row(f"torch: {name}", fn) for name, fn in TORCH_VARIANTS.items()]
    floor = _Row("numpy floor", numpy_floor)
    timed = [*rows, naive, *variants, floor]

    # Warm-up once (imports, torch.func tracing caches, BLAS buffers). The naive row is warmed
    # up on a 2-step problem: warming it at full T would cost as much as a measurement.
    small = make_problem(hidden=hidden, steps=min(steps, 2), inputs=inputs, seed=seed)
    for row in timed:
        try:
            row.fn(small if row is naive else pb)
        except Exception as exc:  # noqa: BLE001 - a broken optional row must not stop the run
            row.note = f"failed: {type(exc).__name__}: {exc}"
    timed = [row for row in timed if not row.note]
    for round_ in range(repeats):
        for row in timed:
            if row.wants_more(repeats):
                if round_ == 0 and row is naive:
                    echo(f"timing '{row.name}' (O(T²) work, can take minutes) ...")
                row.run_once(pb)
        echo(f"round {round_ + 1}/{repeats} done")

    ref = rows[0].log_norms
    assert ref is not None
    median = {row.name: statistics.median(row.times or [math.nan]) for row in timed}
    floor_median = median["numpy floor"]
    fastest = min(variants, key=lambda r: median.get(r.name, math.inf))
    fastest_name = fastest.name.removeprefix("torch: ")
    agree = True
    results = []
    for row in [*rows, naive, *variants, floor]:
        entry: dict[str, object] = {"name": row.name, "note": row.note}
        if row.times:
            diff = _rel_diff(row.log_norms, ref)  # type: ignore[arg-type]
            agree &= diff <= AGREEMENT_RTOL
            entry.update(
                median_s=median[row.name],
                min_s=min(row.times),
                repeats=len(row.times),
                times_s=row.times,
                ratio_to_floor=median[row.name] / floor_median,
                gradproof_speedup=median[row.name] / median["gradproof"],
                max_rel_diff_vs_gradproof=diff,
            )
            if row is naive and len(row.times) < repeats:
                entry["note"] = (
                    f"measured at the full T = {steps} on {len(row.times)} repeat(s) only "
                    f"(one run took {min(row.times):.0f} s > {naive_budget:.0f} s)"
                )
        results.append(entry)
    if api_note:
        results.insert(1, {"name": "gradproof (gradient_profile API)", "note": api_note})

    gp = median["gradproof"]
    torch_fastest = median.get(fastest.name, math.nan) / gp
    naive_ratio = median.get(naive.name, math.nan) / gp  # nan (target missed) if it failed
    targets = {
        "gradproof no slower than the numpy floor": (gp / floor_median, "≤ 1", gp <= floor_median),
        "gradproof ≥ 1.5x faster than torch fastest": (
            torch_fastest,
            "≥ 1.5",
            torch_fastest >= 1.5,
        ),
        "gradproof ≥ 30x faster than jacrev per t": (naive_ratio, "≥ 30", naive_ratio >= 30),
    }
    env["loadavg_at_end"] = list(os.getloadavg())
    doc: dict[str, object] = {
        "benchmark": "gradient-norm profile, spectral norm of dh_T/dh_k for all k, tanh RNN",
        "problem": {
            "hidden": hidden,
            "inputs": inputs,
            "steps": steps,
            "seed": seed,
            "W_h_spectral_norm": 1.0,
        },
        "repeats": repeats,
        "environment": env,
        "rows": results,
        "torch_fastest": fastest_name,
        "agreement": {"rtol": AGREEMENT_RTOL, "all_agree": bool(agree)},
        "targets": {
            k: {"measured": v[0], "target": v[1], "met": bool(v[2])} for k, v in targets.items()
        },
    }
    _print_table(doc, fastest.name, echo)
    if json_path is not None:
        path = Path(json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        echo(f"wrote {path}")
    return doc


def _print_table(doc: dict[str, object], fastest: str, echo: Echo) -> None:
    header = (
        f"{'row':<62} {'median s':>9} {'min s':>9} {'reps':>4} {'x floor':>8} "
        f"{'gp speedup':>10} {'max rel diff':>12}"
    )
    echo("")
    echo(header)
    echo("-" * len(header))
    for entry in doc["rows"]:  # type: ignore[union-attr]
        name = str(entry["name"])
        label = ("torch fastest = " + name.removeprefix("torch: ")) if name == fastest else name
        if "median_s" not in entry:
            note = str(entry["note"])
            echo(f"{label:<62} {note if len(note) <= 110 else note[:107] + '...'}")
            continue
        echo(
            f"{label[:62]:<62} {entry['median_s']:>9.4g} {entry['min_s']:>9.4g} "
            f"{entry['repeats']:>4d} {entry['ratio_to_floor']:>8.3f} "
            f"{entry['gradproof_speedup']:>9.1f}x {entry['max_rel_diff_vs_gradproof']:>12.1e}"
        )
        if entry["note"]:
            echo(f"{'':<4}note: {entry['note']}")
    agreement = doc["agreement"]  # type: ignore[index]
    verdict = "all rows agree" if agreement["all_agree"] else "ROWS DISAGREE"
    echo(
        f"\nagreement: {verdict} "
        f"(max relative difference of spectral norms ≤ {agreement['rtol']:.0e})"
    )
    echo("targets (ratios of medians in this run):")
    for name, t in doc["targets"].items():  # type: ignore[union-attr]
        echo(
            f"  {name}: {t['measured']:.2f} (target {t['target']}) "
            f"{'met' if t['met'] else 'MISSED'}"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench_profile", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--steps", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--inputs", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--naive-budget",
        type=float,
        default=120.0,
        help="if one jacrev-per-t run takes longer (seconds), it is not repeated (default 120)",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help=f"default {DEFAULT_JSON}")
    args = parser.parse_args(argv)
    run_benchmark(
        hidden=args.hidden,
        steps=args.steps,
        repeats=args.repeats,
        json_path=args.json,
        inputs=args.inputs,
        seed=args.seed,
        naive_budget=args.naive_budget,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
