"""Seeded parameters and input sequences for the numerical experiments.

Parameter names and shapes (n = ``hidden``, m = ``inputs``), float64, in this order:

==============  ============================================================  ============
cell            names                                                          shapes
==============  ============================================================  ============
``rnn-*``       ``W_h``; ``W_x``; ``b``                                        (n, n); (n, m); (n,)
``lstm``        ``W_f W_i W_o W_c``; ``U_f U_i U_o U_c``; ``b_f b_i b_o b_c``  (n, n); (n, m); (n,)
``gru``         ``W_u W_r W_h``; ``U_u U_r U_h``; ``b_u b_r b_h``              (n, n); (n, m); (n,)
``gru-torch``   ``W_r W_z W_n``; ``U_r U_z U_n``; ``b_r b_z b_in b_hn``        (n, n); (n, m); (n,)
==============  ============================================================  ============

The recurrent matrices (those that multiply h^{(t-1)}, docs/math.md §1, §3, §4) are every ``W_•``
except the RNN's input matrix ``W_x``; :func:`recurrent_names` lists them.

>>> p = init("rnn-tanh", hidden=3, inputs=2, seed=0, spectral_norm=0.5)
>>> {k: v.shape for k, v in p.items()}
{'W_h': (3, 3), 'W_x': (3, 2), 'b': (3,)}
>>> round(float(np.linalg.norm(p["W_h"], 2)), 12)
0.5
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping

import numpy as np

from ..derive.algebra import M
from ..derive.cells import Cell, cell as _cell
from ..derive.errors import GradproofError

__all__ = [
    "init",
    "random_sequence",
    "recurrent_names",
    "parameter_shapes",
    "check_parameters",
    "resolve_cell",
]


# -- validation helpers ------------------------------------------------------------------------
def resolve_cell(spec: str | Cell) -> Cell:
    """The cell for a name or a cell object (``derive.cells.cell``), with a GradproofError."""
    return _cell(spec)


def _positive_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise GradproofError(
            f"{what} must be a positive integer, got {value!r}; pass e.g. {what}=4"
        )
    return int(value)


def _seed(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 0:
        raise GradproofError(
            f"seed must be a non-negative integer, got {value!r}; pass e.g. seed=0"
        )
    return int(value)


def _positive_float(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise GradproofError(f"{what} must be a positive finite number, got {value!r}")
    v = float(value)
    if not (math.isfinite(v) and v > 0.0):
        raise GradproofError(f"{what} must be a positive finite number, got {value!r}")
    return v


def parameter_shapes(cell: str | Cell, hidden: int, inputs: int) -> dict[str, tuple[int, ...]]:
    """Parameter name -> numpy shape in the cell's order: W_• (n, n), U_•/W_x (n, m), b_• (n,).

    Read from the cell's dimension-free symbols (a bias has the one symbolic column ``1``, not a
    size that happens to be 1), so hidden = 1 or inputs = 1 keep their matrices 2-D.

    >>> parameter_shapes("rnn-tanh", 3, 1)
    {'W_h': (3, 3), 'W_x': (3, 1), 'b': (3,)}
    """
    c = resolve_cell(cell)
    out: dict[str, tuple[int, ...]] = {}
    for name, sym in c.parameter_symbols().items():
        rows, cols = sym.shape  # rows: always the hidden size; cols: 1, hidden or inputs
        if cols == 1:
            out[name] = (hidden,)
        else:
            out[name] = (hidden, hidden if cols == rows else inputs)
    return out


def recurrent_names(cell: str | Cell) -> tuple[str, ...]:
    """The names of the cell's recurrent (n, n) matrices, the ones that multiply h^{(t-1)}.

    >>> recurrent_names("lstm")
    ('W_f', 'W_i', 'W_o', 'W_c')
    >>> recurrent_names("rnn-relu")
    ('W_h',)
    """
    c = resolve_cell(cell)
    return tuple(k for k, sym in c.parameter_symbols().items() if sym.shape[1] == sym.shape[0])


def check_parameters(
    cell: str | Cell, params: Mapping[str, object], *, inputs: int | None = None
) -> tuple[int, int]:
    """Check a parameter dict against the cell's names and shapes; return ``(hidden, inputs)``.

    Parameters
    ----------
    cell : a cell or its name.
    params : name -> array; exactly the cell's parameter names (see the module docstring).
    inputs : m, if known (from ``xs``); otherwise read from the input matrix.

    Raises
    ------
    GradproofError
        on missing or unexpected names, wrong shapes, or non-real entries.
    """
    c = resolve_cell(cell)
    if not isinstance(params, Mapping):
        raise GradproofError(
            f"parameters must be a dict name -> array, got {type(params).__name__}"
        )
    expected = list(c.parameter_names)
    missing = [k for k in expected if k not in params]
    extra = [k for k in params if k not in expected]
    if missing or extra:
        raise GradproofError(
            f"parameters of {c.name} must be exactly {', '.join(expected)}; "
            f"missing {missing or 'none'}, unexpected {extra or 'none'}"
        )
    symbols_ = c.parameter_symbols()
    first = np.shape(params[expected[0]])  # a recurrent W_• (n, n) for the built-ins
    if symbols_[expected[0]].shape[1] != symbols_[expected[0]].shape[0]:  # a defined cell's vector/U
        if len(first) not in (1, 2) or first[0] < 1:
            raise GradproofError(
                f"{expected[0]} of {c.name} must have shape (hidden,) or (hidden, k), got {first}"
            )
    elif len(first) != 2 or first[0] < 1:
        raise GradproofError(
            f"{expected[0]} of {c.name} must be a square (hidden, hidden) matrix, got shape {first}"
        )
    n = int(first[0])
    if inputs is None:
        input_name = next((k for k in expected if symbols_[k].shape[1] == M), None)
        if input_name is None:
            raise GradproofError(f"{c.name} has no input matrix; pass inputs= (the size of x)")
        shape = np.shape(params[input_name])
        if len(shape) != 2 or shape[1] < 1:
            raise GradproofError(
                f"{input_name} of {c.name} must be a (hidden, inputs) matrix, got shape {shape}"
            )
        inputs = int(shape[1])
    shapes = parameter_shapes(c, n, inputs)
    for k, want in shapes.items():
        got = np.shape(params[k])
        if got != want:
            raise GradproofError(
                f"parameter {k} of {c.name} with hidden={n}, inputs={inputs} must have shape "
                f"{want}, got {got}"
            )
        kind = np.asarray(params[k]).dtype.kind
        if kind not in "biuf":
            raise GradproofError(f"parameter {k} must hold real numbers, got dtype {kind!r}")
    return n, int(inputs)


# -- parameters --------------------------------------------------------------------------------
def init(
    cell: str | Cell,
    *,
    hidden: int,
    inputs: int,
    seed: int,
    spectral_norm: float | None = None,
    spectral_radius: float | None = None,
    scale: float | None = None,
) -> dict[str, np.ndarray]:
    r"""Seeded float64 parameters of a cell, PyTorch's default distribution by default.

    Every entry is drawn from :math:`\mathcal U(-k, k)` with :math:`k = 1/\sqrt{n}` (as
    ``torch.nn.RNN/LSTM/GRU`` do) or ``k = scale``, in the cell's parameter order, from
    ``np.random.default_rng(seed)``. Then, if asked, every recurrent matrix W (see
    :func:`recurrent_names`) is multiplied by a positive number so that

    * ``spectral_norm=λ``: its largest singular value :math:`\sigma_{\max}(W) = λ`, or
    * ``spectral_radius=ρ``: its spectral radius :math:`\max_i |\lambda_i(W)| = ρ`

    (to rounding, relative 1e-12). docs/math.md §1: σ_max controls the Pascanu bound; ρ does not.

    Parameters
    ----------
    cell : a cell or its name (``rnn-tanh rnn-sigmoid rnn-relu lstm gru gru-torch``).
    hidden : n ≥ 1.
    inputs : m ≥ 1.
    seed : non-negative integer for ``np.random.default_rng``.
    spectral_norm, spectral_radius : positive finite; at most one of them.
    scale : positive finite half-width of the uniform distribution (default ``1/sqrt(hidden)``).

    Returns
    -------
    dict name -> ndarray, float64, shapes as in the module docstring.
    """
    c = resolve_cell(cell)
    n = _positive_int(hidden, "hidden")
    m = _positive_int(inputs, "inputs")
    rng = np.random.default_rng(_seed(seed))
    if spectral_norm is not None and spectral_radius is not None:
        raise GradproofError(
            "spectral_norm and spectral_radius are mutually exclusive; pass only one of them"
        )
    target_norm = None if spectral_norm is None else _positive_float(spectral_norm, "spectral_norm")
    target_rho = (
        None if spectral_radius is None else _positive_float(spectral_radius, "spectral_radius")
    )
    k = 1.0 / math.sqrt(n) if scale is None else _positive_float(scale, "scale")

    params = {
        name: rng.uniform(-k, k, size=shape).astype(np.float64, copy=False)
        for name, shape in parameter_shapes(c, n, m).items()
    }
    if target_norm is None and target_rho is None:
        return params
    with np.errstate(all="raise"):
        for name in recurrent_names(c):
            W = params[name]
            if target_norm is not None:
                current = float(np.linalg.norm(W, 2))
                what, target = "largest singular value", target_norm
            else:
                current = float(np.max(np.abs(np.linalg.eigvals(W))))
                what, target = "spectral radius", target_rho
            if not current > 0.0:
                raise GradproofError(
                    f"{name} drawn with seed={seed} has {what} 0 and cannot be rescaled; "
                    f"use another seed"
                )
            params[name] = W * (target / current)
    return params


def random_sequence(
    T: int, inputs: int, *, seed: int, scale: float = 1.0
) -> np.ndarray:
    """A seeded input sequence ``xs: (T, inputs)`` of independent N(0, scale²) entries, float64.

    >>> random_sequence(4, 2, seed=1).shape
    (4, 2)
    """
    t = _positive_int(T, "T")
    m = _positive_int(inputs, "inputs")
    s = _positive_float(scale, "scale")
    rng = np.random.default_rng(_seed(seed))
    return s * rng.standard_normal((t, m))
