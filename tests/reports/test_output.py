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
    monkeypatch.setattr(output, "_exchange", lambda a, b: False)  # a kernel without renameat2
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


# --------------------------------------------------------------------------------------------
# Left-overs of killed runs, concurrent runs (issue 14)
# --------------------------------------------------------------------------------------------


def leftovers(out: Path) -> list[str]:
    return [n for n in siblings(out) if n.startswith((f".{out.name}.tmp-", f".{out.name}.old-"))]


def dead_pid() -> int:
    """A pid that is certainly not running: a child that has exited and been reaped."""
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(child.stdout)


def test_the_temporary_directory_names_its_owner(tmp_path: Path) -> None:
    out = tmp_path / "report"
    with AtomicDirectory(out) as tmp:
        pid, start, boot = tmp.name.removeprefix(".report.tmp-").split("-")[:3]
        assert int(pid) == os.getpid()
        assert int(start) == output._start_ticks(os.getpid()) > 0
        assert boot == output._boot_id() != "0"
        assert not output._stale(tmp)  # our own, alive


def test_stale_folders_of_dead_runs_are_removed_live_ones_kept(tmp_path: Path) -> None:
    out = tmp_path / "report"
    before = make_old_report(out)
    me = os.getpid()
    start = output._start_ticks(me)
    boot = output._boot_id()
    names = {
        "dead": f".report.tmp-{dead_pid()}-{start}-{boot}-abc",
        "reused-pid": f".report.tmp-{me}-{start + 1}-{boot}-abc",  # same pid, later process
        "other-boot": f".report.tmp-{me}-{start}-{'f' * 8 if boot != 'f' * 8 else 'e' * 8}-abc",
        "dead-backup": f".report.old-{dead_pid()}-{start}-{boot}-abc",
        "legacy-old": ".report.tmp-oldstyle",
        "live": f".report.tmp-{me}-{start}-{boot}-live",
        "legacy-fresh": ".report.tmp-freshstyle",
        "other-output": f".other.tmp-{dead_pid()}-{start}-{boot}-abc",
    }
    for name in names.values():
        (tmp_path / name).mkdir()
        (tmp_path / name / "report.tex").write_text("partial\n", encoding="utf-8")
    hour_ago = os.stat(tmp_path).st_mtime - 2 * output.LEGACY_STALE_SECONDS
    os.utime(tmp_path / names["legacy-old"], (hour_ago, hour_ago))
    with AtomicDirectory(out) as tmp:
        (tmp / "report.tex").write_text("new\n", encoding="utf-8")
        left = set(siblings(out))
    assert left == {"report", tmp.name, names["live"], names["legacy-fresh"], names["other-output"]}
    assert set(siblings(out)) == {"report", names["live"], names["legacy-fresh"], names["other-output"]}
    assert (out / "report.tex").read_text(encoding="utf-8") == "new\n"
    assert before["report.tex"] == "old tex\n"


def test_a_backup_left_by_a_kill_mid_swap_is_put_back(tmp_path: Path) -> None:
    # Killed after the old report was moved aside and before the new one moved in (the
    # two-rename path on kernels without renameat2): the old report comes back.
    out = tmp_path / "report"
    backup = tmp_path / f".report.old-{dead_pid()}-1-{output._boot_id()}-abcd"
    before = make_old_report(backup)
    atomic = AtomicDirectory(out)
    with atomic as tmp:
        assert tree(out) == before and leftovers(out) == [tmp.name]
    assert (out / MARKER).exists() and leftovers(out) == []


def test_swap_is_one_step_where_the_kernel_can(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    (a / "x").write_text("a", encoding="utf-8")
    (b / "x").write_text("b", encoding="utf-8")
    assert output._exchange(a, b) is True  # Linux >= 3.15 with glibc >= 2.28
    assert (a / "x").read_text(encoding="utf-8") == "b" and (b / "x").read_text(encoding="utf-8") == "a"
    with pytest.raises(OSError):
        output._exchange(a, tmp_path / "missing")


_WRITER = """
import sys, time
from pathlib import Path
from gradproof.reports.output import AtomicDirectory
out, tag = Path(sys.argv[1]), sys.argv[2]
with AtomicDirectory(out) as tmp:
    for i in range(20):
        (tmp / f"part{i}.txt").write_text(tag * 1000, encoding="utf-8")
        time.sleep(0.01)
    (tmp / "report.tex").write_text(tag, encoding="utf-8")
print("done", tag)
"""


def test_concurrent_writers_into_one_folder(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "report"
    make_old_report(out)
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(out), tag], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for tag in "ABCD"
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], results
    files = tree(out)
    tag = files["report.tex"]
    assert tag in "ABCD" and all(files[f"part{i}.txt"] == tag * 1000 for i in range(20))
    assert set(files) == {MARKER, "report.tex", *(f"part{i}.txt" for i in range(20))}
    assert siblings(out) == ["report"]


def byte_tree(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def report_command(out: Path) -> list[str]:
    import sys

    return [sys.executable, "-m", "gradproof", "report", "--no-pdf", "--cells", "rnn-tanh", "--out", str(out)]


def assert_complete(out: Path) -> None:
    files = byte_tree(out)
    assert {MARKER, "report.tex", "timings.tex", "results.json"} <= set(files)
    assert any(name.startswith("figures/") for name in files)
    assert json.loads(files["results.json"])["cells"] == ["rnn-tanh"]
    assert files["report.tex"].rstrip().endswith(b"\\end{document}")


@pytest.mark.slow
def test_real_reports_concurrent_then_killed_at_random_moments(tmp_path: Path) -> None:
    """Two `gradproof report` runs into one folder at once, then runs killed with SIGKILL at
    seeded random moments: the previous report stays byte-identical after each kill, and the
    next complete run leaves no temporary folder behind."""
    import random
    import signal
    import subprocess
    import time

    out = tmp_path / "R"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    start = time.monotonic()
    pair = [subprocess.Popen(report_command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for _ in range(2)]
    for p in pair:
        p.communicate(timeout=900)
    duration = (time.monotonic() - start) / 1.5  # two at once on two cores: about 1.5 runs
    assert [p.returncode for p in pair] == [0, 0]
    assert_complete(out)
    assert leftovers(out) == []

    before = byte_tree(out)
    rng = random.Random(14)
    moments = sorted(rng.uniform(0.1, 1.0) * duration for _ in range(3))
    killed = 0
    for moment in moments:
        proc = subprocess.Popen(report_command(out), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + moment
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
            killed += 1
            after = byte_tree(out)
            if after != before:  # the kill landed after the atomic swap, as the run was exiting:
                assert_complete(out)  # then the folder is the new report, whole, never a mix
                assert set(after) == set(before), f"a run killed after {moment:.2f} s left a partial report"
                before = after
        else:  # finished before its moment: its report is the new previous one
            assert proc.returncode == 0
            assert_complete(out)
            before = byte_tree(out)
    assert killed >= 1  # the other moments may fall after a run has finished on a quiet machine

    final = subprocess.run(report_command(out), capture_output=True, env=env, timeout=900)
    assert final.returncode == 0, final.stderr[-2000:]
    assert_complete(out)
    assert leftovers(out) == [], "a later run must remove the folders of killed runs"
    assert siblings(out) == ["R"]
