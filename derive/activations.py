r"""Activation functions σ and their derivative bound γ = sup_x |σ'(x)|.

An :class:`Activation` carries σ as a SymPy expression in the real symbol :data:`X`, its
derivative σ' (taken by ``sympy.diff``) and LaTeX names for printing σ(z) and σ'(z). This module
is SymPy only: the numpy and torch versions live in :mod:`gradproof.numeric.activations`.

γ is the constant of the Pascanu–Mikolov–Bengio bound (docs/math.md §1):

.. math::

    \left\| \frac{\partial h_t}{\partial h_{t-1}} \right\|_2
    = \left\| \operatorname{diag}(\sigma'(z_t)) W_h \right\|_2 \le \gamma\, \sigma_{\max}(W_h),
    \qquad \gamma = \sup_{x \in \mathbb{R}} |\sigma'(x)|.

It is *derived*, never typed in: :func:`gamma` splits the real line at the points where σ' is not
smooth (Piecewise boundaries, zeros of the arguments of ``Abs`` and ``sign``), and on each piece
takes the values at the critical points of σ' (solutions of σ'' = 0), the one-sided limits at the
ends of the piece and the limits at ±∞; the values of σ' at the kinks themselves are candidates
too. γ is the largest absolute value among the candidates, as an exact SymPy number.

Conventions at kinks follow PyTorch's autograd:

* relu: σ'(0) = 0 (``torch.relu`` backward gives 0 at 0).
* hard_sigmoid (``torch.nn.Hardsigmoid``, σ(x) = min(max(x/6 + 1/2, 0), 1)):
  σ'(x) = 1/6 for -3 < x < 3 and 0 for x ≤ -3 or x ≥ 3, so σ'(±3) = 0 (torch's backward passes
  the gradient only where -3 < x < 3, strictly). Here σ' is exactly 1/6; PyTorch 2.x's backward
  multiplies by the float32 constant 1/6 even for float64 tensors, 0.16666667163…, about 5e-9
  off, so compare against ``torch.nn.functional.hardsigmoid`` with atol ≈ 1e-8.
* user expressions with ``abs``: d|u|/du = sign(u), which is 0 at u = 0, as ``torch.abs``.

Each convention is encoded by which Piecewise branch owns the kink; ``sympy.diff`` keeps the
conditions, so the derivative follows from σ without a hand-written rule.

User expressions such as ``"tanh(3*x)"`` are parsed by a small whitelist parser over Python's
``ast`` (never ``eval``, ``exec`` or ``sympify`` of user text); see :data:`ALLOWED_FUNCTIONS`.

Examples
--------
>>> from gradproof.derive import gamma
>>> gamma("sigmoid")
1/4
>>> gamma("tanh(3*x)")
3
>>> act = activation("tanh")
>>> act.latex_of("z")
'\\tanh\\left(z\\right)'
>>> act.derivative
1 - tanh(x)**2
"""

from __future__ import annotations

import ast
import functools
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import sympy as sp

from .errors import GradproofError

__all__ = [
    "X",
    "Activation",
    "activation",
    "gamma",
    "BUILTIN_NAMES",
    "ALLOWED_FUNCTIONS",
    "ALLOWED_CONSTANTS",
]

#: The real variable every activation is written in.
X = sp.Symbol("x", real=True)

Expr = sp.Expr


# ---------------------------------------------------------------------------------------------
# The Activation object
# ---------------------------------------------------------------------------------------------
def _latex_argument(arg_latex: str) -> str:
    """Wrap a compound argument in parentheses so ``3 z`` stays ``3 (a + b)``."""
    arg = arg_latex.strip()
    depth = 0
    for char in arg:
        depth += char in "{([" and 1 or (-1 if char in "})]" else 0)
        if depth == 0 and char in " +-,=":
            return rf"\left({arg}\right)"
    return arg


