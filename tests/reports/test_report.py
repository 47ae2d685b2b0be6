"""The report: built for real (LaTeX and all), then read back as a reader would (pdftotext)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from gradproof import derive
from gradproof.reports import sections
from gradproof.reports.figures import is_valid_image
from gradproof.reports.report import ReportOptions, build_report

from .conftest import DEFAULT_REPORT_GROUP

pytestmark = [pytest.mark.slow, DEFAULT_REPORT_GROUP]


@pytest.fixture(scope="module")
def report(default_report) -> Path:
    return default_report


@pytest.fixture(scope="module")
def text(report) -> str:
    assert shutil.which("pdftotext"), "pdftotext is needed (poppler-utils; scripts/install-latex.sh)"
    return subprocess.run(["pdftotext", "-layout", str(report / "report.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout


def test_the_pdf_compiles_with_every_section(report, text):
    assert (report / "report.pdf").stat().st_size > 50_000
    for title in ("The vanilla RNN", "Exploding gradients and clipping", "LSTM", "GRU", "Verification",
                  "Where the lecture is imprecise", "Conventions"):
        assert title in text


def test_the_pdf_shows_derived_gammas_and_thresholds(text):
    # docs/math.md §1: γ = 1/4 for the sigmoid (threshold 4), 1/6 for hardsigmoid, 3 for tanh(3x).
    # the activations are typeset as math, sigma(x) printed by derive: "σ (x)", "hardsigmoid (x)", "tanh (3x)"
    shown = {"σ (x)": "sigmoid", "tanh (x)": "tanh", "relu (x)": "relu", "hardsigmoid (x)": "hard_sigmoid",
             "id (x)": "identity", "tanh (3x)": "tanh(3*x)"}
    rows = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) == 4 and " ".join(words[:2]) in shown:
            rows[shown[" ".join(words[:2])]] = words[2:]
    assert rows["sigmoid"][:2] == ["1/4", "4"]
    assert rows["hard_sigmoid"][:2] == ["1/6", "6"]
    assert rows["tanh(3*x)"][:2] == ["3", "1/3"]
    assert rows["tanh"][:2] == ["1", "1"] and rows["relu"][:2] == ["1", "1"]
    assert "threshold for the sigmoid is 4" in text


def test_the_pdf_shows_the_verification_errors(report, text):
    results = json.loads((report / "results.json").read_text())
    checks = results["verification"]["checks"]
    assert results["verification"]["all_ok"] is True
    assert {c["reference"] for c in checks} == {"torch", "torch.nn", "complex-step"}
    assert {c["cell"] for c in checks} == {"rnn-tanh", "lstm", "gru", "gru-torch"}
    # every printed row says yes, and the errors are at rounding level
    rows = [line for line in text.splitlines()
            if line.split()[:1] and line.split()[0] in ("rnn-tanh", "lstm", "gru", "gru-torch")
            and line.split()[1:2] and line.split()[1] in ("torch", "torch.nn", "complex-step")]
    assert len(rows) >= 10 and all(line.rstrip().endswith("yes") for line in rows)
    assert max(c["max_rel"] for r in checks for c in r["checks"]) < 1e-10
    assert "× 10−1" in text  # errors printed as a × 10^-1x


def test_every_figure_is_a_valid_image(report):
    figures = sorted((report / "figures").iterdir())
    stems = {p.stem for p in figures}
    assert {"bound_profiles", "spectrum", "transient_growth", "cliff", "decay_comparison",
            "clipping_directions", "step_times"} <= stems
    for p in figures:
        assert is_valid_image(p), p
    tex = (report / "report.tex").read_text()
    for stem in stems:
        assert f"figures/{stem}.pdf" in tex


def test_every_equation_comes_from_the_derivation_objects(report):
    tex = (report / "report.tex").read_text()
    assert derive.latex(derive.step_jacobian("rnn-tanh").equation) in tex
    d = derive.step_jacobian("lstm")
    for expr in d.blocks.values():
        first = sections.split_equation(sp_symbol(), expr)[0].split("&=", 1)[1].strip()
        assert first in tex
    assert derive.pascanu_bound("rnn-tanh").statements[-1].latex() in tex


def sp_symbol():
    import sympy as sp

    return sp.Symbol("x")


def test_results_json_holds_the_numbers(report):
    results = json.loads((report / "results.json").read_text())
    assert results["rnn"]["gamma"]["sigmoid"] == "1/4"
    assert results["rnn"]["regimes"]["vanishing"]["regime"] == "vanishing guaranteed"
    assert results["rnn"]["regimes"]["vanishing"]["bound_holds"] is True
    tg = results["rnn"]["counterexamples"]["transient_growth"]
    assert tg["norms"][0] == pytest.approx(5.157, rel=1e-3)
    assert results["gru"]["lstm_over_gru"] > 0


def test_no_overfull_boxes_that_hide_content(report):
    from gradproof.reports.latex import overfull_boxes

    assert overfull_boxes(report / "report.log", min_pt=0.0) == []


def test_a_failed_run_leaves_the_previous_report_untouched(report, tmp_path, monkeypatch):
    out = tmp_path / "rep"
    shutil.copytree(report, out)  # a complete earlier report (the shared one; copied, it is read-only)
    for path in [out, *out.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    before = {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert (out / "report.pdf").is_file() and (out / "figures").is_dir()

    def broken(ctx):
        raise RuntimeError("boom in the middle of a section")

    monkeypatch.setattr(sections, "SECTIONS", sections.SECTIONS[:1] + (("broken", broken),))
    with pytest.raises(RuntimeError, match="boom"):
        build_report(ReportOptions(out=out, cells=("rnn-tanh",), pdf=False))
    assert {p.relative_to(out): p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]  # no temporary folder left


#: a title with every LaTeX special character
TITLE = r"50% of A&B_{x} \foo ~ #1 $"


@pytest.fixture(scope="module")
def options_report(tmp_path_factory) -> Path:
    """One PDF report with every optional input at once, built by the command line: a user title,
    a saved torch.nn.LSTM (--torch-model) and a cell of the user's own (--equations, the peephole
    LSTM of examples/cells). The tests below each read the part their option added."""
    import torch

    from gradproof.reports.cli import main

    tmp = tmp_path_factory.mktemp("options")
    torch.manual_seed(0)
    torch.save(torch.nn.LSTM(3, 5).state_dict(), tmp / "lstm.pt")
    out = tmp / "rep"
    peephole = Path(__file__).resolve().parents[2] / "examples" / "cells" / "lstm-peephole.txt"
    code = main(["report", "--out", str(out), "--cells", "rnn-tanh", "--title", TITLE, "--torch-model",
                 str(tmp / "lstm.pt"), "--equations", str(peephole), "--state", "h,c"])  # fmt: skip
    assert code == 0
    return out


def _pdf_text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout


def test_user_title_is_escaped(options_report):
    assert TITLE in _pdf_text(options_report / "report.pdf")


def test_report_pdf_for_the_peephole_lstm(options_report):
    text = _pdf_text(options_report / "report.pdf")
    assert "Your cell: lstm-peephole" in text
    assert "f = sigmoid(W_f @ h + U_f @ x + p_f * c + b_f)" in text
    results = json.loads((options_report / "results.json").read_text())["user_cell"]
    assert results["regime"]["regime"] == "not decided (the bound depends on the state)"


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_a_users_torch_model_gets_its_own_section(options_report, tmp_path, kind):
    import torch

    if kind == "lstm":  # the report with every option holds a saved nn.LSTM(3, 5)
        out, path = options_report, Path("lstm.pt")
    else:
        torch.manual_seed(0)
        path = tmp_path / f"{kind}.pt"
        torch.save(torch.nn.GRU(3, 5).state_dict(), path)
        out = tmp_path / "rep"
        build_report(ReportOptions(out=out, cells=("rnn-tanh",), torch_model=path))
    text = _pdf_text(out / "report.pdf")
    assert "Your model" in text and path.name in text
    results = json.loads((out / "results.json").read_text())
    section = results["model"]
    assert section["model"]["model"] == ("lstm" if kind == "lstm" else "gru-torch")
    assert section["verification"]["ok"] is True
    # every gate's recurrent block is analysed (σ for the gates, tanh for the candidate)
    blocks = section["model"]["blocks"]
    assert set(blocks) == ({"W_f", "W_i", "W_o", "W_c"} if kind == "lstm" else {"W_r", "W_z", "W_n"})
    assert all(b["regime"] in ("vanishing guaranteed", "exploding possible") for b in blocks.values())
    assert len(section["log_spectral"]) == 100


def test_the_bibliography_is_built_with_no_undefined_citation_or_reference(report, text):
    """natbib + refs.bib: latexmk ran BibTeX, every citation and reference resolved (the .log)."""
    import re

    log = (report / "report.log").read_text(errors="replace")
    assert "Citation" not in log or not re.search(r"Citation `[^']*' .*undefined", log)
    assert not re.search(r"Reference `[^']*' .*undefined", log)
    assert "There were undefined" not in log
    assert (report / "report.bbl").is_file() and (report / "refs.bib").is_file()
    assert "References" in text and "On the difficulty of training recurrent neural" in text
    assert "Pascanu et al." in text  # an author-year citation printed by natbib, not typed
