"""Shared helpers for the tests of the symbolic layer (derive/).

Everything here is written from docs/math.md, independently of the code under test: the elementwise
helpers ``D``/``had``, the opaque-gate environment used to check the *structure* of a derived
formula, and :func:`rational_identity`, a second symbolic prover used where
:func:`derive.difference_is_zero` is too slow (nested, composed expressions of BPTT chains).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import sympy as sp

from gradproof import derive

__all__ = [
    "ALL_CELLS",
    "GATED_CELLS",
    "D",
    "had",
    "one_minus",
    "square",
    "sigmoid",
    "by_name",
    "opaque_environment",
    "abstract_all_atoms",
    "rational_identity",
]

#: Every cell the tests cover: the CLI names (CONTRACT.md) and the PyTorch hardsigmoid RNN.
ALL_CELLS = ("rnn-tanh", "rnn-sigmoid", "rnn-relu", "rnn-hard_sigmoid", "lstm", "gru", "gru-torch")
GATED_CELLS = ("lstm", "gru", "gru-torch")


# ----------------------------------------------------------------------------------------------
# Explicit elementwise algebra, written from docs/math.md's conventions (D(v) = diag(v), ⊙ Hadamard)
# ----------------------------------------------------------------------------------------------
def D(v: sp.Matrix) -> sp.Matrix:
    """diag(v) for a column v: (k, 1) -> (k, k)."""
    return sp.diag(*list(v))


def had(*vs: sp.Matrix) -> sp.Matrix:
    """v_1 ⊙ v_2 ⊙ …, all (k, 1)."""
    out = vs[0]
    for v in vs[1:]:
        out = out.multiply_elementwise(v)
    return out


def one_minus(v: sp.Matrix) -> sp.Matrix:
    """1 - v elementwise."""
    return v.applyfunc(lambda e: 1 - e)


def square(v: sp.Matrix) -> sp.Matrix:
    """v ⊙ v."""
    return had(v, v)


def sigmoid(a: sp.Matrix) -> sp.Matrix:
    """The logistic sigmoid 1/(1 + e^{-a}) elementwise (docs/math.md conventions)."""
    return a.applyfunc(lambda e: 1 / (1 + sp.exp(-e)))


def by_name(env: Mapping[sp.Expr, sp.Matrix]) -> dict[str, sp.Matrix]:
    """The environment of an ExplicitCell keyed by the symbols' printed names (``"f^{(t)}"``)."""
    return {str(getattr(k, "name", k)): v for k, v in env.items() if isinstance(v, sp.MatrixBase)}


def opaque_environment(cell: derive.Cell, hidden: int, inputs: int) -> dict[sp.Expr, object]:
    """The explicit environment with every defined vector (gates, z, c^{(t)}, …) replaced by
    fresh independent symbols.

    A derived block evaluated in this environment is a polynomial in the gate values, the
    previous state and the weights. If it equals docs/math.md's formula written with the same fresh
    symbols, the two have the same structure (e.g. ``f ⊙ (1 - f)``, not an equal rewriting
    through σ'(W_f h + …)).
    """
    env: dict[sp.Expr, object] = dict(cell.explicit(hidden, inputs).environment)
    for k, (lhs, _) in enumerate(cell.definitions):
        env[lhs] = sp.Matrix(hidden, 1, lambda r, _c: sp.Symbol(f"q{k}_{r}", real=True))
    return env


# ----------------------------------------------------------------------------------------------
# A second prover for composed expressions
# ----------------------------------------------------------------------------------------------
def abstract_all_atoms(exprs: Iterable[sp.Expr]) -> list[sp.Expr]:
    """Replace *every* ``exp`` and ``tanh`` atom, nested or not, by an independent symbol.

    ``xreplace`` works top-down, so an outer atom is replaced as a whole and an inner atom only
    where it stands outside an outer one. ``exp(w) -> (1 - s)/s`` (so a sigmoid becomes ``s``),
    ``tanh(w) -> t``. Sound: an identity in independent symbols holds for any values of them, in
    particular for the atoms' values. (It is strictly stronger than derive.equality's
    innermost-first abstraction; it cannot prove identities needing relations between atoms,
    and chain-rule identities need none: d exp(u) = exp(u) du, d tanh(u) = (1 - tanh(u)²) du.)
    """
    out = [sp.sympify(e) for e in exprs]
    atoms: set[sp.Expr] = set()
    for e in out:
        atoms |= e.atoms(sp.exp, sp.tanh)
    replacement: dict[sp.Expr, sp.Expr] = {}
    for k, a in enumerate(sorted(atoms, key=sp.default_sort_key)):
        s = sp.Dummy(f"atom{k}")
        replacement[a] = (1 - s) / s if isinstance(a, sp.exp) else s
    return [e.xreplace(replacement) for e in out]


def rational_identity(a: sp.Matrix, b: sp.Matrix) -> bool:
    """True when ``a - b`` is zero in the field of rational functions after
    :func:`abstract_all_atoms` (exact arithmetic in QQ(symbols): a proof, not a sample).

    Raises ``ValueError`` when something other than a rational function remains (Piecewise,
    other functions): the prover must never answer for expressions it cannot handle.
    """
    if a.shape != b.shape:
        return False
    flat = abstract_all_atoms(list(a) + list(b))
    gens: set[sp.Symbol] = set()
    for e in flat:
        if e.atoms(sp.Function, sp.Piecewise):
            raise ValueError(f"rational_identity cannot handle {e.atoms(sp.Function)}")
        gens |= e.free_symbols
    field, *_ = sp.field(sorted(gens, key=sp.default_sort_key), sp.QQ)
    size = len(a)
    return all(field.from_expr(x - y) == 0 for x, y in zip(flat[:size], flat[size:]))
