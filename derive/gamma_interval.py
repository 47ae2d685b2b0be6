r"""A certified enclosure of γ = sup_x |σ'(x)|: exact rationals lo ≤ γ ≤ hi.

Where γ has a closed form (:func:`gradproof.derive.gamma` finds it by calculus) the enclosure is
that number, itself if rational, else the nearest 30-digit rationals below and above it. Where it
has none (SiLU x·σ(x), mish, most sums of transcendental functions) γ is enclosed by interval
arithmetic (mpmath's ``iv`` context, outward rounding at 113 bits) and branch and bound:

1. The real line is split at the kinks of σ' (as for :func:`gamma`); on each open piece σ' is a
   smooth formula g, and its values at the kinks are enclosed directly.
2. Each piece is covered by boxes: unit-order boxes on a core [-C, C], dyadic boxes
   [2^k, 2^{k+1}] out to 2^16, then [2^16, 2^32], [2^32, 2^64], ... out to |x| = 2^{1100}
   (beyond every float64), and the two rays past that.
3. On a finite box B with midpoint m, g(B) ⊆ g([m]) + g'(B)(B - m) (the mean-value form, which
   converges quadratically at a maximum) intersected with the natural interval extension g(B);
   so sup_B |g| ≤ ub(B). Every box's midpoint gives a rigorous lower bound |g(m)| ≥ lb.
4. The box of largest ub is bisected until ub ≤ lo (1 + 1e-13), lo being the best lower bound.

The rays |x| ≥ R = 2^{1100} are enclosed by interval arithmetic with an infinite end where that
is finite (e.g. tanh(x - 1) + sin(x)/10). Where it is not, because of an indeterminate product such
as x·e^{-x} (SiLU, mish), σ' is written in t = e^{-|x|} ∈ (0, e^{-R}] as
σ' = Σ_k ℓ^k t^{j_k} d_k(t) with ℓ = log t = -|x| and d_k rational and finite at t = 0 (see
:func:`_log_rational_ray_bound`). Since t ↦ t^j |log t|^k increases on (0, e^{-k/j}), each term with
k ≥ 1 is at most R^k e^{-jR} < 2^{-4000} on the ray, and the rest is enclosed by interval
arithmetic on t ∈ [0, 2^{-4000}]: a rigorous bound with no limit taken
(:attr:`GammaEnclosure.tails` ``"monotone"``). Only a σ' of neither kind (e.g. x·e^{-x²}, whose
tail is not rational in e^{x}) falls back to the limit of σ' at ±∞ computed by SymPy's ``limit``
(Gruntz 1996), recorded as ``"limit"``; for every x that float64 can represent the enclosure is
certified by interval arithmetic alone.

Examples
--------
>>> gamma_interval("sigmoid")
(1/4, 1/4)
>>> lo, hi = gamma_interval("x*sigmoid(x)")
>>> round(float(lo), 12), float(hi - lo) <= 1e-12 * float(hi)
(1.099839320129, True)
"""

from __future__ import annotations

import functools
import heapq
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

import sympy as sp

from .activations import X, Activation, Expr, activation
from .errors import GradproofError
from .gamma import _gamma_of, _kinks, _NoClosedForm, _one_sided, _specialize

__all__ = ["GammaEnclosure", "gamma_interval", "gamma_enclosure", "gamma_is_exact"]

_PREC = 113  # bits of the interval arithmetic (quadruple precision)
_TOLERANCE = Fraction(1, 10**13)  # stop when hi - lo ≤ 1e-13 hi (the promise is 1e-12)
_CORE = 64  # boxes of width ≤ 1 on [-C, C]; dyadic boxes beyond
_FAR = 1100  # dyadic boxes out to 2^1100 > the largest float64 (≈ 2^1024)
_MAX_BOXES = 200_000
_DIGITS = 30  # closed forms are rounded outward to 30 significant digits


