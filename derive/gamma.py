r"""γ = sup_x |σ'(x)| derived exactly by calculus (docs/math.md §1); SymPy (and its mpmath) only.

Re-exported by :mod:`gradproof.derive.activations` and :mod:`gradproof.derive`.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import sympy as sp

from .activations import X, Activation, Expr, activation
from .errors import GradproofError

__all__ = ["gamma"]


class _NoClosedForm(GradproofError):
    """sup|σ'| exists but has no closed form gamma() can verify (then it is enclosed instead)."""

def gamma(spec: Activation | str) -> Expr:
    r"""γ = sup_x |σ'(x)|, derived exactly (docs/math.md §1).

    .. math::

        \gamma = \max\Big( \{|\sigma'(c)| : \sigma''(c) = 0\}
        \cup \{|\sigma'(k)|, |\sigma'(k^\pm)| : k \text{ a kink}\}
        \cup \{|\lim_{x\to\pm\infty} \sigma'(x)|\} \Big)

    Parameters
    ----------
    spec : Activation or str
        Anything :func:`activation` accepts.

    Returns
    -------
    sympy.Expr
        An exact SymPy number (Rational, or e.g. ``2/sqrt(pi)``) when γ has a closed form. When
        it has none (SiLU ``x*sigmoid(x)``, mish), the certified upper bound ``hi`` of
        :func:`gradproof.derive.gamma_interval` (a Rational, so the Pascanu bound stays valid);
        :func:`gradproof.derive.gamma_is_exact` tells the two cases apart and
        ``gamma_enclosure(spec).reason`` says why. A root of σ'' is only sought in closed form
        within a cost limit counted in operations (never wall-clock time): a candidate from
        ``nsimplify`` costing more than 40 (operations plus digits of its integers, so a 45-digit
        decimal written as p/q is refused) or a residual σ''(candidate) costing more than 120 is
        not simplified, and the certified enclosure is used; so every activation finishes
        (mish in seconds).

    Raises
    ------
    GradproofError
        If σ' is unbounded (then no finite γ exists, e.g. ``"x**2"``, ``"exp(x)"``).

    Examples
    --------
    >>> [gamma(name) for name in ("sigmoid", "tanh", "relu", "hard_sigmoid", "identity")]
    [1/4, 1, 1, 1/6, 1]
    >>> gamma("erf(x)")
    2/sqrt(pi)
    """
    act = activation(spec)
    try:
        return _gamma_of(act.derivative, act.name)
    except _NoClosedForm:
        from .gamma_interval import gamma_interval

        return gamma_interval(act)[1]


_NONSMOOTH = (sp.Piecewise, sp.Abs, sp.sign)
_TRIG = (sp.sin, sp.cos, sp.tan, sp.cot, sp.sec, sp.csc)
#: Where σ'' is searched numerically when SymPy cannot solve σ'' = 0: fine steps on [-50, 50],
#: then steps growing like |x| out to ±1e4.
_GRID: tuple[float, ...] = tuple(
    sorted(
        {-50.0 + k * 0.005 for k in range(20001)}
        | {math.sinh(-math.asinh(1e4) + k * 2 * math.asinh(1e4) / 8000) for k in range(8001)}
    )
)


def _sign(value: float) -> float:
    if value != value:
        return math.nan
    return (value > 0) - (value < 0)


def _float_function(expr: Expr) -> Callable[[float], float]:
    """σ-like SymPy expression as a Python-float function; NaN where float64 fails."""
    fn = sp.lambdify(X, expr, modules=[{"sign": _sign, "erf": math.erf}, "math"])

    def evaluate(x: float) -> float:
        try:
            return float(fn(x))
        except (OverflowError, ValueError, ZeroDivisionError, TypeError):
            return math.nan

    return evaluate


@dataclass(frozen=True)
class _Root:
    """A root of σ'' found numerically: bracket [left, right] and |σ'| there (float)."""

    size: float
    left: float
    right: float
    g: Expr
    gp: Expr


