"""The recurrent cells of the lecture as small immutable descriptions.

A cell is a recurrence ``s_t = F(s_{t-1}, x_t; θ)`` written as an ordered list of definitions in
the lecture's notation (docs/math.md §1, §3, §4). Two views:

* the dimension-free view: :attr:`Cell.definitions` and :attr:`Cell.equations`, SymPy matrix
  expressions with symbolic sizes ``n`` (hidden) and ``m`` (inputs);
* :meth:`Cell.explicit`: the same recurrence with scalar symbols for given sizes, for
  brute-force checks with ``Matrix.jacobian``.

The built-ins' recurrences are written as the lecture's equations in :data:`BUILTIN_EQUATIONS`
and read by the same whitelist parser as :func:`derive.define_cell` (the RNN's σ is bound to the
name ``sigma``); the classes keep the documented parameter order, names and state order.

>>> from gradproof.derive import cell
>>> c = cell("lstm")
>>> c.state_size(3), list(c.parameter_shapes(3, 2))[:3]
(6, ['W_f', 'W_i', 'W_o'])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import ClassVar

import sympy as sp

from .activations import Activation, activation
from .algebra import M, N, explicit
from .errors import GradproofError

__all__ = [
    "Cell", "RNN", "LSTM", "GRU", "cell", "CELL_NAMES", "BUILTIN_EQUATIONS", "ExplicitCell", "symbols",
]  # fmt: skip

#: The names the command line accepts.
CELL_NAMES = ("rnn-tanh", "rnn-sigmoid", "rnn-relu", "lstm", "gru", "gru-torch")


class symbols:
    """The shared vector symbols of the lecture's notation."""

    h_prev = sp.MatrixSymbol("h^{(t-1)}", N, 1)
    c_prev = sp.MatrixSymbol("c^{(t-1)}", N, 1)
    x = sp.MatrixSymbol("x^{(t)}", M, 1)
    h = sp.MatrixSymbol("h^{(t)}", N, 1)
    c = sp.MatrixSymbol("c^{(t)}", N, 1)

    @staticmethod
    def vector(name: str) -> sp.MatrixSymbol:
        return sp.MatrixSymbol(f"{name}^{{(t)}}", N, 1)


@dataclass(frozen=True)
class ExplicitCell:
    """A cell with scalar symbols for given sizes.

    Attributes
    ----------
    hidden, inputs : the sizes n and m.
    state : (S, 1) Matrix of the previous state's symbols, ``[h; c]`` for the LSTM.
    x : (m, 1) Matrix of the input's symbols.
    parameters : name -> Matrix of the parameter's symbols (vectors are (n, 1)).
    next_state : (S, 1) Matrix, the new state as an expression in the symbols above.
    environment : dimension-free symbol -> explicit value, for :func:`derive.algebra.explicit`.
    """

    hidden: int
    inputs: int
    state: sp.Matrix
    x: sp.Matrix
    parameters: Mapping[str, sp.Matrix]
    next_state: sp.Matrix
    environment: Mapping[sp.Expr, sp.Matrix] = field(repr=False)


