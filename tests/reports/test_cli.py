"""The command line: derive and verify, and the one-line error contract."""

from __future__ import annotations

import json

import pytest

from gradproof.derive import CELL_NAMES
from gradproof.reports.cli import main


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", CELL_NAMES)
def test_derive_prints_equations_and_the_step_jacobian(capsys, name):
    code, out, err = run(capsys, "derive", name)
    assert code == 0 and err == ""
    assert "equations" in out and "step Jacobian:" in out and "input Jacobian:" in out
    assert "diag(" in out


def test_derive_lstm_text_matches_math_md_blocks(capsys):
    # docs/math.md §3: ∂c_t/∂c_{t-1} = D(f_t)
    code, out, _ = run(capsys, "derive", "lstm")
    assert code == 0
    assert "∂c(t)/∂c(t-1) = diag(f(t))" in out


def test_derive_latex(capsys):
    code, out, _ = run(capsys, "derive", "gru", "--latex")
    assert code == 0
    assert r"\operatorname{diag}" in out and r"\odot" in out and "W_{u}" in out


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["derive", "lstmm"], id="unknown-cell"),
        pytest.param(["derive", "lstm", "--bogus"], id="unknown-option"),
        pytest.param(["derive"], id="missing-cell"),
        pytest.param(["verify", "--cell", "nope"], id="verify-unknown-cell"),
        pytest.param(["verify", "--hidden", "0"], id="verify-hidden-zero"),
        pytest.param(["verify", "--steps", "x"], id="verify-steps-not-int"),
        pytest.param(["verify", "--reference", "jax"], id="verify-unknown-reference"),
        pytest.param(["report", "--torch-model", "/nonexistent/model.pt", "--no-pdf"], id="report-missing-model"),
        pytest.param(["nosuchcommand"], id="unknown-command"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, args):
    code, out, err = run(capsys, *args)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "error" in lines[0]


def test_unknown_cell_names_the_valid_choices(capsys):
    _, _, err = run(capsys, "derive", "lstmm")
    for name in CELL_NAMES:
        assert name in err


def test_verify_passes_and_prints_a_table(capsys):
    code, out, _ = run(capsys, "verify", "--cell", "lstm", "--cell", "gru-torch", "--steps", "4", "--hidden", "3")
    assert code == 0
    assert "dc/dc" in out and "forget gate f" in out and "all within tolerance" in out


def test_verify_json_with_complex_step(capsys):
    code, out, _ = run(capsys, "verify", "--cell", "gru", "--steps", "3", "--reference", "complex-step", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["ok"] is True
    checks = data["cells"][0]["checks"]
    assert {c["quantity"] for c in checks} >= {"step Jacobian", "input Jacobian", "dJ/dW_u"}
    assert max(c["max_rel"] for c in checks) < 1e-10


def test_verify_torch_nn_skips_cells_without_a_module(capsys):
    code, out, _ = run(capsys, "verify", "--cell", "gru", "--cell", "lstm", "--steps", "3", "--reference", "torch.nn")
    assert code == 0
    assert "gru: skipped" in out


def test_verify_exit_1_when_a_quantity_is_out_of_tolerance(capsys, monkeypatch):
    # A reference that is wrong by 1e-6 on the step Jacobians: verify must say so and exit 1.
    from gradproof.numeric import references

    class Shifted(references.ComplexStepReference):
        name = "complex-step"

        def step_jacobians(self, *a, **k):
            return super().step_jacobians(*a, **k) * (1 + 1e-6)

    monkeypatch.setitem(references.REFERENCES, "complex-step", Shifted)
    code, out, _ = run(capsys, "verify", "--cell", "rnn-tanh", "--steps", "3", "--reference", "complex-step")
    assert code == 1
    assert "FAILED" in out and "step Jacobian" in out


def test_help_lists_every_command(capsys):
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for name in ("derive", "verify", "bound", "report", "bench"):
        assert name in out


# ---- help summaries and the time budget (issue 14) --------------------------------------------


def test_every_help_summary_is_a_whole_sentence(capsys):
    import click

    from gradproof.reports.cli import cli

    code, out, _ = run(capsys, "--help")
    assert code == 0
    rows = out.split("Commands:\n", 1)[1].splitlines()
    summaries: dict[str, str] = {}
    for row in rows:  # "  name    summary", continuation lines only indented
        parts = row.split(maxsplit=1)
        if row.startswith("  ") and not row.startswith("   ") and len(parts) == 2:
            summaries[parts[0]] = parts[1]
        elif parts and summaries:
            last = list(summaries)[-1]
            summaries[last] += " " + " ".join(parts)
    assert set(summaries) == set(cli.commands)
    for name, summary in summaries.items():
        command = cli.commands[name]
        assert isinstance(command, click.Command)
        assert summary == command.short_help, name  # set explicitly, printed uncut
        assert summary.endswith(".") and not summary.endswith(("...", "et al.")), summary
        assert len(summary.split()) >= 5 and summary[0].isupper(), summary
    assert summaries["bound"].startswith("Pascanu et al. (2013) regime")


def test_a_costly_command_stops_with_one_line(capsys, monkeypatch):
    import time as _time

    from gradproof.reports import cmd_derive

    def slow(*args, **kwargs):
        while True:  # a stand-in for SymPy working on a costly expression
            _time.sleep(0.001)

    monkeypatch.setattr(cmd_derive, "render", slow)
    run(capsys, "--help")  # the commands' modules imported before the clock starts
    start = _time.monotonic()
    code, out, err = run(capsys, "--time-limit", "0.3", "derive", "lstm")
    elapsed = _time.monotonic() - start
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("gradproof derive: error: stopped after 0.3 s: this input is too costly")
    assert "--time-limit SECONDS" in err and "GRADPROOF_TIME_LIMIT" in err
    assert 0.3 <= elapsed < 1.5


def test_a_swallowed_alarm_fires_again(capsys, monkeypatch):
    import time as _time

    from gradproof.reports import cmd_derive

    swallowed = []

    def careless(*args, **kwargs):
        while True:
            try:
                while True:
                    _time.sleep(0.001)
            except Exception as exc:  # noqa: BLE001 - as some libraries do
                swallowed.append(exc)
                if len(swallowed) > 1:
                    raise

    monkeypatch.setattr(cmd_derive, "render", careless)
    code, _, err = run(capsys, "--time-limit", "0.2", "derive", "lstm")
    assert code == 2 and len(swallowed) == 2
    assert "stopped after 0.2 s" in err


def test_time_limit_from_environment_and_zero_means_none(capsys, monkeypatch):
    import signal

    from gradproof.reports import cmd_derive

    seen = []
    monkeypatch.setattr(cmd_derive, "render", lambda *a, **k: seen.append(signal.getitimer(signal.ITIMER_REAL)[0]) or "ok")
    monkeypatch.setenv("GRADPROOF_TIME_LIMIT", "7")
    assert run(capsys, "derive", "lstm")[0] == 0
    monkeypatch.setenv("GRADPROOF_TIME_LIMIT", "0")
    assert run(capsys, "derive", "lstm")[0] == 0
    monkeypatch.delenv("GRADPROOF_TIME_LIMIT")
    assert run(capsys, "derive", "lstm")[0] == 0
    assert run(capsys, "--time-limit", "0", "derive", "lstm")[0] == 0
    assert 6 < seen[0] <= 7 and seen[1] == 0.0 and 4 < seen[2] <= 5 and seen[3] == 0.0
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # nothing left armed
    assert signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.default_int_handler, None)