@functools.lru_cache(maxsize=256)
def _gamma_of(derivative: Expr, name: str) -> Expr:
    """sup |σ'| for σ' = ``derivative``; cached on the (immutable) SymPy expression."""
    d = derivative
    if d.has(sp.Max, sp.Min):
        d = d.rewrite(sp.Piecewise)
    unsupported = [f for f in (sp.Heaviside, sp.DiracDelta, sp.floor, sp.ceiling) if d.has(f)]
    if unsupported:
        raise GradproofError(
            f"γ for {name!r}: σ' = {d} contains {unsupported[0].__name__}, which gamma() cannot "
            "analyse. Write σ with Piecewise or abs instead."
        )
    lo, hi = sp.S.NegativeInfinity, sp.S.Infinity
    period = _period(d)
    if period is not None:  # sup over R = max over one closed period
        lo, hi = sp.S.Zero, period
    points = [lo, *_kinks(d, lo, hi, name), hi]
    exact: list[tuple[Expr, str]] = []
    tails: list[tuple[Expr, str]] = []
    roots: list[_Root] = []
    for k in points:
        if k.is_finite:  # a kink, or an end of the closed period: σ' is evaluated there
            value = d.subs(X, k)
            if value.is_finite:
                exact.append((value, f"σ'({k})"))
    for a, b in zip(points[:-1], points[1:]):
        _piece_candidates(d, a, b, name, exact, tails, roots)
    return _supremum(d, name, exact, tails, roots)


def _period(d: Expr) -> Expr | None:
    """The period of σ' if SymPy finds one (only tried for trigonometric σ')."""
    if not d.has(*_TRIG) or d.has(*_NONSMOOTH):
        return None
    others = [f for f in d.atoms(sp.Function) if X in f.free_symbols and not isinstance(f, _TRIG)]
    if others:  # e.g. tanh(x) + cos(x): not periodic, and periodicity() is slow to say so
        return None
    try:
        period = sp.periodicity(d, X)
    except Exception:  # noqa: BLE001 - periodicity raises on forms it does not handle
        return None
    if period is not None and period.is_positive and period.is_finite:
        return period
    return None


def _kinks(d: Expr, lo: Expr, hi: Expr, name: str) -> list[Expr]:
    """Sorted points in (lo, hi) where σ' may fail to be smooth.

    These are the boundaries of Piecewise conditions and the zeros of the arguments of ``Abs``
    and ``sign``.
    """
    arguments: list[Expr] = []
    for node in sp.preorder_traversal(d):
        if isinstance(node, sp.Piecewise):
            for _, cond in node.args:
                for rel in cond.atoms(sp.core.relational.Relational):
                    arguments.append(rel.lhs - rel.rhs)
        elif isinstance(node, (sp.Abs, sp.sign)):
            arguments.append(node.args[0])
    found: set[Expr] = set()
    for u in arguments:
        if X not in u.free_symbols:
            continue
        zeros = sp.solveset(u, X, sp.Interval.open(lo, hi))
        if not isinstance(zeros, sp.FiniteSet) and zeros is not sp.S.EmptySet:
            raise GradproofError(
                f"γ for {name!r}: cannot locate the points where σ' is not smooth (zeros of {u} "
                f"are {zeros}). Use a formula whose kinks are finitely many explicit points."
            )
        found.update(zeros)
    return sorted(found, key=lambda k: float(k.evalf(30)))


def _sample(a: Expr, b: Expr) -> Expr:
    """A point strictly inside (a, b)."""
    if a.is_infinite and b.is_infinite:
        return sp.S.Zero
    if a.is_infinite:
        return b - 1
    if b.is_infinite:
        return a + 1
    return (a + b) / 2


def _sign_at(u: Expr, s: Expr) -> int:
    value = u.subs(X, s)
    if value.is_positive:
        return 1
    if value.is_negative:
        return -1
    number = value.evalf(50)
    if number.is_comparable and number != 0:
        return 1 if number > 0 else -1
    raise GradproofError(f"internal: cannot decide the sign of {u} at x = {s}.")


def _specialize(d: Expr, s: Expr) -> Expr:
    """The smooth expression that equals σ' on the open piece containing s."""

    def resolve(node: Expr) -> Expr:
        if isinstance(node, sp.Piecewise):
            for piece, cond in node.args:
                if bool(cond.subs(X, s)):
                    return piece
            return sp.nan
        if isinstance(node, sp.Abs):
            return _sign_at(node.args[0], s) * node.args[0]
        return sp.Integer(_sign_at(node.args[0], s))  # sign

    for _ in range(50):  # sign(-x) re-canonicalises to -sign(x) after a pass: repeat
        if not d.has(*_NONSMOOTH):
            return d
        d = d.replace(lambda node: isinstance(node, _NONSMOOTH), resolve)
    raise GradproofError(f"internal: cannot resolve the pieces of {d} at x = {s}.")


def _one_sided(g: Expr, point: Expr, direction: str) -> Expr:
    """lim g(x) as x → point from one side; g is smooth on the open piece.

    At ±∞ SymPy's extended arithmetic is tried first (tanh(∞) = 1, e^{-∞} = 0); any indeterminate
    form (∞ - ∞, 0·∞, ∞/∞) gives NaN there, and then ``sympy.limit`` (Gruntz) decides.
    """
    value = g.subs(X, point)
    if not isinstance(value, sp.AccumBounds) and value.is_finite and not value.has(sp.nan):
        return value
    if point.is_finite:
        return sp.limit(g, X, point, direction)
    return sp.limit(g, X, point)


