r"""The derived Jacobians and BPTT gradients evaluated along a trajectory.

All of these evaluate the compiled structured forms of :mod:`derive` (see
:mod:`numeric.compiled`), batched over time:

* :func:`step_jacobians` — ``(T, S, S)``, entry t-1 is :math:`\partial s_t/\partial s_{t-1}`;
* :func:`input_jacobians` — ``(T, S, m)``, entry t-1 is :math:`\partial s_t/\partial x_t`;
* :func:`parameter_gradients` — :math:`\partial J/\partial\theta` of
  :math:`J = \sum_t w_t \cdot h_t` by the BPTT sums of :func:`derive.parameter_gradients`;
* :func:`gradient_profile` — :math:`\log\lVert\partial s_T/\partial s_k\rVert` for every k,
  streaming and in log space (:mod:`numeric.profile`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import sympy as sp

from ..derive.algebra import Diag
from ..derive.cells import Cell
from ..derive.errors import GradproofError
from ..derive.jacobians import Derivation, step_jacobian
from .compiled import compile_cell, compile_expression, site_symbol
from .profile import GradientProfile, log_norm_profile, log_norm_profile_rnn
from .trajectory import Trajectory, unroll
from .threads import single_blas_thread

__all__ = [
    "step_jacobians",
    "input_jacobians",
    "parameter_gradients",
    "gradient_profile",
    "adjoints",
    "bptt_contributions",
]

#: Steps evaluated together when streaming (bounds memory at CHUNK · S² floats).
CHUNK = 256


def step_jacobians(
    cell: Cell | str,
    params: Mapping[str, np.ndarray],
    xs: object,
    s0: object | None = None,
    *,
    step: Derivation | None = None,
) -> np.ndarray:
    r"""∂s_t/∂s_{t-1} for t = 1 … T from the derived formula, shape (T, S, S).

    Parameters
    ----------
    cell, params, xs, s0 : as for :func:`numeric.unroll`; ``xs`` is (T, m), ``s0`` is (S,).
    step : a step-Jacobian derivation to evaluate instead of gradproof's own (for checking a
        formula of your own with the same machinery). Only the step Jacobians use it.

    >>> import numpy as np
    >>> from gradproof.numeric import init
    >>> p = init("rnn-tanh", hidden=2, inputs=1, seed=0)
    >>> step_jacobians("rnn-tanh", p, np.zeros((3, 1))).shape
    (3, 2, 2)
    """
    traj = unroll(cell, params, xs, s0)
    compiled = compile_cell(traj.cell, step=step)
    return compiled.step_jacobian(traj.environment())


def input_jacobians(
    cell: Cell | str, params: Mapping[str, np.ndarray], xs: object, s0: object | None = None
) -> np.ndarray:
    """∂s_t/∂x_t for t = 1 … T from the derived formula, shape (T, S, m)."""
    traj = unroll(cell, params, xs, s0)
    return compile_cell(traj.cell).input_jacobian(traj.environment())


def _loss_weights(loss_weights: object, T: int, n: int) -> np.ndarray:
    w = np.asarray(loss_weights, dtype=np.float64)
    if w.shape != (T, n):
        raise GradproofError(f"loss_weights must have shape (T, hidden) = ({T}, {n}), got {w.shape}")
    if not np.all(np.isfinite(w)):
        raise GradproofError("loss_weights must be finite; it holds nan or inf")
    return w


@single_blas_thread
def adjoints(jacobians: np.ndarray, weights: np.ndarray, hidden: int) -> np.ndarray:
    r"""λ_t = ∂J/∂s_t for t = 1 … T, shape (T, S), from the backward recursion

    .. math:: \lambda_T = w_T, \qquad \lambda_t = w_t + J_{t+1}^\top \lambda_{t+1},

    where w_t is placed on the h part of the state (the loss sees h, not c).
    """
    T, S, _ = jacobians.shape
    lam = np.zeros((T, S), dtype=np.result_type(jacobians, weights))
    lam[:, :hidden] = weights
    for t in range(T - 2, -1, -1):
        lam[t] += jacobians[t + 1].T @ lam[t + 1]
    return lam


def _per_step_terms(traj: Trajectory, w: np.ndarray):
    """For every parameter: (u_t = G_tᵀ λ_t (T, k), v_t (T, j) or None) of its BPTT sum."""
    compiled = compile_cell(traj.cell)
    env = traj.environment()
    lam = adjoints(compiled.step_jacobian(dict(env)), w, traj.hidden)
    for name, (g, site, local, right) in compiled.parameter_locals.items():
        e = dict(env)
        e[site_symbol(g)] = site(e)
        G = local(e)  # (T, S, k)
        u = np.einsum("tsk,ts->tk", np.broadcast_to(G, (traj.T, *G.shape[-2:])), lam)
        v = None if right is None else right(e)
        yield name, u, None if v is None else np.broadcast_to(v, (traj.T, v.shape[-1]))


def parameter_gradients(
    cell: Cell | str,
    params: Mapping[str, np.ndarray],
    xs: object,
    s0: object | None = None,
    *,
    loss_weights: object,
) -> dict[str, np.ndarray]:
    r"""∂J/∂θ for every parameter, J = Σ_t w_t · h_t, by the derived BPTT sums.

    .. math:: \frac{\partial J}{\partial P} = \sum_{t=1}^{T} G_P^{(t)\top}\lambda_t\,v_t^\top,
              \qquad \frac{\partial J}{\partial b} = \sum_{t=1}^{T} G_b^{(t)\top}\lambda_t

    Parameters
    ----------
    cell, params, xs, s0 : as for :func:`numeric.unroll`.
    loss_weights : (T, n) the weights w_t of the linear loss on the hidden states h_1 … h_T.

    Returns
    -------
    dict name -> array of the parameter's shape.
    """
    traj = unroll(cell, params, xs, s0)
    w = _loss_weights(loss_weights, traj.T, traj.hidden)
    return {name: (u.sum(axis=0) if v is None else u.T @ v) for name, u, v in _per_step_terms(traj, w)}


def bptt_contributions(
    cell: Cell | str,
    params: Mapping[str, np.ndarray],
    xs: object,
    s0: object | None = None,
    *,
    parameter: str,
    loss_weights: object,
) -> np.ndarray:
    r"""The norm of each step's term in the BPTT sum of ``parameter``, shape (T,).

    Entry t-1 is :math:`\lVert G^{(t)\top}\lambda_t\,v_t^\top\rVert_F =
    \lVert G^{(t)\top}\lambda_t\rVert_2\,\lVert v_t\rVert_2` (an outer product), the contribution
    of step t that truncated BPTT with a window τ drops when t < T - τ (docs/math.md §7).
    """
    traj = unroll(cell, params, xs, s0)
    w = _loss_weights(loss_weights, traj.T, traj.hidden)
    for name, u, v in _per_step_terms(traj, w):
        if name == parameter:
            norms = np.linalg.norm(u, axis=1)
            return norms if v is None else norms * np.linalg.norm(v, axis=1)
    raise GradproofError(
        f"{traj.cell.name} has no parameter {parameter!r}; choose one of: {', '.join(traj.cell.parameter_names)}"
    )


def _diag_times_parameter(result: sp.Expr) -> tuple[sp.Expr, str] | None:
    """(v, name) when a step Jacobian has the form diag(v) P with P a parameter matrix."""
    if isinstance(result, sp.MatMul) and len(result.args) == 2:
        d, p = result.args
        if isinstance(d, Diag) and isinstance(p, sp.MatrixSymbol):
            return d.vector, p.name
    return None


@single_blas_thread
def gradient_profile(
    cell: Cell | str,
    params: Mapping[str, np.ndarray],
    xs: object,
    s0: object | None = None,
) -> GradientProfile:
    r"""log ‖∂s_T/∂s_k‖ (spectral and Frobenius) for k = 0 … T-1, in log space.

    Streams: the step Jacobians are evaluated CHUNK steps at a time, latest first, and consumed
    by :func:`numeric.profile.log_norm_profile`, so memory is O(T·S) for the stored states plus
    O(CHUNK·S²), never O(T·S²). When the derived step Jacobian has the form diag(v) W (the vanilla
    RNN, docs/math.md §1), only v is evaluated and the chain is a row scaling per step.
    """
    return _trajectory_profile(unroll(cell, params, xs, s0))


def _trajectory_profile(traj: Trajectory) -> GradientProfile:
    """:func:`gradient_profile` of a forward pass already run (e.g. many at once by
    :func:`numeric.lyapunov_batch.unroll_batch`)."""
    if np.iscomplexobj(traj.states):
        raise GradproofError("gradient_profile needs real parameters and inputs")
    derivation = step_jacobian(traj.cell)
    form = _diag_times_parameter(derivation.result)
    if form is not None:
        vector, pname = form
        f = compile_expression(vector)
        d = np.empty((traj.T, traj.hidden))
        for a in range(0, traj.T, CHUNK):
            b = min(a + CHUNK, traj.T)
            d[a:b] = f(traj.environment(a, b))
        return log_norm_profile_rnn(d, traj.params[pname])
    compiled = compile_cell(traj.cell)
    S = traj.states.shape[1]

    def reversed_jacobians() -> Iterator[np.ndarray]:
        for stop in range(traj.T, 0, -CHUNK):
            start = max(0, stop - CHUNK)
            block = compiled.step_jacobian(traj.environment(start, stop))
            yield from block[::-1]

    return log_norm_profile(reversed_jacobians(), traj.T, size=S)