@dataclass(frozen=True)
class Activation:
    r"""An elementwise activation σ with its derivative σ' (SymPy).

    Parameters
    ----------
    name : str
        ``"sigmoid"``, ``"tanh"``, ``"relu"``, ``"hard_sigmoid"``, ``"identity"``, or, for a user
        expression, the normalised text ``str(expr)`` (e.g. ``"tanh(3*x)"``).
    expr : sympy.Expr
        σ(x) in the real symbol :data:`X`.
    derivative : sympy.Expr
        σ'(x) = ``sympy.diff(expr, X)``; kink conventions as in the module docstring.
    latex_name : str
        The function's LaTeX name (``\sigma``, ``\tanh``, ``\operatorname{relu}``, …); for a user
        expression, the LaTeX of σ(x) itself.
    output_derivative : callable or None
        σ' written through the output y = σ(x): sigmoid y(1-y), tanh 1-y²; ``None`` otherwise.
    builtin : bool
        Whether this is one of :data:`BUILTIN_NAMES`.

    Notes
    -----
    Equality and hashing use ``name``, ``expr`` and ``derivative`` only. Numbers:
    ``gradproof.numeric.activations.numpy_pair(act)`` and ``torch_function(act)``.

    Examples
    --------
    >>> act = activation("sigmoid")
    >>> act.expr
    1/(1 + exp(-x))
    >>> act.gamma
    1/4
    >>> act.latex_prime_of("z_t")
    "\\sigma'\\left(z_t\\right)"
    """

    name: str
    expr: Expr
    derivative: Expr
    latex_name: str
    output_derivative: Callable[[Expr], Expr] | None = field(default=None, compare=False)
    builtin: bool = field(default=False, compare=False)
    call: tuple[str, tuple[Expr, ...]] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise GradproofError(f"Activation.name must be a non-empty str; got {self.name!r}.")
        for label in ("expr", "derivative"):
            value = getattr(self, label)
            if not isinstance(value, sp.Expr):
                raise GradproofError(
                    f"Activation.{label} must be a SymPy expression in derive.activations.X; "
                    f"got {type(value).__name__}. Build it with activation('...') instead."
                )
            extra = value.free_symbols - {X}
            if extra:
                raise GradproofError(
                    f"Activation.{label} may depend on X = Symbol('x', real=True) only; it also "
                    f"contains {sorted(map(str, extra))}. Use derive.activations.X as the variable."
                )

    # -- derived quantities ------------------------------------------------------------------
    @property
    def gamma(self) -> Expr:
        r"""γ = sup_x |σ'(x)| as an exact SymPy number (see :func:`gamma`)."""
        from .gamma import gamma as _gamma

        return _gamma(self)

    # -- printing ----------------------------------------------------------------------------
    def latex_of(self, arg_latex: str) -> str:
        r"""LaTeX of σ applied to an argument.

        Parameters
        ----------
        arg_latex : str
            LaTeX of the argument, e.g. ``"z"`` or ``"W_h h + b"`` (compound arguments are
            parenthesised where a user expression multiplies them).

        Examples
        --------
        >>> activation("sigmoid").latex_of("z")
        '\\sigma\\left(z\\right)'
        >>> activation("tanh(3*x)").latex_of("z")
        '\\tanh{\\left(3 z \\right)}'
        """
        if self.builtin:
            return rf"{self.latex_name}\left({arg_latex}\right)"
        return sp.latex(self.expr, symbol_names={X: _latex_argument(arg_latex)})

    def latex_prime_of(self, arg_latex: str) -> str:
        r"""LaTeX of σ' applied to an argument.

        Built-ins print the name with a prime, ``\tanh'\left(z\right)``; a user expression prints
        its derivative written out, e.g. ``3 - 3 \tanh^{2}{\left(3 z \right)}``.

        Examples
        --------
        >>> activation("relu").latex_prime_of("z")
        "\\operatorname{relu}'\\left(z\\right)"
        """
        if self.builtin:
            return rf"{self.latex_name}'\left({arg_latex}\right)"
        return sp.latex(self.derivative, symbol_names={X: _latex_argument(arg_latex)})

    def _latex(self, printer: Any) -> str:
        """SymPy printer hook: ``sympy.latex(act)`` prints σ(x)."""
        return self.latex_of("x")

    def _repr_latex_(self) -> str:
        body = f"{self.latex_of('x')} = {sp.latex(self.expr)}" if self.builtin else self.latex_of("x")
        return rf"$\displaystyle {body}$"

    def __str__(self) -> str:
        return self.name


# ---------------------------------------------------------------------------------------------
# The table of built-ins: one row per activation, derivative rule beside its function.
# σ' itself is always sympy.diff(σ), so the convention at a kink is the Piecewise branch owning it.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Row:
    name: str
    expr: Expr  # σ(x); σ' = sympy.diff(expr, X)
    latex_name: str
    output_derivative: Callable[[Expr], Expr] | None  # σ' written through y = σ(x)


