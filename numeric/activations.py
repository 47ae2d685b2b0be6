r"""numpy (float64 and complex128) and torch versions of the activations of :mod:`gradproof.derive`.

The symbolic layer holds σ and σ' as SymPy expressions only; this module gives them numbers:

* :func:`numpy_pair` ``(act) -> (σ, σ')``, each ``f(z) -> array`` for z: (...,) float64 or
  complex128, same shape and kind out;
* :func:`torch_function` ``(act) -> σ`` on a torch tensor z: (...,) (torch imported on first call).

Built-ins have hand-written, overflow-free rules in :data:`_TABLE` (σ and σ' side by side, checked
against torch autograd and against SymPy's σ' in the tests); any other activation (a user formula,
or a named activation with parameters) is evaluated from its SymPy expression with ``lambdify``,
elements where float64 overflows being recomputed with mpmath.

Complex input (complex-step differentiation, z = x + i·1e-30) is supported wherever σ is analytic;
at the kinks of relu-like functions (Piecewise, abs, sign) the branch is decided by Re z, so the
complex step sees the piece it is on, and the value at the kink itself follows the branch that owns
it (PyTorch's convention), not a derivative of an analytic function.

Examples
--------
>>> import numpy as np
>>> from gradproof.derive import activation
>>> sigma, sigma_prime = numpy_pair(activation("sigmoid"))
>>> float(sigma_prime(np.array(0.0)))
0.25
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable

import numpy as np
import sympy as sp

from ..derive.activations import X, Activation, activation
from ..derive.errors import GradproofError

__all__ = ["numpy_pair", "torch_function", "numpy_function"]

ArrayFn = Callable[[Any], np.ndarray]
Expr = sp.Expr


# ---------------------------------------------------------------------------------------------
# numpy helpers: float64 and complex128 in, same kind out
# ---------------------------------------------------------------------------------------------
def _as_array(z: Any) -> np.ndarray:
    """Convert ``z`` to a float64 or complex128 array (the only two kinds accepted)."""
    arr = np.asarray(z)
    if arr.dtype.kind == "c":
        return arr.astype(np.complex128, copy=False)
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64, copy=False)
    raise GradproofError(
        f"An activation expects a float or complex array; got dtype {arr.dtype}. "
        "Convert the input with np.asarray(z, dtype=float)."
    )


def _nan_like_input(out: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Propagate NaN inputs to NaN outputs (branch tests on NaN are False)."""
    nan = np.isnan(z.real)
    if nan.any():
        out = np.array(out, dtype=np.result_type(out, z), copy=True)
        out[nan] = np.nan
    return out


# ---------------------------------------------------------------------------------------------
# Built-in activations: numpy forward and derivative side by side, then torch
# (the branch of a kink is decided by the real part, so complex-step differentiation with
#  z = x + i·1e-30 sees the linear piece it is on)
# ---------------------------------------------------------------------------------------------
def _np_sigmoid(z: Any) -> np.ndarray:
    """σ(z) = 1/(1 + e^{-z}), evaluated without overflow: e^{-|Re z|} only."""
    z = _as_array(z)
    out = np.empty_like(z)
    pos = z.real >= 0
    neg = ~pos
    with np.errstate(under="ignore"):
        out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
        ez = np.exp(z[neg])
        out[neg] = ez / (1.0 + ez)
    return out


def _np_sigmoid_prime(z: Any) -> np.ndarray:
    """σ'(z) = σ(z) σ(-z) (= σ(1-σ), without the cancellation in 1 - σ)."""
    z = _as_array(z)
    return _np_sigmoid(z) * _np_sigmoid(-z)


def _np_tanh(z: Any) -> np.ndarray:
    """tanh(z); underflow of the tiny imaginary part at large |Re z| is harmless."""
    z = _as_array(z)
    with np.errstate(under="ignore"):
        return np.tanh(z)


def _np_tanh_prime(z: Any) -> np.ndarray:
    """tanh'(z) = sech²(z) = 4w/(1+w)² with w = e^{-2 s z}, s = sign(Re z): no overflow."""
    z = _as_array(z)
    s = np.where(z.real >= 0, 1.0, -1.0)
    with np.errstate(under="ignore"):
        w = np.exp(-2.0 * s * z)
        return 4.0 * w / (1.0 + w) ** 2


def _np_relu(z: Any) -> np.ndarray:
    """relu(z) = 0 for Re z ≤ 0, z otherwise (the complex value is kept on the linear piece)."""
    z = _as_array(z)
    return np.where(z.real <= 0, 0.0, z).astype(z.dtype)


