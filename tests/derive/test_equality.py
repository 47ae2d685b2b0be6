"""Tests of derive.equality.difference_is_zero (and of the tests' own second prover).

STYLE.md 8: a checker's tests include planted wrong derivatives it must catch. The identities
are calculus (docs/math.md §1: σ' = σ(1-σ) ≤ 1/4, tanh' = 1 - tanh² ≤ 1, relu'(0) = 0 as PyTorch,
hardsigmoid' = 1/6 strictly inside (-3, 3)).
"""

from __future__ import annotations

import pytest
import sympy as sp

from gradproof.derive import activation, cell, step_jacobian
from gradproof.derive.activations import X
from gradproof.derive.equality import abstract_atoms, difference_is_zero

from .conftest import D, abstract_all_atoms, rational_identity

z = sp.Symbol("z", real=True)
w = sp.Symbol("w", real=True)
sig = 1 / (1 + sp.exp(-z))
half = sp.Rational(1, 2)


def col(*entries) -> sp.Matrix:
    return sp.Matrix(entries)


# id, a, b, equal?
TABLE = [
    ("sigmoid-prime", col(sp.diff(sig, z)), col(sig * (1 - sig)), True),
    ("tanh-prime", col(sp.diff(sp.tanh(z), z)), col(1 - sp.tanh(z) ** 2), True),
    ("sigmoid-prime-of-affine", col(sp.diff(1 / (1 + sp.exp(-(w * z + 1))), z)),
     col(w / (1 + sp.exp(-(w * z + 1))) * (1 - 1 / (1 + sp.exp(-(w * z + 1))))), True),
    ("nested-tanh-chain", col(sp.diff(sp.tanh(w * sp.tanh(z)), z)),
     col((1 - sp.tanh(w * sp.tanh(z)) ** 2) * w * (1 - sp.tanh(z) ** 2)), True),
    # identities that need a relation between atoms: the abstraction cannot, simplify must
    ("sigmoid-symmetry", col(1 / (1 + sp.exp(z))), col(1 - sig), True),
    ("tanh-prime-as-sech", col(1 - sp.tanh(z) ** 2), col(sp.sech(z) ** 2), True),
    ("relu-piecewise-same-conditions", col(activation("relu").expr.subs(X, z)),
     col(sp.Max(0, z).rewrite(sp.Piecewise)), True),
    ("relu-prime", col(activation("relu").derivative.subs(X, z)),
     col(sp.Piecewise((1, z > 0), (0, True))), True),
    ("matrix-of-zeros", sp.zeros(2, 3), sp.zeros(2, 3), True),
    # false claims: every one must be rejected
    ("sigmoid-prime-wrong-sign", col(sp.diff(sig, z)), col(sig * (1 + sig)), False),
    ("tanh-prime-wrong-sign", col(sp.diff(sp.tanh(z), z)), col(1 + sp.tanh(z) ** 2), False),
    ("sigmoid-prime-bound-is-not-equality", col(sp.diff(sig, z)), col(sp.Rational(1, 4)), False),
    ("relu-prime-at-zero-is-zero", col(activation("relu").derivative.subs(X, z)),
     col(sp.Piecewise((1, z >= 0), (0, True))), False),  # differs only at z = 0 (PyTorch: 0)
    ("one-entry-off", col(sp.tanh(z), sig), col(sp.tanh(z), sig + 10**-30), False),
    ("shape-mismatch", col(z, w), sp.Matrix([[z, w]]), False),
]  # fmt: skip


@pytest.mark.parametrize(("a", "b", "equal"), [t[1:] for t in TABLE], ids=[t[0] for t in TABLE])
def test_difference_is_zero_table(a, b, equal):
    assert difference_is_zero(a, b) is equal


