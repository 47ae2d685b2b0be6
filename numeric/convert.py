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
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..derive.cells import GRU, LSTM, RNN, Cell
from ..derive.errors import GradproofError
from .initialization import check_parameters, resolve_cell
from .stacked import StackedModel

__all__ = [
    "to_torch",
    "from_torch",
    "from_torch_stacked",
    "load_torch_model",
    "read_torch_file",
    "module_from_file",
    "TorchFile",
    "TORCH_CELLS",
]

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


def _layer_tensors(c: Cell, params: Mapping[str, Any], n: int) -> tuple[Any, Any, torch.Tensor, torch.Tensor]:
    """(weight_hh, weight_ih, bias_ih, bias_hh) of one layer and direction in PyTorch's layout."""
    if isinstance(c, RNN):
        return params["W_h"], params["W_x"], _tensor(params["b"]), _neg_zeros(n)
    kind = c.kind
    gates = _CHUNKS[kind]
    w_hh = np.concatenate([np.asarray(params[f"W_{g}"], dtype=np.float64) for g in gates])
    w_ih = np.concatenate([np.asarray(params[f"U_{g}"], dtype=np.float64) for g in gates])
    if kind == "lstm":
        b_ih = torch.cat([_tensor(params[f"b_{g}"]) for g in gates])
        b_hh = _neg_zeros(4 * n)
    else:
        b_ih = torch.cat([_tensor(params[k]) for k in ("b_r", "b_z", "b_in")])
        b_hh = torch.cat([_neg_zeros(2 * n), _tensor(params["b_hn"])])
    return w_hh, w_ih, b_ih, b_hh


def _module(c: Cell, m: int, n: int, *, num_layers: int = 1, bias: bool = True,
            batch_first: bool = False, bidirectional: bool = False) -> nn.Module:
    common: dict[str, Any] = dict(
        input_size=m, hidden_size=n, num_layers=num_layers, bias=bias, batch_first=batch_first,
        bidirectional=bidirectional, dtype=torch.float64,
    )  # fmt: skip
    if isinstance(c, RNN):
        return nn.RNN(nonlinearity=c.activation.name, **common)
    return _MODULES[c.kind](**common)


def to_torch(cell: str | Cell | StackedModel, params: Mapping[str, Any] | None = None) -> nn.Module:
    """A float64 ``torch.nn`` module with these parameters.

    Parameters
    ----------
    cell : ``rnn-tanh``, ``rnn-relu``, ``lstm`` or ``gru-torch`` (or the cell object); or a
        :class:`numeric.StackedModel` of one of them (then no ``params``).
    params : the cell's parameter dict (names and shapes in :mod:`numeric.initialization`).

    Returns
    -------
    ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``, ``dtype=torch.float64``. For a cell and params:
    ``batch_first=False``, ``num_layers=1``, ``bidirectional=False``. For a StackedModel: its
    ``num_layers``, ``bidirectional``, ``bias`` and ``batch_first``; weights ``*_l{k}`` and
    ``*_l{k}_reverse``.
    """
    if isinstance(cell, StackedModel):
        if params is not None:
            raise GradproofError("to_torch(model) takes no params: the StackedModel holds them")
        return _stack_to_torch(cell)
    if params is None:
        raise GradproofError("to_torch(cell, params) needs the parameter dict")
    c = _torch_cell(cell, "to_torch")
    n, m = check_parameters(c, params)
    module = _module(c, m, n)
    w_hh, w_ih, b_ih, b_hh = _layer_tensors(c, params, n)
    with torch.no_grad():
        module.weight_hh_l0.copy_(_tensor(w_hh))
        module.weight_ih_l0.copy_(_tensor(w_ih))
        module.bias_ih_l0.copy_(b_ih)
        module.bias_hh_l0.copy_(b_hh)
    return module


