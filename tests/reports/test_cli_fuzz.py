"""Fuzz the whole command line in-process: exit codes 0, 1 or 2 only, one-line errors, no
traceback, and never longer than the time budget.

Argument lists are drawn from the real options and values of every command (derive, verify,
bound, report with --no-pdf, bench --help only), valid and invalid: cells, sizes, seeds,
references, activation text, and weight files that are valid, NaN, non-square, not an array or
missing. ``benchmarks/fuzz_cli.py`` runs the same strategy for longer.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradproof.derive import CELL_NAMES
from gradproof.numeric.references import REFERENCES
from gradproof.reports.cli import main

#: The budget every fuzzed command runs under (seconds), and the slack allowed on top of it for
#: the exception to travel out and the temporary report folder to be removed.
FUZZ_LIMIT = 3.0
SLACK = 1.5

BAD_CELLS = ["lstmm", "", "RNN", "rnn_tanh", "gru-torch ", "--cell"]
ACTIVATIONS = [
    "tanh", "sigmoid", "relu", "hard_sigmoid", "identity", "TANH", "softsign", "",
    "tanh(3*x)", "sigmoid(x)/2", "x/(1+abs(x))", "tanh(x)+sin(x)", "x**2", "exp(x)", "log(x)",
    "1/x", "x^2", "x//2", "__import__('os')", "x.real", "lambda: 1", "(((((x)))))", "x**(10**10)",
    "sin(" * 30 + "x" + ")" * 30, "tanh(" * 200 + "x" + ")" * 200, "x+" * 300 + "x",
    "tanh(x)+" + "+".join(f"sin({k}*x)" for k in range(1, 40)), "1e309*x", "nan*x", "y",
]  # fmt: skip
EXPR_ALPHABET = "x+-*/() .0123456789eptanhsigmodxp,"


@dataclass(frozen=True)
class Files:
    """Input files for the fuzz, made once: name -> path (missing ones do not exist)."""

    root: Path
    weights: dict[str, str]
    models: dict[str, str]


def make_files(root: Path) -> Files:
    """Weight and model files of every kind the fuzz passes to --weights and --torch-model."""
    import torch

    root.mkdir(parents=True, exist_ok=True)
    arrays = {
        "valid": 0.5 * np.eye(3),
        "random": np.random.default_rng(14).standard_normal((4, 4)),
        "nan": np.array([[np.nan, 0.0], [0.0, 1.0]]),
        "inf": np.array([[np.inf, 0.0], [0.0, 1.0]]),
        "non-square": np.ones((2, 3)),
        "vector": np.ones(3),
        "scalar": np.float64(2.0),
        "cube": np.ones((2, 2, 2)),
        "empty": np.zeros((0, 0)),
        "int": np.eye(2, dtype=np.int64),
        "bool": np.eye(2, dtype=bool),
        "complex": np.eye(2) * (1 + 1j),
        "strings": np.array([["a", "b"], ["c", "d"]]),
        "huge-values": np.full((2, 2), 1e308),
    }
    weights: dict[str, str] = {}
    for name, value in arrays.items():
        path = root / f"W-{name}.npy"
        np.save(path, value)
        weights[name] = str(path)
    objects = root / "W-object.npy"
    np.save(objects, np.array([[{"a": 1}, None]], dtype=object), allow_pickle=True)
    weights["object"] = str(objects)
    npz = root / "W.npz"
    np.savez(npz, W=np.eye(2))
    weights["npz"] = str(npz)
    text = root / "W-text.npy"
    text.write_text("not an array\n", encoding="utf-8")
    weights["text"] = str(text)
    truncated = root / "W-truncated.npy"
    truncated.write_bytes((root / "W-valid.npy").read_bytes()[:70])
    weights["truncated"] = str(truncated)
    weights["missing"] = str(root / "nope.npy")
    weights["directory"] = str(root)

    torch.manual_seed(14)
    models: dict[str, str] = {}
    for name, module in {
        "rnn": torch.nn.RNN(2, 3),
        "lstm": torch.nn.LSTM(2, 3),
        "gru": torch.nn.GRU(2, 3),
        "two-layer": torch.nn.RNN(2, 3, num_layers=2),
    }.items():
        path = root / f"{name}.pt"
        torch.save(module.state_dict(), path)
        models[name] = str(path)
    garbage = root / "garbage.pt"
    garbage.write_bytes(b"\x00garbage" * 10)
    models["garbage"] = str(garbage)
    tensor = root / "tensor.pt"
    torch.save(torch.ones(3), tensor)
    models["tensor"] = str(tensor)
    models["npy"] = weights["valid"]
    models["missing"] = str(root / "nope.pt")
    return Files(root=root, weights=weights, models=models)


# ---- strategies ---------------------------------------------------------------------------------

cells = st.one_of(st.sampled_from(CELL_NAMES), st.sampled_from(BAD_CELLS), st.sampled_from([c.upper() for c in CELL_NAMES]))
small_int = st.one_of(st.integers(1, 4), st.integers(1, 4), st.integers(-2, 0),
                      st.sampled_from(["x", "1.5", "", "99999999999999999999", "600"]))  # fmt: skip
seed = st.one_of(st.integers(0, 2**32), st.sampled_from(["-1", "abc", "1e3"]))
references = st.one_of(st.sampled_from(tuple(REFERENCES)), st.sampled_from(["jax", "", "TORCH"]))
activation_text = st.one_of(st.sampled_from(ACTIVATIONS), st.text(EXPR_ALPHABET, max_size=40))


def _option(name: str, values: st.SearchStrategy) -> st.SearchStrategy[list[str]]:
    return st.one_of(st.just([]), values.map(lambda v: [name, str(v)]))


def _flag(name: str) -> st.SearchStrategy[list[str]]:
    return st.sampled_from([[], [name]])


def _concat(*parts: st.SearchStrategy[list[str]]) -> st.SearchStrategy[list[str]]:
    return st.tuples(*parts).map(lambda groups: [arg for group in groups for arg in group])


def _report_args(files: Files, wrong: str, cells: list[str], seed: list[str], title: list[str],
                 out: str) -> list[str]:  # fmt: skip
    args = ["report", "--no-pdf", *seed, *title, *(a for c in cells for a in ("--cells", c))]
    out_dir = str(files.root / "reports" / out)
    if wrong == "bad-cell":
        args += ["--cells", "lstmm", "--out", out_dir]
    elif wrong == "missing-model":
        args += ["--torch-model", files.models["missing"], "--out", out_dir]
    elif wrong == "out-is-file":
        args += ["--out", files.weights["valid"]]
    elif wrong == "out-not-report":
        args += ["--out", str(files.root)]  # holds the fuzz's files: not a report, refused
    else:  # a .npy file as the model: rejected before any section is built (cmd_report)
        args += ["--torch-model", files.weights["valid"], "--out", out_dir]
    return args


def argument_lists(files: Files) -> st.SearchStrategy[list[str]]:
    """Argument lists for ``reports.cli.main``: every command with real and broken values."""
    derive = _concat(st.just(["derive"]), st.one_of(cells.map(lambda c: [c]), st.just([])),
                     _flag("--latex"), _flag("--no-steps"))  # fmt: skip
    verify = _concat(
        st.just(["verify"]),
        st.lists(cells.map(lambda c: ["--cell", c]), max_size=2).map(lambda g: [a for x in g for a in x]),
        _option("--hidden", small_int),
        _option("--inputs", small_int),
        _option("--steps", small_int),
        _option("--seed", seed),
        _option("--reference", references),
        _flag("--json"),
    )
    weights = st.sampled_from(sorted(files.weights)).map(lambda k: files.weights[k])
    models = st.sampled_from(sorted(files.models)).map(lambda k: files.models[k])
    bound = _concat(
        st.just(["bound"]),
        _option("--activation", activation_text),
        st.one_of(
            weights.map(lambda p: ["--weights", p]),
            models.map(lambda p: ["--torch-model", p]),
            st.just([]),
            st.tuples(weights, models).map(lambda t: ["--weights", t[0], "--torch-model", t[1]]),
        ),
        _flag("--json"),
    )
    outs = st.sampled_from(["out-a", "out-b", "", "W-valid.npy", "."]).map(
        lambda name: str(files.root / "reports" / name) if name not in ("", "W-valid.npy") else
        (name if not name else files.weights["valid"])
    )  # fmt: skip
    # Every report list holds one thing wrong: a valid report takes longer than the fuzz budget,
    # and stopping it halfway in-process can leave matplotlib's lazily built state broken for
    # the next example (the real CLI is one process per run). The slow kill test in
    # test_output.py runs real reports.
    wrong = st.sampled_from(["bad-cell", "missing-model", "out-is-file", "out-not-report", "npy-model"])
    report = st.tuples(
        wrong,
        st.lists(st.sampled_from(CELL_NAMES), max_size=2),
        _option("--seed", seed),
        _option("--title", st.sampled_from(["A", "$\\", "x" * 300])),
        st.sampled_from(["out-a", "out-b"]),
    ).map(lambda t: _report_args(files, *t))
    bench = st.just(["bench", "--help"])
    junk = st.lists(st.sampled_from(["--bogus", "-x", "--", "--help", "extra", "--json"]), max_size=2)
    commands = {"derive": derive, "verify": verify, "bound": bound, "report": report, "bench": bench,
                "none": st.just([]), "unknown": st.just(["nosuchcommand"])}  # fmt: skip
    weights_of = ["derive", "verify", "verify", "bound", "bound", "bound", "report", "bench", "none", "unknown"]
    command = st.sampled_from(weights_of).flatmap(lambda name: commands[name])
    prefix = st.one_of(st.just([]), st.just([]), st.just([]),
                       st.sampled_from(["0.5", "x", "-1", "nan"]).map(lambda v: ["--time-limit", v]))  # fmt: skip
    return st.tuples(prefix, command, junk).map(lambda t: t[0] + t[1] + t[2])


# ---- running one argument list ------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    argv: tuple[str, ...]
    code: int
    seconds: float
    stdout: str
    stderr: str


def run_cli(argv: Sequence[str], *, limit: float = FUZZ_LIMIT) -> Outcome:
    """Run ``reports.cli.main`` in-process with the fuzz budget; capture everything."""
    args = list(argv)
    if "--time-limit" not in args[:1]:
        args = ["--time-limit", f"{limit:g}", *args]
    out, err = io.StringIO(), io.StringIO()
    start = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # warnings are not what is fuzzed here; errors are
        try:
            code = main(args)
        except SystemExit as exc:  # pragma: no cover - main must not exit; recorded if it does
            code = exc.code if isinstance(exc.code, int) else -1
        except BaseException as exc:  # noqa: BLE001 - recorded as a crash
            import traceback

            err.write("Traceback (uncaught in main)\n" + "".join(traceback.format_exception(exc)))
            code = -1
    return Outcome(tuple(argv), code, time.monotonic() - start, out.getvalue(), err.getvalue())


def problems(outcome: Outcome, *, limit: float = FUZZ_LIMIT) -> list[str]:
    """What is wrong with one outcome (empty when it keeps the CLI's contract)."""
    found = []
    if outcome.code not in (0, 1, 2):
        found.append(f"exit code {outcome.code}")
    if "Traceback" in outcome.stderr or "Traceback" in outcome.stdout:
        found.append("traceback")
    if outcome.code == 2:
        errors = [line for line in outcome.stderr.splitlines() if "error" in line]
        if len(errors) != 1 or not outcome.stderr.rstrip("\n").endswith(errors[0] if errors else "\0"):
            found.append(f"error not one final line: {outcome.stderr[-500:]!r}")
    bound = (0.5 if "--time-limit" in outcome.argv[:1] and outcome.argv[1] == "0.5" else limit) + SLACK
    if outcome.seconds > bound:
        found.append(f"took {outcome.seconds:.1f} s (> {bound:.1f} s)")
    return found


# ---- the test -----------------------------------------------------------------------------------

_WARM: list[bool] = []


def warm_up() -> None:
    """Import what the commands import lazily (torch, torch.func, ...) before the clock runs:
    under load a first import of torch alone can outlast the fuzz budget. Once per process."""
    if _WARM:
        return
    _WARM.append(True)
    for reference in REFERENCES:
        run_cli(["verify", "--cell", "lstm", "--hidden", "1", "--inputs", "1", "--steps", "1",
                 "--reference", reference], limit=0)  # fmt: skip
    run_cli(["bound", "--torch-model", _FILES.models["gru"]], limit=0)


_FILES = make_files(Path(tempfile.mkdtemp(prefix="gradproof-fuzz-")))


@settings(max_examples=200, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])  # fmt: skip
@given(argument_lists(_FILES))
def test_cli_keeps_its_contract_on_any_arguments(argv: list[str]) -> None:
    warm_up()
    outcome = run_cli(argv)
    assert problems(outcome) == [], (argv, outcome.code, outcome.stderr[-2000:])


def test_the_fuzz_files_are_what_they_say() -> None:
    assert np.load(_FILES.weights["valid"]).shape == (3, 3)
    assert np.isnan(np.load(_FILES.weights["nan"])).any()
    assert not Path(_FILES.weights["missing"]).exists()
    ok = run_cli(["bound", "--activation", "tanh", "--weights", _FILES.weights["valid"], "--json"], limit=30)
    assert ok.code == 0 and '"eta": 0.5' in ok.stdout
    for kind in ("nan", "non-square", "text", "missing", "object"):
        bad = run_cli(["bound", "--activation", "tanh", "--weights", _FILES.weights[kind]], limit=30)
        assert bad.code == 2 and problems(bad, limit=30) == [], (kind, bad.stderr)
