"""The Pascanu et al. (2013) theorem evaluated on a concrete recurrent matrix.

For a vanilla RNN, h_t = σ(z_t) with z_t = W h_{t-1} + W_x x_t + b, the step Jacobian is
D(σ'(z_t)) W (docs/math.md §1), so by submultiplicativity

.. math::

    \\left\\lVert \\frac{\\partial h_i}{\\partial h_j} \\right\\rVert_2
    \\le \\prod_{t=j+1}^{i} \\lVert D(\\sigma'(z_t)) \\rVert_2 \\lVert W \\rVert_2
    \\le (\\gamma\\, \\sigma_{\\max}(W))^{i-j} = \\eta^{i-j},

with γ = sup |σ'|. η < 1 is *sufficient* for vanishing gradients, σ_max(W) > 1/γ is *necessary*
for exploding ones. For a linear unit the spectral radius ρ(W) decides instead.

:func:`regime` classifies one matrix; :func:`bound_profile` evaluates both bounds (the data-free
η^{T-k} and the data-dependent product of the factors' norms) along a trajectory, in log space;
:func:`model_regime` classifies every recurrent block of an RNN, LSTM or GRU and bounds the
gated direct path (LSTM cell path ∏ D(f_t), GRU D(z_t)).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import sympy

from ..derive.errors import GradproofError
from ._readonly import frozen
from .activations import numpy_pair

if TYPE_CHECKING:  # pragma: no cover - typing only
    from ..derive.activations import Activation
    from ..derive.cells import Cell

__all__ = [
    "Regime",
    "BoundProfile",
    "regime",
    "bound_profile",
    "DirectPath",
    "ModelRegime",
    "model_regime",
    "resolve_activation",
    "check_square_matrix",
    "VANISHING",
    "EXPLODING",
    "BOUNDARY",
]

VANISHING = "vanishing guaranteed"
EXPLODING = "exploding possible"
BOUNDARY = "boundary"

# σ_max and ρ come out of an SVD / eigen-solver; "equal to the threshold" means equal up to the
# rounding of those solvers, not bit-for-bit.
_RTOL_SINGULAR = 8 * np.finfo(np.float64).eps
_RTOL_EIGEN = 1e-12


# --------------------------------------------------------------------------- validation


def resolve_activation(activation: str | Activation) -> Activation:
    """Return an :class:`derive.activations.Activation` for a spec or pass one through.

    Parameters
    ----------
    activation : str or Activation
        A built-in name (``"tanh"``, ``"sigmoid"``, ...), an expression in ``x`` (``"tanh(3*x)"``),
        or an already built activation.
    """
    if isinstance(activation, str):
        from ..derive.activations import activation as make_activation

        return make_activation(activation)
    from ..derive.activations import Activation

    if isinstance(activation, Activation):
        return activation
    raise GradproofError(
        f"expected an activation name, an expression in x, or a derive.Activation, got "
        f"{type(activation).__name__}; pass e.g. 'tanh' or 'tanh(3*x)'"
    )


def check_square_matrix(W: Any, *, name: str = "W") -> np.ndarray:
    """Validate a recurrent matrix and return it as a float64 array.

    Parameters
    ----------
    W : array_like, (n, n)
        Real, finite, non-empty, square.

    Raises
    ------
    GradproofError
        With a one-line message naming what was expected and what came.
    """
    try:
        arr = np.asarray(W)
    except Exception as exc:  # noqa: BLE001 - anything numpy cannot read is bad input
        raise GradproofError(f"expected {name} as a numeric array, could not read it: {exc}") from None
    if arr.dtype.kind not in "fiu":
        raise GradproofError(
            f"expected {name} as a real numeric array, got dtype {arr.dtype}; "
            "convert it to float64 first"
        )
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise GradproofError(
            f"expected {name} as a square 2-D matrix, got shape {tuple(arr.shape)}; "
            "pass the (n, n) recurrent weight matrix"
        )
    if arr.size == 0:
        raise GradproofError(f"expected a non-empty square matrix {name}, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=True)
    if not np.all(np.isfinite(arr)):
        bad = int(np.count_nonzero(~np.isfinite(arr)))
        raise GradproofError(
            f"expected {name} with finite entries, got {bad} NaN/inf entries; "
            "check the weights for divergence"
        )
    arr.setflags(write=False)
    return arr


def _gamma_of(act: Activation) -> tuple[sympy.Expr, float]:
    g = sympy.sympify(act.gamma)  # safe: exact SymPy value
    if g.is_finite is False or g.has(sympy.nan, sympy.zoo, sympy.oo):
        raise GradproofError(
            f"the derivative of activation {act.name!r} is unbounded (gamma = {g}); "
            "the Pascanu bound needs sup|sigma'| < oo, use a Lipschitz activation"
        )
    value = float(g)
    if not math.isfinite(value) or value < 0:
        raise GradproofError(f"expected gamma = sup|sigma'| finite and >= 0, got {g}")
    return g, value


def _is_linear(act: Activation) -> bool:
    """True when σ' is a constant, i.e. the unit is affine (identity is the usual case)."""
    try:
        deriv = sympy.sympify(act.derivative)  # safe: SymPy expression
    except (AttributeError, sympy.SympifyError):
        return False
    return not deriv.free_symbols


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _as_cell(spec: Any) -> Cell | None:
    """The cell when ``spec`` is a cell or a cell's name (built-in or shipped), else None."""
    from ..derive.cells import CELL_NAMES, Cell, cell as make_cell
    from ..derive.define import SHIPPED_CELL_NAMES

    if isinstance(spec, Cell):
        return spec
    if isinstance(spec, str) and spec.strip().lower() in CELL_NAMES + SHIPPED_CELL_NAMES:
        return make_cell(spec.strip().lower())
    return None