def _stack_to_torch(model: StackedModel) -> nn.Module:
    c = _torch_cell(model.cell, "to_torch")
    n = model.hidden
    module = _module(c, model.inputs, n, num_layers=model.num_layers, bias=model.bias,
                     batch_first=model.batch_first, bidirectional=model.bidirectional)  # fmt: skip
    with torch.no_grad():
        for l, d in model.blocks():
            sfx = f"_l{l}" + ("_reverse" if d == 1 else "")
            w_hh, w_ih, b_ih, b_hh = _layer_tensors(c, model.layers[l][d], n)
            getattr(module, "weight_hh" + sfx).copy_(_tensor(w_hh))
            getattr(module, "weight_ih" + sfx).copy_(_tensor(w_ih))
            if model.bias:
                getattr(module, "bias_ih" + sfx).copy_(b_ih)
                getattr(module, "bias_hh" + sfx).copy_(b_hh)
    return module


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to(device="cpu", dtype=torch.float64).numpy().copy()


def _kind_and_cell(module: nn.Module, cell: str | Cell | None, what: str) -> tuple[str, Cell]:
    if isinstance(module, nn.LSTM):
        kind = "lstm"
    elif isinstance(module, nn.GRU):
        kind = "gru"
    elif isinstance(module, nn.RNN):
        kind = "rnn"
    else:
        raise GradproofError(
            f"{what} expects torch.nn.RNN, LSTM or GRU, got {type(module).__name__}"
        )
    name = type(module).__name__
    if getattr(module, "proj_size", 0):
        raise GradproofError(
            f"{what} does not handle an LSTM with projections, got proj_size={module.proj_size} "
            "(not supported yet)"
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
                f"{what}: the module {name} is cell {found.name!r}, not {wanted.name!r}{hint}"
            )
    return kind, found


def _layer_params(module: nn.Module, kind: str, found: Cell, suffix: str) -> dict[str, np.ndarray]:
    """gradproof's parameters of the weights ``*{suffix}`` (e.g. ``_l1_reverse``) of a module."""
    n = module.hidden_size
    w_hh = _numpy(getattr(module, "weight_hh" + suffix))
    w_ih = _numpy(getattr(module, "weight_ih" + suffix))
    if module.bias:
        b = _numpy(getattr(module, "bias_ih" + suffix))
        b_hh = _numpy(getattr(module, "bias_hh" + suffix))
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
    return {k: params[k] for k in found.parameter_names}


def from_torch(
    module: nn.Module, *, cell: str | Cell | None = None
) -> tuple[Cell, dict[str, np.ndarray]]:
    """The cell and float64 parameters of a single-layer ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``.

    ``nn.GRU`` is the PyTorch form ``gru-torch``; asking for ``cell="gru"`` (the lecture's form)
    is an error. ``batch_first`` does not matter; ``bias=False`` gives zero biases. A multi-layer
    or bidirectional module is read by :func:`from_torch_stacked`.

    Parameters
    ----------
    module : the module (any dtype/device; the weights are copied to float64 numpy).
    cell : optional, the cell the caller expects; an error if the module is another cell.

    Returns
    -------
    (cell, params) with params: name -> ndarray as in :mod:`numeric.initialization`.
    """
    kind, found = _kind_and_cell(module, cell, "from_torch")
    name = type(module).__name__
    if module.num_layers != 1:
        raise GradproofError(
            f"from_torch handles a single-layer {name}, got num_layers={module.num_layers}; "
            f"use from_torch_stacked(module) for the whole stack"
        )
    if module.bidirectional:
        raise GradproofError(
            f"from_torch handles a unidirectional {name}, got bidirectional=True; "
            f"use from_torch_stacked(module) for both directions"
        )
    return found, _layer_params(module, kind, found, "_l0")


