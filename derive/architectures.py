r"""Bidirectional and stacked recurrences over any cell: the structure of their Jacobians (docs/math.md §6).

An unrolled recurrence is a grid of nodes ``s_t^l`` (time t = 1..T, layer l = 1..L; layer 0 holds
the inputs ``x_t``). Node ``(t, l)`` depends on ``(t-1, l)`` through the *time step*
``A^{(t,l)} = ∂s_t^l/∂s_{t-1}^l`` (the cell's step Jacobian, D(f') W^l for the vanilla RNN) and on
``(t, l-1)`` through the *depth step* ``B^{(t,l)} = ∂s_t^l/∂s_t^{l-1}`` (the cell's input
Jacobian, D(f') U^l, times the selection of h from the state below for the LSTM). The chain rule
on this graph is a sum over paths:

.. math::

    \frac{\partial s_T^L}{\partial s_t^l} = \sum_{\text{monotone paths } (t,l) \to (T,L)}
    \prod_{\text{nodes on the path, latest on the left}} (A \text{ or } B),

with :math:`\binom{T-t+L-l}{L-l}` paths (:func:`path_count`). A bidirectional layer runs a second
recurrence backwards in time with its own weights; there is no path from ``x_s`` to the forward
state ``s→_t`` when s > t, nor to the backward state ``s←_t`` when s < t: the *causal zeros*
(:func:`causal_pattern`), and the joint step of the two directions is block diagonal
(:func:`bidirectional_step`). References: Schuster & Paliwal 1997 (bidirectional RNNs); Graves,
Mohamed, Hinton 2013 (deep/stacked RNNs); Pascanu et al. 2014, "How to construct deep RNNs".

>>> from gradproof.derive import path_count, stack_jacobian, text
>>> path_count()
binomial(L + T - l - t, L - l)
>>> print(text(stack_jacobian("rnn-tanh", t=2, l=1, steps=3, depth=2).result))
A(3,2) B(2,2) + B(3,2) A(3,1)
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import sympy as sp
from sympy.functions.elementary.piecewise import ExprCondPair

from .algebra import M, N, JacobianSymbol, explicit, latex
from .cells import LSTM, Cell, cell as _cell
from .errors import GradproofError
from .jacobians import Step, input_jacobian, state_symbols, step_jacobian
from .skip import Base, residual

__all__ = [
    "DIRECTIONS",
    "SKIPS",
    "path_count",
    "path_count_derivation",
    "grid_paths",
    "Architecture",
    "StackJacobian",
    "stack_jacobian",
    "stack_steps",
    "CausalPattern",
    "causal_pattern",
    "bidirectional_step",
    "ExplicitUnrolled",
    "explicit_stack",
    "explicit_bidirectional",
]

DIRECTIONS = ("forward", "backward")
SKIPS = (None, "residual")

_t, _l, _T, _L = sp.symbols("t l T L", integer=True, nonnegative=True)


# ----------------------------------------------------------------------------------------------
# Counting and enumerating monotone grid paths
# ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def path_count_derivation() -> tuple[Step, ...]:
    """How the number of monotone paths from (t, l) to (T, L) is derived, step by step."""
    right, up = _T - _t, _L - _l
    words = sp.factorial(right + up) / (sp.factorial(right) * sp.factorial(up))
    count = sp.binomial(right + up, up)
    assert sp.simplify(sp.combsimp(words) - count) == 0  # checked in SymPy, not asserted by hand
    moves = sp.Symbol(r"\#\text{paths}")
    return (
        Step(
            "a monotone path is a word of $T - t$ time moves and $L - l$ depth moves, in any order",
            sp.Eq(moves, words, evaluate=False),
        ),
        Step("choosing the positions of the depth moves among all moves", sp.Eq(moves, count, evaluate=False)),
    )


def path_count() -> sp.Expr:
    r"""The number of monotone grid paths from (t, l) to (T, L): :math:`\binom{T-t+L-l}{L-l}` (SymPy)."""
    return path_count_derivation()[-1].equation.rhs


def grid_paths(t: int, l: int, steps: int, depth: int) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Every monotone path of nodes from (t, l) to (steps, depth), moves (t+1, l) or (t, l+1).

    Each path lists the nodes *after* (t, l), in order; the empty path when (t, l) is the end.
    """
    _check_grid(t, l, steps, depth)
    right, up = steps - t, depth - l
    out = []
    for ups in itertools.combinations(range(right + up), up):
        node, path = (t, l), []
        for k in range(right + up):
            node = (node[0], node[1] + 1) if k in ups else (node[0] + 1, node[1])
            path.append(node)
        out.append(tuple(path))
    return tuple(out)


