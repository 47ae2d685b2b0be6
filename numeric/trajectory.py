"""Running a cell forward: the trajectory the Jacobians are evaluated along.

>>> import numpy as np
>>> from gradproof.derive import cell
>>> from gradproof.numeric import init, unroll
>>> c = cell("lstm")
>>> p = init(c, hidden=3, inputs=2, seed=0)
>>> traj = unroll(c, p, np.ones((5, 2)))
>>> traj.states.shape            # s_0 .. s_T, each [h; c]
(6, 6)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..derive.cells import Cell, cell as _cell
from ..derive.errors import GradproofError
from .compiled import CompiledCell, compile_cell, plain_name
from .initialization import check_parameters
from .threads import single_blas_thread

__all__ = ["Trajectory", "unroll", "prepare"]


@dataclass(frozen=True)
class Trajectory:
    """A forward pass of a cell.

    Attributes
    ----------
    cell : the cell.
    params : name -> array (as given, float64 or complex128).
    xs : (T, m) inputs.
    states : (T + 1, S) states s_0 … s_T; for the LSTM each row is [h; c].
    hidden, inputs : n and m.
    """

    cell: Cell
    params: Mapping[str, np.ndarray]
    xs: np.ndarray
    states: np.ndarray
    hidden: int
    inputs: int

    @property
    def T(self) -> int:  # noqa: N802
        return self.xs.shape[0]

    def _repr_markdown_(self) -> str:
        """Jupyter: the cell, the sizes and the size of the states along the way."""
        norms = np.linalg.norm(np.real(self.hidden_states), axis=1)
        return "\n".join([
            f"**Trajectory** of {self.cell.name}: T = {self.T} steps, hidden n = {self.hidden}, "
            f"inputs m = {self.inputs}, states {self.states.shape[0]}×{self.states.shape[1]}",
            "",
            f"‖h_0‖ = {norms[0]:.4g}, ‖h_T‖ = {norms[-1]:.4g}, max_t ‖h_t‖ = {norms.max():.4g}",
        ])  # fmt: skip

    @property
    def hidden_states(self) -> np.ndarray:
        """(T + 1, n): the h part of every state."""
        return self.states[:, : self.hidden]

    def intermediates(self, start: int = 0, stop: int | None = None) -> dict[str, np.ndarray]:
        """Every named intermediate (gates, pre-activations, …) for steps start+1 … stop.

        Recomputed from the stored states in one batched evaluation; keys are plain names
        (``f``, ``i``, ``o``, ``c_tilde``, ``z``, ``h``, …), values ``(stop - start, k)``.
        """
        env = self.environment(start, stop)
        return {plain_name(sym): env[sym] for sym, _ in self.cell.definitions}

    def environment(self, start: int = 0, stop: int | None = None) -> dict:
        """The compiled cell's environment for steps start+1 … stop, batched over time."""
        stop = self.T if stop is None else stop
        compiled = compile_cell(self.cell)
        env = compiled.environment(self.params, self.hidden, self.inputs)
        return compiled.step(env, self.states[start:stop], self.xs[start:stop])


def _array(value: object, what: str) -> np.ndarray:
    a = np.asarray(value)
    if a.dtype.kind not in "biufc":
        raise GradproofError(f"{what} must hold numbers, got dtype {a.dtype}")
    return a.astype(np.complex128 if a.dtype.kind == "c" else np.float64, copy=False)


def prepare(
    cell: Cell | str, params: Mapping[str, np.ndarray], xs: object, s0: object | None = None
) -> tuple[Cell, dict[str, np.ndarray], np.ndarray, np.ndarray, int, int]:
    """Validate a call once, at the boundary: (cell, params, xs (T, m), s0 (S,), n, m)."""
    c = _cell(cell)
    xs_a = _array(xs, "xs")
    if xs_a.ndim != 2 or xs_a.shape[0] < 1 or xs_a.shape[1] < 1:
        raise GradproofError(f"xs must have shape (T, inputs) with T, inputs >= 1, got {xs_a.shape}")
    n, m = check_parameters(c, params, inputs=xs_a.shape[1])
    p = {k: _array(params[k], f"parameter {k}") for k in c.parameter_names}
    S = c.state_size(n)
    if s0 is None:
        s0_a = np.zeros(S)
    else:
        s0_a = _array(s0, "s0")
        if s0_a.shape != (S,):
            raise GradproofError(f"s0 must have shape (S,) = ({S},) for {c.name}, got {s0_a.shape}")
    for what, a in [("xs", xs_a), ("s0", s0_a), *[(f"parameter {k}", v) for k, v in p.items()]]:
        if not np.all(np.isfinite(a)):
            raise GradproofError(f"{what} must be finite; it holds nan or inf")
    return c, p, xs_a, s0_a, n, m


@single_blas_thread
def unroll(
    cell: Cell | str, params: Mapping[str, np.ndarray], xs: object, s0: object | None = None
) -> Trajectory:
    """Run the cell over ``xs`` with the compiled derived definitions.

    Parameters
    ----------
    cell : a cell or its name.
    params : name -> array, as from :func:`numeric.init`.
    xs : (T, m) inputs.
    s0 : (S,) initial state, zeros by default (S = n, or 2n for the LSTM, ordered [h; c]).

    Returns
    -------
    Trajectory with ``states`` (T + 1, S). Complex inputs ``xs`` or ``s0`` give a complex trajectory
    (the complex-step reference perturbs parameters through the internal ``_run``).
    """
    c, p, xs_a, s0_a, n, m = prepare(cell, params, xs, s0)
    compiled = compile_cell(c)
    return Trajectory(c, p, xs_a, _run(compiled, p, xs_a, s0_a, n, m), n, m)


def _run(
    compiled: CompiledCell, p: Mapping[str, np.ndarray], xs: np.ndarray, s0: np.ndarray, n: int, m: int,
    *, first: int = 1,
) -> np.ndarray:
    """States (T + 1, S) from s0 (S,) driven by xs (T, m); ``first`` is the step number of xs[0] (for
    the overflow message). With parameters stacked (B, …) and s0 (B, S), B settings advance together
    and the states are (T + 1, B, S)."""
    dtype = np.result_type(xs, s0, *p.values())
    T = xs.shape[0]
    states = np.empty((T + 1, *s0.shape), dtype=dtype)
    states[0] = s0
    env = compiled.environment(p, n, m)
    nxt = compiled.cell.state_next
    t = 0
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            for t in range(T):
                compiled.step(env, states[t], xs[t])
                states[t + 1] = np.concatenate([env[s] for s in nxt], axis=-1) if len(nxt) > 1 else env[nxt[0]]
    except FloatingPointError as exc:
        raise GradproofError(
            f"the forward pass of {compiled.cell.name} overflowed at step {first + t} ({exc}); "
            "scale the weights or inputs down"
        ) from None
    return states
