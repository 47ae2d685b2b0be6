"""Tests of derive.architectures: stacked and bidirectional recurrences (docs/math.md §6).

Evidence, independent of the code under test:

1. the path count C(T−t+L−l, L−l) against an independent dynamic programme over the grid and
   against the enumerated paths;
2. ∂s_T^L/∂s_t^l as the sum over grid paths of A/B products, against ``Matrix.jacobian`` of an
   explicitly unrolled 2-layer, 3-step stack (every node, several cells, n = 1..2), at random
   nonzero rational points evaluated to 40 digits;
3. the causal zeros of a bidirectional layer: the brute-force Jacobian ∂s_t/∂x_s is *exactly* the
   zero matrix where the pattern says so (symbolic, no evaluation), and the other blocks agree;
4. the directions do not interact: block-diagonal joint step.
"""

from __future__ import annotations

import random

from functools import lru_cache

import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from gradproof.derive import GradproofError, input_jacobian, step_jacobian, text
from gradproof.derive.algebra import explicit
from gradproof.derive.architectures import (
    Architecture,
    bidirectional_step,
    causal_pattern,
    explicit_bidirectional,
    explicit_stack,
    grid_paths,
    path_count,
    stack_jacobian,
    stack_steps,
)
from gradproof.derive.cells import cell

# ----------------------------------------------------------------------------------------------
# 1. Counting paths
# ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _paths_dp(t: int, l: int, T: int, L: int) -> int:
    """Number of monotone paths by the recursion N(t, l) = N(t+1, l) + N(t, l+1), N(T, L) = 1."""
    if t > T or l > L:
        return 0
    if (t, l) == (T, L):
        return 1
    return _paths_dp(t + 1, l, T, L) + _paths_dp(t, l + 1, T, L)


def test_path_count_is_the_binomial_and_matches_enumeration():
    t, l, T, L = sp.symbols("t l T L", integer=True, nonnegative=True)
    assert path_count() == sp.binomial(T - t + L - l, L - l)
    for TT in range(1, 6):
        for LL in range(1, 5):
            for tt in range(0, TT + 1):
                for ll in range(0, LL + 1):
                    paths = grid_paths(tt, ll, TT, LL)
                    expected = _paths_dp(tt, ll, TT, LL)
                    assert len(paths) == len(set(paths)) == expected
                    assert path_count().subs({T: TT, t: tt, L: LL, l: ll}) == expected
                    for p in paths:  # monotone unit moves ending at (T, L)
                        nodes = ((tt, ll),) + p
                        assert all(
                            (b[0] - a[0], b[1] - a[1]) in ((1, 0), (0, 1)) for a, b in zip(nodes, nodes[1:])
                        )
                        assert nodes[-1] == (TT, LL)


def test_stack_jacobian_terms_follow_the_paths():
    # from (2, 1) to (3, 2): up then right, or right then up (docs/math.md §6), latest factor on the left
    sj = stack_jacobian("rnn-tanh", t=2, l=1, steps=3, depth=2)
    assert text(sj.result) == "A(3,2) B(2,2) + B(3,2) A(3,1)"
    assert sj.count == 2
    big = stack_jacobian("gru", t=1, l=1, steps=4, depth=3)
    assert big.count == sp.binomial(3 + 2, 2) == len(big.result.args) == 10
    # an input enters at layer 1; an initial state at step 1
    assert stack_jacobian("rnn-tanh", t=2, l=0, steps=3, depth=2).count == sp.binomial(1 + 1, 1)
    assert stack_jacobian("rnn-tanh", t=0, l=2, steps=3, depth=2).count == 1


# ----------------------------------------------------------------------------------------------
# 2. Brute force on an explicit unrolled stack
# ----------------------------------------------------------------------------------------------


def _point(symbols, seed: int) -> dict:
    rng = random.Random(seed)
    values = [k for k in range(-9, 10) if k != 0]
    return {s: sp.Rational(rng.choice(values), 9) for s in sorted(symbols, key=sp.default_sort_key)}


def _float_point(point: dict) -> dict:
    """``point`` as 60-digit floats. Substituted before ``Matrix.jacobian``, exact rationals inside the
    nested exp/tanh of an unrolled model made SymPy's expressions and their evaluation swell (minutes
    per gated cell); with floats the brute force is still SymPy's symbolic Jacobian in the variables
    differentiated, at ~60 digits, and the comparison below is at 1e-30."""
    return {k: sp.Float(v, 60) for k, v in point.items()}


def _all_symbols(model) -> set:
    out: set = set()
    for v in list(model.states.values()) + [v for v in model.factors.values() if isinstance(v, sp.MatrixBase)]:
        out |= v.free_symbols
    return out


