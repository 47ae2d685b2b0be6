"""numeric.stacked: every derived Jacobian of a stacked/bidirectional model against the autograd of
the REAL torch.nn module (float64, 1e-10 relative), for every cell, depths 1..4, both directions,
with and without biases.

The real module never exposes a layer's step, so one step of the whole stack is taken through the
module itself: ``module(x_t, h_prev)`` with h_prev holding, for every layer, the forward state at
t-1 and the reverse state at t+1 computes every layer's state at t exactly as the full sequence
does. Its Jacobian with respect to h_prev has the step Jacobians A^{l,d}_t on its diagonal blocks
and B^{l,d}_t P_h A^{l-1,d'}_t on the blocks below (P_h selects h from the state); with respect to
x_t it has B^{0,d}_t. The chained Jacobians ∂o_t/∂x_s and ∂o_T/∂(h0, c0) are compared with
autograd of the whole-sequence call.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gradproof.derive.errors import GradproofError
from gradproof.numeric import (
    StackedModel,
    depth_profile,
    input_output_jacobians,
    layer_input_jacobians,
    stacked_step_jacobians,
    time_profiles,
    unroll_stacked,
)
from gradproof.numeric.convert import from_torch_stacked
from gradproof.numeric.stacked import initial_state_jacobians

CELLS = ("rnn-tanh", "rnn-relu", "lstm", "gru-torch")
MODULE = {"rnn-tanh": nn.RNN, "rnn-relu": nn.RNN, "lstm": nn.LSTM, "gru-torch": nn.GRU}
RTOL = 1e-10


def _module(name: str, *, layers: int, bidirectional: bool, bias: bool, n: int = 3, m: int = 2,
            seed: int = 0, batch_first: bool = False) -> nn.Module:
    torch.manual_seed(seed)
    kw = {"nonlinearity": name[4:]} if name.startswith("rnn-") else {}
    mod = MODULE[name](m, n, num_layers=layers, bidirectional=bidirectional, bias=bias,
                       batch_first=batch_first, dtype=torch.float64, **kw)  # fmt: skip
    with torch.no_grad():  # bigger than torch's default so that the Jacobians are not tiny
        for p in mod.parameters():
            p.mul_(1.7)
    return mod


def _close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    """|a - b| <= 1e-10 · max|b| (exactly equal when b is zero, e.g. a dead ReLU layer)."""
    scale = float(np.max(np.abs(expected)))
    err = float(np.max(np.abs(actual - expected)))
    assert err <= RTOL * scale, f"{what}: max error {err:.3e}, scale {scale:.3e}"


def _hx(module: nn.Module, h: torch.Tensor, c: torch.Tensor | None):
    return (h, c) if isinstance(module, nn.LSTM) else h


def _run(module: nn.Module, xs: torch.Tensor, h0: torch.Tensor, c0: torch.Tensor | None) -> torch.Tensor:
    x = xs[None] if module.batch_first else xs[:, None]
    out, _ = module(x, _hx(module, h0[:, None], None if c0 is None else c0[:, None]))
    return out[0] if module.batch_first else out[:, 0]


CASES = [
    pytest.param(name, layers, bidir, bias, id=f"{name}-L{layers}-{'bi' if bidir else 'uni'}-{'b' if bias else 'nob'}")
    for name in CELLS for layers in (1, 2, 3, 4) for bidir in (False, True) for bias in (True, False)
]  # fmt: skip


@pytest.mark.parametrize("name, layers, bidir, bias", CASES)
def test_every_jacobian_against_the_real_module(name: str, layers: int, bidir: bool, bias: bool) -> None:
    n, m, T = 3, 2, 4
    module = _module(name, layers=layers, bidirectional=bidir, bias=bias, n=n, m=m, seed=layers)
    model = from_torch_stacked(module)
    D, S, L = model.directions, model.state_size, layers
    rng = np.random.default_rng(layers)
    xs = rng.normal(size=(T, m))
    s0 = rng.uniform(-0.8, 0.8, size=(L, D, S))
    X = torch.from_numpy(xs)
    h0 = torch.from_numpy(s0[:, :, :n].reshape(L * D, n).copy())
    c0 = torch.from_numpy(s0[:, :, n:].reshape(L * D, n).copy()) if name == "lstm" else None

    # the forward pass
    traj = unroll_stacked(model, xs, s0)
    with torch.no_grad():
        out = _run(module, X, h0, c0).numpy()
    np.testing.assert_allclose(traj.outputs, out, rtol=0, atol=1e-13)

    # step and depth Jacobians, one step of the real module at a time
    A = stacked_step_jacobians(model, xs, s0)
    B = layer_input_jacobians(model, xs, s0)
    assert A.shape == (L, D, T, S, S)
    for t in range(T):
        prev = np.empty((L, D, S))
        for l in range(L):
            for d in range(D):
                if d == 0:
                    prev[l, d] = s0[l, d] if t == 0 else traj.states(l, d)[t - 1]
                else:
                    prev[l, d] = s0[l, d] if t == T - 1 else traj.states(l, d)[t + 1]
        flat = torch.from_numpy(prev.reshape(-1).copy())
        x_t = X[t].clone()

        def step(s: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            s = s.reshape(L * D, S)
            h, c = s[:, :n], s[:, n:]
            _, hn = module(x[None, None], _hx(module, h[:, None].contiguous(), c[:, None].contiguous() if name == "lstm" else None))
            if name == "lstm":
                return torch.cat([hn[0][:, 0], hn[1][:, 0]], dim=1).reshape(-1)
            return hn[:, 0].reshape(-1)

        js, jx = torch.autograd.functional.jacobian(step, (flat, x_t))
        js = js.numpy().reshape(L, D, S, L, D, S)
        jx = jx.numpy().reshape(L, D, S, m)
        for l in range(L):
            for d in range(D):
                k = t if d == 0 else T - 1 - t
                _close(A[l, d, k], js[l, d, :, l, d], f"A layer {l} dir {d} t {t + 1}")
                if l == 0:
                    _close(B[0][d, t], jx[0, d], f"input Jacobian dir {d} t {t + 1}")
                    continue
                for d2 in range(D):
                    k2 = t if d2 == 0 else T - 1 - t
                    chained = B[l][d, t][:, d2 * n : (d2 + 1) * n] @ A[l - 1, d2, k2][:n]
                    _close(chained, js[l, d, :, l - 1, d2], f"depth B layer {l} dir {d} from {d2} t {t + 1}")

    # the chained Jacobians: ∂o_t/∂x_s and ∂o_T/∂(h0, c0)
    jac, reach = input_output_jacobians(model, xs, s0)
    ref = torch.autograd.functional.jacobian(lambda x: _run(module, x, h0, c0), X).numpy()  # (T, Dn, T, m)
    _close(jac, ref.transpose(0, 2, 1, 3), "do_t/dx_s")
    assert np.all(jac[~reach] == 0.0)
    if not bidir:
        assert np.array_equal(reach, np.tril(np.ones((T, T), dtype=bool)))

    M0 = initial_state_jacobians(model, xs, s0)
    ins = (h0, c0) if name == "lstm" else (h0,)
    refs = torch.autograd.functional.jacobian(lambda *hc: _run(module, X, *hc, *([] if name == "lstm" else [c0]))[-1], ins)
    ref_h = refs[0].numpy().reshape(D * n, L, D, n)
    _close(M0[..., :n].transpose(2, 0, 1, 3), ref_h, "do_T/dh0")
    if name == "lstm":
        ref_c = refs[1].numpy().reshape(D * n, L, D, n)
        _close(M0[..., n:].transpose(2, 0, 1, 3), ref_c, "do_T/dc0")


def test_depth_profile_is_the_grid_sum_and_agrees_with_input_jacobians() -> None:
    # ∂o_T/∂x_s = Σ_d ∂o_T/∂s^{0,d}_s B^{0,d}_s: the reverse accumulation (depth_profile's M) and
    # the forward one (input_output_jacobians) agree; the norms at the top layer, t = T, are 1
    # for a unidirectional stack (∂h_T/∂s_T selects h).
    model = StackedModel.init("gru-torch", hidden=3, inputs=2, num_layers=3, seed=4)
    xs = np.random.default_rng(0).normal(size=(5, 2))
    prof = depth_profile(model, xs)
    assert prof.shape == (3, 1, 5)
    assert prof[2, 0, 4] == pytest.approx(1.0, rel=1e-14)
    from gradproof.numeric.stacked import _output_adjoints

    M, _ = _output_adjoints(model, xs, None, None)
    B0 = layer_input_jacobians(model, xs)[0]
    jac, _ = input_output_jacobians(model, xs)
    for s in range(5):
        _close(M[0, 0, s] @ B0[0, s], jac[4, s], f"s={s}")


def test_time_profiles_are_each_layers_own_profile() -> None:
    model = StackedModel.init("lstm", hidden=2, inputs=3, num_layers=2, bidirectional=True, seed=1)
    xs = np.random.default_rng(1).normal(size=(6, 3))
    profs = time_profiles(model, xs)
    A = stacked_step_jacobians(model, xs)
    for l in range(2):
        for d in range(2):
            P = np.eye(4)
            expected = []
            for k in range(5, -1, -1):  # ∂s_6/∂s_k = A_6 ... A_{k+1}, k = 5..0, processing order
                P = P @ A[l, d, k]
                expected.append(np.linalg.norm(P, 2))
            np.testing.assert_allclose(profs[l][d].spectral, expected[::-1], rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    name=st.sampled_from(CELLS),
    layers=st.integers(1, 3),
    bidir=st.booleans(),
    bias=st.booleans(),
    T=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_causal_zeros_are_exactly_zero(name: str, layers: int, bidir: bool, bias: bool, T: int, seed: int) -> None:
    from gradproof.numeric import input_sensitivity

    module = _module(name, layers=layers, bidirectional=bidir, bias=bias, n=2, m=2, seed=seed)
    xs = np.random.default_rng(seed).normal(size=(T, 2))
    S = input_sensitivity(module, xs)
    assert S.shape == (T, T) and S.dtype == np.float64
    if not bidir:
        upper = S[np.triu_indices(T, 1)]
        assert np.all(upper == 0.0) and not np.any(np.signbit(upper))
    assert np.all(np.isfinite(S)) and np.all(S >= 0.0)


def test_bad_models() -> None:
    p = StackedModel.init("rnn-tanh", hidden=2, inputs=3, num_layers=2, seed=0).layers
    with pytest.raises(GradproofError, match="layer 1 .*must have shape"):
        StackedModel("rnn-tanh", (p[0], ({"W_h": np.eye(2), "W_x": np.ones((2, 3)), "b": np.zeros(2)},)))
    with pytest.raises(GradproofError, match="must hold 2 parameter dict"):
        StackedModel("rnn-tanh", p, bidirectional=True)
    with pytest.raises(GradproofError, match="bias=False but b are not zero"):
        StackedModel("rnn-tanh", ({"W_h": np.eye(2), "W_x": np.ones((2, 3)), "b": np.ones(2)},), bias=False)
    with pytest.raises(GradproofError, match="expected a numeric.StackedModel"):
        unroll_stacked("lstm", np.ones((3, 3)))  # type: ignore[arg-type]
    model = StackedModel("rnn-tanh", p)
    with pytest.raises(GradproofError, match=r"xs must have shape \(T, inputs\) = \(T, 3\)"):
        unroll_stacked(model, np.ones((3, 2)))
    with pytest.raises(GradproofError, match="output_step"):
        depth_profile(model, np.ones((3, 3)), output_step=4)


@pytest.mark.parametrize("name", ["rnn-tanh", "rnn-relu"])
def test_the_whole_stack_bound_holds_on_the_grid(name: str) -> None:
    # stack_regime's claim: ||do_T/ds^l_t|| <= C(k + L-1-l, L-1-l) eta_max^k eta_depth^(L-1-l), k = T - t
    from math import comb

    from gradproof.numeric import stack_regime

    L, T = 3, 6
    model = StackedModel.init(name, hidden=4, inputs=2, num_layers=L, seed=7, spectral_norm=0.8)
    sr = stack_regime(model)
    assert sr.verdict == "vanishing guaranteed" and sr.eta_time == pytest.approx(0.8, rel=1e-12)
    assert sr.eta_depth is not None and sr.eta_depth > 0
    xs = np.random.default_rng(7).normal(size=(T, 2))
    grid = depth_profile(model, xs)
    for l in range(L):
        for t in range(1, T + 1):
            k, up = T - t, L - 1 - l
            bound = comb(k + up, up) * sr.eta_time**k * sr.eta_depth**up
            assert grid[l, 0, t - 1] <= bound * (1 + 1e-12), (l, t)
    loud = StackedModel.init(name, hidden=4, inputs=2, num_layers=L, seed=7, spectral_norm=1.5)
    assert stack_regime(loud).verdict == "exploding possible"