@dataclass(frozen=True)
class GammaEnclosure:
    r"""lo ≤ γ = sup|σ'| ≤ hi, exact rationals.

    Attributes
    ----------
    lo, hi : sympy.Rational
        The enclosure, hi - lo ≤ 1e-12 hi.
    exact : sympy.Expr or None
        γ in closed form when :func:`gradproof.derive.gamma` derives one (then lo = hi = exact if it
        is rational), else ``None``.
    tails : str
        How |x| ≥ 2^1100 was handled when no closed form exists: ``"interval"`` (interval
        arithmetic on the ray), ``"monotone"`` (σ' written in t = e^{-|x|}, its log terms bounded
        by monotonicity: rigorous, see the module docstring), ``"limit"`` (the limit of σ' at ±∞,
        SymPy's Gruntz algorithm, only where neither applies), or ``"closed form"``.
    reason : str
        Why :func:`gradproof.derive.gamma` gave the certified upper bound instead of a closed form
        (empty when γ has one).
    """

    lo: Expr
    hi: Expr
    exact: Expr | None
    tails: str
    reason: str = ""

    @property
    def is_exact(self) -> bool:
        """Whether γ has a closed form (then :func:`gamma` returns it, else it returns ``hi``)."""
        return self.exact is not None


def gamma_interval(spec: Activation | str) -> tuple[Expr, Expr]:
    r"""Certified rationals (lo, hi) with lo ≤ γ = sup_x |σ'(x)| ≤ hi and hi - lo ≤ 1e-12 hi.

    Parameters
    ----------
    spec : Activation or str
        Anything :func:`gradproof.derive.activation` accepts.

    Returns
    -------
    (lo, hi) : tuple of sympy.Rational
        lo = hi = γ when γ is a rational closed form (sigmoid: 1/4); the nearest 30-digit
        rationals around γ for an irrational closed form (erf: 2/√π); an interval-arithmetic
        enclosure otherwise (SiLU). See the module docstring for the method.

    Raises
    ------
    GradproofError
        If σ' is unbounded or the enclosure cannot be certified.

    Examples
    --------
    >>> lo, hi = gamma_interval("erf(x)")
    >>> bool(lo < sp.N(2 / sp.sqrt(sp.pi), 50) < hi)
    True
    """
    enclosure = gamma_enclosure(spec)
    return enclosure.lo, enclosure.hi


def gamma_is_exact(spec: Activation | str) -> bool:
    """Whether :func:`gradproof.derive.gamma` returns γ in closed form (else the certified hi).

    >>> gamma_is_exact("tanh"), gamma_is_exact("silu")
    (True, False)
    """
    return gamma_enclosure(spec).is_exact


def gamma_enclosure(spec: Activation | str) -> GammaEnclosure:
    """The :class:`GammaEnclosure` of an activation (cached on its SymPy σ')."""
    act = activation(spec)
    return _enclosure_of(act.derivative, act.name)


@functools.lru_cache(maxsize=256)
def _enclosure_of(derivative: Expr, name: str) -> GammaEnclosure:
    try:
        exact = _gamma_of(derivative, name)
    except _NoClosedForm as why:
        lo, hi, tails = _certify(derivative, name)
        return GammaEnclosure(lo=lo, hi=hi, exact=None, tails=tails, reason=str(why))
    if exact.is_Rational:
        return GammaEnclosure(lo=exact, hi=exact, exact=exact, tails="closed form")
    box = _enclose(exact, None)
    lo, hi = _round_outward(_low(box), _high(box), _DIGITS)
    return GammaEnclosure(lo=lo, hi=hi, exact=exact, tails="closed form")


# ---------------------------------------------------------------------------------------------
# Interval evaluation of a SymPy expression (mpmath.iv, outward rounding)
# ---------------------------------------------------------------------------------------------
def _iv() -> Any:
    import mpmath

    mpmath.iv.prec = _PREC
    return mpmath.iv


def _low(box: Any) -> Fraction:
    return _fraction(box.a)


