"""Fixtures shared by the report tests."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gradproof.reports.report import ReportOptions, build_report

#: The xdist group of the modules that read :func:`default_report`: ``pytest -n auto`` runs with
#: ``--dist loadgroup`` (pyproject.toml), so they share one worker and the report is built once.
DEFAULT_REPORT_GROUP = pytest.mark.xdist_group("default_report")


def _read_only(folder: Path) -> None:
    for root, dirs, files in os.walk(folder):
        for name in files:
            os.chmod(Path(root, name), stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        os.chmod(root, stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)


@pytest.fixture(scope="session")
def default_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report as ``gradproof report`` writes it by default (cells rnn-tanh, lstm, gru, gru-torch;
    seed 0; the PDF), built once per test process and read by test_report, test_layout and
    test_report_text. The folder is made read-only, so no test can change what the others read."""
    out = tmp_path_factory.mktemp("default") / "report"
    result = build_report(ReportOptions(out=out, cells=("rnn-tanh", "lstm", "gru", "gru-torch"), seed=0))
    assert result.pdf == out / "report.pdf"
    _read_only(out)
    return out
