"""Gradient clipping: derive.clipping (symbolic) and numeric.clipping (numbers), docs/math.md §2.

References: Pascanu, Mikolov, Bengio (2013), Algorithm 1 (norm clipping over all parameters);
``torch.nn.utils.clip_grad_norm_`` (scale min(1, θ/(‖g‖ + 1e-6))) and ``clip_grad_value_``.
"""

from __future__ import annotations

import math
from collections import OrderedDict, namedtuple

import numpy as np
import pytest
import sympy
import torch
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from gradproof.derive.clipping import Norm, NormClipping, ValueClipping, clipping_rules
from gradproof.derive.errors import GradproofError
from gradproof.numeric.clipping import (
    TORCH_EPS,
    clip_by_norm,
    clip_by_value,
    direction_cosine,
    global_norm,
)

# --------------------------------------------------------------------------- symbolic rules


def test_norm_rule_branches() -> None:
    rule = NormClipping()
    g, theta, N = rule.gradient, rule.threshold, rule.norm
    assert isinstance(rule.rule, sympy.Piecewise)
    # below the threshold: identity; at or above: θ g / ‖g‖ (Algorithm 1 clips when ‖g‖ ≥ θ)
    G = sympy.Symbol("G", positive=True)
    below = rule.rule.subs(N, G).subs({G: sympy.Rational(1, 2), theta: 1})
    above = rule.rule.subs(N, G).subs({G: 4, theta: 1})
    at = rule.rule.subs(N, G).subs({G: 1, theta: 1})
    assert sympy.simplify(below - g) == 0
    assert sympy.simplify(above - g / 4) == 0
    assert sympy.simplify(at - g) == 0


def test_norm_rule_is_a_positive_scale_of_g() -> None:
    """ĝ = s g with s > 0: the direction is kept (docs/math.md §2)."""
    rule = NormClipping()
    assert sympy.simplify(sympy.piecewise_fold(rule.rule - rule.scale * rule.gradient)) == 0
    assert rule.scale.is_positive is True
    assert rule.torch_scale.is_positive is True


def test_clipped_norm_is_min_of_norm_and_threshold() -> None:
    rule = NormClipping()
    minimum = sympy.Min(rule.norm, rule.threshold).rewrite(sympy.Piecewise)
    folded = sympy.piecewise_fold(rule.clipped_norm - minimum)
    # evaluate every branch on both sides of the threshold
    G = sympy.Symbol("G", positive=True)
    for gval, tval in [(sympy.Rational(1, 3), 1), (5, 2), (2, 2)]:
        assert folded.subs(rule.norm, G).subs({G: gval, rule.threshold: tval}) == 0


def test_value_rule_forms_agree() -> None:
    rule = ValueClipping()
    c = rule.limit
    for value in [-7, -1, sympy.Rational(-1, 3), 0, sympy.Rational(1, 2), 1, 4]:
        lhs = rule.rule.subs({rule.component: value * c})
        rhs = rule.rule_minmax.subs({rule.component: value * c})
        assert sympy.simplify(lhs - rhs) == 0
        assert sympy.simplify(lhs - max(-1, min(1, value)) * c) == 0


def test_latex_notation() -> None:
    rules = clipping_rules()
    tex = sympy.latex(rules)
    assert tex == rules.latex()
    for fragment in (r"\hat{g}", r"\theta", r"\left\lVert g \right\rVert", r"\begin{cases}", "c"):
        assert fragment in tex
    assert sympy.latex(NormClipping()) == NormClipping().latex()
    assert NormClipping()._repr_latex_().startswith("$")
    assert sympy.latex(Norm(sympy.Symbol("g"))) == r"\left\lVert g \right\rVert"


# --------------------------------------------------------------------------- against PyTorch


def _torch_params(arrays: list[np.ndarray]) -> list[torch.nn.Parameter]:
    params = []
    for a in arrays:
        p = torch.nn.Parameter(torch.zeros(a.shape, dtype=torch.float64))
        p.grad = torch.tensor(a, dtype=torch.float64)
        params.append(p)
    return params


