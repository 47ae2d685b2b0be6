r"""Lyapunov exponents of a recurrence, by QR re-orthonormalisation of the derived step Jacobians.

The Lyapunov exponents of :math:`s_t = F(s_{t-1}, x_t)` along the trajectory driven by ``xs`` are
the growth rates of the Jacobian product :math:`P_T = J_T J_{T-1}\cdots J_1`,
:math:`J_t = \partial s_t/\partial s_{t-1}` (docs/math.md §1, "long horizons"). They are computed by the
QR method of Benettin, Galgani, Giorgilli & Strelcyn (1980; Shimada & Nagashima 1979), the one
Engelken, Wolf & Abbott (2023, "Lyapunov spectra of chaotic recurrent neural networks") use for
RNNs:

.. math::

    J_t Q_{t-1} = Q_t R_t, \qquad
    \lambda_i = \frac{1}{T - T_0}\sum_{t = T_0 + 1}^{T} \log\lvert (R_t)_{ii}\rvert,

with :math:`Q_0` an orthonormal (S, k) frame, :math:`T_0` the warm-up, natural logarithms, one
unit of time per step. The largest exponent is the rate at which gradients grow (> 0) or vanish
(< 0) over long spans: :math:`\log\lVert\partial s_T/\partial s_t\rVert_2 \approx
\lambda_1 (T - t)`; the sum of all S exponents is the mean of :math:`\log\lvert\det J_t\rvert`.

Grouping. :math:`J_{t+g}\cdots J_{t+1} Q = Q' R_{t+g}\cdots R_{t+1}` and a product of upper
triangular matrices has the product of their diagonals on its diagonal, so re-orthonormalising
after a group of g steps gives the same sums in exact arithmetic. The group length adapts to the
spread of the last :math:`\lvert R_{ii}\rvert`: a group is closed before that spread can exceed
:data:`MAX_GROUP_SPREAD`, where Householder QR still gives every diagonal entry to a relative
error of about :math:`\varepsilon \cdot` spread (≈ 2e-12; measured against one QR per step: 1e-13 on an LSTM whose spectrum spans 6 nats per step). This is what makes the full spectrum
cheaper than one QR per step.

Cholesky-QR. A single-step group of at least :data:`CHOLESKY_MIN_K` columns is re-orthonormalised
by Cholesky-QR (Stathopoulos & Wu 2002; Fukaya et al. 2014) instead of Householder QR:
:math:`G = A^\top A = L L^\top`, :math:`R = L^\top`, :math:`\tilde Q = A L^{-\top}`, with
:math:`L^{-1}` from a blocked triangular inversion (:func:`_lower_inverse`). It needs a few
matrix products instead of LAPACK's ``geqrf`` + ``orgqr``. :math:`\tilde Q` is orthonormal only to
about :math:`\varepsilon\kappa^2` (:math:`\kappa` the condition number of :math:`A`) and the
computed :math:`R_{ii}` carry relative errors of that size, but neither accumulates: because
:math:`L^{-\top}` is exactly upper triangular, :math:`\tilde Q = Q U` with :math:`Q` the exact Q
factor and :math:`U` upper triangular close to I, and the next step's R is
:math:`R_{t+1} U_t`, so the :math:`\log\lvert U_{ii}\rvert` telescope out of the sums. What
remains is the rounding of :math:`A L^{-\top}`, which tilts the span of the first j columns by
about :math:`\varepsilon\lVert A\rVert\lVert L^{-1}\rVert = \varepsilon\kappa`, the order of
Householder QR's own backward error seen from the weakest direction. This holds while U stays
close to I, i.e. :math:`\varepsilon\kappa^2 \ll 1`: a step is accepted only when
:math:`\kappa_F = \lVert A\rVert_F\lVert L^{-1}\rVert_F \ (\ge \kappa)` is at most
:data:`CHOLESKY_MAX_KAPPA` (:math:`\varepsilon\kappa^2 \le 2\cdot 10^{-4}`); otherwise (or when
the Cholesky factorisation breaks down) that step is redone by Householder QR, and Householder is
used for the next :data:`CHOLESKY_BACKOFF` steps. Measured against one Householder QR per step:
3e-13 on a tanh RNN with S = 128 over 10⁴ steps, 8e-12 on an LSTM with S = 128
(benchmarks/README.md). Groups of two steps are replaced by single Cholesky-QR steps (cheaper);
a two-step product is too ill-conditioned for Cholesky-QR on the benchmark (κ_F ≈ 10⁷).

Streaming: the forward pass and the step Jacobians are evaluated :data:`CHUNK` steps at a time
(with the compiled derived formula of :mod:`numeric.compiled`; for a diag(v) W Jacobian only v),
so memory is O(CHUNK·S² + S·k) whatever T is.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from ..derive.cells import Cell
from ..derive.errors import GradproofError
from ..derive.jacobians import step_jacobian
from .compiled import compile_cell, compile_expression
from .gradients import _diag_times_parameter
from .trajectory import _run, prepare

__all__ = [
    "LyapunovSpectrum",
    "lyapunov_spectrum",
    "initial_frame",
    "MAX_GROUP_SPREAD",
    "CHOLESKY_MIN_K",
    "CHOLESKY_MAX_KAPPA",
]

#: Largest spread max|R_ii| / min|R_ii| allowed inside one QR group (see the module docstring).
MAX_GROUP_SPREAD = 1e4
#: Longest group of steps between two QR factorisations.
MAX_GROUP = 16
#: Smallest number of exponents k for which single steps use Cholesky-QR (below: Householder only).
CHOLESKY_MIN_K = 16
#: Largest κ_F = ‖A‖_F ‖L⁻¹‖_F for which a Cholesky-QR step is accepted (flag error ≈ ε κ² per step).
CHOLESKY_MAX_KAPPA = 1e6
#: Householder steps after a rejected Cholesky-QR step before Cholesky-QR is tried again.
CHOLESKY_BACKOFF = 16
#: Size of the diagonal blocks inverted directly by :func:`_lower_inverse`.
_TRI_LEAF = 16
#: Longest group re-orthonormalised by Cholesky-QR.
_CHOLESKY_MAX_PENDING = 1
#: Groups of at most this many steps are replaced by single Cholesky-QR steps (cheaper).
_CHOLESKY_MAX_GROUP = 2
#: Floats of step Jacobians evaluated at once (CHUNK·S² ≤ this); 2**21 floats = 16 MiB.
_CHUNK_FLOATS = 2**21
#: Steps of a diag(v) W Jacobian evaluated at once (only the (S,) vectors v are stored).
_CHUNK_DIAG = 256
#: Number of points of the running estimates (for a convergence plot).
RUNNING_POINTS = 200
#: Number of blocks for the standard error.
BLOCKS = 16


@dataclass(frozen=True)
class LyapunovSpectrum:
    r"""The k largest Lyapunov exponents of a recurrence along one trajectory.

    Attributes
    ----------
    exponents : (k,) float64
        :math:`\lambda_1 \ge \dots \ge \lambda_k`, natural log per step (``-inf`` where a
        direction is annihilated exactly, e.g. by dead ReLU units).
    stderr : (k,) float64
        Standard error of each exponent from ``blocks`` equal blocks of the trajectory after the
        warm-up: the standard deviation of the block means over :math:`\sqrt{B}`.
    steps : (P,) int
        Steps after the warm-up at which the running estimates were taken (the last is T - T_0).
    running : (P, k) float64
        The estimate of every exponent from the first ``steps[j]`` steps after the warm-up,
        columns in the order of ``exponents``.
    T, warmup, blocks : int
        The horizon, the warm-up steps left out, the number of blocks of ``stderr``.
    """

    exponents: np.ndarray
    stderr: np.ndarray
    steps: np.ndarray
    running: np.ndarray
    T: int  # noqa: N815
    warmup: int
    blocks: int

    def __post_init__(self) -> None:
        for name in ("exponents", "stderr", "steps", "running"):
            value = np.array(getattr(self, name), copy=True)
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @property
    def k(self) -> int:
        """The number of exponents."""
        return int(self.exponents.shape[0])

    @property
    def largest(self) -> float:
        r""":math:`\lambda_1`: > 0 gradients explode, < 0 they vanish, at that rate per step."""
        return float(self.exponents[0])

    def to_json(self) -> dict:
        """Every number, as plain lists, for ``results.json``."""
        return {
            "exponents": self.exponents.tolist(),
            "stderr": self.stderr.tolist(),
            "steps": self.steps.tolist(),
            "running": self.running.tolist(),
            "T": self.T,
            "warmup": self.warmup,
            "blocks": self.blocks,
        }


def initial_frame(size: int, k: int) -> np.ndarray:
    """The starting orthonormal frame Q_0, (size, k): the Q of a seeded Gaussian matrix.

    Random rather than the identity so that no exponent is missed because Q_0 happens to be
    orthogonal to an invariant subspace (e.g. the c block of an LSTM). Always the same numbers,
    and the frame for k is the first k columns of the frame for S, so the k largest exponents are
    the top of the full spectrum run for run.
    """
    g = np.random.default_rng(0).standard_normal((size, size))
    q, _ = np.linalg.qr(g[:, :k])
    return q


@functools.lru_cache(maxsize=8)
def _lower_mask(size: int) -> np.ndarray:
    """(size, size) ones on and below the diagonal, zeros above."""
    return np.tri(size)


def _lower_inverse(L: np.ndarray) -> np.ndarray:
    r"""The inverse of a lower triangular matrix, exactly lower triangular, by blocked doubling.

    .. math::

        \begin{pmatrix} L_{11} & 0 \\ L_{21} & L_{22} \end{pmatrix}^{-1} =
        \begin{pmatrix} L_{11}^{-1} & 0 \\ -L_{22}^{-1} L_{21} L_{11}^{-1} & L_{22}^{-1}
        \end{pmatrix}

    L is padded with an identity block to :math:`b\,2^m \ge k` rows (b = :data:`_TRI_LEAF`); the
    :math:`2^m` diagonal blocks are inverted by one batched ``np.linalg.inv`` (upper parts
    zeroed, so the structure is exact), then neighbouring blocks are merged by the formula
    above, all pairs of a level in one batched product: a few numpy calls whatever k is.

    Parameters
    ----------
    L : (k, k) lower triangular with a non-zero diagonal.

    Returns
    -------
    (k, k) lower triangular.
    """
    k = L.shape[0]
    size = min(_TRI_LEAF, k)
    count = 1 << max(0, math.ceil(math.log2(k / size)))  # diagonal blocks, a power of 2
    K = size * count
    if K == k:
        full = L
    else:
        full = np.eye(K)
        full[:k, :k] = L
    out = np.zeros((K, K))
    b = np.arange(count)
    leaves = full.reshape(count, size, count, size)[b, :, b, :]  # (count, size, size)
    out.reshape(count, size, count, size)[b, :, b, :] = np.linalg.inv(leaves) * _lower_mask(size)
    m = size
    while m < K:
        pairs = K // (2 * m)
        p = np.arange(pairs)
        L6 = full.reshape(pairs, 2, m, pairs, 2, m)
        O6 = out.reshape(pairs, 2, m, pairs, 2, m)
        # every pair of neighbouring (m, m) blocks at once: (pairs, m, m) stacks
        O6[p, 1, :, p, 0, :] = -(O6[p, 1, :, p, 1, :] @ (L6[p, 1, :, p, 0, :] @ O6[p, 0, :, p, 0, :]))
        m *= 2
    return out[:k, :k] if K != k else out


def _cholesky_qr(a: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    r"""One Cholesky-QR step :math:`A = \tilde Q R`, or None when it is not accurate enough.

    :math:`G = A^\top A = L L^\top`, :math:`\log R_{ii} = \log L_{ii}`,
    :math:`\tilde Q = A L^{-\top}` (see the module docstring for why the errors of order
    :math:`\varepsilon\kappa^2` in :math:`\tilde Q` and :math:`R_{ii}` do not accumulate).

    Parameters
    ----------
    a : (S, k) the frame after the step, :math:`J_t Q_{t-1}`.

    Returns
    -------
    (q, logs) with q (S, k) and logs (k,) = log R_ii, or None if G is not numerically positive
    definite or :math:`\lVert A\rVert_F\lVert L^{-1}\rVert_F` > :data:`CHOLESKY_MAX_KAPPA`.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        g = a.T @ a
        try:
            L = np.linalg.cholesky(g)
        except np.linalg.LinAlgError:
            return None
        diag = np.diagonal(L)
        inv = _lower_inverse(L)
        # NaN or inf anywhere (a zero or non-finite L_ii) fails this test too
        kappa = math.sqrt(float(np.trace(g)) * float(np.vdot(inv, inv)))
        if not kappa <= CHOLESKY_MAX_KAPPA:
            return None
        # A L^{-T} with L^{-T} upper triangular: one split saves a quarter of the product
        k = a.shape[1]
        h = k // 2
        x = inv.T
        q = np.empty_like(a)
        np.matmul(a[:, :h], x[:h, :h], out=q[:, :h])
        np.matmul(a[:, :h], x[:h, h:], out=q[:, h:])
        q[:, h:] += a[:, h:] @ x[h:, h:]
        return q, np.log(diag)


