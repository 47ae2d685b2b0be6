"""``--torch-model`` across the commands: stacked/bidirectional models in ``verify`` and the report's
"Your model" section, ``--nonlinearity`` (never a silent tanh) and ``--prefix`` (issues 9 and 16)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from gradproof.derive.errors import GradproofError
from gradproof.reports import sections
from gradproof.reports.cli import main
from gradproof.reports.model_option import load_user_model
from gradproof.reports.report import ReportOptions, build_report


def _save(obj, tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    torch.save(obj, path)
    return str(path)


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(4, 2)
        self.rnn = nn.LSTM(2, 3, num_layers=2, bidirectional=True)
        self.head = nn.Linear(6, 1)


# -- verify --torch-model ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "make, extra, checks",
    [
        # L·D step + layer-0 D input + (L-1)·D·D depth + 1 chained + L·D h0 (+ L·D c0 for the LSTM)
        pytest.param(lambda: nn.LSTM(2, 3, num_layers=2, bidirectional=True), [], 4 + 2 + 4 + 1 + 4 + 4, id="lstm-2-bi"),
        pytest.param(lambda: nn.RNN(2, 3, num_layers=3, nonlinearity="relu"), ["--nonlinearity", "relu"],
                     3 + 1 + 2 + 1 + 3, id="relu-3"),
        pytest.param(lambda: nn.GRU(3, 2, bias=False, batch_first=True), [], 1 + 1 + 0 + 1 + 1, id="gru-nobias"),
    ],
)  # fmt: skip
def test_verify_a_users_model(make, extra, checks: int, tmp_path: Path, capsys) -> None:
    torch.manual_seed(0)
    path = _save(make().state_dict(), tmp_path, "m.pt")
    code, out, err = _run(["verify", "--torch-model", path, "--steps", "4", "--json", *extra], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["ok"] is True
    rows = data["verification"]["checks"]
    assert len(rows) == checks
    assert all(r["max_rel"] <= 1e-10 for r in rows)
    code, out, _ = _run(["verify", "--torch-model", path, "--steps", "3", *extra], capsys)
    assert code == 0 and "all within tolerance" in out and "step Jacobian" in out


def test_verify_exits_1_when_a_jacobian_is_wrong(tmp_path: Path, capsys, monkeypatch) -> None:
    from gradproof.numeric import stacked_verify

    real = stacked_verify.stacked_step_jacobians

    def planted(*args, **kwargs):
        A = real(*args, **kwargs).copy()
        A[1, 0, 2] *= 1.0 + 1e-6  # layer 1, step 3: a tiny wrong factor
        return A

    monkeypatch.setattr(stacked_verify, "stacked_step_jacobians", planted)
    torch.manual_seed(1)
    path = _save(nn.GRU(2, 3, num_layers=2).state_dict(), tmp_path, "gru.pt")
    code, out, _ = _run(["verify", "--torch-model", path, "--steps", "4"], capsys)
    assert code == 1
    assert "FAILED: step Jacobian, block layer 1" in out and "at step 3" in out


def test_verify_finds_the_rnn_inside_a_net(tmp_path: Path, capsys) -> None:
    torch.manual_seed(2)
    path = _save(Net().state_dict(), tmp_path, "net.pt")
    for extra in ([], ["--prefix", "rnn."]):
        code, out, err = _run(["verify", "--torch-model", path, "--steps", "3", *extra], capsys)
        assert code == 0, err
        assert "keys under 'rnn.'" in out and "lstm, 2 layers, bidirectional" in out


def _bad_files(tmp_path: Path) -> dict[str, list[str]]:
    sd = nn.LSTM(2, 3, num_layers=2).state_dict()
    two = nn.ModuleDict({"enc": nn.GRU(2, 3), "dec": nn.GRU(3, 3)}).state_dict()
    return {
        "other-module": [_save(nn.Conv1d(2, 3, 1).state_dict(), tmp_path, "conv.pt")],
        "mismatched-layers": [_save(sd | {"weight_hh_l1": torch.zeros(12, 5)}, tmp_path, "mis.pt")],
        "proj-size": [_save(nn.LSTM(2, 3, proj_size=1).state_dict(), tmp_path, "proj.pt")],
        "rnn-without-nonlinearity": [_save(nn.RNN(2, 3, num_layers=2).state_dict(), tmp_path, "rnn.pt")],
        "several-modules": [_save(two, tmp_path, "two.pt")],
        "prefix-not-there": [_save(Net().state_dict(), tmp_path, "net.pt"), "--prefix", "gru."],
        "nonlinearity-for-gru": [_save(nn.GRU(2, 3).state_dict(), tmp_path, "g.pt"), "--nonlinearity", "tanh"],
    }


MESSAGES = {
    "other-module": "not the state_dict of an nn.RNN/LSTM/GRU",
    "mismatched-layers": "mismatched layer shapes: weight_hh_l1",
    "proj-size": "proj_size != 0 is not supported yet",
    "rnn-without-nonlinearity": "pass --nonlinearity tanh or --nonlinearity relu",
    "several-modules": "several recurrent modules, with key prefixes 'dec.', 'enc.'",
    "prefix-not-there": "no key starting with prefix 'gru.'",
    "nonlinearity-for-gru": "--nonlinearity applies to an nn.RNN",
}


@pytest.mark.parametrize("command", ["verify", "bound", "report"])
@pytest.mark.parametrize("case", list(MESSAGES))
def test_bad_models_one_line_exit_2(command: str, case: str, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path, *extra = _bad_files(tmp_path)[case]
    args = [command, "--torch-model", path, *extra] + (["--no-pdf", "--out", str(tmp_path / "r")] if command == "report" else [])
    code, out, err = _run(args, capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert MESSAGES[case] in lines[0]


# -- report --torch-model ------------------------------------------------------------------------
def test_report_checks_the_model_before_the_sections(tmp_path: Path, monkeypatch) -> None:
    ran: list[str] = []
    monkeypatch.setattr(sections, "SECTIONS", (("rnn", lambda ctx: ran.append("rnn")),))
    path = _save(nn.RNN(2, 3, nonlinearity="relu").state_dict(), tmp_path, "relu.pt")
    with pytest.raises(GradproofError, match="does not record its nonlinearity"):
        build_report(ReportOptions(out=tmp_path / "rep", cells=("rnn-tanh",), torch_model=Path(path), pdf=False))
    assert ran == [] and not (tmp_path / "rep").exists()


def _section(tmp_path: Path, path: str, **kw) -> tuple[dict, dict]:
    figures = tmp_path / "figures"
    figures.mkdir(exist_ok=True)
    ctx = sections.Context(figures=figures, seed=0, cells=(), torch_model=Path(path),
                           user_model=load_user_model(path, **kw))  # fmt: skip
    return sections.section_model(ctx)


def test_your_model_section_covers_every_layer_and_direction(tmp_path: Path) -> None:
    torch.manual_seed(3)
    path = _save(Net().state_dict(), tmp_path, "net.pt")
    section, results = _section(tmp_path, path)
    labels = ["layer 0 forward", "layer 0 reverse", "layer 1 forward", "layer 1 reverse"]
    assert [row["layer"] for row in results["model"]["layers"]] == labels
    assert list(results["log_spectral"]) == labels and all(len(v) == 100 for v in results["log_spectral"].values())
    assert results["verification"]["ok"] is True
    blocks = {c["block"] for c in results["verification"]["checks"] if c["quantity"] == "step Jacobian"}
    assert blocks == set(labels)
    table = next(b for b in section["blocks"] if b["kind"] == "table")
    assert len(table["rows"]) == 4 * 4  # every gate block of every layer and direction
    text = " ".join(b.get("text", "") for b in section["blocks"])
    # a gated stack: the verdict is the worst block's, stated as such, never as the whole stack's
    assert "rnn." in text and "Worst block:" in text and "Whole stack:" not in text
    assert (tmp_path / "figures" / "model_profile.pdf").exists()


def test_a_relu_model_is_reported_as_relu(tmp_path: Path) -> None:
    torch.manual_seed(4)
    module = nn.RNN(2, 3, nonlinearity="relu")
    path = _save(module.state_dict(), tmp_path, "relu.pt")
    _, results = _section(tmp_path, path, nonlinearity="relu")
    assert results["model"]["model"] == "rnn-relu" and results["model"]["activation"] == "relu"
    assert results["verification"]["ok"] is True
    with pytest.raises(GradproofError, match="--nonlinearity"):
        _section(tmp_path, path)


def _story_parts(section: dict) -> tuple[str, str]:
    """The opening paragraph and the closing box of a section, after checking they are there."""
    from gradproof.reports.section_story import MOTIVATION_MARK

    texts = [b.get("text", "") for b in section["blocks"] if b["kind"] == "text"]
    assert section["blocks"][0]["kind"] == "text" and texts[0].startswith(MOTIVATION_MARK)
    assert sum("\\begin{gptakeaway}" in t for t in texts) == 1
    # the box closes the section: only figures may follow it
    last = max(i for i, b in enumerate(section["blocks"]) if "\\begin{gptakeaway}" in b.get("text", ""))
    assert all(b["kind"] == "figure" for b in section["blocks"][last + 1:])
    return texts[0], section["blocks"][last]["text"]


def test_your_model_opens_with_why_and_closes_with_numbers_from_results(tmp_path: Path) -> None:
    import math

    from gradproof.reports.latex import escape_tex

    torch.manual_seed(5)
    path = _save(nn.LSTM(3, 4).state_dict(), tmp_path, "one.pt")
    section, results = _section(tmp_path, path)
    opening, box = _story_parts(section)
    assert "one.pt" in opening
    blocks = results["model"]["blocks"]
    worst = max(blocks, key=lambda k: blocks[k]["eta"])
    assert f"${sections._num(blocks[worst]['eta'])}$, in {escape_tex(worst)}" in box
    assert f"10^{{{results['log_spectral'][0] / math.log(10):.1f}}}" in box and "T = 100" in box
    every = all(b["regime"] == "vanishing guaranteed" for b in blocks.values())
    assert ("vanishing is guaranteed in every block" in box) == every

    torch.manual_seed(3)  # a stacked, bidirectional model: the worst block of any layer and direction
    stacked = _save(Net().state_dict(), tmp_path, "net.pt")
    (tmp_path / "stack").mkdir()
    section, results = _section(tmp_path / "stack", stacked)
    _, box = _story_parts(section)
    etas = {f"{row['layer']}, {k}": b["eta"] for row in results["model"]["layers"] for k, b in row["blocks"].items()}
    worst = max(etas, key=lambda k: etas[k])
    assert f"${sections._num(etas[worst])}$, in {escape_tex(worst)}" in box
    far = min(v[0] for v in results["log_spectral"].values())
    assert f"10^{{{far / math.log(10):.1f}}}" in box and "smallest over the layers and directions" in box