def _high(box: Any) -> Fraction:
    return _fraction(box.b)


def _fraction(end: Any) -> Fraction:
    import mpmath

    with mpmath.workprec(2 * _PREC):
        value = mpmath.mpf(end)
    if not mpmath.isfinite(value):
        raise OverflowError("infinite end")
    man, exp = value.man_exp
    return Fraction(int(man)) * (Fraction(2) ** int(exp))


def _increasing(fn_name: str, box: Any) -> Any:
    """An increasing function (atan, erf): its ends, 20 bits finer, widened by 2^-(prec-4)."""
    import mpmath

    iv = _iv()
    fn = getattr(mpmath, fn_name)
    with mpmath.workprec(_PREC + 20):
        a, b = fn(mpmath.mpf(box.a)), fn(mpmath.mpf(box.b))
        slack = mpmath.mpf(2) ** (4 - _PREC)
        return iv.mpf([a - slack * (1 + abs(a)), b + slack * (1 + abs(b))])


def _enclose(expr: Expr, box: Any) -> Any:
    """An interval containing expr(x) for every x in ``box`` (an ``iv.mpf``)."""
    _iv()
    return _compiled(expr)(box)


def _sum(values: list[Any]) -> Any:
    return functools.reduce(lambda u, v: u + v, values)


def _product(values: list[Any]) -> Any:
    return functools.reduce(lambda u, v: u * v, values)


@functools.lru_cache(maxsize=4096)
def _compiled(expr: Expr) -> Callable[[Any], Any]:
    """expr as a function box -> interval (the SymPy tree is walked once, then cached).

    The rules, evaluated in mpmath's ``iv`` context (outward rounding): + and × of the
    arguments' enclosures; integer powers, sqrt, else exp(e log b); exp, log, sin, cos directly;
    tanh as 1 - 2/(e^{2u} + 1) and sinh, cosh through exp (tight: u appears once); atan and erf as
    increasing functions of their ends; abs.
    """
    iv = _iv()
    if expr == X:
        return lambda box: box
    if expr.is_Integer:
        k = int(expr)
        return lambda box: iv.mpf(k)
    if expr.is_Rational:
        p, q = int(expr.p), int(expr.q)
        return lambda box: iv.mpf(p) / q
    if expr is sp.pi:
        return lambda box: iv.pi
    if expr is sp.E:
        return lambda box: iv.e
    parts = [_compiled(a) for a in expr.args]

    def args(box: Any) -> list[Any]:
        return [f(box) for f in parts]

    if expr.is_Add:
        return lambda box: _sum(args(box))
    if expr.is_Mul:
        return lambda box: _product(args(box))
    if expr.is_Pow:
        e = expr.args[1]
        if e.is_Integer:
            k = int(e)
            return lambda box: parts[0](box) ** k
        if e == sp.Rational(1, 2):
            return lambda box: iv.sqrt(parts[0](box))
        return lambda box: iv.exp(parts[1](box) * iv.log(parts[0](box)))
    simple = {sp.exp: iv.exp, sp.log: iv.log, sp.sin: iv.sin, sp.cos: iv.cos}
    for kind, fn in simple.items():
        if isinstance(expr, kind):
            return lambda box, fn=fn: fn(parts[0](box))
    if isinstance(expr, sp.tanh):  # u appears once: 1 - 2/(e^{2u} + 1) is tight
        return lambda box: 1 - 2 / (iv.exp(2 * parts[0](box)) + 1)
    if isinstance(expr, sp.sinh):  # a sum of two increasing functions: tight
        return lambda box: _sinh_cosh(parts[0](box), -1)
    if isinstance(expr, sp.cosh):
        return lambda box: _sinh_cosh(parts[0](box), 1)
    if isinstance(expr, sp.atan):
        return lambda box: _increasing("atan", parts[0](box))
    if isinstance(expr, sp.erf):
        return lambda box: _increasing("erf", parts[0](box))
    if isinstance(expr, sp.Abs):
        return lambda box: abs(parts[0](box))
    raise GradproofError(
        f"γ interval: cannot enclose {expr.func.__name__} by interval arithmetic; "
        "write σ with exp, log, tanh, sinh, cosh, sin, cos, atan, erf, sqrt, abs and powers."
    )


