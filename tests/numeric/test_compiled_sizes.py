"""Block sizes in compiled formulas (``Identity(2 N)``, ``ZeroMatrix(N, M)``), evaluated without SciPy."""

from __future__ import annotations

import numpy as np
import sympy as sp

from gradproof.derive.algebra import M, N
from gradproof.numeric.compiled import _size_function, compile_expression


def test_size_expressions_evaluate_for_the_given_sizes():
    f = _size_function(2 * N + M)
    assert f(3, 5) == 11 and f(1, 0) == 2
    assert isinstance(f(4, 4), int)


def test_identity_and_zero_blocks_have_the_sizes_of_n_and_m():
    env = {N: 3, M: 2}
    eye = compile_expression(sp.Identity(2 * N))(env)
    np.testing.assert_array_equal(eye.dense(), np.eye(6))
    zero = compile_expression(sp.ZeroMatrix(N, M))(env)
    assert zero.shape == (3, 2) and not zero.any()
    env = {N: 5, M: 1}  # the same compiled function, other sizes
    assert compile_expression(sp.ZeroMatrix(N, 2 * M + 1))(env).shape == (5, 3)