@pytest.mark.parametrize("threshold", [0.01, 0.5, 3.0, 10.0, 1e4])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_clip_by_norm_matches_torch(seed: int, threshold: float) -> None:
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal(s) for s in [(4, 4), (4, 3), (4,), ()]]
    params = _torch_params(arrays)
    total = torch.nn.utils.clip_grad_norm_(params, max_norm=threshold)
    res = clip_by_norm(arrays, threshold, eps=TORCH_EPS)
    assert res.norm_before == pytest.approx(float(total), rel=1e-12)
    for ours, p in zip(res.grads, params):
        np.testing.assert_allclose(ours, p.grad.numpy(), rtol=1e-12, atol=0)


@pytest.mark.parametrize("limit", [0.1, 1.0, 5.0])
def test_clip_by_value_matches_torch(limit: float) -> None:
    rng = np.random.default_rng(11)
    arrays = [3 * rng.standard_normal(s) for s in [(5, 5), (5,)]]
    params = _torch_params(arrays)
    torch.nn.utils.clip_grad_value_(params, clip_value=limit)
    res = clip_by_value(arrays, limit)
    for ours, p in zip(res.grads, params):
        np.testing.assert_allclose(ours, p.grad.numpy(), rtol=1e-12, atol=0)


def test_pascanu_rule_without_eps() -> None:
    g = {"W": np.array([[3.0, 0.0]]), "b": np.array([4.0])}  # ‖g‖ = 5
    res = clip_by_norm(g, 2.0)
    assert res.clipped and res.scale == pytest.approx(2.0 / 5.0, rel=1e-15)
    np.testing.assert_allclose(res.grads["W"], [[1.2, 0.0]], rtol=1e-15)
    np.testing.assert_allclose(res.grads["b"], [1.6], rtol=1e-15)
    assert res.norm_after == pytest.approx(2.0, rel=1e-15)
    # ‖g‖ = θ exactly: Algorithm 1 takes the clipping branch, whose scale is 1
    at = clip_by_norm(g, 5.0)
    assert at.clipped and at.scale == 1.0
    below = clip_by_norm(g, 6.0)
    assert not below.clipped and below.scale == 1.0


def test_containers_and_no_mutation() -> None:
    a, b = np.array([3.0, 4.0]), np.array([[1.0]])
    Pair = namedtuple("Pair", "a b")
    for grads, kind in [
        ({"a": a, "b": b}, dict),
        (OrderedDict(a=a, b=b), OrderedDict),
        ([a, b], list),
        ((a, b), tuple),
        (Pair(a, b), Pair),
    ]:
        res = clip_by_norm(grads, 1.0)
        assert type(res.grads) is kind
        assert (list(res.grads) if kind in (dict, OrderedDict) else len(res.grads)) == (
            ["a", "b"] if kind in (dict, OrderedDict) else 2
        )
    single = clip_by_norm(a, 1.0)
    assert isinstance(single.grads, np.ndarray)
    np.testing.assert_allclose(single.grads, [0.6, 0.8], rtol=1e-15)
    np.testing.assert_array_equal(a, [3.0, 4.0])  # the input is untouched


def test_zero_gradient_is_left_alone() -> None:
    res = clip_by_norm([np.zeros(3)], 1.0)
    assert res.scale == 1.0 and not res.clipped and res.norm_before == 0.0


def test_global_norm_does_not_overflow() -> None:
    big = [np.full(4, 1e200), np.array([1e200])]
    assert global_norm(big) == pytest.approx(1e200 * math.sqrt(5), rel=1e-14)
    res = clip_by_norm(big, 1.0)
    assert res.norm_after == pytest.approx(1.0, rel=1e-12)


BAD = {
    "zero": (lambda: clip_by_norm([np.ones(2)], 0.0), "threshold"),
    "negative": (lambda: clip_by_norm([np.ones(2)], -1.0), "threshold"),
    "nan-threshold": (lambda: clip_by_norm([np.ones(2)], float("nan")), "threshold"),
    "inf-threshold": (lambda: clip_by_norm([np.ones(2)], float("inf")), "threshold"),
    "string-threshold": (lambda: clip_by_norm([np.ones(2)], "1"), "threshold"),  # type: ignore[arg-type]
    "bool-threshold": (lambda: clip_by_norm([np.ones(2)], True), "threshold"),
    "negative-eps": (lambda: clip_by_norm([np.ones(2)], 1.0, eps=-1e-6), "eps"),
    "nan-gradient": (lambda: clip_by_norm([np.array([np.nan])], 1.0), "finite"),
    "inf-gradient": (lambda: clip_by_norm([np.array([np.inf])], 1.0), "finite"),
    "string-container": (lambda: clip_by_norm("abc", 1.0), "gradients"),  # type: ignore[arg-type]
    "complex": (lambda: clip_by_norm([np.ones(2) * 1j], 1.0), "real"),
    "value-limit": (lambda: clip_by_value([np.ones(2)], 0.0), "limit"),
    "value-nan": (lambda: clip_by_value([np.array([np.nan])], 1.0), "NaN"),
}