@dataclass(frozen=True)
class Cell:
    """Base class: a recurrence given by ordered definitions (see the subclasses)."""

    kind: ClassVar[str] = ""
    #: write σ' of a gate through the gate's value, as in docs/math.md §3-§4 (f ⊙ (1 - f)).
    gate_form: ClassVar[bool] = True

    @property
    def name(self) -> str:
        raise NotImplementedError

    # -- the dimension-free view --------------------------------------------------------------
    @property
    def definitions(self) -> tuple[tuple[sp.MatrixSymbol, sp.Expr], ...]:
        """The recurrence as ordered (name, definition) pairs; the last ones are the state."""
        return _definitions(self)

    @property
    def equations(self) -> tuple[sp.Equality, ...]:
        """The definitions as SymPy equations ``name = expression``."""
        return tuple(sp.Eq(lhs, rhs, evaluate=False) for lhs, rhs in self.definitions)

    @property
    def state_previous(self) -> tuple[sp.MatrixSymbol, ...]:
        """The previous state's blocks, ``(h^{(t-1)},)`` or ``(h^{(t-1)}, c^{(t-1)})``."""
        return (symbols.h_prev,)

    @property
    def state_next(self) -> tuple[sp.MatrixSymbol, ...]:
        """The new state's blocks, ``(h^{(t)},)`` or ``(h^{(t)}, c^{(t)})``."""
        return (symbols.h,)

    @property
    def input(self) -> sp.MatrixSymbol:
        return symbols.x

    def parameter_symbols(self) -> dict[str, sp.MatrixSymbol]:
        """Parameter name -> its MatrixSymbol, in the documented order."""
        found = {s.name: s for _, rhs in self.definitions for s in rhs.atoms(sp.MatrixSymbol)}
        return {name: found[name] for name in self.parameter_names}

    parameter_names: ClassVar[tuple[str, ...]] = ()

    def state_size(self, hidden: int) -> int:
        """S: the size of the state (n, or 2n for the LSTM)."""
        return hidden * len(self.state_previous)

    def parameter_shapes(self, hidden: int, inputs: int) -> dict[str, tuple[int, ...]]:
        """Parameter name -> numpy shape: ``W_•`` (n, n), ``U_•``/``W_x`` (n, m), biases (n,)."""
        out: dict[str, tuple[int, ...]] = {}
        for name, s in self.parameter_symbols().items():
            rows = int(s.shape[0].subs({N: hidden, M: inputs}))
            cols = int(s.shape[1].subs({N: hidden, M: inputs}))
            out[name] = (rows,) if s.shape[1] == 1 else (rows, cols)
        return out

    def parameter_count(self, hidden: int, inputs: int) -> int:
        """The number of scalar parameters (one bias per gate; PyTorch stores two)."""
        total = 0
        for shape in self.parameter_shapes(hidden, inputs).values():
            size = 1
            for d in shape:
                size *= d
            total += size
        return total

    # -- the explicit view --------------------------------------------------------------------
    def explicit(self, hidden: int, inputs: int) -> ExplicitCell:
        """The cell with real scalar symbols for hidden size n and input size m."""
        if not (isinstance(hidden, int) and isinstance(inputs, int)) or hidden < 1 or inputs < 1:
            raise GradproofError(
                f"explicit() needs positive integer sizes, got hidden={hidden!r}, inputs={inputs!r}"
            )
        return _explicit(self, hidden, inputs)


@lru_cache(maxsize=None)
def _explicit(c: Cell, n: int, m: int) -> ExplicitCell:
    env: dict[sp.Expr, sp.Matrix] = {N: sp.Integer(n), M: sp.Integer(m)}
    blocks = []
    for i, sym in enumerate(c.state_previous):
        base = sym.name.split("^")[0]
        label = base if len(base) == 1 else base + "_"
        value = sp.Matrix(n, 1, lambda r, _, label=label: sp.Symbol(f"{label}{r}", real=True))
        env[sym] = value
        blocks.append(value)
    x = sp.Matrix(m, 1, lambda r, _: sp.Symbol(f"x{r}", real=True))
    env[symbols.x] = x
    params: dict[str, sp.Matrix] = {}
    for name, sym in c.parameter_symbols().items():
        rows = int(sym.shape[0].subs({N: n, M: m}))
        cols = int(sym.shape[1].subs({N: n, M: m}))
        if sym.shape[1] == 1:
            value = sp.Matrix(rows, 1, lambda r, _: sp.Symbol(f"{name}[{r}]", real=True))
        else:
            value = sp.Matrix(rows, cols, lambda r, k: sp.Symbol(f"{name}[{r},{k}]", real=True))
        env[sym] = value
        params[name] = value
    for lhs, rhs in c.definitions:
        env[lhs] = explicit(rhs, env)
    next_state = sp.Matrix.vstack(*[env[s] for s in c.state_next])
    return ExplicitCell(
        hidden=n,
        inputs=m,
        state=sp.Matrix.vstack(*blocks),
        x=x,
        parameters=params,
        next_state=next_state,
        environment=env,
    )


