"""``gradproof bound`` (reports/cmd_bound.py): verdicts of docs/math.md §1 from files, errors as one line."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from gradproof.derive.errors import GradproofError
from gradproof.reports.cmd_bound import command


def _save(tmp_path: Path, name: str, array: np.ndarray) -> str:
    path = tmp_path / name
    np.save(path, array)
    return str(path)


def _invoke(args: list[str]) -> tuple[int, str, BaseException | None]:
    result = CliRunner().invoke(command, args)
    return result.exit_code, result.output, result.exception


def _json(args: list[str]) -> dict:
    code, out, exc = _invoke([*args, "--json"])
    assert code == 0 and exc is None, out
    lines = out.strip().splitlines()
    assert len(lines) == 1  # one JSON object
    return json.loads(lines[0])


def _main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from gradproof.reports.cli import main

    code = main(["bound", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --------------------------------------------------------------------------- verdicts from --weights


def test_half_identity_is_vanishing(tmp_path: Path) -> None:
    path = _save(tmp_path, "W.npy", 0.5 * np.eye(4))
    code, out, exc = _invoke(["--activation", "tanh", "--weights", path])
    assert code == 0 and exc is None
    assert "vanishing guaranteed" in out
    data = _json(["--activation", "tanh", "--weights", path])
    # docs/math.md §1: γ(tanh) = 1, η = γ σ_max = 0.5
    assert data["gamma"] == 1.0 and data["sigma_max"] == pytest.approx(0.5, rel=1e-15)
    assert data["spectral_radius"] == pytest.approx(0.5, rel=1e-15)
    assert data["eta"] == pytest.approx(0.5, rel=1e-15)
    assert data["regime"] == "vanishing guaranteed"
    for key in ("gamma", "sigma_max", "spectral_radius", "eta"):
        assert isinstance(data[key], float)


def test_five_identity_with_tanh_is_exploding(tmp_path: Path) -> None:
    path = _save(tmp_path, "W.npy", 5.0 * np.eye(3))
    code, out, _ = _invoke(["--activation", "tanh", "--weights", path])
    assert code == 0 and "exploding possible" in out
    data = _json(["--activation", "tanh", "--weights", path])
    assert data["regime"] == "exploding possible" and data["eta"] == pytest.approx(5.0, rel=1e-15)


def test_sigmoid_threshold_is_four_not_one(tmp_path: Path) -> None:
    """docs/math.md §1, imprecision 2: with sigmoid (γ = 1/4) ‖W‖₂ = 2 still guarantees vanishing."""
    path = _save(tmp_path, "W.npy", 2.0 * np.eye(2))
    data = _json(["--activation", "sigmoid", "--weights", path])
    assert data["gamma_exact"] == "1/4" and data["eta"] == pytest.approx(0.5, rel=1e-15)
    assert data["regime"] == "vanishing guaranteed"


def test_user_expression(tmp_path: Path) -> None:
    path = _save(tmp_path, "W.npy", 0.5 * np.eye(2))
    data = _json(["--activation", "tanh(3*x)", "--weights", path])
    assert data["gamma_exact"] == "3" and data["eta"] == pytest.approx(1.5, rel=1e-15)
    assert data["regime"] == "exploding possible"


def test_transient_growth_matrix_linear_and_general_verdicts_disagree(tmp_path: Path) -> None:
    # docs/math.md §1, imprecision 1: ρ = 0.9 < 1 but σ_max > 1
    path = _save(tmp_path, "W.npy", np.array([[0.9, 5.0], [0.0, 0.9]]))
    code, out, _ = _invoke(["--activation", "identity", "--weights", path])
    assert code == 0
    assert "disagree" in out
    assert "exploding possible" in out and "vanishing" in out
    data = _json(["--activation", "identity", "--weights", path])
    assert data["regime"] == "exploding possible" and data["linear_verdict"] == "vanishing"
    assert data["spectral_radius"] == pytest.approx(0.9, rel=1e-12)
    assert data["sigma_max"] > 5


def test_integer_weights_are_accepted(tmp_path: Path) -> None:
    path = _save(tmp_path, "W.npy", np.array([[2, 0], [0, 1]], dtype=np.int64))
    assert _json(["--activation", "tanh", "--weights", path])["sigma_max"] == 2.0


# --------------------------------------------------------------------------- torch models


def _torch_file(tmp_path: Path, module: torch.nn.Module, name: str) -> str:
    path = tmp_path / name
    torch.save(module.state_dict(), path)
    return str(path)


@pytest.mark.parametrize("scale, verdict", [(0.5, "vanishing guaranteed"), (3.0, "exploding possible")])
def test_torch_rnn(tmp_path: Path, scale: float, verdict: str) -> None:
    torch.manual_seed(0)
    rnn = torch.nn.RNN(input_size=2, hidden_size=3)
    with torch.no_grad():
        rnn.weight_hh_l0.copy_(scale * torch.eye(3))
    path = _torch_file(tmp_path, rnn, "rnn.pt")
    data = _json(["--torch-model", path, "--nonlinearity", "tanh"])
    assert data["model"] == "rnn-tanh" and data["regime"] == verdict
    assert data["sigma_max"] == pytest.approx(scale, rel=1e-6)  # float32 weights
    assert list(data["blocks"]) == ["W_h"]
    code, out, _ = _invoke(["--torch-model", path, "--nonlinearity", "tanh"])
    assert code == 0 and verdict in out


def test_torch_rnn_relu_needs_activation_flag(tmp_path: Path) -> None:
    torch.manual_seed(1)
    path = _torch_file(tmp_path, torch.nn.RNN(2, 3, nonlinearity="relu"), "relu.pt")
    data = _json(["--activation", "relu", "--torch-model", path])
    assert data["model"] == "rnn-relu" and data["activation"] == "relu"
    data = _json(["--nonlinearity", "relu", "--torch-model", path])
    assert data["model"] == "rnn-relu" and data["activation"] == "relu"


def test_a_relu_rnn_state_dict_is_never_analysed_as_tanh(tmp_path: Path, capsys) -> None:
    # issue 16 item 2: the state_dict does not record relu; without --nonlinearity, refuse
    torch.manual_seed(1)
    path = _torch_file(tmp_path, torch.nn.RNN(2, 3, nonlinearity="relu", num_layers=2), "relu.pt")
    code, out, err = _main(["--torch-model", path], capsys)
    assert code == 2 and out == "" and "rnn-tanh" not in err
    assert len(err.strip().splitlines()) == 1
    assert "does not record its nonlinearity: pass --nonlinearity tanh or --nonlinearity relu" in err
    # a described file records it, and then no flag is needed
    described = tmp_path / "described.pt"
    torch.save({"type": "rnn", "nonlinearity": "relu",
                "state_dict": torch.nn.RNN(2, 3, nonlinearity="relu").state_dict()}, described)  # fmt: skip
    assert _json(["--torch-model", str(described)])["model"] == "rnn-relu"


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rnn = torch.nn.LSTM(2, 3)
        self.fc = torch.nn.Linear(3, 1)


def test_an_lstm_inside_a_net(tmp_path: Path) -> None:
    # issue 16 item 3: found automatically, or with --prefix rnn.
    torch.manual_seed(4)
    net = _Net()
    path = tmp_path / "net.pt"
    torch.save(net.state_dict(), path)
    expected = float(np.linalg.norm(net.rnn.weight_hh_l0.detach().double().numpy()[6:9], 2))  # W_c: chunk g of (i, f, g, o), n = 3
    for extra in ([], ["--prefix", "rnn."]):
        data = _json(["--torch-model", str(path), *extra])
        assert data["model"] == "lstm"
        assert data["blocks"]["W_c"]["sigma_max"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("bidirectional", [False, True])
def test_stacked_model_per_layer_direction_and_block(tmp_path: Path, bidirectional: bool) -> None:
    torch.manual_seed(5)
    gru = torch.nn.GRU(3, 4, num_layers=2, bidirectional=bidirectional)
    path = _torch_file(tmp_path, gru, "gru2.pt")
    data = _json(["--torch-model", path])
    labels = [row["layer"] for row in data["layers"]]
    if bidirectional:
        assert labels == ["layer 0 forward", "layer 0 reverse", "layer 1 forward", "layer 1 reverse"]
    else:
        assert labels == ["layer 0", "layer 1"]
    etas = []
    for row, (l, sfx) in zip(data["layers"], [(l, s) for l in range(2) for s in ([""] + (["_reverse"] if bidirectional else []))]):
        w = getattr(gru, f"weight_hh_l{l}{sfx}").detach().double().numpy()
        for j, gate in enumerate("rzn"):
            sigma = float(np.linalg.norm(w[4 * j : 4 * j + 4], 2))
            assert row["blocks"][f"W_{gate}"]["sigma_max"] == pytest.approx(sigma, rel=1e-12)
        etas.append(row["blocks"]["W_n"]["eta"])
    stack = data["stack"]
    assert stack["eta_time"] == max(etas) and stack["worst_layer"] == labels[int(np.argmax(etas))]
    code, out, _ = _invoke(["--torch-model", path])
    assert code == 0 and "worst block:" in out and "W_z" in out and labels[-1] in out
    assert "whole stack" not in out  # a gate block's verdict is never claimed for the stack
    assert stack["scope"] == "worst block"


def test_stacked_rnn_whole_stack_verdict(tmp_path: Path) -> None:
    torch.manual_seed(6)
    rnn = torch.nn.RNN(2, 3, num_layers=3)
    with torch.no_grad():
        for l in range(3):
            getattr(rnn, f"weight_hh_l{l}").copy_((0.5 + 0.1 * l) * torch.eye(3))
    path = _torch_file(tmp_path, rnn, "rnn3.pt")
    data = _json(["--torch-model", path, "--nonlinearity", "tanh"])
    assert data["stack"]["regime"] == "vanishing guaranteed"
    assert data["stack"]["eta_time"] == pytest.approx(0.7, rel=1e-6) and data["stack"]["worst_layer"] == "layer 2"
    w_x = [getattr(rnn, f"weight_ih_l{l}").detach().double().numpy() for l in (1, 2)]
    assert data["stack"]["eta_depth"] == pytest.approx(max(np.linalg.norm(w, 2) for w in w_x), rel=1e-12)
    with torch.no_grad():
        rnn.weight_hh_l1.mul_(4.0)  # layer 1: eta = 2.4 > 1
    torch.save(rnn.state_dict(), path)
    data = _json(["--torch-model", path, "--nonlinearity", "tanh"])
    assert data["stack"]["regime"] == "exploding possible" and data["stack"]["worst_layer"] == "layer 1"


def test_torch_lstm_blocks(tmp_path: Path) -> None:
    torch.manual_seed(2)
    lstm = torch.nn.LSTM(input_size=2, hidden_size=4)
    path = _torch_file(tmp_path, lstm, "lstm.pt")
    data = _json(["--torch-model", path])
    assert data["model"] == "lstm"
    assert set(data["blocks"]) == {"W_f", "W_i", "W_o", "W_c"}
    # PyTorch stacks weight_hh_l0 in the chunk order (i, f, g, o), g <-> c (docs/math.md §3)
    w_hh = lstm.weight_hh_l0.detach().double().numpy()
    chunks = dict(zip("ifco", np.split(w_hh, 4)))
    for gate, chunk in chunks.items():
        block = data["blocks"][f"W_{gate}"]
        assert block["sigma_max"] == pytest.approx(float(np.linalg.norm(chunk, 2)), rel=1e-12)
        assert block["gamma_exact"] == ("1" if gate == "c" else "1/4")  # tanh vs sigmoid
    for key in ("gamma", "sigma_max", "spectral_radius", "eta", "regime"):
        assert data[key] == data["blocks"][data["main_block"]][key]
    d = data["direct_path"]
    assert d["gate"] == "f" and d["verdict"] == "cannot explode"
    # retain gate at rest: σ(b_f) with b_f = bias_ih + bias_hh of the f chunk
    b_f = (lstm.bias_ih_l0 + lstm.bias_hh_l0).detach().double().numpy()[4:8]
    lo, hi = 1 / (1 + np.exp(-b_f.min())), 1 / (1 + np.exp(-b_f.max()))
    assert d["retain_at_rest"] == pytest.approx([lo, hi], rel=1e-12)
    assert 0 < d["retain_upper"] < 1 and math.isfinite(d["half_life_steps"])
    code, out, _ = _invoke(["--torch-model", path])
    assert code == 0 and "W_f" in out and "cannot explode" in out


def test_torch_gru_blocks(tmp_path: Path) -> None:
    torch.manual_seed(3)
    gru = torch.nn.GRU(input_size=2, hidden_size=3)
    path = _torch_file(tmp_path, gru, "gru.pt")
    data = _json(["--torch-model", path])
    assert data["model"] == "gru-torch" and data["main_block"] == "W_n"
    chunks = dict(zip("rzn", np.split(gru.weight_hh_l0.detach().double().numpy(), 3)))
    for gate, chunk in chunks.items():
        assert data["blocks"][f"W_{gate}"]["sigma_max"] == pytest.approx(
            float(np.linalg.norm(chunk, 2)), rel=1e-12
        )
    assert data["direct_path"]["gate"] == "z"


# --------------------------------------------------------------------------- errors


def _bad_inputs(tmp_path: Path) -> dict[str, list[str]]:
    garbage = tmp_path / "garbage.npy"
    garbage.write_bytes(b"this is not a numpy file")
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    npz = tmp_path / "two.npz"
    np.savez(npz, a=np.eye(2), b=np.eye(2))
    bad_pt = tmp_path / "bad.pt"
    bad_pt.write_bytes(b"\x00\x01 not a torch file")
    two_layers = tmp_path / "two_layers.pt"
    torch.save(torch.nn.LSTM(2, 3, num_layers=2).state_dict() | {"weight_ih_l1": torch.zeros(12, 2)}, two_layers)
    proj = tmp_path / "proj.pt"
    torch.save(torch.nn.LSTM(2, 3, proj_size=2).state_dict(), proj)
    linear = tmp_path / "linear.pt"
    torch.save(torch.nn.Linear(2, 3).state_dict(), linear)
    rnn = tmp_path / "rnn.pt"
    torch.save(torch.nn.RNN(2, 3).state_dict(), rnn)
    two_rnns = tmp_path / "two_rnns.pt"
    torch.save(torch.nn.ModuleDict({"a": torch.nn.GRU(2, 3), "b": torch.nn.LSTM(2, 3)}).state_dict(), two_rnns)
    lstm = tmp_path / "lstm.pt"
    torch.save(torch.nn.LSTM(2, 3).state_dict(), lstm)
    nan = np.full((2, 2), np.nan)
    return {
        "not-square": ["--activation", "tanh", "--weights", _save(tmp_path, "a.npy", np.ones((3, 4)))],
        "not-finite": ["--activation", "tanh", "--weights", _save(tmp_path, "b.npy", nan)],
        "not-2d": ["--activation", "tanh", "--weights", _save(tmp_path, "c.npy", np.ones(3))],
        "missing-file": ["--activation", "tanh", "--weights", str(tmp_path / "nope.npy")],
        "bad-expression": ["--activation", "x +", "--weights", _save(tmp_path, "d.npy", np.eye(2))],
        "unsafe-expression": [
            "--activation", "__import__('os')", "--weights", _save(tmp_path, "e.npy", np.eye(2))
        ],
        "unbounded-derivative": ["--activation", "x**2", "--weights", _save(tmp_path, "f.npy", np.eye(2))],
        "unreadable-file": ["--activation", "tanh", "--weights", str(garbage)],
        "pickled-objects": ["--activation", "tanh", "--weights", str(objects)],
        "npz-archive": ["--activation", "tanh", "--weights", str(npz)],
        "both-sources": ["--activation", "tanh", "--weights", str(npz), "--torch-model", str(lstm)],
        "no-source": ["--activation", "tanh"],
        "weights-without-activation": ["--weights", _save(tmp_path, "g.npy", np.eye(2))],
        "missing-model": ["--torch-model", str(tmp_path / "nope.pt")],
        "unreadable-model": ["--torch-model", str(bad_pt)],
        "mismatched-layers": ["--torch-model", str(two_layers)],
        "proj-size": ["--torch-model", str(proj)],
        "other-module": ["--torch-model", str(linear)],
        "rnn-without-nonlinearity": ["--torch-model", str(rnn)],
        "nonlinearity-for-lstm": ["--nonlinearity", "relu", "--torch-model", str(lstm)],
        "several-rnns": ["--torch-model", str(two_rnns)],
        "wrong-prefix": ["--torch-model", str(lstm), "--prefix", "encoder."],
        "activation-for-lstm": ["--activation", "tanh", "--torch-model", str(lstm)],
        "sigmoid-for-torch-rnn": ["--activation", "sigmoid", "--torch-model", str(lstm)],
    }


BAD_IDS = [
    "not-square", "not-finite", "not-2d", "missing-file", "bad-expression", "unsafe-expression",
    "unbounded-derivative", "unreadable-file", "pickled-objects", "npz-archive", "both-sources",
    "no-source", "weights-without-activation", "missing-model", "unreadable-model",
    "mismatched-layers", "proj-size", "other-module", "rnn-without-nonlinearity", "nonlinearity-for-lstm",
    "several-rnns", "wrong-prefix", "activation-for-lstm", "sigmoid-for-torch-rnn",
]  # fmt: skip
USAGE_ERRORS = {"both-sources", "no-source", "weights-without-activation"}


@pytest.mark.parametrize("case", BAD_IDS)
def test_bad_input_direct(tmp_path: Path, case: str) -> None:
    """Called directly, the command raises GradproofError (one line) or a click usage error."""
    args = _bad_inputs(tmp_path)[case]
    code, _, exc = _invoke(args)
    assert code != 0
    if case in USAGE_ERRORS:
        assert code == 2 and isinstance(exc, SystemExit)
    else:
        assert isinstance(exc, GradproofError), repr(exc)
        assert "\n" not in str(exc) and str(exc)


@pytest.mark.parametrize("case", BAD_IDS)
def test_bad_input_through_cli_main(tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Through ``gradproof`` itself: exit code 2, one line on stderr, no traceback."""
    args = _bad_inputs(tmp_path)[case]
    code, out, err = _main(args, capsys)
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "error" in lines[0] and "Traceback" not in err


def test_good_input_through_cli_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _save(tmp_path, "W.npy", 0.5 * np.eye(2))
    code, out, err = _main(["--activation", "tanh", "--weights", path, "--json"], capsys)
    assert code == 0 and err == ""
    assert json.loads(out)["regime"] == "vanishing guaranteed"