@pytest.mark.parametrize("call, fragment", BAD.values(), ids=BAD.keys())
def test_bad_arguments(call, fragment: str) -> None:
    with pytest.raises(GradproofError, match=fragment) as info:
        call()
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- properties

_gradients = st.lists(
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=0, max_dims=2, min_side=1, max_side=4),
        elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    ),
    min_size=1,
    max_size=4,
)
_thresholds = st.floats(1e-3, 1e3)


@settings(max_examples=200, deadline=None)
@given(grads=_gradients, threshold=_thresholds)
def test_norm_clipping_keeps_direction_and_bound(grads: list[np.ndarray], threshold: float) -> None:
    with np.errstate(all="raise"):
        res = clip_by_norm(grads, threshold)
    norm = global_norm(grads)
    assert res.norm_after <= threshold * (1 + 1e-12) or res.norm_after == pytest.approx(norm, rel=1e-12)
    assert res.norm_after <= max(threshold, norm) * (1 + 1e-12)
    if norm >= threshold:
        assert res.norm_after == pytest.approx(threshold, rel=1e-12)
    if norm > 0:
        assert direction_cosine(res.grads, grads) == pytest.approx(1.0, abs=1e-12)
    if norm < threshold:  # identity below the threshold
        for ours, g in zip(res.grads, grads):
            np.testing.assert_array_equal(ours, g)


@settings(max_examples=200, deadline=None)
@given(grads=_gradients, threshold=_thresholds)
def test_torch_mode_never_exceeds_threshold(grads: list[np.ndarray], threshold: float) -> None:
    res = clip_by_norm(grads, threshold, eps=TORCH_EPS)
    assert res.norm_after <= threshold * (1 + 1e-12) or not res.clipped
    if global_norm(grads) > 0:
        assert direction_cosine(res.grads, grads) == pytest.approx(1.0, abs=1e-12)


def test_value_clipping_turns_a_constructed_gradient() -> None:
    g = np.array([3.0, 0.5])
    res = clip_by_value(g, 1.0)
    np.testing.assert_array_equal(res.grads, [1.0, 0.5])
    # cos∠((3, 0.5), (1, 0.5)) = (3 + 0.25) / (√9.25 · √1.25)
    expected = 3.25 / math.sqrt(9.25 * 1.25)
    assert direction_cosine(res.grads, g) == pytest.approx(expected, rel=1e-14)
    assert expected < 0.96
    # norm clipping to the same norm keeps the direction
    same = clip_by_norm(g, res.norm_after)
    assert direction_cosine(same.grads, g) == pytest.approx(1.0, abs=1e-15)


def test_hypothesis_finds_a_turned_gradient() -> None:
    """Search, not construction: value clipping changes the direction of some gradient."""
    found = find(
        st.lists(st.floats(-10, 10), min_size=2, max_size=4),
        lambda v: np.any(np.abs(v) > 0)
        and direction_cosine(clip_by_value(np.array(v), 1.0).grads, np.array(v)) < 1 - 1e-6,
        settings=settings(max_examples=2000, database=None),
    )
    v = np.array(found)
    assert direction_cosine(clip_by_value(v, 1.0).grads, v) < 1 - 1e-6


@settings(max_examples=200, deadline=None)
@given(grads=_gradients, limit=st.floats(1e-3, 1e3))
def test_value_clipping_invariants(grads: list[np.ndarray], limit: float) -> None:
    res = clip_by_value(grads, limit)
    for ours, g in zip(res.grads, grads):
        assert np.all(np.abs(ours) <= limit)
        inside = np.abs(g) <= limit
        np.testing.assert_array_equal(ours[inside], g[inside])