def _piece_candidates(
    d: Expr,
    a: Expr,
    b: Expr,
    name: str,
    exact: list[tuple[Expr, str]],
    tails: list[tuple[Expr, str]],
    roots: list[_Root],
) -> None:
    """Candidates for sup |σ'| on the open piece (a, b) where σ' is smooth."""
    s = _sample(a, b)
    g = _specialize(d, s)
    if g.has(sp.nan):
        raise GradproofError(f"γ for {name!r}: σ' is undefined on ({a}, {b}).")
    gp = sp.diff(g, X)
    if gp.is_zero:  # constant piece
        exact.append((g, f"σ' on ({a}, {b})"))
        return
    lo, hi, open_ends = a, b, True
    if (a.is_infinite or b.is_infinite) and g.has(*_TRIG):
        p = _period(g)
        if p is not None:  # a ray holds a whole period: take one closed period from s
            lo, hi, open_ends = s, s + p, False
            exact.extend([(g.subs(X, lo), f"σ'({lo})"), (g.subs(X, hi), f"σ'({hi})")])
    if open_ends:
        for point, direction in ((a, "+"), (b, "-")):
            where = f"lim σ'(x) as x → {point}{direction if point.is_finite else ''}"
            value = _one_sided(g, point, direction)
            (tails if isinstance(value, sp.AccumBounds) else exact).append((value, where))
    interval = sp.Interval.open(lo, hi) if open_ends else sp.Interval(lo, hi)
    try:
        solutions = sp.solveset(sp.factor(gp), X, interval)
    except (NotImplementedError, ValueError, TypeError):
        solutions = None
    if solutions is sp.S.EmptySet:
        return
    if isinstance(solutions, sp.FiniteSet) and all(r.is_real for r in solutions):
        exact.extend((g.subs(X, r), f"σ'({r}) with σ''({r}) = 0") for r in solutions)
        return
    roots.extend(_numeric_roots(g, gp, lo, hi))


def _numeric_roots(g: Expr, gp: Expr, lo: Expr, hi: Expr) -> list[_Root]:
    """Sign changes of σ'' on :data:`_GRID` ∩ (lo, hi), bisected in float64 to a bracket."""
    import mpmath

    flo = float(lo) if lo.is_finite else -math.inf
    fhi = float(hi) if hi.is_finite else math.inf
    grid = [x for x in _GRID if flo < x < fhi]
    if lo.is_finite and hi.is_finite:
        grid = sorted(set(grid) | {flo + k * (fhi - flo) / 4000 for k in range(1, 4000)})
    f = _float_function(gp)
    points = []
    for x in grid:
        value = f(x)
        if math.isfinite(value) and value != 0:  # exact zeros are mostly underflow
            points.append((x, _sign(value)))
    g_mp = sp.lambdify(X, g, "mpmath")
    found = []
    for (left, sign_left), (right, sign_right) in zip(points[:-1], points[1:]):
        if sign_left == sign_right:
            continue
        for _ in range(80):
            mid = 0.5 * (left + right)
            sign_mid = _sign(f(mid))
            if sign_mid == sign_left:
                left = mid
            elif sign_mid == sign_mid:  # not NaN
                right = mid
        with mpmath.workdps(30):
            size = float(abs(g_mp(mpmath.mpf(0.5 * (left + right)))))
        found.append(_Root(size=size, left=left, right=right, g=g, gp=gp))
    return found


def _exact_root(root: _Root) -> Expr | None:
    """Refine a numeric root to 45 digits; return its closed form if σ'' vanishes there exactly."""
    import mpmath

    gp_mp = sp.lambdify(X, root.gp, "mpmath")
    with mpmath.workdps(50):
        a, b = mpmath.mpf(root.left), mpmath.mpf(root.right)
        fa = gp_mp(a)
        for _ in range(200):
            m = (a + b) / 2
            fm = gp_mp(m)
            if fm == 0 or b - a < mpmath.mpf(10) ** -47 * max(1, abs(m)):
                a = b = m
                break
            if (fm > 0) == (fa > 0):
                a, fa = m, fm
            else:
                b = m
        text = mpmath.nstr((a + b) / 2, 45)
    candidate = sp.nsimplify(sp.Float(text, 45), [sp.pi, sp.E], tolerance=1e-30)
    if _cost(candidate) > _MAX_CANDIDATE_COST:  # the decimal itself written as p/q: no closed form
        return None
    residual = root.gp.subs(X, candidate)
    if residual == 0:
        return candidate
    if abs(residual.evalf(60)) > 1e-45:  # cheap disproof before the costly simplify
        return None
    if _cost(residual) > _MAX_RESIDUAL_COST:  # simplify's cost grows steeply with size: give up
        return None
    return candidate if sp.simplify(residual) == 0 else None