def _sinh_cosh(u: Any, sign: int) -> Any:
    iv = _iv()
    return (iv.exp(u) + sign * iv.exp(-u)) / 2


_TINY_EXPONENT = -4000  # |values| below 2^-4000 count as 0 (lower) or 2^-4000 (upper)
_HUGE_EXPONENT = 4000  # |values| above 2^4000 count as unbounded
_UNBOUNDED = Fraction(2) ** (_HUGE_EXPONENT + 1)  # a box's upper bound when it is not finite


def _magnitude(box: Any) -> tuple[Fraction, Any]:
    """(lower, upper) bounds of sup|·| over an interval, as exact fractions; upper may be inf."""
    import mpmath

    # the ends, and their negations, exactly: mpf(), -b and abs() round to the working precision,
    # which must therefore exceed the ends' 113 bits (at the default 53 bits abs(b) could round
    # an upper end down)
    with mpmath.workprec(2 * _PREC):
        a, b = mpmath.mpf(box.a), mpmath.mpf(box.b)
        if mpmath.isnan(a) or mpmath.isnan(b):
            return Fraction(0), math.inf
        inner = a if a > 0 else (-b if b < 0 else mpmath.mpf(0))
        outer = max(abs(a), abs(b))
    if not mpmath.isfinite(outer) or mpmath.mag(outer) > _HUGE_EXPONENT:
        upper = math.inf
    elif outer == 0 or mpmath.mag(outer) < _TINY_EXPONENT:
        upper = Fraction(1, 2 ** -_TINY_EXPONENT)
    else:
        upper = _fraction(outer)
    if inner == 0 or mpmath.mag(inner) < _TINY_EXPONENT:
        lower = Fraction(0)
    elif not mpmath.isfinite(inner) or mpmath.mag(inner) > _HUGE_EXPONENT:
        lower = Fraction(2) ** _HUGE_EXPONENT
    else:
        lower = _fraction(inner)
    return lower, upper


# ---------------------------------------------------------------------------------------------
# Branch and bound
# ---------------------------------------------------------------------------------------------
_T = sp.Symbol("t", positive=True)


@dataclass(frozen=True)
class _Piece:
    g: Expr  # σ' on the open piece
    gp: Expr  # σ''
    g_of_t: Expr  # σ' in t = e^x, one fraction: tight where t is tiny (x → -∞)
    g_of_s: Expr  # σ' in s = e^{-x}, one fraction: tight where s is tiny (x → +∞)


def _boxes(a: Expr, b: Expr) -> list[tuple[Any, Any]]:
    """Cover of the closed piece [a, b] (ends may be ±∞) by (left, right) ends as mpf/inf."""
    import mpmath

    core = max([_CORE] + [2 * abs(float(k)) for k in (a, b) if k.is_finite])
    left = mpmath.mpf(sp.Float(a, 40)) if a.is_finite else mpmath.mpf(-core)
    right = mpmath.mpf(sp.Float(b, 40)) if b.is_finite else mpmath.mpf(core)
    if a.is_finite and left < -core or b.is_finite and right > core:
        core = max(abs(left), abs(right))
    boxes = []
    if left < right:
        steps = max(1, min(256, int(math.ceil(float(right - left)))))
        edges = [left + (right - left) * k / steps for k in range(steps + 1)]
        edges[0], edges[-1] = left, right
        boxes.extend(zip(edges[:-1], edges[1:]))
    start = int(math.ceil(math.log2(float(core))))
    for sign, end in ((-1, a), (1, b)):
        if end.is_finite:
            continue
        exponents = list(range(start, 16)) + [16 * 2**j for j in range(7)]  # ..., 2^512, 2^1024
        ends = [mpmath.mpf(core)] + [mpmath.mpf(2) ** k for k in exponents if k > start]
        ends.append(mpmath.mpf(2) ** _FAR)
        pairs = list(zip(ends[:-1], ends[1:])) + [(ends[-1], mpmath.inf)]
        boxes.extend((-q, -p) if sign < 0 else (p, q) for p, q in pairs)
    return boxes