def from_torch_stacked(module: nn.Module, *, cell: str | Cell | None = None) -> StackedModel:
    """Every layer and direction of an ``nn.RNN``/``LSTM``/``GRU`` as a :class:`numeric.StackedModel`.

    Any ``num_layers``, ``bidirectional``, ``bias`` and ``batch_first`` (``proj_size`` must be 0).
    The weights ``weight_ih_l{k}``, ``weight_hh_l{k}``, ``bias_*_l{k}`` and their ``_reverse``
    twins map to ``layers[k][0]`` and ``layers[k][1]`` exactly as :func:`from_torch` maps one
    layer. ``to_torch(from_torch_stacked(m))`` has m's configuration and parameters; its outputs
    equal m's bit for bit when m's ``bias_hh`` is zero outside the GRU's n chunk (as
    :func:`to_torch` writes it); otherwise gradproof's one bias per gate is the float64 sum
    ``bias_ih + bias_hh``, one rounding.
    """
    kind, found = _kind_and_cell(module, cell, "from_torch_stacked")
    D = 2 if module.bidirectional else 1
    layers = tuple(
        tuple(_layer_params(module, kind, found, f"_l{l}" + ("_reverse" if d else "")) for d in range(D))
        for l in range(module.num_layers)
    )
    return StackedModel(found, layers, bidirectional=bool(module.bidirectional), bias=bool(module.bias),
                        batch_first=bool(module.batch_first))  # fmt: skip


# -- files -------------------------------------------------------------------------------------
_TYPE_ALIASES = {"rnn": "rnn", "lstm": "lstm", "gru": "gru", "gru-torch": "gru"}


def _first_line(exc: BaseException) -> str:
    """The exception's type and first line, without terminal colour codes, at most 160 chars."""
    if "Weights only load failed" in str(exc):
        return "it holds objects that weights_only loading refuses, such as a whole nn.Module"
    lines = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    return text if len(text) <= 160 else text[:157] + "..."


@dataclass(frozen=True)
class TorchFile:
    """What a model file holds, before a module is built from it.

    Attributes
    ----------
    path : the file.
    state : the recurrent module's state_dict, the prefix removed.
    kind : ``rnn``, ``lstm`` or ``gru`` (from the rows of ``weight_hh_l0`` per hidden unit).
    nonlinearity : ``tanh``/``relu`` when the file records it (a described dict), else None: an
        ``nn.RNN`` state_dict never records it.
    prefix : the prefix of the recurrent module's keys in the file (``""`` for a bare state_dict,
        ``"rnn."`` for a ``Net`` holding it as ``self.rnn``).
    num_layers, bidirectional, bias, hidden, inputs : the module's configuration.
    """

    path: str
    state: Mapping[str, torch.Tensor]
    kind: str
    nonlinearity: str | None
    prefix: str
    num_layers: int
    bidirectional: bool
    bias: bool
    hidden: int
    inputs: int

    @property
    def records_nonlinearity(self) -> bool:
        """False for an nn.RNN whose file does not say tanh or relu."""
        return self.kind != "rnn" or self.nonlinearity is not None


def _read_object(where: str) -> Any:
    if not os.path.isfile(where):
        raise GradproofError(
            f"no model file at {where!r}; save one with torch.save(module.state_dict(), path)"
        )
    try:
        return torch.load(where, weights_only=True, map_location="cpu")
    except Exception as exc:  # torch raises many types for a bad file
        raise GradproofError(
            f"cannot read {where!r} as a torch weights file ({_first_line(exc)}); "
            f"save a state_dict with torch.save(module.state_dict(), path)"
        ) from None


_KEY = re.compile(r"^(weight_ih|weight_hh|bias_ih|bias_hh|weight_hr)_l(\d+)(_reverse)?$")


