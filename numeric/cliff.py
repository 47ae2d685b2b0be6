"""The cliff on numbers: loss surface, exact gradient, and SGD with and without clipping.

The formulas are those of :class:`derive.cliff.CliffModel`, compiled with ``lambdify``
(σ, σ' ↦ the activation's overflow-free numpy functions). The gradient is a backward pass over
the stored forward states (docs/math.md §2):

.. math::

    \\delta_N = \\frac{\\partial E}{\\partial x_N}, \\quad
    \\frac{\\partial E}{\\partial w} \\mathrel{+}= \\delta_t\\, \\sigma(x_{t-1}), \\quad
    \\frac{\\partial E}{\\partial b} \\mathrel{+}= \\delta_t, \\quad
    \\delta_{t-1} = \\delta_t\\, w\\, \\sigma'(x_{t-1}), \\qquad t = N, \\dots, 1.

The default SGD run (``DEFAULT_START`` = (4.5, −3), ``DEFAULT_LR`` = 0.3, 100 steps, threshold
``DEFAULT_THRESHOLD`` = 1) was found by a sweep over starts on a 0.5 grid in [3, 10] × [−7, 1] and
learning rates {0.1, 0.3, 1}: unclipped, SGD walks down to loss ≈ 0.05 next to the wall, meets a
gradient of norm ≈ 36 at step 37 and is thrown ≈ 11 units away onto the plateau σ(x_50) ≈ 1,
where E ≈ 0.09 and the gradient is ≈ 0, so it stays there. Clipped at θ = 1 every step is at most
lr·θ = 0.3 long and the run ends near the valley floor (E < 10⁻³). Everything is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import sympy

from ..derive.cliff import CliffModel, Sigma, SigmaPrime, b, w, x_N, x_prev
from ..derive.errors import GradproofError
from ._readonly import frozen

__all__ = [
    "Surface",
    "SGDRun",
    "forward",
    "loss",
    "gradient",
    "surface",
    "sgd",
    "compare_clipping",
    "DEFAULT_START",
    "DEFAULT_LR",
    "DEFAULT_STEPS",
    "DEFAULT_THRESHOLD",
    "DEFAULT_W_RANGE",
    "DEFAULT_B_RANGE",
    "DEFAULT_RESOLUTION",
]

DEFAULT_START = (4.5, -3.0)
DEFAULT_LR = 0.3
DEFAULT_STEPS = 100
DEFAULT_THRESHOLD = 1.0
DEFAULT_W_RANGE = (3.0, 11.0)
DEFAULT_B_RANGE = (-5.0, 8.0)
DEFAULT_RESOLUTION = 201

_MODEL = CliffModel()


# --------------------------------------------------------------------------- compiled formulas


@dataclass(frozen=True)
class _Compiled:
    step: Callable[..., Any]  # (x_prev, w, b) -> x_t
    loss: Callable[..., Any]  # (x_N,) -> E
    dx_dxprev: Callable[..., Any]  # (x_prev, w) -> w σ'(x_prev)
    dx_dw: Callable[..., Any]  # (x_prev,) -> σ(x_prev)
    dx_db: Callable[..., Any]  # (x_prev,) -> 1
    dE_dxN: Callable[..., Any]  # (x_N,) -> 2(σ(x_N) - target) σ'(x_N)
    x0: float
    steps: int


@lru_cache(maxsize=8)
def _compile(model: CliffModel) -> _Compiled:
    from ..derive.activations import activation
    from .activations import numpy_pair

    act = activation(model.activation)
    sigma, sigma_prime = numpy_pair(act)
    namespace = {Sigma.__name__: sigma, SigmaPrime.__name__: sigma_prime}
    modules = [namespace, "numpy"]

    def fn(args: tuple[sympy.Symbol, ...], expr: sympy.Expr) -> Callable[..., Any]:
        return sympy.lambdify(args, expr, modules=modules, cse=True)

    return _Compiled(
        step=fn((x_prev, w, b), model.step),
        loss=fn((x_N,), model.loss),
        dx_dxprev=fn((x_prev, w), model.dx_dxprev),
        dx_dw=fn((x_prev,), model.dx_dw),
        dx_db=fn((x_prev,), model.dx_db),
        dE_dxN=fn((x_N,), model.dE_dxN),
        x0=float(model.x0),
        steps=model.steps,
    )


def _params(wv: Any, bv: Any) -> tuple[np.ndarray, np.ndarray]:
    try:
        W_, B_ = np.broadcast_arrays(np.asarray(wv, dtype=np.float64), np.asarray(bv, dtype=np.float64))
    except (TypeError, ValueError) as exc:
        raise GradproofError(f"expected w and b as real numbers or broadcastable arrays: {exc}") from None
    if not (np.all(np.isfinite(W_)) and np.all(np.isfinite(B_))):
        raise GradproofError("expected finite w and b, got NaN/inf")
    return W_, B_


def _out(a: np.ndarray) -> Any:
    return float(a) if a.ndim == 0 else a


# --------------------------------------------------------------------------- evaluation


def forward(w: Any, b: Any, *, model: CliffModel = _MODEL) -> np.ndarray:
    """The states x_0 .. x_N.

    Parameters
    ----------
    w, b : float or array_like, broadcastable to a common shape ``S``

    Returns
    -------
    xs : (N + 1, *S)
    """
    c = _compile(model)
    W_, B_ = _params(w, b)
    xs = np.empty((c.steps + 1,) + W_.shape)
    xs[0] = c.x0
    for t in range(1, c.steps + 1):
        xs[t] = c.step(xs[t - 1], W_, B_)
    return xs


def loss(w: Any, b: Any, *, model: CliffModel = _MODEL) -> Any:
    """E(w, b) = (σ(x_N) − 0.7)², vectorised over broadcastable ``w`` and ``b``.

    Returns a float for scalar input, else an array of the broadcast shape.
    """
    return _loss_of(_compile(model), forward(w, b, model=model))


def _loss_of(c: _Compiled, xs: np.ndarray) -> Any:
    """E of a forward pass already run (states xs (N + 1, *S))."""
    return _out(np.asarray(c.loss(xs[-1]), dtype=np.float64))


def _backward(c: _Compiled, xs: np.ndarray, W_: np.ndarray) -> np.ndarray:
    # δ_t is a product of up to N factors w σ'(x); where it underflows to 0 its contribution is
    # below 1e-308 of the sum, so underflow is not an error here.
    with np.errstate(under="ignore"):
        delta = np.asarray(c.dE_dxN(xs[-1]), dtype=np.float64)
        gw = np.zeros_like(delta)
        gb = np.zeros_like(delta)
        for t in range(c.steps, 0, -1):
            xp = xs[t - 1]
            gw = gw + delta * c.dx_dw(xp)
            gb = gb + delta * c.dx_db(xp)
            delta = delta * c.dx_dxprev(xp, W_)
    return np.stack([gw, gb], axis=-1)


def gradient(w: Any, b: Any, *, model: CliffModel = _MODEL) -> np.ndarray:
    """The exact gradient (∂E/∂w, ∂E/∂b) by a backward pass of the derived formulas.

    Parameters
    ----------
    w, b : float or array_like, broadcastable to a common shape ``S``

    Returns
    -------
    grad : (*S, 2)
        ``grad[..., 0]`` = ∂E/∂w, ``grad[..., 1]`` = ∂E/∂b.
    """
    c = _compile(model)
    W_, B_ = _params(w, b)
    return _backward(c, forward(W_, B_, model=model), W_)


# --------------------------------------------------------------------------- surface


@dataclass(frozen=True)
class Surface:
    """E and log10 ‖∇E‖ on a grid.

    Attributes
    ----------
    w : (R,)
    b : (R,)
    W, B : (R, R)
        ``np.meshgrid(w, b, indexing="ij")``: entry [i, j] is (w[i], b[j]).
    loss : (R, R)
    log10_grad_norm : (R, R)
        log10 ‖∇E(w[i], b[j])‖₂ (−inf where the gradient is exactly 0).
    """

    w: np.ndarray
    b: np.ndarray
    W: np.ndarray
    B: np.ndarray
    loss: np.ndarray
    log10_grad_norm: np.ndarray

    @property
    def cliff_height(self) -> float:
        """max − median of log10 ‖∇E‖: orders of magnitude between the wall and a typical point."""
        finite = self.log10_grad_norm[np.isfinite(self.log10_grad_norm)]
        return float(np.max(finite) - np.median(finite))


def _range(r: Sequence[float], name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in r)
    except (TypeError, ValueError):
        raise GradproofError(f"expected {name} as (low, high), got {r!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise GradproofError(f"expected {name} = (low, high) with finite low < high, got {r!r}")
    return lo, hi


def surface(
    w_range: Sequence[float] = DEFAULT_W_RANGE,
    b_range: Sequence[float] = DEFAULT_B_RANGE,
    resolution: int = DEFAULT_RESOLUTION,
    *,
    model: CliffModel = _MODEL,
) -> Surface:
    """The loss surface and the gradient norm over a (w, b) grid.

    Parameters
    ----------
    w_range, b_range : (low, high)
    resolution : int
        Grid points per axis (≥ 2).

    Examples
    --------
    >>> s = surface(resolution=21)
    >>> s.loss.shape
    (21, 21)
    """
    wl, wh = _range(w_range, "w_range")
    bl, bh = _range(b_range, "b_range")
    if isinstance(resolution, bool) or int(resolution) != resolution or resolution < 2:
        raise GradproofError(f"expected resolution as an integer >= 2, got {resolution!r}")
    wv = np.linspace(wl, wh, int(resolution))
    bv = np.linspace(bl, bh, int(resolution))
    W_, B_ = np.meshgrid(wv, bv, indexing="ij")
    c = _compile(model)
    xs = forward(W_, B_, model=model)
    E = np.asarray(c.loss(xs[-1]), dtype=np.float64)
    g = _backward(c, xs, W_)
    with np.errstate(divide="ignore"):
        lg = np.log10(np.linalg.norm(g, axis=-1))
    return Surface(w=frozen(wv), b=frozen(bv), W=frozen(W_), B=frozen(B_), loss=frozen(E), log10_grad_norm=frozen(lg))


# --------------------------------------------------------------------------- SGD


@dataclass(frozen=True)
class SGDRun:
    """One SGD run on the cliff.

    Attributes
    ----------
    params : (steps + 1, 2)
        (w, b) after each update, row 0 the start.
    losses : (steps + 1,)
    grad_norms : (steps,)
        ‖∇E‖ at each update, before clipping.
    step_lengths : (steps,)
        ‖θ_{k+1} − θ_k‖.
    clipped : (steps,) bool
        Whether the update was clipped.
    lr : float
    threshold : float or None
        The clipping threshold, ``None`` without clipping.
    """

    params: np.ndarray
    losses: np.ndarray
    grad_norms: np.ndarray
    step_lengths: np.ndarray
    clipped: np.ndarray
    lr: float
    threshold: float | None

    @property
    def longest_step(self) -> tuple[int, float]:
        """(k, length) of the longest update (from row k to k + 1 of :attr:`params`)."""
        k = int(np.argmax(self.step_lengths))
        return k, float(self.step_lengths[k])


def _ro_bool(a: np.ndarray) -> np.ndarray:
    out = np.array(a, dtype=bool, copy=True)
    out.setflags(write=False)
    return out


def sgd(
    start: Sequence[float] = DEFAULT_START,
    lr: float = DEFAULT_LR,
    steps: int = DEFAULT_STEPS,
    *,
    clip: float | None = None,
    model: CliffModel = _MODEL,
) -> SGDRun:
    """Plain gradient descent on E(w, b), optionally with norm clipping (Algorithm 1).

    Parameters
    ----------
    start : (w, b)
    lr : float
        Learning rate > 0.
    steps : int
        Number of updates ≥ 1.
    clip : float or None, keyword-only
        Norm-clipping threshold θ; every update is then at most lr·θ long.

    Returns
    -------
    SGDRun
    """
    from .clipping import clip_by_norm

    try:
        p = np.array([float(v) for v in start], dtype=np.float64)
    except (TypeError, ValueError):
        raise GradproofError(f"expected start as (w, b), got {start!r}") from None
    if p.shape != (2,) or not np.all(np.isfinite(p)):
        raise GradproofError(f"expected start as two finite numbers (w, b), got {start!r}")
    if isinstance(lr, bool) or not (math.isfinite(float(lr)) and float(lr) > 0):
        raise GradproofError(f"expected lr > 0 and finite, got {lr!r}")
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise GradproofError(f"expected steps as an integer >= 1, got {steps!r}")
    lr_f, n_steps = float(lr), int(steps)
    params = np.empty((n_steps + 1, 2))
    losses = np.empty(n_steps + 1)
    norms = np.empty(n_steps)
    clipped = np.zeros(n_steps, dtype=bool)
    params[0] = p
    c = _compile(model)
    for k in range(n_steps):
        # one forward pass for both the loss and the gradient (gradient() and loss() would run two)
        W_, B_ = _params(p[0], p[1])
        xs = forward(W_, B_, model=model)
        g = _backward(c, xs, W_)
        losses[k] = _loss_of(c, xs)
        if clip is not None:
            res = clip_by_norm(g, clip)
            norms[k], clipped[k], g = res.norm_before, res.clipped, res.grads
        else:
            norms[k] = float(np.linalg.norm(g))
        p = p - lr_f * g
        if not np.all(np.isfinite(p)):
            raise GradproofError(
                f"SGD diverged at step {k + 1} (parameters not finite); lower lr or clip"
            )
        params[k + 1] = p
    losses[n_steps] = loss(p[0], p[1], model=model)
    return SGDRun(
        params=frozen(params),
        losses=frozen(losses),
        grad_norms=frozen(norms),
        step_lengths=frozen(np.linalg.norm(np.diff(params, axis=0), axis=1)),
        clipped=_ro_bool(clipped),
        lr=lr_f,
        threshold=None if clip is None else float(clip),
    )


def compare_clipping(
    start: Sequence[float] = DEFAULT_START,
    lr: float = DEFAULT_LR,
    steps: int = DEFAULT_STEPS,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    model: CliffModel = _MODEL,
) -> tuple[SGDRun, SGDRun]:
    """The same SGD run without and with norm clipping: ``(unclipped, clipped)``."""
    return (
        sgd(start, lr, steps, model=model),
        sgd(start, lr, steps, clip=threshold, model=model),
    )