@pytest.mark.parametrize("value", ["x", "-1", "nan", "inf"])
def test_bad_time_limit_is_one_line(capsys, monkeypatch, value):
    code, _, err = run(capsys, "--time-limit", value, "derive", "lstm")
    assert code == 2 and err.count("\n") == 1 and "--time-limit" in err
    monkeypatch.setenv("GRADPROOF_TIME_LIMIT", value)
    code, _, err = run(capsys, "derive", "lstm")
    assert code == 2 and err.count("\n") == 1 and "GRADPROOF_TIME_LIMIT" in err


# the stop can land in a garbage-collection callback of another plugin, which pytest reports as unraisable
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_the_slow_activation_of_issue_14_stops_in_time(capsys, tmp_path):
    import time as _time

    import numpy as np

    np.save(tmp_path / "W.npy", 0.5 * np.eye(3))
    expr = "tanh(x)+" + "+".join(f"sin({k}*x)" for k in range(1, 40))
    run(capsys, "bound", "--activation", "tanh", "--weights", str(tmp_path / "W.npy"))  # imports
    start = _time.monotonic()
    code, out, err = run(capsys, "--time-limit", "1", "bound", "--activation", expr, "--weights", str(tmp_path / "W.npy"))
    assert _time.monotonic() - start < 2.5
    assert code == 2 and out == "" and err.startswith("gradproof bound: error: stopped after 1 s")


def test_the_budget_lets_an_import_finish_then_stops(tmp_path, monkeypatch):
    import sys
    import time as _time

    from gradproof.reports.budget import TooCostly, time_limit

    (tmp_path / "gp_slow_module.py").write_text(
        "import time\nstart = time.monotonic()\nwhile time.monotonic() - start < 0.5:\n    pass\nDONE = True\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    start = _time.monotonic()
    with pytest.raises(TooCostly, match="gradproof demo: error: stopped after 0.1 s"):
        with time_limit(0.1, command="gradproof demo"):
            import gp_slow_module  # noqa: F401

            while True:
                _time.sleep(0.001)
    assert sys.modules["gp_slow_module"].DONE is True  # not broken halfway
    assert 0.5 <= _time.monotonic() - start < 1.5
    sys.modules.pop("gp_slow_module")


@pytest.mark.parametrize("converted", [ValueError, RuntimeError], ids=["gradproof-error", "other"])
def test_a_stop_turned_into_another_error_is_still_reported_as_the_stop(capsys, monkeypatch, converted):
    import time as _time

    from gradproof.derive.errors import GradproofError
    from gradproof.reports import cmd_derive

    def converting(*args, **kwargs):
        try:
            while True:
                _time.sleep(0.001)
        except Exception:  # noqa: BLE001 - as a library might
            raise (GradproofError("something else") if converted is ValueError else RuntimeError("x")) from None

    monkeypatch.setattr(cmd_derive, "render", converting)
    code, _, err = run(capsys, "--time-limit", "0.2", "derive", "lstm")
    assert code == 2 and err.startswith("gradproof derive: error: stopped after 0.2 s")
    # ... and the next command, without a stop, reports its own error
    monkeypatch.setattr(cmd_derive, "render", lambda *a, **k: (_ for _ in ()).throw(GradproofError("own")))
    code, _, err = run(capsys, "derive", "lstm")
    assert code == 2 and err == "gradproof derive: error: own\n"


def test_budget_doctests():
    import doctest

    from gradproof.reports import budget

    result = doctest.testmod(budget)
    assert result.failed == 0 and result.attempted >= 1
