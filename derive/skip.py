r"""Skip connections as symbolic blocks over any layer or cell (docs/math.md §5).

A *base map* ``F`` is a feed-forward layer :class:`Layer` (``x ↦ σ(W x + b)``) or a cell's one-step
map with the state as the variable (``s^{(t-1)} ↦ s^{(t)}``, the input ``x^{(t)}`` held fixed). A
block wraps it:

=============  ==========================================  =====================================
block          output                                      reference
=============  ==========================================  =====================================
residual       ``y = x + F(x)``                            He et al. 2016 (ResNet)
highway        ``y = T ⊙ H(x) + (1 - T) ⊙ x``,              Srivastava, Greff, Schmidhuber 2015
               ``T = σ(W_T x + b_T)``
dense          ``y = [x; F(x)]``                           Huang et al. 2017 (DenseNet)
=============  ==========================================  =====================================

The Jacobians are derived by the chain rule of :mod:`derive.algebra` with ``F`` (or ``H``) kept as
an *opaque* map whose Jacobian is the named factor ``∂F/∂x``; the base's own derived Jacobian is
attached as a reference (the step Jacobian of :func:`derive.step_jacobian` for a cell), so the
result holds for every base and is evaluated for a concrete one.

>>> from gradproof.derive import residual, highway, latex, text
>>> print(latex(residual("layer-tanh").result))
I + \frac{\partial F}{\partial x}
>>> print(text(highway("layer-tanh").result))
diag(1 - T) + diag((H - x) ⊙ T ⊙ (1 - T)) W_T + diag(T) ∂H/∂x
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from .activations import Activation, activation
from .algebra import (
    N,
    Act,
    JacobianSymbol,
    OneMinus,
    Sum,
    Term,
    explicit,
    jacobian,
    latex,
    terms_to_expr,
)
from .cells import Cell, cell as _cell
from .errors import GradproofError
from .jacobians import Step, state_symbols, step_jacobian

__all__ = [
    "Layer",
    "Base",
    "base",
    "SkipDerivation",
    "ExplicitBlock",
    "residual",
    "highway",
    "highway_limit",
    "dense",
    "DenseStack",
    "dense_stack",
    "BLOCK_KINDS",
]

#: The block kinds :func:`skip_block` accepts.
BLOCK_KINDS = ("residual", "highway", "dense")


# ----------------------------------------------------------------------------------------------
# Base maps: a feed-forward layer, or a cell's one-step map
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Layer:
    """A feed-forward layer ``F(x) = σ(W x + b)``; ``W`` (n, n), ``b`` (n,), x of size n."""

    activation: Activation | str = "tanh"

    def __post_init__(self) -> None:
        object.__setattr__(self, "activation", activation(self.activation))

    @property
    def name(self) -> str:
        return f"layer-{self.activation.name}"  # type: ignore[union-attr]

    @property
    def variable(self) -> sp.MatrixSymbol:
        return sp.MatrixSymbol("x", N, 1)

    @property
    def output(self) -> sp.MatrixSymbol:
        return sp.MatrixSymbol("F(x)", N, 1)

    @property
    def definitions(self) -> tuple[tuple[sp.MatrixSymbol, sp.Expr], ...]:
        z = sp.MatrixSymbol("z", N, 1)
        W, b = sp.MatrixSymbol("W", N, N), sp.MatrixSymbol("b", N, 1)
        return ((z, sp.MatAdd(sp.MatMul(W, self.variable), b)), (self.output, Act(self.activation, z)))


@dataclass(frozen=True)
class Base:
    """A map ``F`` known by its variable, its output, its derived Jacobian and its explicit view.

    Attributes
    ----------
    name : ``layer-<activation>`` or a cell name.
    variable : the vector symbol x (size S).
    jacobian : the derived ∂F/∂x, structured.
    references : named Jacobians inside ``jacobian`` -> their expressions (LSTM: ∂c/∂h).
    source : the :class:`Layer` or :class:`~derive.cells.Cell`.
    """

    name: str
    variable: sp.MatrixSymbol
    jacobian: sp.Expr
    references: tuple[tuple[JacobianSymbol, sp.Expr], ...]
    source: Layer | Cell

    @property
    def size(self) -> sp.Expr:
        return self.variable.shape[0]

    def explicit(self, hidden: int, inputs: int) -> tuple[sp.Matrix, sp.Matrix, dict]:
        """(x, F(x), environment) with scalar symbols; ``inputs`` is unused by a layer."""
        return _base_explicit(self.source, hidden, inputs)


@lru_cache(maxsize=None)
def _base_explicit(source: Layer | Cell, n: int, m: int) -> tuple[sp.Matrix, sp.Matrix, dict]:
    if isinstance(source, Layer):
        x = sp.Matrix(n, 1, lambda r, _: sp.Symbol(f"x{r}", real=True))
        env: dict = {N: sp.Integer(n), source.variable: x}
        env[sp.MatrixSymbol("W", N, N)] = sp.Matrix(n, n, lambda r, k: sp.Symbol(f"W[{r},{k}]", real=True))
        env[sp.MatrixSymbol("b", N, 1)] = sp.Matrix(n, 1, lambda r, _: sp.Symbol(f"b[{r}]", real=True))
        for lhs, rhs in source.definitions:
            env[lhs] = explicit(rhs, env)
        return x, env[source.output], env
    ex = source.explicit(n, m)
    env = dict(ex.environment)
    s_prev, s = state_symbols(source)
    env[s_prev], env[s] = ex.state, ex.next_state
    return ex.state, ex.next_state, env


@lru_cache(maxsize=None)
def _base(source: Layer | Cell) -> Base:
    if isinstance(source, Layer):
        terms = jacobian(source.output, source.variable, dict(source.definitions))
        jac = terms_to_expr(terms, N, N)
        return Base(source.name, source.variable, jac, (), source)
    sj = step_jacobian(source)
    s_prev, _ = state_symbols(source)
    return Base(source.name, s_prev, sj.result, tuple(sj.references.items()), source)


def base(spec: str | Layer | Cell | Base) -> Base:
    """The base map for ``layer-<activation>`` (a feed-forward layer) or a cell name.

    >>> base("layer-relu").name, base("lstm").variable
    ('layer-relu', s^{(t-1)})
    """
    if isinstance(spec, Base):
        return spec
    if isinstance(spec, Layer):
        return _base(spec)
    if isinstance(spec, str) and spec.strip().lower().startswith("layer-"):
        try:
            return _base(Layer(spec.strip()[len("layer-"):]))
        except GradproofError as exc:
            raise GradproofError(
                f"unknown layer {spec!r}: {exc} (a layer is 'layer-<activation>', e.g. layer-tanh)"
            ) from None
    try:
        return _base(_cell(spec))  # type: ignore[arg-type]
    except GradproofError as exc:
        raise GradproofError(
            f"{exc}; a skip block also takes a feed-forward layer 'layer-<activation>', e.g. layer-tanh"
        ) from None


# ----------------------------------------------------------------------------------------------
# Derivation objects
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExplicitBlock:
    """A block with scalar symbols: x (S, 1), y (rows, 1), and the environment of every symbol."""

    x: sp.Matrix
    y: sp.Matrix
    environment: Mapping[sp.Expr, sp.Matrix]


@dataclass(frozen=True)
class SkipDerivation:
    """A derived Jacobian of a skip block: ``lhs = result``, its steps and its explicit view.

    Attributes
    ----------
    title : what is derived, in words.
    kind : ``residual``, ``highway``, ``highway T≡0``, ``highway T≡1``, ``dense``.
    base : the wrapped map.
    lhs : ∂y/∂x.
    result : the structured SymPy matrix expression, in terms of ``∂F/∂x`` (or ``∂H/∂x``).
    references : named Jacobians -> expressions, the base's derived Jacobian among them.
    definitions : the block's own definitions (gate T, output y).
    steps : the chain-rule story.
    """

    title: str
    kind: str
    base: Base
    lhs: sp.Expr
    result: sp.Expr
    references: Mapping[JacobianSymbol, sp.Expr]
    definitions: tuple[tuple[sp.MatrixSymbol, sp.Expr], ...]
    steps: tuple[Step, ...]
    output: sp.Expr

    @property
    def equation(self) -> sp.Equality:
        return sp.Eq(self.lhs, self.result, evaluate=False)

    def latex(self) -> str:
        """``∂y/∂x = result`` in the lecture's notation."""
        return latex(self.equation)

    def _latex(self, printer: object) -> str:
        return self.latex()

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex()}$"

    def explicit_block(self, hidden: int, inputs: int = 1) -> ExplicitBlock:
        """The block's output with scalar symbols (gate parameters ``W_T[r,k]``, ``b_T[r]``)."""
        x, fx, env = self.base.explicit(hidden, inputs)
        env = dict(env)
        size = x.shape[0]
        b = self.base
        env[_resize(_F, b)] = env[_resize(_H, b)] = fx
        env[_resize(_W_T, b)] = sp.Matrix(size, size, lambda r, k: sp.Symbol(f"W_T[{r},{k}]", real=True))
        env[_resize(_b_T, b)] = sp.Matrix(size, 1, lambda r, _: sp.Symbol(f"b_T[{r}]", real=True))
        env[b.variable] = x
        for lhs, rhs in self.definitions:
            env[lhs] = explicit(rhs, env)
        return ExplicitBlock(x, explicit(self.output, env), env)

    def explicit(self, hidden: int, inputs: int = 1, *, environment: Mapping | None = None) -> sp.Matrix:
        """The structured result evaluated in the explicit view (or in ``environment``)."""
        env = dict(environment if environment is not None else self.explicit_block(hidden, inputs).environment)
        for ref, expr in self.references.items():
            env[ref] = explicit(expr, env)
        return explicit(self.result, env)


