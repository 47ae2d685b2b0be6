"""numeric.lyapunov_batch: B settings advanced together give, bit for bit, B lyapunov_spectrum runs.

The reference is the one-setting :func:`numeric.lyapunov_spectrum` (itself checked against torch
autograd and linear-algebra identities in test_lyapunov.py); the batch only reorganises the same
floating-point operations, so the comparison is exact equality, not a tolerance.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradproof.derive import GradproofError
from gradproof.numeric import (
    gradient_profile,
    init,
    lyapunov_batch,
    lyapunov_spectrum,
    random_sequence,
    unroll,
    unroll_batch,
)


def _same(got, want) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.exponents, w.exponents)
        np.testing.assert_array_equal(g.stderr, w.stderr)
        np.testing.assert_array_equal(g.steps, w.steps)
        np.testing.assert_array_equal(g.running, w.running)  # NaN where w has NaN (0 steps done)
        assert (g.T, g.warmup, g.blocks) == (w.T, w.warmup, w.blocks)


def _settings(name: str, seeds: tuple[int, ...], hidden: int = 5, inputs: int = 3) -> list[dict]:
    # different seeds and norms: every parameter differs between the settings
    return [init(name, hidden=hidden, inputs=inputs, seed=s, spectral_norm=0.6 + 0.7 * s) for s in seeds]


@pytest.mark.parametrize("name", ["rnn-tanh", "rnn-relu", "lstm", "gru", "gru-torch"])
@pytest.mark.parametrize("k", [1, 3])
def test_equals_one_run_per_setting_to_the_bit(name: str, k: int) -> None:
    params = _settings(name, (0, 1, 2, 3))
    xs = random_sequence(90, 3, seed=7)
    want = [lyapunov_spectrum(name, p, xs, k=k, warmup=15) for p in params]
    got = lyapunov_batch(name, params, xs, k=k, warmup=15)
    _same(got, want)
    # not vacuous: the settings really give different exponents
    assert len({float(g.exponents[0]) for g in got}) == len(params)


def test_annihilated_direction_gives_minus_infinity_as_one_run_does() -> None:
    # relu units pushed below 0 by their bias: J_t = 0, log|R_ii| = -inf (the group-of-one branch)
    params = _settings("rnn-relu", (2, 1))
    params[1]["b"] = np.full(5, -50.0)
    xs = random_sequence(60, 3, seed=1)
    got = lyapunov_batch("rnn-relu", params, xs, warmup=5)
    _same(got, [lyapunov_spectrum("rnn-relu", p, xs, k=1, warmup=5) for p in params])
    assert got[1].exponents[0] == -np.inf and np.isfinite(got[0].exponents[0])


def test_split_into_sub_batches_changes_nothing(monkeypatch) -> None:
    params = _settings("lstm", (0, 1, 2, 3, 4))
    xs = random_sequence(70, 3, seed=2)
    whole = lyapunov_batch("lstm", params, xs, warmup=10)
    module = importlib.import_module("gradproof.numeric.lyapunov_batch")
    monkeypatch.setattr(module, "_BATCH_FLOATS", 2 * 70 * 100)  # two settings per sub-batch
    _same(lyapunov_batch("lstm", params, xs, warmup=10), whole)


@settings(max_examples=15, deadline=None)
@given(
    name=st.sampled_from(["rnn-tanh", "lstm", "gru-torch"]),
    seeds=st.lists(st.integers(0, 10_000), min_size=1, max_size=4),
    hidden=st.integers(1, 6),
    steps=st.integers(2, 60),
    k=st.integers(1, 2),
)
def test_property_batch_equals_single_runs(name: str, seeds: list[int], hidden: int, steps: int, k: int) -> None:
    S = 2 * hidden if name == "lstm" else hidden
    k = min(k, S)
    params = [init(name, hidden=hidden, inputs=2, seed=s) for s in seeds]
    xs = random_sequence(steps, 2, seed=seeds[0])
    warmup = steps // 3
    _same(lyapunov_batch(name, params, xs, k=k, warmup=warmup),
          [lyapunov_spectrum(name, p, xs, k=k, warmup=warmup) for p in params])  # fmt: skip


@pytest.mark.parametrize(
    "args, kwargs, match",
    [
        (("lstm", [], np.zeros((5, 2))), {}, "non-empty sequence"),
        (("lstm", init("lstm", hidden=2, inputs=2, seed=0), np.zeros((5, 2))), {}, "sequence of parameter dicts"),
        (("lstm", [init("lstm", hidden=2, inputs=2, seed=0), init("lstm", hidden=3, inputs=2, seed=0)],
          np.zeros((5, 2))), {}, "same hidden"),
        (("lstm", [init("lstm", hidden=2, inputs=2, seed=0)], np.zeros((5, 2))), {"k": 5}, "k must be"),
        (("lstm", [init("lstm", hidden=2, inputs=2, seed=0)], np.zeros((5, 2))), {"warmup": 5}, "warmup must be"),
        (("lstm", [init("lstm", hidden=2, inputs=2, seed=0)], np.zeros((5, 2)) + 1j), {}, "complex"),
    ],
    ids=["empty", "one dict", "sizes differ", "k too large", "warmup too long", "complex"],
)
def test_bad_input(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(GradproofError, match=match):
        lyapunov_batch(*args, **kwargs)


def test_overflow_is_a_gradproof_error() -> None:
    p = init("rnn-identity", hidden=2, inputs=1, seed=0)
    p["W_h"] = np.eye(2) * 1e200
    with pytest.raises(GradproofError, match="overflowed"):
        lyapunov_batch("rnn-identity", [p], np.ones((10, 1)))


def test_sweeps_and_phase_diagram_equal_one_run_per_point() -> None:
    from gradproof.numeric.sweeps import gate_sweep, keep_bias_parameters, norm_sweep, phase_diagram

    kw = dict(hidden=4, inputs=2, steps=80, warmup=10, seed=5)
    xs = random_sequence(80, 2, seed=6)
    d = phase_diagram("gru", norms=(0.5, 2.0, 3.0), biases=(-1.0, 3.0), workers=1, progress=False, **kw)
    want = [[lyapunov_spectrum("gru", keep_bias_parameters("gru", b, hidden=4, inputs=2, seed=5, spectral_norm=s),
                               xs, k=1, warmup=10).largest for s in (0.5, 2.0, 3.0)] for b in (-1.0, 3.0)]  # fmt: skip
    np.testing.assert_array_equal(d.largest, np.array(want))
    g = gate_sweep("lstm", biases=(-2.0, 0.0, 5.0), profile=False, **kw)
    ref = [lyapunov_spectrum("lstm", keep_bias_parameters("lstm", b, hidden=4, inputs=2, seed=5), xs, k=1, warmup=10)
           for b in (-2.0, 0.0, 5.0)]  # fmt: skip
    np.testing.assert_array_equal(g.largest, [r.largest for r in ref])
    np.testing.assert_array_equal(g.stderr, [r.stderr[0] for r in ref])
    r = norm_sweep("rnn-tanh", norms=(0.5, 1.5), **kw)
    ref = [lyapunov_spectrum("rnn-tanh", init("rnn-tanh", hidden=4, inputs=2, seed=5, spectral_norm=s), xs, k=1,
                             warmup=10) for s in (0.5, 1.5)]  # fmt: skip
    np.testing.assert_array_equal(r.largest, [x.largest for x in ref])
    # the profiles from the batched forward pass: gradient_profile's own, every bit
    want = [gradient_profile("rnn-tanh", init("rnn-tanh", hidden=4, inputs=2, seed=5, spectral_norm=s), xs).log_spectral
            for s in (0.5, 1.5)]  # fmt: skip
    np.testing.assert_array_equal(r.log_spectral, np.array(want))
    g = gate_sweep("gru-torch", biases=(-1.0, 4.0), profile=True, **kw)
    want = [gradient_profile("gru-torch", keep_bias_parameters("gru-torch", b, hidden=4, inputs=2, seed=5), xs).log_spectral
            for b in (-1.0, 4.0)]  # fmt: skip
    np.testing.assert_array_equal(g.log_spectral, np.array(want))


@pytest.mark.parametrize("name", ["rnn-relu", "lstm", "gru", "gru-torch"])
def test_unroll_batch_equals_unroll_to_the_bit(name: str) -> None:
    params = _settings(name, (0, 1, 2))
    xs = random_sequence(40, 3, seed=4)
    for traj, p in zip(unroll_batch(name, params, xs), params):
        want = unroll(name, p, xs)
        np.testing.assert_array_equal(traj.states, want.states)
        assert traj.states.flags.c_contiguous and (traj.hidden, traj.inputs, traj.cell) == (5, 3, want.cell)
    with pytest.raises(GradproofError, match="non-empty sequence"):
        unroll_batch(name, [], xs)