def _certify(d: Expr, name: str) -> tuple[Expr, Expr, str]:
    """Branch and bound over the real line; returns (lo, hi, tails) as in GammaEnclosure."""
    import mpmath

    iv = _iv()
    if d.has(sp.Max, sp.Min):
        d = d.rewrite(sp.Piecewise)
    lo_line, hi_line = sp.S.NegativeInfinity, sp.S.Infinity
    kinks = _kinks(d, lo_line, hi_line, name)
    best = Fraction(0)
    for k in kinks:  # σ' at the kinks themselves
        best = max(best, _magnitude(_enclose(d.subs(X, k), None))[0])
    points = [lo_line, *kinks, hi_line]
    heap: list[tuple[Any, int, Any, Any, _Piece]] = []
    tails = "interval"
    counter = 0
    for a, b in zip(points[:-1], points[1:]):
        sample = (a + b) / 2 if a.is_finite and b.is_finite else (b - 1 if a.is_infinite and b.is_finite else (a + 1 if a.is_finite else sp.S.Zero))
        g = _specialize(d, sample)
        piece = _Piece(g=g, gp=sp.diff(g, X), g_of_t=_in_t(g, 1), g_of_s=_in_t(g, -1))
        for left, right in _boxes(a, b):
            ub, lb, how = _bound(piece, left, right, name)
            if how == "limit" or how == "monotone" and tails == "interval":
                tails = how
            best = max(best, lb)
            counter += 1
            heapq.heappush(heap, (-ub, counter, left, right, piece))
    while heap:
        neg_ub, _, left, right, piece = heapq.heappop(heap)
        ub = -neg_ub
        if ub <= best * (1 + _TOLERANCE):
            lo, hi = _round_outward(best, max(ub, best), 20)
            return lo, hi, tails
        if counter > _MAX_BOXES or not (mpmath.isfinite(left) and mpmath.isfinite(right)):
            break
        middle = (left + right) / 2
        if left * right > 0 and min(abs(left), abs(right)) >= _CORE:  # far out: split geometrically
            middle = mpmath.sqrt(left * right) * (1 if left > 0 else -1)
        if not left < middle < right:
            break
        for l, r in ((left, middle), (middle, right)):
            sub_ub, lb, _ = _bound(piece, l, r, name)
            best = max(best, lb)
            counter += 1
            heapq.heappush(heap, (-sub_ub, counter, l, r, piece))
    raise GradproofError(
        f"γ for {name!r}: the interval enclosure of sup|σ'| did not reach the relative width 1e-12 "
        f"(best lower bound {float(best):.15g}); use a simpler formula for σ."
    )


def _tail_bounds(spec: Activation | str) -> dict[int, tuple[Fraction, str]]:
    """Upper bounds of |σ'| on the rays x ≥ 2^1100 (key 1) and x ≤ -2^1100 (key -1), and how.

    ``how`` is ``"interval"``, ``"monotone"`` or ``"limit"`` (see the module docstring). Used by
    :func:`_certify` through :func:`_bound`; exposed for tests of the tail argument.
    """
    import mpmath

    act = activation(spec)
    d = act.derivative.rewrite(sp.Piecewise) if act.derivative.has(sp.Max, sp.Min) else act.derivative
    kinks = _kinks(d, sp.S.NegativeInfinity, sp.S.Infinity, act.name)
    out: dict[int, tuple[Fraction, str]] = {}
    for sign in (1, -1):
        far = (kinks[-1] + 1) if sign > 0 and kinks else (kinks[0] - 1) if kinks else sp.S.Zero
        g = _specialize(d, far)
        piece = _Piece(g=g, gp=sp.diff(g, X), g_of_t=_in_t(g, 1), g_of_s=_in_t(g, -1))
        reach = mpmath.mpf(2) ** _FAR
        left, right = (reach, mpmath.inf) if sign > 0 else (-mpmath.inf, -reach)
        ub, _, how = _bound(piece, left, right, act.name)
        out[sign] = (ub, how or "interval")
    return out