def _check_grid(t: int, l: int, steps: int, depth: int) -> None:
    for name, v in (("t", t), ("l", l), ("steps", steps), ("depth", depth)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise GradproofError(f"{name} must be a non-negative integer, got {v!r}")
    if steps < 1 or depth < 1 or not (0 <= t <= steps and 0 <= l <= depth):
        raise GradproofError(
            f"need 0 ≤ t ≤ steps, 0 ≤ l ≤ depth, steps ≥ 1, depth ≥ 1; got t={t}, l={l}, "
            f"steps={steps}, depth={depth} (l = 0 is the input x_t, t = 0 the initial state)"
        )


# ----------------------------------------------------------------------------------------------
# The architecture: a cell, a depth, a direction, an optional skip between layers
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Architecture:
    """A stack of ``depth`` layers of ``cell``, optionally with residual skips between layers.

    With ``skip="residual"`` layer l ≥ 2 computes s_t^l = F(s_{t-1}^l, s_t^{l-1}) + s_t^{l-1}
    (the state must be h alone: not the LSTM, whose state [h; c] is wider than its input h).
    """

    cell: Cell
    depth: int
    skip: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.depth, int) or isinstance(self.depth, bool) or self.depth < 1:
            raise GradproofError(f"depth must be a positive integer, got {self.depth!r}")
        if self.skip not in SKIPS:
            raise GradproofError(f"skip must be None or 'residual' between layers, got {self.skip!r}")
        if self.skip == "residual" and isinstance(self.cell, LSTM):
            raise GradproofError(
                "a residual skip between LSTM layers is not supported: the state [h; c] (2n) is "
                "wider than the next layer's input h (n); use skip=None, or an RNN/GRU cell"
            )

    @property
    def state(self) -> sp.MatrixSymbol:
        return state_symbols(self.cell)[1]


def _node(letter: str, t: int, l: int | None, rows: sp.Expr, cols: sp.Expr, arrow: str = "") -> sp.MatrixSymbol:
    sub = f"_{{{arrow}}}" if arrow else ""
    where = f"{t},{l}" if l is not None else f"{t}"
    return sp.MatrixSymbol(f"{letter}{sub}^{{({where})}}", rows, cols)


def _selection(c: Cell) -> sp.Expr | None:
    """P_h = [I 0], the h block of the LSTM's state [h; c] (None when the state is h)."""
    if len(c.state_previous) == 1:
        return None
    return sp.BlockMatrix([[sp.Identity(N), sp.ZeroMatrix(N, N)]])


@dataclass(frozen=True)
class StackSteps:
    """The two local Jacobians of a stack: the time step A and the depth steps B (layer 1, l ≥ 2).

    ``references`` are the named Jacobians used inside them (the LSTM's ∂c/∂h, a skip's ∂F/∂x).
    """

    architecture: Architecture
    time: sp.Expr
    depth_first: sp.Expr
    depth_upper: sp.Expr
    references: Mapping[JacobianSymbol, sp.Expr]
    steps: tuple[Step, ...]

    def latex(self) -> str:
        return r" \\ ".join(s.latex() for s in self.steps)

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex()}$"


