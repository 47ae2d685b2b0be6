r"""Stacked and bidirectional recurrences of any cell, on numbers (docs/math.md §5–6).

A :class:`StackedModel` is ``L`` layers of one cell, each run forward in time and, when
bidirectional, also backward in time, exactly as ``torch.nn.RNN/LSTM/GRU`` with ``num_layers=L``
and ``bidirectional=True`` compute it:

.. math::

    u^{0}_t = x_t,\qquad
    \overrightarrow{s}^{\,l}_t = F(\overrightarrow{s}^{\,l}_{t-1}, u^l_t),\qquad
    \overleftarrow{s}^{\,l}_t = F(\overleftarrow{s}^{\,l}_{t+1}, u^l_t),\qquad
    u^{l+1}_t = [\overrightarrow{h}^{\,l}_t;\ \overleftarrow{h}^{\,l}_t],

and the output is :math:`o_t = u^{L}_t` (both directions concatenated, forward first). Every
Jacobian here is the *derived* one of the cell (:func:`numeric.step_jacobians`,
:func:`numeric.input_jacobians`) evaluated on the layer's own input sequence — the layer below's
outputs, reversed in time for the reverse direction — and chained by the chain rule:

* step Jacobians :math:`A^{l,d}_k = \partial s^{l,d}_k/\partial s^{l,d}_{k-1}` in each direction's
  processing order (:func:`stacked_step_jacobians`);
* layer-input Jacobians :math:`B^{l,d}_t = \partial s^{l,d}_t/\partial u^l_t`; for l ≥ 1 these are
  the depth Jacobians :math:`\partial s^{l}_t/\partial h^{l-1}_t` (:func:`layer_input_jacobians`);
* :math:`\partial o_t/\partial x_s` for every pair (t, s) (:func:`input_output_jacobians`), zero
  (never computed) where no path of the grid joins x_s to o_t: s > t in a unidirectional stack;
* the gradient over the grid :math:`\lVert\partial o_{t^*}/\partial s^{l,d}_t\rVert_2`
  (:func:`depth_profile`): the sum over all grid paths, :math:`\binom{t^*-t+L-1-l}{L-1-l}` monotone
  paths for a unidirectional stack (Pascanu et al. 2014, "How to construct deep RNNs").

Parameters of a layer follow :func:`numeric.init`'s names; layer 0 reads the m inputs, layer
l ≥ 1 reads n (or 2n when bidirectional) inputs.

>>> import numpy as np
>>> model = StackedModel.init("gru-torch", hidden=3, inputs=2, num_layers=2, bidirectional=True, seed=0)
>>> model.output_size, stacked_step_jacobians(model, np.ones((5, 2))).shape
(6, (2, 2, 5, 3, 3))
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np

from ..derive.cells import Cell
from ..derive.errors import GradproofError
from ._readonly import frozen
from .gradients import gradient_profile, input_jacobians, step_jacobians
from .initialization import check_parameters, init, resolve_cell
from .profile import GradientProfile
from .trajectory import Trajectory, unroll

__all__ = [
    "StackedModel",
    "StackedTrajectory",
    "unroll_stacked",
    "stacked_step_jacobians",
    "layer_input_jacobians",
    "input_output_jacobians",
    "time_profiles",
    "depth_profile",
    "initial_state_jacobians",
    "as_stacked_model",
    "StackRegime",
    "stack_regime",
]

DIRECTIONS = ("forward", "reverse")


@dataclass(frozen=True, eq=False)
class StackedModel:
    """A frozen stack of ``num_layers`` layers of one cell, optionally bidirectional.

    Parameters
    ----------
    cell : a cell or its name.
    layers : one entry per layer; an entry is a tuple of parameter dicts, one per direction
        ``(forward,)`` or ``(forward, reverse)``. For a unidirectional model a layer may be given
        as the dict itself. Layer 0's input matrices are (n, m); layer l ≥ 1's are (n, D n),
        D = 2 when bidirectional, else 1.
    bidirectional : whether every layer has a reverse direction.
    bias : False for a model without biases (every bias must then be zero); kept so that
        :func:`numeric.to_torch` writes ``bias=False`` back.
    batch_first : only how :func:`numeric.to_torch` lays out the module's input; no effect on
        the mathematics.

    Notes
    -----
    The arrays are float64 read-only copies. ``layers[l][d]`` is layer l, direction d
    (0 forward, 1 reverse).
    """

    cell: Cell
    layers: tuple[tuple[Mapping[str, np.ndarray], ...], ...]
    bidirectional: bool = False
    bias: bool = True
    batch_first: bool = False

    def __post_init__(self) -> None:
        c = resolve_cell(self.cell)
        object.__setattr__(self, "cell", c)
        if isinstance(self.layers, Mapping) or not isinstance(self.layers, Sequence) or not self.layers:
            raise GradproofError(
                "layers must be a non-empty tuple with one entry per layer (a tuple of parameter "
                f"dicts, one per direction), got {type(self.layers).__name__}"
            )
        D = 2 if self.bidirectional else 1
        norm: list[tuple[Mapping[str, np.ndarray], ...]] = []
        hidden: int | None = None
        inputs = 0
        for l, entry in enumerate(self.layers):
            if isinstance(entry, Mapping):
                entry = (entry,)
            if not isinstance(entry, Sequence) or len(entry) != D:
                got = len(entry) if isinstance(entry, Sequence) else type(entry).__name__
                raise GradproofError(
                    f"layer {l} must hold {D} parameter dict(s) (one per direction, "
                    f"bidirectional={self.bidirectional}), got {got}"
                )
            dirs = []
            for d, p in enumerate(entry):
                where = f"layer {l}" + (f" ({DIRECTIONS[d]})" if D == 2 else "")
                want = None if l == 0 else D * int(hidden)  # type: ignore[arg-type]
                try:
                    n, m = check_parameters(c, p, inputs=want)
                except GradproofError as exc:
                    reads = "" if want is None else f" (it reads the layer below's {want} outputs)"
                    raise GradproofError(f"{where}{reads}: {exc}") from None
                if hidden is None:
                    hidden, inputs = n, m
                elif n != hidden:
                    raise GradproofError(
                        f"{where} has hidden size {n}, layer 0 has {hidden}; every layer of a "
                        "stack has the same hidden size"
                    )
                elif l == 0 and m != inputs:
                    raise GradproofError(f"{where} reads {m} inputs, the forward direction {inputs}")
                kept = {k: frozen(p[k]) for k in c.parameter_names}
                if not all(np.all(np.isfinite(v)) for v in kept.values()):
                    raise GradproofError(f"{where}: parameters must be finite")
                if not self.bias:
                    nonzero = [k for k in c.parameter_names if kept[k].ndim == 1 and np.any(kept[k])]
                    if nonzero:
                        raise GradproofError(
                            f"{where}: bias=False but {', '.join(nonzero)} are not zero"
                        )
                dirs.append(MappingProxyType(kept))
            norm.append(tuple(dirs))
        object.__setattr__(self, "layers", tuple(norm))

    # -- sizes --------------------------------------------------------------------------------
    @property
    def num_layers(self) -> int:
        return len(self.layers)

    @property
    def directions(self) -> int:
        """D: 2 when bidirectional, else 1."""
        return 2 if self.bidirectional else 1

    @property
    def hidden(self) -> int:
        return int(self.layers[0][0][self.cell.parameter_names[0]].shape[0])

    @property
    def inputs(self) -> int:
        return self.layer_inputs(0)

    @property
    def state_size(self) -> int:
        """S: n, or 2n for the LSTM ([h; c])."""
        return self.cell.state_size(self.hidden)

    @property
    def output_size(self) -> int:
        """D n: the width of o_t."""
        return self.directions * self.hidden

    def layer_inputs(self, layer: int) -> int:
        """m for layer 0, D n above."""
        p = self.layers[layer][0]
        name = next(k for k in self.cell.parameter_names if k.startswith("U_") or k == "W_x")
        return int(p[name].shape[1])

    def label(self, layer: int, direction: int) -> str:
        """``layer 0``, or ``layer 0 reverse``."""
        return f"layer {layer}" + (f" {DIRECTIONS[direction]}" if self.bidirectional else "")

    def blocks(self) -> list[tuple[int, int]]:
        """Every (layer, direction) in torch's order."""
        return [(l, d) for l in range(self.num_layers) for d in range(self.directions)]

    @classmethod
    def init(
        cls,
        cell: str | Cell,
        *,
        hidden: int,
        inputs: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        seed: int,
        spectral_norm: float | None = None,
    ) -> StackedModel:
        """Seeded parameters for every layer and direction (:func:`numeric.init`, seed + k for
        the k-th block in torch's order)."""
        c = resolve_cell(cell)
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 1:
            raise GradproofError(f"num_layers must be a positive integer, got {num_layers!r}")
        D = 2 if bidirectional else 1
        layers = []
        for l in range(num_layers):
            m = inputs if l == 0 else D * hidden
            layers.append(tuple(
                init(c, hidden=hidden, inputs=m, seed=seed + l * D + d, spectral_norm=spectral_norm)
                for d in range(D)
            ))  # fmt: skip
        return cls(c, tuple(layers), bidirectional=bidirectional)