_HALF = sp.Rational(1, 2)

_TABLE: tuple[_Row, ...] = (
    #    name            σ(x)                                  LaTeX name
    #    σ' through y = σ(x)
    _Row("sigmoid",      1 / (1 + sp.exp(-X)),                 r"\sigma",
         lambda y: y * (1 - y)),
    _Row("tanh",         sp.tanh(X),                           r"\tanh",
         lambda y: 1 - y**2),
    _Row("relu",         sp.Piecewise((0, X <= 0), (X, True)),  # kink owned by x <= 0: σ'(0) = 0
                                                               r"\operatorname{relu}",
         None),
    _Row("hard_sigmoid", sp.Piecewise((0, X <= -3), (1, X >= 3), (X / 6 + _HALF, True)),
                                                               r"\operatorname{hardsigmoid}",
         None),
    _Row("identity",     X,                                    r"\operatorname{id}",
         None),
)  # fmt: skip

#: Names of the built-in activations, in table order.
BUILTIN_NAMES: tuple[str, ...] = tuple(row.name for row in _TABLE)

_ALIASES: dict[str, str] = {
    "hardsigmoid": "hard_sigmoid",
    "hard-sigmoid": "hard_sigmoid",
}


def _builtin(row: _Row) -> Activation:
    return Activation(
        name=row.name,
        expr=row.expr,
        derivative=sp.diff(row.expr, X),
        latex_name=row.latex_name,
        output_derivative=row.output_derivative,
        builtin=True,
    )


_BUILTINS: dict[str, Activation] = {row.name: _builtin(row) for row in _TABLE}


# ---------------------------------------------------------------------------------------------
# Safe parser for user expressions
# ---------------------------------------------------------------------------------------------
#: Functions a user expression may call, mapped to SymPy.
ALLOWED_FUNCTIONS: dict[str, Callable[[Expr], Expr]] = {
    "exp": sp.exp,
    "log": sp.log,
    "tanh": sp.tanh,
    "sinh": sp.sinh,
    "cosh": sp.cosh,
    "sin": sp.sin,
    "cos": sp.cos,
    "atan": sp.atan,
    "arctan": sp.atan,
    "sqrt": sp.sqrt,
    "abs": sp.Abs,
    "sigmoid": lambda u: 1 / (1 + sp.exp(-u)),
    "erf": sp.erf,
}


# ---------------------------------------------------------------------------------------------
# Named activations of torch.nn.functional: σ(u, parameters) in SymPy, PyTorch's defaults, and the
# convention at each kink (the Piecewise branch that owns the kink point, checked against torch
# autograd in tests/numeric/test_activations.py).
# ---------------------------------------------------------------------------------------------
def _pw(*pieces: tuple[Expr, Any]) -> Expr:
    return sp.Piecewise(*pieces)


#: SELU's constants as PyTorch writes them (Klambauer et al. 2017).
SELU_ALPHA = sp.Rational("1.6732632423543772848170429916717")
SELU_SCALE = sp.Rational("1.0507009873554804934193349852946")