def _numbers(a: sp.Matrix) -> list:
    """The entries of a matrix of closed-form numbers, evaluated by ``evalf`` to 45 digits.

    ``evalf`` raises its working precision until the requested digits are right; printing the
    closed forms for ``lambdify`` cost far more (SymPy orders an Add's terms by their numeric values).
    """
    return [e.evalf(45) for e in a]


def _close(a: sp.Matrix, b: sp.Matrix) -> None:
    assert a.shape == b.shape
    av, bv = _numbers(a), _numbers(b)
    gap = max((abs(x - y) for x, y in zip(av, bv)), default=0)
    scale = max([abs(y) for y in bv] + [1])
    assert gap < 1e-30 * scale


# The brute force substitutes 60-digit floats for every symbol but the differentiated ones
# (_float_point): the RNN cases take under 2 s each here (10-40 s with exact rationals), the gated
# cells 30-45 s (they did not finish in 15 minutes before), so those two are marked slow (CI runs
# them). tests/numeric/test_stacked.py also compares every step, input and depth Jacobian of stacks
# of every cell, depths 1..4, both directions, with torch autodiff of the real torch.nn module.
_SLOW = pytest.mark.slow
STACK_CASES = [
    pytest.param("rnn-tanh", 1, None, id="rnn-tanh-n1"),
    pytest.param("rnn-tanh", 2, None, id="rnn-tanh-n2"),
    pytest.param("rnn-sigmoid", 1, None, id="rnn-sigmoid-n1"),
    pytest.param("rnn-tanh", 1, "residual", id="rnn-tanh-n1-residual"),
    pytest.param("gru", 1, None, id="gru-n1", marks=_SLOW),
    pytest.param("lstm", 1, None, id="lstm-n1", marks=_SLOW),
]


@pytest.mark.parametrize(("name", "n", "skip"), STACK_CASES)
def test_grid_path_sum_equals_brute_force(name, n, skip):
    # docs/math.md §6: ∂s_T^L/∂s_t^l = Σ over monotone paths of ordered A/B products; L = 2, T = 3.
    T, L, m = 3, 2, 1
    model = explicit_stack(name, n, m, steps=T, depth=L, skip=skip)
    # 60-digit floats, not exact rationals: see _float_point
    point = _float_point(_point(_all_symbols(model), seed=n))
    factors = {k: (v.xreplace(point) if isinstance(v, sp.MatrixBase) else v) for k, v in model.factors.items()}
    for t in range(0, T + 1):
        for l in range(0, L + 1):
            if (t, l) == (T, L) or (t == 0 and l == 0):
                continue
            sj = stack_jacobian(name, t=t, l=l, steps=T, depth=L, skip=skip)
            derived = explicit(sj.result, factors)
            if l == 0 or t == 0:  # an input x_t or an initial state: independent symbols already
                var = model.xs[t] if l == 0 else model.states[(0, l)]
                rest = {s: v for s, v in point.items() if s not in set(var)}
                brute = model.states[(T, L)].xreplace(rest).jacobian(var).xreplace(point)
            else:
                cut = explicit_stack(name, n, m, steps=T, depth=L, skip=skip, cut=(t, l))
                brute = cut.cut_jacobian((T, L), point)
            _close(derived, brute)
            assert max(abs(e) for e in _numbers(brute)) > 1e-12  # a real, nonzero Jacobian


def test_stack_steps_are_the_cells_jacobians():
    # docs/math.md §6: time step A = D(f') W^l (the step Jacobian), depth step B = D(f') U^l (input).
    st_ = stack_steps("rnn-tanh", depth=2)
    assert st_.time == step_jacobian("rnn-tanh").result
    assert st_.depth_first == input_jacobian("rnn-tanh").result
    assert text(st_.time) == "diag(tanh'(z(t))) W_h" and text(st_.depth_upper) == "diag(tanh'(z(t))) W_x"
    assert text(stack_steps("rnn-tanh", depth=2, skip="residual").depth_upper) == "I + ∂F/∂x(t)"
    assert text(stack_steps("lstm", depth=2).depth_upper).endswith("[ I | 0 ]")


# ----------------------------------------------------------------------------------------------
# 3-4. Bidirectional: causal zeros, block-diagonal directions
# ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _bidir(name: str, n: int, T: int):
    return explicit_bidirectional(name, n, 1, steps=T)