def test_difference_is_zero_proves_piecewise_with_equivalent_conditions():
    # BUG (derive/equality.py lines 58-66): a and b are piecewise_fold-ed *separately*, and the
    # fallback simplifies the unfolded a - b, so two Piecewise expressions whose conditions are
    # written differently but agree everywhere are reported unequal. PyTorch's hardsigmoid'
    # (docs/math.md §1) written as 1/6 on (-3, 3) versus derive's own form (0 on |x| >= 3) is such a
    # pair; sympy.simplify(sympy.piecewise_fold(a - b)) proves it (= 0).
    ours = col(sp.Piecewise((sp.Rational(1, 6), (z > -3) & (z < 3)), (0, True)))
    theirs = col(activation("hard_sigmoid").derivative.subs(X, z))
    assert sp.simplify(sp.piecewise_fold(ours[0] - theirs[0])) == 0  # the identity is true
    assert difference_is_zero(ours, theirs)


@pytest.mark.slow  # 4-7 s: refuting an entry costs two simplify calls on tanh expressions
def test_difference_is_zero_catches_the_transposed_jacobian():
    # docs/math.md: SymPy's MatrixSymbol.diff returns the *transpose* of Matrix.jacobian for
    # tanh(W h + …). Planted: D(σ'(z)) W_hᵀ instead of D(σ'(z)) W_h, n = 2 (docs/math.md §1).
    ex = cell("rnn-tanh").explicit(2, 1)
    z_vec = ex.parameters["W_h"] * ex.state + ex.parameters["W_x"] * ex.x + ex.parameters["b"]
    slope = D(z_vec.applyfunc(lambda e: 1 - sp.tanh(e) ** 2))
    brute = ex.next_state.jacobian(ex.state)
    assert difference_is_zero(slope * ex.parameters["W_h"], brute)
    assert not difference_is_zero(slope * ex.parameters["W_h"].T, brute)
    assert difference_is_zero(step_jacobian("rnn-tanh").explicit(2, 1), brute)


def test_difference_is_zero_catches_a_wrong_gate_in_the_lstm():
    # Planted: the forget gate's slope written f(1+f) instead of f(1-f) (docs/math.md §3).
    ex = cell("lstm").explicit(1, 1)
    brute = ex.next_state.jacobian(ex.state)
    f = ex.environment[next(k for k in ex.environment if getattr(k, "name", "") == "f^{(t)}")]
    right = step_jacobian("lstm").explicit(1, 1)
    wrong = right.copy()
    wrong[1, 0] += 2 * (ex.state[1] * f[0] ** 2 * ex.parameters["W_f"][0, 0])
    assert difference_is_zero(right, brute)
    assert not difference_is_zero(wrong, brute)


def test_abstract_atoms_is_consistent_across_expressions():
    a, b = abstract_atoms([sp.tanh(z) + sig, 2 * sp.tanh(z) * sig])
    assert not a.atoms(sp.exp, sp.tanh) and not b.atoms(sp.exp, sp.tanh)
    # the same atom became the same symbol: b = 2 t s and a = t + s
    t, s = sorted(a.free_symbols, key=str)
    assert sp.expand(b - 2 * t * s) == 0


# ----------------------------------------------------------------------------------------------
# The tests' own prover (conftest.rational_identity), used for BPTT chains
# ----------------------------------------------------------------------------------------------

# rows in exp and tanh only (the prover refuses anything else, see below)
RATIONAL_TABLE = [t for t in TABLE if not (t[1].has(sp.Piecewise, sp.sech) or t[2].has(sp.Piecewise, sp.sech))]


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [t[1:] for t in RATIONAL_TABLE],
    ids=[t[0] for t in RATIONAL_TABLE],
)
def test_rational_identity_agrees_with_difference_is_zero(request, a, b, equal):
    name = request.node.callspec.id
    if name == "sigmoid-symmetry":
        # needs a relation between atoms: a sound prover over independent atoms must say no
        assert rational_identity(a, b) is False
    else:
        assert rational_identity(a, b) is equal


@pytest.mark.parametrize(
    "other", [activation("relu").derivative.subs(X, z), sp.sech(z) ** 2], ids=["piecewise", "sech"]
)
def test_rational_identity_refuses_what_it_cannot_prove(other):
    with pytest.raises(ValueError, match="cannot handle"):
        rational_identity(col(other), col(0))


def test_abstract_all_atoms_replaces_nested_atoms_whole():
    (e,) = abstract_all_atoms([sp.tanh(w * sp.tanh(z)) + sp.tanh(z)])
    assert not e.atoms(sp.tanh) and len(e.free_symbols) == 2
