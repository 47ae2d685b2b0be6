"""The LSTM/GRU step timing runs on one torch thread, restores the caller's, and says so."""

from __future__ import annotations

import torch

from gradproof.reports import sections


def test_step_timing_uses_one_thread_and_restores_the_callers() -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        t = sections.step_time_comparison(sizes=(8,), steps=3, batch=2, repeats=2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert t["threads"] == sections.TIMING_THREADS == 1
    for engine in ("default", "no-onednn"):
        for name in ("lstm", "gru-torch"):
            entry = t["engines"][engine]["8"][name]
            assert "1 thread" in entry["engine"] and entry["min_us"] <= entry["median_us"] <= entry["max_us"]
    text = sections.timings_tex({"step_time": t})
    assert text.startswith("on one CPU thread, with oneDNN disabled, ")
    legacy = {k: v for k, v in t.items() if k != "threads"}  # results written before the field existed
    assert sections.timings_tex({"step_time": legacy}).startswith("with oneDNN disabled, ")