def _np_relu_prime(z: Any) -> np.ndarray:
    """relu'(z) = 1 for Re z > 0, 0 for Re z ≤ 0 (PyTorch: 0 at the kink)."""
    z = _as_array(z)
    return _nan_like_input(np.where(z.real > 0, 1.0, 0.0).astype(z.dtype), z)


def _np_hard_sigmoid(z: Any) -> np.ndarray:
    """hardsigmoid(z) = 0 (Re z ≤ -3), 1 (Re z ≥ 3), z/6 + 1/2 in between."""
    z = _as_array(z)
    r = z.real
    return np.where(r <= -3, 0.0, np.where(r >= 3, 1.0, z / 6.0 + 0.5)).astype(z.dtype)


def _np_hard_sigmoid_prime(z: Any) -> np.ndarray:
    """hardsigmoid'(z) = 1/6 for -3 < Re z < 3, 0 otherwise (PyTorch: 0 at ±3)."""
    z = _as_array(z)
    inside = (z.real > -3) & (z.real < 3)
    return _nan_like_input(np.where(inside, 1.0 / 6.0, 0.0).astype(z.dtype), z)


def _np_identity(z: Any) -> np.ndarray:
    """id(z) = z."""
    return _as_array(z).copy()


def _np_identity_prime(z: Any) -> np.ndarray:
    """id'(z) = 1."""
    z = _as_array(z)
    return _nan_like_input(np.ones_like(z), z)


def _torch_sigmoid(z: Any) -> Any:
    import torch

    return torch.sigmoid(z)


def _torch_tanh(z: Any) -> Any:
    import torch

    return torch.tanh(z)


def _torch_relu(z: Any) -> Any:
    import torch

    return torch.relu(z)


def _torch_hard_sigmoid(z: Any) -> Any:
    import torch

    return torch.nn.functional.hardsigmoid(z)


def _torch_identity(z: Any) -> Any:
    return z


# fmt: off
#: name -> (numpy σ, numpy σ', torch σ): one row per built-in, the derivative rule beside σ.
_TABLE: dict[str, tuple[ArrayFn, ArrayFn, Callable[[Any], Any]]] = {
    "sigmoid":      (_np_sigmoid,      _np_sigmoid_prime,      _torch_sigmoid),
    "tanh":         (_np_tanh,         _np_tanh_prime,         _torch_tanh),
    "relu":         (_np_relu,         _np_relu_prime,         _torch_relu),
    "hard_sigmoid": (_np_hard_sigmoid, _np_hard_sigmoid_prime, _torch_hard_sigmoid),
    "identity":     (_np_identity,     _np_identity_prime,     _torch_identity),
}
# fmt: on


# ---------------------------------------------------------------------------------------------
# numpy / torch versions of any SymPy expression in X (lambdify of SymPy-produced expressions only)
# ---------------------------------------------------------------------------------------------
_GP_ABS = sp.Function("gp_abs")
_GP_SIGN = sp.Function("gp_sign")
_GP_ERF = sp.Function("gp_erf")
_GP_RE = sp.Function("gp_re")


def _is_log_of_one_plus(node: Expr) -> bool:
    return isinstance(node, sp.log) and node.args[0].is_Add and sp.S.One in node.args[0].args


def _real_conditions(expr: Expr) -> Expr:
    """Piecewise conditions compare Re x, so complex-step input picks the branch of its real part."""

    def fix(node: Expr) -> Expr:
        pieces = [(e, c.replace(X, _GP_RE(X)) if c is not sp.true else c) for e, c in node.args]
        return sp.Piecewise(*pieces, evaluate=False)

    return expr.replace(lambda n: isinstance(n, sp.Piecewise), fix)


def _for_printing(expr: Expr) -> Expr:
    """Prepare an expression for lambdify.

    Abs, sign and erf become named functions whose numeric versions we supply, and log(1 + u)
    becomes log1p(u), accurate when u is tiny (softplus at x = -40 is 4.2e-18, not 0).
    """
    from sympy.codegen.cfunctions import log1p

    expr = expr.replace(_is_log_of_one_plus, lambda node: log1p(node.args[0] - 1))
    expr = _real_conditions(expr)
    return expr.replace(sp.Abs, _GP_ABS).replace(sp.sign, _GP_SIGN).replace(sp.erf, _GP_ERF)