# fmt: off
#: name -> (σ(u, *parameters), PyTorch's default parameters). Kinks: which side owns them.
NAMED: dict[str, tuple[Callable[..., Expr], tuple[Expr, ...]]] = {
    "sigmoid":      (lambda u: 1 / (1 + sp.exp(-u)),                                      ()),
    "tanh":         (sp.tanh,                                                             ()),
    "relu":         (lambda u: _pw((0, u <= 0), (u, True)),                               ()),  # σ'(0) = 0
    "hard_sigmoid": (lambda u: _pw((0, u <= -3), (1, u >= 3), (u / 6 + sp.S.Half, True)), ()),  # 0 at ±3
    "identity":     (lambda u: u,                                                         ()),
    "leaky_relu":   (lambda u, s: _pw((u, u > 0), (s * u, True)),                         (sp.Rational(1, 100),)),  # σ'(0) = s
    "elu":          (lambda u, a: _pw((u, u > 0), (a * (sp.exp(u) - 1), True)),           (sp.S.One,)),  # σ'(0) = α
    "selu":         (lambda u: SELU_SCALE * _pw((u, u > 0), (SELU_ALPHA * (sp.exp(u) - 1), True)), ()),  # σ'(0) = λα
    "celu":         (lambda u, a: _pw((u, u > 0), (a * (sp.exp(u / a) - 1), True)),       (sp.S.One,)),  # σ'(0) = 1
    "gelu":         (lambda u: u * (1 + sp.erf(u / sp.sqrt(2))) / 2,                      ()),  # approximate='none'
    "silu":         (lambda u: u / (1 + sp.exp(-u)),                                      ()),
    "mish":         (lambda u: u * sp.tanh(sp.log(1 + sp.exp(u))),                       ()),
    "softplus":     (lambda u, b, t: _pw((u, b * u > t), (sp.log(1 + sp.exp(b * u)) / b, True)),
                                                                                          (sp.S.One, sp.Integer(20))),  # linear above βx > threshold
    "softsign":     (lambda u: u / (1 + sp.Abs(u)),                                       ()),
    "hardtanh":     (lambda u, lo, hi: _pw((lo, u <= lo), (hi, u >= hi), (u, True)),      (-sp.S.One, sp.S.One)),  # 0 at the ends
    "logsigmoid":   (lambda u: -sp.log(1 + sp.exp(-u)),                                   ()),
}
# fmt: on

#: Every activation name accepted (with its parameters written after x, as torch orders them).
ACTIVATION_NAMES: tuple[str, ...] = tuple(NAMED)


def _max(a: Expr, b: Expr) -> Expr:
    """max(a, b) as ``torch.maximum``: at a tie the derivative is the mean of both sides'."""
    return _pw((a, a > b), (b, a < b), ((a + b) / 2, True))


def _min(a: Expr, b: Expr) -> Expr:
    """min(a, b) as ``torch.minimum``: at a tie the derivative is the mean of both sides'."""
    return _pw((a, a < b), (b, a > b), ((a + b) / 2, True))


#: Piecewise forms: max(a, b), min(a, b) and where(condition, a, b) (as torch.where: the gradient
#: goes to the branch selected, so the branch that owns a kink is the one whose condition holds).
PIECEWISE_FUNCTIONS: tuple[str, ...] = ("max", "min", "where")

#: Constants a user expression may use.
ALLOWED_CONSTANTS: dict[str, Expr] = {"pi": sp.pi, "e": sp.E}

_MAX_TEXT = 500
_MAX_POWER_BITS = 100_000

_BINARY: dict[type, Callable[[Expr, Expr], Expr]] = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
    ast.Pow: lambda a, b: a**b,
}

_OPERATORS: dict[type, tuple[str, str]] = {  # what was written, how to fix it
    ast.BitXor: ("the operator '^'", "write ** for a power, e.g. x**2"),
    ast.FloorDiv: ("the operator '//'", "write /"),
    ast.Mod: ("the operator '%'", ""),
    ast.MatMult: ("the operator '@'", "write *"),
}

_NODE_NAMES: dict[type, str] = {
    ast.Attribute: "attribute access",
    ast.Lambda: "lambda",
    ast.Subscript: "indexing",
    ast.Compare: "comparison",
    ast.BoolOp: "and/or",
    ast.IfExp: "conditional expression",
    ast.List: "list",
    ast.Tuple: "tuple",
    ast.Dict: "dict",
    ast.Set: "set",
    ast.ListComp: "comprehension",
    ast.GeneratorExp: "generator",
    ast.Starred: "starred argument",
    ast.JoinedStr: "f-string",
    ast.NamedExpr: "assignment expression",
}


def _allowed_text() -> str:
    functions = dict.fromkeys([*ALLOWED_FUNCTIONS, *NAMED, *PIECEWISE_FUNCTIONS])
    return (
        "Allowed: numbers, the variable x, + - * / ** and unary -, the constants "
        f"{', '.join(ALLOWED_CONSTANTS)}, and the functions {', '.join(functions)}."
    )


