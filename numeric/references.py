r"""References the derived formulas are checked against, behind one small interface.

=================  ==========================================================================
name               how it differentiates
=================  ==========================================================================
``torch``          reverse-mode autograd of cells hand-written in torch from docs/math.md,
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
from .compiled import CompiledCell, compile_cell
from .threads import single_blas_thread
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
    """Shared machinery: derivatives of the forward definitions by perturbing their inputs.

    After each call, :attr:`uncertainty` maps ``"step"``, ``"input"`` or a parameter name to an
    array shaped like the returned derivative: how far the reference's own value may be from the
    true derivative (zero for exact references). :func:`numeric.verify` widens its tolerance by it
    and reports entries it cannot judge.
    """

    name = ""

    def __init__(self) -> None:
        self.uncertainty: dict[str, np.ndarray] = {}
        #: called with e.g. ``"W_h 120/1024"`` while columns are perturbed (a progress bar's hook)
        self.progress: Callable[[str], None] | None = None

    def _derivative(
        self, f: Callable[[Any], np.ndarray], x: np.ndarray, j: int, base: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(∂f/∂x_j, its uncertainty); ``base`` is f(x)."""
        raise NotImplementedError

    def _base(self, f: Callable[[Any], np.ndarray], x: np.ndarray) -> np.ndarray:
        return f(np.asarray(x, dtype=np.float64))

    def forward(self, cell: Cell | str, params: Params, xs: Any, s0: Any = None) -> np.ndarray:
        return unroll(cell, params, xs, s0).states

    def _columns(self, f: Callable[[Any], np.ndarray], x: np.ndarray, count: int, key: str) -> np.ndarray:
        base = self._base(f, x)
        pairs = []
        every = max(1, count // 50)
        for j in range(count):
            pairs.append(self._derivative(f, x, j, base))
            if self.progress is not None and ((j + 1) % every == 0 or j + 1 == count):
                self.progress(f"{key} {j + 1}/{count}")
        self.uncertainty[key] = np.stack([u for _, u in pairs], axis=-1)
        return np.stack([d for d, _ in pairs], axis=-1)

    def step_jacobians(self, cell: Cell | str, params: Params, xs: Any, s0: Any = None) -> np.ndarray:
        traj = unroll(cell, params, xs, s0)
        c, n, m = traj.cell, traj.hidden, traj.inputs
        prev = traj.states[:-1]
        return self._columns(
            lambda s: _next_states(c, traj.params, n, m, s, traj.xs), prev, prev.shape[1], "step"
        )

    def input_jacobians(self, cell: Cell | str, params: Params, xs: Any, s0: Any = None) -> np.ndarray:
        traj = unroll(cell, params, xs, s0)
        c, n, m = traj.cell, traj.hidden, traj.inputs
        prev = traj.states[:-1]
        return self._columns(lambda x: _next_states(c, traj.params, n, m, prev, x), traj.xs, m, "input")

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
            base_value = p[name]
            flat = base_value.reshape(-1)

            def loss(value: np.ndarray, name: str = name, shape: tuple = base_value.shape) -> np.ndarray:
                q = dict(p)
                q[name] = value.reshape(shape)
                states = _run(compile_cell(c), q, xs_a, s0_a, n, m)
                return np.reshape(np.sum(w * states[1:, :n]), (1, 1))

            grad = self._columns(loss, flat[None, :], flat.shape[0], name)[0, 0].real
            self.uncertainty[name] = self.uncertainty[name][0, 0].reshape(base_value.shape)
            out[name] = grad.reshape(base_value.shape)
        return out


class ComplexStepReference(_Perturbation):
    r"""Complex-step differentiation, :math:`\partial f/\partial x_j = \operatorname{Im} f(x + i h e_j)/h`.

    Exact to rounding for analytic functions (no difference of nearby values is taken); the
    activations' numpy code keeps branch decisions on the real part, so relu and hard-sigmoid work
    away from their kinks.
    """

    name = "complex-step"
    h = 1e-20

    def _base(self, f: Callable[[Any], np.ndarray], x: np.ndarray) -> np.ndarray:
        return np.zeros(0)  # not needed: the derivative is read off the imaginary part

    def _derivative(
        self, f: Callable[[Any], np.ndarray], x: np.ndarray, j: int, base: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        xc = np.array(x, dtype=np.complex128)
        xc[..., j] += 1j * self.h
        d = np.imag(f(xc)) / self.h
        return d, np.zeros(d.shape)

    #: complex numbers per perturbed copy of a parameter times copies run at once (16 bytes each):
    #: bounds the memory of :meth:`parameter_gradients` to about 32 MB per chunk
    chunk_entries = 1 << 21

    def parameter_gradients(
        self, cell: Cell | str, params: Params, xs: Any, s0: Any = None, *, loss_weights: Any
    ) -> dict[str, np.ndarray]:
        r"""dJ/dθ for every parameter, all entries of a parameter perturbed in one batched run.

        Entry :math:`j` of parameter :math:`P` gets :math:`\partial J/\partial P_j =
        \operatorname{Im} J(P + i h e_j)/h`. Instead of one forward pass per entry, the perturbed
        copies are stacked along a leading batch axis (``(B, *P.shape)``, in chunks of
        :attr:`chunk_entries` numbers) and run through the compiled forward definitions together;
        every copy sees exactly the arithmetic of its own pass, so the result equals the one-pass-
        per-entry loop to rounding (tests/numeric/test_references.py).

        Parameters
        ----------
        cell : a cell or its name.
        params : name -> array, as from :func:`numeric.init`.
        xs : (T, m) inputs.
        s0 : (S,) initial state, zeros by default.
        loss_weights : (T, n) the weights :math:`w_t` of :math:`J = \sum_t w_t \cdot h_t`.

        Returns
        -------
        dict[str, np.ndarray]
            name -> gradient shaped like the parameter; :attr:`uncertainty` holds zeros alike.
        """
        c, p, xs_a, s0_a, n, m = prepare(cell, params, xs, s0)
        w = np.asarray(loss_weights, dtype=np.float64)
        if w.shape != (xs_a.shape[0], n):
            raise GradproofError(
                f"loss_weights must have shape (T, hidden) = ({xs_a.shape[0]}, {n}), got {w.shape}"
            )
        compiled = compile_cell(c)
        out: dict[str, np.ndarray] = {}
        for name in c.parameter_names:
            value = p[name]
            count = value.size
            chunk = max(1, min(count, self.chunk_entries // max(1, count)))
            grad = np.empty(count)
            every = max(1, count // 50)
            for start in range(0, count, chunk):
                stop = min(count, start + chunk)
                batch = np.repeat(value.astype(np.complex128).reshape(1, count), stop - start, axis=0)
                batch[np.arange(stop - start), np.arange(start, stop)] += 1j * self.h
                q = dict(p)
                q[name] = batch.reshape((stop - start, *value.shape))
                grad[start:stop] = np.imag(_batched_loss(compiled, q, xs_a, s0_a, n, m, w, stop - start)) / self.h
                if self.progress is not None and (stop // every > start // every or stop == count):
                    self.progress(f"{name} {stop}/{count}")
            out[name] = grad.reshape(value.shape)
            self.uncertainty[name] = np.zeros(value.shape)
        return out


@single_blas_thread
def _batched_loss(
    compiled: CompiledCell, p: Params, xs: np.ndarray, s0: np.ndarray, n: int, m: int, w: np.ndarray, batch: int
) -> np.ndarray:
    r""":math:`J = \sum_t w_t \cdot h_t` for ``batch`` parameter sets run at once: (batch,).

    ``p`` holds arrays with a leading batch axis (``(batch, *shape)``) or without one (shared by
    every copy); ``xs``: (T, m), ``s0``: (S,), ``w``: (T, n). The same step as
    :func:`numeric.trajectory.unroll`, on states of shape (batch, S).
    """
    env = compiled.environment(p, n, m)
    nxt = compiled.cell.state_next
    state = np.broadcast_to(s0.astype(np.complex128), (batch, s0.shape[0]))
    total = np.zeros(batch, dtype=np.complex128)
    t = 0
    try:
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            for t in range(xs.shape[0]):
                compiled.step(env, state, xs[t])
                parts = [np.broadcast_to(env[s], (batch, n)) for s in nxt]
                state = np.concatenate(parts, axis=-1) if len(parts) > 1 else parts[0]
                total += state[:, :n] @ w[t]
    except FloatingPointError as exc:
        raise GradproofError(
            f"the forward pass of {compiled.cell.name} overflowed at step {t + 1} ({exc}); "
            "scale the weights or inputs down"
        ) from None
    return total


class FiniteDifferenceReference(_Perturbation):
    r"""Central finite differences with h = 1e-6 · max(1, |x_j|), and their own uncertainty.

    Accurate to about 1e-8 relative where the cell is smooth. Where a perturbation straddles a kink
    of the activation (relu at 0, hard-sigmoid at ±2.5), the central difference averages two
    slopes and can be far from the derivative at x. The reference measures that itself: the
    one-sided slopes :math:`(f(x+h) - f(x))/h` and :math:`(f(x) - f(x-h))/h` agree to
    :math:`O(h f'')` on smooth stretches and differ by the jump of slope across a kink, so
    :math:`u = |	ext{forward} - 	ext{backward}|` bounds the central difference's error (a
    single kink puts it at u/2). :attr:`uncertainty` holds u; :func:`numeric.verify` widens the
    tolerance by u and reports the entries where u alone exceeds the tolerance as *not judged*.
    """

    name = "finite-diff"
    h = 1e-6

    def _derivative(
        self, f: Callable[[Any], np.ndarray], x: np.ndarray, j: int, base: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=np.float64)
        step = self.h * np.maximum(1.0, np.abs(x[..., j]))
        plus, minus = x.copy(), x.copy()
        plus[..., j] += step
        minus[..., j] -= step
        fp, fm = f(plus), f(minus)
        # the actual steps taken (x ± step rounds), per row
        dp = (plus[..., j] - x[..., j])[..., None] if np.ndim(step) else plus[..., j] - x[..., j]
        dm = (x[..., j] - minus[..., j])[..., None] if np.ndim(step) else x[..., j] - minus[..., j]
        central = (fp - fm) / (dp + dm)
        forward = (fp - base) / dp
        backward = (base - fm) / dm
        return central, np.abs(forward - backward)


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