@dataclass(frozen=True)
class RNN(Cell):
    """The vanilla RNN: z^{(t)} = W_h h^{(t-1)} + W_x x^{(t)} + b, h^{(t)} = σ(z^{(t)}).

    Parameters: ``W_h`` (n, n), ``W_x`` (n, m), ``b`` (n,).
    """

    activation: Activation | str = "tanh"
    kind: ClassVar[str] = "rnn"
    gate_form: ClassVar[bool] = False
    parameter_names: ClassVar[tuple[str, ...]] = ("W_h", "W_x", "b")

    def __post_init__(self) -> None:
        object.__setattr__(self, "activation", activation(self.activation))

    @property
    def name(self) -> str:
        act = self.activation  # type: ignore[union-attr]
        return f"rnn-{act.name}" if act.builtin else f"rnn[{act.name}]"

    @property
    def pre_activation(self) -> sp.MatrixSymbol:
        """z^{(t)}."""
        return symbols.vector("z")


@dataclass(frozen=True)
class LSTM(Cell):
    """The LSTM of the lecture (Hochreiter & Schmidhuber 1997 with a forget gate), docs/math.md §3.

    f, i, o = σ(W_• h^{(t-1)} + U_• x^{(t)} + b_•), c̃ = tanh(W_c h^{(t-1)} + U_c x^{(t)} + b_c),
    c^{(t)} = f ⊙ c^{(t-1)} + i ⊙ c̃, h^{(t)} = o ⊙ tanh(c^{(t)}). State [h; c], h first.
    """

    kind: ClassVar[str] = "lstm"
    parameter_names: ClassVar[tuple[str, ...]] = (
        "W_f", "W_i", "W_o", "W_c", "U_f", "U_i", "U_o", "U_c", "b_f", "b_i", "b_o", "b_c",
    )  # fmt: skip

    @property
    def name(self) -> str:
        return "lstm"

    @property
    def state_previous(self) -> tuple[sp.MatrixSymbol, ...]:
        return (symbols.h_prev, symbols.c_prev)

    @property
    def state_next(self) -> tuple[sp.MatrixSymbol, ...]:
        return (symbols.h, symbols.c)


@dataclass(frozen=True)
class GRU(Cell):
    """The GRU, in the lecture's form (``reset="before"``) or PyTorch's (``reset="after"``).

    before (CS224n): u, r = σ(W_• h + U_• x + b_•), h̃ = tanh(W_h (r ⊙ h) + U_h x + b_h),
    h^{(t)} = (1 - u) ⊙ h^{(t-1)} + u ⊙ h̃.

    after (``torch.nn.GRU``): r, z = σ(W_• h + U_• x + b_•), m = W_n h + b_hn,
    n = tanh(U_n x + b_in + r ⊙ m), h^{(t)} = (1 - z) ⊙ n + z ⊙ h^{(t-1)}. docs/math.md §4.
    """

    reset: str = "before"
    kind: ClassVar[str] = "gru"

    def __post_init__(self) -> None:
        if self.reset not in ("before", "after"):
            raise GradproofError(
                f"GRU(reset=...) must be 'before' (the lecture's form) or 'after' "
                f"(PyTorch's form), got {self.reset!r}"
            )

    @property
    def name(self) -> str:
        return "gru" if self.reset == "before" else "gru-torch"

    @property
    def parameter_names(self) -> tuple[str, ...]:  # type: ignore[override]
        if self.reset == "before":
            return ("W_u", "W_r", "W_h", "U_u", "U_r", "U_h", "b_u", "b_r", "b_h")
        return ("W_r", "W_z", "W_n", "U_r", "U_z", "U_n", "b_r", "b_z", "b_in", "b_hn")


