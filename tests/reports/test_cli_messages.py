"""What the commands say besides their results: progress on a terminal, one error prefix."""

from __future__ import annotations

import io
import json
import sys

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
