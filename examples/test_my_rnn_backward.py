"""My hand-written RNN backward pass, checked by gradproof (run: python -m pytest test_my_rnn_backward.py)."""

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gradproof.numeric.testing import (
    check_gradient,
    check_recurrent_backward,
    check_vjp,
    parameters,
    sequences,
)


# ---- my model: h_t = tanh(W_h h_{t-1} + W_x x_t + b), and its backward pass written by hand ----
def step(p, h, x):
    return np.tanh(p["W_h"] @ h + p["W_x"] @ x + p["b"])


def step_backward(p, h, x, g):
    """VJP of one step: g = ∂loss/∂h_t  ->  (∂loss/∂h_{t-1}, {name: ∂loss/∂param})."""
    dz = g * (1 - step(p, h, x) ** 2)
    return p["W_h"].T @ dz, {"W_h": np.outer(dz, h), "W_x": np.outer(dz, x), "b": dz}


def forward(p, xs, h0):
    hs, h = [], h0
    for x in xs:
        h = step(p, h, x)
        hs.append(h)
    return np.stack(hs)  # (T, hidden)


def backward(p, xs, h0, g_hs):
    """Full BPTT: g_hs = ∂loss/∂hs (T, hidden)  ->  (∂loss/∂p, ∂loss/∂xs, ∂loss/∂h0)."""
    hs = forward(p, xs, h0)
    prev = np.vstack([h0, hs[:-1]])
    dp = {k: np.zeros_like(v) for k, v in p.items()}
    dxs, carry = np.zeros_like(xs), np.zeros_like(h0)
    for t in reversed(range(len(xs))):
        dz = (g_hs[t] + carry) * (1 - hs[t] ** 2)
        dp["W_h"] += np.outer(dz, prev[t])
        dp["W_x"] += np.outer(dz, xs[t])
        dp["b"] += dz
        dxs[t] = p["W_x"].T @ dz
        carry = p["W_h"].T @ dz
    return dp, dxs, carry


# ---- the tests ----------------------------------------------------------------------------------
def test_step_backward_through_time(gradproof_params, gradproof_sequence):
    p = gradproof_params("rnn-tanh", hidden=8, inputs=3)  # seeded: pytest --gradproof-seed N
    xs = gradproof_sequence(20, 3)
    check_recurrent_backward(step, step_backward, p, xs, np.zeros(8))


def test_full_bptt_as_a_vjp(gradproof_params, gradproof_sequence):
    p, xs = gradproof_params("rnn-tanh", hidden=5, inputs=3), gradproof_sequence(10, 3)
    check_vjp(forward, backward, p, xs, np.full(5, 0.1))  # ∂/∂p, ∂/∂xs and ∂/∂h0 at once


def test_loss_gradient_in_torch(gradproof_params, gradproof_rng):
    p = gradproof_params("rnn-tanh", hidden=4, inputs=2, torch=True)  # a dict of tensors
    x = torch.from_numpy(gradproof_rng.standard_normal(2))

    def loss(p):
        return torch.sum(torch.tanh(p["W_x"] @ x + p["b"]) ** 2)

    def grad(p):
        h = torch.tanh(p["W_x"] @ x + p["b"])
        dz = 2 * h * (1 - h**2)
        return {"W_h": torch.zeros_like(p["W_h"]), "W_x": torch.outer(dz, x), "b": dz}

    check_gradient(loss, grad, p)


@settings(max_examples=20, deadline=None)
@given(drawn=parameters("rnn-tanh", hidden=st.integers(1, 6), inputs=2, spectral_norm=1.5),
       xs=sequences(st.integers(1, 8), 2))
def test_any_size_and_any_sequence(drawn, xs):
    _cell, p = drawn
    check_recurrent_backward(step, step_backward, p, xs, np.zeros(p["b"].shape[0]))
