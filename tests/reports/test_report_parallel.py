"""reports.report.run_parts: the sections built by two processes give the report of one.

The fast tests use small stand-in sections (a figure file and a dict each); the slow one builds the
real report both ways and compares the files byte for byte.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gradproof.derive.errors import GradproofError
from gradproof.reports import report as report_mod
from gradproof.reports import sections
from gradproof.reports.report import ReportOptions, build_report, run_parts


def _part(name: str):
    def make(ctx: sections.Context) -> tuple[dict, dict]:
        (ctx.figures / f"{name}.txt").write_text(f"figure of {name}, seed {ctx.seed}\n", encoding="utf-8")
        block = {"kind": "figure", "path": f"figures/{name}.pdf", "caption": name, "width": 0.9,
                 "label": f"fig:{name}"}  # fmt: skip
        return {"title": name, "blocks": [{"kind": "text", "text": f"Figure~\\ref{{fig:{name}}}."}, block]}, {
            "name": name, "pid": os.getpid(), "value": [1.5, 2.5]}

    return make


NAMES = ("a", "b", "c", "d", "e")


@pytest.fixture
def ctx(tmp_path: Path) -> sections.Context:
    (tmp_path / "figures").mkdir()
    return sections.Context(figures=tmp_path / "figures", seed=4, cells=("rnn-tanh",))


def test_two_processes_give_the_parts_of_one_in_order(ctx, monkeypatch) -> None:
    monkeypatch.setattr(report_mod, "SECOND_PROCESS", ("b", "d"))
    parts = [(n, _part(n)) for n in NAMES]
    said: list[str] = []
    two = run_parts(parts, ctx, say=said.append, total=7, jobs=2)
    one = run_parts(parts, ctx, say=lambda _m: None, total=7, jobs=1)
    assert [s["title"] for s, _ in two] == list(NAMES)
    assert [{k: v for k, v in n.items() if k != "pid"} for _, n in two] == \
           [{k: v for k, v in n.items() if k != "pid"} for _, n in one]  # fmt: skip
    assert [s for s, _ in two] == [s for s, _ in one]
    pids = {name: numbers["pid"] for name, (_, numbers) in zip(NAMES, two)}
    assert pids["a"] == pids["c"] == pids["e"] == os.getpid()
    assert pids["b"] == pids["d"] != os.getpid()  # built by the second process
    assert all(n["pid"] == os.getpid() for _, n in one)
    assert sorted(p.name for p in ctx.figures.iterdir()) == [f"{n}.txt" for n in NAMES]
    # the main process's sections first, then the second process's as they arrive
    assert said == ["[1/7] section: a", "[3/7] section: c", "[5/7] section: e",
                    "[2/7] section: b (second process)", "[4/7] section: d (second process)"]  # fmt: skip


def test_an_error_in_the_second_process_is_raised_here(ctx, monkeypatch) -> None:
    def bad(_ctx: sections.Context) -> tuple[dict, dict]:
        raise GradproofError("expected a thing, got another; fix it")

    monkeypatch.setattr(report_mod, "SECOND_PROCESS", ("bad",))
    with pytest.raises(GradproofError, match="expected a thing, got another"):
        run_parts([("a", _part("a")), ("bad", bad)], ctx, say=lambda _m: None, total=3, jobs=2)


def test_a_second_process_that_dies_is_a_one_line_error(ctx, monkeypatch) -> None:
    def dies(_ctx: sections.Context) -> tuple[dict, dict]:
        os._exit(3)

    monkeypatch.setattr(report_mod, "SECOND_PROCESS", ("dies",))
    with pytest.raises(GradproofError, match=r"sections dies stopped without a result \(exit code 3\)"):
        run_parts([("a", _part("a")), ("dies", dies)], ctx, say=lambda _m: None, total=3, jobs=2)


def test_jobs_must_be_positive(ctx) -> None:
    with pytest.raises(GradproofError, match="jobs: expected 1 or more processes, got 0"):
        run_parts([("a", _part("a"))], ctx, say=lambda _m: None, total=2, jobs=0)


def test_the_report_sections_split_about_evenly() -> None:
    names = [n for n, _ in sections.SECTIONS] + ["gates", "verification"]
    assert set(report_mod.SECOND_PROCESS) <= set(names)
    assert 0 < len(report_mod.SECOND_PROCESS) < len(names)


@pytest.mark.slow
def test_one_and_two_processes_write_the_same_report(tmp_path) -> None:
    opts = dict(cells=("rnn-tanh", "lstm"), seed=2, pdf=False)
    one = build_report(ReportOptions(out=tmp_path / "one", **opts), jobs=1)
    two = build_report(ReportOptions(out=tmp_path / "two", **opts), jobs=2)
    # two runs with one seed: the same report.tex (and below, results.json and every figure)
    assert one.tex.read_bytes() == two.tex.read_bytes()
    assert one.pdf is None and two.pdf is None
    # --no-pdf: the bibliography travels with the .tex, so `latexmk -pdf report.tex` works there
    bib = (Path(sections.__file__).parent / "templates" / "refs.bib").read_bytes()
    assert (one.out / "refs.bib").read_bytes() == bib == (two.out / "refs.bib").read_bytes()
    a, b = (json.loads((r.out / "results.json").read_text()) for r in (one, two))
    for r in (a, b):  # measured step times (and the ratio read off them) differ from run to run
        del r["gru"]["step_time"], r["gru"]["lstm_over_gru"]
    assert a == b
    figs = sorted(p.name for p in (one.out / "figures").iterdir())
    assert figs == sorted(p.name for p in (two.out / "figures").iterdir())
    assert figs and all(name.endswith(".pdf") for name in figs)  # LaTeX reads only the PDFs
    for name in figs:
        if name != "step_times.pdf":  # measured
            assert (one.out / "figures" / name).read_bytes() == (two.out / "figures" / name).read_bytes(), name


def test_the_second_process_dies_with_the_main_one(tmp_path: Path) -> None:
    """SIGKILL of the main process also ends the second one (nothing keeps writing figures)."""
    import signal
    import subprocess
    import sys
    import time

    code = f"""
