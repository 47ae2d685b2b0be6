"""``gradproof experiment adding`` and numeric.adding: the task, the budget, a tiny training run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gradproof.derive import GradproofError
from gradproof.numeric.adding import (
    BASELINE_MSE,
    AddingConfig,
    adding_batch,
    hidden_for_budget,
    parameter_count,
)
from gradproof.reports.cli import main
from gradproof.reports.figures import is_valid_image


def test_adding_batch_is_the_task_of_hochreiter_and_schmidhuber() -> None:
    xs, y = adding_batch(20, 500, np.random.default_rng(0))
    assert xs.shape == (500, 20, 2) and y.shape == (500,)
    markers = xs[:, :, 1]
    np.testing.assert_array_equal(markers.sum(axis=1), 2.0)
    np.testing.assert_array_equal(markers[:, :10].sum(axis=1), 1.0)  # one marker in each half
    np.testing.assert_allclose(y, (xs[:, :, 0] * markers).sum(axis=1), rtol=0, atol=1e-15)
    assert np.all((xs[:, :, 0] >= 0) & (xs[:, :, 0] < 1))
    # the baseline: predicting 1 gives Var(U1 + U2) = 1/6, up to sampling error
    assert abs(np.mean((y - 1.0) ** 2) - BASELINE_MSE) < 0.02


@pytest.mark.parametrize("cell, module", [("rnn-tanh", torch.nn.RNN), ("lstm", torch.nn.LSTM), ("gru-torch", torch.nn.GRU)])
def test_parameter_count_is_torchs(cell: str, module: type) -> None:
    n = 7
    rnn = module(input_size=2, hidden_size=n)
    head = torch.nn.Linear(n, 1)
    expected = sum(p.numel() for p in rnn.parameters()) + sum(p.numel() for p in head.parameters())
    assert parameter_count(cell, n) == expected


def test_same_budget_for_every_cell() -> None:
    counts = {c: parameter_count(c, hidden_for_budget(c, 1200)) for c in ("rnn-tanh", "lstm", "gru-torch")}
    assert all(abs(v - 1200) / 1200 < 0.05 for v in counts.values()), counts


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(lengths=(1,)), "lengths"), (dict(cells=("gru",)), "no torch.nn module"), (dict(steps=0), "steps"),
     (dict(lr=-1.0), "lr")],
    ids=["length 1", "lecture gru", "no steps", "negative lr"],
)  # fmt: skip
def test_bad_config(kwargs: dict, match: str) -> None:
    with pytest.raises(GradproofError, match=match):
        AddingConfig(**kwargs)


def test_a_tiny_run_writes_results_and_figures(tmp_path, capsys) -> None:
    out = tmp_path / "exp"
    code = main(["experiment", "adding", "--lengths", "6,8", "--steps", "6", "--budget", "80", "--batch", "8",
                 "--seed", "1", "--threads", "1", "--lyapunov-steps", "40", "--out", str(out)])  # fmt: skip
    assert code == 0
    assert f"wrote {out / 'results.json'}" in capsys.readouterr().out
    data = json.loads((out / "results.json").read_text())
    assert [(r["cell"], r["T"]) for r in data["runs"]] == [
        (c, T) for T in (6, 8) for c in ("rnn-tanh", "lstm", "gru-torch")
    ]
    for r in data["runs"]:
        assert len(r["train_loss"]) == 6 and r["curve_steps"][0] == 0 and r["curve_steps"][-1] == 6
        assert r["outcome"] in ("solved", "partly", "failed")
        assert r["final_test_mse"] == r["test_mse"][-1]
        assert len(r["before"]["log_spectral"]) == r["T"]
        S = r["hidden"] * (2 if r["cell"] == "lstm" else 1)
        assert len(r["after"]["lyapunov"]["exponents"]) == S
        assert abs(r["parameters"] - 80) <= 40
    assert set(data["summary"]) == {"6", "8"}
    for stem in ("adding_curves", "adding_dynamics"):
        assert is_valid_image(out / "figures" / f"{stem}.png") and is_valid_image(out / "figures" / f"{stem}.pdf")


def test_seeded_runs_repeat(tmp_path) -> None:
    args = ["experiment", "adding", "--lengths", "5", "--steps", "3", "--budget", "60", "--batch", "4", "--threads", "1",
            "--lyapunov-steps", "20", "--lengths", "5"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "results.json").read_text())
    assert a["runs"] == b["runs"]


@pytest.mark.parametrize("args, match", [
    (["--lengths", "ten"], "expected integers"),
    (["--lengths", "1"], "lengths must be integers"),
    (["--steps", "0"], "--steps"),
])  # fmt: skip
def test_bad_arguments_give_one_line(args: list[str], match: str, tmp_path, capsys) -> None:
    assert main(["experiment", "adding", "--out", str(tmp_path / "x"), *args]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1 and "Traceback" not in err