def as_stacked_model(model: Any) -> StackedModel:
    """A StackedModel, or the one read (float64) from a ``torch.nn.RNN/LSTM/GRU`` module."""
    if isinstance(model, StackedModel):
        return model
    torch = sys.modules.get("torch")  # a torch module exists only if torch is already imported
    if torch is not None and isinstance(model, torch.nn.Module):
        from .convert import from_torch_stacked

        return from_torch_stacked(model)
    raise GradproofError(
        f"expected a numeric.StackedModel or a torch.nn.RNN/LSTM/GRU module, got {type(model).__name__}"
    )


# -- the forward pass ----------------------------------------------------------------------------
@dataclass(frozen=True)
class StackedTrajectory:
    """A forward pass of a stack.

    Attributes
    ----------
    model : the model.
    xs : (T, m) inputs.
    layer_inputs : per layer, (T, m_l) its input sequence u^l in forward time.
    runs : ``runs[l][d]`` the :class:`numeric.Trajectory` of layer l, direction d, over its input
        in processing order (reversed in time for d = 1).
    """

    model: StackedModel
    xs: np.ndarray
    layer_inputs: tuple[np.ndarray, ...]
    runs: tuple[tuple[Trajectory, ...], ...]

    @property
    def T(self) -> int:  # noqa: N802
        return int(self.xs.shape[0])

    def hidden_states(self, layer: int, direction: int) -> np.ndarray:
        """(T, n): h^{l,d}_t for t = 1..T in forward time."""
        h = self.runs[layer][direction].states[1:, : self.model.hidden]
        return h if direction == 0 else h[::-1]

    def states(self, layer: int, direction: int) -> np.ndarray:
        """(T, S): s^{l,d}_t for t = 1..T in forward time."""
        s = self.runs[layer][direction].states[1:]
        return s if direction == 0 else s[::-1]

    def layer_output(self, layer: int) -> np.ndarray:
        """(T, D n): u^{l+1}_t, both directions concatenated (forward first)."""
        D = self.model.directions
        return np.concatenate([self.hidden_states(layer, d) for d in range(D)], axis=1)

    @property
    def outputs(self) -> np.ndarray:
        """(T, D n): o_t, as ``torch.nn`` returns it."""
        return self.layer_output(self.model.num_layers - 1)