# The block symbols. The size is that of the base's variable; it is substituted by ``_sized``.
_S = sp.Symbol("S", integer=True, positive=True)
_F = sp.MatrixSymbol("F", _S, 1)
_H = sp.MatrixSymbol("H", _S, 1)
_T = sp.MatrixSymbol("T", _S, 1)
_Y = sp.MatrixSymbol("y", _S, 1)
_W_T = sp.MatrixSymbol("W_T", _S, _S)
_b_T = sp.MatrixSymbol("b_T", _S, 1)


def _sized(b: Base) -> dict:
    return {_S: b.size}


def _resize(expr: sp.Expr, b: Base) -> sp.Expr:
    """Block symbols of size S -> the base's size (n, or 2n for the LSTM)."""
    return expr.subs(_sized(b)) if b.size != _S else expr


def _references(b: Base, opaque: sp.MatrixSymbol) -> dict[JacobianSymbol, sp.Expr]:
    x = b.variable
    refs: dict[JacobianSymbol, sp.Expr] = dict(b.references)  # used inside b.jacobian: first
    refs[JacobianSymbol(_resize(opaque, b), x)] = b.jacobian
    return refs


def _base_step(b: Base, opaque: sp.MatrixSymbol, letter: str) -> Step:
    return Step(
        f"the wrapped map ${letter}$ is {b.name}; its Jacobian, derived by the same chain rule",
        sp.Eq(JacobianSymbol(_resize(opaque, b), b.variable), b.jacobian, evaluate=False),
    )


