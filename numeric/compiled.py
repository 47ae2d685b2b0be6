"""The derived SymPy formulas compiled to numpy, batched over time steps.

Nothing here is re-typed by hand: a cell's definitions and its structured Jacobians (from
:mod:`derive`) are walked once and turned into a tree of small numpy closures, cached per cell.
The closures evaluate on arrays with any number of leading batch axes, so the step Jacobians of a
whole trajectory are computed at once, ``(T, S, S)``, and ``diag(v) W`` costs a row scaling,
``v[..., :, None] * W``, never a dense product with a diagonal matrix.

Values are plain arrays: vectors ``(..., k)``, matrices ``(..., r, c)``; a ``diag(v)`` factor is
kept as :class:`_Diag` until it must be materialised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache, reduce
from typing import Any

import numpy as np
import sympy as sp

from ..derive.algebra import M, N, Act, ActPrime, Diag, JacobianSymbol, OneMinus, Square
from ..derive.bptt import ParameterGradient, parameter_gradients, site_symbol
from ..derive.cells import Cell, cell as _cell
from ..derive.errors import GradproofError
from ..derive.jacobians import Derivation, input_jacobian, step_jacobian
from .activations import numpy_pair

__all__ = ["CompiledCell", "compile_cell", "compile_expression", "plain_name", "site_symbol", "Env"]

Env = Mapping[Any, Any]
Fn = Callable[[Env], Any]


@dataclass(frozen=True)
class _Diag:
    """diag(v) with v of shape (..., k), kept unmaterialised."""

    v: np.ndarray

    def dense(self) -> np.ndarray:
        k = self.v.shape[-1]
        return self.v[..., :, None] * np.eye(k, dtype=self.v.dtype)


def _dense(a: Any) -> np.ndarray:
    return a.dense() if isinstance(a, _Diag) else a


def _matmul(a: Any, b: Any, b_is_vector: bool) -> Any:
    """a · b for a a matrix or diag, b a vector (..., k), a matrix or a diag."""
    if isinstance(a, _Diag):
        if isinstance(b, _Diag):
            return _Diag(a.v * b.v)
        return a.v * b if b_is_vector else a.v[..., :, None] * b
    if isinstance(b, _Diag):
        return a * b.v[..., None, :]
    if b_is_vector:
        if a.ndim == 2:
            return b @ a.T
        return np.matmul(a, b[..., :, None])[..., 0]
    return np.matmul(a, b)


def _is_vector(expr: sp.Expr) -> bool:
    return expr.shape[1] == 1


def _size_function(size: sp.Expr) -> Callable[[int, int], int]:
    """``f(n, m)``: a block size such as ``2 N`` for given sizes (remembered per ``(n, m)``).

    Substituted, not lambdified: ``lambdify``'s default modules include SciPy, whose import (over
    a second) and code generation would dominate ``gradproof verify``.
    """

    @lru_cache(maxsize=None)
    def value(n: int, m: int) -> int:
        return int(size.xreplace({N: n, M: m}))

    return value


def compile_expression(expr: sp.Expr) -> Fn:
    """A numpy function ``f(env)`` that evaluates a structured SymPy expression.

    ``env`` maps MatrixSymbols (and JacobianSymbols) to arrays — vectors as ``(..., k)`` — and the
    size symbols :data:`derive.algebra.N`, :data:`~derive.algebra.M` to ints.
    """
    if isinstance(expr, sp.MatrixSymbol | JacobianSymbol):
        return lambda env: env[expr]
    if isinstance(expr, sp.MatAdd):
        parts = [compile_expression(a) for a in expr.args]
        vector = _is_vector(expr)

        def add(env: Env) -> Any:
            values = [p(env) for p in parts]
            if not vector and all(isinstance(v, _Diag) for v in values):
                return _Diag(reduce(np.add, (v.v for v in values)))
            return reduce(np.add, (_dense(v) for v in values))

        return add
    if isinstance(expr, sp.MatMul):
        coeff, mats = expr.as_coeff_matrices()
        factors = [compile_expression(a) for a in mats]
        vectors = [_is_vector(a) for a in mats]
        c = float(coeff)

        def mul(env: Env) -> Any:
            acc = factors[-1](env)
            acc_vector = vectors[-1]
            for f in reversed(factors[:-1]):
                acc = _matmul(f(env), acc, acc_vector)
            if c != 1.0:
                acc = _Diag(c * acc.v) if isinstance(acc, _Diag) else c * acc
            return acc

        return mul
    if isinstance(expr, sp.HadamardProduct):
        parts = [compile_expression(a) for a in expr.args]
        return lambda env: reduce(np.multiply, (p(env) for p in parts))
    if isinstance(expr, Act):
        inner = compile_expression(expr.vector)
        f = numpy_pair(expr.activation)[0]
        return lambda env: f(inner(env))
    if isinstance(expr, ActPrime):
        inner = compile_expression(expr.vector)
        fp = numpy_pair(expr.activation)[1]
        return lambda env: fp(inner(env))
    if isinstance(expr, OneMinus):
        inner = compile_expression(expr.vector)
        return lambda env: 1.0 - inner(env)
    if isinstance(expr, Square):
        inner = compile_expression(expr.vector)

        def square(env: Env) -> Any:
            v = inner(env)
            return v * v

        return square
    if isinstance(expr, Diag):
        inner = compile_expression(expr.vector)
        return lambda env: _Diag(inner(env))
    if isinstance(expr, sp.Identity):
        rows = _size_function(expr.rows)
        return lambda env: _Diag(np.ones(int(rows(env[N], env[M]))))
    if isinstance(expr, sp.ZeroMatrix):
        shape = (_size_function(expr.rows), _size_function(expr.cols))
        return lambda env: np.zeros(tuple(int(k(env[N], env[M])) for k in shape))
    if isinstance(expr, sp.BlockMatrix):
        grid = [[compile_expression(expr.blocks[i, j]) for j in range(expr.blocks.cols)]
                for i in range(expr.blocks.rows)]  # fmt: skip

        def block(env: Env) -> np.ndarray:
            values = [[_dense(f(env)) for f in row] for row in grid]
            batch = np.broadcast_shapes(*[v.shape[:-2] for row in values for v in row])
            rows = [
                np.concatenate([np.broadcast_to(v, batch + v.shape[-2:]) for v in row], axis=-1)
                for row in values
            ]
            return np.concatenate(rows, axis=-2)

        return block
    if isinstance(expr, sp.Transpose):
        inner = compile_expression(expr.arg)

        def transpose(env: Env) -> Any:
            v = inner(env)
            return v if isinstance(v, _Diag) else np.swapaxes(v, -1, -2)

        return transpose
    raise GradproofError(
        f"cannot evaluate a {type(expr).__name__} numerically; write the formula with the nodes of "
        "derive.algebra (MatAdd, MatMul, HadamardProduct, Diag, Act, ActPrime, OneMinus, Square, Transpose)"
    )


def plain_name(symbol: sp.MatrixSymbol) -> str:
    r"""A Python-friendly key for a vector symbol: ``f^{(t)}`` → ``f``, ``\tilde{c}^{(t)}`` → ``c_tilde``."""
    name = symbol.name.split("^")[0]
    if name.startswith(r"\tilde{"):
        return name[len(r"\tilde{") : -1] + "_tilde"
    return name


@dataclass(frozen=True)
class _Quantity:
    """A compiled Jacobian: the main expression and the named Jacobians it uses."""

    main: Fn
    references: tuple[tuple[JacobianSymbol, Fn], ...]

    def __call__(self, env: dict) -> np.ndarray:
        for ref, f in self.references:
            env[ref] = _dense(f(env))
        return _dense(self.main(env))


def _quantity(result: sp.Expr, references: Mapping[JacobianSymbol, sp.Expr]) -> _Quantity:
    return _Quantity(
        compile_expression(result),
        tuple((ref, compile_expression(expr)) for ref, expr in references.items()),
    )


@dataclass(frozen=True)
class CompiledCell:
    """A cell's forward step and derived Jacobians as numpy functions.

    Attributes
    ----------
    cell : the cell.
    definitions : ``(symbol, f)`` in order; ``f(env)`` gives the symbol's value.
    step_jacobian, input_jacobian : ``f(env) -> (..., S, S)`` and ``(..., S, m)``.
    parameter_locals : parameter name -> ``(gradient, site, local, right)``: ``site(env)`` the
        vector ``P v``, ``local(env) -> (..., S, k)`` the Jacobian of the state with respect to it
        (see :mod:`derive.bptt`), ``right(env)`` the vector v (None for a bias).
    """

    cell: Cell
    definitions: tuple[tuple[sp.MatrixSymbol, Fn], ...]
    step_jacobian: _Quantity
    input_jacobian: _Quantity
    parameter_locals: Mapping[str, tuple[ParameterGradient, Fn, _Quantity, Fn | None]]

    def environment(self, params: Mapping[str, np.ndarray], hidden: int, inputs: int) -> dict:
        """The parameters keyed by their symbols, and the sizes."""
        env: dict[Any, Any] = {N: hidden, M: inputs}
        for name, sym in self.cell.parameter_symbols().items():
            env[sym] = params[name]
        return env

    def step(self, env: dict, s_prev: np.ndarray, x: np.ndarray) -> dict:
        """Evaluate one step (or a batch of steps) in place; returns ``env`` with every value."""
        n = env[N]
        prev = self.cell.state_previous
        for k, sym in enumerate(prev):
            env[sym] = s_prev[..., k * n : (k + 1) * n]
        env[self.cell.input] = x
        for sym, f in self.definitions:
            env[sym] = f(env)
        return env


@lru_cache(maxsize=None)
def _compile_cached(c: Cell) -> CompiledCell:
    return _compile(c, None)


def _compile(c: Cell, step: Derivation | None) -> CompiledCell:
    definitions = tuple((sym, compile_expression(rhs)) for sym, rhs in c.definitions)
    sj = step if step is not None else step_jacobian(c)
    ij = input_jacobian(c)
    grads = parameter_gradients(c)
    locals_: dict[str, tuple[ParameterGradient, Fn, _Quantity, Fn | None]] = {}
    for name, g in grads.gradients.items():
        right = None if g.right is None else compile_expression(g.right)
        locals_[name] = (g, compile_expression(g.site), _quantity(g.local, g.references), right)
    return CompiledCell(
        cell=c,
        definitions=definitions,
        step_jacobian=_quantity(sj.result, sj.references),
        input_jacobian=_quantity(ij.result, ij.references),
        parameter_locals=locals_,
    )


def compile_cell(cell: Cell | str, *, step: Derivation | None = None) -> CompiledCell:
    """The compiled cell (cached). ``step`` replaces the derived step Jacobian, for checking a
    formula of your own (or a planted wrong one) with :func:`numeric.verify`."""
    c = _cell(cell)
    return _compile_cached(c) if step is None else _compile(c, step)
