r"""Every derived Jacobian of a (stacked, bidirectional) ``torch.nn`` module against its own autograd.

The real module never exposes one layer's step, so the step is taken through the module itself:
``module(x_t, h_prev)`` on a sequence of length 1, with ``h_prev`` holding for every layer the
forward state at t−1 and the reverse state at t+1, computes every layer's state at time t
exactly as the whole-sequence call does. The Jacobian of that call (``torch.autograd``, float64)

* with respect to layer l, direction d's own previous state is the step Jacobian
  :math:`A^{l,d}_t = \partial s^{l,d}_t/\partial s^{l,d}_{t\mp1}`;
* with respect to x_t, for layer 0, is the input Jacobian :math:`B^{0,d}_t`;
* with respect to layer l−1, direction d′'s previous state is
  :math:`B^{l,d}_t[:, d'] \, P_h \, A^{l-1,d'}_t` (P_h keeps h of [h; c]); A has full rank, so this
  checks the depth Jacobian :math:`\partial s^{l,d}_t/\partial h^{l-1,d'}_t`.

Then the chained quantities — :math:`\partial o_t/\partial x_s` for all t, s and
:math:`\partial o_T/\partial(h_0, c_0)` — are compared with autograd of the whole-sequence call.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .convert import from_torch_stacked
from .references import TOLERANCES
from .stacked import (
    initial_state_jacobians,
    input_output_jacobians,
    layer_input_jacobians,
    stacked_step_jacobians,
    unroll_stacked,
)
from .verify import Check, Verification, compare

__all__ = ["verify_torch_module"]


def _hx(module: nn.Module, h: torch.Tensor, c: torch.Tensor | None):
    return (h, c) if isinstance(module, nn.LSTM) else h


def verify_torch_module(
    module: nn.Module,
    xs: object,
    s0: object | None = None,
    *,
    rtol: float | None = None,
    atol: float | None = None,
) -> Verification:
    """Compare every derived Jacobian of ``module`` with ``torch.autograd`` of the module itself.

    Parameters
    ----------
    module : ``nn.RNN``/``LSTM``/``GRU``, any ``num_layers``, ``bidirectional``, ``bias``,
        ``batch_first``; run in float64 (a float32 module is compared through a float64 copy).
    xs : (T, m) one input sequence.
    s0 : (L, D, S) initial states ([h; c] for the LSTM), zeros by default.
    rtol, atol : default 1e-10 and 1e-13: ``|a - b| <= atol + rtol · max|b|`` at every step.

    Returns
    -------
    :class:`numeric.Verification` with one :class:`~numeric.verify.Check` per quantity, layer and
    direction (its ``block`` names them), reference ``torch.nn autograd``.
    """
    model = from_torch_stacked(module)
    r_default, a_default = TOLERANCES["torch.nn"]
    rtol = r_default if rtol is None else float(rtol)
    atol = a_default if atol is None else float(atol)
    mod = module if next(module.parameters()).dtype == torch.float64 else _double(module)
    traj = unroll_stacked(model, xs, s0)
    x = traj.xs
    L, D, n, S, m, T = model.num_layers, model.directions, model.hidden, model.state_size, model.inputs, traj.T
    init = np.zeros((L, D, S)) if s0 is None else np.asarray(s0, dtype=np.float64)
    lstm = model.cell.kind == "lstm"
    A = stacked_step_jacobians(model, x, init)
    B = layer_input_jacobians(model, x, init)

    ref_a = np.zeros((L, D, T, S, S))
    ref_b0 = np.zeros((D, T, S, m))
    ref_depth = np.zeros((L, D, D, T, S, S))
    ours_depth = np.zeros((L, D, D, T, S, S))
    X = torch.from_numpy(x)

    def one_step(flat: torch.Tensor, xt: torch.Tensor) -> torch.Tensor:
        s = flat.reshape(L * D, S)
        h = s[:, :n][:, None].contiguous()
        c = s[:, n:][:, None].contiguous() if lstm else None
        _, hn = mod(xt[None, None], _hx(mod, h, c))
        if lstm:
            return torch.cat([hn[0][:, 0], hn[1][:, 0]], dim=1).reshape(-1)
        return hn[:, 0].reshape(-1)

    for t in range(T):
        prev = np.empty((L, D, S))
        for l in range(L):
            for d in range(D):
                nb = t - 1 if d == 0 else t + 1
                prev[l, d] = init[l, d] if not 0 <= nb < T else traj.states(l, d)[nb]
        js, jx = torch.autograd.functional.jacobian(one_step, (torch.from_numpy(prev.reshape(-1).copy()), X[t].clone()))
        js = js.numpy().reshape(L, D, S, L, D, S)
        jx = jx.numpy().reshape(L, D, S, m)
        for l in range(L):
            for d in range(D):
                k = t if d == 0 else T - 1 - t
                ref_a[l, d, k] = js[l, d, :, l, d]
                if l == 0:
                    ref_b0[d, t] = jx[0, d]
                    continue
                for d2 in range(D):
                    k2 = t if d2 == 0 else T - 1 - t
                    ours_depth[l, d, d2, t] = B[l][d, t][:, d2 * n : (d2 + 1) * n] @ A[l - 1, d2, k2][:n]
                    ref_depth[l, d, d2, t] = js[l, d, :, l - 1, d2]

    checks: list[Check] = []
    for l in range(L):
        for d in range(D):
            label = model.label(l, d)
            checks.append(compare(A[l, d], ref_a[l, d], quantity="step Jacobian", block=label, rtol=rtol, atol=atol))
            if l == 0:
                checks.append(compare(B[0][d], ref_b0[d], quantity="input Jacobian", block=label, rtol=rtol, atol=atol))
            else:
                for d2 in range(D):
                    below = model.label(l - 1, d2)
                    checks.append(compare(ours_depth[l, d, d2], ref_depth[l, d, d2], quantity="depth Jacobian",
                                          block=f"{label} <- {below}", rtol=rtol, atol=atol))  # fmt: skip

    h0 = torch.from_numpy(init[:, :, :n].reshape(L * D, n).copy())
    c0 = torch.from_numpy(init[:, :, n:].reshape(L * D, n).copy()) if lstm else None

    def run(xx: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        inp = xx[None] if mod.batch_first else xx[:, None]
        out, _ = mod(inp, _hx(mod, h[:, None], None if c is None else c[:, None]))
        return out[0] if mod.batch_first else out[:, 0]

    jac, _ = input_output_jacobians(model, x, init)
    ref = torch.autograd.functional.jacobian(lambda xx: run(xx, h0, c0), X).numpy().transpose(0, 2, 1, 3)
    checks.append(compare(jac, ref, quantity="do_t/dx_s", block="whole stack", rtol=rtol, atol=atol))
    M0 = initial_state_jacobians(model, x, init)
    if lstm:
        refs = torch.autograd.functional.jacobian(lambda h, c: run(X, h, c)[-1], (h0, c0))
        parts = [("do_T/dh0", refs[0], slice(0, n)), ("do_T/dc0", refs[1], slice(n, 2 * n))]
    else:
        refs = torch.autograd.functional.jacobian(lambda h: run(X, h, None)[-1], h0)
        parts = [("do_T/dh0", refs, slice(0, n))]
    for name, r, cols in parts:
        r_np = r.numpy().reshape(D * n, L, D, n)
        for l in range(L):
            for d in range(D):
                checks.append(compare(M0[l, d][:, cols], r_np[:, l, d], quantity=name, block=model.label(l, d),
                                      rtol=rtol, atol=atol, per_step=False))  # fmt: skip
    shape = f"{model.cell.name}, {L} layer{'s' if L > 1 else ''}" + (", bidirectional" if D == 2 else "")
    return Verification(shape, "torch.nn autograd", n, m, T, tuple(checks))


def _double(module: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(module).double()

