"""Cells from equations: ``define_cell(name, state, equations)``.

A researcher writes the recurrence as Python-like assignments, evaluated in order::

    f = sigmoid(W_f @ h + U_f @ x + b_f)
    c = f * c + (1 - f) * tanh(W_c @ h + U_c @ x + b_c)
    h = tanh(c)

``@`` is the matrix product, ``*`` the elementwise (Hadamard) product, ``+ - /`` are elementwise
(``/`` by a number only), numbers scale vectors and ``1 - u`` is allowed; functions are activation
names (:func:`derive.activation`), with number parameters after the vector as in
``torch.nn.functional``: ``leaky_relu(W @ h + b, 0.2)``, ``elu(z, 1.5)``, ``celu(z, 0.5)``,
``hardtanh(z, -2, 2)``, ``softplus(z, 2)`` (β) or ``softplus(z, 2, 5)`` (β, threshold), meaning
exactly what ``activation("leaky_relu(x, 0.2)")`` means, PyTorch's derivative at the kinks included;
parameters must be number literals (an error names the line and column otherwise). ``x`` is the input; a state name on a right-hand side means the
previous state until it is reassigned; the state names' final values are the next state. Every
other name is a parameter, shaped by its use: a matrix times a state/hidden vector is n×n, a matrix
times ``x`` is n×m, anything else an n-vector.

The text is read by a whitelist walk over :mod:`ast` (never ``eval``/``exec``/``sympify``) into a
small program (tuples), from which both the SymPy definitions (:class:`DefinedCell`, a
:class:`~derive.cells.Cell` like the built-ins) and, independently, the torch reference
(:mod:`numeric.torch_reference`) are built.

>>> from gradproof.derive import define_cell, step_jacobian, text
>>> c = define_cell("leaky", ("h",), "h = 0.5 * h + 0.5 * tanh(W @ h + U @ x + b)")
>>> c.parameter_names
('W', 'U', 'b')
>>> print(text(step_jacobian(c).result))
1/2 I + 1/2 diag(1 - tanh²(W h(t-1) + U x(t) + b)) W
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from fractions import Fraction
from typing import ClassVar

import sympy as sp

from .activations import NAMED, activation
from .algebra import M, N, Act, OneMinus
from .cells import Cell
from .errors import GradproofError

__all__ = [
    "DefinedCell", "define_cell", "SHIPPED", "SHIPPED_CELL_NAMES", "shipped_cell",
    "parse_equations", "program_definitions",
]  # fmt: skip

#: A program node: ("state", name) previous state; ("var", name, k) k-th assignment of a name;
#: ("param", name); ("input",); ("num", Fraction); ("matmul", P, node); ("mul", a, b);
#: ("add", a, b); ("sub", a, b); ("neg", a); ("onem", a) for 1 - a; ("call", fn, a).
Node = tuple

_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class _Fail(GradproofError):
    pass


def _at(node: ast.AST, what: str) -> GradproofError:
    line = getattr(node, "lineno", 1)
    col = getattr(node, "col_offset", 0) + 1
    return GradproofError(f"equations line {line}, column {col}: {what}")


@dataclass
class _Parser:
    state: tuple[str, ...]
    assigned: dict[str, int] = field(default_factory=dict)  # name -> assignments so far
    targets: set[str] = field(default_factory=set)  # every name assigned somewhere
    params: dict[str, str] = field(default_factory=dict)  # name -> "vector" | "hidden" | "input"
    matrix_uses: dict[str, int] = field(default_factory=dict)
    #: extra function names bound to an Activation (the built-in RNN's σ), beside the named ones
    functions: dict[str, object] = field(default_factory=dict)

    def is_function(self, name: str) -> bool:
        return name in self.functions or _is_function(name)

    # each expression's kind: "n" (hidden vector), "m" (the input x), "num" (a number)
    def expr(self, node: ast.AST) -> tuple[Node, str]:
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise _at(node, f"only numbers are allowed as constants, got {node.value!r}")
            return ("num", Fraction(str(node.value))), "num"
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                a, k = self.expr(node.operand)
                if k == "num":
                    return ("num", -a[1]), "num"
                return ("neg", a), k
            if isinstance(node.op, ast.UAdd):
                return self.expr(node.operand)
            raise _at(node, f"operator {type(node.op).__name__} is not allowed (use + - * / @)")
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Attribute):
            raise _at(node, "attribute access (a.b) is not allowed in equations")
        if isinstance(node, ast.Subscript):
            raise _at(node, "indexing (a[i]) is not allowed in equations")
        raise _at(node, f"{type(node).__name__} is not allowed in equations (use + - * / @, numbers, activations)")

    def name(self, node: ast.Name) -> tuple[Node, str]:
        nm = node.id
        if nm.startswith("_") or not _IDENT.match(nm):
            raise _at(node, f"the name {nm!r} is not allowed (names start with a letter)")
        if nm == "x":
            return ("input",), "m"
        if nm in self.assigned:
            return ("var", nm, self.assigned[nm]), "n"
        if nm in self.state:
            return ("state", nm), "n"
        if nm in self.targets:
            raise _at(node, f"{nm!r} is used before it is assigned; assign it on an earlier line")
        if self.is_function(nm):
            raise _at(node, f"{nm!r} is a function; call it, e.g. {nm}(W @ h + b)")
        if self.params.get(nm, "vector") != "vector":
            raise _at(node, f"shape clash: {nm} multiplies a vector with @ elsewhere (a matrix), "
                            "here it is used as a vector")  # fmt: skip
        self.params[nm] = "vector"
        return ("param", nm), "n"

    def binop(self, node: ast.BinOp) -> tuple[Node, str]:
        op = node.op
        if isinstance(op, ast.MatMult):
            left = node.left
            if isinstance(left, ast.Attribute | ast.Call | ast.Subscript):
                self.expr(left)  # raises the specific error (attribute access, unknown function)
            if not isinstance(left, ast.Name) or left.id == "x" or left.id in self.state \
                    or left.id in self.targets or self.is_function(left.id):  # fmt: skip
                raise _at(node, "the left of @ must be a parameter name (a matrix), e.g. W @ h")
            if left.id.startswith("_") or not _IDENT.match(left.id):
                raise _at(left, f"the name {left.id!r} is not allowed (names start with a letter)")
            b, kb = self.expr(node.right)
            if kb == "num":
                raise _at(node, "shape clash: a matrix times a number; use * for scaling")
            shape = "input" if kb == "m" else "hidden"
            old = self.params.get(left.id)
            if old is not None and old != shape:
                raise _at(left, f"shape clash: {left.id} is used as "
                                f"{'an n-vector' if old == 'vector' else 'n×n' if old == 'hidden' else 'n×m'}"
                                f" elsewhere and as {'n×m' if shape == 'input' else 'n×n'} here")  # fmt: skip
            if old is not None:
                raise _at(left, f"{left.id} multiplies a vector twice; give each product its own "
                                "matrix name (each parameter enters once)")  # fmt: skip
            self.params[left.id] = shape
            return ("matmul", left.id, b), "n"
        a, ka = self.expr(node.left)
        b, kb = self.expr(node.right)
        if "m" in (ka, kb):
            raise _at(node, "shape clash: x (m entries) may only be multiplied by a matrix, U @ x")
        sym = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}.get(type(op))
        if sym is None:
            raise _at(node, f"operator {type(op).__name__} is not allowed (use + - * / @)")
        if ka == kb == "num":
            if sym == "/" and b[1] == 0:
                raise _at(node, "division by zero")
            value = {"+": lambda: a[1] + b[1], "-": lambda: a[1] - b[1], "*": lambda: a[1] * b[1],
                     "/": lambda: a[1] / b[1]}[sym]()  # fmt: skip
            return ("num", value), "num"
        if sym == "*":
            return ("mul", a, b), "n"
        if sym == "/":
            if kb != "num":
                raise _at(node, "division by a vector is not supported; divide by a number only")
            if b[1] == 0:
                raise _at(node, "division by zero")
            return ("mul", ("num", 1 / b[1]), a), "n"
        if ka == "num" or kb == "num":
            if sym == "-" and ka == "num" and a[1] == 1:
                return ("onem", b), "n"
            raise _at(node, "a number may only scale a vector (2 * v, v / 2) or appear as 1 - v")
        return (("add" if sym == "+" else "sub"), a, b), "n"

    def call(self, node: ast.Call) -> tuple[Node, str]:
        if not isinstance(node.func, ast.Name):
            raise _at(node, "only activation names can be called, e.g. tanh(W @ h + b)")
        fn = node.func.id
        if not self.is_function(fn):
            raise _at(node, f"unknown function {fn!r}; use an activation name such as sigmoid, tanh, relu")
        if node.keywords:
            raise _at(node, f"{fn}: keyword arguments are not allowed; pass parameters by position, "
                            f"e.g. {_example(fn)}")  # fmt: skip
        defaults = () if fn in self.functions else NAMED.get(_canonical(fn), (None, ()))[1]
        if not 1 <= len(node.args) <= 1 + len(defaults):
            if defaults:
                what = f"one vector argument and at most {len(defaults)} number parameter(s)"
            else:
                what = "exactly one argument here"
            raise _at(node, f"{fn} takes {what}, e.g. {_example(fn)}")
        params = [_literal(arg, fn, k) for k, arg in enumerate(node.args[1:], start=1)]
        a, k = self.expr(node.args[0])
        if k != "n":
            raise _at(node, f"{fn} must be applied to a hidden vector, not to {'x' if k == 'm' else 'a number'}")
        if fn in self.functions:
            return ("call", self.functions[fn], a), "n"
        if not params:
            return ("call", fn, a), "n"
        spec = f"{_canonical(fn)}(x, {', '.join(params)})"
        try:
            activation(spec)
        except GradproofError as exc:
            why = str(exc).split(" Allowed:")[0].split(": ", 1)[-1]  # the reason, not the list
            raise _at(node, f"{fn} with parameters {', '.join(params)}: {why}") from None
        return ("call", spec, a), "n"


def _canonical(fn: str) -> str:
    """The activation's canonical name (``Tanh`` -> ``tanh``, ``hardsigmoid`` -> ``hard_sigmoid``)."""
    return activation(fn).name.split("(")[0]