def _select_prefix(state: Mapping[str, Any], prefix: str | None, where: str) -> tuple[dict[str, Any], str]:
    """The recurrent module's entries (prefix removed) and the prefix used."""
    keys = [k for k in state if isinstance(k, str)]
    if prefix is None:
        found = sorted({k[: -len("weight_ih_l0")] for k in keys if k.endswith("weight_ih_l0")})
        found = [f for f in found if f == "" or f.endswith(".")]
        if len(found) > 1:
            raise GradproofError(
                f"{where!r} holds several recurrent modules, with key prefixes "
                f"{', '.join(repr(f) for f in found)}; choose one with --prefix (prefix=...)"
            )
        prefix = found[0] if found else ""
    if prefix == "":
        return dict(state), ""
    picked = {k[len(prefix):]: v for k, v in state.items() if isinstance(k, str) and k.startswith(prefix)}
    if not picked:
        shown = ", ".join(sorted(keys)[:12]) + (", ..." if len(keys) > 12 else "")
        raise GradproofError(f"{where!r} has no key starting with prefix {prefix!r}; its keys: {shown}")
    return picked, prefix


def read_torch_file(path: str | os.PathLike[str], *, prefix: str | None = None) -> TorchFile:
    """Read and check a model file without building the module (see :func:`load_torch_model`).

    Parameters
    ----------
    path : a file written by ``torch.save``.
    prefix : the key prefix of the recurrent module inside a larger network's state_dict, e.g.
        ``"rnn."`` for ``self.rnn``; by default found when exactly one ``*weight_ih_l0`` key
        prefix exists (several: an error listing them).
    """
    where = os.fspath(path)
    obj = _read_object(where)
    if not isinstance(obj, Mapping):
        raise GradproofError(
            f"{where!r} holds a {type(obj).__name__}, expected a state_dict of nn.RNN/LSTM/GRU"
        )
    declared: str | None = None
    nonlinearity: str | None = None
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
            nonlinearity = obj["nonlinearity"]
            if nonlinearity not in ("tanh", "relu"):
                raise GradproofError(
                    f"nonlinearity for an nn.RNN must be 'tanh' or 'relu', got {nonlinearity!r}"
                )
        state = obj["state_dict"]
        if not isinstance(state, Mapping):
            raise GradproofError(
                f"{where!r}: 'state_dict' must be a dict of tensors, got {type(state).__name__}"
            )
    else:
        state = obj
    picked, used = _select_prefix(state, prefix, where)
    return _check_state(picked, declared, nonlinearity, used, where)


