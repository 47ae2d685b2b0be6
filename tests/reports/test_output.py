"""Tests of reports.output: the all-or-nothing report directory and deterministic JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gradproof.derive.errors import GradproofError
from gradproof.reports import output
from gradproof.reports.output import MARKER, AtomicDirectory, looks_like_report, to_jsonable, write_json


def tree(path: Path) -> dict[str, str]:
    """Every file under ``path`` (relative name -> content)."""
    return {
        p.relative_to(path).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def make_old_report(path: Path) -> dict[str, str]:
    (path / "figures").mkdir(parents=True)
    (path / MARKER).write_text("marker\n", encoding="utf-8")
    (path / "report.tex").write_text("old tex\n", encoding="utf-8")
    (path / "figures" / "old.png").write_text("old figure\n", encoding="utf-8")
    return tree(path)


def siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir())


# --------------------------------------------------------------------------------------------
# AtomicDirectory
# --------------------------------------------------------------------------------------------


def test_new_directory_with_missing_parents(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "report"
    with AtomicDirectory(out) as tmp:
        assert tmp.parent == out.parent
        assert tmp.name.startswith(".report.tmp-")
        assert not out.exists()  # nothing appears before the end
        (tmp / "report.tex").write_text("new\n", encoding="utf-8")
    assert tree(out) == {MARKER: (out / MARKER).read_text(encoding="utf-8"), "report.tex": "new\n"}
    assert siblings(out) == ["report"]
    mask = os.umask(0o022)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~mask  # not mkdtemp's private 0700


def test_replaces_an_earlier_report_completely(tmp_path: Path) -> None:
    out = tmp_path / "report"
    make_old_report(out)
    with AtomicDirectory(out) as tmp:
        (tmp / "report.tex").write_text("new tex\n", encoding="utf-8")
        (tmp / "results.json").write_text("{}\n", encoding="utf-8")
    files = tree(out)
    assert files["report.tex"] == "new tex\n"
    assert "figures/old.png" not in files  # stale files of the old report are gone
    assert set(files) == {MARKER, "report.tex", "results.json"}
    assert siblings(out) == ["report"]  # no temporary or backup directory left


@pytest.mark.parametrize(
    "error", [RuntimeError("boom"), KeyboardInterrupt()], ids=["exception", "ctrl-c"]
)
def test_failure_inside_leaves_the_old_report_intact(tmp_path: Path, error: BaseException) -> None:
    out = tmp_path / "report"
    before = make_old_report(out)
    with pytest.raises(type(error)):
        with AtomicDirectory(out) as tmp:
            (tmp / "report.tex").write_text("half-written\n", encoding="utf-8")
            raise error
    assert tree(out) == before
    assert siblings(out) == ["report"]


def test_failure_inside_creates_nothing(tmp_path: Path) -> None:
    out = tmp_path / "report"
    with pytest.raises(ValueError, match="boom"):
        with AtomicDirectory(out):
            raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []


def test_refuses_an_unrelated_non_empty_directory(tmp_path: Path) -> None:
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("precious\n", encoding="utf-8")
    ran = False
    with pytest.raises(GradproofError, match="refusing to replace") as info:
        with AtomicDirectory(out):
            ran = True
    assert not ran  # refused before any work is done
    assert "\n" not in str(info.value)
    assert tree(out) == {"chapter1.tex": "precious\n"}
    assert siblings(out) == ["thesis"]


def test_refuses_a_file(tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.write_text("a file\n", encoding="utf-8")
    with pytest.raises(GradproofError, match="not a directory"):
        with AtomicDirectory(out):
            pass
    assert out.read_text(encoding="utf-8") == "a file\n"
    assert siblings(out) == ["report"]


def test_refuses_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "target"
    make_old_report(target)
    link = tmp_path / "report"
    link.symlink_to(target)
    with pytest.raises(GradproofError, match="symbolic link"):
        with AtomicDirectory(link):
            pass
    assert link.is_symlink()


def test_accepts_an_empty_directory(tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    with AtomicDirectory(out) as tmp:
        (tmp / "report.tex").write_text("x\n", encoding="utf-8")
    assert (out / "report.tex").read_text(encoding="utf-8") == "x\n"


def test_cannot_be_entered_twice(tmp_path: Path) -> None:
    atomic = AtomicDirectory(tmp_path / "report")
    with atomic:
        pass
    with pytest.raises(GradproofError, match="only once"):
        with atomic:
            pass


def test_failed_final_rename_puts_the_old_report_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "report"
    before = make_old_report(out)
    real_rename = os.rename

    def rename(src: os.PathLike, dst: os.PathLike) -> None:
        if Path(src).name.startswith(".report.tmp-"):
            raise OSError(28, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(output.os, "rename", rename)
    with pytest.raises(
        GradproofError, match="No space left on device; the earlier report is unchanged"
    ):
        with AtomicDirectory(out) as tmp:
            (tmp / "report.tex").write_text("new\n", encoding="utf-8")
    monkeypatch.undo()
    assert tree(out) == before
    assert siblings(out) == ["report"]


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ([MARKER, "anything"], True),
        (["report.tex", "report.pdf", "report.log", "figures/x.png"], True),
        (["results.json"], True),
        (["results.json", "thesis.docx"], False),  # results.json alone is not enough
        (["notes.txt"], False),
        ([], False),
    ],
    ids=["marker", "old-report", "results-only", "foreign-results", "unrelated", "empty"],
)
def test_looks_like_report(tmp_path: Path, names: list[str], expected: bool) -> None:
    d = tmp_path / "d"
    d.mkdir()
    for name in names:
        (d / name).parent.mkdir(parents=True, exist_ok=True)
        (d / name).write_text("x", encoding="utf-8")
    assert looks_like_report(d) is expected


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def test_write_json_is_deterministic_and_plain(tmp_path: Path) -> None:
    data = {
        "z": np.float64("nan"),
        "a": [np.inf, -np.inf, np.float32(0.5), np.int64(3), np.bool_(True)],
        "m": {
            "array": np.array([[1.0, np.nan], [2.5, -0.0]]),
            "path": Path("figures/x.pdf"),
            "t": (1, "two"),
        },
    }
    path = write_json(tmp_path / "results.json", data)
    expected = (
        "{\n"
        '  "a": [\n    "inf",\n    "-inf",\n    0.5,\n    3,\n    true\n  ],\n'
        '  "m": {\n'
        '    "array": [\n      [\n        1.0,\n        "nan"\n      ],\n      [\n        2.5,\n        -0.0\n      ]\n    ],\n'
        '    "path": "figures/x.pdf",\n'
        '    "t": [\n      1,\n      "two"\n    ]\n'
        "  },\n"
        '  "z": "nan"\n'
        "}\n"
    )
    assert path.read_text(encoding="utf-8") == expected
    second = write_json(tmp_path / "again.json", data)
    assert second.read_bytes() == path.read_bytes()


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({1: "x"}, r"keys must be str"),
        ({"a": [1, {2j}]}, r"\$\.a\[1\]: cannot store a value of type set"),
        ({"c": np.array([1j])}, r"\$\.c: cannot store an array of dtype complex128"),
        ({"o": object()}, r"type object"),
    ],
    ids=["int-key", "set", "complex-array", "object"],
)
def test_write_json_rejects_unstorable_values(tmp_path: Path, obj: object, message: str) -> None:
    with pytest.raises(GradproofError, match=message):
        write_json(tmp_path / "r.json", obj)
    assert not (tmp_path / "r.json").exists()


@given(st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), max_size=20))
def test_json_floats_round_trip(values: list[float]) -> None:
    """Property: finite floats come back exactly; non-finite ones come back as their names."""
    back = json.loads(json.dumps(to_jsonable(np.array(values, dtype=np.float64)), allow_nan=False))
    for value, got in zip(values, back, strict=True):
        if np.isnan(value):
            assert got == "nan"
        elif np.isinf(value):
            assert got == ("inf" if value > 0 else "-inf")
        else:
            assert got == value and isinstance(got, float)