import os, time
from pathlib import Path
from gradproof.reports import report, sections
def slow(ctx):
    Path({str(tmp_path)!r}, "child").write_text(str(os.getpid()))
    time.sleep(60)
report.SECOND_PROCESS = ("slow",)
figures = Path({str(tmp_path)!r}, "figures"); figures.mkdir()
ctx = sections.Context(figures=figures, seed=0, cells=("rnn-tanh",))
report.run_parts([("slow", slow), ("main", lambda c: time.sleep(60))], ctx, say=print, total=3, jobs=2)
"""
    proc = subprocess.Popen([sys.executable, "-c", code])
    child_file = tmp_path / "child"
    deadline = time.monotonic() + 120
    while not child_file.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)
    child = int(child_file.read_text())
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        with open(f"/proc/{child}/stat") as stat:  # a zombie waiting for its reaper is gone too
            if stat.read().split(") ")[1].startswith("Z"):
                break
        time.sleep(0.05)
    else:
        os.kill(child, signal.SIGKILL)
        raise AssertionError("the second process outlived the main one")


def test_torch_used_before_the_fork_still_runs_in_the_second_process(ctx, monkeypatch) -> None:
    import torch

    a = torch.randn(600, 600)
    assert float((a @ a).exp().sum()) > 0  # this process's intra-op thread pool is now in use

    def with_torch(_ctx: sections.Context) -> tuple[dict, dict]:
        b = torch.randn(300, 300)
        module = torch.nn.LSTM(8, 16)
        module(torch.randn(5, 2, 8))[0].sum().backward()
        return {"title": "t", "blocks": []}, {"sum": float((b @ b).abs().sum()) > 0, "pid": os.getpid(),
                                              "threads": torch.get_num_threads()}  # fmt: skip

    monkeypatch.setattr(report_mod, "SECOND_PROCESS", ("torch",))
    out = run_parts([("a", _part("a")), ("torch", with_torch)], ctx, say=lambda _m: None, total=3, jobs=2)
    numbers = out[1][1]
    assert numbers["sum"] is True and numbers["pid"] != os.getpid() and numbers["threads"] == 1


def test_an_error_here_stops_the_second_process(ctx, monkeypatch, tmp_path) -> None:
    import time

    def slow(_ctx: sections.Context) -> tuple[dict, dict]:
        (tmp_path / "child").write_text(str(os.getpid()))
        time.sleep(120)
        return {"title": "slow", "blocks": []}, {}

    def broken(_ctx: sections.Context) -> tuple[dict, dict]:
        while not (tmp_path / "child").exists():
            time.sleep(0.02)
        raise RuntimeError("boom in the main process")

    monkeypatch.setattr(report_mod, "SECOND_PROCESS", ("slow",))
    with pytest.raises(RuntimeError, match="boom in the main process"):
        run_parts([("slow", slow), ("broken", broken)], ctx, say=lambda _m: None, total=3, jobs=2)
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left sleeping
        os.kill(int((tmp_path / "child").read_text()), 0)