@lru_cache(maxsize=None)
def _stack_steps(arch: Architecture) -> StackSteps:
    c = arch.cell
    sj, ij = step_jacobian(c), input_jacobian(c)
    s = state_symbols(c)[1]
    x = c.input
    refs: dict[JacobianSymbol, sp.Expr] = {**sj.references, **ij.references}
    upper_input = ij.result.subs(M, N)  # layer l ≥ 2 reads the h of the layer below (size n)
    sel = _selection(c)
    depth_upper = upper_input if sel is None else sp.MatMul(upper_input, sel)
    steps = [
        Step("time step: the cell's step Jacobian (each layer its own weights)",
             sp.Eq(_node("A", "t", "l", s.shape[0], s.shape[0]), sj.result, evaluate=False)),
        Step("depth step into layer 1: the cell's input Jacobian",
             sp.Eq(_node("B", "t", 1, s.shape[0], M), ij.result, evaluate=False)),
    ]  # fmt: skip
    if sel is not None:
        steps.append(Step("depth step into layer $l \\geq 2$: the input is the $h$ block of the state below, $P_h = [I\\; 0]$",
                          sp.Eq(_node("B", "t", "l", s.shape[0], s.shape[0]), depth_upper, evaluate=False)))  # fmt: skip
    elif arch.skip == "residual":
        xin = sp.MatrixSymbol(x.name, N, 1)
        b = Base(f"{c.name} input map", xin, upper_input, tuple(ij.references.items()), c)
        res = residual(b)
        refs.update(res.references)
        depth_upper = res.result
        steps.append(Step("depth step into layer $l \\geq 2$ with a residual skip: the identity path plus the input Jacobian",
                          sp.Eq(_node("B", "t", "l", s.shape[0], s.shape[0]), depth_upper, evaluate=False)))  # fmt: skip
    else:
        steps.append(Step("depth step into layer $l \\geq 2$: the input Jacobian, the input being the layer below",
                          sp.Eq(_node("B", "t", "l", s.shape[0], s.shape[0]), depth_upper, evaluate=False)))  # fmt: skip
    return StackSteps(arch, sj.result, ij.result, depth_upper, refs, tuple(steps))


def stack_steps(cell: Cell | str, *, depth: int = 2, skip: str | None = None) -> StackSteps:
    """The time step A = ∂s_t^l/∂s_{t-1}^l and depth step B = ∂s_t^l/∂s_t^{l-1} (docs/math.md §6)."""
    return _stack_steps(Architecture(_cell(cell), depth, skip))


# ----------------------------------------------------------------------------------------------
# ∂s_T^L/∂s_t^l as a sum over grid paths
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackJacobian:
    """∂s_T^L/∂s_t^l (or ∂s_T^L/∂x_t for l = 0) as the sum over monotone grid paths.

    Attributes
    ----------
    architecture, t, l, steps (T), depth (L).
    lhs : the Jacobian's symbol.
    result : ``MatAdd`` of ordered ``A^{(t',l')}``/``B^{(t',l')}`` products, one per path.
    paths : the node sequences, one per term, in the order of ``result``'s terms.
    count : the number of paths, :func:`path_count` evaluated (from (t, 1) for an input x_t,
        l = 0, and from (1, l) for an initial state, t = 0: they have one successor each).
    """

    architecture: Architecture
    t: int
    l: int
    steps: int
    depth: int
    lhs: sp.Expr
    result: sp.Expr
    paths: tuple[tuple[tuple[int, int], ...], ...]
    count: sp.Integer

    def latex(self) -> str:
        return latex(sp.Eq(self.lhs, self.result, evaluate=False))

    def _latex(self, printer: object) -> str:
        return self.latex()

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex()}$"

    def explicit(self, unrolled: ExplicitUnrolled) -> sp.Matrix:
        """The sum of products evaluated with the explicit A, B of an unrolled model."""
        return explicit(self.result, unrolled.factors)


def _factor(arch: Architecture, node: tuple[int, int], prev: tuple[int, int]) -> sp.MatrixSymbol:
    S = state_symbols(arch.cell)[1].shape[0]
    t, l = node
    if node[0] == prev[0]:  # a depth move into (t, l)
        return _node("B", t, l, S, M if l == 1 else S)
    return _node("A", t, l, S, S)