#: Cost limits of the closed-form root step, in operations (never wall-clock): a candidate root
#: from ``nsimplify`` costs its operation count plus the decimal digits of its integers, so the
#: 45-digit decimal written as p/q (which ``nsimplify`` returns when it finds nothing simpler)
#: costs about 90 and is refused; a residual σ''(candidate) is only simplified when it is small.
_MAX_CANDIDATE_COST = 40
_MAX_RESIDUAL_COST = 120


def _cost(expr: Expr) -> int:
    """Size of an exact expression: ``count_ops`` plus the decimal digits of its integers."""
    digits = 0
    for atom in expr.atoms(sp.Rational):
        digits += len(str(abs(atom.p))) + (len(str(atom.q)) if atom.q != 1 else 0)
    return int(sp.count_ops(expr)) + digits


def _unbounded(name: str, where: str, value: Expr) -> GradproofError:
    return GradproofError(
        f"σ' of {name!r} is unbounded ({where} is {value}), so no finite γ = sup|σ'| exists and "
        "the Pascanu bound does not apply. Use an activation with a bounded derivative, e.g. "
        "tanh, sigmoid or relu."
    )


def _size(value: Expr, name: str, where: str) -> float:
    """|value| as a float, after checking that value is a finite real number."""
    if value.has(sp.nan):
        raise GradproofError(f"γ for {name!r}: σ' has no value or limit at {where}.")
    if value.is_infinite or value.has(sp.oo, -sp.oo, sp.zoo):
        raise _unbounded(name, where, value)
    number = sp.Abs(value).evalf(30)
    if not number.is_comparable:
        raise GradproofError(f"γ for {name!r}: cannot evaluate {value} ({where}) to a number.")
    return float(number)


def _supremum(
    d: Expr,
    name: str,
    exact: list[tuple[Expr, str]],
    tails: list[tuple[Expr, str]],
    roots: list[_Root],
) -> Expr:
    """The largest |candidate|, exact; numeric roots only matter if they could beat it."""
    best: Expr | None = None
    best_size = -math.inf

    def offer(value: Expr, where: str) -> None:
        nonlocal best, best_size
        size = _size(value, name, where)
        if size > best_size * (1 + 1e-13):
            best, best_size = value, size

    for value, where in exact:
        offer(value, where)
    for bounds, where in tails:  # oscillating limits: bounds on the tail, never a value
        for end in (bounds.min, bounds.max):
            if end.is_infinite:
                raise _unbounded(name, where, bounds)
    for root in sorted(roots, key=lambda r: -r.size):
        if root.size <= best_size * (1 + 1e-9):
            break  # this and every later root is no larger than a proven candidate
        closed_form = _exact_root(root)
        if closed_form is None:
            raise _NoClosedForm(
                f"γ for {name!r}: sup|σ'| ≈ {root.size:.15g} is attained near x ≈ "
                f"{root.left:.15g}, a root of σ'' with no closed form SymPy can verify within "
                f"the cost limit ({_MAX_CANDIDATE_COST} operations for a candidate root, "
                f"{_MAX_RESIDUAL_COST} for σ'' there), so γ is given as the certified upper bound "
                "of gamma_interval instead."
            )
        offer(root.g.subs(X, closed_form), f"σ'({closed_form}) with σ''({closed_form}) = 0")
    for bounds, where in tails:
        tail = max(_size(bounds.min, name, where), _size(bounds.max, name, where))
        if tail > best_size * (1 + 1e-12):
            raise _NoClosedForm(
                f"γ for {name!r}: |σ'| is only bounded by {tail:.15g} ({where} oscillates within "
                f"{bounds}), above every value attained ({best_size:.15g}); the supremum cannot "
                "be given exactly."
            )
    if best is None:
        raise GradproofError(f"γ for {name!r}: no candidate values found for σ' = {d}.")
    result = sp.simplify(sp.Abs(best))
    _check_on_grid(d, name, result)
    return result


def _check_on_grid(d: Expr, name: str, result: Expr) -> None:
    """Safety net: |σ'| on a dense grid may not exceed the derived γ."""
    f = _float_function(d)
    finite = [abs(v) for v in map(f, _GRID) if math.isfinite(v)]
    if finite and max(finite) > float(result) * (1 + 1e-9) + 1e-12:
        raise GradproofError(
            f"internal: derived γ = {result} for {name!r}, but |σ'| reaches {max(finite):.15g} on "
            "a numeric grid. Please report this activation."
        )