def _xs(xs: object, m: int) -> np.ndarray:
    a = np.asarray(xs)
    if a.dtype.kind not in "biuf":
        raise GradproofError(f"xs must hold real numbers, got dtype {a.dtype}")
    a = a.astype(np.float64)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] != m:
        raise GradproofError(f"xs must have shape (T, inputs) = (T, {m}) with T >= 1, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise GradproofError("xs must be finite; it holds nan or inf")
    return a


def _s0(model: StackedModel, s0: object | None) -> np.ndarray:
    shape = (model.num_layers, model.directions, model.state_size)
    if s0 is None:
        return np.zeros(shape)
    a = np.asarray(s0, dtype=np.float64)
    if a.shape != shape:
        raise GradproofError(
            f"s0 must have shape (layers, directions, S) = {shape} (S = n, or 2n for the LSTM "
            f"ordered [h; c]), got {a.shape}"
        )
    return a


def _order(u: np.ndarray, d: int) -> np.ndarray:
    return u if d == 0 else u[::-1]


def unroll_stacked(model: StackedModel, xs: object, s0: object | None = None) -> StackedTrajectory:
    """Run every layer and direction with :func:`numeric.unroll`.

    Parameters
    ----------
    model : the stack.
    xs : (T, m) inputs.
    s0 : (L, D, S) initial states, zeros by default; for the reverse direction it is the state
        "after" step T (torch's ``h0[2l + 1]``).
    """
    model = as_stacked_model(model)
    x = _xs(xs, model.inputs)
    init_states = _s0(model, s0)
    u = x
    inputs, runs = [], []
    for l in range(model.num_layers):
        inputs.append(u)
        row = tuple(
            unroll(model.cell, model.layers[l][d], _order(u, d), init_states[l, d])
            for d in range(model.directions)
        )
        runs.append(row)
        n = model.hidden
        u = np.concatenate(
            [(r.states[1:, :n] if d == 0 else r.states[1:, :n][::-1]) for d, r in enumerate(row)], axis=1
        )
    return StackedTrajectory(model, x, tuple(inputs), tuple(runs))


def stacked_step_jacobians(model: StackedModel, xs: object, s0: object | None = None) -> np.ndarray:
    r"""The derived step Jacobians of every layer and direction, shape (L, D, T, S, S).

    Entry ``[l, d, k-1]`` is :math:`\partial s^{l,d}_k/\partial s^{l,d}_{k-1}` for the k-th step
    of that direction (:func:`numeric.step_jacobians` on the layer's input in processing order):
    for the reverse direction the k-th step computes time T + 1 − k from time T + 2 − k.
    """
    traj = unroll_stacked(model, xs, s0)
    m = traj.model
    init_states = _s0(m, s0)
    return np.stack([
        np.stack([step_jacobians(m.cell, m.layers[l][d], _order(traj.layer_inputs[l], d), init_states[l, d])
                  for d in range(m.directions)])
        for l in range(m.num_layers)
    ])  # fmt: skip


def layer_input_jacobians(
    model: StackedModel, xs: object, s0: object | None = None
) -> tuple[np.ndarray, ...]:
    r"""∂s^{l,d}_t/∂u^l_t for every layer, one array (D, T, S, m_l) per layer, in forward time.

    Layer 0's is the input Jacobian :math:`\partial s_t/\partial x_t`; for l ≥ 1 it is the depth
    Jacobian :math:`\partial s^{l,d}_t/\partial h^{l-1}_t` whose columns ``d'·n:(d'+1)·n`` belong
    to direction d' of the layer below (:func:`numeric.input_jacobians`; for the LSTM only h, not
    c, feeds the layer above).
    """
    traj = unroll_stacked(model, xs, s0)
    m = traj.model
    init_states = _s0(m, s0)
    out = []
    for l in range(m.num_layers):
        per_dir = []
        for d in range(m.directions):
            J = input_jacobians(m.cell, m.layers[l][d], _order(traj.layer_inputs[l], d), init_states[l, d])
            per_dir.append(_order(J, d))
        out.append(np.stack(per_dir))
    return tuple(out)


def time_profiles(
    model: StackedModel, xs: object, s0: object | None = None
) -> tuple[tuple[GradientProfile, ...], ...]:
    r"""Per layer and direction, :func:`numeric.gradient_profile` of that layer's recurrence over
    its own input sequence: log ‖∂s^{l,d}_{last}/∂s^{l,d}_k‖ in processing order (the layers below
    held fixed)."""
    traj = unroll_stacked(model, xs, s0)
    m = traj.model
    init_states = _s0(m, s0)
    return tuple(
        tuple(gradient_profile(m.cell, m.layers[l][d], _order(traj.layer_inputs[l], d), init_states[l, d])
              for d in range(m.directions))
        for l in range(m.num_layers)
    )  # fmt: skip


def _pieces(model: StackedModel, xs: object, s0: object | None):
    traj = unroll_stacked(model, xs, s0)
    A = stacked_step_jacobians(traj.model, xs, s0)
    B = layer_input_jacobians(traj.model, xs, s0)
    return traj, A, B


def _step_index(T: int, d: int, t: int) -> int:
    """The processing index k - 1 of the step that computes (0-based) time t in direction d."""
    return t if d == 0 else T - 1 - t


def input_output_jacobians(
    model: StackedModel, xs: object, s0: object | None = None
) -> tuple[np.ndarray, np.ndarray]:
    r"""∂o_t/∂x_s for every t, s by the chain rule over the grid, and where it can be nonzero.

    Forward accumulation, one direction of one layer at a time:
    :math:`\partial s_k/\partial x = A_k\,\partial s_{k-1}/\partial x + B_k\,\partial u_k/\partial x`,
    evaluated only for the inputs x_s that can reach the state (for layer 0 forward: s ≤ t).

    Returns
    -------
    (jac, reach): jac (T, T, D n, m) with ``jac[t-1, s-1]`` = ∂o_t/∂x_s, exactly 0.0 (never
    computed) where ``reach`` (T, T) bool is False — no path of the grid joins x_s to o_t.
    """
    traj, A, B = _pieces(model, xs, s0)
    mdl = traj.model
    T, n, m, D, S = traj.T, mdl.hidden, mdl.inputs, mdl.directions, mdl.state_size
    below = below_reach = None  # the layer below's output Jacobians and reach
    for l in range(mdl.num_layers):
        G = np.zeros((T, T, D * n, m))
        reach = np.zeros((T, T), dtype=bool)
        for d in range(D):
            J = np.zeros((T, S, m))
            dep = np.zeros(T, dtype=bool)
            times = range(T) if d == 0 else range(T - 1, -1, -1)
            for t in times:
                k = _step_index(T, d, t)
                a, b = A[l, d, k], B[l][d, t]
                new_dep = dep.copy()
                if l == 0:
                    new_dep[t] = True
                else:
                    new_dep |= below_reach[t]  # type: ignore[index]
                idx = np.flatnonzero(new_dep)
                J_new = np.zeros((T, S, m))
                J_new[idx] = np.matmul(a, J[idx])
                if l == 0:
                    J_new[t] += b
                else:
                    J_new[idx] += np.matmul(b, below[t, idx])  # type: ignore[index]
                J, dep = J_new, new_dep
                G[t, idx, d * n : (d + 1) * n] = J[idx, :n]
                reach[t] |= dep
        below, below_reach = G, reach
    return below, below_reach  # type: ignore[return-value]


def _output_adjoints(
    model: StackedModel, xs: object, s0: object | None, output_step: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(M (L, D, T, D n, S), M0 (L, D, D n, S)): ∂o_{t*}/∂s^{l,d}_t and ∂o_{t*}/∂s^{l,d}_0."""
    traj, A, B = _pieces(model, xs, s0)
    mdl = traj.model
    T, n, D, S, L = traj.T, mdl.hidden, mdl.directions, mdl.state_size, mdl.num_layers
    ts = T if output_step is None else output_step
    if isinstance(ts, bool) or not isinstance(ts, int | np.integer) or not 1 <= ts <= T:
        raise GradproofError(f"output_step must be an integer in 1..{T}, got {output_step!r}")
    ts = int(ts) - 1
    M = np.zeros((L, D, T, D * n, S))
    M0 = np.zeros((L, D, D * n, S))
    for l in range(L - 1, -1, -1):
        for d in range(D):
            times = range(T - 1, -1, -1) if d == 0 else range(T)
            for t in times:
                acc = np.zeros((D * n, S))
                if l == L - 1 and t == ts:
                    acc[d * n : (d + 1) * n, :n] += np.eye(n)
                succ = t + 1 if d == 0 else t - 1
                if 0 <= succ < T:
                    acc += M[l, d, succ] @ A[l, d, _step_index(T, d, succ)]
                if l + 1 < L:
                    for d2 in range(D):
                        acc[:, :n] += M[l + 1, d2, t] @ B[l + 1][d2, t][:, d * n : (d + 1) * n]
                M[l, d, t] = acc
            first = 0 if d == 0 else T - 1
            M0[l, d] = M[l, d, first] @ A[l, d, 0]
    return M, M0


def initial_state_jacobians(
    model: StackedModel, xs: object, s0: object | None = None, *, output_step: int | None = None
) -> np.ndarray:
    r"""∂o_{t*}/∂s^{l,d}_0 for every layer and direction, shape (L, D, D n, S): the grid
    accumulation of :func:`depth_profile` carried one step further, to the initial states (torch's
    ``h0``/``c0``)."""
    return _output_adjoints(model, xs, s0, output_step)[1]


def depth_profile(
    model: StackedModel, xs: object, s0: object | None = None, *, output_step: int | None = None
) -> np.ndarray:
    r"""‖∂o_{t*}/∂s^{l,d}_t‖₂ over the whole grid, shape (L, D, T) (forward time).

    Reverse accumulation over the grid of states: a state's adjoint matrix
    :math:`M^{l,d}_t = \partial o_{t^*}/\partial s^{l,d}_t` (D n × S) is the sum over its
    successors — the next step of its own direction (through A) and the same time step of both
    directions of the layer above (through B and the selection of h) — so it is the sum over all
    grid paths from s^{l,d}_t to o_{t*} (docs/math.md §6). ``[:, :, t*-1]`` is the gradient norm
    against depth at the output step; ``[L-1, 0, :]`` the top layer's profile over time.

    Parameters
    ----------
    model, xs, s0 : as for :func:`unroll_stacked`; ``xs`` (T, m), ``s0`` (L, D, S).
    output_step : t* in 1..T, default T.
    """
    M, _ = _output_adjoints(model, xs, s0, output_step)
    return np.linalg.norm(M, ord=2, axis=(-2, -1))


# -- the theorem's verdict for a whole stack --------------------------------------------------------
@dataclass(frozen=True)
class StackRegime:
    """Pascanu verdicts for every layer and direction of a stack, and for the whole stack.

    Attributes
    ----------
    model : the cell's name.
    num_layers, bidirectional, hidden : the configuration.
    layers : ``(label, ModelRegime)`` per layer and direction in torch's order (``layer 0``,
        ``layer 0 reverse``, ``layer 1``, ...); every gate block's verdict is inside.
    verdict : the whole stack's verdict (see :func:`stack_regime`).
    worst : the label of the layer/direction with the largest headline η.
    eta_time : that largest η = γ σ_max of the headline recurrent block.
    eta_depth : RNN cells with ≥ 2 layers: the largest γ σ_max(W_x^l) over l ≥ 1, a bound on the
        norm of every depth step; None otherwise.
    explanation : what the verdict means.
    """

    model: str
    num_layers: int
    bidirectional: bool
    hidden: int
    layers: tuple[tuple[str, Any], ...]
    verdict: str
    worst: str
    eta_time: float
    eta_depth: float | None
    explanation: str

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "hidden": self.hidden,
            "layers": [{"layer": label, **r.to_json()} for label, r in self.layers],
            "stack": {
                "regime": self.verdict,
                "scope": "whole stack" if self.explanation.startswith("whole stack") else "worst block",
                "worst_layer": self.worst,
                "eta_time": self.eta_time,
                "eta_depth": self.eta_depth,
                "explanation": self.explanation,
            },
        }


def stack_regime(model: StackedModel) -> StackRegime:
    r"""The theorem's verdict per layer, direction and gate block, and for the whole stack.

    For an RNN cell every time step of layer l is :math:`A = D(\sigma') W_h^l` with
    :math:`\lVert A\rVert \le \eta_l = \gamma\,\sigma_{\max}(W_h^l)`, and every depth step is
    :math:`B = D(\sigma') W_x^l` with :math:`\lVert B\rVert \le \gamma\,\sigma_{\max}(W_x^l)
    \le \eta_{\text{depth}}`. :math:`\partial h^{L}_T/\partial h^{l}_t` is the sum over the
    :math:`\binom{k+L-l}{L-l}` monotone grid paths (k = T − t), each with k time steps and L − l
    depth steps, so

    .. math:: \lVert\partial h^{L}_T/\partial h^{l}_t\rVert \le \binom{k+L-l}{L-l}\,
              \eta_{\max}^{k}\,\eta_{\text{depth}}^{L-l},

    and the binomial grows only like :math:`k^{L-l}`: when every layer has η < 1 the stack's
    gradient over long spans vanishes geometrically like :math:`\eta_{\max}^k` ("vanishing
    guaranteed"); when some layer has η > 1 the theorem's necessary condition for exploding holds
    along that layer alone ("exploding possible"). The verdict is the worst layer's. In a
    bidirectional stack a path may also turn back in time inside a reverse layer, but it still
    has at least k time steps, and at most :math:`2^{L-l}\binom{j+L-l}{L-l}` paths have j of
    them: the same conclusion holds. For gated cells the step Jacobian is a sum of gate terms
    (docs/math.md §3–4), the per-block verdicts bound one term each, and the stack's verdict repeats
    the worst layer's headline (candidate) block, with that caveat.
    """
    from .regime import BOUNDARY, EXPLODING, VANISHING, model_regime

    model = as_stacked_model(model)
    c = model.cell
    layers = tuple((model.label(l, d), model_regime(c, model.layers[l][d])) for l, d in model.blocks())
    etas = [r.main_regime.eta for _, r in layers]
    worst_i = int(np.argmax(etas))
    worst, eta = layers[worst_i][0], float(etas[worst_i])
    verdicts = [r.main_regime.verdict for _, r in layers]
    if all(v == VANISHING for v in verdicts):
        verdict = VANISHING
    elif any(v == EXPLODING for v in verdicts):
        verdict = EXPLODING
    else:
        verdict = BOUNDARY
    eta_depth = None
    if c.kind == "rnn" and model.num_layers > 1:
        gamma = layers[0][1].main_regime.gamma
        eta_depth = max(
            gamma * float(np.linalg.norm(model.layers[l][d]["W_x"], 2))
            for l in range(1, model.num_layers) for d in range(model.directions)
        )  # fmt: skip
    if c.kind == "rnn":
        if verdict == VANISHING:
            how = (
                f"every layer{' and direction' if model.bidirectional else ''} has eta < 1 (largest "
                f"{eta:.6g}, {worst}): dh^L_T/dh^l_t is a sum over C(k+L-l, L-l) grid paths of k time "
                f"steps (norm <= {eta:.6g} each) and L-l depth steps"
                + (f" (norm <= {eta_depth:.6g} each)" if eta_depth is not None else "")
                + f", so it shrinks like {eta:.6g}^k times a polynomial in k"
            )
        elif verdict == EXPLODING:
            how = (
                f"{worst} has eta = {eta:.6g} > 1, the necessary condition for exploding gradients "
                "along that layer alone, so the stack's gradients can explode (the theorem does not "
                "say they must)"
            )
        else:
            how = f"the largest eta is 1 ({worst}): the theorem decides nothing"
    else:
        how = (
            f"{worst}, {layers[worst_i][1].main} (eta = {eta:.6g}): {verdict} for that gate's term alone; "
            f"the {c.name} step Jacobian sums such terms and the direct path carries the long-range "
            "gradient, so this bounds no layer and not the stack"
        )
    return StackRegime(
        model=c.name, num_layers=model.num_layers, bidirectional=model.bidirectional,
        hidden=model.hidden, layers=layers, verdict=verdict, worst=worst, eta_time=eta,
        eta_depth=eta_depth,
        explanation=f"whole stack: {verdict}: {how}." if c.kind == "rnn" else f"worst block: {how}.",
    )  # fmt: skip