@pytest.mark.parametrize("name", ["rnn-tanh", "rnn-relu", "lstm", "gru", "gru-torch"])
@pytest.mark.parametrize("n", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_causal_zeros_are_exact(name, n):
    # docs/math.md §6: ∂h→_t/∂x_s = 0 for s > t and ∂h←_t/∂x_s = 0 for s < t, exactly (symbolically).
    T = 3
    model = _bidir(name, n, T)
    for sign, direction in ((1, "forward"), (-1, "backward")):
        pattern = causal_pattern(name, steps=T, direction=direction)
        expected_zeros = {(t, s) for t in range(1, T + 1) for s in range(1, T + 1) if (s > t if sign == 1 else s < t)}
        assert pattern.zeros == expected_zeros
        for t, s in expected_zeros:
            brute = model.states[(t, sign)].jacobian(model.xs[s])
            assert brute == sp.zeros(*brute.shape)


# With the other symbols fixed as 60-digit floats before Matrix.jacobian, the gated cells take about
# 2 s each here (the LSTM took 330 s with exact rationals). rnn-relu is left out: at this point some
# of its blocks are exactly zero (inactive units), which the non-vanishing check below rejects.
@pytest.mark.parametrize("name", ["rnn-tanh", "lstm", "gru", "gru-torch"])
def test_causal_pattern_blocks_equal_brute_force(name):
    # The nonzero blocks: ordered products of A and K against Matrix.jacobian at a rational point.
    T = 3
    model = _bidir(name, 1, T)
    point = _point(_all_symbols(model), seed=7)
    point60 = _float_point(point)
    factors = {k: (v.xreplace(point60) if isinstance(v, sp.MatrixBase) else v) for k, v in model.factors.items()}
    for sign, direction in ((1, "forward"), (-1, "backward")):
        pattern = causal_pattern(name, steps=T, direction=direction)
        for (t, s), block in pattern.blocks.items():
            if (t, s) in pattern.zeros:
                continue
            var = model.xs[s]
            # the other symbols fixed as 60-digit floats before differentiating (_float_point)
            rest = {k: v for k, v in point60.items() if k not in set(var)}
            at = {k: point60[k] for k in var}
            brute = model.states[(t, sign)].xreplace(rest).jacobian(var).xreplace(at)
            _close(explicit(block, factors), brute)
            assert max(abs(e) for e in _numbers(brute)) > 1e-12


@settings(max_examples=25, deadline=None)
@given(
    name=st.sampled_from(["rnn-tanh", "rnn-sigmoid", "gru"]),
    T=st.integers(1, 4),
    direction=st.sampled_from(["forward", "backward"]),
    data=st.data(),
)
def test_property_causal_zeros_are_exactly_zero(name, T, direction, data):
    t = data.draw(st.integers(1, T), label="t")
    s = data.draw(st.integers(1, T), label="s")
    model = _bidir(name, 1, T)
    sign = 1 if direction == "forward" else -1
    brute = model.states[(t, sign)].jacobian(model.xs[s])
    structurally_zero = (t, s) in causal_pattern(name, steps=T, direction=direction).zeros
    assert structurally_zero == ((s > t) if sign == 1 else (s < t))
    if structurally_zero:
        assert brute == sp.zeros(*brute.shape)
    else:
        assert brute != sp.zeros(*brute.shape)


@pytest.mark.parametrize("name", ["rnn-tanh", "lstm", "gru-torch"])
def test_directions_are_block_diagonal(name):
    # docs/math.md §6: separate weights, no cross terms; directions mix only in the next layer.
    T = 3
    model = _bidir(name, 1, T)
    fwd0, bwd0 = model.states[(0, 1)], model.states[(T + 1, -1)]
    for t in range(1, T + 1):
        assert model.states[(t, 1)].jacobian(bwd0) == sp.zeros(fwd0.shape[0], bwd0.shape[0])
        assert model.states[(t, -1)].jacobian(fwd0) == sp.zeros(bwd0.shape[0], fwd0.shape[0])
    joint = bidirectional_step(name).result
    assert isinstance(joint.blocks[0, 1], sp.ZeroMatrix) and isinstance(joint.blocks[1, 0], sp.ZeroMatrix)
    assert bidirectional_step(name).references[joint.blocks[0, 0]] == step_jacobian(name).result


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: Architecture(cell("lstm"), 2, "residual"), "not supported"),
        (lambda: Architecture(cell("gru"), 0), "positive integer"),
        (lambda: Architecture(cell("gru"), 2, "highway"), "residual"),
        (lambda: causal_pattern("rnn-tanh", steps=3, direction="sideways"), "forward"),
        (lambda: causal_pattern("rnn-tanh", steps=0), "positive integer"),
        (lambda: stack_jacobian("rnn-tanh", t=5, l=1, steps=3, depth=2), "t ≤ steps"),
        (lambda: stack_jacobian("rnn-tanh", t=0, l=0, steps=3, depth=2), "no node"),
        (lambda: explicit_stack("rnn-tanh", 1, 1, steps=2, depth=1, cut=(0, 1)), "cut must be"),
    ],
    ids=["lstm-residual", "depth-0", "skip-highway", "direction", "steps-0", "t-too-big", "origin", "bad-cut"],
)
def test_bad_input_raises_gradproof_error(call, match):
    with pytest.raises(GradproofError, match=match):
        call()
