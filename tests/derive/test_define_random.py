"""Hypothesis: random small cells from equations, proved against brute force and torch autodiff."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gradproof.numeric as num
from gradproof.derive import define_cell, input_jacobian, step_jacobian
from gradproof.derive.equality import difference_is_zero
from gradproof.numeric.torch_reference import TorchReference

ACTS = ("sigmoid", "tanh")


@st.composite
def cells(draw):
    k = draw(st.integers(1, 2))
    state = ("h", "c")[:k]
    counter = itertools.count()
    lines = []
    gates = []
    for j in range(draw(st.integers(1, 2))):
        i = next(counter)
        src = draw(st.sampled_from(state))
        act = draw(st.sampled_from(ACTS))
        lines.append(f"g{j} = {act}(W{i} @ {src} + U{i} @ x + b{i})")
        gates.append(f"g{j}")
    leaves = st.sampled_from(gates + list(state) + [f"tanh({s})" for s in state])

    def combine(children):
        return st.one_of(
            st.tuples(children, children).map(lambda p: f"({p[0]} * {p[1]})"),
            st.tuples(children, children).map(lambda p: f"({p[0]} + {p[1]})"),
            st.tuples(children, children).map(lambda p: f"({p[0]} - {p[1]})"),
            children.map(lambda a: f"(1 - {a})"),
            children.map(lambda a: f"0.5 * {a}"),
        )

    expr = st.recursive(leaves, combine, max_leaves=4)
    for s in state:
        lines.append(f"{s} = {draw(expr)}")
    lines[-1] += "".join(f" + {g}" for g in gates)  # every gate is used (define_cell demands it)
    return define_cell("random", state, "\n".join(lines))


@pytest.mark.slow
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(c=cells(), n=st.integers(1, 2))
def test_random_cells_equal_brute_force(c, n):
    e = c.explicit(n, 1)
    assert difference_is_zero(step_jacobian(c).explicit(n, 1), e.next_state.jacobian(e.state))
    assert difference_is_zero(input_jacobian(c).explicit(n, 1), e.next_state.jacobian(e.x))


@settings(max_examples=25, deadline=None)
@given(c=cells(), seed=st.integers(0, 2**16))
def test_random_cells_agree_with_torch_autodiff(c, seed):
    p = num.init(c, hidden=3, inputs=2, seed=seed)
    xs = num.random_sequence(4, 2, seed=seed + 1)
    s0 = np.random.default_rng(seed).normal(scale=0.5, size=c.state_size(3))
    mine = num.step_jacobians(c, p, xs, s0=s0)
    ref = TorchReference().step_jacobians(c, p, xs, s0)
    scale = max(1.0, float(np.max(np.abs(ref))))
    np.testing.assert_allclose(mine, ref, rtol=1e-10, atol=1e-10 * scale)
    v = num.verify(c, p, xs, s0=s0, reference="torch")
    assert v.ok
