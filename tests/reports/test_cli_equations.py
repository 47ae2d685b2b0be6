"""gradproof derive|verify --equations FILE --state NAMES, and the shipped cells by name."""

from __future__ import annotations

import pytest

from gradproof.reports.cli import main

CIFG = """f = sigmoid(W_f @ h + U_f @ x + b_f)
g = tanh(W_c @ h + U_c @ x + b_c)
c = f * c + (1 - f) * g
h = tanh(c)
"""


@pytest.fixture
def eq_file(tmp_path):
    p = tmp_path / "cifg.txt"
    p.write_text(CIFG)
    return str(p)


def test_derive_equations_prints_the_users_cell(eq_file, capsys):
    assert main(["derive", "--equations", eq_file, "--state", "h,c", "--no-steps"]) == 0
    out = capsys.readouterr().out
    assert "c(t) = f(t) ⊙ c(t-1) + (1 - f(t)) ⊙ g(t)" in out
    assert "cifg: step Jacobian" in out


def test_verify_equations_passes(eq_file, capsys):
    code = main(["verify", "--equations", eq_file, "--state", "h,c", "--steps", "4", "--name", "mine"])
    out = capsys.readouterr().out
    assert code == 0 and "all within tolerance" in out and "dJ/dW_f" in out


@pytest.mark.parametrize("name", ["lstm-peephole", "lstm-coupled", "mgu", "indrnn"])
def test_verify_shipped_cell_by_name(name, capsys):
    assert main(["verify", "--cell", name, "--steps", "3", "--hidden", "2", "--inputs", "2"]) == 0
    assert "all within tolerance" in capsys.readouterr().out


@pytest.mark.parametrize(
    "text,state,what",
    [
        ('h = tanh(W @ h + __import__("os"))\n', "h", "line 1, column 18: unknown function '__import__'"),
        ("h = tanh(W @ h)\n", "h,c", "state 'c' is never assigned"),
        ("h = foo(W @ h)\n", "h", "unknown function 'foo'"),
        ("h = tanh(W @ h + W @ x)\n", "h", "shape clash"),
    ],
)
def test_bad_equations_one_line_exit_2(tmp_path, capsys, text, state, what):
    p = tmp_path / "bad.txt"
    p.write_text(text)
    code = main(["derive", "--equations", str(p), "--state", state])
    err = capsys.readouterr().err
    assert code == 2
    assert what in err and err.count("\n") == 1


def test_missing_state_or_file(tmp_path, capsys):
    assert main(["derive", "--equations", str(tmp_path / "nope.txt"), "--state", "h"]) == 2
    assert "cannot read the equations file" in capsys.readouterr().err
    p = tmp_path / "a.txt"
    p.write_text(CIFG)
    assert main(["verify", "--equations", str(p)]) == 2
    assert "--state" in capsys.readouterr().err
