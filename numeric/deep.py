r"""Gradient norm against depth in a deep feed-forward stack, with and without skip connections.

The stack is y_l = G_l(y_{l-1}), l = 1..L, width n, every layer its own weights, where G is

* ``plain``: :math:`y = \sigma(W x + b)`;
* ``residual``: :math:`y = x + \sigma(W x + b)` (He et al. 2016);
* ``highway``: :math:`y = T \odot \sigma(W x + b) + (1 - T) \odot x`,
  :math:`T = \mathrm{sigmoid}(W_T x + b_T)` (Srivastava et al. 2015).

The layer Jacobians are *derived* (:func:`derive.skip.residual`, :func:`derive.skip.highway`, the
layer's own D(σ'(z)) W) and compiled to numpy by :mod:`numeric.compiled`; nothing is re-typed.
The norms of the products ∂y_L/∂y_l = J_L ⋯ J_{l+1} come from :func:`numeric.profile.log_norm_profile`
(log space, exact spectral norms).

>>> plain = feedforward_profile(kind="plain", depth=50, width=32, seed=0)
>>> res = feedforward_profile(kind="residual", depth=50, width=32, seed=0)
>>> bool(res.log_norms[0] > plain.log_norms[0])   # the identity path keeps the gradient alive
True
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp

from ..derive.activations import activation as _activation
from ..derive.algebra import M, N
from ..derive.errors import GradproofError
from ..derive.skip import Layer, SkipDerivation, base, highway, residual
from ._readonly import frozen
from .compiled import _dense, _quantity, compile_expression
from .profile import log_norm_profile

__all__ = ["DEEP_KINDS", "DepthProfile", "feedforward_profile", "deep_parameters", "deep_forward"]

DEEP_KINDS = ("plain", "residual", "highway")


@dataclass(frozen=True)
class DepthProfile:
    r"""Gradient norms through a deep feed-forward stack.

    Attributes
    ----------
    kind, depth (L), width (n), seed, activation, gain, gate_bias : the experiment.
    log_norms : (L + 1,) float64
        Entry l is :math:`\log\lVert\partial y_L/\partial y_l\rVert_2` (natural log, largest
        singular value), l = 0..L; entry L is 0 (the identity).
    log_frobenius : (L + 1,) float64, the same with the Frobenius norm.
    """

    kind: str
    depth: int
    width: int
    seed: int
    activation: str
    gain: float
    gate_bias: float
    log_norms: np.ndarray
    log_frobenius: np.ndarray

    @property
    def norms(self) -> np.ndarray:
        """(L + 1,) the norms themselves (may underflow to 0 for a very deep plain stack)."""
        return np.exp(self.log_norms)

    @property
    def log10_decades(self) -> float:
        r""":math:`\log_{10}\lVert\partial y_L/\partial y_0\rVert_2`: decades lost (negative) or gained."""
        return float(self.log_norms[0] / math.log(10.0))


def _check(kind: str, depth: int, width: int, seed: int, gain: float) -> None:
    if kind not in DEEP_KINDS:
        raise GradproofError(f"kind must be one of {', '.join(DEEP_KINDS)}, got {kind!r}")
    for name, v in (("depth", depth), ("width", width)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise GradproofError(f"{name} must be a positive integer, got {v!r}")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise GradproofError(f"seed must be a non-negative integer, got {seed!r}")
    if not (isinstance(gain, (int, float)) and math.isfinite(gain) and gain > 0):
        raise GradproofError(f"gain must be a positive finite number, got {gain!r}")


def deep_parameters(
    *, kind: str, depth: int, width: int, seed: int, gain: float = 1.0, gate_bias: float = -2.0
) -> list[dict[str, np.ndarray]]:
    r"""Seeded float64 parameters, one dict per layer: ``W`` (n, n), ``b`` (n,), and for the
    highway ``W_T`` (n, n), ``b_T`` (n,).

    W ~ N(0, gain²/n) (LeCun/Glorot-style scaling), b ~ N(0, 0.1²), W_T ~ N(0, 1/n) and
    b_T = ``gate_bias`` (negative: the gates start mostly closed, Srivastava et al. 2015).
    """
    _check(kind, depth, width, seed, gain)
    rng = np.random.default_rng(seed)
    layers = []
    for _ in range(depth):
        p = {
            "W": rng.normal(0.0, gain / math.sqrt(width), (width, width)),
            "b": rng.normal(0.0, 0.1, width),
        }
        if kind == "highway":
            p["W_T"] = rng.normal(0.0, 1.0 / math.sqrt(width), (width, width))
            p["b_T"] = np.full(width, float(gate_bias))
        layers.append(p)
    return layers


@dataclass(frozen=True)
class _Compiled:
    """The layer and block definitions and the derived block Jacobian, as numpy closures."""

    layer: tuple
    block: tuple
    jacobian: object
    symbols: dict


@lru_cache(maxsize=None)
def _compiled(kind: str, act: str) -> _Compiled:
    layer = Layer(act)
    b = base(layer)
    z = sp.MatrixSymbol("z", N, 1)
    names = {
        "x": b.variable,
        "W": sp.MatrixSymbol("W", N, N),
        "b": sp.MatrixSymbol("b", N, 1),
        "z": z,
        "F(x)": layer.output,
    }
    layer_defs = tuple((lhs, compile_expression(rhs)) for lhs, rhs in layer.definitions)
    if kind == "plain":
        return _Compiled(layer_defs, (), _quantity(b.jacobian, {}), names)
    d: SkipDerivation = residual(layer) if kind == "residual" else highway(layer)
    for sym in d.result.atoms(sp.MatrixSymbol) | {s for s, _ in d.definitions}:
        names.setdefault(sym.name, sym)
    for ref in d.references:
        names.setdefault(ref.numerator.name, ref.numerator)
    for _, rhs in d.definitions:
        for sym in rhs.atoms(sp.MatrixSymbol):
            names.setdefault(sym.name, sym)
    block_defs = tuple((lhs, compile_expression(rhs)) for lhs, rhs in d.definitions)
    return _Compiled(layer_defs, block_defs, _quantity(d.result, d.references), names)


def _layer_env(comp: _Compiled, p: dict[str, np.ndarray], x: np.ndarray) -> dict:
    s = comp.symbols
    env: dict = {N: x.shape[-1], M: x.shape[-1], s["x"]: x, s["W"]: p["W"], s["b"]: p["b"]}
    for sym, f in comp.layer:
        env[sym] = f(env)
    fx = env[s["F(x)"]]
    for key in ("F", "H"):
        if key in s:
            env[s[key]] = fx
    for key in ("W_T", "b_T"):
        if key in s:
            env[s[key]] = p[key]
    for sym, f in comp.block:
        env[sym] = f(env)
    return env


def _output(comp: _Compiled, env: dict) -> np.ndarray:
    if comp.block:
        return env[comp.block[-1][0]]
    return env[comp.symbols["F(x)"]]


def deep_forward(
    layers: list[dict[str, np.ndarray]], y0: np.ndarray, *, kind: str, activation: str = "tanh"
) -> np.ndarray:
    """y_0, …, y_L: (L + 1, n) from the compiled definitions. ``y0: (n,)``."""
    comp = _compiled(kind, _activation(activation).name)
    ys = [np.asarray(y0, dtype=np.float64)]
    for p in layers:
        ys.append(_output(comp, _layer_env(comp, p, ys[-1])))
    return np.stack(ys)


def _reversed_jacobians(comp: _Compiled, layers: list, ys: np.ndarray) -> Iterator[np.ndarray]:
    for l in range(len(layers), 0, -1):
        env = _layer_env(comp, layers[l - 1], ys[l - 1])
        yield _dense(comp.jacobian(env))


def feedforward_profile(
    *,
    kind: str = "plain",
    depth: int = 50,
    width: int = 32,
    seed: int = 0,
    activation: str = "tanh",
    gain: float = 1.0,
    gate_bias: float = -2.0,
) -> DepthProfile:
    r"""‖∂y_L/∂y_l‖₂ for every depth l of a seeded feed-forward stack (``kind`` plain, residual,
    highway), from the derived block Jacobians.

    .. math::

        \frac{\partial y_L}{\partial y_l} = J_L J_{L-1} \cdots J_{l+1},\quad
        J^{\text{plain}} = D(\sigma'(z)) W,\quad J^{\text{res}} = I + D(\sigma'(z)) W,\quad
        J^{\text{hw}} = D(1-T) + D((H-x)\odot T\odot(1-T)) W_T + D(T) D(\sigma'(z)) W.

    The input y_0 ~ N(0, I) is drawn from the same seeded generator after the parameters.

    Parameters
    ----------
    kind : ``plain``, ``residual`` or ``highway``.
    depth, width : L ≥ 1 and n ≥ 1.
    seed : non-negative integer.
    activation : the layers' σ (any name :func:`derive.activation` knows).
    gain : the weight scale, W ~ N(0, gain²/n).
    gate_bias : the highway's b_T (ignored otherwise).
    """
    _check(kind, depth, width, seed, gain)
    act = _activation(activation).name
    layers = deep_parameters(kind=kind, depth=depth, width=width, seed=seed, gain=gain, gate_bias=gate_bias)
    y0 = _input(width, seed)
    comp = _compiled(kind, act)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        ys = deep_forward(layers, y0, kind=kind, activation=act)
        prof = log_norm_profile(_reversed_jacobians(comp, layers, ys), depth, size=width)
    zero = np.zeros(1)
    return DepthProfile(
        kind=kind,
        depth=depth,
        width=width,
        seed=seed,
        activation=act,
        gain=float(gain),
        gate_bias=float(gate_bias),
        log_norms=frozen(np.concatenate([prof.log_spectral, zero])),
        log_frobenius=frozen(np.concatenate([prof.log_frobenius, zero + 0.5 * math.log(width)])),
    )


def _input(width: int, seed: int) -> np.ndarray:
    """y_0: (n,), drawn from a generator seeded with (seed, 1) so it is independent of the weights."""
    return np.random.default_rng([seed, 1]).normal(0.0, 1.0, width)

