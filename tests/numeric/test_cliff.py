"""The cliff (docs/math.md §2; Pascanu et al. 2013, §3): derive.cliff and numeric.cliff.

Model: x_t = w σ(x_{t-1}) + b, x_0 = 0.5, σ = sigmoid, E = (σ(x_50) − 0.7)².
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy
import torch

from gradproof.derive.cliff import CliffModel, Sigma, SigmaPrime, b, w, x_prev
from gradproof.derive.errors import GradproofError
from gradproof.numeric.cliff import (
    DEFAULT_LR,
    DEFAULT_THRESHOLD,
    compare_clipping,
    gradient,
    loss,
    sgd,
    surface,
)

# --------------------------------------------------------------------------- symbolic


def test_one_step_derivatives() -> None:
    m = CliffModel()
    assert sympy.simplify(m.dx_dxprev - w * SigmaPrime(x_prev)) == 0
    assert sympy.simplify(m.dx_dw - Sigma(x_prev)) == 0
    assert m.dx_db == 1
    xN = sympy.Symbol("x_N", real=True)
    assert sympy.simplify(m.dE_dxN - 2 * (Sigma(xN) - sympy.Rational(7, 10)) * SigmaPrime(xN)) == 0


def test_concrete_sigmoid_derivative_is_sigma_one_minus_sigma() -> None:
    """With the sigmoid, σ' = σ(1 − σ) (docs/math.md §3 writes the gates' derivatives so)."""
    m = CliffModel()
    s = 1 / (1 + sympy.exp(-x_prev))
    assert sympy.simplify(m.concrete(m.dx_dxprev) - w * s * (1 - s)) == 0
    # and it is the derivative of the concrete step
    assert sympy.simplify(m.concrete(m.dx_dxprev) - sympy.diff(m.concrete(m.step), x_prev)) == 0


@pytest.mark.parametrize("steps", [1, 2, 3])
def test_bptt_sum_equals_derivative_of_unrolled_loss(steps: int) -> None:
    """The BPTT formula ∂E/∂x_N Σ_t (∏_{s>t} ∂x_s/∂x_{s-1}) ∂x_t/∂θ is the total derivative of
    the unrolled loss, for any σ (σ stays an opaque function here)."""
    m = CliffModel(steps=steps)
    E = m.unrolled_loss()
    for formula, theta in [(m.grad_w, w), (m.grad_b, b)]:
        assert sympy.expand(m.evaluate_bptt(formula) - sympy.diff(E, theta)) == 0


def test_latex() -> None:
    m = CliffModel()
    tex = sympy.latex(m)
    assert tex == m.latex() and m._repr_latex_().startswith("$")
    for fragment in (r"\sigma'\left(x_{t-1}\right)", r"\sum_{t=1}^{50}", r"\prod_{s=t + 1}^{50}",
                     r"\frac{\partial E}{\partial w}", r"\frac{7}{10}"):  # fmt: skip
        assert fragment in tex


def test_bad_model() -> None:
    with pytest.raises(GradproofError):
        CliffModel(steps=0)


# --------------------------------------------------------------------------- reference


def _exp_sigmoid(x: torch.Tensor) -> torch.Tensor:
    return 1 / (1 + torch.exp(-x))


def _torch_loss_and_grad(wv: float, bv: float, sigmoid=_exp_sigmoid) -> tuple[float, np.ndarray]:
    """Independent float64 torch code of the same loop (docs/math.md §2), differentiated by autograd.

    The default σ is written as 1/(1 + exp(−x)), whose autograd derivative exp(−x)/(1+exp(−x))²
    keeps full relative precision where σ saturates; ``torch.sigmoid``'s backward uses y(1 − y)
    and loses digits there (see test_torch_sigmoid_backward_loses_digits_when_saturated).
    """
    wt = torch.tensor(wv, dtype=torch.float64, requires_grad=True)
    bt = torch.tensor(bv, dtype=torch.float64, requires_grad=True)
    x = torch.tensor(0.5, dtype=torch.float64)
    for _ in range(50):
        x = wt * sigmoid(x) + bt
    E = (sigmoid(x) - 0.7) ** 2
    gw, gb = torch.autograd.grad(E, (wt, bt))
    return float(E.detach()), np.array([float(gw), float(gb)])


def _near_cliff() -> list[tuple[float, float]]:
    """Points on the default unclipped SGD run just before and after its jump, and the steepest
    point of a coarse grid."""
    run = sgd()
    k = run.longest_step[0]
    s = surface(resolution=41)
    i, j = np.unravel_index(np.argmax(s.log10_grad_norm), s.log10_grad_norm.shape)
    return [tuple(run.params[k]), tuple(run.params[k + 1]), (float(s.w[i]), float(s.b[j]))]


@pytest.mark.parametrize(
    "point",
    [(4.5, -3.0), (0.0, 0.0), (-3.0, 2.0), (8.0, -4.0), (10.0, 7.0), (1.0, 0.5)],
    ids=lambda p: f"{p}",
)
def test_gradient_matches_torch_autograd(point: tuple[float, float]) -> None:
    with np.errstate(all="raise"):
        ours = gradient(*point)
        E = loss(*point)
    E_ref, g_ref = _torch_loss_and_grad(*point)
    assert E == pytest.approx(E_ref, rel=1e-12)
    np.testing.assert_allclose(ours, g_ref, rtol=1e-10, atol=0)


@pytest.mark.parametrize("point", [(4.5, -3.0), (0.0, 0.0), (-3.0, 2.0)], ids=lambda p: f"{p}")
def test_gradient_matches_torch_sigmoid_where_unsaturated(point: tuple[float, float]) -> None:
    E_ref, g_ref = _torch_loss_and_grad(*point, sigmoid=torch.sigmoid)
    np.testing.assert_allclose(gradient(*point), g_ref, rtol=1e-10, atol=0)
    assert loss(*point) == pytest.approx(E_ref, rel=1e-12)


def _mpmath_gradient(wv: float, bv: float) -> np.ndarray:
    """50-digit reference by mpmath's numerical differentiation of the unrolled loss."""
    import mpmath

    with mpmath.workdps(50):
        def E(wm, bm):  # noqa: ANN001, ANN202
            x = mpmath.mpf(1) / 2
            for _ in range(50):
                x = wm / (1 + mpmath.exp(-x)) + bm
            return (1 / (1 + mpmath.exp(-x)) - mpmath.mpf(7) / 10) ** 2

        wm, bm = mpmath.mpf(wv), mpmath.mpf(bv)
        return np.array(
            [float(mpmath.diff(lambda t: E(t, bm), wm)), float(mpmath.diff(lambda t: E(wm, t), bm))]
        )


