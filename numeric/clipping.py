"""Gradient clipping on numbers (docs/math.md §2; Pascanu, Mikolov, Bengio 2013, Algorithm 1).

:func:`clip_by_norm` rescales *all* gradients together by the scalar of
:class:`derive.clipping.NormClipping` (compiled with ``lambdify``), so the direction is kept;
:func:`clip_by_value` clamps every entry to [−c, c] on its own, which turns the gradient.
Containers go in and come out in the same shape: a dict of arrays (parameter name → gradient),
a list/tuple of arrays, or one array.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Union

import numpy as np
import sympy

from ..derive.clipping import NormClipping, ValueClipping
from ..derive.errors import GradproofError

__all__ = [
    "ClipResult",
    "Grads",
    "clip_by_norm",
    "clip_by_value",
    "global_norm",
    "direction_cosine",
    "TORCH_EPS",
]

Grads = Union[Mapping[str, np.ndarray], Sequence[np.ndarray], np.ndarray]
"""A gradient: one array, a sequence of arrays, or a mapping name → array."""

TORCH_EPS = 1e-6
"""The ε that ``torch.nn.utils.clip_grad_norm_`` adds to the norm."""


# --------------------------------------------------------------------------- compiled rules


@lru_cache(maxsize=1)
def _norm_scales() -> tuple[Callable[..., Any], Callable[..., Any]]:
    rule = NormClipping()
    pascanu = sympy.lambdify((rule.norm, rule.threshold), rule.scale, modules="numpy")
    torch_like = sympy.lambdify(
        (rule.norm, rule.threshold, rule.epsilon), rule.torch_scale, modules="numpy"
    )
    return pascanu, torch_like


@lru_cache(maxsize=1)
def _value_rule() -> Callable[..., Any]:
    rule = ValueClipping()
    return sympy.lambdify((rule.component, rule.limit), rule.rule_minmax, modules="numpy")


# --------------------------------------------------------------------------- containers


def _unpack(grads: Any) -> tuple[str, list[Any], list[np.ndarray]]:
    """Return (kind, keys, float64 arrays); kind in {"array", "mapping", "sequence"}."""
    if isinstance(grads, np.ndarray):
        kind, keys, items = "array", [None], [grads]
    elif isinstance(grads, Mapping):
        kind, keys, items = "mapping", list(grads.keys()), list(grads.values())
    elif isinstance(grads, Sequence) and not isinstance(grads, (str, bytes)):
        kind, keys, items = "sequence", list(range(len(grads))), list(grads)
    else:
        raise GradproofError(
            f"expected gradients as an array, a sequence of arrays or a mapping name -> array, "
            f"got {type(grads).__name__}"
        )
    arrays = []
    for key, item in zip(keys, items):
        try:
            arr = np.asarray(item)
        except Exception as exc:  # noqa: BLE001 - anything numpy cannot read is bad input
            raise GradproofError(f"could not read gradient {key!r} as an array: {exc}") from None
        if arr.dtype.kind not in "fiu":
            raise GradproofError(
                f"expected real numeric gradients, got dtype {arr.dtype} for {key!r}; "
                "convert to float64"
            )
        arrays.append(arr.astype(np.float64, copy=True))
    return kind, keys, arrays


def _repack(kind: str, keys: list[Any], arrays: list[np.ndarray], original: Any) -> Any:
    if kind == "array":
        return arrays[0]
    if kind == "mapping":
        pairs = list(zip(keys, arrays))
        try:
            return type(original)(pairs)
        except Exception:  # noqa: BLE001 - read-only mapping types: fall back to dict
            return dict(pairs)
    if isinstance(original, tuple):
        if hasattr(original, "_fields"):  # a namedtuple
            return type(original)(*arrays)
        return tuple(arrays)
    return list(arrays)


def _norm_of(arrays: Sequence[np.ndarray]) -> float:
    """Euclidean norm of all entries together, scaled so squares cannot overflow."""
    if not arrays or all(a.size == 0 for a in arrays):
        return 0.0
    big = max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)
    if not math.isfinite(big):
        return math.inf if not any(np.isnan(a).any() for a in arrays) else math.nan
    if big == 0.0:
        return 0.0
    with np.errstate(under="ignore"):  # squares of entries ~1e-170 of the largest: negligible
        total = math.fsum(float(np.sum((a / big) ** 2)) for a in arrays)
    return big * math.sqrt(total)


def global_norm(grads: Grads) -> float:
    """‖g‖ over all parameters together: sqrt(Σ_p Σ_i g_{p,i}²).

    Parameters
    ----------
    grads : ndarray, sequence of ndarray, or mapping str → ndarray

    Examples
    --------
    >>> global_norm({"W": np.array([[3.0]]), "b": np.array([4.0])})
    5.0
    """
    return _norm_of(_unpack(grads)[2])


def direction_cosine(a: Grads, b: Grads) -> float:
    """cos ∠(a, b) of two gradients with the same structure, flattened together.

    Returns ``nan`` when either is zero.
    """
    ka, keys_a, xa = _unpack(a)
    kb, keys_b, xb = _unpack(b)
    if ka != kb or keys_a != keys_b or [x.shape for x in xa] != [y.shape for y in xb]:
        raise GradproofError("expected two gradients with the same keys and shapes")
    # scale each side by its largest entry first, so subnormal or huge gradients keep full precision
    ma = max((float(np.max(np.abs(x))) for x in xa if x.size), default=0.0)
    mb = max((float(np.max(np.abs(y))) for y in xb if y.size), default=0.0)
    if not (math.isfinite(ma) and math.isfinite(mb)):
        raise GradproofError("expected finite gradients for the direction cosine, got NaN/inf")
    if ma == 0.0 or mb == 0.0:
        return math.nan
    with np.errstate(under="ignore"):
        xa = [x / ma for x in xa]
        xb = [y / mb for y in xb]
        na, nb = _norm_of(xa), _norm_of(xb)
        return math.fsum(float(np.sum((x / na) * (y / nb))) for x, y in zip(xa, xb))


def _check_positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise GradproofError(f"expected {name} as a positive number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise GradproofError(
            f"expected {name} > 0 and finite, got {value!r}; use e.g. the average gradient norm "
            "(Pascanu et al. 2013)"
        )
    return v


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ClipResult:
    """The clipped gradient and what the rule did.

    Attributes
    ----------
    grads : same container type as the input
        The clipped gradient (new float64 arrays; the input is never modified).
    norm_before, norm_after : float
        Global Euclidean norm before and after.
    scale : float or None
        s with ĝ = s g (norm clipping); ``None`` for value clipping, which has no single scale.
    clipped : bool
        Whether the clipping branch of the rule was taken.
    method : str
        ``"norm"`` or ``"value"``.
    """

    grads: Any
    norm_before: float
    norm_after: float
    scale: float | None
    clipped: bool
    method: str


# --------------------------------------------------------------------------- the rules


def clip_by_norm(grads: Grads, threshold: float, *, eps: float = 0.0) -> ClipResult:
    """Norm clipping over all parameters together (Pascanu et al. 2013, Algorithm 1).

    .. math::

        \\hat g = s\\, g, \\qquad
        s = \\begin{cases} 1 & \\lVert g \\rVert < \\theta \\\\
                           \\theta / \\lVert g \\rVert & \\text{otherwise} \\end{cases}
        \\quad(\\varepsilon = 0), \\qquad
        s = \\min\\bigl(1, \\theta / (\\lVert g \\rVert + \\varepsilon)\\bigr) \\quad(\\varepsilon > 0).

    Parameters
    ----------
    grads : ndarray, sequence of ndarray, or mapping str → ndarray
        The gradient of every parameter (any shapes).
    threshold : float
        θ > 0.
    eps : float, keyword-only
        0 (default) for the paper's rule; ``TORCH_EPS`` = 1e-6 reproduces
        ``torch.nn.utils.clip_grad_norm_``.

    Returns
    -------
    ClipResult
        ``grads`` in the container type that came in.

    Raises
    ------
    GradproofError
        If θ is not positive and finite, eps is negative, or the gradient has NaN/inf entries.

    Examples
    --------
    >>> r = clip_by_norm([np.array([3.0, 0.0]), np.array([4.0])], 1.0)
    >>> r.norm_before, r.scale, [a.round(12).tolist() for a in r.grads]
    (5.0, 0.2, [[0.6, 0.0], [0.8]])
    """
    theta = _check_positive(threshold, "threshold")
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise GradproofError(f"expected eps as a number >= 0, got {eps!r}; PyTorch uses 1e-6")
    eps_f = float(eps)
    if not math.isfinite(eps_f) or eps_f < 0:
        raise GradproofError(f"expected eps >= 0 and finite, got {eps!r}; PyTorch uses 1e-6")
    kind, keys, arrays = _unpack(grads)
    norm = _norm_of(arrays)
    if not math.isfinite(norm):
        raise GradproofError(
            f"expected a finite gradient, got norm {norm} (NaN/inf entries); clipping cannot "
            "repair that: skip the update or lower the learning rate"
        )
    pascanu, torch_like = _norm_scales()
    if norm == 0.0:  # the zero gradient is never clipped (and 1/‖g‖ is undefined)
        scale, clipped = 1.0, False
    elif eps_f == 0.0:
        scale = float(pascanu(norm, theta))
        clipped = norm >= theta
    else:
        scale = float(torch_like(norm, theta, eps_f))
        clipped = scale < 1.0
    with np.errstate(under="ignore"):  # subnormal entries may round to 0 when scaled down
        out = [a * scale for a in arrays]
    return ClipResult(
        grads=_repack(kind, keys, out, grads),
        norm_before=norm,
        norm_after=_norm_of(out),
        scale=scale,
        clipped=bool(clipped),
        method="norm",
    )


def clip_by_value(grads: Grads, limit: float) -> ClipResult:
    """Value clipping: every entry clamped to [−c, c] on its own, ĝ_i = max(−c, min(c, g_i)).

    Matches ``torch.nn.utils.clip_grad_value_``. Unlike :func:`clip_by_norm` it generally changes
    the direction of the gradient (docs/math.md §2).

    Parameters
    ----------
    grads : ndarray, sequence of ndarray, or mapping str → ndarray
    limit : float
        c > 0.

    Examples
    --------
    >>> clip_by_value(np.array([3.0, 0.5]), 1.0).grads.tolist()
    [1.0, 0.5]
    """
    c = _check_positive(limit, "limit")
    kind, keys, arrays = _unpack(grads)
    if any(np.isnan(a).any() for a in arrays):
        raise GradproofError("expected a gradient without NaN entries; value clipping keeps NaN")
    rule = _value_rule()
    out = [np.asarray(rule(a, c), dtype=np.float64).reshape(a.shape) for a in arrays]
    return ClipResult(
        grads=_repack(kind, keys, out, grads),
        norm_before=_norm_of(arrays),
        norm_after=_norm_of(out),
        scale=None,
        clipped=any(bool(np.any(a != b)) for a, b in zip(arrays, out)),
        method="value",
    )