class _Parser:
    """Walk a Python AST of ``mode="eval"`` and build SymPy, allowing only the whitelist."""

    def __init__(self, text: str) -> None:
        self.text = text

    def fail(self, what: str, node: ast.AST, hint: str = "") -> GradproofError:
        snippet = ast.get_source_segment(self.text, node)
        informative = snippet and snippet != self.text and not isinstance(node, ast.Name)
        where = f" (in {snippet!r})" if informative else ""
        fix = f"; {hint}" if hint else ""
        return GradproofError(
            f"Activation expression {self.text!r}: {what}{where} is not allowed{fix}. "
            f"{_allowed_text()} Example: activation('tanh(3*x)')."
        )

    def parse(self) -> Expr:
        try:
            tree = ast.parse(self.text, mode="eval")
        except SyntaxError as err:
            raise GradproofError(
                f"Activation expression {self.text!r} is not a valid formula ({err.msg}). "
                f"{_allowed_text()} Example: activation('x/(1+abs(x))')."
            ) from None
        return self.visit(tree.body)

    def visit(self, node: ast.AST) -> Expr:
        if isinstance(node, ast.Constant):
            return self.constant(node)
        if isinstance(node, ast.Name):
            return self.name(node)
        if isinstance(node, ast.UnaryOp):
            operand = self.visit(node.operand)
            if isinstance(node.op, ast.USub):
                return -operand
            if isinstance(node.op, ast.UAdd):
                return operand
            raise self.fail(f"the operator {type(node.op).__name__}", node)
        if isinstance(node, ast.BinOp):
            return self.binop(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        kind = _NODE_NAMES.get(type(node), type(node).__name__)
        raise self.fail(kind, node)

    def constant(self, node: ast.Constant) -> Expr:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            kind = "a complex number" if isinstance(value, complex) else f"the literal {value!r}"
            raise self.fail(kind, node)
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.fail(f"the non-finite number {value!r}", node)
            return sp.Rational(repr(value))  # exact decimal: 0.1 -> 1/10
        return sp.Integer(value)

    def name(self, node: ast.Name) -> Expr:
        if node.id == "x":
            return X
        if node.id in ALLOWED_CONSTANTS:
            return ALLOWED_CONSTANTS[node.id]
        if node.id in ALLOWED_FUNCTIONS:
            raise self.fail(f"the bare function name {node.id!r}", node, f"call it: {node.id}(x)")
        raise self.fail(f"the name {node.id!r}", node, "the only variable is x")

    def binop(self, node: ast.BinOp) -> Expr:
        op = _BINARY.get(type(node.op))
        if op is None:
            what, hint = _OPERATORS.get(type(node.op), (f"the operator {type(node.op).__name__}", ""))
            raise self.fail(what, node, hint)
        left, right = self.visit(node.left), self.visit(node.right)
        if isinstance(node.op, ast.Div) and right.is_zero:
            raise self.fail("division by zero", node)
        if isinstance(node.op, ast.Pow) and left.is_Rational and right.is_Rational:
            p, q = left.as_numer_denom()
            bits = abs(right) * max(int(abs(p)).bit_length(), int(abs(q)).bit_length(), 1)
            if bits > _MAX_POWER_BITS:
                raise self.fail("a number this large", node)
        return op(left, right)

    def call(self, node: ast.Call) -> Expr:
        if not isinstance(node.func, ast.Name):
            raise self.fail("calling anything but a named function", node, "write e.g. exp(x)")
        fname = node.func.id
        if node.keywords and fname not in ALLOWED_FUNCTIONS:
            raise self.fail(f"{fname} with keyword arguments", node, "pass parameters by position")
        if fname in NAMED and fname not in ALLOWED_FUNCTIONS or fname in ("softplus",):
            return self.named(fname, node)
        if fname in ("max", "min") and len(node.args) == 2:
            a, b = (self.visit(arg) for arg in node.args)
            return (_max if fname == "max" else _min)(a, b)
        if fname == "where" and len(node.args) == 3:
            condition = self.condition(node.args[0])
            a, b = (self.visit(arg) for arg in node.args[1:])
            return _pw((a, condition), (b, True))
        if fname in PIECEWISE_FUNCTIONS:
            raise self.fail(f"{fname} with {len(node.args)} arguments", node,
                            "write max(a, b), min(a, b) or where(x > 0, a, b)")
        if fname not in ALLOWED_FUNCTIONS:
            raise self.fail(f"the function {fname!r}", node)
        if node.keywords or len(node.args) != 1:
            raise self.fail(
                f"{fname} with other than exactly one positional argument", node, f"write {fname}(x)"
            )
        return ALLOWED_FUNCTIONS[fname](self.visit(node.args[0]))

    def named(self, fname: str, node: ast.Call) -> Expr:
        builder, defaults = NAMED[fname]
        if not 1 <= len(node.args) <= 1 + len(defaults):
            raise self.fail(f"{fname} with {len(node.args)} arguments", node,
                            f"write {fname}(x" + "".join(f", {d}" for d in defaults) + ")")
        u = self.visit(node.args[0])
        given = [self.visit(arg) for arg in node.args[1:]]
        for arg, value in zip(node.args[1:], given):
            if not value.is_number or not value.is_real:
                raise self.fail(f"the parameter {ast.get_source_segment(self.text, arg)!r} of {fname}",
                                arg, "parameters are real numbers")
        params = tuple(given) + tuple(defaults[len(given):])
        if fname in ("elu", "celu") and fname == "celu" and params[0] == 0:
            raise self.fail("celu with alpha = 0", node, "alpha must be nonzero")
        if fname == "softplus" and params[0] == 0:
            raise self.fail("softplus with beta = 0", node, "beta must be nonzero")
        return builder(u, *params)

    def condition(self, node: ast.AST) -> Any:
        ops = {ast.Lt: sp.Lt, ast.LtE: sp.Le, ast.Gt: sp.Gt, ast.GtE: sp.Ge}
        if not (isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in ops):
            raise self.fail("a where() condition other than one comparison", node,
                            "write e.g. where(x > 0, x, 0.1*x)")
        return ops[type(node.ops[0])](self.visit(node.left), self.visit(node.comparators[0]))


def _parse(text: str) -> Expr:
    """Parse a user expression in x into SymPy, validating that it is a real function of x."""
    if not text.strip():
        raise GradproofError(
            "Activation expression is empty. Give a built-in name "
            f"({', '.join(BUILTIN_NAMES)}) or a formula in x such as 'tanh(3*x)'."
        )
    if len(text) > _MAX_TEXT:
        raise GradproofError(
            f"Activation expression has {len(text)} characters; at most {_MAX_TEXT} are accepted."
        )
    try:
        expr = _Parser(text.strip()).parse()
    except RecursionError:
        raise GradproofError(
            f"Activation expression {text[:40]!r}... is nested too deeply; simplify it."
        ) from None
    if expr.has(sp.zoo, sp.oo, -sp.oo, sp.nan):
        raise GradproofError(
            f"Activation expression {text!r} evaluates to {expr}, which is not a finite function "
            "of x (a division by zero or log(0)?). Fix the formula."
        )
    if X not in expr.free_symbols:
        raise GradproofError(
            f"Activation expression {text!r} does not depend on x (it is the constant {expr}). "
            "An activation must be a function of x, e.g. 'tanh(3*x)'."
        )
    reason = _why_not_real(expr)
    if reason:
        raise GradproofError(
            f"Activation expression {text!r} must be defined and real for every real x; {reason} "
            "(sqrt or log of a negative number, a division by zero, or a complex constant). Use "
            "a formula defined on all of R, e.g. sqrt(1+x**2) or log(1+exp(x))."
        )
    return expr


def _why_not_real(expr: Expr) -> str:
    """Empty if expr is real for all real x; otherwise why not."""
    if expr.is_real:
        return ""
    if expr.is_real is False:
        return f"{expr} is not real"
    domain = _real_domain(expr)  # SymPy's assumptions are undecided: ask calculus, then sample
    if domain != sp.S.Reals:
        return f"{expr} is real and continuous only on {domain}"
    if not _real_at_samples(expr):
        return f"{expr} is not real at some sample point"
    return ""


def _real_at_samples(expr: Expr) -> bool:
    """A second opinion when SymPy's assumptions are undecided: real at a few sample points."""
    for point in (-3, -1, 0, sp.Rational(1, 2), 2):
        value = expr.subs(X, point).evalf(20)
        if not value.is_comparable:  # complex, NaN or infinite
            return False
    return True


def _real_domain(expr: Expr) -> Any:
    """Where SymPy finds expr real and continuous (used when ``expr.is_real`` is undecided)."""
    from sympy.calculus.util import continuous_domain

    try:
        return continuous_domain(expr, X, sp.S.Reals)
    except (NotImplementedError, ValueError, TypeError):
        return "a set SymPy cannot determine"


def _named_call(text: str) -> Activation | None:
    """The Activation of ``name(x, p, ...)`` for a name of :data:`NAMED`, keeping the name."""
    tree = ast.parse(text.strip(), mode="eval").body
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id in NAMED):
        return None
    if not (tree.args and isinstance(tree.args[0], ast.Name) and tree.args[0].id == "x"):
        return None
    fname = tree.func.id
    builder, defaults = NAMED[fname]
    given = tuple(_Parser(text).visit(arg) for arg in tree.args[1:])
    params = given + defaults[len(given):]
    if fname in _BUILTINS and params == defaults:
        return _BUILTINS[fname]
    expr = builder(X, *params)
    shown = "" if params == defaults else "".join(f", {p}" for p in params)
    name = fname if not shown else f"{fname}(x{shown})"
    latex = r"\operatorname{" + fname.replace("_", r"\_") + "}"
    return Activation(
        name=name,
        expr=expr,
        derivative=sp.diff(expr, X),
        latex_name=latex,
        output_derivative=None,
        builtin=True,
        call=(fname, params),
    )


