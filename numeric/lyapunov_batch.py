r"""The largest Lyapunov exponents of many parameter settings of one cell at once.

A sweep (:mod:`numeric.sweeps`) asks for :math:`\lambda_1` of the same cell, the same inputs and
many parameter settings: a keep-gate bias, a weight norm, a grid of both. Computed one setting
after the other, almost all of the time is Python overhead: one forward step and one QR per step
and per setting, on 8×8 matrices. Here the B settings are advanced together along a leading axis:
the forward pass is one compiled step of the derived definitions per time step for all of them
(every parameter stacked, ``(B, …)``), the frame update one stacked product
:math:`J_t^{(b)} Q^{(b)}_{t-1}` per step, and the QR factorisations one stacked ``np.linalg.qr``
of the settings whose group ends at that step.

Nothing of the method changes (Benettin et al. 1980, as in :func:`numeric.lyapunov_spectrum`):
each setting keeps its own adaptive QR groups, the step Jacobians are evaluated by the same
compiled derived formula with the same chunks, and the sums are reduced by the same code. Stacked
numpy products and factorisations call the same BLAS/LAPACK routine per matrix as the unstacked
ones, so every result is the same, to the last bit, as ``lyapunov_spectrum(cell, params[b], xs,
k=k, warmup=warmup)`` (tested).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..derive.cells import Cell, cell as _cell
from ..derive.errors import GradproofError
from ..derive.jacobians import step_jacobian
from .compiled import compile_cell, compile_expression
from .gradients import _diag_times_parameter
from .lyapunov import (
    _CHUNK_DIAG,
    _CHUNK_FLOATS,
    BLOCKS,
    CHOLESKY_MIN_K,
    LyapunovSpectrum,
    _boundaries,
    _int,
    _next_group,
    _spectrum,
    _Tally,
    initial_frame,
)
from .threads import single_blas_thread
from .trajectory import Trajectory, _run, prepare

__all__ = ["lyapunov_batch", "unroll_batch"]

#: Floats of stacked step Jacobians held at once (B·chunk·S²); larger batches are split.
_BATCH_FLOATS = 2**23


@single_blas_thread
def lyapunov_batch(
    cell: Cell | str,
    params: Sequence[Mapping[str, np.ndarray]],
    xs: object,
    *,
    k: int = 1,
    warmup: int = 0,
) -> list[LyapunovSpectrum]:
    r"""The k largest Lyapunov exponents of one cell under B parameter settings, computed together.

    .. math::

        J^{(b)}_t Q^{(b)}_{t-1} = Q^{(b)}_t R^{(b)}_t,\qquad
        \lambda^{(b)}_i = \frac{1}{T - T_0}\sum_{t > T_0}\log\lvert(R^{(b)}_t)_{ii}\rvert

    (Benettin et al. 1980) for every setting b, from the zero initial state.

    Parameters
    ----------
    cell : a cell or its name.
    params : B settings, each name -> array as from :func:`numeric.init`, all of the same sizes.
    xs : (T, m) inputs, the same for every setting.
    k : number of exponents, 1 ≤ k < :data:`numeric.lyapunov.CHOLESKY_MIN_K` (the Householder
        path of :func:`numeric.lyapunov_spectrum`; for more use that function).
    warmup : steps T_0 < T whose QR factors are not counted.

    Returns
    -------
    list of B :class:`LyapunovSpectrum`, element b equal (every bit) to
    ``lyapunov_spectrum(cell, params[b], xs, k=k, warmup=warmup)``.
    """
    c, plist, xs_a, n, m = _settings(cell, params, xs, "lyapunov_batch", "lyapunov_spectrum")
    S = c.state_size(n)
    top = min(S, CHOLESKY_MIN_K - 1)
    k = _int(k, "k", 1, top, f"lyapunov_batch computes up to {top} exponents; use lyapunov_spectrum for more")
    T = xs_a.shape[0]
    warmup = _int(warmup, "warmup", 0, T - 1, f"at least one of the T = {T} steps must be counted")
    form = _diag_times_parameter(step_jacobian(c).result)
    chunk = _CHUNK_DIAG if form is not None else max(1, min(1024, _CHUNK_FLOATS // (S * S)))
    per_batch = max(1, _BATCH_FLOATS // (chunk * S * S))
    out: list[LyapunovSpectrum] = []
    for start in range(0, len(plist), per_batch):
        out += _batch(c, plist[start : start + per_batch], xs_a, n, m, k, warmup, chunk, form)
    return out


def _settings(cell: Cell | str, params: Sequence[Mapping[str, np.ndarray]], xs: object, who: str,
              single: str) -> tuple[Cell, list[dict], np.ndarray, int, int]:  # fmt: skip
    """The cell, the checked settings, xs (T, m) and the sizes n, m; GradproofError on bad input."""
    if isinstance(params, Mapping) or len(params) == 0:
        raise GradproofError(f"{who} needs a non-empty sequence of parameter dicts (one per setting); "
                             f"for one setting use {single}")  # fmt: skip
    c = _cell(cell)
    checked = [prepare(c, p, xs) for p in params]
    _, _, xs_a, _, n, m = checked[0]
    if any((cn, cm) != (n, m) for _, _, _, _, cn, cm in checked):
        raise GradproofError(f"{who}: every setting must have the same hidden and input sizes")
    plist = [p for _, p, _, _, _, _ in checked]
    if np.iscomplexobj(xs_a) or any(np.iscomplexobj(v) for p in plist for v in p.values()):
        raise GradproofError(f"{who} needs real parameters and inputs; got complex numbers")
    return c, plist, xs_a, n, m


@single_blas_thread
def unroll_batch(cell: Cell | str, params: Sequence[Mapping[str, np.ndarray]], xs: object) -> list[Trajectory]:
    r"""The forward passes of one cell under B parameter settings, advanced together.

    :math:`s^{(b)}_t = F(s^{(b)}_{t-1}, x_t; \theta^{(b)})` from :math:`s_0 = 0`, one stacked step of
    the compiled derived definitions per t for all b.

    Parameters
    ----------
    cell : a cell or its name.
    params : B settings, each name -> array as from :func:`numeric.init`, all of the same sizes.
    xs : (T, m) inputs, the same for every setting.

    Returns
    -------
    list of B :class:`numeric.Trajectory`, element b with ``states`` (T + 1, S) equal (every bit)
    to ``unroll(cell, params[b], xs).states``.
    """
    c, plist, xs_a, n, m = _settings(cell, params, xs, "unroll_batch", "unroll")
    compiled = compile_cell(c)
    stacked = {name: np.stack([p[name] for p in plist]) for name in c.parameter_names}
    states = _run(compiled, stacked, xs_a, np.zeros((len(plist), c.state_size(n))), n, m)
    return [Trajectory(c, p, xs_a, np.ascontiguousarray(states[:, i]), n, m) for i, p in enumerate(plist)]


def _batch(c: Cell, plist: list[dict], xs: np.ndarray, n: int, m: int, k: int, warmup: int, chunk: int,
           form: tuple | None) -> list[LyapunovSpectrum]:  # fmt: skip
    B = len(plist)
    T = xs.shape[0]
    S = c.state_size(n)
    blocks = min(BLOCKS, T - warmup)
    points, block_ends, ends = _boundaries(T, warmup, blocks)
    compiled = compile_cell(c)
    # every parameter stacked, also the ones all settings share: a stacked product then calls the
    # same BLAS routine per setting as the unstacked one, so the states are the same to the bit
    stacked = {name: np.stack([p[name] for p in plist]) for name in c.parameter_names}
    envs = [compiled.environment(p, n, m) for p in plist]
    vector_fn = compile_expression(form[0]) if form is not None else None
    W = stacked[form[1]] if form is not None else None

    q = np.broadcast_to(initial_frame(S, k), (B, S, k)).copy()
    tally = _Tally(points, block_ends, blocks, (B, k))
    group = np.ones(B, dtype=np.int64)
    pending = np.zeros(B, dtype=np.int64)
    s_prev = np.zeros((B, S))
    t = 0
    end_iter = iter(ends.tolist())
    next_end = next(end_iter)
    try:
        for a in range(0, T, chunk):
            b = min(a + chunk, T)
            states = _run(compiled, stacked, xs[a:b], s_prev, n, m, first=a + 1)
            s_prev = states[-1]
            with np.errstate(divide="ignore", over="raise", invalid="ignore"):
                # the step Jacobians of each setting, as lyapunov_spectrum evaluates them (same chunk)
                per = []
                for i, env in enumerate(envs):
                    compiled.step(env, np.ascontiguousarray(states[:-1, i]), xs[a:b])
                    per.append(vector_fn(env) if vector_fn is not None else compiled.step_jacobian(env))
                J = np.stack(per)  # (B, chunk, S, S), or (B, chunk, n) for diag(v) W
                for j in range(b - a):
                    if vector_fn is not None:
                        q = J[:, j, :, None] * (W @ q)
                    else:
                        q = J[:, j] @ q
                    t += 1
                    pending += 1
                    due = np.flatnonzero(pending >= group) if t != next_end else np.arange(B)
                    if due.size == 0:
                        continue
                    qd, r = np.linalg.qr(q[due])
                    q[due] = qd
                    logs = np.log(np.abs(np.diagonal(r, axis1=-2, axis2=-1)))
                    for row, i in enumerate(due.tolist()):
                        group[i] = _next_group(logs[row], int(pending[i]), k)
                        if t > warmup:
                            tally.total[i] += logs[row]
                    pending[due] = 0
                    if t == next_end:
                        tally.checkpoint(t - warmup)
                        next_end = next(end_iter, -1)
    except FloatingPointError as exc:
        raise GradproofError(
            f"the Jacobian product of {c.name} overflowed near step {t} ({exc}); the weights are too "
            "large for float64 even over a few steps: scale them down"
        ) from None
    return [
        _spectrum(tally.total[i], tally.block_sums[i], tally.running[i], points, block_ends, T=T, warmup=warmup,
                  blocks=blocks)
        for i in range(B)
    ]