def _check_state(
    state: Mapping[str, Any], declared: str | None, nonlinearity: str | None, prefix: str, where: str
) -> TorchFile:
    keys = set(state)
    layers: set[int] = set()
    reverse = False
    for k in sorted(keys):
        match = _KEY.match(k) if isinstance(k, str) else None
        if match is None:
            continue
        if match.group(1) == "weight_hr":
            raise GradproofError(
                f"{where!r} is an LSTM with projections (key {prefix}{k}); proj_size != 0 is not "
                "supported yet"
            )
        layers.add(int(match.group(2)))
        reverse = reverse or match.group(3) is not None
    L = max(layers) + 1 if layers else 1
    D = 2 if reverse else 1
    sfx = [f"_l{l}" + ("_reverse" if d else "") for l in range(L) for d in range(D)]
    required = {f"weight_{w}{s}" for s in sfx for w in ("ih", "hh")}
    biases = {f"bias_{w}{s}" for s in sfx for w in ("ih", "hh")}
    if not required <= keys or not (keys - required) in (set(), biases):
        shown = sorted(str(k) for k in keys)
        shown_text = str(shown[:16])[:-1] + (", ...]" if len(shown) > 16 else "]")
        raise GradproofError(
            f"{where!r} is not the state_dict of an nn.RNN/LSTM/GRU: expected keys "
            f"{sorted(required | biases)[:8]}{' ...' if len(required | biases) > 8 else ''}, "
            f"got {shown_text}; for a module inside a larger network pass its prefix (e.g. 'rnn.')"
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
    for l in range(L):
        for d in range(D):
            s = f"_l{l}" + ("_reverse" if d else "")
            want = {
                f"weight_hh{s}": (rows, n),
                f"weight_ih{s}": (rows, m if l == 0 else D * n),
                f"bias_ih{s}": (rows,),
                f"bias_hh{s}": (rows,),
            }
            for k, shape in want.items():
                if k in keys and tuple(state[k].shape) != shape:
                    what = "mismatched layer shapes: " if (l or d) and k.startswith("weight") else ""
                    raise GradproofError(
                        f"{where!r}: {what}{k} must have shape {shape} (hidden {n}, "
                        f"{'inputs ' + str(m) if l == 0 else 'input ' + str(D * n) + ' from the layer below'}), "
                        f"got {tuple(state[k].shape)}"
                    )
    if inferred != "rnn":
        nonlinearity = None
    return TorchFile(
        path=where, state=dict(state), kind=inferred, nonlinearity=nonlinearity, prefix=prefix,
        num_layers=L, bidirectional=D == 2, bias=keys >= biases, hidden=n, inputs=m,
    )  # fmt: skip


def load_torch_model(
    path: str | os.PathLike[str], *, nonlinearity: str | None = None, prefix: str | None = None
) -> nn.Module:
    """Load an ``nn.RNN``/``LSTM``/``GRU`` saved with ``torch.save``, as float64.

    Any ``num_layers`` and ``bidirectional`` (keys ``*_l{k}`` and ``*_l{k}_reverse``), with or
    without biases; not ``proj_size`` (``weight_hr_*``). The file is read with
    ``torch.load(path, weights_only=True, map_location="cpu")`` and holds

    * a ``state_dict()`` of the module: keys ``weight_ih_l0 weight_hh_l0 ...`` and optionally
      ``bias_ih_l0 bias_hh_l0 ...``. The type comes from the rows of ``weight_hh_l0`` per hidden
      unit (1 RNN, 4 LSTM, 3 GRU). An RNN's state_dict does not record tanh or relu: pass
      ``nonlinearity``; without it this function assumes ``"tanh"`` (the commands refuse to
      guess: they require ``--nonlinearity``, see :attr:`TorchFile.records_nonlinearity`);
    * the state_dict of a larger network holding the module (e.g. ``self.rnn``): its keys carry a
      prefix (``rnn.weight_ih_l0``), found automatically when only one recurrent module is there,
      or given as ``prefix="rnn."``;
    * a dict ``{"type": "rnn"|"lstm"|"gru", "nonlinearity": "tanh"|"relu", "state_dict": {...}}``
      (``nonlinearity`` only for ``rnn``).

    ``nonlinearity`` is ignored for LSTM and GRU files. Returns the module on the CPU in float64;
    :func:`from_torch` (one layer) or :func:`from_torch_stacked` gives its cell and parameters.
    """
    tf = read_torch_file(path, prefix=prefix)
    nl = tf.nonlinearity
    if tf.kind == "rnn" and nonlinearity is not None:
        if nl is not None and nl != nonlinearity:
            raise GradproofError(
                f"{tf.path!r} says nonlinearity={nl!r} but nonlinearity={nonlinearity!r} was "
                "passed; drop one of them"
            )
        nl = nonlinearity
    return module_from_file(tf, nonlinearity=nl)


def module_from_file(tf: TorchFile, *, nonlinearity: str | None = None) -> nn.Module:
    """The float64 module of a checked :class:`TorchFile` (``nonlinearity`` as in
    :func:`load_torch_model`)."""
    kwargs: dict[str, Any] = dict(
        input_size=tf.inputs, hidden_size=tf.hidden, num_layers=tf.num_layers, bias=tf.bias,
        batch_first=False, bidirectional=tf.bidirectional, dtype=torch.float64,
    )  # fmt: skip
    if tf.kind == "rnn":
        nl = nonlinearity or tf.nonlinearity or "tanh"
        if nl not in ("tanh", "relu"):
            raise GradproofError(
                f"nonlinearity for an nn.RNN must be 'tanh' or 'relu', got {nl!r}"
            )
        kwargs["nonlinearity"] = nl
    module = _MODULES[tf.kind](**kwargs)
    with torch.no_grad():
        for k, v in tf.state.items():
            getattr(module, k).copy_(v.to(torch.float64))
    return module