def test_torch_sigmoid_backward_loses_digits_when_saturated() -> None:
    """At (10, 7) σ(x_50) ≈ 1 − 4e-8: the derived gradient agrees with a 50-digit reference to
    1e-13, torch.sigmoid's y(1 − y) backward only to ~2e-9 (why the reference above avoids it)."""
    point = (10.0, 7.0)
    exact = _mpmath_gradient(*point)
    np.testing.assert_allclose(gradient(*point), exact, rtol=1e-13, atol=0)
    _, g_torch = _torch_loss_and_grad(*point, sigmoid=torch.sigmoid)
    assert np.max(np.abs(g_torch - exact) / np.abs(exact)) > 1e-10


def test_gradient_matches_torch_near_the_cliff() -> None:
    for point in _near_cliff():
        with np.errstate(all="raise"):
            ours = gradient(*point)
        _, g_ref = _torch_loss_and_grad(*point)
        np.testing.assert_allclose(ours, g_ref, rtol=1e-10, atol=0)
    assert max(np.linalg.norm(gradient(*p)) for p in _near_cliff()) > 10


def test_vectorised_over_grids() -> None:
    W = np.array([[4.5, 0.0], [8.0, -3.0]])
    B = np.array([-3.0, 1.0])
    with np.errstate(all="raise"):
        E = loss(W, B)
        G = gradient(W, B)
    assert E.shape == (2, 2) and G.shape == (2, 2, 2)
    for i in range(2):
        for j in range(2):
            assert E[i, j] == pytest.approx(loss(W[i, j], B[j]), rel=1e-15)
            np.testing.assert_allclose(G[i, j], gradient(W[i, j], B[j]), rtol=1e-14)


# --------------------------------------------------------------------------- surface


def test_surface_has_a_cliff() -> None:
    with np.errstate(all="raise"):
        s = surface()
    lg = s.log10_grad_norm
    assert s.loss.shape == lg.shape == s.W.shape == (s.w.size, s.b.size)
    np.testing.assert_array_equal(s.W[:, 0], s.w)
    np.testing.assert_array_equal(s.B[0, :], s.b)
    assert np.max(lg) - np.median(lg) > 3  # the wall is > 1000x steeper than a typical point
    assert np.all((s.loss >= 0) & (s.loss <= 0.49))  # (σ − 0.7)² with σ in (0, 1)
    # spot check against the torch reference
    E_ref, g_ref = _torch_loss_and_grad(float(s.w[7]), float(s.b[3]))
    assert s.loss[7, 3] == pytest.approx(E_ref, rel=1e-12)
    assert lg[7, 3] == pytest.approx(math.log10(np.linalg.norm(g_ref)), rel=1e-10)


@pytest.mark.parametrize(
    "kwargs",
    [{"resolution": 1}, {"w_range": (2.0, 1.0)}, {"b_range": (0.0, float("nan"))}, {"w_range": (1,)}],
    ids=["resolution", "reversed", "nan", "short"],
)
def test_surface_bad_arguments(kwargs: dict) -> None:
    with pytest.raises(GradproofError):
        surface(**kwargs)


# --------------------------------------------------------------------------- SGD and clipping


def test_clipping_tames_the_jump() -> None:
    with np.errstate(all="raise"):
        plain, clipped = compare_clipping()
    limit = DEFAULT_LR * DEFAULT_THRESHOLD
    assert plain.params.shape == clipped.params.shape == (101, 2)
    np.testing.assert_array_equal(plain.params[0], clipped.params[0])
    # Algorithm 1: a clipped step is at most lr·θ long
    assert np.all(clipped.step_lengths <= limit * (1 + 1e-12))
    assert clipped.clipped.any()
    # the unclipped run takes a step longer than lr·θ — a jump off the cliff, > 10x longer
    assert np.any(plain.step_lengths > limit)
    assert plain.longest_step[1] > 10 * limit
    # ... and lands on a plateau worse than where the clipped run ends
    assert plain.losses[-1] > 10 * clipped.losses[-1]
    # the losses are those of the recorded parameters
    for run in (plain, clipped):
        for k in (0, 37, 100):
            assert run.losses[k] == pytest.approx(loss(*run.params[k]), rel=1e-15)


def test_sgd_is_deterministic_and_validated() -> None:
    a = sgd((4.5, -3.0), 0.3, 20, clip=1.0)
    b_ = sgd((4.5, -3.0), 0.3, 20, clip=1.0)
    np.testing.assert_array_equal(a.params, b_.params)
    assert a.threshold == 1.0 and sgd(steps=1).threshold is None
    for bad in [dict(start=(1.0,)), dict(lr=0.0), dict(lr=float("inf")), dict(steps=0),
                dict(clip=-1.0)]:  # fmt: skip
        with pytest.raises(GradproofError):
            sgd(**bad)
