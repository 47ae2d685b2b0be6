"""The theorem of Pascanu et al. (2013) checked on numbers (docs/math.md §1, §3).

Properties over thousands of random draws: with η < 1 the measured ‖∂h_i/∂h_j‖₂ never exceeds
η^{i-j} nor the data-dependent bound; the LSTM's cell-path product never exceeds ∏ max f_t. And the
bound is not vacuous: for a normal W with pre-activations near 0 it is tight within a factor 2.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradproof import derive
from gradproof.numeric import bound_profile, gradient_profile, init, random_sequence, step_jacobians, unroll

ACTIVATIONS = ("tanh", "sigmoid", "relu")


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    activation=st.sampled_from(ACTIVATIONS),
    hidden=st.integers(1, 6),
    steps=st.integers(1, 25),
    seed=st.integers(0, 2**31 - 1),
    eta=st.floats(0.05, 0.99),
    scale=st.floats(1e-3, 3.0),
)
def test_measured_norm_never_exceeds_the_bounds(activation, hidden, steps, seed, eta, scale):
    # docs/math.md §1: ‖∂h_i/∂h_j‖₂ ≤ ∏ ‖D(σ'(z_t))‖₂ ‖W_h‖₂ ≤ η^{i-j}, η = γ σ_max(W_h).
    gamma = float(derive.gamma(activation))
    name = f"rnn-{activation}"
    p = init(name, hidden=hidden, inputs=2, seed=seed, spectral_norm=eta / gamma)
    xs = random_sequence(steps, 2, seed=seed + 1, scale=scale)
    with np.errstate(all="raise"):
        measured = gradient_profile(name, p, xs).log_spectral
        z = unroll(name, p, xs).intermediates()["z"]
        bounds = bound_profile(activation, p["W_h"], z)
    slack = 1e-9 * (1 + np.abs(bounds.log_eta_bound))
    assert np.all(measured <= bounds.log_eta_bound + slack)
    finite = np.isfinite(bounds.log_data_bound)
    assert np.all(measured[finite] <= bounds.log_data_bound[finite] + 1e-9 * (1 + np.abs(bounds.log_data_bound[finite])))
    # where a factor of the data bound is 0 (relu off), the product itself is 0
    assert np.all(np.isneginf(measured[~finite]) | (measured[~finite] < -600))
    # the data-dependent bound is never looser than η^{T-t}
    assert np.all(bounds.log_data_bound <= bounds.log_eta_bound + slack)


@settings(max_examples=300, deadline=None)
@given(hidden=st.integers(1, 5), steps=st.integers(1, 30), seed=st.integers(0, 2**31 - 1))
def test_lstm_cell_path_product_never_exceeds_product_of_max_forget_gate(hidden, steps, seed):
    # docs/math.md §3: along the cell path ∂c_t/∂c_{t-1} = D(f_t), so ‖∏ D(f_t)‖₂ ≤ ∏ max f_t.
    p = init("lstm", hidden=hidden, inputs=3, seed=seed)
    xs = random_sequence(steps, 3, seed=seed + 1)
    J = step_jacobians("lstm", p, xs)
    cc = J[:, hidden:, hidden:]  # the derived dc/dc blocks
    f = unroll("lstm", p, xs).intermediates()["f"]
    P = np.eye(hidden)
    log_bound = 0.0
    for t in range(steps - 1, -1, -1):
        P = P @ cc[t]
        log_bound += np.log(np.max(np.abs(f[t])))
        assert np.log(np.linalg.norm(P, 2)) <= log_bound + 1e-12
    # and the block really is diagonal: the cell path is elementwise
    off = cc - np.einsum("tij,ij->tij", cc, np.eye(hidden))
    assert np.max(np.abs(off)) == 0.0


@pytest.mark.parametrize("s", [0.5, 0.9, 0.99])
def test_bound_is_not_vacuous_for_a_normal_matrix_near_zero(s):
    # A normal W = s Q (Q orthogonal: σ_max = ρ = s) and pre-activations kept near 0, where
    # tanh' ≈ γ = 1: the measured norm of the product is within a factor 2 of η^{i-j} for short spans.
    n = 6
    rng = np.random.default_rng(7)
    Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
    p = {"W_h": s * Q, "W_x": np.zeros((n, 1)), "b": np.zeros(n)}
    xs = np.zeros((8, 1))
    s0 = 1e-4 * rng.normal(size=n)
    measured = gradient_profile("rnn-tanh", p, xs, s0).log_spectral
    spans = np.arange(8, 0, -1)
    bound = spans * np.log(s)
    short = spans <= 5
    assert np.all(measured <= bound + 1e-12)
    assert np.all(bound[short] - measured[short] <= np.log(2.0))


@pytest.mark.parametrize("name", ["rnn-tanh", "lstm", "gru-torch"])
def test_bptt_contributions_are_the_norms_of_the_terms_that_sum_to_the_gradient(name):
    # docs/math.md §7: truncated BPTT drops the terms of the sum ∂J/∂W = Σ_t G_tᵀ λ_t v_tᵀ with t < T - τ.
    from gradproof.numeric.gradients import bptt_contributions, parameter_gradients

    p = init(name, hidden=3, inputs=2, seed=5)
    xs = random_sequence(12, 2, seed=6)
    s0 = np.linspace(-0.5, 0.5, derive.cell(name).state_size(3))
    w = np.random.default_rng(1).normal(size=(12, 3))
    param = derive.cell(name).parameter_names[0]
    c = bptt_contributions(name, p, xs, s0, parameter=param, loss_weights=w)
    full = parameter_gradients(name, p, xs, s0, loss_weights=w)[param]
    # the triangle inequality over the terms; and the last term (λ_T = w_T: no future) is exactly the
    # gradient of a one-step run from s_{T-1}, whose Frobenius norm is the product of the norms
    assert np.linalg.norm(full) <= c.sum() * (1 + 1e-12)
    last = parameter_gradients(name, p, xs[-1:], unroll(name, p, xs, s0).states[-2], loss_weights=w[-1:])[param]
    assert np.linalg.norm(last) == pytest.approx(c[-1], rel=1e-12)
    with pytest.raises(derive.GradproofError, match="no parameter"):
        bptt_contributions(name, p, xs, parameter="W_nope", loss_weights=w)
