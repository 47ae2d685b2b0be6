"""Autodiff references: the cells written again in PyTorch, and ``torch.nn``'s own modules.

These are independent of gradproof's symbolic layer: nothing here reads a derived formula. The
cells are typed in from their definitions (docs/math.md §1, §3, §4) and differentiated by PyTorch's
autograd, in float64; :mod:`derive.cells` supplies only names, shapes and an RNN's activation.

Two references, same methods, numpy in and numpy out:

* :class:`TorchReference` (``"torch"``): :func:`torch_step`, a hand-written step for every cell
  (``rnn-*``, ``lstm``, ``gru``, ``gru-torch``); Jacobians by reverse-mode autograd, one pass
  per output row for all steps at once.
* :class:`TorchModuleReference` (``"torch.nn"``): the real ``nn.RNN``/``LSTM``/``GRU`` built by
  :func:`numeric.convert.to_torch` (cells ``rnn-tanh rnn-relu lstm gru-torch``); Jacobians of a
  one-step call of the module, gradients by backward through the module.

Shapes: ``xs: (T, inputs)``; ``s0: (S,)`` with S = n (2n for the LSTM, state ``[h; c]``), zeros by
default; states ``(T + 1, S)`` = s_0 .. s_T; step Jacobians ``(T, S, S)``, entry t-1 =
∂s_t/∂s_{t-1}; input Jacobians ``(T, S, m)``, entry t-1 = ∂s_t/∂x_t; parameter gradients of
J = Σ_t w_t · h_t with ``loss_weights w: (T, n)``.

>>> import numpy as np
>>> from gradproof.numeric.initialization import init, random_sequence
>>> p = init("lstm", hidden=2, inputs=3, seed=0)
>>> xs = random_sequence(5, 3, seed=1)
>>> TorchReference().step_jacobians("lstm", p, xs).shape
(5, 4, 4)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from ..derive.activations import activation
from ..derive.cells import GRU, LSTM, RNN, Cell
from ..derive.define import DefinedCell
from ..derive.errors import GradproofError
from .convert import TORCH_CELLS, to_torch
from .initialization import check_parameters, resolve_cell
from .activations import torch_function

__all__ = [
    "CellLike",
    "Params",
    "torch_step",
    "program_step",
    "TorchReference",
    "TorchModuleReference",
]

_DT = torch.float64

#: a cell or its name
CellLike = str | Cell
#: name -> array, the cell's parameters (names and shapes in :mod:`numeric.initialization`)
Params = Mapping[str, ArrayLike]


# -- one step, by hand -------------------------------------------------------------------------
def torch_step(
    cell: CellLike, params_t: Mapping[str, Tensor], s_prev: Tensor, x: Tensor
) -> Tensor:
    r"""One step s_t = F(s_{t-1}, x_t) of a cell, written in torch from its definition.

    * RNN (docs/math.md §1): :math:`h' = σ(W_h h + W_x x + b)`.
    * LSTM (§3): :math:`f, i, o = \mathrm{sigmoid}(W_• h + U_• x + b_•)`,
      :math:`g = \tanh(W_c h + U_c x + b_c)`, :math:`c' = f ⊙ c + i ⊙ g`,
      :math:`h' = o ⊙ \tanh c'`; state ``[h; c]``.
    * GRU, lecture (§4): :math:`u, r = \mathrm{sigmoid}(W_• h + U_• x + b_•)`,
      :math:`\tilde h = \tanh(W_h (r ⊙ h) + U_h x + b_h)`,
      :math:`h' = (1-u) ⊙ h + u ⊙ \tilde h`.
    * GRU, PyTorch (§4): :math:`r, z = \mathrm{sigmoid}(W_• h + U_• x + b_•)`,
      :math:`n = \tanh(U_n x + b_{in} + r ⊙ (W_n h + b_{hn}))`,
      :math:`h' = (1-z) ⊙ n + z ⊙ h`.

    Parameters
    ----------
    cell : the cell or its name.
    params_t : name -> float64 tensor (shapes as in :mod:`numeric.initialization`).
    s_prev : (S,) the previous state.
    x : (inputs,) the input.

    Returns
    -------
    (S,) the new state. Differentiable, and ``torch.func``-transformable.
    """
    c = resolve_cell(cell)
    P = params_t

    def affine(W: str, U: str, b: str, h: Tensor) -> Tensor:
        return P[W] @ h + P[U] @ x + P[b]

    if isinstance(c, RNN):
        return torch_function(c.activation)(affine("W_h", "W_x", "b", s_prev))  # type: ignore[union-attr]
    if isinstance(c, LSTM):
        n = s_prev.shape[0] // 2
        h, cell_state = s_prev[:n], s_prev[n:]
        f = torch.sigmoid(affine("W_f", "U_f", "b_f", h))
        i = torch.sigmoid(affine("W_i", "U_i", "b_i", h))
        o = torch.sigmoid(affine("W_o", "U_o", "b_o", h))
        g = torch.tanh(affine("W_c", "U_c", "b_c", h))
        c_new = f * cell_state + i * g
        return torch.cat([o * torch.tanh(c_new), c_new])
    if isinstance(c, GRU) and c.reset == "before":
        h = s_prev
        u = torch.sigmoid(affine("W_u", "U_u", "b_u", h))
        r = torch.sigmoid(affine("W_r", "U_r", "b_r", h))
        h_tilde = torch.tanh(P["W_h"] @ (r * h) + P["U_h"] @ x + P["b_h"])
        return (1.0 - u) * h + u * h_tilde
    if isinstance(c, GRU):
        h = s_prev
        r = torch.sigmoid(affine("W_r", "U_r", "b_r", h))
        z = torch.sigmoid(affine("W_z", "U_z", "b_z", h))
        n_gate = torch.tanh(P["U_n"] @ x + P["b_in"] + r * (P["W_n"] @ h + P["b_hn"]))
        return (1.0 - z) * n_gate + z * h
    if isinstance(c, DefinedCell):
        return program_step(c, P, s_prev, x)
    raise GradproofError(f"torch_step does not know the cell {c!r}")  # pragma: no cover


def program_step(c: DefinedCell, P: Mapping[str, Tensor], s_prev: Tensor, x: Tensor) -> Tensor:
    """One step of a cell defined by equations, run in torch from its parsed program.

    Independent of the SymPy definitions: the program (:func:`derive.define.parse_equations`,
    built straight from the user's text) is walked with torch operations; ``@`` is ``P @ v``,
    ``*`` elementwise, functions are the activations' torch versions. s_prev: (S,), x: (m,).
    """
    n = s_prev.shape[0] // len(c.state)
    values: dict[tuple[str, int], Tensor] = {}
    state = {s: s_prev[k * n : (k + 1) * n] for k, s in enumerate(c.state)}

    def run(node: tuple) -> Any:
        tag = node[0]
        if tag == "state":
            return state[node[1]]
        if tag == "var":
            return values[(node[1], node[2])]
        if tag == "param":
            return P[node[1]]
        if tag == "input":
            return x
        if tag == "num":
            return float(node[1])
        if tag == "matmul":
            return P[node[1]] @ run(node[2])
        if tag == "mul":
            return run(node[1]) * run(node[2])
        if tag == "add":
            return run(node[1]) + run(node[2])
        if tag == "sub":
            return run(node[1]) - run(node[2])
        if tag == "neg":
            return -run(node[1])
        if tag == "onem":
            return 1.0 - run(node[1])
        if tag == "call":
            return torch_function(activation(node[1]))(run(node[2]))
        raise AssertionError(node)  # pragma: no cover

    last: dict[str, int] = {}
    for name, version, node in c.program:
        values[(name, version)] = run(node)
        last[name] = version
    return torch.cat([values[(s, last[s])] for s in c.state])


# -- validation --------------------------------------------------------------------------------
def _array(value: Any, what: str, shape: tuple[int | None, ...], hint: str) -> np.ndarray:
    try:
        a = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise GradproofError(
            f"{what} must be a real array {hint}, got {type(value).__name__}"
        ) from None
    if a.ndim != len(shape) or any(w is not None and w != g for w, g in zip(shape, a.shape)):
        raise GradproofError(f"{what} must have shape {hint}, got {a.shape}")
    if a.size and not np.all(np.isfinite(a)):
        raise GradproofError(f"{what} must be finite; it holds nan or inf")
    return a


class _Problem:
    """A validated call: cell, sizes and float64 tensors."""

    def __init__(self, cell: CellLike, params: Params, xs: ArrayLike, s0: ArrayLike | None) -> None:
        self.cell = resolve_cell(cell)
        xs_np = _array(xs, "xs", (None, None), "(T, inputs)")
        if xs_np.shape[0] < 1 or xs_np.shape[1] < 1:
            raise GradproofError(
                f"xs must have shape (T, inputs) with T, inputs >= 1, got {xs_np.shape}"
            )
        self.T, m = xs_np.shape
        self.n, self.m = check_parameters(self.cell, params, inputs=m)
        self.S = self.cell.state_size(self.n)
        for k in self.cell.parameter_names:
            if not np.all(np.isfinite(np.asarray(params[k], dtype=np.float64))):
                raise GradproofError(f"parameter {k} must be finite; it holds nan or inf")
        names = self.cell.parameter_names
        self.params = {k: np.asarray(params[k], dtype=np.float64) for k in names}
        self.xs = torch.as_tensor(xs_np.copy(), dtype=_DT)
        if s0 is None:
            self.s0 = torch.zeros(self.S, dtype=_DT)
        else:
            hint = f"(S,) = ({self.S},) for {self.cell.name}"
            self.s0 = torch.as_tensor(_array(s0, "s0", (self.S,), hint).copy(), dtype=_DT)

    def weights(self, loss_weights: Any) -> Tensor:
        hint = f"(T, hidden) = ({self.T}, {self.n})"
        w = _array(loss_weights, "loss_weights", (self.T, self.n), hint)
        return torch.as_tensor(w.copy(), dtype=_DT)

    def tensors(self, requires_grad: bool = False) -> dict[str, Tensor]:
        return {
            k: torch.tensor(v, dtype=_DT, requires_grad=requires_grad)
            for k, v in self.params.items()
        }


def _np(t: Tensor) -> np.ndarray:
    return t.detach().numpy().copy()


# -- reference 1: the hand-written torch cells -------------------------------------------------
class TorchReference:
    """Autodiff of :func:`torch_step`, the cells typed in from docs/math.md, for every cell."""

    name = "torch"

    def _states(self, p: _Problem, P: Mapping[str, Tensor]) -> Tensor:
        states = [p.s0]
        for t in range(p.T):
            states.append(torch_step(p.cell, P, states[-1], p.xs[t]))
        return torch.stack(states)

    def forward(
        self, cell: CellLike, params: Params, xs: ArrayLike, s0: ArrayLike | None = None
    ) -> np.ndarray:
        """States s_0 .. s_T: (T + 1, S)."""
        p = _Problem(cell, params, xs, s0)
        with torch.no_grad():
            return _np(self._states(p, p.tensors()))

    def _jacobians(
        self, cell: CellLike, params: Params, xs: ArrayLike, s0: ArrayLike | None, argnum: int
    ) -> np.ndarray:
        p = _Problem(cell, params, xs, s0)
        P = p.tensors()
        with torch.no_grad():
            states = self._states(p, P)

        # Step t depends only on (s_{t-1}, x_t), so one reverse pass per output row i of the summed
        # outputs Σ_t s_t[i] gives row i of every step's Jacobian at once: S passes in all. Plain
        # autograd, not torch.func: jacrev loads torch._dynamo, over a second of start-up here.
        s_in = states[:-1].clone().requires_grad_(argnum == 0)
        x_in = p.xs.clone().requires_grad_(argnum == 1)
        wrt = s_in if argnum == 0 else x_in
        out = torch.stack([torch_step(p.cell, P, s_in[t], x_in[t]) for t in range(p.T)])
        rows = []
        for i in range(out.shape[1]):
            (g,) = torch.autograd.grad(out[:, i].sum(), wrt, retain_graph=True, allow_unused=True)
            rows.append(torch.zeros_like(wrt) if g is None else g)
        return _np(torch.stack(rows, dim=1))  # (T, S, S) or (T, S, inputs)

    def step_jacobians(
        self, cell: CellLike, params: Params, xs: ArrayLike, s0: ArrayLike | None = None
    ) -> np.ndarray:
        """∂s_t/∂s_{t-1} along the trajectory: (T, S, S), entry t-1 for step t."""
        return self._jacobians(cell, params, xs, s0, 0)

    def input_jacobians(
        self, cell: CellLike, params: Params, xs: ArrayLike, s0: ArrayLike | None = None
    ) -> np.ndarray:
        """∂s_t/∂x_t along the trajectory: (T, S, inputs), entry t-1 for step t."""
        return self._jacobians(cell, params, xs, s0, 1)

    def parameter_gradients(
        self,
        cell: CellLike,
        params: Params,
        xs: ArrayLike,
        s0: ArrayLike | None = None,
        *,
        loss_weights: ArrayLike,
    ) -> dict[str, np.ndarray]:
        """∂J/∂θ of J = Σ_t w_t · h_t through the unrolled sequence, name -> array like θ.

        ``loss_weights: (T, hidden)``.
        """
        p = _Problem(cell, params, xs, s0)
        w = p.weights(loss_weights=loss_weights)
        P = p.tensors(requires_grad=True)
        states = self._states(p, P)
        J = (w * states[1:, : p.n]).sum()
        names = list(P)
        grads = torch.autograd.grad(J, [P[k] for k in names])
        return {k: _np(g) for k, g in zip(names, grads)}


# -- reference 2: the real torch.nn modules ----------------------------------------------------
class TorchModuleReference:
    """The same quantities computed through ``to_torch(cell, params)``, a real ``torch.nn`` module.

    ``forward`` runs the module on the whole sequence (``xs[:, None, :]``, batch 1); ``nn.LSTM``
    only returns the last cell state, so for the LSTM the states come from one-step calls.
    Jacobians are those of a one-step call ``module(x_t[None, None, :], s_{t-1})``.
    """

    name = "torch.nn"

    def _setup(
        self, cell: CellLike, params: Params, xs: ArrayLike, s0: ArrayLike | None
    ) -> tuple[_Problem, torch.nn.Module]:
        c = resolve_cell(cell)
        if c.name not in TORCH_CELLS:
            raise GradproofError(
                f"the 'torch.nn' reference runs torch.nn modules, which exist for "
                f"{', '.join(TORCH_CELLS)}; got {c.name!r}; use the 'torch' reference instead"
            )
        p = _Problem(c, params, xs, s0)
        return p, to_torch(c, p.params)

    @staticmethod
    def _call(p: _Problem, module: torch.nn.Module, s: Tensor, x: Tensor) -> Tensor:
        """One step through the module: s (S,), x (m,) -> (S,)."""
        n = p.n
        if p.cell.kind == "lstm":
            _, (h, c) = module(x[None, None, :], (s[:n].reshape(1, 1, n), s[n:].reshape(1, 1, n)))
            return torch.cat([h.reshape(n), c.reshape(n)])
        _, h = module(x[None, None, :], s.reshape(1, 1, n))
        return h.reshape(n)

    def _states(self, p: _Problem, module: torch.nn.Module) -> Tensor:
        if p.cell.kind == "lstm":
            states = [p.s0]
            for t in range(p.T):
                states.append(self._call(p, module, states[-1], p.xs[t]))
            return torch.stack(states)
        out, _ = module(p.xs[:, None, :], p.s0.reshape(1, 1, p.n))
        return torch.cat([p.s0[None, :], out[:, 0, :]])

    def forward(
        self, cell: CellLike, params: Params, xs: ArrayLike, s0: ArrayLike | None = None
    ) -> np.ndarray:
        """States s_0 .. s_T: (T + 1, S)."""
        p, module = self._setup(cell, params, xs, s0)
        with torch.no_grad():
            return _np(self._states(p, module))

    def _jacobians(
        self, cell: CellLike, params: Params, xs: ArrayLike, s0: ArrayLike | None
    ) -> tuple[np.ndarray, np.ndarray]:
        p, module = self._setup(cell, params, xs, s0)
        with torch.no_grad():
            states = self._states(p, module)
        js, jx = [], []
        for t in range(p.T):
            a, b = torch.autograd.functional.jacobian(
                lambda s, x: self._call(p, module, s, x), (states[t].clone(), p.xs[t].clone())
            )
            js.append(a)
            jx.append(b)
        return _np(torch.stack(js)), _np(torch.stack(jx))

    def step_jacobians(
        self, cell: CellLike, params: Params, xs: ArrayLike, s0: ArrayLike | None = None
    ) -> np.ndarray:
        """∂s_t/∂s_{t-1} along the trajectory: (T, S, S), entry t-1 for step t."""
        return self._jacobians(cell, params, xs, s0)[0]

    def input_jacobians(
        self, cell: CellLike, params: Params, xs: ArrayLike, s0: ArrayLike | None = None
    ) -> np.ndarray:
        """∂s_t/∂x_t along the trajectory: (T, S, inputs), entry t-1 for step t."""
        return self._jacobians(cell, params, xs, s0)[1]

    def parameter_gradients(
        self,
        cell: CellLike,
        params: Params,
        xs: ArrayLike,
        s0: ArrayLike | None = None,
        *,
        loss_weights: ArrayLike,
    ) -> dict[str, np.ndarray]:
        """∂J/∂θ by backward through the module on the whole sequence, under gradproof's names.

        A bias that PyTorch splits into ``bias_ih + bias_hh`` gets ``bias_ih``'s gradient; the
        two are checked to be equal.
        """
        p, module = self._setup(cell, params, xs, s0)
        w = p.weights(loss_weights=loss_weights)
        n = p.n
        h0 = p.s0[:n].reshape(1, 1, n)
        hx = (h0, p.s0[n:].reshape(1, 1, n)) if p.cell.kind == "lstm" else h0
        out, _ = module(p.xs[:, None, :], hx)
        J = (w * out[:, 0, :]).sum()
        tensors = [module.weight_ih_l0, module.weight_hh_l0, module.bias_ih_l0, module.bias_hh_l0]
        g_ih, g_hh, gb_ih, gb_hh = (_np(g) for g in torch.autograd.grad(J, tensors))
        return _module_gradients(p.cell, n, g_ih, g_hh, gb_ih, gb_hh)


def _same(a: np.ndarray, b: np.ndarray, what: str) -> np.ndarray:
    scale = max(float(np.max(np.abs(a), initial=0.0)), 1e-300)
    if not np.allclose(a, b, rtol=1e-12, atol=1e-12 * scale):
        raise RuntimeError(f"torch.nn gradients of bias_ih and bias_hh differ for {what}")
    return a


def _module_gradients(
    c: Cell, n: int, g_ih: np.ndarray, g_hh: np.ndarray, gb_ih: np.ndarray, gb_hh: np.ndarray
) -> dict[str, np.ndarray]:
    if c.kind == "rnn":
        return {"W_h": g_hh, "W_x": g_ih, "b": _same(gb_ih, gb_hh, "b")}

    def chunk(a: np.ndarray, j: int) -> np.ndarray:
        return a[j * n : (j + 1) * n].copy()

    out: dict[str, np.ndarray] = {}
    gates = ("i", "f", "c", "o") if c.kind == "lstm" else ("r", "z", "n")  # PyTorch's order
    for j, g in enumerate(gates):
        out[f"W_{g}"] = chunk(g_hh, j)
        out[f"U_{g}"] = chunk(g_ih, j)
        if c.kind == "lstm" or g != "n":
            out[f"b_{g}"] = _same(chunk(gb_ih, j), chunk(gb_hh, j), f"b_{g}")
    if c.kind == "gru":
        out["b_in"] = chunk(gb_ih, 2)
        out["b_hn"] = chunk(gb_hh, 2)
    return {k: out[k] for k in c.parameter_names}