#: The built-in cells as the lecture writes them, read by the same whitelist parser as
#: :func:`derive.define_cell` (state names, then one assignment per line; a state on a right-hand
#: side is its previous value). ``sigma`` is the RNN's activation σ; ``c_tilde``/``h_tilde`` print as
#: c̃ and h̃. docs/math.md §1 (RNN), §3 (LSTM), §4 (GRU, both reset placements).
BUILTIN_EQUATIONS: dict[str, tuple[tuple[str, ...], str]] = {
    # Elman (1990); the vanilla RNN of docs/math.md §1
    "rnn": (("h",), """
z = W_h @ h + W_x @ x + b
h = sigma(z)
"""),
    # Hochreiter & Schmidhuber (1997) with the forget gate of Gers et al. (2000); state [h; c]
    "lstm": (("h", "c"), """
f = sigmoid(W_f @ h + U_f @ x + b_f)
i = sigmoid(W_i @ h + U_i @ x + b_i)
o = sigmoid(W_o @ h + U_o @ x + b_o)
c_tilde = tanh(W_c @ h + U_c @ x + b_c)
c = f * c + i * c_tilde
h = o * tanh(c)
"""),
    # Cho et al. (2014), reset before the matrix product (the lecture's, CS224n's form)
    "gru": (("h",), """
u = sigmoid(W_u @ h + U_u @ x + b_u)
r = sigmoid(W_r @ h + U_r @ x + b_r)
h_tilde = tanh(W_h @ (r * h) + U_h @ x + b_h)
h = (1 - u) * h + u * h_tilde
"""),
    # torch.nn.GRU: reset after the matrix product, with the hidden bias b_hn inside it
    "gru-torch": (("h",), """
r = sigmoid(W_r @ h + U_r @ x + b_r)
z = sigmoid(W_z @ h + U_z @ x + b_z)
m = W_n @ h + b_hn
n = tanh(U_n @ x + b_in + r * m)
h = (1 - z) * n + z * h
"""),
}  # fmt: skip

_DISPLAY = {"c_tilde": r"\tilde{c}", "h_tilde": r"\tilde{h}"}


def _builtin_key(c: Cell) -> str:
    if isinstance(c, RNN):
        return "rnn"
    if isinstance(c, LSTM):
        return "lstm"
    if isinstance(c, GRU):
        return "gru" if c.reset == "before" else "gru-torch"
    raise TypeError(f"unknown cell {c!r}")  # pragma: no cover


@lru_cache(maxsize=None)
def _definitions(c: Cell) -> tuple[tuple[sp.MatrixSymbol, sp.Expr], ...]:
    """The built-in cell's definitions, parsed from :data:`BUILTIN_EQUATIONS`."""
    from .define import parse_equations, program_definitions

    state, text = BUILTIN_EQUATIONS[_builtin_key(c)]
    functions = {"sigma": c.activation} if isinstance(c, RNN) else None
    program, kinds = parse_equations(state, text, functions=functions)
    return program_definitions(program, kinds, display=_DISPLAY)


def cell(name: str | Cell) -> Cell:
    """The cell for a command-line name: ``rnn-tanh rnn-sigmoid rnn-relu lstm gru gru-torch``.

    ``rnn-<activation>`` also accepts any activation :func:`derive.activation` understands, e.g.
    ``rnn-hard_sigmoid``.
    """
    if isinstance(name, Cell):
        return name
    if not isinstance(name, str):
        raise GradproofError(f"a cell name must be a string, got {type(name).__name__}")
    key = name.strip().lower()
    if key == "lstm":
        return LSTM()
    if key == "gru":
        return GRU(reset="before")
    if key in ("gru-torch", "gru-after"):
        return GRU(reset="after")
    if key.startswith("rnn-") or key.startswith("rnn[") and key.endswith("]"):
        spec = key[4:] if key.startswith("rnn-") else name.strip()[4:-1]
        try:
            return RNN(activation=spec)
        except GradproofError as exc:
            raise GradproofError(
                f"unknown cell {name!r}: {exc} (cells: {', '.join(CELL_NAMES)}; an RNN takes any "
                "activation: rnn-<name> for a built-in, rnn[<formula in x>] for your own)"
            ) from None
    from .define import SHIPPED_CELL_NAMES, shipped_cell

    if key in SHIPPED_CELL_NAMES:
        return shipped_cell(key)
    raise GradproofError(
        f"unknown cell {name!r}; choose one of: {', '.join(CELL_NAMES + SHIPPED_CELL_NAMES)} "
        "(or define your own with derive.define_cell / --equations FILE --state h,c)"
    )