def _user_activation(expr: Expr) -> Activation:
    return Activation(
        name=str(expr),
        expr=expr,
        derivative=sp.diff(expr, X),
        latex_name=sp.latex(expr),
        output_derivative=None,
        builtin=False,
    )


# ---------------------------------------------------------------------------------------------
# Public constructor
# ---------------------------------------------------------------------------------------------
def activation(spec: Activation | str) -> Activation:
    r"""Return the :class:`Activation` for a built-in name, an expression in x, or as is.

    Parameters
    ----------
    spec : Activation or str
        An :class:`Activation` (returned unchanged); a built-in name from
        :data:`BUILTIN_NAMES` (case-insensitive; ``"hardsigmoid"`` and ``"hard-sigmoid"`` are
        accepted); or a formula in x using :data:`ALLOWED_FUNCTIONS` and
        :data:`ALLOWED_CONSTANTS`, e.g. ``"tanh(3*x)"``. A formula that is structurally equal to
        a built-in's σ (``"1/(1+exp(-x))"``, ``"x"``) returns that built-in.

    Returns
    -------
    Activation

    Raises
    ------
    GradproofError
        For anything outside the whitelist, a formula not real for all real x, or one that does
        not depend on x.

    Examples
    --------
    >>> activation("Tanh").name
    'tanh'
    >>> activation("hard-sigmoid").name
    'hard_sigmoid'
    >>> activation("x/(1+abs(x))").name
    'x/(Abs(x) + 1)'
    >>> activation("sigmoid(x)") is activation("sigmoid")
    True
    """
    if isinstance(spec, Activation):
        return spec
    if not isinstance(spec, str):
        raise GradproofError(
            f"activation(spec) expects an Activation, a built-in name ({', '.join(BUILTIN_NAMES)}) "
            f"or a formula in x as a str; got {type(spec).__name__} {spec!r}."
        )
    return _activation_from_text(spec.strip())