@lru_cache(maxsize=None)
def _stack_jacobian(arch: Architecture, t: int, l: int, steps: int) -> StackJacobian:
    depth = arch.depth
    _check_grid(t, l, steps, depth)
    if l == 0 and t == 0:
        raise GradproofError("(t, l) = (0, 0) is no node: l = 0 holds the inputs x_1..x_T, t = 0 the initial states")
    S = state_symbols(arch.cell)[1].shape[0]
    paths = grid_paths(t, l, steps, depth)
    if l == 0:  # inputs have no time edges: the first move is up into layer 1
        paths = tuple(p for p in paths if p and p[0] == (t, 1))
    if t == 0:  # initial states have no depth edges: the first move is in time
        paths = tuple(p for p in paths if p and p[0] == (1, l))
    terms = []
    for p in paths:
        nodes = ((t, l),) + p
        factors = [_factor(arch, nodes[k + 1], nodes[k]) for k in range(len(p))]
        factors.reverse()  # latest node on the left
        terms.append(factors[0] if len(factors) == 1 else sp.MatMul(*factors))
    cols = M if l == 0 else S
    if not terms:
        result: sp.Expr = sp.Identity(S)
    else:
        result = terms[0] if len(terms) == 1 else sp.MatAdd(*terms)
    end = sp.MatrixSymbol(f"s^{{({steps},{depth})}}", S, 1)
    start = sp.MatrixSymbol(f"x^{{({t})}}", M, 1) if l == 0 else sp.MatrixSymbol(f"s^{{({t},{l})}}", cols, 1)
    # an input or initial state enters the grid at its one successor: count from there
    count = path_count().subs({_T: steps, _t: max(t, 1), _L: depth, _l: max(l, 1)})
    return StackJacobian(arch, t, l, steps, depth, JacobianSymbol(end, start), result, paths, sp.Integer(count))


def stack_jacobian(
    cell: Cell | str, *, t: int, l: int, steps: int, depth: int, skip: str | None = None
) -> StackJacobian:
    """∂s_T^L/∂s_t^l for a stack of ``depth`` layers unrolled ``steps`` steps (docs/math.md §6).

    ``l = 0`` gives ∂s_T^L/∂x_t. The factors are the symbols ``A^{(t',l')}``, ``B^{(t',l')}``;
    :func:`stack_steps` gives their formulas, :func:`explicit_stack` their explicit values.
    """
    return _stack_jacobian(Architecture(_cell(cell), depth, skip), t, l, steps)


# ----------------------------------------------------------------------------------------------
# Bidirectional: the causal zeros and the block-diagonal joint step
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CausalPattern:
    """∂s_t/∂x_s for one direction of a bidirectional layer, t, s = 1..T (docs/math.md §6).

    ``blocks[(t, s)]`` is ``ZeroMatrix`` (a causal zero: no path from x_s to s_t) or the ordered
    product of step Jacobians ``A^{(k)}`` and the input Jacobian ``K^{(s)}``. Forward: zero for
    s > t. Backward (the recurrence runs from T down to 1, A←^{(k)} = ∂s←_k/∂s←_{k+1}): zero for
    s < t.
    """

    cell: Cell
    steps: int
    direction: str
    blocks: Mapping[tuple[int, int], sp.Expr]

    @property
    def zeros(self) -> frozenset[tuple[int, int]]:
        """The (t, s) whose block is structurally zero."""
        return frozenset(k for k, v in self.blocks.items() if isinstance(v, sp.ZeroMatrix))

    def matrix(self) -> sp.BlockMatrix:
        """The T × T block matrix [∂s_t/∂x_s]."""
        T = self.steps
        return sp.BlockMatrix([[self.blocks[(t, s)] for s in range(1, T + 1)] for t in range(1, T + 1)])

    def latex(self) -> str:
        arrow = r"\rightarrow" if self.direction == "forward" else r"\leftarrow"
        lhs = sp.Symbol(rf"\left[\frac{{\partial s_{{{arrow}}}^{{(t)}}}}{{\partial x^{{(s)}}}}\right]_{{t,s}}")
        return latex(sp.Eq(lhs, self.matrix(), evaluate=False))

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex()}$"

    def explicit(self, unrolled: ExplicitUnrolled) -> dict[tuple[int, int], sp.Matrix]:
        """Every block evaluated with the explicit A, K of an unrolled direction."""
        return {k: explicit(v, unrolled.factors) for k, v in self.blocks.items()}


