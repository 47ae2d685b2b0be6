"""numeric.sweeps: keep-gate conventions, the sweeps' invariants, the parallel phase diagram."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from gradproof.derive import GradproofError
from gradproof.numeric import lyapunov_spectrum, random_sequence, unroll
from gradproof.numeric.sweeps import (
    gate_sweep,
    keep_bias_parameters,
    norm_sweep,
    phase_diagram,
)

SMALL = dict(hidden=4, inputs=2, steps=150, warmup=20, seed=3)


@pytest.mark.parametrize(
    "cell, param, sign, gate, kept",
    [
        ("lstm", "b_f", 1.0, "f", lambda g: g),  # c_t = f ⊙ c_{t-1} + … (docs/math.md §3)
        ("gru", "b_u", -1.0, "u", lambda g: 1 - g),  # h_t = (1-u) ⊙ h_{t-1} + … (docs/math.md §4)
        ("gru-torch", "b_z", 1.0, "z", lambda g: g),  # h' = … + z ⊙ h (docs/math.md §4)
    ],
)
def test_keep_bias_convention(cell, param, sign, gate, kept) -> None:
    p = keep_bias_parameters(cell, 8.0, hidden=4, inputs=2, seed=0)
    np.testing.assert_array_equal(p[param], np.full(4, sign * 8.0))
    g = unroll(cell, p, random_sequence(30, 2, seed=0)).intermediates()[gate]
    # the kept fraction is σ(8 ± |pre-activation of the random weights|) > 0.99
    assert np.all(kept(g) > 0.99)


def test_keep_bias_needs_a_gated_cell() -> None:
    with pytest.raises(GradproofError, match="gated cell"):
        keep_bias_parameters("rnn-tanh", 1.0, hidden=2, inputs=1, seed=0)


@pytest.mark.parametrize("cell", ["lstm", "gru", "gru-torch"])
def test_gate_sweep_keeping_the_state_stops_the_vanishing(cell: str) -> None:
    sweep = gate_sweep(cell, biases=(-2.0, 0.0, 2.0, 6.0), **SMALL)
    assert sweep.largest.shape == (4,) and sweep.log_spectral.shape == (4, 150)
    # with β = -2 the kept fraction is below σ(-2 + |·|): a strong contraction per step
    assert sweep.largest[0] < -0.3
    # with β = 6 at most 1 - σ(6 - |·|) ≈ e^-6 is lost per step: λ₁ within 0.02 of 0
    assert abs(sweep.largest[-1]) < 0.02
    assert np.all(np.diff(sweep.largest) > 0)
    # each point is a plain lyapunov_spectrum call on those parameters
    p = keep_bias_parameters(cell, 2.0, hidden=4, inputs=2, seed=3)
    direct = lyapunov_spectrum(cell, p, random_sequence(150, 2, seed=4), k=1, warmup=20)
    assert sweep.largest[2] == direct.largest
    np.testing.assert_array_equal(sweep.parameter_values, (-1 if cell == "gru" else 1) * sweep.values)


def test_norm_sweep_respects_the_pascanu_bound() -> None:
    # ‖J_t‖₂ = ‖diag(tanh'(z)) W_h‖₂ ≤ γ σ_max(W_h) with γ = 1 (docs/math.md §1), so every exponent,
    # the largest included, is at most log(γ σ_max).
    sweep = norm_sweep("rnn-tanh", norms=(0.5, 1.0, 2.0, 4.0), **SMALL)
    assert np.all(sweep.largest <= np.log(sweep.values) + 1e-12)
    # below 1/γ it must vanish; above, it may still vanish: saturated units make tanh'(z) small
    # (here at σ_max = 4 the largest exponent falls again), which is why the bound is one-sided
    assert sweep.largest[0] < sweep.largest[1] < 0
    assert sweep.largest[1] > sweep.largest[3]


def test_norm_sweep_bad_input() -> None:
    with pytest.raises(GradproofError, match="vanilla RNN"):
        norm_sweep("lstm", norms=(1.0,))
    with pytest.raises(GradproofError, match="positive"):
        norm_sweep(norms=(0.0, 1.0))


def test_phase_diagram_in_parallel_equals_serial() -> None:
    kw = dict(norms=(0.5, 2.0), biases=(-1.0, 4.0), hidden=3, inputs=2, steps=80, warmup=10, seed=1)
    serial = phase_diagram("lstm", workers=1, progress=False, **kw)
    parallel = phase_diagram("lstm", workers=2, progress=False, **kw)
    assert serial.largest.shape == (2, 2)
    np.testing.assert_array_equal(parallel.largest, serial.largest)
    # higher keep bias, slower vanishing, at either norm
    assert np.all(serial.largest[1] > serial.largest[0])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(cell="rnn-tanh"), "gated cell"),
        (dict(norms=()), "non-empty"),
        (dict(norms=(-1.0,)), "positive"),
        (dict(biases=(np.nan,)), "finite"),
        (dict(workers=0), "workers"),
    ],
    ids=["rnn", "no norms", "negative norm", "nan bias", "zero workers"],
)
def test_phase_diagram_bad_input(kwargs: dict, match: str) -> None:
    with pytest.raises(GradproofError, match=match):
        phase_diagram(**{"progress": False, **kwargs})


def _children(pid: int) -> set[int]:
    """The live processes whose parent is ``pid`` (Linux /proc)."""
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                out.add(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_pool_workers_die_when_the_process_that_started_them_is_killed():
    # Found as orphans left by a report killed with SIGKILL: pool workers waiting on their task
    # queue forever. They now ask Linux to kill them with their parent (numeric.processes).
    code = ("from gradproof.numeric.sweeps import phase_diagram\n"
            "phase_diagram('lstm', norms=[0.5]*40, biases=[0.0]*10, steps=2000, warmup=0, workers=2, progress=False)\n")
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.monotonic() + 120
        workers: set[int] = set()
        while time.monotonic() < deadline and len(workers) < 2 and proc.poll() is None:
            time.sleep(0.1)
            workers = _children(proc.pid)
        assert len(workers) == 2, "the phase diagram did not start its two workers"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_alive(w) for w in workers):
        time.sleep(0.1)
    left = [w for w in workers if _alive(w)]
    for w in left:  # do not leave them behind whatever the outcome
        os.kill(w, signal.SIGKILL)
    assert left == []