def _example(fn: str) -> str:
    defaults = NAMED.get(_canonical(fn), (None, ()))[1] if _is_function(fn) else ()
    shown = "".join(f", {d if d.is_Integer else float(d)}" for d in defaults)
    return f"{fn}(W @ h + b{shown})"


def _literal(node: ast.AST, fn: str, k: int) -> str:
    """A number literal parameter (``0.2``, ``-2``, ``1e-3``) as text; anything else is an error."""
    sign = ""
    inner = node
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        sign = "-" if isinstance(node.op, ast.USub) else ""
        inner = node.operand
    if not (isinstance(inner, ast.Constant) and isinstance(inner.value, int | float)
            and not isinstance(inner.value, bool)):  # fmt: skip
        raise _at(node, f"parameter {k} of {fn} must be a number literal such as 0.2 or -2 "
                        f"(names, expressions and vectors are not allowed), e.g. {_example(fn)}")  # fmt: skip
    value = inner.value
    if isinstance(value, float) and not math.isfinite(value):
        raise _at(node, f"parameter {k} of {fn} must be a finite number, got {value!r}")
    return sign + repr(value)


def _is_function(name: str) -> bool:
    if name == "x":
        return False
    try:
        return bool(activation(name).builtin)
    except GradproofError:
        return False