@lru_cache(maxsize=None)
def _causal_pattern(c: Cell, steps: int, direction: str) -> CausalPattern:
    S = state_symbols(c)[1].shape[0]
    arrow = r"\rightarrow" if direction == "forward" else r"\leftarrow"
    blocks: dict[tuple[int, int], sp.Expr] = {}
    for t in range(1, steps + 1):
        for s in range(1, steps + 1):
            if (s > t) if direction == "forward" else (s < t):
                blocks[(t, s)] = sp.ZeroMatrix(S, M)
                continue
            between = range(t, s, -1) if direction == "forward" else range(t, s)
            factors = [_node("A", k, None, S, S, arrow) for k in between]
            factors.append(_node("K", s, None, S, M, arrow))
            blocks[(t, s)] = factors[0] if len(factors) == 1 else sp.MatMul(*factors)
    return CausalPattern(c, steps, direction, blocks)


def causal_pattern(cell: Cell | str, *, steps: int, direction: str = "forward") -> CausalPattern:
    """The block pattern of ∂s_t/∂x_s over ``steps`` steps for one direction (causal zeros)."""
    if direction not in DIRECTIONS:
        raise GradproofError(f"direction must be 'forward' or 'backward', got {direction!r}")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
        raise GradproofError(f"steps must be a positive integer, got {steps!r}")
    return _causal_pattern(_cell(cell), steps, direction)


@dataclass(frozen=True)
class BidirectionalStep:
    """The joint step of both directions: z_k = [s→_k; s←_{T+1-k}], ∂z_k/∂z_{k-1} block diagonal."""

    cell: Cell
    lhs: sp.Expr
    result: sp.BlockMatrix
    references: Mapping[sp.MatrixSymbol, sp.Expr]

    def latex(self) -> str:
        return latex(sp.Eq(self.lhs, self.result, evaluate=False))

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex()}$"


@lru_cache(maxsize=None)
def _bidirectional_step(c: Cell) -> BidirectionalStep:
    S = state_symbols(c)[1].shape[0]
    fwd = _node("A", "k", None, S, S, r"\rightarrow")
    bwd = _node("A", "T+1-k", None, S, S, r"\leftarrow")
    result = sp.BlockMatrix([[fwd, sp.ZeroMatrix(S, S)], [sp.ZeroMatrix(S, S), bwd]])
    z, zp = sp.MatrixSymbol("z^{(k)}", 2 * S, 1), sp.MatrixSymbol("z^{(k-1)}", 2 * S, 1)
    refs = {fwd: step_jacobian(c).result, bwd: step_jacobian(c).result}
    return BidirectionalStep(c, JacobianSymbol(z, zp), result, refs)


def bidirectional_step(cell: Cell | str) -> BidirectionalStep:
    """∂z_k/∂z_{k-1} for the joint state of a bidirectional layer: diag(A→, A←), no cross terms."""
    return _bidirectional_step(_cell(cell))


# ----------------------------------------------------------------------------------------------
# Explicit unrolled models (scalar symbols) for brute-force checks
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExplicitUnrolled:
    """An unrolled model with scalar symbols.

    Attributes
    ----------
    xs : x_1..x_T, each (m, 1); index 0 unused (None).
    states : (t, l) -> the node's value (layer l = 1.., or for a bidirectional layer (t, 1) forward
        and (t, -1) backward); t = 0 (or T + 1 backward) are the initial-state symbols.
    factors : the A/B/K symbols of :func:`stack_jacobian`/:func:`causal_pattern` -> explicit values.
    """

    xs: tuple[sp.Matrix | None, ...]
    states: Mapping[tuple[int, int], sp.Matrix]
    factors: Mapping[sp.Expr, sp.Matrix]
    cut_symbols: sp.Matrix | None = None
    cut_value: sp.Matrix | None = None
    cut_states: Mapping[tuple[int, int], sp.Matrix] | None = None

    def cut_jacobian(self, node: tuple[int, int], point: Mapping[sp.Symbol, sp.Expr] | None = None) -> sp.Matrix:
        """Brute force ∂(node)/∂(cut node) by ``Matrix.jacobian``, at the uncut values.

        ``point`` (symbol -> value for the weights, inputs, initial states) is substituted before
        differentiating, which keeps deep unrolled models fast; the cut symbols stay free until
        after ``Matrix.jacobian``.
        """
        if self.cut_symbols is None or self.cut_value is None or self.cut_states is None:
            raise GradproofError("cut_jacobian() needs a model built with explicit_stack(..., cut=(t, l))")
        point = dict(point or {})
        jac = self.cut_states[node].xreplace(point).jacobian(self.cut_symbols)
        return jac.xreplace(dict(zip(self.cut_symbols, self.cut_value.xreplace(point))))


