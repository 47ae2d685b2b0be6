r"""References the derived formulas are checked against, behind one small interface.

=================  ==========================================================================
name               how it differentiates
=================  ==========================================================================
``torch``          reverse-mode autograd of cells hand-written in torch from MATH.md,
                   independently of the symbolic layer (:mod:`numeric.torch_reference`)
``torch.nn``       the real ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` modules' own forward and backward
``complex-step``   :math:`f'(x) \approx \operatorname{Im} f(x + i h)/h`, h = 1e-20: no subtractive
                   cancellation, exact to rounding for analytic cells (Squire & Trapp 1998)
``finite-diff``    central differences, :math:`(f(x+h) - f(x-h))/2h`, h = 1e-6 · max(1, |x|)
=================  ==========================================================================

Every reference has the same methods, numpy in and numpy out: ``forward`` (T+1, S),
``step_jacobians`` (T, S, S), ``input_jacobians`` (T, S, m) and ``parameter_gradients`` of the
loss :math:`J = \sum_t w_t\cdot h_t` (a dict of arrays). The complex-step and finite-difference
references differentiate the cell's *forward definitions* (compiled from :mod:`derive`), never its
derived Jacobians.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from ..derive.cells import Cell
from ..derive.errors import GradproofError
from .compiled import compile_cell
from .trajectory import _run, prepare, unroll

__all__ = [
    "Reference",
    "ComplexStepReference",
    "FiniteDifferenceReference",
    "REFERENCES",
    "TOLERANCES",
    "get_reference",
]

Params = Mapping[str, np.ndarray]


class Reference(Protocol):
    """What :func:`numeric.verify` calls (shapes in the module docstring)."""

    name: str

    def forward(self, cell: Cell | str, params: Params, xs: Any, s0: Any = None) -> np.ndarray: ...

    def step_jacobians(
        self, cell: Cell | str, params: Params, xs: Any, s0: Any = None
    ) -> np.ndarray: ...

    def input_jacobians(
        self, cell: Cell | str, params: Params, xs: Any, s0: Any = None
    ) -> np.ndarray: ...

    def parameter_gradients(
        self, cell: Cell | str, params: Params, xs: Any, s0: Any = None, *, loss_weights: Any
    ) -> dict[str, np.ndarray]: ...


def _next_states(c: Cell, params: Params, n: int, m: int, s_prev: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """One step of the compiled forward definitions for a batch of (s_{t-1}, x_t): (B, S)."""
    compiled = compile_cell(c)
    env = compiled.step(compiled.environment(params, n, m), s_prev, xs)
    return np.concatenate([env[s] for s in c.state_next], axis=-1)


class _Perturbation:
    """Shared machinery: derivatives of the forward definitions by perturbing their inputs."""

    name = ""

    def _derivative(self, f: Callable[[Any], np.ndarray], x: np.ndarray, j: int) -> np.ndarray:
        raise NotImplementedError

    def forward(self, cell: Cell | str, params: Params, xs: Any, s0: Any = None) -> np.ndarray:
        return unroll(cell, params, xs, s0).states

    def step_jacobians(self, cell: Cell | str, params: Params, xs: Any, s0: Any = None) -> np.ndarray:
        traj = unroll(cell, params, xs, s0)
        c, n, m = traj.cell, traj.hidden, traj.inputs
        prev = traj.states[:-1]
        cols = [
            self._derivative(lambda s: _next_states(c, traj.params, n, m, s, traj.xs), prev, j)
            for j in range(prev.shape[1])
        ]
        return np.stack(cols, axis=-1)

    def input_jacobians(self, cell: Cell | str, params: Params, xs: Any, s0: Any = None) -> np.ndarray:
        traj = unroll(cell, params, xs, s0)
        c, n, m = traj.cell, traj.hidden, traj.inputs
        prev = traj.states[:-1]
        cols = [
            self._derivative(lambda x: _next_states(c, traj.params, n, m, prev, x), traj.xs, j)
            for j in range(m)
        ]
        return np.stack(cols, axis=-1)

    def parameter_gradients(
        self, cell: Cell | str, params: Params, xs: Any, s0: Any = None, *, loss_weights: Any
    ) -> dict[str, np.ndarray]:
        c, p, xs_a, s0_a, n, m = prepare(cell, params, xs, s0)
        w = np.asarray(loss_weights, dtype=np.float64)
        if w.shape != (xs_a.shape[0], n):
            raise GradproofError(
                f"loss_weights must have shape (T, hidden) = ({xs_a.shape[0]}, {n}), got {w.shape}"
            )
        out: dict[str, np.ndarray] = {}
        for name in c.parameter_names:
            base = p[name]
            flat = base.reshape(-1)
            grad = np.empty(flat.shape[0])

            def loss(value: np.ndarray, name: str = name) -> np.ndarray:
                q = dict(p)
                q[name] = value.reshape(base.shape)
                states = _run(compile_cell(c), q, xs_a, s0_a, n, m)
                return np.reshape(np.sum(w * states[1:, :n]), (1, 1))

            for j in range(flat.shape[0]):
                grad[j] = self._derivative(loss, flat[None, :], j)[0, 0].real
            out[name] = grad.reshape(base.shape)
        return out


class ComplexStepReference(_Perturbation):
    r"""Complex-step differentiation, :math:`\partial f/\partial x_j = \operatorname{Im} f(x + i h e_j)/h`.

    Exact to rounding for analytic functions (no difference of nearby values is taken); the
    activations' numpy code keeps branch decisions on the real part, so relu and hard-sigmoid work
    away from their kinks.
    """

    name = "complex-step"
    h = 1e-20

    def _derivative(self, f: Callable[[Any], np.ndarray], x: np.ndarray, j: int) -> np.ndarray:
        xc = np.array(x, dtype=np.complex128)
        xc[..., j] += 1j * self.h
        return np.imag(f(xc)) / self.h


class FiniteDifferenceReference(_Perturbation):
    """Central finite differences with h = 1e-6 · max(1, |x_j|): accurate to about 1e-8 relative."""

    name = "finite-diff"
    h = 1e-6

    def _derivative(self, f: Callable[[Any], np.ndarray], x: np.ndarray, j: int) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        step = self.h * np.maximum(1.0, np.abs(x[..., j]))
        plus, minus = x.copy(), x.copy()
        plus[..., j] += step
        minus[..., j] -= step
        diff = f(plus) - f(minus)
        return diff / (2.0 * (step[..., None] if np.ndim(step) else step))


def _torch(name: str) -> Callable[[], Reference]:
    def make() -> Reference:
        try:
            from . import torch_reference
        except ImportError:
            raise GradproofError(
                f"the {name!r} reference needs PyTorch: pip install torch==2.13.0 "
                "(or choose complex-step / finite-diff)"
            ) from None
        cls = torch_reference.TorchReference if name == "torch" else torch_reference.TorchModuleReference
        return cls()

    return make


#: name -> factory of a reference.
REFERENCES: dict[str, Callable[[], Reference]] = {
    "torch": _torch("torch"),
    "torch.nn": _torch("torch.nn"),
    "complex-step": ComplexStepReference,
    "finite-diff": FiniteDifferenceReference,
}

#: name -> (rtol, atol) that :func:`numeric.verify` accepts: float64 rounding for the exact
#: references, the truncation error of central differences for ``finite-diff``.
TOLERANCES: dict[str, tuple[float, float]] = {
    "torch": (1e-10, 1e-13),
    "torch.nn": (1e-10, 1e-13),
    "complex-step": (1e-10, 1e-13),
    "finite-diff": (1e-5, 1e-7),
}


def get_reference(name: str | Reference) -> Reference:
    """The reference called ``name``: one of ``torch``, ``torch.nn``, ``complex-step``, ``finite-diff``."""
    if not isinstance(name, str):
        return name
    if name not in REFERENCES:
        raise GradproofError(f"unknown reference {name!r}; choose one of: {', '.join(REFERENCES)}")
    return REFERENCES[name]()