def parse_equations(
    state: tuple[str, ...], equations: str, *, functions: dict[str, object] | None = None
) -> tuple[tuple[tuple[str, int, Node], ...], dict[str, str]]:
    """The whitelist parse: ((name, version, node), ...) in order, and parameter -> kind.

    ``functions`` binds extra function names to an :class:`~derive.activations.Activation` (the
    built-in RNN writes ``h = sigma(z)`` with its σ bound to ``sigma``).
    """
    try:
        tree = ast.parse(equations.strip("\n"), mode="exec")
    except SyntaxError as exc:
        raise GradproofError(
            f"equations line {exc.lineno}, column {exc.offset}: not a valid assignment ({exc.msg})"
        ) from None
    p = _Parser(state, functions=dict(functions or {}))
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            p.targets.add(stmt.targets[0].id)
    program: list[tuple[str, int, Node]] = []
    for stmt in tree.body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)):  # fmt: skip
            raise _at(stmt, "each line must be one assignment name = expression")
        target = stmt.targets[0].id
        if target == "x" or target.startswith("_") or not _IDENT.match(target) or p.is_function(target):
            raise _at(stmt.targets[0], f"cannot assign to {target!r} (x is the input; function and "
                                       "_private names are reserved)")  # fmt: skip
        node, kind = p.expr(stmt.value)
        if kind != "n":
            raise _at(stmt.value, f"{target} must be a hidden vector, got {'x' if kind == 'm' else 'a number'}")
        version = p.assigned.get(target, 0) + 1
        p.assigned[target] = version
        program.append((target, version, node))
    for s in state:
        if s not in p.assigned:
            raise GradproofError(
                f"equations: the state {s!r} is never assigned; add a line '{s} = ...' "
                f"(state names: {', '.join(state)})"
            )
    used = {(n[1], n[2]) for _, _, node in program for n in _walk(node) if n[0] == "var"}
    last = {name: version for name, version, _ in program}
    for name, version, _ in program:
        if last[name] != version or name in state:
            if (name, version) not in used and name not in state:
                raise GradproofError(f"equations: {name} (assignment {version}) is never used; remove it")
            continue
        if (name, version) not in used:
            raise GradproofError(
                f"equations: {name} is assigned but never used in the state; remove it or use it"
            )
    if not program:
        raise GradproofError("equations: no assignments; write one line per definition, e.g. h = tanh(W @ h + U @ x + b)")
    return tuple(program), dict(p.params)


