"""Counterexamples to the eigenvalue reading of the vanishing-gradient theorem (docs/math.md §1).

The lecture states the condition with the largest *eigenvalue*; the theorem needs the largest
*singular value*. ρ(W) ≤ σ_max(W), with equality only for normal W, so ρ < 1 does not keep the
products of step Jacobians small:

- :func:`transient_growth`: a non-normal W with ρ = 0.9 whose powers grow by a factor ~19 before
  they decay (linear unit, so this is the exact gradient).
- :func:`saturation_growth`: with saturating units the factors are D_t W with D_t = D(σ'(z_t));
  a unit stuck in saturation (a 0 on the diagonal) removes a stabilising feedback and
  ‖(DW)^k‖ explodes although ρ(W) ≈ 0.707.
- :func:`eigen_vs_singular`: ρ, σ_max and normality of any matrix.

Everything is computed here; nothing is pasted from docs/math.md (the tests compare with it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..derive.errors import GradproofError
from ._readonly import frozen
from .regime import check_square_matrix

__all__ = [
    "TransientGrowth",
    "SaturationGrowth",
    "EigenVsSingular",
    "transient_growth",
    "saturation_growth",
    "eigen_vs_singular",
    "TRANSIENT_W",
    "SATURATION_W",
    "SATURATION_D",
]


TRANSIENT_W = frozen([[0.9, 5.0], [0.0, 0.9]])
"""The non-normal matrix of docs/math.md §1, imprecision 1: ρ = 0.9, σ_max ≈ 5.16."""

SATURATION_W = frozen([[-1.0, 1.0], [-2.0, 1.5]])
"""docs/math.md §1: ρ ≈ 0.707, ‖W‖₂ ≈ 2.87."""

SATURATION_D = frozen(np.diag([0.0, 1.0]))
"""Unit 1 saturated (σ' = 0), unit 2 linear (σ' = 1, as tanh at 0)."""


def _rho(W: np.ndarray) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(W))))


def _smax(W: np.ndarray) -> float:
    return float(np.linalg.norm(W, 2))


# --------------------------------------------------------------------------- eigen vs singular


@dataclass(frozen=True)
class EigenVsSingular:
    """ρ(W) against σ_max(W).

    Attributes
    ----------
    spectral_radius : float
        ρ(W) = max |λ_i|.
    sigma_max : float
        ‖W‖₂.
    is_normal : bool
        ‖WWᵀ − WᵀW‖_F ≤ tol · ‖W‖₂² (then ρ = σ_max).
    commutator_norm : float
        ‖WWᵀ − WᵀW‖_F.
    """

    spectral_radius: float
    sigma_max: float
    is_normal: bool
    commutator_norm: float

    @property
    def gap(self) -> float:
        """σ_max − ρ ≥ 0; zero for a normal matrix."""
        return self.sigma_max - self.spectral_radius


def eigen_vs_singular(W: Any, *, tol: float = 1e-12) -> EigenVsSingular:
    """Compare the spectral radius and the largest singular value of ``W``.

    Parameters
    ----------
    W : array_like, (n, n)
    tol : float, keyword-only
        Relative tolerance of the normality test ‖WWᵀ − WᵀW‖_F ≤ tol ‖W‖₂².

    Examples
    --------
    >>> r = eigen_vs_singular([[0.9, 5.0], [0.0, 0.9]])
    >>> round(r.spectral_radius, 6), round(r.sigma_max, 3), r.is_normal
    (0.9, 5.157, False)
    """
    W = check_square_matrix(W)
    if not (np.isfinite(tol) and tol >= 0):
        raise GradproofError(f"expected tol >= 0 and finite, got {tol!r}")
    smax = _smax(W)
    comm = float(np.linalg.norm(W @ W.T - W.T @ W))
    return EigenVsSingular(
        spectral_radius=_rho(W),
        sigma_max=smax,
        is_normal=bool(comm <= tol * max(smax**2, np.finfo(np.float64).tiny)),
        commutator_norm=comm,
    )


# --------------------------------------------------------------------------- transient growth


@dataclass(frozen=True)
class TransientGrowth:
    """‖W^k‖₂ for a matrix whose spectral radius is below 1.

    Attributes
    ----------
    W : (n, n)
    spectral_radius, sigma_max : float
    ks : tuple of int
    norms : (len(ks),)
        ‖W^k‖₂ for each k in ``ks``.
    """

    W: np.ndarray
    spectral_radius: float
    sigma_max: float
    ks: tuple[int, ...]
    norms: np.ndarray

    def norm(self, k: int) -> float:
        """‖W^k‖₂ for one of the computed ``ks``."""
        try:
            return float(self.norms[self.ks.index(k)])
        except ValueError:
            raise GradproofError(f"k = {k} was not computed; available: {self.ks}") from None

    @property
    def peak(self) -> tuple[int, float]:
        """(k, ‖W^k‖₂) at the largest norm among ``ks``."""
        i = int(np.argmax(self.norms))
        return self.ks[i], float(self.norms[i])


def _check_ks(ks: Sequence[int]) -> tuple[int, ...]:
    try:
        out = tuple(int(k) for k in ks)
    except (TypeError, ValueError):
        raise GradproofError(f"expected ks as a sequence of integers >= 0, got {ks!r}") from None
    if not out or any(k < 0 for k in out) or any(int(k) != k for k in ks):
        raise GradproofError(f"expected ks as a non-empty sequence of integers >= 0, got {ks!r}")
    return out


def transient_growth(
    W: Any = None, ks: Sequence[int] = (1, 2, 5, 10, 20, 50, 100)
) -> TransientGrowth:
    """Norms of the powers of a non-normal matrix (docs/math.md §1, imprecision 1).

    For a linear RNN the gradient across k steps is exactly W^k, so ρ(W) < 1 only promises decay
    *eventually*: ‖W^k‖₂ may first grow far above 1.

    Parameters
    ----------
    W : array_like, (n, n), optional
        Default [[0.9, 5], [0, 0.9]].
    ks : sequence of int
        Powers to evaluate (by ``np.linalg.matrix_power``).

    Examples
    --------
    >>> r = transient_growth(ks=(1, 10))
    >>> [round(float(v), 1) for v in r.norms]
    [5.2, 19.4]
    """
    W = TRANSIENT_W if W is None else check_square_matrix(W)
    ks_t = _check_ks(ks)
    norms = [_smax(np.linalg.matrix_power(W, k)) for k in ks_t]
    return TransientGrowth(
        W=frozen(W), spectral_radius=_rho(W), sigma_max=_smax(W), ks=ks_t, norms=frozen(norms)
    )


# --------------------------------------------------------------------------- saturation growth


@dataclass(frozen=True)
class SaturationGrowth:
    """‖(D W)^k‖₂ for a fixed saturation pattern D = D(σ'(z)).

    Attributes
    ----------
    W, D : (n, n)
    k : int
    spectral_radius : float
        ρ(W).
    sigma_max : float
        ‖W‖₂.
    spectral_radius_DW : float
        ρ(DW), which governs the long-run growth of (DW)^k.
    norm : float
        ‖(DW)^k‖₂.
    norms : (k,)
        ‖(DW)^j‖₂ for j = 1 .. k.
    """

    W: np.ndarray
    D: np.ndarray
    k: int
    spectral_radius: float
    sigma_max: float
    spectral_radius_DW: float
    norm: float
    norms: np.ndarray


def saturation_growth(W: Any = None, D: Any = None, k: int = 20) -> SaturationGrowth:
    """Products of saturated step Jacobians D W with ρ(W) < 1 (docs/math.md §1, imprecision 1).

    Parameters
    ----------
    W : array_like, (n, n), optional
        Default [[-1, 1], [-2, 1.5]] (ρ ≈ 0.707).
    D : array_like, (n, n), optional
        Diagonal matrix of σ' values. Default diag(0, 1): unit 1 saturated.
    k : int
        Number of steps; the product (DW)^k is the step-Jacobian chain of k steps that all
        share the saturation pattern D.

    Notes
    -----
    With D = diag(0, 1), DW = [[0, 0], [-2, 1.5]] has rank one and eigenvalue 1.5, so
    (DW)^k = 1.5^{k-1} DW and ‖(DW)^k‖₂ = 1.5^{k-1} ‖DW‖₂ = 2.5 · 1.5^{k-1}. W itself has the
    complex eigenvalues 0.25 ± 0.66i of modulus √0.5, made by the coupling of the two units;
    with unit 1 saturated, unit 2 only sees its own weight W_22 = 1.5 > 1.

    Examples
    --------
    >>> r = saturation_growth()
    >>> round(r.norm)
    5542
    """
    W = SATURATION_W if W is None else check_square_matrix(W)
    D = SATURATION_D if D is None else check_square_matrix(D, name="D")
    if D.shape != W.shape:
        raise GradproofError(f"expected D of shape {W.shape} like W, got {D.shape}")
    if np.any(D != np.diag(np.diag(D))):
        raise GradproofError("expected D diagonal (D = diag(sigma'(z))), got off-diagonal entries")
    if isinstance(k, bool) or int(k) != k or k < 1:
        raise GradproofError(f"expected k as an integer >= 1, got {k!r}")
    k = int(k)
    DW = D @ W
    norms = []
    P = np.eye(W.shape[0])
    for _ in range(k):
        P = DW @ P
        norms.append(_smax(P))
    return SaturationGrowth(
        W=frozen(W),
        D=frozen(D),
        k=k,
        spectral_radius=_rho(W),
        sigma_max=_smax(W),
        spectral_radius_DW=_rho(DW),
        norm=_smax(np.linalg.matrix_power(DW, k)),
        norms=frozen(norms),
    )