def _block(b: Base, kind: str, defs: list, opaque: sp.MatrixSymbol, gate_form: bool, texts: list[str]) -> SkipDerivation:
    x = b.variable
    plain_x = sp.MatrixSymbol("x", b.size, 1)
    defs = [(_resize(lhs, b), _resize(rhs, b).xreplace({plain_x: x})) for lhs, rhs in defs]
    y = defs[-1][0]
    op = _resize(opaque, b)
    steps = [Step(t, sp.Eq(lhs, rhs, evaluate=False)) for t, (lhs, rhs) in zip(texts, defs)]
    table = dict(defs)
    for lhs, _ in defs:
        terms = jacobian(lhs, x, table, gate_form=gate_form, opaque=frozenset({op}))
        expr = terms_to_expr(terms, lhs.shape[0], x.shape[0])
        steps.append(Step(_rule_text(lhs, y), sp.Eq(JacobianSymbol(lhs, x), expr, evaluate=False)))
    result = steps[-1].equation.rhs
    steps.insert(0, _base_step(b, opaque, op.name))
    return SkipDerivation(
        title=f"{kind} block over {b.name}",
        kind=kind,
        base=b,
        lhs=JacobianSymbol(y, x),
        result=result,
        references=_references(b, opaque),
        definitions=tuple(defs),
        steps=tuple(steps),
        output=y,
    )


