"""Helpers for your own test suite: a Jacobian assertion and Hypothesis strategies.

>>> import numpy as np
>>> from gradproof.numeric.testing import assert_jacobian_close
>>> J = np.eye(2)[None]
>>> assert_jacobian_close(J, J)          # passes silently

``assert_jacobian_close`` says which side is which (yours = ``actual``, the reference =
``expected``), where the worst difference is (step, block, entry), the first failing step, and by how much.
``check_jacobian``, ``check_vjp``, ``check_jvp``, ``check_gradient`` and
``check_recurrent_backward`` (from :mod:`numeric.gradcheck`) compute the reference for you.
The strategies need Hypothesis (``pip install gradproof[test]``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..derive.cells import Cell, cell as _cell
from ..derive.errors import GradproofError
from .gradcheck import check_gradient, check_jacobian, check_jvp, check_recurrent_backward, check_vjp
from .verify import state_blocks

__all__ = [
    "assert_jacobian_close",
    "check_jacobian",
    "check_jvp",
    "check_vjp",
    "check_gradient",
    "check_recurrent_backward",
    "parameters",
    "sequences",
    "cells",
]


def _blocks(cell: Cell | str | None, hidden: int | None, rows: int, cols: int, wrt_input: bool):
    if cell is None:
        return [("", slice(0, rows))], [("", slice(0, cols))]
    c = _cell(cell)
    n = hidden if hidden is not None else rows // len(c.state_previous)
    row_blocks = state_blocks(c, n)
    col_blocks = [("x", slice(0, cols))] if wrt_input or cols != rows else row_blocks
    return row_blocks, col_blocks


def assert_jacobian_close(
    actual: Any,
    expected: Any,
    *,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    cell: Cell | str | None = None,
    hidden: int | None = None,
    quantity: str = "Jacobian",
    first_step: int = 1,
) -> None:
    """Assert two Jacobians (or stacks of them, or gradients) agree: ``|actual - expected| <= atol + rtol·|expected|``.

    Parameters
    ----------
    actual : (T, S, k) a stack of per-step Jacobians, (S, k) one Jacobian or a matrix parameter's
        gradient, or (k,) a vector (a bias's gradient) — yours (e.g. a hand-written backward pass).
    expected : same shape — the trusted reference (e.g. from :mod:`numeric.references`).
    rtol, atol : tolerances, elementwise as in :func:`numpy.testing.assert_allclose`.
    cell, hidden : name the blocks of the state (``h``, ``c`` for the LSTM) in the message.
    quantity : what is compared, for the message; a quantity naming "input" (e.g. "input
        Jacobian") names its columns ``x`` rather than state blocks.
    first_step : the step number of entry 0 of a (T, S, k) stack (steps are 1-based: entry t-1 is
        step t). Only a stack has steps: (S, k) and (k,) arrays are reported by entry alone.

    Raises
    ------
    AssertionError
        naming the step (a stack), the block (when ``cell`` names them), the entry, both values,
        the tolerance, and for a stack the first failing step as well as the worst.
    """
    __tracebackhide__ = True
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(
            f"{quantity}: shapes differ: actual (yours) {a.shape}, expected (reference) {b.shape}"
        )
    if a.ndim not in (1, 2, 3):
        raise AssertionError(
            f"{quantity}: expected (T, S, k), (S, k) or (k,) arrays, got {a.shape}"
        )
    stacked = a.ndim == 3
    vector = a.ndim == 1
    a3 = a.reshape((1, 1, -1) if vector else (1, *a.shape) if not stacked else a.shape)
    b3 = b.reshape(a3.shape)
    diff = np.abs(a3 - b3)
    allowed = atol + rtol * np.abs(b3)
    bad = ~(diff <= allowed)  # also catches nan
    if not bad.any():
        return
    ratio = np.where(bad, np.nan_to_num(diff / allowed, nan=np.inf, posinf=np.inf), 0.0)
    t, i, j = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    values = (
        f"actual (yours) = {float(a3[t, i, j])!r}, expected (reference) = {float(b3[t, i, j])!r}, "
        f"|difference| = {diff[t, i, j]:.3e} > atol + rtol*|expected| = {allowed[t, i, j]:.3e}; "
        f"{int(bad.sum())} of {bad.size} entries out of tolerance"
    )
    if vector:
        raise AssertionError(f"{quantity} differs at entry ({j}): {values}")
    if cell is None:
        where = f"entry ({i}, {j})"
    else:
        row_blocks, col_blocks = _blocks(cell, hidden, a3.shape[1], a3.shape[2], "input" in quantity.lower())
        rb = next((nm, s) for nm, s in row_blocks if s.start <= i < s.stop)
        cb = next((nm, s) for nm, s in col_blocks if s.start <= j < s.stop)
        where = f"block d{rb[0]}/d{cb[0]}, entry ({i - rb[1].start}, {j - cb[1].start}) of that block"
    if not stacked:
        raise AssertionError(f"{quantity} differs at {where}: {values}")
    bad_steps = np.flatnonzero(bad.any(axis=(1, 2)))
    first = int(bad_steps[0])
    message = f"{quantity} differs at step {t + first_step}, {where}: {values}; "
    if first == t:
        message += f"the first failing step is this one, step {first + first_step}"
    else:
        message += f"the first failing step is step {first + first_step} (the worst is step {t + first_step})"
    raise AssertionError(message + f", {bad_steps.size} of {a3.shape[0]} steps fail")


# ----------------------------------------------------------------------------------------------
# Hypothesis strategies
# ----------------------------------------------------------------------------------------------


def _hypothesis():
    try:
        from hypothesis import strategies as st
    except ImportError:  # pragma: no cover
        raise GradproofError("numeric.testing strategies need Hypothesis: pip install hypothesis") from None
    return st


def cells(names: Sequence[str] | None = None):
    """A strategy drawing cells (all six command-line cells by default)."""
    from ..derive.cells import CELL_NAMES

    st = _hypothesis()
    return st.sampled_from([_cell(nm) for nm in (names or CELL_NAMES)])


def parameters(
    cell: Cell | str | Any,
    *,
    hidden: int | Any = None,
    inputs: int | Any = None,
    spectral_norm: float | Any | None = None,
    spectral_radius: float | Any | None = None,
):
    """A strategy drawing ``(cell, params)`` with a prescribed spectral norm or radius.

    Every argument may be a value or a strategy. The recurrent matrices are rescaled to the drawn
    spectral norm (largest singular value) or spectral radius by :func:`numeric.init`.

    >>> from hypothesis import given, strategies as st
    >>> from gradproof.numeric.testing import parameters
    >>> strategy = parameters("rnn-tanh", hidden=st.integers(1, 8), spectral_norm=0.9)
    """
    st = _hypothesis()
    from .initialization import init

    def strategy(value: Any, default: Any) -> Any:
        if value is None:
            return st.just(default) if not hasattr(default, "example") else default
        return value if hasattr(value, "example") else st.just(value)

    cell_s = cell if hasattr(cell, "example") else st.just(_cell(cell))

    @st.composite
    def draw(draw_: Any) -> tuple[Cell, dict[str, np.ndarray]]:
        c = draw_(cell_s)
        n = draw_(strategy(hidden, st.integers(1, 6)), label="hidden")
        m = draw_(strategy(inputs, st.integers(1, 4)), label="inputs")
        seed = draw_(st.integers(0, 2**32 - 1), label="seed")
        norm = draw_(strategy(spectral_norm, None), label="spectral_norm") if spectral_norm is not None else None
        radius = (
            draw_(strategy(spectral_radius, None), label="spectral_radius")
            if spectral_radius is not None
            else None
        )
        return c, init(c, hidden=n, inputs=m, seed=seed, spectral_norm=norm, spectral_radius=radius)

    return draw()


def sequences(T: int | Any, inputs: int, *, scale: float = 1.0):  # noqa: N803
    """A strategy drawing (T, inputs) float64 input sequences with entries in [-scale, scale]."""
    st = _hypothesis()
    from hypothesis.extra.numpy import arrays

    T_s = T if hasattr(T, "example") else st.just(T)
    return T_s.flatmap(
        lambda t: arrays(
            np.float64, (t, inputs), elements=st.floats(-scale, scale, allow_nan=False, width=64)
        )
    )