def _int(value: object, what: str, low: int, high: int, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= int(value) <= high:
        raise GradproofError(f"{what} must be an integer in [{low}, {high}], got {value!r}; {hint}")
    return int(value)


def _boundaries(T: int, warmup: int, blocks: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Checkpoints and block ends (steps after the warm-up), and the absolute steps (1..T) where a
    QR group must end: both of those, and the end of the warm-up."""
    span = T - warmup
    points = np.unique(np.linspace(0, span, RUNNING_POINTS + 1).round().astype(np.int64)[1:])
    points = points[points > 0]  # (span < 100 rounds the first to 0 steps: no estimate yet, and with
    # warmup = 0 a step 0 that is never reached would have stopped every later checkpoint)
    block_ends = np.linspace(0, span, blocks + 1).round().astype(np.int64)[1:]
    points = np.union1d(points, block_ends)  # block ends are checkpoints too
    ends = points + warmup
    if warmup:
        ends = np.union1d(ends, [warmup])
    return points, block_ends, ends


def lyapunov_spectrum(
    cell: Cell | str,
    params: Mapping[str, np.ndarray],
    xs: object,
    s0: object | None = None,
    *,
    k: int | None = None,
    warmup: int = 0,
) -> LyapunovSpectrum:
    r"""The k largest Lyapunov exponents of the recurrence along the trajectory driven by ``xs``.

    .. math::

        J_t Q_{t-1} = Q_t R_t,\qquad
        \lambda_i = \frac{1}{T - T_0}\sum_{t > T_0}\log\lvert(R_t)_{ii}\rvert

    (Benettin et al. 1980), sorted descending, natural log per step, on the derived step
    Jacobians :math:`J_t = \partial s_t/\partial s_{t-1}` (:func:`numeric.step_jacobians`).

    Parameters
    ----------
    cell : a cell or its name (any cell :func:`numeric.unroll` takes; a user's torch model via
        ``cell, params = numeric.from_torch(numeric.load_torch_model(path))``).
    params : name -> array, as from :func:`numeric.init`.
    xs : (T, m) inputs.
    s0 : (S,) initial state, zeros by default.
    k : number of exponents, 1 ≤ k ≤ S; all S when None.
    warmup : steps T_0 < T whose QR factors are not counted (the frame aligns with the
        Lyapunov vectors and the state leaves its initial condition meanwhile).

    Returns
    -------
    LyapunovSpectrum
        ``.exponents`` (k,), ``.stderr`` (k,), running estimates ``.steps`` (P,) and
        ``.running`` (P, k).

    Examples
    --------
    >>> import numpy as np
    >>> from gradproof.numeric import init, random_sequence
    >>> p = init("rnn-identity", hidden=3, inputs=1, seed=0)
    >>> p["W_h"] = np.diag([0.5, -2.0, 1.0])
    >>> lyapunov_spectrum("rnn-identity", p, np.zeros((600, 1)), warmup=100).exponents.round(6).tolist()
    [0.693147, 0.0, -0.693147]
    """
    c, p, xs_a, s0_a, n, m = prepare(cell, params, xs, s0)
    if np.iscomplexobj(xs_a) or np.iscomplexobj(s0_a) or any(np.iscomplexobj(v) for v in p.values()):
        raise GradproofError("lyapunov_spectrum needs real parameters, inputs and s0; got complex numbers")
    T = xs_a.shape[0]
    S = c.state_size(n)
    k = S if k is None else _int(k, "k", 1, S, f"the state has S = {S} components; pass k=None for all")
    warmup = _int(warmup, "warmup", 0, T - 1, f"at least one of the T = {T} steps must be counted")
    blocks = min(BLOCKS, T - warmup)
    points, block_ends, ends = _boundaries(T, warmup, blocks)

    compiled = compile_cell(c)
    form = _diag_times_parameter(step_jacobian(c).result)
    if form is not None:
        # diag(v) W (the vanilla RNN): evaluate only v; applying J_t is a row scaling of W Q.
        vector_fn = compile_expression(form[0])
        W = p[form[1]]
        chunk = _CHUNK_DIAG

        def jacobians(env: dict) -> list[Callable[[np.ndarray], np.ndarray]]:
            v = vector_fn(env)
            return [lambda a, d=d: d[:, None] * (W @ a) for d in v]

    else:
        chunk = max(1, min(1024, _CHUNK_FLOATS // (S * S)))

        def jacobians(env: dict) -> list[Callable[[np.ndarray], np.ndarray]]:
            J = compiled.step_jacobian(env)
            return [lambda a, j=j: j @ a for j in J]

    q = initial_frame(S, k)
    tally = _Tally(points, block_ends, blocks, (k,))
    group = 1  # steps in the next QR group (adapted)
    cholesky = k >= CHOLESKY_MIN_K
    backoff = 0  # Householder steps left before Cholesky-QR is tried again
    pending = 0  # steps applied to q since the last QR
    s_prev = s0_a
    t = 0  # steps done
    end_iter = iter(ends.tolist())
    next_end = next(end_iter)
    try:
        with np.errstate(divide="ignore", over="raise", invalid="ignore"):
            for a in range(0, T, chunk):
                b = min(a + chunk, T)
                states = _run(compiled, p, xs_a[a:b], s_prev, n, m, first=a + 1)
                s_prev = states[-1]
                env = compiled.environment(p, n, m)
                compiled.step(env, states[:-1], xs_a[a:b])
                for apply in jacobians(env):
                    q = apply(q)
                    t += 1
                    pending += 1
                    if pending < group and t != next_end:
                        continue
                    logs = None
                    if cholesky and pending <= _CHOLESKY_MAX_PENDING:
                        if backoff:
                            backoff -= 1
                        elif (done_qr := _cholesky_qr(q)) is not None:
                            q, logs = done_qr
                        elif pending == 1:
                            backoff = CHOLESKY_BACKOFF
                    if logs is None:
                        q, r = np.linalg.qr(q)
                        logs = np.log(np.abs(np.diagonal(r)))
                    group = _next_group(logs, pending, k)
                    if cholesky and not backoff and group <= _CHOLESKY_MAX_GROUP:
                        group = 1  # a Cholesky-QR step is cheaper than a short Householder group
                    pending = 0
                    if t > warmup:
                        tally.total += logs
                    if t == next_end:
                        tally.checkpoint(t - warmup)
                        next_end = next(end_iter, -1)
    except FloatingPointError as exc:
        raise GradproofError(
            f"the Jacobian product of {c.name} overflowed near step {t} ({exc}); the weights are too "
            "large for float64 even over a few steps: scale them down"
        ) from None
    return _spectrum(tally.total, tally.block_sums, tally.running, points, block_ends, T=T, warmup=warmup,
                     blocks=blocks)


def _next_group(logs: np.ndarray, pending: int, k: int) -> int:
    """The length of the next QR group, after a group of ``pending`` steps whose QR gave ``logs`` =
    log|R_ii| (k,): the spread of |R_ii| kept below :data:`MAX_GROUP_SPREAD`; with one exponent only
    overflow matters; one step while a factor is zero."""
    finite = np.isfinite(logs)
    if finite.all() and k > 1:
        per_step = (logs.max() - logs.min()) / pending
        return int(min(MAX_GROUP, max(1, math.log(MAX_GROUP_SPREAD) // max(per_step, 1e-12))))
    if not finite.all():
        return 1
    return int(min(MAX_GROUP, max(1, 300 // max(abs(logs[0]) / pending, 1e-12))))


class _Tally:
    """Σ log|R_ii| since the warm-up (``total``, shape ``(k,)`` or ``(B, k)`` for B settings), and its
    running means at ``points`` and sums over the blocks ending at ``block_ends`` (steps counted
    after the warm-up), recorded by :meth:`checkpoint`; :func:`_spectrum` reads them."""

    def __init__(self, points: np.ndarray, block_ends: np.ndarray, blocks: int, shape: tuple[int, ...]) -> None:
        self.points, self.block_ends, self.blocks = points, block_ends, blocks
        *lead, k = shape
        self.total = np.zeros(shape)
        self.block_sums = np.zeros((*lead, blocks, k))
        self.running = np.empty((*lead, points.size, k))
        self._block_start = np.zeros(shape)
        self._point = self._block = 0

    def checkpoint(self, done: int) -> None:
        """Record the checkpoints that fall at ``done`` counted steps."""
        while self._point < self.points.size and self.points[self._point] == done:
            self.running[..., self._point, :] = self.total / done
            self._point += 1
        while self._block < self.blocks and self.block_ends[self._block] == done:
            self.block_sums[..., self._block, :] = self.total - self._block_start
            self._block_start = self.total.copy()
            self._block += 1


def _spectrum(total: np.ndarray, block_sums: np.ndarray, running: np.ndarray, points: np.ndarray,
              block_ends: np.ndarray, *, T: int, warmup: int, blocks: int) -> LyapunovSpectrum:  # fmt: skip
    """The result of one run from its sums: ``total`` (k,), ``block_sums`` (blocks, k), ``running`` (P, k)."""
    span = T - warmup
    exponents = total / span
    order = np.argsort(-exponents, kind="stable")
    lengths = np.diff(np.concatenate([[0], block_ends]))
    with np.errstate(invalid="ignore"):
        means = block_sums / lengths[:, None]
        stderr = (
            means.std(axis=0, ddof=1) / math.sqrt(blocks) if blocks > 1 else np.full(total.shape[0], np.nan)
        )
    return LyapunovSpectrum(
        exponents=exponents[order],
        stderr=stderr[order],
        steps=points,
        running=running[:, order],
        T=T,
        warmup=warmup,
        blocks=blocks,
    )