def _rule_text(lhs: sp.MatrixSymbol, y: sp.MatrixSymbol) -> str:
    if lhs == y:
        return (
            "chain rule over the block's output: a sum differentiates term by term, the product "
            "rule $\\partial(a \\odot b) = \\operatorname{diag}(b)\\,\\partial a + "
            "\\operatorname{diag}(a)\\,\\partial b$ on each Hadamard product, the wrapped map "
            "contributes its Jacobian by name"
        )
    return "the gate is a sigmoid layer; its derivative is written through its own value $T \\odot (1 - T)$"


@lru_cache(maxsize=None)
def _residual(b: Base) -> SkipDerivation:
    x = sp.MatrixSymbol("x", _S, 1)
    defs = [(_Y, sp.MatAdd(x, _F))]
    return _block(b, "residual", defs, _F, False, ["the residual block adds its input to the map's output"])


@lru_cache(maxsize=None)
def _highway(b: Base) -> SkipDerivation:
    x = sp.MatrixSymbol("x", _S, 1)
    defs = [
        (_T, Act("sigmoid", sp.MatAdd(sp.MatMul(_W_T, x), _b_T))),
        (_Y, sp.MatAdd(sp.HadamardProduct(_T, _H), sp.HadamardProduct(OneMinus(_T), x))),
    ]
    texts = [
        "the transform gate $T$ decides, per unit, how much of the map to let through",
        "the highway block mixes the map's output and its input (carry gate $1 - T$)",
    ]
    return _block(b, "highway", defs, _H, True, texts)


def residual(spec: str | Layer | Cell | Base) -> SkipDerivation:
    r"""∂y/∂x of the residual block y = x + F(x) (He et al. 2016; docs/math.md §5).

    .. math:: \frac{\partial y}{\partial x} = I + J_F

    The identity path never vanishes, whatever ``J_F`` is. ``spec`` is ``layer-<activation>``, a
    cell name, or a :class:`Layer`/:class:`~derive.cells.Cell`.
    """
    return _residual(base(spec))


def highway(spec: str | Layer | Cell | Base) -> SkipDerivation:
    r"""∂y/∂x of the highway block y = T ⊙ H(x) + (1 - T) ⊙ x, T = σ(W_T x + b_T).

    .. math:: \frac{\partial y}{\partial x} = D(1 - T) + D(T) J_H + D((H - x) \odot T \odot (1 - T)) W_T

    Srivastava, Greff and Schmidhuber 2015; docs/math.md §5.
    """
    return _highway(base(spec))


# ----------------------------------------------------------------------------------------------
# The highway block's limits: T ≡ 0 (carry everything) and T ≡ 1 (transform everything)
# ----------------------------------------------------------------------------------------------


def _limit_vectors(vectors: tuple[sp.Expr, ...], gate: sp.Expr, value: int) -> tuple[sp.Expr, ...] | None:
    """The Hadamard factors of a diag with T ≡ value: None when the factor vanishes."""
    out = []
    flat = [a for v in vectors for a in (v.args if isinstance(v, sp.HadamardProduct) else (v,))]
    for v in flat:
        if v == gate:
            if value == 0:
                return None
            continue
        if v == OneMinus(gate):
            if value == 1:
                return None
            continue
        if gate in v.atoms(sp.MatrixSymbol):
            raise NotImplementedError(f"gate {gate} inside {v}: no limit rule")
        out.append(v)
    return tuple(out)


