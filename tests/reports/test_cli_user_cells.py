"""The four shipped cells written out as equation files (examples/cells/*.txt), end to end on the
command line: ``gradproof derive|verify|bound|report --equations FILE --state ...``; and bad
equations ending as one line on stderr with exit code 2 for every command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import gradproof.numeric as num

from gradproof.derive.define import SHIPPED, define_cell, shipped_cell
from gradproof.reports.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "cells"
CELLS = {name: ",".join(state) for name, (state, _) in SHIPPED.items()}


def _file(name: str) -> str:
    return str(EXAMPLES / f"{name}.txt")


@pytest.mark.parametrize("name", list(CELLS))
def test_example_file_is_the_shipped_cell(name):
    text = Path(_file(name)).read_text()
    assert f"--state {CELLS[name]}" in text  # the file says how to call it
    mine = define_cell(name, CELLS[name], text)
    assert mine.program == shipped_cell(name).program
    assert mine.param_kinds == shipped_cell(name).param_kinds


@pytest.mark.parametrize("name", list(CELLS))
def test_derive_and_verify_from_the_file(name, capsys):
    assert main(["derive", "--equations", _file(name), "--state", CELLS[name], "--no-steps"]) == 0
    out = capsys.readouterr().out
    assert f"{name}: step Jacobian" in out and "diag(" in out
    code = main(["verify", "--equations", _file(name), "--state", CELLS[name], "--steps", "4",
                 "--hidden", "2", "--inputs", "2"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "all within tolerance" in out


@pytest.mark.parametrize("name", list(CELLS))
def test_bound_from_the_file(name, capsys):
    # a generous budget: the symbolic derivation of a gated cell takes about a second, more on a busy machine
    args = ["--time-limit", "60", "bound", "--equations", _file(name), "--state", CELLS[name], "--hidden", "3",
            "--inputs", "2", "--seed", "5"]
    assert main([*args, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    p = num.init(shipped_cell(name), hidden=3, inputs=2, seed=5)
    # the per-block verdicts: gamma * sigma_max of each recurrent parameter (docs/math.md §1), computed here
    gammas = {"sigmoid": 0.25, "tanh": 1.0, "relu": 1.0}
    for block, b in data["blocks"].items():
        W = p[block] if p[block].ndim == 2 else np.diag(p[block])
        assert b["eta"] == pytest.approx(gammas[b["activation"]] * np.linalg.svd(W)[1][0], rel=1e-12)
    assert data["worst_block"] == max(data["blocks"], key=lambda k: data["blocks"][k]["eta"])
    if name == "indrnn":  # J = diag(relu'(z) ⊙ u): eta = max|u| (Li et al. 2018)
        assert data["eta"] == pytest.approx(float(np.max(np.abs(p["u"]))), rel=1e-15)
    if name == "lstm-peephole":  # c = f c + i g can grow: no data-free bound
        assert data["eta"] is None and "c(t-1)" in data["eta_unbounded_by"]
    if name in ("mgu", "lstm-coupled"):  # convex mixes: the state stays in [-1, 1], eta finite
        assert data["eta"] is not None and data["state_ranges"]["h"] == [-1.0, 1.0]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "gamma = sup|sigma'| of" in out and "derived bound:" in out and f"regime: {data['regime']}" in out
    assert "worst block:" in out


def test_bound_with_weights_from_an_npz(tmp_path, capsys):
    p = num.init(shipped_cell("indrnn"), hidden=3, inputs=2, seed=0)
    p["u"] = np.array([0.3, -1.2, 0.5])
    np.savez(tmp_path / "p.npz", **p)
    assert main(["bound", "--equations", _file("indrnn"), "--state", "h", "--weights", str(tmp_path / "p.npz"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["eta"] == pytest.approx(1.2, rel=1e-15) and data["regime"] == "exploding possible"
    np.savez(tmp_path / "bad.npz", u=p["u"])
    assert main(["bound", "--equations", _file("indrnn"), "--state", "h", "--weights", str(tmp_path / "bad.npz")]) == 2
    err = capsys.readouterr().err
    assert "missing" in err and err.count("\n") == 1


@pytest.fixture
def light_report(monkeypatch):
    """The lecture's sections stubbed out (they are tested in test_report.py), so that a report with
    the user's section and the verification appendix builds in seconds."""
    from gradproof.reports import report, sections

    def stub(ctx):
        return {"title": "Stub", "blocks": [{"kind": "text", "text": "stub"}]}, {}

    monkeypatch.setattr(sections, "SECTIONS", (("gru", stub),))
    monkeypatch.setattr(sections, "timings_tex", lambda results: "")
    monkeypatch.setattr(report, "section_gates", stub)


@pytest.mark.parametrize("name", ["lstm-coupled", "mgu", "indrnn"])
def test_report_no_pdf_has_the_users_section(tmp_path, capsys, light_report, name):
    out = tmp_path / "rep"
    code = main(["report", "--no-pdf", "--out", str(out), "--cells", "rnn-tanh", "--equations", _file(name),
                 "--state", CELLS[name]])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    tex = (out / "report.tex").read_text()
    assert rf"\section{{Your cell: {name}}}" in tex and r"\label{fig:user_cell_profile}" in tex
    assert (out / "figures" / "user_cell_profile.pdf").is_file()
    results = json.loads((out / "results.json").read_text())["user_cell"]
    assert results["name"] == name and results["file"] == _file(name)
    for ref in ("torch", "complex-step"):
        assert results["verification"][ref]["ok"] is True
        assert max(results["verification"][ref]["max_rel"].values()) <= 1e-10
    # the verdict in the text is the one in results.json
    assert f"so the verdict is: {results['regime']['regime']}" in tex


# The PDF with the peephole LSTM's section: tests/reports/test_report.py::test_report_pdf_for_the_peephole_lstm
# (one report built with every optional input at once).


BAD = [
    ("unknown function", "h = foo(W @ h)\n", "h", "line 1, column 5: unknown function 'foo'"),
    ("shape clash", "h = tanh(W @ h + W @ x)\n", "h", "shape clash"),
    ("state never assigned", "h = tanh(W @ h)\n", "h,c", "state 'c' is never assigned"),
    ("undefined name", "h = tanh(W @ g)\ng = sigmoid(V @ h)\n", "h", "line 1, column 14: 'g' is used before it is assigned"),
    ("code injection", 'h = tanh(W @ h + __import__("os").system("true"))\n', "h", "line 1"),
]


@pytest.mark.parametrize("command", ["derive", "verify", "bound", "report"])
@pytest.mark.parametrize("what, text, state, message", BAD, ids=[b[0] for b in BAD])
def test_bad_equations_one_line_exit_2(tmp_path, capsys, command, what, text, state, message):
    p = tmp_path / "bad.txt"
    p.write_text(text)
    extra = ["--out", str(tmp_path / "rep"), "--no-pdf"] if command == "report" else []
    code = main([command, "--equations", str(p), "--state", state, *extra])
    captured = capsys.readouterr()
    assert code == 2
    assert message in captured.err and captured.err.count("\n") == 1 and "Traceback" not in captured.err
    assert str(p) in captured.err  # names the file
    assert not (tmp_path / "rep").exists()
