"""Symbolic equality of explicit matrices, fast enough for the LSTM and GRU at n = 3.

``simplify(a - b) == 0`` on the raw explicit Jacobians of a gated cell takes tens of seconds at
n = 3: the entries are rational functions of many ``exp`` and ``tanh`` atoms nested inside each
other. :func:`difference_is_zero` first *abstracts* those atoms, innermost first, and then
simplifies:

* ``tanh(w)`` becomes a fresh symbol ``t`` (its derivative ``1 - tanh(w)²`` becomes ``1 - t²``);
* ``exp(w)`` becomes ``(1 - s)/s`` for a fresh symbol ``s``, so the sigmoid ``1/(1 + exp(-z))``
  becomes ``s`` itself and its derivative becomes the polynomial ``s(1 - s)``.

Replacing functions by independent symbols is a *sound* proof of equality: if the difference is
identically zero as an expression in the new symbols, it is zero for the particular functions too
(``s ↦ (1 - s)/s`` is a bijection onto the positive reals, the range of ``exp``). It can only fail
to prove an identity that relies on a relation between the atoms, and then it falls back to
``simplify`` on the original expression.

After the abstraction the entries of the explicit Jacobians are rational functions of the symbols,
so the first check is exact arithmetic in the field of rational functions over ℚ
(``QQ.frac_field``): two entries are equal when they are the same element of that field. This is a
decision procedure, not a heuristic, and it is 10-20x faster than ``expand``/``simplify`` on the
expression trees. Only when it does not settle the question (an entry that is not rational in the
atoms, e.g. a ``Piecewise``, or atoms related by an identity) do random points look for a witness
of inequality, and ``simplify`` has the last word.
"""

from __future__ import annotations

from collections.abc import Iterable

import sympy as sp

__all__ = ["abstract_atoms", "difference_is_zero"]


def abstract_atoms(exprs: Iterable[sp.Expr], *, normalise: bool = True) -> list[sp.Expr]:
    """Replace ``exp`` and ``tanh`` atoms by fresh symbols, consistently across ``exprs``.

    With ``normalise`` each round is brought to a canonical form by ``cancel`` (for ``simplify``);
    the exact field check of :func:`difference_is_zero` needs none and skips it.
    """
    out = [sp.sympify(e) for e in exprs]  # safe: SymPy objects, never user text
    k = 0
    while True:
        atoms: set[sp.Expr] = set()
        for e in out:
            atoms |= e.atoms(sp.exp, sp.tanh)
        leaves = [a for a in atoms if not a.args[0].atoms(sp.exp, sp.tanh)]
        if not leaves:
            return out
        replacement: dict[sp.Expr, sp.Expr] = {}
        for a in sorted(leaves, key=sp.default_sort_key):
            s = sp.Dummy(f"g{k}")
            k += 1
            replacement[a] = (1 - s) / s if isinstance(a, sp.exp) else s
        out = [e.xreplace(replacement) for e in out]
        if normalise:
            out = [sp.cancel(e) for e in out]


def difference_is_zero(a: sp.Matrix, b: sp.Matrix) -> bool:
    """True when every entry of ``a - b`` is symbolically zero (see the module docstring).

    >>> import sympy as sp
    >>> z = sp.Symbol("z", real=True)
    >>> s = 1 / (1 + sp.exp(-z))
    >>> difference_is_zero(sp.Matrix([sp.diff(s, z)]), sp.Matrix([s * (1 - s)]))
    True
    """
    if a.shape != b.shape:
        return False
    a = sp.Matrix(a).applyfunc(sp.piecewise_fold)
    b = sp.Matrix(b).applyfunc(sp.piecewise_fold)
    if _equal_as_rational_functions(list(a), list(b)):
        return True
    if not _zero_at_random_points(a - b):
        return False
    flat = abstract_atoms(list(a) + list(b))
    size = len(a)
    for x, y, orig in zip(flat[:size], flat[size:], list(a - b)):
        d = sp.expand(x - y)
        if d == 0:
            continue
        if sp.simplify(d) == 0 or sp.simplify(sp.piecewise_fold(orig)) == 0:
            continue
        return False
    return True


def _equal_as_rational_functions(a: list[sp.Expr], b: list[sp.Expr]) -> bool:
    """True when every pair is one element of ℚ(symbols) after the atoms are abstracted.

    False means "not settled here" (not "unequal"): an entry outside the field, or two entries
    equal only through a relation between atoms.
    """
    flat = abstract_atoms(a + b, normalise=False)
    gens = sorted(set().union(*(e.free_symbols for e in flat)), key=sp.default_sort_key)
    field = sp.QQ.frac_field(*gens) if gens else sp.QQ
    try:
        return all(field.from_sympy(x) == field.from_sympy(y) for x, y in zip(flat[: len(a)], flat[len(a) :]))
    except (ValueError, sp.polys.polyerrors.CoercionFailed, sp.polys.polyerrors.GeneratorsError):
        return False


def _zero_at_random_points(diff: sp.Matrix, points: int = 2) -> bool:
    """False when a nonzero value at a random rational point already proves ``diff`` nonzero.

    Only ever answers "not equal" from evidence (|value| far above rounding at 30 digits); a
    point where the value cannot be evaluated proves nothing and is skipped.
    """
    symbols = sorted(diff.free_symbols, key=lambda s: s.name)
    rng = __import__("random").Random(20130101)
    for _ in range(points):
        at = {s: sp.Rational(rng.randint(-900, 900), 1000) + sp.Rational(1, 7919) for s in symbols}
        for entry in diff:
            try:
                value = complex(sp.N(entry.xreplace(at), 30))
            except (TypeError, ValueError, ZeroDivisionError):
                continue
            if abs(value) > 1e-12:
                return False
    return True
