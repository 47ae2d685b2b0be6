r"""Streaming, log-space norms of every Jacobian product ∂s_T/∂s_k of a recurrence.

Conventions (docs/math.md, top and §1): numerator layout, ``J_t = ∂s_t/∂s_{t-1}`` of shape (S, S), and
the ordered product

.. math::

    P_k = \frac{\partial s_T}{\partial s_k} = J_T J_{T-1} \cdots J_{k+1},
    \qquad P_{T-1} = J_T, \qquad P_k = P_{k+1} J_{k+1}.

The profile holds :math:`\log\lVert P_k\rVert_2` and :math:`\log\lVert P_k\rVert_F` (natural
logarithms) for k = 0, …, T-1. docs/math.md §1 ("long horizons"): a product of 538 factors of norm 1/4
already underflows float64, so the products are kept as :math:`P_k = 2^{e_k} M_k` with an integer
:math:`e_k` (a Python int, exact) and :math:`\lVert M_k\rVert_F \in [1/2, 1)`. Rescaling by a
power of two is exact in binary floating point, so the renormalisation adds no rounding error at
all; the only rounding is that of the matrix products themselves.

The spectral norm of every :math:`M_k` is exact to rounding error, not estimated; see
:func:`log_norm_profile` (section *Method*) for the certificate and why it holds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from ..derive.errors import GradproofError
from .threads import single_blas_thread

__all__ = ["GradientProfile", "log_norm_profile", "log_norm_profile_rnn"]

_LN2 = math.log(2.0)
_SAFE_SQUARES = 2.0**-900  # below this, squares of entries may already be subnormal

# Kato-Temple acceptance: the certified interval [θ, θ + ‖r‖²/(θ - α)] for λ_max(M Mᵀ) must be
# shorter than this fraction of θ. 1e-14 on λ = σ² means 5e-15 on σ, i.e. a few ulps.
_CERTIFICATE_RTOL = 1e-14
# Power steps allowed per call before falling back to the dense symmetric eigensolver. A power
# step costs two matrix-vector products (O(S²)), the dense solver O(S³); measured on this
# project's 2-core machine the ratio of the two is about S/2 for 32 ≤ S ≤ 256 (60 at S = 128),
# so the budget is S // 2 steps, at most 100. Correctness never depends on these numbers.
_MAX_POWER_STEPS = 100
_GIVE_UP_AFTER = 3  # from this step on, stop early when the certificate is out of reach
# Up to this S the dense solver costs at most ~2.5 power steps (Python overhead dominates).
_DENSE_UP_TO = 16
_MIN_SHARE = 0.4  # go straight to the dense solver while λ_1 < 0.4 ‖M‖_F² at the previous step


@dataclass(frozen=True)
class GradientProfile:
    r"""Log-norms of ∂s_T/∂s_k for k = 0, …, T-1 (natural logarithms, read-only arrays).

    Parameters
    ----------
    log_spectral : (T,) float64
        Entry k is :math:`\log\lVert J_T J_{T-1}\cdots J_{k+1}\rVert_2` (largest singular value).
    log_frobenius : (T,) float64
        Entry k is :math:`\log\lVert J_T J_{T-1}\cdots J_{k+1}\rVert_F`.

    Notes
    -----
    Entries are ``-inf`` where the product is exactly zero. The arrays are copies and are made
    read-only, so a profile never changes after it is built. Always
    :math:`\lVert P\rVert_2 \le \lVert P\rVert_F \le \sqrt{S}\,\lVert P\rVert_2`.

    Examples
    --------
    >>> import numpy as np
    >>> p = GradientProfile(np.log([0.25, 0.5]), np.log([0.3, 0.6]))
    >>> p.T, p.spectral.round(3).tolist()
    (2, [0.25, 0.5])
    >>> p.log_spectral.flags.writeable
    False
    """

    log_spectral: np.ndarray
    log_frobenius: np.ndarray

    def __post_init__(self) -> None:
        arrays = {}
        for name in ("log_spectral", "log_frobenius"):
            value = np.array(getattr(self, name), dtype=np.float64, copy=True)
            if value.ndim != 1:
                raise GradproofError(
                    f"GradientProfile.{name} must be a 1-D array (T,); got shape {value.shape}. "
                    "Pass one log-norm per time step k = 0..T-1."
                )
            if np.isnan(value).any() or np.isposinf(value).any():
                raise GradproofError(
                    f"GradientProfile.{name} must hold finite log-norms or -inf (zero products); "
                    "got NaN or +inf. Check the Jacobians for non-finite entries."
                )
            value.setflags(write=False)
            arrays[name] = value
        if arrays["log_spectral"].shape != arrays["log_frobenius"].shape:
            raise GradproofError(
                "GradientProfile.log_spectral and log_frobenius must have the same length T; got "
                f"{arrays['log_spectral'].shape[0]} and {arrays['log_frobenius'].shape[0]}."
            )
        for name, value in arrays.items():
            object.__setattr__(self, name, value)

    def _repr_markdown_(self) -> str:
        """Jupyter: the horizon and the log-norms at a few k (natural logarithms)."""
        T = self.T
        ks = sorted({0, T // 4, T // 2, (3 * T) // 4, T - 1}) if T else []
        lines = [
            f"**GradientProfile** of ∂s_T/∂s_k, T = {T} (natural log of the norm of J_T ⋯ J_(k+1))",
            "",
            "| k | log ‖·‖₂ | log ‖·‖_F |",
            "|---:|---:|---:|",
        ]
        lines += [f"| {k} | {self.log_spectral[k]:.4g} | {self.log_frobenius[k]:.4g} |" for k in ks]
        return "\n".join(lines)

    @property
    def T(self) -> int:  # noqa: N802 - the horizon is called T throughout docs/math.md
        """The horizon T: the number of entries k = 0..T-1."""
        return int(self.log_spectral.shape[0])

    @property
    def spectral(self) -> np.ndarray:
        r""":math:`\lVert\partial s_T/\partial s_k\rVert_2`, (T,); 0 or inf outside float64."""
        with np.errstate(under="ignore", over="ignore"):
            return np.exp(self.log_spectral)

    @property
    def frobenius(self) -> np.ndarray:
        r""":math:`\lVert\partial s_T/\partial s_k\rVert_F`, (T,); 0 or inf outside float64."""
        with np.errstate(under="ignore", over="ignore"):
            return np.exp(self.log_frobenius)


# --------------------------------------------------------------------------------------------
# The exact top eigenvalue of the Gram matrix M Mᵀ
# --------------------------------------------------------------------------------------------


def _gram_top(m: np.ndarray) -> float:
    """λ_max(M Mᵀ) by a symmetric eigensolver (LAPACK ?syevd via numpy), backward stable."""
    try:
        return float(np.linalg.eigvalsh(m @ m.T)[-1])
    except np.linalg.LinAlgError:
        # ?syevd can fail to converge on heavily clustered spectra (seen with MKL's batched
        # eigh on near-rank-one Gram matrices in benchmarks/); the SVD is slower but robust.
        top = float(np.linalg.svd(m, compute_uv=False)[0])
        return top * top


def _top_eigenvalue(
    m: np.ndarray, fro2: float, u: np.ndarray | None, share: float = 1.0
) -> tuple[float, np.ndarray]:
    r"""Return (λ_max(M Mᵀ), warm start for the next call); the value is certified or dense.

    ``m: (S, S)``, ``fro2 = ‖M‖_F²``, ``u: (S,)`` unit vector or None, ``share``: λ_1/‖M‖_F² of
    the previous product (a hint for speed only). See :func:`log_norm_profile`, section
    *Method*, for the certificate.
    """
    size = m.shape[0]
    if size <= _DENSE_UP_TO or share < _MIN_SHARE:
        # The separation test needs λ_1 > ‖M‖_F²/2; the previous product was far from that, and
        # one step rarely changes the share much, so power steps would be wasted.
        return _gram_top(m), (np.empty(0) if u is None else u)
    budget = min(size // 2, _MAX_POWER_STEPS)
    if u is None or u.shape[0] != size:
        # Start from the largest column: it has a component along the top left singular
        # vector unless that vector is orthogonal to it, in which case we merely fall back.
        col = m[:, int(np.argmax(np.einsum("ij,ij->j", m, m)))]
        u = col / math.sqrt(float(col @ col))
    mt = m.T
    rr_previous = math.inf
    for step in range(budget):
        w = mt @ u  # Mᵀu
        theta = float(w @ w)  # Rayleigh quotient uᵀ M Mᵀ u ≤ λ_1
        z = m @ w  # M Mᵀ u
        r = z - theta * u
        rr = float(r @ r)
        alpha = fro2 - theta  # ≥ Σ_{i≥2} σ_i² ≥ λ_2 because θ ≤ σ_1²
        gap = theta - alpha
        target = _CERTIFICATE_RTOL * theta * gap
        if gap > 0.0 and rr <= target:
            return theta, u  # Kato-Temple: θ ≤ λ_1 ≤ θ + rr/gap ≤ θ (1 + rtol)
        # Speed only, never correctness: stop iterating when the certificate is out of reach.
        if step + 1 >= _GIVE_UP_AFTER:
            if gap <= 0.0 or rr >= rr_previous:
                break
            # ‖r‖² shrinks by about (σ_2/σ_1)⁴ per step; predict the steps still needed.
            if step + 1 + math.log(target / rr) / math.log(rr / rr_previous) > budget:
                break
        rr_previous = rr
        nz = math.sqrt(float(z @ z))
        if nz == 0.0:
            break
        u = z / nz
    return _gram_top(m), u


# --------------------------------------------------------------------------------------------
# The streaming core
# --------------------------------------------------------------------------------------------


def _profile(products: Iterator[np.ndarray], T: int) -> GradientProfile:  # noqa: N803
    """Consume M_{T-1}, M_{T-2}, …, M_0 (unnormalised factors) and build the profile.

    ``products`` yields the product array for k = T-1, T-2, … in turn; it is rescaled IN PLACE by
    a power of two before the generator resumes, so the generator must form the next product
    from the very array object it yielded (both producers below do).
    """
    log_spec = np.empty(T)
    log_fro = np.empty(T)
    exponent = 0  # P_k = 2**exponent * M_k, exactly
    u: np.ndarray | None = None
    share = 1.0  # λ_1 / ‖M‖_F² of the previous product
    zero_from: int | None = None
    count = 0
    for count, m in enumerate(products, start=1):
        k = T - count
        if zero_from is not None:
            continue
        fro2 = float(np.vdot(m, m))
        if not _SAFE_SQUARES < fro2 < math.inf:
            # ‖M‖_F² overflowed or underflowed (or lost digits to subnormals) although the
            # entries may be fine: pre-scale by the largest entry, exactly, and square again.
            amax = float(np.max(np.abs(m)))
            if amax == 0.0:
                zero_from = k
                continue
            _, e = math.frexp(amax)
            np.ldexp(m, -e, out=m)
            exponent += e
            fro2 = float(np.vdot(m, m))
        _, e = math.frexp(math.sqrt(fro2))  # sqrt(fro2) = f 2**e, f in [1/2, 1)
        np.ldexp(m, -e, out=m)  # exact rescaling
        fro2 = math.ldexp(fro2, -2 * e)
        exponent += e
        lam, u = _top_eigenvalue(m, fro2, u, share)
        share = lam / fro2
        base = exponent * _LN2
        log_fro[k] = base + 0.5 * math.log(fro2)
        log_spec[k] = base + 0.5 * math.log(lam)
    if count != T:
        raise GradproofError(
            f"expected exactly T = {T} Jacobians J_T, J_(T-1), …, J_1; got {count}. "
            "Pass T equal to the number of Jacobians the iterable yields."
        )
    if zero_from is not None:
        log_spec[: zero_from + 1] = -np.inf
        log_fro[: zero_from + 1] = -np.inf
    return GradientProfile(log_spec, log_fro)


_ERRSTATE = {"over": "raise", "invalid": "raise", "divide": "raise", "under": "ignore"}


def _overflow_error(exc: FloatingPointError) -> GradproofError:
    return GradproofError(
        f"floating-point failure while multiplying the Jacobians ({exc}). A single factor is so "
        "large that M J overflows float64 although M is renormalised every step; divide the "
        "Jacobians by a power of two c and add T·log(c) to the log-norms."
    )


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise GradproofError(f"{name} must be an integer ≥ {minimum}; got {value!r}.")
    return int(value)


@single_blas_thread
def log_norm_profile(
    reversed_jacobians: Iterable[np.ndarray], T: int, *, size: int
) -> GradientProfile:  # noqa: N803
    r"""Log spectral and Frobenius norms of every product ∂s_T/∂s_k, streaming, in log space.

    .. math::

        \text{entry } k = \log\bigl\lVert J_T J_{T-1}\cdots J_{k+1}\bigr\rVert,
        \qquad k = 0, \dots, T-1,

    with :math:`J_t = \partial s_t/\partial s_{t-1}` in numerator layout (docs/math.md §1).

    Parameters
    ----------
    reversed_jacobians : iterable of (size, size) float arrays
        :math:`J_T, J_{T-1}, \dots, J_1` in this order (latest step first), e.g.
        ``reversed(jacobians)`` for a ``(T, S, S)`` array whose entry t-1 is ∂s_t/∂s_{t-1}, or a
        generator. They are consumed one at a time and never stored; exactly T are read, and one
        more is requested to make sure the iterable is exhausted.
    T : int
        The horizon, T ≥ 1.
    size : int
        The state size S (keyword-only).

    Returns
    -------
    GradientProfile
        ``log_spectral[k]`` and ``log_frobenius[k]`` for k = 0..T-1; ``-inf`` where the product
        is exactly zero.

    Raises
    ------
    GradproofError
        A Jacobian of the wrong shape, with non-finite entries, or a count other than T.

    Notes
    -----
    **Log space.** :math:`P_k = 2^{e_k} M_k` with an exact integer :math:`e_k` and
    :math:`\lVert M_k\rVert_F\in[\tfrac12, 1)`; rescaling by powers of two is exact, so T = 10⁵
    steps of a map with :math:`\lVert J\rVert \approx 0.5` give finite log-norms near
    :math:`-6.9\cdot10^4`. Memory is O(S²) besides the two (T,) outputs; time is one S×S matrix
    product per step plus the norm below.

    **Method (the spectral norm is exact, not estimated).** :math:`\lVert M\rVert_2^2 =
    \lambda_1`, the largest eigenvalue of the symmetric positive semi-definite :math:`G = M M^\top`
    with eigenvalues :math:`\lambda_1 \ge \lambda_2 \ge \dots \ge 0`. A power iteration on G
    (matrix-vector products with :math:`M^\top` and M, O(S²) each), warm-started from the previous
    step's vector, gives a unit u, the Rayleigh quotient :math:`\theta = \lVert M^\top u\rVert^2`
    and the residual :math:`r = G u - \theta u`. Two facts certify :math:`\lambda_1`:

    1. *Separation.* :math:`\theta \le \lambda_1` (Rayleigh), hence
       :math:`\lambda_2 \le \sum_{i\ge2}\lambda_i = \lVert M\rVert_F^2 - \lambda_1 \le
       \alpha := \lVert M\rVert_F^2 - \theta`. No eigenvalue but :math:`\lambda_1` exceeds α.
    2. *Kato-Temple bound.* Write :math:`u = \sum_i c_i v_i` in eigenvectors. Every term of
       :math:`\sum_i c_i^2 (\lambda_i - \alpha)(\lambda_i - \lambda_1)` is ≥ 0 (the i = 1 term is 0,
       the others are products of two non-positive numbers), and expanding around θ, where
       :math:`\sum_i c_i^2(\lambda_i - \theta) = 0` and :math:`\sum_i c_i^2(\lambda_i-\theta)^2 =
       \lVert r\rVert^2`, the sum equals
       :math:`\lVert r\rVert^2 - (\lambda_1-\theta)(\theta-\alpha)`.
       So if :math:`\theta > \alpha`,

       .. math::

           \theta \;\le\; \lambda_1 \;\le\; \theta + \frac{\lVert r\rVert^2}{\theta - \alpha}.

    The value θ is accepted only when this interval is shorter than :math:`10^{-14}\,\theta`, i.e.
    :math:`\lVert M\rVert_2` to 5·10⁻¹⁵ relative plus the rounding of the O(S) dot products — the
    same accuracy as ``np.linalg.norm(M, 2)``. The test cannot be fooled by a bad start vector:
    a u orthogonal to :math:`v_1` gives :math:`\theta \le \lambda_2` and then
    :math:`\alpha \ge \lambda_1 \ge \theta`, so the separation fails. Products of many Jacobians
    have one dominant singular value (Oseledets), so after a few dozen steps the certificate
    usually holds after one to three power steps. When it does not (the first steps, flat spectra
    such as a multiple of an orthogonal matrix, near-ties), the value comes from a dense
    symmetric eigensolver on G (``numpy.linalg.eigvalsh``: all eigenvalues of the tridiagonal
    reduction; with forming G, 0.86 ms against 2.8 ms for the SVD inside ``norm(M, 2)`` at
    S = 128 on this project's 2-core machine, OpenBLAS defaults). It is backward
    stable: the computed :math:`\lambda_1` is exact for :math:`G + E` with
    :math:`\lVert E\rVert \lesssim S\varepsilon\lVert G\rVert`, and forming G adds an error of the
    same order for the top eigenvalue, so :math:`\lVert M\rVert_2` is again accurate to a few
    ulps. For S ≤ 16 the dense path is always used (it costs about as much as the Python
    overhead of two power steps).
    ``scipy.linalg.eigvalsh(subset_by_index=[S-1, S-1])`` (top eigenvalue only) is not used: the
    tridiagonal reduction dominates both, and it measured 0.58 ms against numpy's 0.79 ms with
    one BLAS thread but 9.4 ms with the default two — no real win on the few dense steps.

    Floating-point: overflow, invalid operations and division by zero raise; underflow of
    entries tiny compared with the renormalised product is harmless and ignored.

    Examples
    --------
    Three steps of :math:`J = \tfrac12 I_2`: :math:`\lVert P_k\rVert_2 = 2^{-(3-k)}` and
    :math:`\lVert P_k\rVert_F = \sqrt2\, 2^{-(3-k)}`.

    >>> import numpy as np
    >>> J = 0.5 * np.eye(2)
    >>> p = log_norm_profile([J, J, J], 3, size=2)
    >>> p.spectral.round(15).tolist()
    [0.125, 0.25, 0.5]
    >>> np.allclose(p.frobenius, np.sqrt(2) * p.spectral, rtol=1e-15, atol=0)
    True
    """
    T = _check_int("T", T, 1)  # noqa: N806
    size = _check_int("size", size, 1)

    def products() -> Iterator[np.ndarray]:
        iterator = iter(reversed_jacobians)
        m: np.ndarray | None = None
        for index in range(T):
            try:
                raw = next(iterator)
            except StopIteration:
                return
            t = T - index
            jac = np.asarray(raw, dtype=np.float64)
            if jac.shape != (size, size):
                raise GradproofError(
                    f"J_{t} = ∂s_{t}/∂s_{t - 1} must have shape (size, size) = ({size}, {size}); "
                    f"got {jac.shape}. Pass size=S, the state size, and square Jacobians."
                )
            if not np.isfinite(jac).all():
                raise GradproofError(
                    f"J_{t} = ∂s_{t}/∂s_{t - 1} has non-finite entries; the profile needs finite "
                    "Jacobians. Check the forward pass for overflow."
                )
            m = jac.copy() if m is None else m @ jac
            yield m
        try:
            next(iterator)
        except StopIteration:
            return
        raise GradproofError(
            f"the iterable yields more than T = {T} Jacobians; pass T equal to their number "
            "(or slice the iterable)."
        )

    try:
        with np.errstate(**_ERRSTATE):
            return _profile(products(), T)
    except FloatingPointError as exc:
        raise _overflow_error(exc) from exc


@single_blas_thread
def log_norm_profile_rnn(d: np.ndarray, W: np.ndarray) -> GradientProfile:  # noqa: N803
    r"""The profile of a vanilla RNN, whose step Jacobians are :math:`J_t = D(d_{t-1}) W`.

    For :math:`h_t = \sigma(z_t)`, :math:`z_t = W_h h_{t-1} + W_x x_t + b` (docs/math.md §1) the step
    Jacobian is :math:`\operatorname{diag}(\sigma'(z_t))\,W_h`, so with ``d[t-1] = σ'(z_t)`` the
    chain needs only a diagonal scaling (of the columns of P) and one product per step:

    .. math::

        P_{T-1} = D(d_{T-1})\,W, \qquad
        P_k = P_{k+1} D(d_k)\, W = (P_{k+1} \odot \mathbf 1 d_k^\top)\, W.

    Same numbers as :func:`log_norm_profile` on ``J_t = d[t-1][:, None] * W`` (up to the rounding
    of the products), same method and guarantees.

    Parameters
    ----------
    d : (T, n) float array
        ``d[t-1]`` is the diagonal of :math:`D_t = \partial h_t / \partial z_t`, e.g.
        :math:`1 - h_t^2` for tanh.
    W : (n, n) float array
        The recurrent weight :math:`W_h`.

    Returns
    -------
    GradientProfile
        Entry k is the log-norm of :math:`\partial h_T/\partial h_k`, k = 0..T-1.

    Examples
    --------
    With :math:`d_t = \tfrac12\mathbf 1` and W a rotation, :math:`\lVert P_k\rVert_2 = 2^{-(T-k)}`:

    >>> import numpy as np
    >>> W = np.array([[0.0, -1.0], [1.0, 0.0]])
    >>> p = log_norm_profile_rnn(np.full((4, 2), 0.5), W)
    >>> (p.log_spectral / np.log(2)).round(12).tolist()
    [-4.0, -3.0, -2.0, -1.0]
    """
    d = np.asarray(d, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)  # noqa: N806
    if W.ndim != 2 or W.shape[0] != W.shape[1] or W.shape[0] == 0:
        raise GradproofError(
            f"W must be a square (n, n) matrix; got shape {W.shape}. Pass the recurrent weight W_h."
        )
    n = W.shape[0]
    if d.ndim != 2 or d.shape[1] != n or d.shape[0] == 0:
        raise GradproofError(
            f"d must have shape (T, n) = (T, {n}) with T ≥ 1, one row σ'(z_t) per step; got "
            f"{d.shape}. For a (n,) vector use d[None, :]."
        )
    if not (np.isfinite(d).all() and np.isfinite(W).all()):
        raise GradproofError("d and W must be finite; got NaN or inf entries.")
    T = d.shape[0]  # noqa: N806

    def products() -> Iterator[np.ndarray]:
        m = d[T - 1][:, None] * W  # P_{T-1} = J_T
        yield m
        for k in range(T - 2, -1, -1):
            m = (m * d[k]) @ W  # P_k = P_{k+1} D(d_k) W; m was rescaled in place by _profile
            yield m

    try:
        with np.errstate(**_ERRSTATE):
            return _profile(products(), T)
    except FloatingPointError as exc:
        raise _overflow_error(exc) from exc
