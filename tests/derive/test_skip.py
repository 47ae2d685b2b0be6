"""Tests of derive.skip: residual, highway and dense blocks (docs/math.md §5).

Evidence, each independent of derive/skip.py:

1. brute force: every derived block Jacobian, evaluated in the explicit view, equals SymPy's
   ``Matrix.jacobian`` of the explicit block output, for layers and cells, n = 1..3;
2. structure: the residual Jacobian minus I is exactly the map's brute-force Jacobian (He et al.
   2016), the highway Jacobian is docs/math.md §5's formula in independent symbols T, H, J_H;
3. limits: the highway gate closed (T ≡ 0) gives I, open (T ≡ 1) gives J_H, and these are the
   limits b_T → ∓∞ of the brute-force Jacobian;
4. a Hypothesis property on numbers: residual Jacobian − I = J_F at random points.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from gradproof.derive import GradproofError, difference_is_zero, latex
from gradproof.derive.algebra import JacobianSymbol, explicit
from gradproof.derive.skip import (
    base,
    dense,
    dense_stack,
    highway,
    highway_limit,
    residual,
    skip_block,
)

from .conftest import D, had, one_minus

BLOCKS = {"residual": residual, "highway": highway, "dense": dense}


def _cases():
    out = []
    for spec in ("layer-tanh", "layer-sigmoid", "layer-relu", "rnn-tanh", "rnn-sigmoid"):
        for n in (1, 2, 3):
            out.append(pytest.param(spec, n, id=f"{spec}-n{n}"))
    for spec in ("lstm", "gru", "gru-torch"):
        out.append(pytest.param(spec, 1, id=f"{spec}-n1"))
    out.append(pytest.param("gru", 2, id="gru-n2"))
    out.append(pytest.param("lstm", 2, id="lstm-n2", marks=pytest.mark.slow))
    return out


@pytest.mark.parametrize("kind", sorted(BLOCKS))
@pytest.mark.parametrize(("spec", "n"), _cases())
def test_block_jacobian_equals_brute_force(kind, spec, n):
    # docs/math.md §5: the structured Jacobian equals Matrix.jacobian of the explicit block output.
    d = BLOCKS[kind](spec)
    eb = d.explicit_block(n, 2)
    brute = eb.y.jacobian(eb.x)
    structured = d.explicit(n, 2, environment=eb.environment)
    size = eb.x.shape[0]
    assert brute.shape == structured.shape == ((2 * size, size) if kind == "dense" else (size, size))
    assert difference_is_zero(structured, brute)


@pytest.mark.parametrize(("spec", "n"), [("layer-tanh", 1), ("layer-tanh", 3), ("rnn-relu", 2), ("lstm", 1), ("gru-torch", 1)])
def test_residual_identity_path_is_exact(spec, n):
    # He et al. 2016: ∂y/∂x − I = J_F exactly, J_F the brute-force Jacobian of the map alone.
    d = residual(spec)
    x, fx, _ = base(spec).explicit(n, 2)
    jf = fx.jacobian(x)
    minus_identity = d.explicit(n, 2) - sp.eye(x.shape[0])
    assert difference_is_zero(minus_identity, jf)


def _opaque_highway_env(d, n):
    """The explicit environment with T, H and J_H replaced by independent symbols."""
    eb = d.explicit_block(n, 1)
    env = dict(eb.environment)
    size = eb.x.shape[0]
    names = {s.name: s for s, _ in d.definitions}
    T = sp.Matrix(size, 1, lambda r, _: sp.Symbol(f"t{r}", real=True))
    H = sp.Matrix(size, 1, lambda r, _: sp.Symbol(f"hh{r}", real=True))
    JH = sp.Matrix(size, size, lambda r, k: sp.Symbol(f"j{r}{k}", real=True))
    env[names["T"]] = T
    h_sym = next(s for s in d.references if isinstance(s, JacobianSymbol) and s.numerator.name == "H")
    env[h_sym.numerator] = H
    env[h_sym] = JH
    wt = next(v for k, v in env.items() if getattr(k, "name", "") == "W_T")
    return env, eb.x, T, H, JH, wt


@pytest.mark.parametrize(("spec", "n"), [("layer-tanh", 2), ("layer-tanh", 3), ("rnn-tanh", 2), ("gru", 1)])
def test_highway_has_the_structure_of_math_md(spec, n):
    # docs/math.md §5: ∂y/∂x = D(T) J_H + D(1 − T) + D((H − x) ⊙ T(1 − T)) W_T, in free symbols T, H, J_H.
    d = highway(spec)
    env, x, T, H, JH, WT = _opaque_highway_env(d, n)
    got = explicit(d.result, env)
    expected = D(T) * JH + D(one_minus(T)) + D(had(H - x, T, one_minus(T))) * WT
    assert sp.expand(got - expected) == sp.zeros(*expected.shape)


@pytest.mark.parametrize("spec", ["layer-tanh", "rnn-sigmoid", "gru"])
def test_highway_limits_are_identity_and_the_plain_map(spec):
    # Srivastava et al. 2015: T ≡ 0 carries the input (∂y/∂x = I), T ≡ 1 is the plain map (J_H).
    n = 2 if spec != "gru" else 1
    closed, opened = highway_limit(spec, gate=0), highway_limit(spec, gate=1)
    assert latex(closed.result) == "I"
    size = base(spec).explicit(n, 1)[0].shape[0]
    assert closed.explicit(n, 1) == sp.eye(size)
    x, fx, _ = base(spec).explicit(n, 1)
    assert difference_is_zero(opened.explicit(n, 1), fx.jacobian(x))
    # the same substitution in the full explicit Jacobian (T = 0 or 1 numerically) agrees
    env, *_ = _opaque_highway_env(highway(spec), n)
    full = highway(spec).result
    tsym = next(s for s, _ in highway(spec).definitions if s.name == "T")
    for value, limit in ((0, closed), (1, opened)):
        env[tsym] = sp.Matrix([value] * size)
        assert sp.expand(explicit(full, env) - explicit(limit.result, env)) == sp.zeros(size, size)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_highway_limits_are_limits_of_the_brute_force_bias(n):
    # b_T → −∞ closes every gate, b_T → +∞ opens it: Matrix.jacobian at a rational point with
    # b_T = ∓200, evaluated to 60 digits (σ(−200) ≈ 1e−87, far below the 1e−40 tolerance).
    d = highway("layer-tanh")
    eb = d.explicit_block(n, 1)
    brute = eb.y.jacobian(eb.x)
    rng = np.random.default_rng(n)
    x, fx, _ = base("layer-tanh").explicit(n, 1)
    jh = fx.jacobian(x)
    symbols = sorted(brute.free_symbols | jh.free_symbols, key=sp.default_sort_key)
    point = {s: sp.Rational(int(rng.integers(-9, 10)), 7) for s in symbols if not s.name.startswith("b_T")}
    for bias, expected in ((-200, sp.eye(n)), (200, jh.xreplace(point))):
        at = brute.xreplace({**point, **{s: bias for s in symbols if s.name.startswith("b_T")}})
        gap = (at - expected).evalf(60)
        assert max(abs(e) for e in gap) < 1e-40
    # and the gate really matters: at b_T = 0 the Jacobian is neither limit
    mid = brute.xreplace({**point, **{s: 0 for s in symbols if s.name.startswith("b_T")}})
    assert max(abs(e) for e in (mid - sp.eye(n)).evalf(30)) > 1e-3


@pytest.mark.parametrize(("depth", "n"), [(2, 1), (3, 1), (3, 2)])
def test_dense_stack_recursion_equals_brute_force(depth, n):
    # docs/math.md §5: ∂x_l/∂x_j = J_l^{(j)} + Σ_{j<k<l} J_l^{(k)} ∂x_k/∂x_j, against Matrix.jacobian.
    ds = dense_stack(depth)
    env, xs = ds.explicit(n)
    for l in range(1, depth + 1):
        structured = explicit(ds.jacobians[(l, 0)], env)
        assert difference_is_zero(structured, xs[l].jacobian(xs[0]))
    # every earlier layer feeds the last one directly: W_{depth,0} appears on its own
    assert any(s.name == f"W_{{{depth},0}}" for s in ds.jacobians[(depth, 0)].atoms(sp.MatrixSymbol))


def test_printing_and_steps():
    d = highway("layer-tanh")
    assert d._repr_latex_().startswith("$\\displaystyle \\frac{\\partial y}{\\partial x} = ")
    assert latex(residual("layer-tanh").result) == r"I + \frac{\partial F}{\partial x}"
    # the base's own Jacobian is one of the steps, derived by the same chain rule
    assert latex(d.steps[0].equation.rhs) == r"\operatorname{diag}\left(\tanh'\left(z\right)\right) W"
    assert "T \\odot \\left(1 - T\\right)" in d.latex()
    assert r"\begin{matrix}I\\" in latex(dense("rnn-tanh").result)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: base("layer-nonsense"), "layer-<activation>"),
        (lambda: base("transformer"), "layer-<activation>"),
        (lambda: skip_block("skippy", "layer-tanh"), "residual, highway, dense"),
        (lambda: highway_limit("layer-tanh", gate=2), "0 \\(closed\\) or 1"),
        (lambda: dense_stack(0), "positive integer"),
    ],
    ids=["bad-activation", "bad-cell", "bad-kind", "bad-gate", "bad-depth"],
)
def test_bad_input_raises_gradproof_error(call, match):
    with pytest.raises(GradproofError, match=match):
        call()


# ----------------------------------------------------------------------------------------------
# Hypothesis: the residual block's Jacobian minus I equals J_F, on numbers
# ----------------------------------------------------------------------------------------------

_LAMBDAS: dict = {}


def _compiled(spec: str, n: int):
    if (spec, n) not in _LAMBDAS:
        d = residual(spec)
        x, fx, _ = base(spec).explicit(n, 1)
        structured = d.explicit(n, 1) - sp.eye(x.shape[0])
        jf = fx.jacobian(x)
        syms = sorted(structured.free_symbols | jf.free_symbols, key=sp.default_sort_key)
        _LAMBDAS[(spec, n)] = (syms, sp.lambdify(syms, structured, "numpy"), sp.lambdify(syms, jf, "numpy"))
    return _LAMBDAS[(spec, n)]


@settings(max_examples=40, deadline=None)
@given(
    spec=st.sampled_from(["layer-tanh", "layer-sigmoid", "rnn-tanh", "gru"]),
    n=st.integers(1, 3),
    data=st.data(),
)
def test_property_residual_jacobian_minus_identity_is_jf(spec, n, data):
    if spec == "gru":
        n = 1
    syms, structured, jf = _compiled(spec, n)
    values = data.draw(
        st.lists(st.one_of(st.just(0.0), st.floats(1e-3, 3), st.floats(-3, -1e-3)), min_size=len(syms), max_size=len(syms)),
        label="point",
    )
    with np.errstate(all="raise"):
        a = np.asarray(structured(*values), dtype=np.float64)
        b = np.asarray(jf(*values), dtype=np.float64)
    np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-14)