def _is_defined(c: Cell) -> bool:
    return c.kind == "defined"


# --------------------------------------------------------------------------- regime


@dataclass(frozen=True)
class Regime:
    """The verdict of the Pascanu et al. (2013) theorem for one activation and one matrix.

    Attributes
    ----------
    gamma : float
        γ = sup |σ'| (float of ``gamma_exact``).
    gamma_exact : str
        γ as derived by SymPy, e.g. ``"1/4"``.
    sigma_max : float
        Largest singular value σ_max(W) = ‖W‖₂.
    spectral_radius : float
        ρ(W) = max |λ_i(W)|.
    eta : float
        η = γ σ_max, the bound on every step Jacobian's spectral norm.
    verdict : str
        ``"vanishing guaranteed"`` (η < 1), ``"exploding possible"`` (σ_max > 1/γ) or
        ``"boundary"`` (σ_max = 1/γ up to rounding).
    explanation : str
        One sentence saying why.
    activation : str
        The activation's name.
    shape : tuple of int
        (n, n).
    linear_verdict : str or None
        Only for a linear (constant-derivative) unit: ``"vanishing"`` (γρ < 1),
        ``"exploding"`` (γρ > 1) or ``"marginal"``.
    """

    gamma: float
    gamma_exact: str
    sigma_max: float
    spectral_radius: float
    eta: float
    verdict: str
    explanation: str
    activation: str
    shape: tuple[int, int]
    linear_verdict: str | None = None

    @property
    def regime(self) -> str:
        """Alias of :attr:`verdict` (the JSON key)."""
        return self.verdict

    @property
    def verdicts_disagree(self) -> bool:
        """True when the linear (ρ) verdict and the general (σ_max) verdict point different ways."""
        if self.linear_verdict is None:
            return False
        return (self.verdict == VANISHING) != (self.linear_verdict == "vanishing")

    def _repr_markdown_(self) -> str:
        """Jupyter: the verdict, the numbers it rests on and why."""
        n, m = self.shape
        lines = [
            f"**{self.verdict}** ({self.activation}, W of shape {n}×{m})",
            "",
            "| γ = sup\\|σ'\\| | σ_max(W) | ρ(W) | η = γ σ_max |",
            "|---:|---:|---:|---:|",
            f"| {self.gamma_exact} | {self.sigma_max:.4g} | {self.spectral_radius:.4g} | {self.eta:.4g} |",
            "",
            self.explanation,
        ]
        if self.linear_verdict is not None:
            lines += ["", f"linear unit (γρ): {self.linear_verdict}"]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict: gamma, sigma_max, spectral_radius, eta, regime, and extras."""
        out: dict[str, Any] = {
            "gamma": self.gamma,
            "sigma_max": self.sigma_max,
            "spectral_radius": self.spectral_radius,
            "eta": self.eta,
            "regime": self.verdict,
            "gamma_exact": self.gamma_exact,
            "activation": self.activation,
            "shape": list(self.shape),
            "explanation": self.explanation,
        }
        if self.linear_verdict is not None:
            out["linear_verdict"] = self.linear_verdict
        return out


def _explain(
    gamma_exact: str, sigma_max: float, rho: float, eta: float, verdict: str,
    linear_verdict: str | None, gamma: float,
) -> str:
    eta_s = f"eta = gamma * sigma_max = {gamma_exact} * {_fmt(sigma_max)} = {_fmt(eta)}"
    if verdict == VANISHING:
        head = (
            f"{eta_s} < 1, so every step Jacobian has norm <= eta and ||dh_i/dh_j|| <= eta^(i-j) "
            "shrinks geometrically whatever the data"
        )
    elif verdict == EXPLODING:
        thr = "inf" if gamma == 0 else _fmt(1 / gamma)
        head = (
            f"{eta_s} > 1, i.e. sigma_max > 1/gamma = {thr}, the necessary condition for exploding "
            "gradients, so they can explode (the theorem does not say they must)"
        )
    else:
        head = f"{eta_s} sits on the threshold 1, where the theorem decides nothing"
    if linear_verdict is None:
        return head + "."
    lin = (
        f"spectral radius rho(W) = {_fmt(rho)}"
        if gamma == 1.0
        else f"spectral radius of the Jacobian gamma * rho(W) = {_fmt(gamma * rho)}"
    )
    tail = {
        "vanishing": " < 1 decides: W^k -> 0, the gradient vanishes in the long run",
        "exploding": " > 1 decides: ||W^k|| grows without bound, the gradient explodes",
        "marginal": ", on the threshold 1, is marginal: no exponential growth or decay",
    }[linear_verdict]
    tail = f"for this linear unit the {lin}{tail}"
    if (verdict == VANISHING) != (linear_verdict == "vanishing"):
        tail += (
            "; the linear verdict and the general verdict disagree because rho < sigma_max "
            "(W is not normal), so norms may grow transiently before they decay"
            if linear_verdict == "vanishing"
            else "; the two verdicts disagree"
        )
    return f"{head}; {tail}."


def regime(activation: str | Activation | Cell, W: Any) -> Any:
    """Classify a recurrent matrix by the Pascanu et al. (2013) theorem (docs/math.md §1).

    Parameters
    ----------
    activation : str or Activation or Cell
        σ, by name, expression in ``x``, or object; γ = sup|σ'| is derived by SymPy. A cell
        (``derive.define_cell(...)``, or a cell name such as ``"mgu"`` or ``"lstm"``) instead
        classifies that cell: then ``W`` is its parameter dict.
    W : array_like, (n, n), or mapping str → ndarray
        The recurrent weight matrix W_h; for a cell, its parameters (as from ``numeric.init``).

    Returns
    -------
    Regime; for a defined cell a :class:`numeric.cell_regime.CellRegime` (the derived step bound
    η, every γ, the per-block verdicts), for a built-in cell a :class:`ModelRegime`.

    Examples
    --------
    >>> import numpy as np
    >>> r = regime("tanh", 0.5 * np.eye(3))
    >>> r.verdict, r.eta
    ('vanishing guaranteed', 0.5)
    """
    c = _as_cell(activation)
    if c is not None:
        return model_regime(c, W)
    act = resolve_activation(activation)
    W = check_square_matrix(W)
    g_exact, g = _gamma_of(act)
    sigma_max = float(np.linalg.norm(W, 2))
    rho = float(np.max(np.abs(np.linalg.eigvals(W))))
    eta = g * sigma_max
    if math.isclose(eta, 1.0, rel_tol=_RTOL_SINGULAR, abs_tol=0.0):
        verdict = BOUNDARY
    elif eta < 1.0:
        verdict = VANISHING
    else:
        verdict = EXPLODING
    linear_verdict = None
    if _is_linear(act):
        lin_rho = g * rho
        if math.isclose(lin_rho, 1.0, rel_tol=_RTOL_EIGEN, abs_tol=0.0):
            linear_verdict = "marginal"
        elif lin_rho < 1.0:
            linear_verdict = "vanishing"
        else:
            linear_verdict = "exploding"
    gamma_exact = str(g_exact)
    return Regime(
        gamma=g,
        gamma_exact=gamma_exact,
        sigma_max=sigma_max,
        spectral_radius=rho,
        eta=eta,
        verdict=verdict,
        explanation=_explain(gamma_exact, sigma_max, rho, eta, verdict, linear_verdict, g),
        activation=str(act.name),
        shape=(int(W.shape[0]), int(W.shape[1])),
        linear_verdict=linear_verdict,
    )


# --------------------------------------------------------------------------- bound profile


@dataclass(frozen=True)
class BoundProfile:
    """Upper bounds on log ‖∂h_T/∂h_k‖₂ along one trajectory, indexed like a gradient profile.

    Entry k (k = 0 .. T-1) belongs to the span T - k (the product of T - k step Jacobians
    J_T ⋯ J_{k+1}, J_t = D(σ'(z_t)) W).

    Attributes
    ----------
    log_eta_bound : (T,)
        (T - k) log η — the data-free bound of the theorem.
    log_data_bound : (T,)
        Σ_{t=k+1..T} (log max|σ'(z_t)| + log ‖W‖₂) — the submultiplicative bound with the actual
        saturation of the trajectory; never above ``log_eta_bound``. ``-inf`` when a factor is 0.
    log_measured : (T,) or None
        The measured log ‖∂h_T/∂h_k‖₂, attached with :meth:`with_measured`.
    eta, gamma, sigma_max : float
    activation : str
    """

    log_eta_bound: np.ndarray
    log_data_bound: np.ndarray
    eta: float
    gamma: float
    sigma_max: float
    activation: str
    log_measured: np.ndarray | None = field(default=None)

    @property
    def T(self) -> int:
        """Number of steps."""
        return int(self.log_eta_bound.shape[0])

    @property
    def spans(self) -> np.ndarray:
        """(T,) the span T - k of each entry."""
        return np.arange(self.T, 0, -1)

    def with_measured(self, log_spectral: Any) -> BoundProfile:
        """Return a copy with the measured log-norms attached.

        Parameters
        ----------
        log_spectral : array_like, (T,)
            log ‖∂h_T/∂h_k‖₂ for k = 0 .. T-1 (natural log).
        """
        arr = np.asarray(log_spectral, dtype=np.float64)
        if arr.shape != (self.T,):
            raise GradproofError(
                f"expected measured log-norms of shape ({self.T},) (one per span), got "
                f"{arr.shape}; entry k must be log||dh_T/dh_k|| for k = 0..T-1"
            )
        return replace(self, log_measured=frozen(arr))


def bound_profile(
    activation: str | Activation | Cell, W: Any, pre_activations: Any, s0: Any = None
) -> BoundProfile:
    """Evaluate the η bound and the data-dependent bound along a trajectory, in log space.

    Parameters
    ----------
    activation : str or Activation or Cell
        σ of the vanilla RNN. A cell (``derive.define_cell(...)``, or the name of a shipped or
        built-in cell such as ``"indrnn"``) instead bounds that cell's state Jacobians with its
        derived per-step bound (:func:`numeric.cell_regime.cell_bound_profile`); then the next
        arguments are ``params``, ``xs`` (T, inputs) and optionally ``s0`` (S,).
    W : array_like, (n, n)
        Recurrent matrix W_h.
    pre_activations : array_like, (T, n)
        z_t = W h_{t-1} + W_x x_t + b for t = 1 .. T (row t-1 is z_t).

    Returns
    -------
    BoundProfile

    Notes
    -----
    .. math::

        \\log \\lVert J_T \\cdots J_{k+1} \\rVert_2
        \\le \\sum_{t=k+1}^{T} \\bigl(\\log \\max_i |\\sigma'(z_{t,i})| + \\log \\lVert W \\rVert_2\\bigr)
        \\le (T-k) \\log \\eta .

    Sums of logs never under- or overflow, so horizons of 10^5 steps are fine.
    """
    c = _as_cell(activation)
    if c is not None:
        from .cell_regime import cell_bound_profile

        return cell_bound_profile(c, W, pre_activations, s0)
    if s0 is not None:
        raise GradproofError("s0 goes with a cell (bound_profile(cell, params, xs, s0)), not with an activation")
    act = resolve_activation(activation)
    W = check_square_matrix(W)
    z = np.asarray(pre_activations)
    n = W.shape[0]
    if z.dtype.kind not in "fiu" or z.ndim != 2 or z.shape[1] != n or z.shape[0] == 0:
        raise GradproofError(
            f"expected pre_activations of shape (T, {n}) with T >= 1 (real), got shape "
            f"{tuple(z.shape)} dtype {z.dtype}; pass z_t = W h_(t-1) + W_x x_t + b row by row"
        )
    z = z.astype(np.float64)
    if not np.all(np.isfinite(z)):
        raise GradproofError("expected finite pre_activations, got NaN/inf; the trajectory diverged")
    _, g = _gamma_of(act)
    sigma_max = float(np.linalg.norm(W, 2))
    eta = g * sigma_max
    T = z.shape[0]
    spans = np.arange(T, 0, -1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_eta = math.log(eta) if eta > 0 else -math.inf
        log_w = math.log(sigma_max) if sigma_max > 0 else -math.inf
        dmax = np.max(np.abs(np.asarray(numpy_pair(act)[1](z), dtype=np.float64)), axis=1)
        log_d = np.log(dmax)
    per_step = log_d + log_w  # (T,), entry t-1 <-> factor J_t
    # entry k = sum over rows k .. T-1 (a reversed cumulative sum)
    log_data = np.cumsum(per_step[::-1])[::-1]
    log_eta_bound = spans * log_eta if math.isfinite(log_eta) else np.full(T, -math.inf)
    return BoundProfile(
        log_eta_bound=frozen(log_eta_bound),
        log_data_bound=frozen(log_data),
        eta=eta,
        gamma=g,
        sigma_max=sigma_max,
        activation=str(act.name),
    )


# --------------------------------------------------------------------------- whole models


@dataclass(frozen=True)
class DirectPath:
    """The gated shortcut of an LSTM or GRU: a diagonal factor D(r_t) per step, 0 < r_t < 1.

    LSTM: ∂c_t/∂c_{t-1} = D(f_t) (docs/math.md §3); PyTorch GRU: the term D(z_t) of ∂h'/∂h; lecture
    GRU: D(1 − u_t) (docs/math.md §4). Along this path alone k steps multiply to a diagonal matrix of
    norm ≤ (max r)^k ≤ 1: it never explodes. The full Jacobian adds the other terms, so the path
    alone is a truncation.

    Attributes
    ----------
    path : str
        Which product, e.g. ``"prod D(f_t)"``.
    gate : str
        The retain gate r (``"f"``, ``"z"``, ``"1-u"``).
    retain_at_rest : (float, float)
        min and max over units of r at zero input and zero state (r = σ(±b)).
    retain_upper : float
        max over units of r at zero input for any state with |h_j| ≤ 1 (h = o ⊙ tanh c for the
        LSTM, a convex mix of tanh values for the GRU from h_0 = 0): σ(±b_i + ‖row_i W‖₁).
    half_life_steps : float
        ln 2 / (−ln retain_upper): at zero input the path at least halves every this many steps.
    verdict : str
    explanation : str
    """

    path: str
    gate: str
    retain_at_rest: tuple[float, float]
    retain_upper: float
    half_life_steps: float
    verdict: str
    explanation: str

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields."""
        return {
            "path": self.path,
            "gate": self.gate,
            "retain_at_rest": list(self.retain_at_rest),
            "retain_upper": self.retain_upper,
            "half_life_steps": self.half_life_steps if math.isfinite(self.half_life_steps) else None,
            "verdict": self.verdict,
            "explanation": self.explanation,
        }


@dataclass(frozen=True)
class ModelRegime:
    """Pascanu verdicts for every recurrent block of a cell, and its direct path.

    Attributes
    ----------
    model : str
        Cell name (``rnn-tanh``, ``lstm``, ``gru-torch``, ...).
    kind : str
        ``rnn``, ``lstm`` or ``gru``.
    hidden : int
    main : str
        The block playing W_h's role (``W_h``; LSTM ``W_c``; GRU ``W_n``/``W_h``), whose verdict
        is the model's headline.
    blocks : mapping str → Regime
        One verdict per recurrent matrix with its gate's activation (σ for gates, tanh for the
        candidate).
    direct_path : DirectPath or None
        For gated cells.
    note : str
    """

    model: str
    kind: str
    hidden: int
    main: str
    blocks: Mapping[str, Regime]
    direct_path: DirectPath | None
    note: str

    @property
    def main_regime(self) -> Regime:
        """The verdict of :attr:`main`."""
        return self.blocks[self.main]

    def to_json(self) -> dict[str, Any]:
        """The main block's keys (gamma, sigma_max, spectral_radius, eta, regime, ...) at the top,
        then ``model``, ``main_block``, ``blocks``, ``direct_path`` and ``note``."""
        out = dict(self.main_regime.to_json())
        out.update(
            model=self.model,
            kind=self.kind,
            hidden=self.hidden,
            main_block=self.main,
            blocks={k: r.to_json() for k, r in self.blocks.items()},
            note=self.note,
        )
        if self.direct_path is not None:
            out["direct_path"] = self.direct_path.to_json()
        return out


# name -> (main block, ((block, activation), ...), (retain gate, W, b, sign, path))
_GATED: dict[str, tuple[str, tuple[tuple[str, str], ...], tuple[str, str, str, float, str]]] = {
    "lstm": (
        "W_c",
        (("W_f", "sigmoid"), ("W_i", "sigmoid"), ("W_o", "sigmoid"), ("W_c", "tanh")),
        ("f", "W_f", "b_f", 1.0, "cell path prod D(f_t)"),
    ),
    "gru-torch": (
        "W_n",
        (("W_r", "sigmoid"), ("W_z", "sigmoid"), ("W_n", "tanh")),
        ("z", "W_z", "b_z", 1.0, "direct path prod D(z_t)"),
    ),
    "gru": (
        "W_h",
        (("W_u", "sigmoid"), ("W_r", "sigmoid"), ("W_h", "tanh")),
        ("1-u", "W_u", "b_u", -1.0, "direct path prod D(1 - u_t)"),
    ),
}


def _vector(params: Mapping[str, Any], name: str, n: int) -> np.ndarray:
    if name not in params:
        raise GradproofError(f"expected parameter {name!r} of shape ({n},), it is missing")
    v = np.asarray(params[name], dtype=np.float64)
    if v.shape != (n,) or not np.all(np.isfinite(v)):
        raise GradproofError(f"expected {name} finite of shape ({n},), got shape {v.shape}")
    return v


def _direct_path(params: Mapping[str, Any], spec: tuple[str, str, str, float, str], n: int) -> DirectPath:
    gate, w_name, b_name, sign, path = spec
    W = check_square_matrix(params[w_name], name=w_name)
    bias = sign * _vector(params, b_name, n)
    row_l1 = np.sum(np.abs(W), axis=1)
    # r = σ(a) with a = ±(W h + b); |h_j| <= 1 gives a_i <= ±b_i + ||row_i W||_1
    a_max = float(np.max(bias + row_l1))
    sig = lambda a: 0.5 * (1.0 + math.tanh(0.5 * a))  # noqa: E731 - σ without overflow
    at_rest = (sig(float(np.min(bias))), sig(float(np.max(bias))))
    upper = sig(a_max)
    neg_log_upper = float(np.logaddexp(0.0, -a_max))  # -ln σ(a) = ln(1 + e^{-a}), exact for big a
    half_life = math.log(2.0) / neg_log_upper if neg_log_upper > 0 else math.inf
    verdict = "cannot explode"
    explanation = (
        f"along the {path} alone k steps give a diagonal product of norm <= (max {gate})^k <= 1, "
        f"so this path never explodes; at zero input and |h| <= 1 the gate {gate} stays <= "
        f"{upper:.6g} (at rest {at_rest[0]:.4g}..{at_rest[1]:.4g}), so the path at least halves "
        f"every {half_life:.4g} steps; the full Jacobian also has the h-path terms (docs/math.md "
        "sections 3-4), so the path alone is a truncation."
    )
    return DirectPath(
        path=path,
        gate=gate,
        retain_at_rest=at_rest,
        retain_upper=upper,
        half_life_steps=half_life,
        verdict=verdict,
        explanation=explanation,
    )


def model_regime(
    cell: str | Cell, params: Mapping[str, Any], *, activation: str | Activation | None = None
) -> ModelRegime:
    """Pascanu verdicts for every recurrent matrix of a cell with given parameters.

    Parameters
    ----------
    cell : str or Cell
        ``rnn-*``, ``lstm``, ``gru`` or ``gru-torch``; a defined cell (or a shipped one by name,
        ``lstm-peephole lstm-coupled mgu indrnn``) gives a :class:`numeric.cell_regime.CellRegime`.
    params : mapping str → ndarray
        The cell's parameters (CONTRACT names): ``W_h`` (n, n) for the RNN; ``W_f W_i W_o W_c``
        and ``b_f`` for the LSTM; ``W_r W_z W_n`` and ``b_z`` (gru-torch); ``W_u W_r W_h`` and
        ``b_u`` (gru).
    activation : str or Activation, keyword-only, optional
        RNN only: overrides the cell's σ. Gated cells have fixed activations, so passing one is
        an error.

    Returns
    -------
    ModelRegime
    """
    from ..derive.cells import cell as make_cell

    c = make_cell(cell) if isinstance(cell, str) else cell
    if not isinstance(params, Mapping):
        raise GradproofError(f"expected params as a mapping name -> array, got {type(params).__name__}")
    if _is_defined(c):
        if activation is not None:
            raise GradproofError(f"the cell {c.name} names its activations in its equations; drop the activation argument")
        from .cell_regime import cell_regime

        return cell_regime(c, params)  # type: ignore[return-value]
    if c.kind == "rnn":
        if "W_h" not in params:
            raise GradproofError("expected parameter 'W_h' (n, n) for an RNN, it is missing")
        act = resolve_activation(c.activation if activation is None else activation)
        r = regime(act, params["W_h"])
        return ModelRegime(
            model=c.name,
            kind=c.kind,
            hidden=r.shape[0],
            main="W_h",
            blocks=MappingProxyType({"W_h": r}),
            direct_path=None,
            note="vanilla RNN: the step Jacobian is D(sigma'(z_t)) W_h (docs/math.md section 1).",
        )
    if c.name not in _GATED:
        raise GradproofError(f"expected a cell among rnn-*, lstm, gru, gru-torch, got {c.name!r}")
    if activation is not None:
        raise GradproofError(
            f"the {c.name} cell has fixed activations (sigmoid gates, tanh candidate); drop the "
            "activation argument"
        )
    main, blocks_spec, direct = _GATED[c.name]
    blocks: dict[str, Regime] = {}
    for name, act_name in blocks_spec:
        if name not in params:
            raise GradproofError(f"expected parameter {name!r} (n, n) for the {c.name} cell, it is missing")
        blocks[name] = regime(act_name, check_square_matrix(params[name], name=name))
    shapes = {r.shape for r in blocks.values()}
    if len(shapes) != 1:
        raise GradproofError(f"expected all recurrent blocks of one shape, got {sorted(shapes)}")
    n = blocks[main].shape[0]
    return ModelRegime(
        model=c.name,
        kind=c.kind,
        hidden=n,
        main=main,
        blocks=MappingProxyType(blocks),
        direct_path=_direct_path(params, direct, n),
        note=(
            f"each block's verdict bounds that gate's recurrent term D(.) W alone; the {c.name} "
            f"step Jacobian sums such terms (docs/math.md sections 3-4) and its direct path carries "
            f"the long-range gradient; {main} (candidate, tanh) is the headline block."
        ),
    )
