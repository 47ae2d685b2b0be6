"""The report section "Why gates help, measured": numbers in captions, conclusions chosen by data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gradproof.derive import GradproofError
from gradproof.numeric.sweeps import GateSweep
from gradproof.reports import section_gates as sg
from gradproof.reports.figures import is_valid_image, use_style
from gradproof.reports.report import ReportOptions, build_report
from gradproof.reports.sections import Context, _num


@pytest.fixture
def tiny(monkeypatch):
    monkeypatch.setattr(sg, "SIZES", dict(hidden=3, inputs=2, steps=40, warmup=5))
    monkeypatch.setattr(sg, "BIASES", (-2.0, 0.0, 2.0, 6.0))
    monkeypatch.setattr(sg, "NORMS", (0.5, 1.0, 3.0))
    monkeypatch.setattr(sg, "PHASE_NORMS", (0.5, 2.0))
    monkeypatch.setattr(sg, "PHASE_BIASES", (-2.0, 6.0))
    use_style()


def _ctx(tmp_path: Path, experiments: Path | None = None) -> Context:
    return Context(figures=tmp_path / "figures", seed=0, cells=("lstm",), experiments=experiments)


def _captions(section: dict) -> str:
    return " ".join(b.get("caption", "") + b.get("text", "") for b in section["blocks"])


def test_section_figures_and_their_numbers(tmp_path, tiny) -> None:
    section, results = sg.section_gates(_ctx(tmp_path))
    assert section["title"] == "Why gates help, measured"
    for stem in ("gate_sweep", "sweep_profiles", "phase_diagram", "lyapunov_spectra"):
        assert is_valid_image(tmp_path / "figures" / f"{stem}.png")
    text = _captions(section)
    lstm = results["sweeps"]["gated"]["lstm"]
    # the caption's numbers are those of results.json
    assert f"$\\lambda_1 = {_num(lstm['largest'][0])}$ at $\\beta = -2$" in text
    for c, r in results["spectra"]["cells"].items():
        assert f"$\\lambda_1 = {_num(r['exponents'][0])} \\pm {_num(r['stderr'][0], 2)}$" in text
    json.dumps(results)  # plain JSON types only (after output.to_jsonable in the report)
    assert "gradproof experiment adding" in text  # no experiment given: says how to add one


def _sweep(cell: str, values, largest) -> GateSweep:
    v = np.asarray(values, dtype=float)
    return GateSweep(cell=cell, swept="x", parameter="p", values=v, parameter_values=v,
                     largest=np.asarray(largest, dtype=float), stderr=np.full(v.size, 0.01),
                     log_spectral=-np.ones((v.size, 40)), hidden=3, inputs=2, steps=40, warmup=5, seed=0)  # fmt: skip


@pytest.mark.parametrize("rnn_best, expected", [(-0.3, "A gate gives a knob"), (0.0, "not visible")])
def test_the_conclusion_follows_the_numbers(tmp_path, tiny, monkeypatch, rnn_best, expected) -> None:
    biases = sg.BIASES
    monkeypatch.setattr(sg, "gate_sweep", lambda c, **kw: _sweep(c, biases, [-1.0, -0.5, -0.1, -0.005]))
    monkeypatch.setattr(sg, "norm_sweep", lambda c, **kw: _sweep(c, sg.NORMS, [-1.0, rnn_best, -0.5]))
    blocks, results = sg._sweeps(_ctx(tmp_path))
    caption = blocks[0]["caption"]
    assert expected in caption
    assert results["closest_to_zero"]["rnn"] == pytest.approx(abs(rnn_best))
    assert results["neutral_from_bias"]["lstm"] == 6.0


def _run(cell: str, T: int, mse: float, outcome: str) -> dict:
    dyn = {"log_spectral": [-1.0] * T, "largest_exponent": -0.1, "lyapunov": {}}
    return {"cell": cell, "T": T, "hidden": 4, "curve_steps": [0, 10], "test_mse": [0.2, mse],
            "final_test_mse": mse, "outcome": outcome, "before": dyn, "after": {**dyn, "largest_exponent": -0.01}}  # fmt: skip


def _experiment(folder: Path, runs: list[dict]) -> Path:
    folder.mkdir()
    data = {"runs": runs, "baseline_mse": 1 / 6, "solved_mse": 0.01, "failed_above": 1 / 12,
            "config": {"budget": 100, "steps": 10, "lr": 0.01, "batch": 8, "clip": 1.0, "seed": 0}, "summary": {}}  # fmt: skip
    (folder / "results.json").write_text(json.dumps(data))
    return folder


def test_experiment_claims_come_from_results(tmp_path) -> None:
    use_style()
    runs = [_run("rnn-tanh", 50, 0.16, "failed"), _run("lstm", 50, 0.001, "solved"), _run("gru-torch", 50, 0.12, "failed"),
            _run("rnn-tanh", 10, 0.005, "solved"), _run("lstm", 10, 0.001, "solved"), _run("gru-torch", 10, 0.002, "solved")]  # fmt: skip
    folder = _experiment(tmp_path / "exp", runs)
    blocks, res = sg._experiment(_ctx(tmp_path, folder), sg.load_experiment(folder))
    assert "at $T = 50$ the RNN failed while lstm solved it" in res["claims"]
    assert any(c.startswith("at $T = 10$ the RNN reached test MSE $0.005$") for c in res["claims"])
    assert is_valid_image(tmp_path / "figures" / "adding_curves.png")
    table = next(b for b in blocks if b["kind"] == "table")
    assert table["rows"][1][2] == "$0.001$ (solved)"  # T = 50, lstm


def test_bad_experiments_folder(tmp_path) -> None:
    with pytest.raises(GradproofError, match="no results.json"):
        sg.load_experiment(tmp_path)
    (tmp_path / "results.json").write_text("{}")
    with pytest.raises(GradproofError, match="not an adding-problem result"):
        sg.load_experiment(tmp_path)
    with pytest.raises(GradproofError, match="--experiments"):
        build_report(ReportOptions(out=tmp_path / "rep", experiments=tmp_path / "missing", pdf=False))
