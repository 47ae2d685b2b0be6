"""Tests of numeric.deep: gradient norm against depth from the derived skip-block Jacobians.

The reference is independent code: the same stack written directly in torch (float64) and
differentiated by ``torch.autograd.functional.jacobian``; its spectral norms must agree with the
derived, compiled ones to 1e-10 relative (docs/math.md §5: residual I + J_F, highway formula).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gradproof import numeric
from gradproof.derive import GradproofError
from gradproof.numeric.deep import deep_forward, deep_parameters, feedforward_profile

ACTS = {"tanh": torch.tanh, "sigmoid": torch.sigmoid, "relu": torch.relu}


def _torch_layer(kind: str, act, p: dict):
    W, b = torch.from_numpy(p["W"]), torch.from_numpy(p["b"])
    if kind == "plain":
        return lambda x: act(W @ x + b)
    if kind == "residual":
        return lambda x: x + act(W @ x + b)
    WT, bT = torch.from_numpy(p["W_T"]), torch.from_numpy(p["b_T"])

    def hw(x):
        T = torch.sigmoid(WT @ x + bT)
        return T * act(W @ x + b) + (1 - T) * x

    return hw


def _torch_log_norms(kind: str, activation: str, depth: int, width: int, seed: int, **kw) -> np.ndarray:
    layers = deep_parameters(kind=kind, depth=depth, width=width, seed=seed, **kw)
    fns = [_torch_layer(kind, ACTS[activation], p) for p in layers]
    y0 = torch.from_numpy(np.random.default_rng([seed, 1]).normal(0.0, 1.0, width))
    ys = [y0]
    with torch.no_grad():
        for f in fns:
            ys.append(f(ys[-1]))
    out = np.zeros(depth + 1)
    for l in range(depth):
        def tail(y, l=l):
            for f in fns[l:]:
                y = f(y)
            return y

        J = torch.autograd.functional.jacobian(tail, ys[l])
        out[l] = math.log(float(torch.linalg.matrix_norm(J, ord=2)))
    return out


@pytest.mark.parametrize("kind", ["plain", "residual", "highway"])
@pytest.mark.parametrize("activation", ["tanh", "sigmoid"])
def test_depth_profile_matches_torch_autodiff(kind, activation):
    depth, width, seed = 12, 8, 3
    got = feedforward_profile(kind=kind, depth=depth, width=width, seed=seed, activation=activation)
    expected = _torch_log_norms(kind, activation, depth, width, seed)
    # relative 1e-10 on the norms themselves ⇔ absolute 1e-10 on their logarithms
    np.testing.assert_allclose(np.exp(got.log_norms - expected), 1.0, rtol=1e-10, atol=0)
    assert got.log_norms[-1] == 0.0


@pytest.mark.slow
def test_depth_50_width_32_matches_torch_for_every_kind():
    for kind in ("plain", "residual", "highway"):
        got = feedforward_profile(kind=kind, depth=50, width=32, seed=0)
        expected = _torch_log_norms(kind, "tanh", 50, 32, 0)
        np.testing.assert_allclose(np.exp(got.log_norms - expected), 1.0, rtol=1e-10, atol=0)


def test_forward_matches_torch():
    layers = deep_parameters(kind="highway", depth=5, width=4, seed=1)
    y0 = np.linspace(-1, 1, 4)
    ys = deep_forward(layers, y0, kind="highway", activation="tanh")
    y = torch.from_numpy(y0)
    for p in layers:
        y = _torch_layer("highway", torch.tanh, p)(y)
    np.testing.assert_allclose(ys[-1], y.numpy(), rtol=1e-14, atol=1e-15)


def test_skips_keep_the_gradient_where_the_plain_stack_loses_it():
    # The lecture's claim, measured: at depth 50 with sigmoid layers (γ = 1/4) the plain stack's
    # gradient vanishes below 1e-20, the residual stack's stays above 1e-2 (identity path), and a
    # highway with closed gates (b_T = -6) carries it almost unchanged.
    plain = feedforward_profile(kind="plain", activation="sigmoid")
    res = feedforward_profile(kind="residual", activation="sigmoid")
    hw = feedforward_profile(kind="highway", activation="sigmoid", gate_bias=-6.0)
    assert plain.log10_decades < -20
    assert res.log10_decades > -2
    assert hw.log10_decades > -1
    # the plain stack's norm decreases with distance from the output, overall
    assert plain.log_norms[0] < plain.log_norms[25] < plain.log_norms[49]


def test_result_is_frozen_and_exported():
    p = numeric.feedforward_profile(kind="residual", depth=4, width=3, seed=0)
    assert isinstance(p, numeric.DepthProfile)
    assert p.log_norms.shape == p.log_frobenius.shape == (5,)
    with pytest.raises(ValueError):
        p.log_norms[0] = 0.0
    # Frobenius ≥ spectral everywhere
    assert np.all(p.log_frobenius >= p.log_norms - 1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [dict(kind="dense"), dict(depth=0), dict(width=-1), dict(seed=-1), dict(gain=0.0), dict(activation="nope")],
    ids=["kind", "depth", "width", "seed", "gain", "activation"],
)
def test_bad_input_raises_gradproof_error(kwargs):
    with pytest.raises(GradproofError):
        feedforward_profile(**kwargs)