def _np_abs_real_branch(z: np.ndarray) -> np.ndarray:
    """|z| with the sign decided by Re z, so complex-step sees the linear piece."""
    return np.where(np.real(z) < 0, -z, z)


def _np_sign_real(z: np.ndarray) -> np.ndarray:
    return np.sign(np.real(z))


_math_erf = np.vectorize(math.erf, otypes=[np.float64])


def _np_erf(z: np.ndarray) -> np.ndarray:
    """erf for float64; for complex z = a + ib with tiny b, erf(a) + i b erf'(a) (first order)."""
    z = np.asarray(z)
    if z.dtype.kind != "c":
        return _math_erf(z)
    a = z.real
    return _math_erf(a) + 1j * z.imag * (2.0 / math.sqrt(math.pi)) * np.exp(-(a**2))


def _mp_abs_real_branch(z: Any) -> Any:
    import mpmath

    return -z if mpmath.re(z) < 0 else z


def _mp_sign_real(z: Any) -> Any:
    import mpmath

    return mpmath.sign(mpmath.re(z))


def _mp_erf(z: Any) -> Any:
    import mpmath

    return mpmath.erf(z)


def _mp_re(z: Any) -> Any:
    import mpmath

    return mpmath.re(z)


def _np_lambdify(expr: Expr) -> Callable:
    """numpy function of a SymPy expression in X (Abs, sign, erf by our numpy versions)."""
    return sp.lambdify(
        X,
        _for_printing(expr),
        modules=[
            {
                "gp_abs": _np_abs_real_branch,
                "gp_sign": _np_sign_real,
                "gp_erf": _np_erf,
                "gp_re": np.real,
            },
            "numpy",
        ],
    )


@functools.lru_cache(maxsize=256)
def _expression_functions(expr: Expr) -> tuple[Callable, Callable]:
    np_fn = _np_lambdify(expr)
    mp_fn = sp.lambdify(
        X,
        _for_printing(expr),
        modules=[
            {
                "gp_abs": _mp_abs_real_branch,
                "gp_sign": _mp_sign_real,
                "gp_erf": _mp_erf,
                "gp_re": _mp_re,
            },
            "mpmath",
        ],
    )
    return np_fn, mp_fn


@functools.lru_cache(maxsize=512)
def numpy_function(expr: Expr) -> ArrayFn:
    r"""numpy version of a SymPy expression in :data:`derive.activations.X`.

    Evaluated with ``lambdify``; elements where float64 overflows (e.g. e^x at x > 709) are
    recomputed with mpmath, so no overflow warning escapes and finite answers stay finite.

    Parameters
    ----------
    expr : sympy.Expr
        A function of X, e.g. σ or σ' of an activation.

    Returns
    -------
    callable
        ``f(z) -> array``, z: (...,) float64 or complex128, same shape out.
    """
    return _ExpressionNumpy(expr)


class _ExpressionNumpy:
    def __init__(self, expr: Expr) -> None:
        self.expr = expr

    def __call__(self, z: Any) -> np.ndarray:
        z = _as_array(z)
        fn, _ = _expression_functions(self.expr)
        with np.errstate(all="ignore"):
            raw = np.asarray(fn(z))
            out = np.array(np.broadcast_to(raw, z.shape), dtype=np.result_type(raw, z))
        bad = ~np.isfinite(out) & np.isfinite(z)
        if bad.any():
            out[bad] = self._mpmath(z[bad])
        return out

    def _mpmath(self, values: np.ndarray) -> np.ndarray:
        import mpmath

        _, mfn = _expression_functions(self.expr)
        complex_input = values.dtype.kind == "c"
        result = np.empty(values.shape, dtype=np.complex128 if complex_input else float)
        with mpmath.workdps(40):
            for k, v in enumerate(values):
                arg = mpmath.mpc(v.real, v.imag) if complex_input else mpmath.mpf(v)
                val = mfn(arg)
                result[k] = complex(val) if complex_input else float(mpmath.re(val))
        return result


def _torch_select(conditions: list, choices: list, default: Any = math.nan) -> Any:
    """numpy.select for torch tensors: the first condition that holds picks its choice."""
    import torch

    like = next(c for c in choices if isinstance(c, torch.Tensor))
    out = torch.full_like(like, float(default)) if not isinstance(default, torch.Tensor) else default
    for cond, choice in reversed(list(zip(conditions, choices))):
        cond = torch.as_tensor(cond, device=like.device).expand_as(like)
        out = torch.where(cond, torch.as_tensor(choice, dtype=like.dtype).expand_as(like), out)
    return out