def _bound(piece: _Piece, left: Any, right: Any, name: str) -> tuple[Fraction, Fraction, str | None]:
    """(upper bound of sup|g| on [left, right], a lower bound from its midpoint, how).

    ``how`` is ``None`` (interval arithmetic), ``"monotone"`` (a ray bounded by
    :func:`_log_rational_ray_bound`) or ``"limit"`` (a ray bounded by SymPy's limit, the last resort).
    """
    import mpmath

    iv = _iv()
    box = iv.mpf([left, right])
    with mpmath.workprec(_PREC):
        natural = _safe_enclose(piece.g, box)
    if not (mpmath.isfinite(left) and mpmath.isfinite(right)):
        _, ub = _magnitude(natural) if natural is not None else (0, math.inf)
        in_t = _in_t_enclosure(piece, box, left)
        if in_t is not None:
            ub = min(ub, _magnitude(in_t)[1])
        if ub != math.inf and ub < _UNBOUNDED:
            return ub, Fraction(0), None
        sign = 1 if mpmath.isinf(right) else -1
        reach = left if sign > 0 else -right  # the ray is |x| ≥ reach = 2^_FAR
        ray = _log_rational_ray_bound(piece.g_of_s if sign > 0 else piece.g_of_t, reach)
        if ray is None:
            ray = _power_decay_ray_bound(piece.g, sign, reach)
        if ray is not None:
            return ray, Fraction(0), "monotone"
        end = sp.oo if mpmath.isinf(right) else -sp.oo
        limit = _one_sided(piece.g, end, "+")
        if not limit.is_finite or isinstance(limit, sp.AccumBounds):
            raise GradproofError(
                f"γ for {name!r}: σ' has no finite limit at {end} ({limit}); no finite γ exists or "
                "it cannot be certified."
            )
        return _magnitude(_enclose(sp.Abs(limit), None))[1], Fraction(0), "limit"
    middle = (left + right) / 2
    at_middle = _safe_enclose(piece.g, iv.mpf(middle))
    lb = _magnitude(at_middle)[0] if at_middle is not None else Fraction(0)
    slope = _safe_enclose(piece.gp, box)
    candidates = [] if natural is None else [natural]
    if slope is not None and at_middle is not None:
        candidates.append(at_middle + slope * (box - middle))
    if abs(left) > _CORE or abs(right) > _CORE:
        in_t = _in_t_enclosure(piece, box, left)
        if in_t is not None:
            candidates.append(in_t)
    ub = min((_magnitude(c)[1] for c in candidates), default=math.inf)
    return (_UNBOUNDED if ub == math.inf else ub), lb, None


_ELL = sp.Symbol("ell", negative=True)