def _walk(node: Node):
    yield node
    for child in node[1:]:
        if isinstance(child, tuple):
            yield from _walk(child)


@dataclass(frozen=True)
class DefinedCell(Cell):
    """A cell defined by equations (:func:`define_cell`); used everywhere a built-in cell is.

    Attributes
    ----------
    label : the cell's name.
    state : the state names, in the order of the state vector ``[s_1; s_2; …]``.
    source : the equations as written.
    program : the parsed program (name, version, node), the parameters' kinds (derived).
    """

    label: str
    state: tuple[str, ...]
    source: str
    program: tuple = field(compare=False, repr=False, default=())
    param_kinds: tuple = field(compare=False, repr=False, default=())

    kind: ClassVar[str] = "defined"
    gate_form: ClassVar[bool] = True

    def __post_init__(self) -> None:
        program, kinds = parse_equations(self.state, self.source)
        object.__setattr__(self, "program", program)
        object.__setattr__(self, "param_kinds", tuple(kinds.items()))

    @property
    def name(self) -> str:
        return self.label

    @property
    def parameter_names(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(k for k, _ in self.param_kinds)

    @property
    def state_previous(self) -> tuple[sp.MatrixSymbol, ...]:
        return tuple(sp.MatrixSymbol(f"{s}^{{(t-1)}}", N, 1) for s in self.state)

    @property
    def state_next(self) -> tuple[sp.MatrixSymbol, ...]:
        return tuple(sp.MatrixSymbol(f"{s}^{{(t)}}", N, 1) for s in self.state)

    @property
    def definitions(self) -> tuple[tuple[sp.MatrixSymbol, sp.Expr], ...]:
        return _sympy_definitions(self)


def _symbol_for(name: str, version: int, last: int, display: dict[str, str] | None = None) -> sp.MatrixSymbol:
    base = (display or {}).get(name, name)
    if version == last:
        return sp.MatrixSymbol(f"{base}^{{(t)}}", N, 1)
    return sp.MatrixSymbol(f"{base}_{{{version}}}^{{(t)}}", N, 1)


def _sympy_definitions(c: DefinedCell) -> tuple[tuple[sp.MatrixSymbol, sp.Expr], ...]:
    return program_definitions(c.program, dict(c.param_kinds))


def program_definitions(
    program: tuple, param_kinds: dict[str, str], *, display: dict[str, str] | None = None
) -> tuple[tuple[sp.MatrixSymbol, sp.Expr], ...]:
    """The SymPy definitions ``(name^{(t)}, expression)`` of a parsed program.

    A state ``s`` on a right-hand side is ``s^{(t-1)}``; ``@`` is ``MatMul``, ``*`` of vectors
    ``HadamardProduct``, a chain ``a + b - c`` one flat ``MatAdd(a, b, -c)``, ``1 - u``
    ``OneMinus(u)``, a call ``Act(σ, a)``. ``display`` renames intermediate vectors in print
    (``{"c_tilde": r"\tilde{c}"}`` gives ``\tilde{c}^{(t)}``).
    """
    kinds = param_kinds
    last: dict[str, int] = {}
    for name, version, _ in program:
        last[name] = version
    x = sp.MatrixSymbol("x^{(t)}", M, 1)

    def param(name: str) -> sp.MatrixSymbol:
        k = kinds[name]
        return sp.MatrixSymbol(name, N, 1 if k == "vector" else N if k == "hidden" else M)

    def terms(node: Node) -> list[sp.Expr]:
        if node[0] == "add":
            return terms(node[1]) + terms(node[2])
        if node[0] == "sub":
            return terms(node[1]) + [sp.MatMul(-1, build(node[2]))]
        return [build(node)]

    def build(node: Node) -> sp.Expr:
        tag = node[0]
        if tag == "state":
            return sp.MatrixSymbol(f"{node[1]}^{{(t-1)}}", N, 1)
        if tag == "var":
            return _symbol_for(node[1], node[2], last[node[1]], display)
        if tag == "param":
            return param(node[1])
        if tag == "input":
            return x
        if tag == "matmul":
            return sp.MatMul(param(node[1]), build(node[2]))
        if tag == "mul":
            a, b = node[1], node[2]
            if a[0] == "num" or b[0] == "num":
                num, vec = (a, b) if a[0] == "num" else (b, a)
                return sp.MatMul(sp.Rational(num[1].numerator, num[1].denominator), build(vec))
            return sp.HadamardProduct(build(a), build(b))
        if tag in ("add", "sub"):
            return sp.MatAdd(*terms(node))
        if tag == "neg":
            return sp.MatMul(-1, build(node[1]))
        if tag == "onem":
            return OneMinus(build(node[1]))
        if tag == "call":
            return Act(node[1], build(node[2]))
        raise AssertionError(node)  # pragma: no cover

    return tuple(
        (_symbol_for(name, version, last[name], display), build(node)) for name, version, node in program
    )


def define_cell(name: str, state: tuple[str, ...] | list[str] | str, equations: str) -> DefinedCell:
    """A cell from its equations (see the module docstring for the language).

    Parameters
    ----------
    name : the cell's name (shown in reports).
    state : the state names in order, e.g. ``("h", "c")`` (or ``"h,c"``); the state vector is
        their concatenation ``[h; c]`` of size ``len(state) * n``.
    equations : one assignment per line.

    Returns
    -------
    DefinedCell, accepted wherever a built-in cell is.

    Raises
    ------
    GradproofError : naming the line and column and what is wrong.
    """
    if not isinstance(name, str) or not name.strip():
        raise GradproofError(f"define_cell needs a non-empty name, got {name!r}")
    if isinstance(state, str):
        state = tuple(s.strip() for s in state.split(",") if s.strip())
    if not isinstance(state, tuple | list) or not state or not all(isinstance(s, str) for s in state):
        raise GradproofError(f"define_cell needs the state names as a tuple of strings, e.g. ('h', 'c'), got {state!r}")
    state = tuple(state)
    for s in state:
        if not _IDENT.match(s) or s == "x" or _is_function(s):
            raise GradproofError(f"state name {s!r} is not allowed; use a letter-first name other than x and the function names")
    if len(set(state)) != len(state):
        raise GradproofError(f"state names must be distinct, got {state!r}")
    if not isinstance(equations, str):
        raise GradproofError(f"define_cell needs the equations as a string, got {type(equations).__name__}")
    return DefinedCell(name.strip(), state, equations)


#: The cells shipped as equations (name -> (state, equations)).
SHIPPED: dict[str, tuple[tuple[str, ...], str]] = {
    # Gers & Schmidhuber (2000), peepholes as vectors p ⊙ c (a diagonal peephole matrix).
    "lstm-peephole": (("h", "c"), """
f = sigmoid(W_f @ h + U_f @ x + p_f * c + b_f)
i = sigmoid(W_i @ h + U_i @ x + p_i * c + b_i)
g = tanh(W_c @ h + U_c @ x + b_c)
c = f * c + i * g
o = sigmoid(W_o @ h + U_o @ x + p_o * c + b_o)
h = o * tanh(c)
"""),
    # coupled input-forget gate: i = 1 - f (Greff et al. 2017, "CIFG").
    "lstm-coupled": (("h", "c"), """
f = sigmoid(W_f @ h + U_f @ x + b_f)
o = sigmoid(W_o @ h + U_o @ x + b_o)
g = tanh(W_c @ h + U_c @ x + b_c)
c = f * c + (1 - f) * g
h = o * tanh(c)
"""),
    # minimal gated unit (Zhou et al. 2016): one forget gate.
    "mgu": (("h",), """
f = sigmoid(W_f @ h + U_f @ x + b_f)
g = tanh(W_h @ (f * h) + U_h @ x + b_h)
h = (1 - f) * h + f * g
"""),
    # IndRNN (Li et al. 2018): a diagonal recurrence u ⊙ h.
    "indrnn": (("h",), """
h = relu(u * h + W_x @ x + b)
"""),
}

#: The names of the shipped equation cells, accepted by :func:`derive.cell` and ``--cell``.
SHIPPED_CELL_NAMES = tuple(SHIPPED)


def shipped_cell(name: str) -> DefinedCell:
    """One of the shipped equation cells by name (see :data:`SHIPPED_CELL_NAMES`)."""
    state, equations = SHIPPED[name]
    return define_cell(name, state, equations)
