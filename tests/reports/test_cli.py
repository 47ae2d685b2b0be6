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