def _limit_terms(terms: Sum, gate: sp.Expr, value: int) -> Sum:
    out: list[Term] = []
    for t in terms:
        factors: list[tuple[str, object]] = []
        alive = True
        for kind, val in t.factors:
            if kind == "diag":
                vs = _limit_vectors(val, gate, value)  # type: ignore[arg-type]
                if vs is None:
                    alive = False
                    break
                if vs:
                    factors.append(("diag", vs))
            elif kind == "sum":
                inner = _limit_terms(val, gate, value)  # type: ignore[arg-type]
                if not inner:
                    alive = False
                    break
                factors.append(("sum", inner))
            else:
                factors.append((kind, val))
        if alive:
            out.append(Term(t.sign, tuple(factors)))
    return tuple(out)


@lru_cache(maxsize=None)
def _highway_limit(b: Base, value: int) -> SkipDerivation:
    h = _highway(b)
    x = b.variable
    gate = _resize(_T, b)
    terms = jacobian(h.output, x, dict(h.definitions), gate_form=True, opaque=frozenset({_resize(_H, b)}))
    limited = _limit_terms(terms, gate, value)
    result = terms_to_expr(limited, x.shape[0], x.shape[0])
    words = "closed ($T \\equiv 0$, $b_T \\to -\\infty$): the block carries its input" if value == 0 else (
        "open ($T \\equiv 1$, $b_T \\to +\\infty$): the block is the plain map"
    )
    step = Step(
        f"gate {words}; every term with a factor $T$ (or $1 - T$) vanishes and the other factor is 1",
        sp.Eq(h.lhs, result, evaluate=False),
    )
    return SkipDerivation(
        title=f"highway block over {b.name}, T ≡ {value}",
        kind=f"highway T≡{value}",
        base=b,
        lhs=h.lhs,
        result=result,
        references=h.references,
        definitions=h.definitions,
        steps=h.steps + (step,),
        output=h.output,
    )


def highway_limit(spec: str | Layer | Cell | Base, *, gate: int) -> SkipDerivation:
    r"""The highway Jacobian with the transform gate closed (``gate=0``) or open (``gate=1``).

    Substituting T ≡ 0 in the derived Jacobian (the limit b_T → -∞) leaves ``I``: the block is the
    identity and the gradient passes unchanged; T ≡ 1 (b_T → +∞) leaves ``J_H``: a plain layer.
    """
    if gate not in (0, 1):
        raise GradproofError(f"highway_limit(gate=...) must be 0 (closed) or 1 (open), got {gate!r}")
    return _highway_limit(base(spec), gate)


# ----------------------------------------------------------------------------------------------
# Dense connections
# ----------------------------------------------------------------------------------------------


@lru_cache(maxsize=None)
def _dense(b: Base) -> SkipDerivation:
    x = b.variable
    f = _resize(_F, b)
    ident = terms_to_expr(jacobian(x, x, {}), x.shape[0], x.shape[0])
    jf = terms_to_expr(jacobian(f, x, {}, opaque=frozenset({f})), x.shape[0], x.shape[0])
    result = sp.BlockMatrix([[ident], [jf]])
    y = sp.MatrixSymbol("y", 2 * x.shape[0], 1)
    steps = (
        _base_step(b, _F, "F"),
        Step("the dense block concatenates its input and the map's output",
             sp.Eq(y, sp.BlockMatrix([[x], [f]]), evaluate=False)),
        Step("the Jacobian of a stacked vector stacks the blocks' Jacobians",
             sp.Eq(JacobianSymbol(y, x), result, evaluate=False)),
    )  # fmt: skip
    return SkipDerivation(
        title=f"dense block over {b.name}",
        kind="dense",
        base=b,
        lhs=JacobianSymbol(y, x),
        result=result,
        references=_references(b, _F),
        definitions=(),
        steps=steps,
        output=sp.BlockMatrix([[x], [f]]),
    )


def dense(spec: str | Layer | Cell | Base) -> SkipDerivation:
    r"""∂y/∂x of the dense block y = [x; F(x)] (Huang et al. 2017): the block matrix [I; J_F]."""
    return _dense(base(spec))


