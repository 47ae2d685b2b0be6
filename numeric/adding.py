r"""The adding problem (Hochreiter & Schmidhuber 1997, experiment 4), trained in PyTorch.

Each input sequence ``xs: (T, 2)`` has a value channel of independent U(0, 1) numbers and a
marker channel that is 1 at two steps, one in each half of the sequence, and 0 elsewhere; the
target is the sum of the two marked values. Predicting the mean, 1, gives the mean squared error
Var(U₁ + U₂) = 2/12 ≈ 0.167 (the *baseline*): a network that cannot carry information across the
T/2 steps between a marker and the end of the sequence stays there.

A tanh RNN, an LSTM and a GRU (``torch.nn`` modules, one layer, a linear read-out of the last h),
sized to the same number of trainable parameters, are trained with Adam and norm clipping
(Pascanu et al. 2013, Algorithm 1; ``torch.nn.utils.clip_grad_norm_``), seeded. Before and after
training, the cell's gradient profile and Lyapunov spectrum (:func:`numeric.gradient_profile`,
:func:`numeric.lyapunov_spectrum`) are measured on adding-problem inputs through
:func:`numeric.from_torch`, in float64.

torch is imported when a function here runs, never when :mod:`numeric` is imported.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..derive.cells import cell as _cell
from ..derive.errors import GradproofError

__all__ = [
    "AddingConfig",
    "BASELINE_MSE",
    "SOLVED_MSE",
    "adding_batch",
    "parameter_count",
    "hidden_for_budget",
    "run_adding",
]

#: Mean squared error of always answering 1: Var(U₁ + U₂) = 2/12.
BASELINE_MSE = 2.0 / 12.0
#: A model "solves" a length when its final test MSE is below this (6% of the baseline).
SOLVED_MSE = 0.01
#: A model "fails" a length when its final test MSE stays above this fraction of the baseline.
FAILED_FRACTION = 0.5

_MODULES = {"rnn-tanh": "RNN", "lstm": "LSTM", "gru-torch": "GRU"}
_ROWS = {"rnn-tanh": 1, "lstm": 4, "gru-torch": 3}


@dataclass(frozen=True)
class AddingConfig:
    """What to train.

    Attributes
    ----------
    lengths : sequence lengths T.
    cells : ``rnn-tanh``, ``lstm``, ``gru-torch`` (the torch.nn cells).
    budget : trainable parameters per model (cell + read-out); each cell gets the hidden size
        whose count is closest to it.
    steps, batch, lr, clip : Adam steps, batch size, learning rate, clipping threshold on the
        norm of all gradients together.
    eval_every : steps between two evaluations of the test MSE (on ``test_size`` fixed sequences).
    lyapunov_steps : length of the input used for the Lyapunov spectrum.
    forget_bias : the LSTM's forget-gate bias at initialisation (b_f = bias_ih + bias_hh of the f
        chunk); 1 is the usual choice (Gers et al. 2000; Jozefowicz et al. 2015), None keeps
        PyTorch's default U(-1/√n, 1/√n).
    seed : every random draw (weights, batches, test set) derives from it.
    threads : torch's intra-op threads (None: torch's default).
    """

    lengths: tuple[int, ...] = (10, 50, 100)
    cells: tuple[str, ...] = ("rnn-tanh", "lstm", "gru-torch")
    budget: int = 1200
    steps: int = 1200
    batch: int = 64
    lr: float = 1e-2
    clip: float = 1.0
    eval_every: int = 25
    test_size: int = 500
    lyapunov_steps: int = 400
    forget_bias: float | None = 1.0
    seed: int = 0
    threads: int | None = field(default=None)

    def __post_init__(self) -> None:
        for name in ("budget", "steps", "batch", "eval_every", "test_size", "lyapunov_steps"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise GradproofError(f"{name} must be a positive integer, got {v!r}")
        if not self.lengths or any(isinstance(t, bool) or not isinstance(t, int) or t < 2 for t in self.lengths):
            raise GradproofError(f"lengths must be integers ≥ 2 (two markers), got {self.lengths!r}; e.g. 10 50 100")
        for c in self.cells:
            if _cell(c).name not in _MODULES:
                raise GradproofError(f"cell {c!r} has no torch.nn module for training; choose from {', '.join(_MODULES)}")
        for name in ("lr", "clip"):
            v = getattr(self, name)
            if not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise GradproofError(f"{name} must be a positive number, got {v!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise GradproofError(f"seed must be a non-negative integer, got {self.seed!r}")


def adding_batch(T: int, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
    """``xs: (batch, T, 2)`` and targets ``y: (batch,)`` of the adding problem.

    Channel 0 holds U(0, 1) values, channel 1 the two markers: one at a step in [0, T/2), one in
    [T/2, T). ``y`` is the sum of the two marked values.
    """
    values = rng.uniform(0.0, 1.0, size=(batch, T))
    half = T // 2
    first = rng.integers(0, half, size=batch)
    second = rng.integers(half, T, size=batch)
    markers = np.zeros((batch, T))
    rows = np.arange(batch)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    return np.stack([values, markers], axis=-1), y


def parameter_count(cell: str, hidden: int, inputs: int = 2) -> int:
    """Trainable parameters of the torch.nn module (two bias vectors) plus the read-out (n + 1)."""
    rows = _ROWS[_cell(cell).name] * hidden
    return rows * (hidden + inputs + 2) + hidden + 1


def hidden_for_budget(cell: str, budget: int, inputs: int = 2) -> int:
    """The hidden size whose :func:`parameter_count` is closest to ``budget`` (ties: smaller)."""
    best = min(range(1, 1024), key=lambda n: (abs(parameter_count(cell, n, inputs) - budget), n))
    return best


def _model(cell: str, hidden: int, seed: int, forget_bias: float | None = None) -> Any:
    import torch
    from torch import nn

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            kind = _MODULES[cell]
            kw = {"nonlinearity": "tanh"} if kind == "RNN" else {}
            self.rnn = getattr(nn, kind)(input_size=2, hidden_size=hidden, batch_first=True, **kw)
            self.out = nn.Linear(hidden, 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h, _ = self.rnn(x)
            return self.out(h[:, -1]).squeeze(-1)

    torch.manual_seed(seed)
    model = Model().float()  # trained in float32 whatever the process-wide default dtype is
    if cell == "lstm" and forget_bias is not None:
        with torch.no_grad():  # torch's gate order is (i, f, g, o): the f chunk is rows n..2n
            model.rnn.bias_ih_l0[hidden : 2 * hidden] = float(forget_bias)
            model.rnn.bias_hh_l0[hidden : 2 * hidden] = 0.0
    return model


def _dynamics(module: Any, T: int, lyapunov_steps: int, seed: int) -> dict[str, Any]:
    """Gradient profile (on one length-T sequence) and Lyapunov spectrum of the trained cell."""
    import copy

    from .convert import from_torch
    from .gradients import gradient_profile
    from .lyapunov import lyapunov_spectrum

    c, p = from_torch(copy.deepcopy(module).double())
    rng = np.random.default_rng(seed)
    xs_T, _ = adding_batch(T, 1, rng)
    prof = gradient_profile(c, p, xs_T[0])
    # a long input of the same kind: markers every T steps, so the statistics match the task
    values = rng.uniform(0.0, 1.0, size=lyapunov_steps)
    markers = np.zeros(lyapunov_steps)
    markers[:: max(1, T // 2)] = 1.0
    spec = lyapunov_spectrum(c, p, np.stack([values, markers], axis=-1), warmup=min(50, lyapunov_steps // 4))
    return {
        "log_spectral": prof.log_spectral.tolist(),
        "lyapunov": spec.to_json(),
        "largest_exponent": spec.largest,
    }


def _train_one(cell: str, T: int, hidden: int, cfg: AddingConfig, seed: int,
               tick: Callable[[], None]) -> dict[str, Any]:  # fmt: skip
    import torch

    model = _model(cell, hidden, seed, cfg.forget_bias)
    n_params = sum(int(p.numel()) for p in model.parameters())
    before = _dynamics(model.rnn, T, cfg.lyapunov_steps, seed + 7)
    rng = np.random.default_rng(seed + 1)
    test_x, test_y = adding_batch(T, cfg.test_size, np.random.default_rng(seed + 2))
    tx, ty = torch.tensor(test_x, dtype=torch.float32), torch.tensor(test_y, dtype=torch.float32)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    curve_steps, test_mse, train_loss, grad_norm, clipped = [], [], [], [], 0

    def evaluate(step: int) -> None:
        with torch.no_grad():
            curve_steps.append(step)
            test_mse.append(float(torch.mean((model(tx) - ty) ** 2)))

    evaluate(0)
    for step in range(1, cfg.steps + 1):
        x, y = adding_batch(T, cfg.batch, rng)
        loss = torch.mean((model(torch.tensor(x, dtype=torch.float32)) - torch.tensor(y, dtype=torch.float32)) ** 2)
        opt.zero_grad()
        loss.backward()
        norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip))
        clipped += norm > cfg.clip
        opt.step()
        train_loss.append(loss.item())
        grad_norm.append(norm)
        if step % cfg.eval_every == 0 or step == cfg.steps:
            evaluate(step)
        tick()
    final = test_mse[-1]
    outcome = "solved" if final < SOLVED_MSE else ("failed" if final > FAILED_FRACTION * BASELINE_MSE else "partly")
    return {
        "cell": cell, "T": T, "hidden": hidden, "parameters": n_params,
        "curve_steps": curve_steps, "test_mse": test_mse, "train_loss": train_loss,
        "grad_norm": grad_norm, "clipped_fraction": clipped / cfg.steps,
        "final_test_mse": final, "best_test_mse": min(test_mse), "outcome": outcome,
        "before": before, "after": _dynamics(model.rnn, T, cfg.lyapunov_steps, seed + 7),
    }  # fmt: skip


def run_adding(cfg: AddingConfig, *, progress: Callable[[str], None] | None = None,
               tick: Callable[[], None] | None = None) -> dict[str, Any]:  # fmt: skip
    """Train every cell at every length; return every number (JSON-ready).

    Parameters
    ----------
    cfg : the configuration.
    progress : called with a short message before each model.
    tick : called after every training step (for a progress bar).

    Returns
    -------
    dict with ``config``, ``baseline_mse``, ``solved_mse``, ``runs`` (one dict per cell and length:
    learning curves, gradient norms, outcome, and the gradient profile and Lyapunov spectrum
    ``before`` and ``after`` training) and ``summary`` (outcome per length and cell).
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is installed in every test environment
        raise GradproofError(
            "the adding experiment trains with PyTorch: install it with pip install 'gradproof[torch]'"
        ) from None
    if cfg.threads is not None:
        torch.set_num_threads(cfg.threads)
    say = progress or (lambda _m: None)
    step = tick or (lambda: None)
    runs = []
    for T in cfg.lengths:
        for cell in cfg.cells:
            name = _cell(cell).name
            hidden = hidden_for_budget(name, cfg.budget)
            say(f"{name}, T = {T}, hidden {hidden}")
            runs.append(_train_one(name, T, hidden, cfg, cfg.seed * 1000 + T, step))
    summary = {str(T): {r["cell"]: r["outcome"] for r in runs if r["T"] == T} for T in cfg.lengths}
    return {
        "task": "adding problem (Hochreiter & Schmidhuber 1997)",
        "config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.__dict__.items()},
        "baseline_mse": BASELINE_MSE,
        "solved_mse": SOLVED_MSE,
        "failed_above": FAILED_FRACTION * BASELINE_MSE,
        "torch": torch.__version__,
        "runs": runs,
        "summary": summary,
    }