@functools.lru_cache(maxsize=256)
def _expression_torch(expr: Expr) -> Callable:
    import torch

    def lift(fn: Callable) -> Callable:
        def apply(a: Any) -> Any:
            return fn(a if isinstance(a, torch.Tensor) else torch.tensor(a, dtype=torch.float64))

        return apply

    names = ("exp", "log", "log1p", "tanh", "sinh", "cosh", "sin", "cos", "atan", "sqrt")
    namespace: dict[str, Any] = {name: lift(getattr(torch, name)) for name in names}
    namespace.update(
        gp_abs=lift(torch.abs),
        gp_sign=lift(torch.sign),
        gp_erf=lift(torch.erf),
        gp_re=lambda a: a,
        select=_torch_select,
        less=lambda a, b: torch.as_tensor(a) < b,
        greater=lambda a, b: torch.as_tensor(a) > b,
        less_equal=lambda a, b: torch.as_tensor(a) <= b,
        greater_equal=lambda a, b: torch.as_tensor(a) >= b,
        equal=lambda a, b: torch.as_tensor(a) == b,
        pi=math.pi,
        E=math.e,
        e=math.e,
    )
    return sp.lambdify(X, _for_printing(expr), modules=[namespace, "numpy"])


# ---------------------------------------------------------------------------------------------
# Public look-ups
# ---------------------------------------------------------------------------------------------
def numpy_pair(act: Activation | str) -> tuple[ArrayFn, ArrayFn]:
    r"""The numpy σ and σ' of an activation.

    Parameters
    ----------
    act : Activation or str
        Anything :func:`gradproof.derive.activation` accepts.

    Returns
    -------
    (sigma, sigma_prime) : tuple of callables
        Each ``f(z) -> array``, z: (...,) float64 or complex128; same shape and kind out.
        Built-ins use the stable rules of this module's table; others are evaluated from the SymPy
        σ and σ' (``act.expr``, ``act.derivative``).

    Examples
    --------
    >>> import numpy as np
    >>> f, fp = numpy_pair("tanh(3*x)")
    >>> float(fp(np.array(0.0)))
    3.0
    """
    act = activation(act)
    row = _TABLE.get(act.name) if act.builtin else None
    if row is not None:
        return row[0], row[1]
    return numpy_function(act.expr), numpy_function(act.derivative)


def torch_function(act: Activation | str) -> Callable[[Any], Any]:
    r"""σ on torch tensors, z: (...,) -> (...,); differentiable by autograd.

    Built-ins call PyTorch's own function (``torch.sigmoid``, ``F.hardsigmoid``, ...); other
    expressions are written with torch operations from the SymPy σ.
    """
    act = activation(act)
    row = _TABLE.get(act.name) if act.builtin else None
    if row is not None:
        return row[2]
    if act.call is not None:
        return _torch_named(act.call[0], tuple(float(p) for p in act.call[1]))
    expr = act.expr

    def apply(z: Any) -> Any:
        return _expression_torch(expr)(z)

    return apply


def _torch_named(name: str, params: tuple[float, ...]) -> Callable[[Any], Any]:
    """PyTorch's own function for a named activation with its parameters (float64)."""

    def apply(z: Any) -> Any:
        import torch

        F = torch.nn.functional
        table: dict[str, Callable[[Any], Any]] = {
            "leaky_relu": lambda t: F.leaky_relu(t, *params),
            "elu": lambda t: F.elu(t, *params),
            "selu": F.selu,
            # celu by its formula: F.celu's backward rounds 1/α to float32 (about 1e-8 off in
            # float64 unless α is a power of two); same σ, same σ'(0) = 1 as F.celu
            "celu": lambda t: torch.where(
                t > 0, t, params[0] * torch.expm1(torch.clamp(t, max=0.0) / params[0])
            ),
            "gelu": F.gelu,
            "silu": F.silu,
            "mish": F.mish,
            "softplus": lambda t: F.softplus(t, *params),
            "softsign": F.softsign,
            "hardtanh": lambda t: F.hardtanh(t, *params),
            "logsigmoid": F.logsigmoid,
            "relu": torch.relu,
            "sigmoid": torch.sigmoid,
            "tanh": torch.tanh,
            "hard_sigmoid": F.hardsigmoid,
            "identity": lambda t: t,
        }
        return table[name](z)

    return apply