@functools.lru_cache(maxsize=256)
def _activation_from_text(text: str) -> Activation:
    key = text.lower()
    key = _ALIASES.get(key, key)
    if key in _BUILTINS:
        return _BUILTINS[key]
    if key in NAMED:
        text = f"{key}(x)"
    expr = _parse(text)
    named = _named_call(text)
    if named is not None:
        return named
    for act in _BUILTINS.values():
        if expr == act.expr:
            return act
    return _user_activation(expr)


if TYPE_CHECKING:  # for type checkers and linters; at run time __getattr__ below provides it
    from .gamma import gamma


def __getattr__(name: str) -> object:
    """``gamma``, ``gamma_interval`` and ``gamma_is_exact``, re-exported when first used (PEP 562).

    Their modules build on this one; importing them at the end of this module made a cycle, so a
    program whose first import was ``gradproof.derive.gamma`` or ``gradproof.derive.gamma_interval``
    (or ``from gradproof.derive import gamma_interval``) failed with an ImportError.
    """
    if name == "gamma":
        from .gamma import gamma

        return gamma
    if name in ("gamma_interval", "gamma_is_exact"):
        from .gamma_interval import gamma_interval, gamma_is_exact

        return gamma_interval if name == "gamma_interval" else gamma_is_exact
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
