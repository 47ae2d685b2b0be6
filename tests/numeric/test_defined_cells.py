"""Cells defined by equations through the numeric layer: init, unroll, Jacobians, verify."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gradproof.numeric as num
from gradproof.derive import SHIPPED_CELL_NAMES, cell, define_cell
from gradproof.numeric.torch_reference import TorchReference


@pytest.mark.parametrize("name", SHIPPED_CELL_NAMES)
@pytest.mark.parametrize("reference", ["torch", "complex-step", "finite-diff"])
def test_shipped_cells_verify_against_every_reference(name, reference):
    c = cell(name)
    p = num.init(c, hidden=3, inputs=2, seed=0)
    xs = num.random_sequence(6, 2, seed=1)
    v = num.verify(c, p, xs, reference=reference)
    assert v.ok
    if reference != "finite-diff":
        assert max(ch.max_rel for ch in v.checks) <= 1e-10


@pytest.mark.parametrize("name", SHIPPED_CELL_NAMES)
def test_step_jacobians_equal_torch_autodiff(name):
    c = cell(name)
    p = num.init(c, hidden=3, inputs=2, seed=3)
    xs = num.random_sequence(5, 2, seed=4)
    s0 = np.random.default_rng(5).normal(scale=0.5, size=c.state_size(3))
    mine = num.step_jacobians(c, p, xs, s0=s0)
    ref = TorchReference().step_jacobians(c, p, xs, s0)
    assert mine.shape == (5, c.state_size(3), c.state_size(3))
    np.testing.assert_allclose(mine, ref, rtol=1e-10, atol=1e-13)


def test_state_vector_is_state_names_concatenated_in_order():
    text = "c = 0.5 * c + tanh(W @ h + U @ x + b)\nh = sigmoid(c)"
    a = define_cell("a", ("h", "c"), text)
    p = num.init(a, hidden=2, inputs=1, seed=0)
    assert set(p) == {"W", "U", "b"} and p["W"].shape == (2, 2) and p["U"].shape == (2, 1)
    xs = np.array([[0.3]])
    s0 = np.array([0.1, -0.2, 0.4, 0.5])  # h = (0.1, -0.2), c = (0.4, 0.5)
    traj = num.unroll(a, p, xs, s0=s0)
    c1 = 0.5 * s0[2:] + np.tanh(p["W"] @ s0[:2] + p["U"] @ xs[0] + p["b"])
    h1 = 1.0 / (1.0 + np.exp(-c1))
    np.testing.assert_allclose(traj.states[1], np.concatenate([h1, c1]), rtol=1e-14, atol=0)


def test_torch_program_matches_indrnn_formula():
    c = cell("indrnn")
    p = num.init(c, hidden=3, inputs=2, seed=2)
    xs = num.random_sequence(4, 2, seed=2)
    states = TorchReference().forward(c, p, xs)
    h = np.zeros(3)
    for x in xs:
        h = np.maximum(p["u"] * h + p["W_x"] @ x + p["b"], 0.0)
    np.testing.assert_allclose(states[-1], h, rtol=1e-14, atol=1e-15)
    assert torch.get_default_dtype() == torch.float32  # the reference uses float64 itself


def test_gradient_profile_runs_for_a_defined_cell():
    c = cell("mgu")
    p = num.init(c, hidden=3, inputs=2, seed=0)
    xs = num.random_sequence(8, 2, seed=1)
    prof = num.gradient_profile(c, p, xs)
    assert prof.T == 8
    assert np.all(np.isfinite(prof.spectral))