@dataclass(frozen=True)
class DenseStack:
    r"""A densely connected stack x_l = σ(Σ_{k<l} W_{l,k} x_k + b_l), l = 1..depth (docs/math.md §5).

    ``jacobians[(l, j)]`` is ∂x_l/∂x_j derived by the chain rule with the earlier layers kept by
    name, the recursion ∂x_l/∂x_j = J_l^{(j)} + Σ_{j<k<l} J_l^{(k)} ∂x_k/∂x_j with
    J_l^{(k)} = D(σ'(z_l)) W_{l,k}.
    """

    activation: Activation
    depth: int
    layers: tuple[sp.MatrixSymbol, ...]
    definitions: tuple[tuple[sp.MatrixSymbol, sp.Expr], ...]
    jacobians: Mapping[tuple[int, int], sp.Expr]

    def latex(self) -> str:
        """Every ∂x_l/∂x_0, one equation per line."""
        return r" \\ ".join(
            latex(sp.Eq(JacobianSymbol(self.layers[l], self.layers[0]), self.jacobians[(l, 0)], evaluate=False))
            for l in range(1, self.depth + 1)
        )

    def _repr_latex_(self) -> str:
        return f"$\\displaystyle {self.latex()}$"

    def explicit(self, hidden: int) -> tuple[dict, list[sp.Matrix]]:
        """(environment, [x_0, …, x_depth]) with scalar symbols; x_0 entries ``x0_{r}``."""
        env: dict = {N: sp.Integer(hidden)}
        for _, rhs in self.definitions:
            for s in rhs.atoms(sp.MatrixSymbol):
                if s in env or s in dict(self.definitions):
                    continue
                if s == self.layers[0]:
                    env[s] = sp.Matrix(hidden, 1, lambda r, _: sp.Symbol(f"x0_{r}", real=True))
                elif s.shape[1] == 1:
                    env[s] = sp.Matrix(hidden, 1, lambda r, _, s=s: sp.Symbol(f"{s.name}[{r}]", real=True))
                else:
                    env[s] = sp.Matrix(hidden, hidden, lambda r, k, s=s: sp.Symbol(f"{s.name}[{r},{k}]", real=True))
        for lhs, rhs in self.definitions:
            env[lhs] = explicit(rhs, env)
        return env, [env[x] for x in self.layers]


@lru_cache(maxsize=None)
def _dense_stack(act: Activation, depth: int) -> DenseStack:
    xs = tuple(sp.MatrixSymbol(f"x_{{{l}}}", N, 1) for l in range(depth + 1))
    defs: list[tuple[sp.MatrixSymbol, sp.Expr]] = []
    for l in range(1, depth + 1):
        z = sp.MatrixSymbol(f"z_{{{l}}}", N, 1)
        W = [sp.MatrixSymbol(f"W_{{{l},{k}}}", N, N) for k in range(l)]
        b = sp.MatrixSymbol(f"b_{{{l}}}", N, 1)
        defs.append((z, sp.MatAdd(*[sp.MatMul(W[k], xs[k]) for k in range(l)], b)))
        defs.append((xs[l], Act(act, z)))
    table = dict(defs)
    jacs: dict[tuple[int, int], sp.Expr] = {}
    for j in range(depth):
        for l in range(j + 1, depth + 1):
            keep = frozenset(xs[j + 1 : l])
            terms = jacobian(xs[l], xs[j], table, keep=keep)
            jacs[(l, j)] = terms_to_expr(terms, N, N)
    return DenseStack(act, depth, xs, tuple(defs), jacs)


def dense_stack(depth: int, *, activation_name: str = "tanh") -> DenseStack:
    """The densely connected stack of ``depth`` layers and its derived Jacobians ∂x_l/∂x_j."""
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 1:
        raise GradproofError(f"dense_stack(depth=...) needs a positive integer, got {depth!r}")
    return _dense_stack(activation(activation_name), depth)


def skip_block(kind: str, spec: str | Layer | Cell | Base) -> SkipDerivation:
    """The block ``kind`` (``residual``, ``highway``, ``dense``) over ``spec``."""
    table = {"residual": residual, "highway": highway, "dense": dense}
    if kind not in table:
        raise GradproofError(f"unknown skip block {kind!r}; choose one of: {', '.join(BLOCK_KINDS)}")
    return table[kind](spec)


__all__ += ["skip_block"]