def _layer(c: Cell, n: int, m: int, tag: str) -> tuple:
    """The explicit cell with its parameters renamed ``name^tag``, and its step/input Jacobians."""
    ex = c.explicit(n, m)
    rename = {
        s: sp.Symbol(f"{s.name}^{tag}", real=True)
        for value in ex.parameters.values()
        for s in value
    }
    step = step_jacobian(c).explicit(n, m).xreplace(rename)
    inp = input_jacobian(c).explicit(n, m).xreplace(rename)
    return ex, ex.next_state.xreplace(rename), step, inp


def _apply(ex, expr: sp.Matrix, prev: sp.Matrix, x: sp.Matrix) -> sp.Matrix:
    rule = dict(zip(list(ex.state) + list(ex.x), list(prev) + list(x)))
    return expr.applyfunc(lambda e: _substitute(e, rule, {}))


def _substitute(e: sp.Basic, rule: dict, seen: dict) -> sp.Basic:
    """``e.xreplace(rule)``, except that a Piecewise is rebuilt as it is (``evaluate=False``).

    Rebuilding a Piecewise whose conditions now hold other Piecewise expressions makes SymPy fold
    and simplify the conditions (``piecewise_fold`` + ``simplify_logic``), which took minutes for
    a relu RNN unrolled three steps with n = 2; the unevaluated Piecewise is the same function.
    """
    if e in rule:
        return rule[e]
    if not e.args:
        return e
    if e in seen:
        return seen[e]
    args = tuple(_substitute(a, rule, seen) for a in e.args)
    if args == e.args:
        out = e
    elif isinstance(e, ExprCondPair):  # its __new__ folds a Piecewise inside the condition
        out = sp.Tuple.__new__(ExprCondPair, *args)
    elif isinstance(e, sp.Piecewise):  # as Piecewise.__new__ ends, without re-making the pairs
        out = sp.Basic.__new__(sp.Piecewise, *args)
    elif isinstance(e, sp.logic.boolalg.BooleanFunction) or e.is_Relational:
        out = e.func(*args, evaluate=False)
    else:
        out = e.func(*args)
    seen[e] = out
    return out


def _inputs(m: int, steps: int) -> tuple:
    return (None,) + tuple(
        sp.Matrix(m, 1, lambda r, _, k=k: sp.Symbol(f"x{r}_{k}", real=True)) for k in range(1, steps + 1)
    )


def explicit_stack(
    cell: Cell | str,
    hidden: int,
    inputs: int,
    *,
    steps: int,
    depth: int,
    skip: str | None = None,
    cut: tuple[int, int] | None = None,
) -> ExplicitUnrolled:
    """A stack unrolled with scalar symbols (each layer its own weights ``W_h[r,k]^l``).

    ``cut=(t, l)`` also builds ``cut_states``, the model with node s_t^l replaced downstream by
    fresh symbols ``v{r}`` (``cut_symbols``; its value is ``cut_value``), so
    ``cut_states[(T, L)].jacobian(cut_symbols)`` at ``cut_symbols = cut_value`` is the brute-force
    ∂s_T^L/∂s_t^l (:meth:`ExplicitUnrolled.cut_jacobian`). ``states`` and ``factors`` are those of
    the uncut model.
    """
    arch = Architecture(_cell(cell), depth, skip)
    xs = _inputs(inputs, steps)
    states, factors, _, _ = _run_stack(arch, hidden, inputs, steps, xs, None)
    if cut is None:
        return ExplicitUnrolled(xs, states, factors)
    if cut not in states or cut[0] < 1 or cut[1] < 1:
        raise GradproofError(f"cut must be a node (t, l) with 1 ≤ t ≤ steps, 1 ≤ l ≤ depth, got {cut!r}")
    cut_states, _, cut_symbols, cut_value = _run_stack(arch, hidden, inputs, steps, xs, cut)
    return ExplicitUnrolled(xs, states, factors, cut_symbols, cut_value, cut_states)


