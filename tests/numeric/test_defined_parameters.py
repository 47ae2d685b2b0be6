"""Cells with parameterised functions (leaky_relu(z, 0.2), hardtanh(z, -2, 2) …) against torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gradproof.numeric as num
from gradproof.derive import define_cell
from gradproof.numeric.torch_reference import TorchReference

F = torch.nn.functional

#: (call, the torch function with the same parameters, the kinks of σ)
CASES = [
    ("leaky_relu({z}, 0.2)", lambda t: F.leaky_relu(t, 0.2), (0.0,)),
    ("elu({z}, 1.5)", lambda t: F.elu(t, 1.5), (0.0,)),
    ("celu({z}, 0.5)", lambda t: F.celu(t, 0.5), (0.0,)),
    ("hardtanh({z}, -2, 2)", lambda t: F.hardtanh(t, -2.0, 2.0), (-2.0, 2.0)),
    ("softplus({z}, 2)", lambda t: F.softplus(t, 2.0), (10.0,)),
    ("softplus({z}, 2, 5)", lambda t: F.softplus(t, 2.0, 5.0), (2.5,)),
]
IDS = [c.format(z="z") for c, _, _ in CASES]


def _cell(call: str):
    return define_cell("p", ("h", "c"), f"""
g = {call.format(z="W_g @ h + U_g @ x + b_g")}
c = sigmoid(W_f @ h + U_f @ x + b_f) * c + g
h = tanh(c)
""")


@pytest.mark.parametrize("call,fn,kinks", CASES, ids=IDS)
@pytest.mark.parametrize("reference", ["torch", "complex-step"])
def test_verify_against_references(call, fn, kinks, reference):
    c = _cell(call)
    p = num.init(c, hidden=3, inputs=2, seed=0)
    xs = num.random_sequence(6, 2, seed=1)
    v = num.verify(c, p, xs, reference=reference)
    assert v.ok
    assert max(ch.max_rel for ch in v.checks) <= 1e-10


@pytest.mark.parametrize("call,fn,kinks", CASES, ids=IDS)
def test_step_jacobians_equal_torch_at_the_kinks(call, fn, kinks):
    """Pre-activations exactly at every kink: gradproof's σ' follows PyTorch's autograd there."""
    c = define_cell("k", ("h",), "h = " + call.format(z="W @ h + U @ x + b"))
    p = num.init(c, hidden=len(kinks) + 1, inputs=1, seed=2)
    n = len(kinks) + 1
    p["b"] = np.array([*kinks, 0.7])  # h0 = 0, x = 0: z = b, on the kinks and one smooth point
    xs = np.zeros((1, 1))
    s0 = np.zeros(n)
    mine = num.step_jacobians(c, p, xs, s0=s0)[0]
    ref = TorchReference().step_jacobians(c, p, xs, s0)[0]
    np.testing.assert_allclose(mine, ref, rtol=1e-12, atol=0)
    # and the diagonal factor is torch's own derivative at those points
    z = torch.tensor(p["b"], dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(fn(z).sum(), z)
    expected = grad.numpy()[:, None] * p["W"]
    np.testing.assert_allclose(mine, expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("call,fn,kinks", CASES, ids=IDS)
def test_torch_program_uses_the_parameters(call, fn, kinks):
    c = define_cell("k", ("h",), "h = " + call.format(z="W @ h + U @ x + b"))
    p = num.init(c, hidden=2, inputs=1, seed=3)
    xs = num.random_sequence(3, 1, seed=4) * 4
    states = TorchReference().forward(c, p, xs)
    h = torch.zeros(2, dtype=torch.float64)
    P = {k: torch.tensor(v, dtype=torch.float64) for k, v in p.items()}
    for x in torch.tensor(xs, dtype=torch.float64):
        h = fn(P["W"] @ h + P["U"] @ x + P["b"])
    np.testing.assert_allclose(states[-1], h.numpy(), rtol=1e-14, atol=1e-15)


@settings(max_examples=20, deadline=None)
@given(
    fn=st.sampled_from(["leaky_relu", "elu", "celu", "softplus", "hardtanh"]),
    a=st.floats(0.1, 3.0, allow_nan=False).map(lambda v: round(v, 3)),
    seed=st.integers(0, 2**16),
)
def test_random_parameters_agree_with_torch_autodiff(fn, a, seed):
    params = f"-{a!r}, {a!r}" if fn == "hardtanh" else repr(a)
    c = define_cell("r", ("h",), f"h = 0.5 * {fn}(W @ h + U @ x + b, {params}) + 0.5 * h")
    p = num.init(c, hidden=3, inputs=2, seed=seed)
    xs = num.random_sequence(4, 2, seed=seed + 1) * 2
    s0 = np.random.default_rng(seed).normal(size=3)
    mine = num.step_jacobians(c, p, xs, s0=s0)
    ref = TorchReference().step_jacobians(c, p, xs, s0)
    np.testing.assert_allclose(mine, ref, rtol=1e-10, atol=1e-12)


def test_celu_torch_function_is_float64_exact_where_f_celu_is_not():
    """F.celu's backward rounds 1/α to float32; the reference writes celu by its formula."""
    from gradproof.numeric.activations import torch_function

    alpha = 1.188
    z = torch.tensor([-2.0, -0.5, 0.0, 0.7], dtype=torch.float64, requires_grad=True)
    exact = np.array([np.exp(-2.0 / alpha), np.exp(-0.5 / alpha), 1.0, 1.0])
    (ours,) = torch.autograd.grad(torch_function(f"celu(x, {alpha})")(z).sum(), z)
    (theirs,) = torch.autograd.grad(F.celu(z, alpha).sum(), z)
    np.testing.assert_allclose(ours.numpy(), exact, rtol=1e-15, atol=0)
    assert np.max(np.abs(theirs.numpy() - exact)) > 1e-9  # the float32 rounding being avoided
    np.testing.assert_allclose(torch_function(f"celu(x, {alpha})")(z).detach().numpy(),
                               F.celu(z, alpha).detach().numpy(), rtol=1e-15, atol=1e-16)