def _log_rational_ray_bound(form: Expr, reach: Any) -> Fraction | None:
    r"""A rigorous bound of sup|σ'| on a ray |x| ≥ R from σ' written in t = e^{-|x|} ∈ (0, e^{-R}].

    Applies when σ' is a polynomial in ℓ = log t = -|x| with coefficients rational in t (SiLU,
    mish, every σ' built from x, e^{±x}, sigmoid, tanh, softplus by + - × ÷):

    .. math::

        \sigma' = \sum_k \ell^k\, t^{j_k} d_k(t), \qquad d_k(0) \text{ finite}.

    Then |σ'| ≤ |t^{j_0} d_0(t)| + Σ_{k≥1} |ℓ|^k t^{j_k} |d_k(t)|; t ↦ t^j |log t|^k is increasing
    on (0, e^{-k/j}) (its derivative is t^{j-1} |log t|^{k-1} (j |log t| - k) > 0 there), so on
    (0, e^{-R}] it is at most R^k e^{-jR} ≤ 2^{k log₂R - jR}, far below 2^{-4000} for R = 2^1100;
    each d_k and t^{j_0} d_0 is enclosed by interval arithmetic on t ∈ [0, 2^{-4000}] ⊇ (0, e^{-R}].
    No limit is taken. Returns ``None`` when σ' is not of this form, or a term j_k ≤ 0 (k ≥ 1) or
    j_0 < 0 would make the bound fail (σ' unbounded or not of this kind).
    """
    import mpmath

    iv = _iv()
    try:
        expr = sp.cancel(sp.together(form.subs(sp.log(_T), _ELL)))
        numerator, denominator = sp.fraction(expr)
        num = sp.Poly(numerator, _T, _ELL)
        den = sp.Poly(denominator, _T)
    except (sp.PolynomialError, sp.GeneratorsNeeded, NotImplementedError):
        return None
    if not all(c.is_number and c.is_real for c in (*num.coeffs(), *den.coeffs())):
        return None
    if den.is_zero or num.is_zero:
        return Fraction(0) if num.is_zero else None
    d0 = min(m[0] for m in den.monoms())
    reduced_den = sp.expand(den.as_expr() / _T**d0)
    by_power: dict[int, Expr] = {}  # k -> the coefficient of ℓ^k times t^{d0}
    lowest: dict[int, int] = {}  # k -> j_k, the lowest power of t in it
    for (a, k), c in zip(num.monoms(), num.coeffs()):
        by_power[k] = by_power.get(k, sp.S.Zero) + c * _T**a
        lowest[k] = min(lowest.get(k, a), a)
    log2_reach = int(mpmath.floor(mpmath.log(reach, 2)))
    if mpmath.mpf(2) ** log2_reach > reach or log2_reach < 16:
        return None  # pragma: no cover - the ray starts at 2^_FAR
    box = iv.mpf([0, mpmath.mpf(2) ** _TINY_EXPONENT])
    total = Fraction(0)
    for k, coefficient in sorted(by_power.items()):
        j = lowest[k] - d0
        if k == 0:
            if j < 0:
                return None
            factor = sp.expand(coefficient / _T**d0) / reduced_den  # t^{j_0} d_0(t), j_0 ≥ 0
            weight = Fraction(1)
        else:
            factor = sp.expand(coefficient / _T ** lowest[k]) / reduced_den  # d_k(t)
            # sup of |ℓ|^k t^j on (0, e^{-R}] ≤ 2^{k log₂R' - jR}, R' = 2^(log2_reach+1) > R
            if j < 1 or k > j * (2**log2_reach):  # R ≥ k/j: the monotone range holds
                return None
            exponent = k * (log2_reach + 1) - j * 2**log2_reach
            if exponent > _TINY_EXPONENT:
                return None  # pragma: no cover - only for astronomically many log factors
            weight = Fraction(1, 2 ** -_TINY_EXPONENT)
        with mpmath.workprec(_PREC):
            enclosure = _safe_enclose(factor.subs(_T, X), box)
        if enclosure is None:
            return None
        upper = _magnitude(enclosure)[1]
        if upper == math.inf:
            return None
        total += weight * upper
    return total


