"""What the commands say besides their results: progress on a terminal, one error prefix."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gradproof.reports.cli import main


class Terminal(io.StringIO):
    """A stderr that says it is a terminal (tqdm draws its bar only there)."""

    def isatty(self) -> bool:
        return True


def test_verify_shows_progress_on_a_terminal(monkeypatch, capsys) -> None:
    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    code = main(["verify", "--cell", "rnn-tanh", "--cell", "gru", "--steps", "3"])
    assert code == 0
    shown = err.getvalue()
    # 2 cells × 4 stages, with the cell and stage being worked on
    assert "verify" in shown and "/8" in shown and "gru: reference gradients" in shown


def test_verify_says_how_far_a_long_reference_is(monkeypatch) -> None:
    # finite differences perturb one parameter entry at a time: the bar says which and how far
    err = Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    assert main(["verify", "--cell", "rnn-tanh", "--reference", "finite-diff", "--hidden", "3", "--steps", "4"]) == 0
    shown = err.getvalue()
    assert "rnn-tanh: reference gradients: W_h 9/9" in shown and "step Jacobians: step 3/3" in shown


@pytest.mark.parametrize("args", [["--json"], []])
def test_verify_is_quiet_with_json_or_without_a_terminal(monkeypatch, capsys, args) -> None:
    if args:  # --json: quiet even on a terminal
        monkeypatch.setattr(sys, "stderr", Terminal())
    code = main(["verify", "--cell", "rnn-tanh", "--steps", "3", *args])
    out, err = capsys.readouterr()
    assert code == 0
    if args:
        assert sys.stderr.getvalue() == "" and json.loads(out)["ok"] is True
    else:
        assert err == ""


# -- one error prefix: "gradproof <command>: error: ..." (issue 16 item 9) -------------------------
@pytest.mark.parametrize(
    ("argv", "prefix"),
    [
        (["derive", "no-such-cell"], "gradproof derive: error: "),  # click usage error
        (["verify", "--hidden", "0"], "gradproof verify: error: "),  # click usage error
        (["bound"], "gradproof bound: error: "),  # the command's own usage error
        (["bound", "--weights", "/nonexistent/w.npy", "--activation", "tanh"], "gradproof bound: error: "),
        (["bound", "--weights", "/nonexistent/w.npy", "--activation", "nosuch(x"], "gradproof bound: error: "),
        (["report", "--no-pdf", "--torch-model", "/nonexistent/m.pt"], "gradproof report: error: "),
        (["no-such-command"], "gradproof: error: "),
    ],
)
def test_every_error_has_the_same_prefix(capsys, argv, prefix) -> None:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.startswith(prefix) and err.count("\n") == 1, err


def test_bench_outside_the_checkout_writes_into_the_current_folder(tmp_path, monkeypatch) -> None:
    from gradproof.reports import cmd_bench

    inside = Path(cmd_bench.__file__).resolve().parents[1]
    default = inside / "benchmarks" / "results" / "profile.json"
    assert cmd_bench.default_json(default, cwd=inside) == default
    assert cmd_bench.default_json(default, cwd=inside / "docs") == default
    assert cmd_bench.default_json(default, cwd=tmp_path) == tmp_path.resolve() / "bench_profile.json"
    # through the command: the benchmark is asked to write where the user is
    seen = {}

    class Bench:
        DEFAULT_JSON = default

        @staticmethod
        def run_benchmark(*, json_path, **_):
            seen["json"] = json_path

    monkeypatch.setattr(cmd_bench, "_load_benchmark", lambda: Bench)
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--repeats", "1"]) == 0
    assert seen["json"] == tmp_path.resolve() / "bench_profile.json"


# -- derive: LaTeX ready to paste, a standalone document, every named Jacobian defined ----------
def test_derive_latex_is_ready_to_paste(capsys) -> None:
    assert main(["derive", "lstm", "--latex"]) == 0
    out, _ = capsys.readouterr()
    body = [line for line in out.splitlines() if not line.startswith("%")]
    assert out.count("\\begin{align*}") == out.count("\\end{align*}") == 6
    # inside the environments every line is "lhs &= rhs"
    inside = [line for line in body if not line.startswith(("\\begin{align*}", "\\end{align*}"))]
    assert inside and all(" &= " in line for line in inside)
    assert "\\operatorname{diag}" in out and "\\tilde{c}^{(t)}" in out


def test_derive_standalone_compiles_with_pdflatex(tmp_path, capsys) -> None:
    assert main(["derive", "lstm", "--standalone"]) == 0
    out, _ = capsys.readouterr()
    (tmp_path / "lstm.tex").write_text(out, encoding="utf-8")
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "lstm.tex"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:]
    text = subprocess.run(["pdftotext", str(tmp_path / "lstm.pdf"), "-"], capture_output=True, text=True).stdout
    assert "lstm: step Jacobian" in text and "lstm: input Jacobian" in text


def test_derive_lstm_defines_every_named_jacobian(capsys) -> None:
    assert main(["derive", "lstm"]) == 0
    out, _ = capsys.readouterr()
    used = set(re.findall(r"∂c\(t\)/∂[hx]\(t(?:-1)?\)", out))
    assert used == {"∂c(t)/∂h(t-1)", "∂c(t)/∂x(t)"}
    where = out.split("where:")
    defined = {line.strip().split(" = ")[0] for part in where[1:] for line in part.splitlines()[1:2]}
    assert used <= defined


def test_report_folder_explains_latex_build_files(tmp_path) -> None:
    from gradproof.reports.latex import compile_pdf
    from gradproof.reports.report import FOLDER_README

    tex = tmp_path / "report.tex"
    tex.write_text("\\documentclass{article}\\begin{document}\\tableofcontents\\section{A}x\\end{document}\n")
    compile_pdf(tex)
    for path in tmp_path.iterdir():
        assert path.name in FOLDER_README, path.name
    for name in ("report.pdf", "report.tex", "results.json", "figures/", "timings.tex"):
        assert name in FOLDER_README


def test_gamma_is_not_repeated(capsys, tmp_path) -> None:
    import numpy as np

    np.save(tmp_path / "w.npy", 0.5 * np.eye(3))
    assert main(["bound", "--weights", str(tmp_path / "w.npy"), "--activation", "tanh"]) == 0
    tanh, _ = capsys.readouterr()
    assert main(["bound", "--weights", str(tmp_path / "w.npy"), "--activation", "sigmoid"]) == 0
    sigmoid, _ = capsys.readouterr()
    assert re.search(r"gamma = sup\|sigma'\|\s+1\n", tanh)
    assert re.search(r"gamma = sup\|sigma'\|\s+1/4  \(= 0\.25\)\n", sigmoid)
