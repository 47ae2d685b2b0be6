r"""Gate-bias and weight-norm sweeps of the largest Lyapunov exponent, and a phase diagram.

Why gates help, as a measurement (Gers et al. 2000 for the forget-gate bias; Jozefowicz, Zaremba &
Sutskever 2015 for initialising it at 1 or more; Pascanu et al. 2013 for the RNN's threshold 1/γ):

* :func:`gate_sweep` — an LSTM's or a GRU's largest Lyapunov exponent λ₁ and gradient profile as
  the bias of the gate that *keeps* the state goes from −2 to 6;
* :func:`norm_sweep` — the vanilla RNN's λ₁ and profile as σ_max(W_h) goes through 1/γ;
* :func:`phase_diagram` — λ₁ over a grid (σ_max of the recurrent matrices, keep bias).

The λ₁ of all the settings of a sweep or a grid are computed together, as one batch
(:func:`numeric.lyapunov_batch`), equal to the one-setting computation to the last bit.

The keep bias β. The gate that keeps the state is the LSTM's forget gate f (c_t = f ⊙ c_{t-1} +
…, bias ``b_f``), PyTorch's GRU update gate z (h_t = z ⊙ h_{t-1} + (1-z) ⊙ n, bias ``b_z``), and
*one minus* the lecture's update gate u (h_t = (1-u) ⊙ h_{t-1} + u ⊙ h̃, docs/math.md §4: u = 0
keeps the state), so a keep bias β is ``b_f = β``, ``b_z = β`` and ``b_u = −β``. With β large the
kept fraction σ(β) → 1 and λ₁ → 0 from below: the gradient neither vanishes nor explodes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..derive.cells import cell as _cell
from ..derive.errors import GradproofError
from ._readonly import frozen
from .gradients import _trajectory_profile
from .initialization import init, random_sequence
from .lyapunov_batch import lyapunov_batch, unroll_batch
from .threads import single_blas_thread
from .processes import die_with_parent

__all__ = [
    "KEEP_GATES",
    "GateSweep",
    "PhaseDiagram",
    "keep_bias_parameters",
    "gate_sweep",
    "norm_sweep",
    "phase_diagram",
]

#: cell name -> (bias parameter of the gate that keeps the state, sign: bias = sign · β).
KEEP_GATES: dict[str, tuple[str, float]] = {
    "lstm": ("b_f", 1.0),
    "gru": ("b_u", -1.0),  # lecture form: u = 0 keeps the state
    "gru-torch": ("b_z", 1.0),  # PyTorch form: z = 1 keeps the state
}

DEFAULT_BIASES = tuple(float(b) for b in np.linspace(-2.0, 6.0, 17))
DEFAULT_NORMS = tuple(float(s) for s in np.linspace(0.5, 3.0, 11))


@dataclass(frozen=True)
class GateSweep:
    r"""λ₁ and the gradient profile of one cell along one swept setting.

    Attributes
    ----------
    cell : the cell's name.
    swept : what was swept: ``"keep bias"`` or ``"sigma_max(W_h)"``.
    parameter : the parameter changed (``b_f``, ``b_u``, ``b_z`` or ``W_h``).
    values : (V,) the swept values (keep bias β, or σ_max).
    parameter_values : (V,) the parameter's actual value (the bias ``sign·β``; σ_max for W_h).
    largest : (V,) λ₁ per step (natural log).
    stderr : (V,) its standard error.
    log_spectral : (V, T) :math:`\log\lVert\partial s_T/\partial s_k\rVert_2`, k = 0 … T-1.
    hidden, inputs, steps, warmup, seed : the sizes and the seed of the runs.
    """

    cell: str
    swept: str
    parameter: str
    values: np.ndarray
    parameter_values: np.ndarray
    largest: np.ndarray
    stderr: np.ndarray
    log_spectral: np.ndarray
    hidden: int
    inputs: int
    steps: int
    warmup: int
    seed: int

    def __post_init__(self) -> None:
        for name in ("values", "parameter_values", "largest", "stderr", "log_spectral"):
            object.__setattr__(self, name, frozen(getattr(self, name)))

    def crossing(self) -> float | None:
        """The swept value where λ₁ first reaches ``-0.01`` from below (linear interpolation), or None."""
        return _crossing(self.values, self.largest, -0.01)

    def to_json(self) -> dict:
        """Every number, for ``results.json``."""
        return {
            "cell": self.cell, "swept": self.swept, "parameter": self.parameter,
            "values": self.values.tolist(), "parameter_values": self.parameter_values.tolist(),
            "largest": self.largest.tolist(), "stderr": self.stderr.tolist(),
            "final_log_spectral": self.log_spectral[:, 0].tolist() if self.log_spectral.shape[1] else None,
            "hidden": self.hidden, "inputs": self.inputs, "steps": self.steps,
            "warmup": self.warmup, "seed": self.seed,
        }  # fmt: skip


@dataclass(frozen=True)
class PhaseDiagram:
    """λ₁ of a gated cell over (σ_max of its recurrent matrices, keep bias β).

    Attributes
    ----------
    cell : the cell's name.
    norms : (A,) σ_max of every recurrent matrix.
    biases : (B,) keep bias β.
    largest : (B, A) λ₁ per step; row j is ``biases[j]``, column i ``norms[i]``.
    hidden, inputs, steps, warmup, seed : the sizes and the seed.
    """

    cell: str
    norms: np.ndarray
    biases: np.ndarray
    largest: np.ndarray
    hidden: int
    inputs: int
    steps: int
    warmup: int
    seed: int

    def __post_init__(self) -> None:
        for name in ("norms", "biases", "largest"):
            object.__setattr__(self, name, frozen(getattr(self, name)))

    def to_json(self) -> dict:
        """Every number, for ``results.json``."""
        return {
            "cell": self.cell, "norms": self.norms.tolist(), "biases": self.biases.tolist(),
            "largest": self.largest.tolist(), "hidden": self.hidden, "inputs": self.inputs,
            "steps": self.steps, "warmup": self.warmup, "seed": self.seed,
        }  # fmt: skip


def _crossing(x: np.ndarray, y: np.ndarray, level: float) -> float | None:
    above = np.nonzero(y >= level)[0]
    if above.size == 0:
        return None
    j = int(above[0])
    if j == 0:
        return float(x[0])
    x0, x1, y0, y1 = x[j - 1], x[j], y[j - 1], y[j]
    return float(x0 + (level - y0) * (x1 - x0) / (y1 - y0))


def _values(values: Sequence[float], what: str) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64)
    if a.ndim != 1 or a.size < 1 or not np.all(np.isfinite(a)):
        raise GradproofError(f"{what} must be a non-empty 1-D sequence of finite numbers, got {values!r}")
    return a


def keep_bias_parameters(cell: str, beta: float, *, hidden: int, inputs: int, seed: int,
                         spectral_norm: float | None = None) -> dict[str, np.ndarray]:  # fmt: skip
    """Parameters of ``cell`` (PyTorch-style init) with the keep gate's bias set to ``sign·β``.

    Parameters
    ----------
    cell : ``lstm``, ``gru`` or ``gru-torch`` (see :data:`KEEP_GATES`).
    beta : the keep bias β: ``b_f = β``, ``b_z = β``, ``b_u = −β``.
    hidden, inputs, seed, spectral_norm : as for :func:`numeric.init`.
    """
    name = _cell(cell).name
    if name not in KEEP_GATES:
        raise GradproofError(
            f"a keep-gate sweep needs a gated cell; got {name!r}, choose one of: {', '.join(KEEP_GATES)}"
        )
    param, sign = KEEP_GATES[name]
    p = init(name, hidden=hidden, inputs=inputs, seed=seed, spectral_norm=spectral_norm)
    p[param] = np.full(hidden, sign * float(beta))
    return p


@single_blas_thread
def _points(cell: str, settings: list[dict], xs: np.ndarray, warmup: int, profile: bool) -> list[tuple]:
    """(λ₁, its standard error, the log spectral profile or None) of every setting; the λ₁ of all
    settings computed together (:func:`numeric.lyapunov_batch`, equal to one
    ``lyapunov_spectrum(..., k=1)`` per setting to the last bit)."""
    spectra = lyapunov_batch(cell, settings, xs, k=1, warmup=warmup)
    if not profile:
        return [(spec.largest, float(spec.stderr[0]), None) for spec in spectra]
    # the profiles from forward passes run together too (the same states as gradient_profile's own)
    trajectories = unroll_batch(cell, settings, xs)
    return [
        (spec.largest, float(spec.stderr[0]), _trajectory_profile(traj).log_spectral)
        for spec, traj in zip(spectra, trajectories)
    ]


def gate_sweep(
    cell: str,
    *,
    biases: Sequence[float] = DEFAULT_BIASES,
    hidden: int = 16,
    inputs: int = 4,
    steps: int = 400,
    warmup: int = 50,
    seed: int = 0,
    profile: bool = True,
) -> GateSweep:
    r"""λ₁ and :math:`\log\lVert\partial s_T/\partial s_k\rVert_2` of a gated cell as its keep bias β varies.

    Parameters
    ----------
    cell : ``lstm``, ``gru`` (lecture: ``b_u = −β``) or ``gru-torch`` (``b_z = β``).
    biases : the keep biases β, default −2 … 6 in steps of 0.5.
    hidden, inputs, steps, warmup, seed : sizes; every run uses the same weights and the same
        input sequence ``xs: (steps, inputs)`` of N(0, 1) entries, only the bias changes.
    profile : also compute the gradient profiles (``log_spectral`` is (V, 0) without them).
    """
    betas = _values(biases, "biases")
    name = _cell(cell).name
    xs = random_sequence(steps, inputs, seed=seed + 1)
    settings = [keep_bias_parameters(name, b, hidden=hidden, inputs=inputs, seed=seed) for b in betas]
    rows = _points(name, settings, xs, warmup, profile)
    param, sign = KEEP_GATES[name]
    return GateSweep(
        cell=name, swept="keep bias", parameter=param, values=betas, parameter_values=sign * betas,
        largest=np.array([r[0] for r in rows]), stderr=np.array([r[1] for r in rows]),
        log_spectral=np.array([r[2] for r in rows]) if profile else np.empty((betas.size, 0)), hidden=hidden,
        inputs=inputs, steps=steps, warmup=warmup, seed=seed,
    )  # fmt: skip


def norm_sweep(
    cell: str = "rnn-tanh",
    *,
    norms: Sequence[float] = DEFAULT_NORMS,
    hidden: int = 16,
    inputs: int = 4,
    steps: int = 400,
    warmup: int = 50,
    seed: int = 0,
) -> GateSweep:
    r"""λ₁ and the gradient profile of a vanilla RNN as σ_max(W_h) goes through 1/γ.

    Parameters
    ----------
    cell : an RNN cell name (``rnn-tanh`` by default: γ = 1).
    norms : the values of σ_max(W_h), default 0.5 … 3 in steps of 0.25.
    hidden, inputs, steps, warmup, seed : as for :func:`gate_sweep`.
    """
    sig = _values(norms, "norms")
    if np.any(sig <= 0):
        raise GradproofError(f"norms must be positive (they are σ_max(W_h)), got {norms!r}")
    c = _cell(cell)
    if c.kind != "rnn":
        raise GradproofError(f"norm_sweep sweeps σ_max(W_h) of a vanilla RNN; got {c.name!r}, use e.g. 'rnn-tanh'")
    xs = random_sequence(steps, inputs, seed=seed + 1)
    settings = [init(c, hidden=hidden, inputs=inputs, seed=seed, spectral_norm=s) for s in sig]
    rows = _points(c.name, settings, xs, warmup, True)
    return GateSweep(
        cell=c.name, swept="sigma_max(W_h)", parameter="W_h", values=sig, parameter_values=sig,
        largest=np.array([r[0] for r in rows]), stderr=np.array([r[1] for r in rows]),
        log_spectral=np.array([r[2] for r in rows]), hidden=hidden, inputs=inputs, steps=steps,
        warmup=warmup, seed=seed,
    )  # fmt: skip


def _phase_points(task: tuple[str, tuple[tuple[float, float], ...], int, int, int, int, int]) -> list[float]:
    """λ₁ of a batch of grid points ``(norm, beta)``, computed together (top level, so worker
    processes can import it)."""
    name, grid, hidden, inputs, steps, warmup, seed = task
    settings = [keep_bias_parameters(name, beta, hidden=hidden, inputs=inputs, seed=seed, spectral_norm=norm)
                for norm, beta in grid]  # fmt: skip
    xs = random_sequence(steps, inputs, seed=seed + 1)
    return [spec.largest for spec in lyapunov_batch(name, settings, xs, k=1, warmup=warmup)]


def phase_diagram(
    cell: str = "lstm",
    *,
    norms: Sequence[float] = (0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 4.0),
    biases: Sequence[float] = (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0),
    hidden: int = 8,
    inputs: int = 4,
    steps: int = 300,
    warmup: int = 50,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> PhaseDiagram:
    r"""λ₁ of a gated cell over a grid of (σ_max of every recurrent matrix, keep bias β).

    The grid points are advanced together (:func:`numeric.lyapunov_batch`: one stacked step for
    all of them instead of one step per point, every λ₁ equal to the one-point computation to the
    last bit). With ``workers=1`` the whole grid is one batch in this process; otherwise it is cut
    into ``2·workers`` batches that run in a ``ProcessPoolExecutor`` with
    ``min(workers or os.cpu_count(), points)`` processes (worth it only for large grids or long
    runs). A tqdm progress bar on stderr stays quiet when stderr is not a terminal (or with
    ``progress=False``). The numbers do not depend on ``workers``.

    Returns
    -------
    PhaseDiagram with ``largest`` (len(biases), len(norms)).
    """
    from tqdm import tqdm

    sig = _values(norms, "norms")
    betas = _values(biases, "biases")
    if np.any(sig <= 0):
        raise GradproofError(f"norms must be positive (they are σ_max of the recurrent matrices), got {norms!r}")
    name = _cell(cell).name
    if name not in KEEP_GATES:
        raise GradproofError(f"a phase diagram needs a gated cell; got {name!r}, choose one of: {', '.join(KEEP_GATES)}")
    cores = os.cpu_count() or 1
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise GradproofError(f"workers must be a positive integer or None (all {cores} cores), got {workers!r}")
    grid = [(float(s), float(b)) for b in betas for s in sig]
    n_workers = min(workers or cores, cores, len(grid))
    n_batches = 1 if n_workers == 1 else min(len(grid), 2 * n_workers)
    size = -(-len(grid) // n_batches)
    tasks = [(name, tuple(grid[i : i + size]), hidden, inputs, steps, warmup, seed) for i in range(0, len(grid), size)]
    bar = tqdm(total=len(grid), desc=f"phase diagram ({name})", unit="point", disable=None if progress else True,
               leave=False)  # fmt: skip
    values: list[float] = []
    with bar:
        if n_workers == 1:
            for task in tasks:
                values += _phase_points(task)
                bar.update(len(task[1]))
        else:
            with ProcessPoolExecutor(max_workers=n_workers, initializer=die_with_parent,
                                     initargs=(os.getpid(),)) as pool:  # no orphans if we are killed
                for task, v in zip(tasks, pool.map(_phase_points, tasks)):
                    values += v
                    bar.update(len(task[1]))
    return PhaseDiagram(
        cell=name, norms=sig, biases=betas, largest=np.array(values).reshape(betas.size, sig.size),
        hidden=hidden, inputs=inputs, steps=steps, warmup=warmup, seed=seed,
    )  # fmt: skip