def _run_stack(arch: Architecture, n: int, inputs: int, steps: int, xs: tuple, cut: tuple[int, int] | None):
    c = arch.cell
    states: dict[tuple[int, int], sp.Matrix] = {}
    factors: dict[sp.Expr, sp.Matrix] = {N: sp.Integer(n), M: sp.Integer(inputs)}  # type: ignore[dict-item]
    S = c.state_size(n)
    sel = None if len(c.state_previous) == 1 else sp.Matrix.hstack(sp.eye(n), sp.zeros(n, n))
    cut_symbols = cut_value = None
    for l in range(1, arch.depth + 1):
        ex, nxt, step, inp = _layer(c, n, inputs if l == 1 else n, str(l))
        states[(0, l)] = sp.Matrix(S, 1, lambda r, _, l=l: sp.Symbol(f"s{r}_0^{l}", real=True))
        for t in range(1, steps + 1):
            prev = states[(t - 1, l)]
            below = xs[t] if l == 1 else (states[(t, l - 1)] if sel is None else sel * states[(t, l - 1)])
            value = _apply(ex, nxt, prev, below)
            A = _apply(ex, step, prev, below)
            B = _apply(ex, inp, prev, below)
            if l > 1 and sel is not None:
                B = B * sel
            if l > 1 and arch.skip == "residual":
                value = value + below
                B = B + sp.eye(S)
            factors[_factor(arch, (t, l), (t, l - 1))] = B
            factors[_factor(arch, (t, l), (t - 1, l))] = A
            if cut == (t, l):
                cut_value = value
                value = cut_symbols = sp.Matrix(S, 1, lambda r, _: sp.Symbol(f"v{r}", real=True))
            states[(t, l)] = value
    return states, factors, cut_symbols, cut_value


def explicit_bidirectional(cell: Cell | str, hidden: int, inputs: int, *, steps: int) -> ExplicitUnrolled:
    """One bidirectional layer unrolled with scalar symbols: states (t, 1) forward, (t, -1) backward.

    The directions have separate weights (``W_h[r,k]^→``, ``W_h[r,k]^←``), as ``torch.nn`` does
    with its ``*_reverse`` parameters. ``factors`` hold A→^{(k)}, K→^{(k)}, A←^{(k)}, K←^{(k)}.
    """
    c = _cell(cell)
    xs = _inputs(inputs, steps)
    S = c.state_size(hidden)
    Ssym = state_symbols(c)[1].shape[0]
    states: dict[tuple[int, int], sp.Matrix] = {}
    factors: dict[sp.Expr, sp.Matrix] = {N: sp.Integer(hidden), M: sp.Integer(inputs)}  # type: ignore[dict-item]
    for sign, arrow, tag in ((1, r"\rightarrow", "f"), (-1, r"\leftarrow", "b")):
        ex, nxt, step, inp = _layer(c, hidden, inputs, tag)
        start = 0 if sign == 1 else steps + 1
        states[(start, sign)] = sp.Matrix(S, 1, lambda r, _, tag=tag: sp.Symbol(f"s{r}_0^{tag}", real=True))
        order = range(1, steps + 1) if sign == 1 else range(steps, 0, -1)
        for t in order:
            prev = states[(t - sign, sign)]
            states[(t, sign)] = _apply(ex, nxt, prev, xs[t])
            factors[_node("A", t, None, Ssym, Ssym, arrow)] = _apply(ex, step, prev, xs[t])
            factors[_node("K", t, None, Ssym, M, arrow)] = _apply(ex, inp, prev, xs[t])
    return ExplicitUnrolled(xs, states, factors)
