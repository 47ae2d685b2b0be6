"""Between gradproof's parameter dicts and ``torch.nn.RNN`` / ``LSTM`` / ``GRU`` modules.

The mapping (docs/math.md §1, §3, §4; PyTorch stacks the gates' rows in one matrix per side):

==============  ============================  ==============================================
cell            module                        weights (rows stacked top to bottom)
==============  ============================  ==============================================
``rnn-tanh``    ``nn.RNN(nonlinearity=tanh)``  weight_hh = W_h, weight_ih = W_x
``rnn-relu``    ``nn.RNN(nonlinearity=relu)``  weight_hh = W_h, weight_ih = W_x
``lstm``        ``nn.LSTM``                    chunks (i, f, g, o): W_i, W_f, W_c, W_o / U_•
``gru-torch``   ``nn.GRU``                     chunks (r, z, n): W_r, W_z, W_n / U_•
==============  ============================  ==============================================

Biases: PyTorch adds ``bias_ih + bias_hh``; gradproof keeps one bias per gate, so
:func:`from_torch` sums them and :func:`to_torch` stores the bias in ``bias_ih`` and a zero in
``bias_hh``, except the GRU's n chunk where the two are not redundant (``b_in`` in ``bias_ih``,
``b_hn`` in ``bias_hh``: b_hn is multiplied by r). The zero is ``-0.0``: ``x + (-0.0)`` is ``x``
bit for bit for every float x (also ``+0.0``), so ``from_torch(to_torch(c, p))`` returns ``p``
exactly. The lecture's GRU (``gru``, reset before the matmul) has no ``torch.nn`` module.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ..derive.cells import GRU, LSTM, RNN, Cell
from ..derive.errors import GradproofError
from .initialization import check_parameters, resolve_cell

__all__ = ["to_torch", "from_torch", "load_torch_model", "TORCH_CELLS"]

#: The cells that have a torch.nn module.
TORCH_CELLS = ("rnn-tanh", "rnn-relu", "lstm", "gru-torch")

# Gate chunks of weight_ih/weight_hh/bias in PyTorch's order -> gradproof's gate letter.
_CHUNKS = {"lstm": ("i", "f", "c", "o"), "gru": ("r", "z", "n")}
_ROWS_PER_HIDDEN = {"rnn": 1, "lstm": 4, "gru": 3}
_MODULES = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def _torch_cell(spec: str | Cell, what: str) -> Cell:
    c = resolve_cell(spec)
    if c.name not in TORCH_CELLS:
        hint = (
            " (the lecture's GRU resets before the matmul; nn.GRU is 'gru-torch', docs/math.md §4)"
            if c.name == "gru"
            else ""
        )
        raise GradproofError(
            f"{what}: cell {c.name!r} has no torch.nn module{hint}; "
            f"supported: {', '.join(TORCH_CELLS)}"
        )
    return c


def _tensor(a: Any) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.float64, copy=True))


def _neg_zeros(n: int) -> torch.Tensor:
    return torch.full((n,), -0.0, dtype=torch.float64)


def to_torch(cell: str | Cell, params: Mapping[str, Any]) -> nn.Module:
    """A float64 single-layer unidirectional ``torch.nn`` module with these parameters.

    Parameters
    ----------
    cell : ``rnn-tanh``, ``rnn-relu``, ``lstm`` or ``gru-torch`` (or the cell object).
    params : the cell's parameter dict (names and shapes in :mod:`numeric.initialization`).

    Returns
    -------
    ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU`` with ``batch_first=False``, ``num_layers=1``,
    ``bidirectional=False``, ``dtype=torch.float64``.
    """
    c = _torch_cell(cell, "to_torch")
    n, m = check_parameters(c, params)
    kind = c.kind
    common = dict(
        input_size=m, hidden_size=n, num_layers=1, bias=True, batch_first=False,
        bidirectional=False, dtype=torch.float64,
    )  # fmt: skip
    if isinstance(c, RNN):
        module: nn.Module = nn.RNN(nonlinearity=c.activation.name, **common)
        w_hh, w_ih = params["W_h"], params["W_x"]
        b_ih, b_hh = _tensor(params["b"]), _neg_zeros(n)
    else:
        module = _MODULES[kind](**common)
        gates = _CHUNKS[kind]
        w_hh = np.concatenate([np.asarray(params[f"W_{g}"], dtype=np.float64) for g in gates])
        w_ih = np.concatenate([np.asarray(params[f"U_{g}"], dtype=np.float64) for g in gates])
        if kind == "lstm":
            b_ih = torch.cat([_tensor(params[f"b_{g}"]) for g in gates])
            b_hh = _neg_zeros(4 * n)
        else:
            b_ih = torch.cat([_tensor(params[k]) for k in ("b_r", "b_z", "b_in")])
            b_hh = torch.cat([_neg_zeros(2 * n), _tensor(params["b_hn"])])
    with torch.no_grad():
        module.weight_hh_l0.copy_(_tensor(w_hh))
        module.weight_ih_l0.copy_(_tensor(w_ih))
        module.bias_ih_l0.copy_(b_ih)
        module.bias_hh_l0.copy_(b_hh)
    return module


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(device="cpu", dtype=torch.float64).numpy().copy()


def from_torch(
    module: nn.Module, *, cell: str | Cell | None = None
) -> tuple[Cell, dict[str, np.ndarray]]:
    """The cell and float64 parameters of a single-layer ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``.

    ``nn.GRU`` is the PyTorch form ``gru-torch``; asking for ``cell="gru"`` (the lecture's form)
    is an error. ``batch_first`` does not matter; ``bias=False`` gives zero biases.

    Parameters
    ----------
    module : the module (any dtype/device; the weights are copied to float64 numpy).
    cell : optional, the cell the caller expects; an error if the module is another cell.

    Returns
    -------
    (cell, params) with params: name -> ndarray as in :mod:`numeric.initialization`.
    """
    if isinstance(module, nn.LSTM):
        kind = "lstm"
    elif isinstance(module, nn.GRU):
        kind = "gru"
    elif isinstance(module, nn.RNN):
        kind = "rnn"
    else:
        raise GradproofError(
            f"from_torch expects torch.nn.RNN, LSTM or GRU, got {type(module).__name__}"
        )
    name = type(module).__name__
    if module.num_layers != 1:
        raise GradproofError(
            f"from_torch handles a single-layer {name}, got num_layers={module.num_layers}; "
            f"convert one layer at a time"
        )
    if module.bidirectional:
        raise GradproofError(
            f"from_torch handles a unidirectional {name}, got bidirectional=True; "
            f"convert each direction separately"
        )
    if getattr(module, "proj_size", 0):
        raise GradproofError(
            f"from_torch does not handle an LSTM with projections, got proj_size={module.proj_size}"
        )
    if kind == "rnn":
        nonlinearity = getattr(module, "nonlinearity", None)
        if nonlinearity not in ("tanh", "relu"):
            raise GradproofError(
                f"nn.RNN nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}"
            )
        found: Cell = RNN(activation=nonlinearity)
    elif kind == "lstm":
        found = LSTM()
    else:
        found = GRU(reset="after")
    if cell is not None:
        wanted = resolve_cell(cell)
        if wanted.name != found.name:
            hint = (
                "; nn.GRU resets after the matmul, which is 'gru-torch' (docs/math.md §4)"
                if wanted.name == "gru" and kind == "gru"
                else ""
            )
            raise GradproofError(
                f"from_torch: the module {name} is cell {found.name!r}, not {wanted.name!r}{hint}"
            )

    n = module.hidden_size
    w_hh, w_ih = _numpy(module.weight_hh_l0), _numpy(module.weight_ih_l0)
    if module.bias:
        b = _numpy(module.bias_ih_l0)
        b_hh = _numpy(module.bias_hh_l0)
    else:
        b = np.zeros(_ROWS_PER_HIDDEN[kind] * n)
        b_hh = np.zeros(_ROWS_PER_HIDDEN[kind] * n)
    params: dict[str, np.ndarray] = {}
    if kind == "rnn":
        params = {"W_h": w_hh, "W_x": w_ih, "b": b + b_hh}
    else:
        gates = _CHUNKS[kind]
        chunk = {g: slice(j * n, (j + 1) * n) for j, g in enumerate(gates)}
        for g in gates:
            params[f"W_{g}"] = w_hh[chunk[g]].copy()
        for g in gates:
            params[f"U_{g}"] = w_ih[chunk[g]].copy()
        if kind == "lstm":
            for g in gates:
                params[f"b_{g}"] = b[chunk[g]] + b_hh[chunk[g]]
        else:
            params["b_r"] = b[chunk["r"]] + b_hh[chunk["r"]]
            params["b_z"] = b[chunk["z"]] + b_hh[chunk["z"]]
            params["b_in"] = b[chunk["n"]].copy()
            params["b_hn"] = b_hh[chunk["n"]].copy()
    ordered = {k: params[k] for k in found.parameter_names}
    return found, ordered


# -- files -------------------------------------------------------------------------------------
_TYPE_ALIASES = {"rnn": "rnn", "lstm": "lstm", "gru": "gru", "gru-torch": "gru"}


def _first_line(exc: BaseException) -> str:
    """The exception's type and first line, without terminal colour codes, at most 160 chars."""
    if "Weights only load failed" in str(exc):
        return "it holds objects that weights_only loading refuses, such as a whole nn.Module"
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= 160 else text[:157] + "..."


def load_torch_model(path: str | os.PathLike[str], *, nonlinearity: str | None = None) -> nn.Module:
    """Load a single-layer ``nn.RNN``/``LSTM``/``GRU`` saved with ``torch.save``, as float64.

    The file is read with ``torch.load(path, weights_only=True, map_location="cpu")`` and holds

    * a ``state_dict()`` of the module: keys ``weight_ih_l0 weight_hh_l0`` and optionally
      ``bias_ih_l0 bias_hh_l0``. The type comes from the rows of ``weight_hh_l0`` per hidden unit
      (1 RNN, 4 LSTM, 3 GRU); an RNN's state_dict does not record tanh or relu, so pass
      ``nonlinearity`` (default ``"tanh"``); or
    * a dict ``{"type": "rnn"|"lstm"|"gru", "nonlinearity": "tanh"|"relu", "state_dict": {...}}``
      (``nonlinearity`` only for ``rnn``).

    ``nonlinearity`` is ignored for LSTM and GRU files. Returns the module on the CPU in float64;
    :func:`from_torch` gives its cell and parameters.
    """
    where = os.fspath(path)
    if not os.path.isfile(where):
        raise GradproofError(
            f"no model file at {where!r}; save one with torch.save(module.state_dict(), path)"
        )
    try:
        obj = torch.load(where, weights_only=True, map_location="cpu")
    except Exception as exc:  # torch raises many types for a bad file
        raise GradproofError(
            f"cannot read {where!r} as a torch weights file ({_first_line(exc)}); "
            f"save a state_dict with torch.save(module.state_dict(), path)"
        ) from None
    if not isinstance(obj, Mapping):
        raise GradproofError(
            f"{where!r} holds a {type(obj).__name__}, expected a state_dict of nn.RNN/LSTM/GRU"
        )
    declared: str | None = None
    if "state_dict" in obj or "type" in obj:
        unknown = sorted(set(obj) - {"type", "nonlinearity", "state_dict"})
        if unknown or "state_dict" not in obj or "type" not in obj:
            raise GradproofError(
                f"{where!r}: a described model needs keys 'type' and 'state_dict' (and "
                f"optionally 'nonlinearity'), got {sorted(obj)}"
            )
        declared_raw = obj["type"]
        if not isinstance(declared_raw, str) or declared_raw.lower() not in _TYPE_ALIASES:
            raise GradproofError(
                f"{where!r}: 'type' must be one of rnn, lstm, gru, got {declared_raw!r}"
            )
        declared = _TYPE_ALIASES[declared_raw.lower()]
        if "nonlinearity" in obj:
            file_nl = obj["nonlinearity"]
            if nonlinearity is not None and file_nl != nonlinearity:
                raise GradproofError(
                    f"{where!r} says nonlinearity={file_nl!r} but nonlinearity="
                    f"{nonlinearity!r} was passed; drop one of them"
                )
            nonlinearity = file_nl
        state = obj["state_dict"]
        if not isinstance(state, Mapping):
            raise GradproofError(
                f"{where!r}: 'state_dict' must be a dict of tensors, got {type(state).__name__}"
            )
    else:
        state = obj
    return _module_from_state(state, declared, nonlinearity, where)


def _module_from_state(
    state: Mapping[str, Any], declared: str | None, nonlinearity: str | None, where: str
) -> nn.Module:
    keys = set(state)
    for k in sorted(keys):
        if k.endswith("_reverse"):
            raise GradproofError(f"{where!r} is a bidirectional model (key {k}); not supported")
        if k.startswith("weight_hr"):
            raise GradproofError(f"{where!r} is an LSTM with projections (key {k}); not supported")
        layer = re.search(r"_l(\d+)$", k)
        if layer is not None and int(layer.group(1)) != 0:
            raise GradproofError(
                f"{where!r} is a multi-layer model (key {k}); convert a single layer"
            )
    required = {"weight_ih_l0", "weight_hh_l0"}
    biases = {"bias_ih_l0", "bias_hh_l0"}
    if not required <= keys or not (keys - required) in (set(), biases):
        raise GradproofError(
            f"{where!r} is not the state_dict of a single-layer nn.RNN/LSTM/GRU: expected keys "
            f"{sorted(required | biases)}, got {sorted(keys)}"
        )
    for k in keys:
        v = state[k]
        if not isinstance(v, torch.Tensor) or not v.is_floating_point():
            raise GradproofError(
                f"{where!r}: {k} must be a floating-point tensor, got {type(v).__name__}"
            )
    w_ih, w_hh = state["weight_ih_l0"], state["weight_hh_l0"]
    if w_hh.ndim != 2 or w_ih.ndim != 2 or w_hh.shape[1] < 1 or w_ih.shape[1] < 1:
        raise GradproofError(
            f"{where!r}: weight_ih_l0 and weight_hh_l0 must be matrices, got shapes "
            f"{tuple(w_ih.shape)} and {tuple(w_hh.shape)}"
        )
    n, m = int(w_hh.shape[1]), int(w_ih.shape[1])
    rows = int(w_hh.shape[0])
    ratio = rows // n if rows % n == 0 else None
    inferred = {1: "rnn", 4: "lstm", 3: "gru"}.get(ratio)  # type: ignore[arg-type]
    if inferred is None or w_ih.shape[0] != rows:
        raise GradproofError(
            f"{where!r}: weight_hh_l0 {tuple(w_hh.shape)} and weight_ih_l0 {tuple(w_ih.shape)} "
            f"do not have n, 4n (LSTM) or 3n (GRU) rows for hidden size n={n}"
        )
    if declared is not None and declared != inferred:
        raise GradproofError(
            f"{where!r} says type={declared!r} but its weights have {ratio}n rows, "
            f"which is {inferred!r}"
        )
    if keys >= biases:
        for k in biases:
            if tuple(state[k].shape) != (rows,):
                raise GradproofError(
                    f"{where!r}: {k} must have shape ({rows},), got {tuple(state[k].shape)}"
                )
    kwargs: dict[str, Any] = dict(
        input_size=m, hidden_size=n, num_layers=1, bias=keys >= biases, batch_first=False,
        bidirectional=False, dtype=torch.float64,
    )  # fmt: skip
    if inferred == "rnn":
        nl = "tanh" if nonlinearity is None else nonlinearity
        if nl not in ("tanh", "relu"):
            raise GradproofError(
                f"nonlinearity for an nn.RNN must be 'tanh' or 'relu', got {nl!r}"
            )
        kwargs["nonlinearity"] = nl
    module = _MODULES[inferred](**kwargs)
    with torch.no_grad():
        for k in keys:
            getattr(module, k).copy_(state[k].to(torch.float64))
    return module