def _power_decay_ray_bound(g: Expr, sign: int, reach: Any) -> Fraction | None:
    r"""A rigorous bound of sup|σ'| on the ray sign·x ≥ R, term by term, by monotonicity.

    σ' = Σ_i x^{k_i} r_i(x) (its terms as SymPy writes them). A term whose interval enclosure on
    the ray is finite is bounded by it. Otherwise (x·e^{-x²/2} in GELU's σ': ∞·0) its logarithmic
    derivative k/x + r'/r is enclosed on the ray; if it is ≤ 0 on x ≥ R (≥ 0 on x ≤ -R), then
    |x^k r| does not grow outward and its sup on the ray is |R^k r(±R)|, enclosed at that point.
    Returns ``None`` when a term fits neither case.
    """
    import mpmath

    iv = _iv()
    ray = iv.mpf([reach, mpmath.inf]) if sign > 0 else iv.mpf([-mpmath.inf, -reach])
    end = iv.mpf(sign * reach)
    total = iv.mpf(0)  # the terms' enclosures are added as intervals (1 - tanh² stays tight)
    for term in sp.Add.make_args(g):
        with mpmath.workprec(_PREC):
            whole = _safe_enclose(term, ray)
        if whole is not None and _magnitude(whole)[1] < _UNBOUNDED:
            total = total + whole
            continue
        k, rest = 0, []
        for factor in sp.Mul.make_args(term):
            if factor == X:
                k += 1
            elif factor.is_Pow and factor.base == X and factor.exp.is_Integer and factor.exp > 0:
                k += int(factor.exp)
            else:
                rest.append(factor)
        r = sp.Mul(*rest)
        if k == 0 or X not in r.free_symbols:
            return None
        with mpmath.workprec(_PREC):
            slope = _safe_enclose(sp.cancel(k / X + sp.diff(r, X) / r), ray)
            at_end = _safe_enclose(term, end)
        if slope is None or at_end is None:
            return None
        a, b = mpmath.mpf(slope.a), mpmath.mpf(slope.b)
        outward_not_growing = b <= 0 if sign > 0 else a >= 0  # False for NaN ends
        if not outward_not_growing or _magnitude(at_end)[1] >= _UNBOUNDED:
            return None
        size = max(abs(mpmath.mpf(at_end.a)), abs(mpmath.mpf(at_end.b)))
        total = total + iv.mpf([-size, size])  # |x^k r| ≤ |R^k r(±R)| on the whole ray
    upper = _magnitude(total)[1]
    return None if upper == math.inf or upper >= _UNBOUNDED else upper


def _safe_enclose(expr: Expr, box: Any) -> Any:
    try:
        value = _enclose(expr, box)
    except (ZeroDivisionError, ValueError, OverflowError, AttributeError):
        return None
    return value


def _round_outward(lo: Fraction, hi: Fraction, digits: int) -> tuple[Expr, Expr]:
    """Rationals with ``digits`` significant decimals, lo rounded down and hi up."""
    scale_hi = max(abs(hi), Fraction(1, 10**300))
    shift = digits - 1 - int(math.floor(math.log10(scale_hi)))
    unit = Fraction(10) ** shift
    lo_r = Fraction(math.floor(lo * unit)) / unit
    hi_r = Fraction(math.ceil(hi * unit)) / unit
    return sp.Rational(lo_r.numerator, lo_r.denominator), sp.Rational(hi_r.numerator, hi_r.denominator)


def _in_t_enclosure(piece: _Piece, box: Any, left: Any) -> Any:
    """σ' on a far box through t = e^{x} (left < 0) or s = e^{-x} (left > 0)."""
    iv = _iv()
    if left < 0:
        return _safe_enclose(_in_x(piece.g_of_t), iv.exp(box))
    return _safe_enclose(_in_x(piece.g_of_s), iv.exp(-box))


@functools.lru_cache(maxsize=256)
def _in_x(form: Expr) -> Expr:
    """A form in t written in X, for :func:`_enclose` (cached: it is asked for every far box)."""
    return form.subs(_T, X)


def _in_t(g: Expr, sign: int) -> Expr:
    """σ' with x = sign·log t, as one fraction: x e^{-x}/(1 + e^{-x})² becomes t log(t)/(t + 1)²."""
    form = g.subs(X, sign * sp.log(_T)).rewrite(sp.exp)
    try:
        return sp.cancel(sp.together(form))
    except (sp.PolynomialError, NotImplementedError):  # pragma: no cover - cancel gives up
        return form
