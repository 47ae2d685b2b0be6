r"""Activation functions σ and their derivative bound γ = sup_x |σ'(x)|.

An :class:`Activation` carries σ as a SymPy expression in the real symbol :data:`X`, its
derivative σ' (taken by ``sympy.diff``), LaTeX names for printing σ(z) and σ'(z), and numeric
versions for numpy (float64 and complex128) and torch.

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
from typing import Any, Callable

import numpy as np
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
ArrayFn = Callable[[Any], np.ndarray]


# ---------------------------------------------------------------------------------------------
# numpy helpers: float64 and complex128 in, same kind out
# ---------------------------------------------------------------------------------------------
def _as_array(z: Any) -> np.ndarray:
    """Convert ``z`` to a float64 or complex128 array (the only two kinds accepted)."""
    arr = np.asarray(z)
    if arr.dtype.kind == "c":
        return arr.astype(np.complex128, copy=False)
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64, copy=False)
    raise GradproofError(
        f"An activation expects a float or complex array; got dtype {arr.dtype}. "
        "Convert the input with np.asarray(z, dtype=float)."
    )


def _nan_like_input(out: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Propagate NaN inputs to NaN outputs (branch tests on NaN are False)."""
    nan = np.isnan(z.real)
    if nan.any():
        out = np.array(out, dtype=np.result_type(out, z), copy=True)
        out[nan] = np.nan
    return out


# ---------------------------------------------------------------------------------------------
# Built-in activations: numpy forward and derivative side by side, then torch
# (the branch of a kink is decided by the real part, so complex-step differentiation with
#  z = x + i·1e-30 sees the linear piece it is on)
# ---------------------------------------------------------------------------------------------
def _np_sigmoid(z: Any) -> np.ndarray:
    """σ(z) = 1/(1 + e^{-z}), evaluated without overflow: e^{-|Re z|} only."""
    z = _as_array(z)
    out = np.empty_like(z)
    pos = z.real >= 0
    neg = ~pos
    with np.errstate(under="ignore"):
        out[pos] = 1.0 / (1.0 + np.exp(-z[pos]))
        ez = np.exp(z[neg])
        out[neg] = ez / (1.0 + ez)
    return out


def _np_sigmoid_prime(z: Any) -> np.ndarray:
    """σ'(z) = σ(z) σ(-z) (= σ(1-σ), without the cancellation in 1 - σ)."""
    z = _as_array(z)
    return _np_sigmoid(z) * _np_sigmoid(-z)


def _np_tanh(z: Any) -> np.ndarray:
    """tanh(z); underflow of the tiny imaginary part at large |Re z| is harmless."""
    z = _as_array(z)
    with np.errstate(under="ignore"):
        return np.tanh(z)


def _np_tanh_prime(z: Any) -> np.ndarray:
    """tanh'(z) = sech²(z) = 4w/(1+w)² with w = e^{-2 s z}, s = sign(Re z): no overflow."""
    z = _as_array(z)
    s = np.where(z.real >= 0, 1.0, -1.0)
    with np.errstate(under="ignore"):
        w = np.exp(-2.0 * s * z)
        return 4.0 * w / (1.0 + w) ** 2


def _np_relu(z: Any) -> np.ndarray:
    """relu(z) = 0 for Re z ≤ 0, z otherwise (the complex value is kept on the linear piece)."""
    z = _as_array(z)
    return np.where(z.real <= 0, 0.0, z).astype(z.dtype)


def _np_relu_prime(z: Any) -> np.ndarray:
    """relu'(z) = 1 for Re z > 0, 0 for Re z ≤ 0 (PyTorch: 0 at the kink)."""
    z = _as_array(z)
    return _nan_like_input(np.where(z.real > 0, 1.0, 0.0).astype(z.dtype), z)


def _np_hard_sigmoid(z: Any) -> np.ndarray:
    """hardsigmoid(z) = 0 (Re z ≤ -3), 1 (Re z ≥ 3), z/6 + 1/2 in between."""
    z = _as_array(z)
    r = z.real
    return np.where(r <= -3, 0.0, np.where(r >= 3, 1.0, z / 6.0 + 0.5)).astype(z.dtype)


def _np_hard_sigmoid_prime(z: Any) -> np.ndarray:
    """hardsigmoid'(z) = 1/6 for -3 < Re z < 3, 0 otherwise (PyTorch: 0 at ±3)."""
    z = _as_array(z)
    inside = (z.real > -3) & (z.real < 3)
    return _nan_like_input(np.where(inside, 1.0 / 6.0, 0.0).astype(z.dtype), z)


def _np_identity(z: Any) -> np.ndarray:
    """id(z) = z."""
    return _as_array(z).copy()


def _np_identity_prime(z: Any) -> np.ndarray:
    """id'(z) = 1."""
    z = _as_array(z)
    return _nan_like_input(np.ones_like(z), z)


def _torch_sigmoid(z: Any) -> Any:
    import torch

    return torch.sigmoid(z)


def _torch_tanh(z: Any) -> Any:
    import torch

    return torch.tanh(z)


def _torch_relu(z: Any) -> Any:
    import torch

    return torch.relu(z)


def _torch_hard_sigmoid(z: Any) -> Any:
    import torch

    return torch.nn.functional.hardsigmoid(z)


def _torch_identity(z: Any) -> Any:
    return z


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
    r"""An elementwise activation σ with its derivative and numeric versions.

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
    numpy : callable
        ``numpy(z) -> array``, z: (...,) float64 or complex128; same shape and kind out.
    numpy_derivative : callable
        ``numpy_derivative(z) -> array``, σ' elementwise, z: (...,).
    torch : callable
        ``torch(z) -> Tensor``, σ on a torch tensor z: (...,) (torch is imported on first call).
    output_derivative : callable or None
        σ' written through the output y = σ(x): sigmoid y(1-y), tanh 1-y²; ``None`` otherwise.
    builtin : bool
        Whether this is one of :data:`BUILTIN_NAMES`.

    Notes
    -----
    Equality and hashing use ``name``, ``expr`` and ``derivative`` only (the callables are
    derived from them).

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
    numpy: ArrayFn = field(compare=False, repr=False)
    numpy_derivative: ArrayFn = field(compare=False, repr=False)
    torch: Callable[[Any], Any] = field(compare=False, repr=False)
    output_derivative: Callable[[Expr], Expr] | None = field(default=None, compare=False)
    builtin: bool = field(default=False, compare=False)

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
        for label in ("numpy", "numpy_derivative", "torch"):
            if not callable(getattr(self, label)):
                raise GradproofError(
                    f"Activation.{label} must be callable; got {getattr(self, label)!r}. "
                    "Use activation(spec) to build an Activation with its numeric functions."
                )

    # -- derived quantities ------------------------------------------------------------------
    @property
    def gamma(self) -> Expr:
        r"""γ = sup_x |σ'(x)| as an exact SymPy number (see :func:`gamma`)."""
        return _gamma_of(self.derivative, self.name)

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
# σ' itself is always sympy.diff(σ); the numpy rule beside it is checked against it in the tests.
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Row:
    name: str
    expr: Expr  # σ(x); σ' = sympy.diff(expr, X)
    latex_name: str
    output_derivative: Callable[[Expr], Expr] | None  # σ' written through y = σ(x)
    numeric: tuple[ArrayFn, ArrayFn, Callable[[Any], Any]]  # numpy σ, numpy σ', torch σ


_HALF = sp.Rational(1, 2)

_TABLE: tuple[_Row, ...] = (
    #    name            σ(x)                                  LaTeX name
    #    σ' through y = σ(x)     numpy σ, numpy σ', torch σ
    _Row("sigmoid",      1 / (1 + sp.exp(-X)),                 r"\sigma",
         lambda y: y * (1 - y),  (_np_sigmoid, _np_sigmoid_prime, _torch_sigmoid)),
    _Row("tanh",         sp.tanh(X),                           r"\tanh",
         lambda y: 1 - y**2,     (_np_tanh, _np_tanh_prime, _torch_tanh)),
    _Row("relu",         sp.Piecewise((0, X <= 0), (X, True)),  # kink owned by x <= 0: σ'(0) = 0
                                                               r"\operatorname{relu}",
         None,                   (_np_relu, _np_relu_prime, _torch_relu)),
    _Row("hard_sigmoid", sp.Piecewise((0, X <= -3), (1, X >= 3), (X / 6 + _HALF, True)),
                                                               r"\operatorname{hardsigmoid}",
         None,                   (_np_hard_sigmoid, _np_hard_sigmoid_prime, _torch_hard_sigmoid)),
    _Row("identity",     X,                                    r"\operatorname{id}",
         None,                   (_np_identity, _np_identity_prime, _torch_identity)),
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
        numpy=row.numeric[0],
        numpy_derivative=row.numeric[1],
        torch=row.numeric[2],
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
    "softplus": lambda u: sp.log(1 + sp.exp(u)),
}

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
    return (
        "Allowed: numbers, the variable x, + - * / ** and unary -, the constants "
        f"{', '.join(ALLOWED_CONSTANTS)}, and the functions {', '.join(ALLOWED_FUNCTIONS)}."
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
        if fname not in ALLOWED_FUNCTIONS:
            raise self.fail(f"the function {fname!r}", node)
        if node.keywords or len(node.args) != 1:
            raise self.fail(
                f"{fname} with other than exactly one positional argument", node, f"write {fname}(x)"
            )
        return ALLOWED_FUNCTIONS[fname](self.visit(node.args[0]))


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


# ---------------------------------------------------------------------------------------------
# numpy / torch versions of user expressions (lambdify of SymPy-produced expressions only)
# ---------------------------------------------------------------------------------------------
_GP_ABS = sp.Function("gp_abs")
_GP_SIGN = sp.Function("gp_sign")
_GP_ERF = sp.Function("gp_erf")


def _is_log_of_one_plus(node: Expr) -> bool:
    return isinstance(node, sp.log) and node.args[0].is_Add and sp.S.One in node.args[0].args


def _for_printing(expr: Expr) -> Expr:
    """Prepare an expression for lambdify.

    Abs, sign and erf become named functions whose numeric versions we supply, and log(1 + u)
    becomes log1p(u), accurate when u is tiny (softplus at x = -40 is 4.2e-18, not 0).
    """
    from sympy.codegen.cfunctions import log1p

    expr = expr.replace(_is_log_of_one_plus, lambda node: log1p(node.args[0] - 1))
    return expr.replace(sp.Abs, _GP_ABS).replace(sp.sign, _GP_SIGN).replace(sp.erf, _GP_ERF)


def _np_abs_real_branch(z: np.ndarray) -> np.ndarray:
    """|z| with the sign decided by Re z, so complex-step sees the linear piece."""
    return np.where(z.real < 0, -z, z)


def _np_sign_real(z: np.ndarray) -> np.ndarray:
    return np.sign(np.real(z))


_math_erf = np.vectorize(math.erf, otypes=[np.float64])


def _np_erf(z: np.ndarray) -> np.ndarray:
    """erf for float64; for complex z = a + ib with tiny b, erf(a) + i b erf'(a) (first order)."""
    z = np.asarray(z)
    if z.dtype.kind != "c":
        return _math_erf(z)
    a = z.real
    return _math_erf(a) + 1j * z.imag * (2.0 / math.sqrt(math.pi)) * np.exp(-(a**2))


def _mp_abs_real_branch(z: Any) -> Any:
    import mpmath

    return -z if mpmath.re(z) < 0 else z


def _mp_sign_real(z: Any) -> Any:
    import mpmath

    return mpmath.sign(mpmath.re(z))


def _mp_erf(z: Any) -> Any:
    import mpmath

    return mpmath.erf(z)


@dataclass(frozen=True)
class _UserNumpy:
    """numpy version of a SymPy expression in X (for a user activation or its derivative).

    Evaluated with ``lambdify``; elements where float64 overflows (e.g. e^x at x > 709) are
    recomputed with mpmath, so no overflow warning escapes and finite answers stay finite.
    """

    expr: Expr

    def __call__(self, z: Any) -> np.ndarray:
        z = _as_array(z)
        fn, _ = _user_numpy_functions(self.expr)
        with np.errstate(all="ignore"):
            raw = np.asarray(fn(z))
            out = np.array(np.broadcast_to(raw, z.shape), dtype=np.result_type(raw, z))
        bad = ~np.isfinite(out) & np.isfinite(z)
        if bad.any():
            out[bad] = self._mpmath(z[bad])
        return out

    def _mpmath(self, values: np.ndarray) -> np.ndarray:
        import mpmath

        _, mfn = _user_numpy_functions(self.expr)
        result = np.empty(values.shape, dtype=np.complex128 if values.dtype.kind == "c" else float)
        with mpmath.workdps(40):
            for k, v in enumerate(values):
                arg = mpmath.mpc(v.real, v.imag) if values.dtype.kind == "c" else mpmath.mpf(v)
                val = mfn(arg)
                result[k] = complex(val) if values.dtype.kind == "c" else float(mpmath.re(val))
        return result


def _np_lambdify(expr: Expr) -> Callable:
    """numpy function of a SymPy expression in X (Abs, sign, erf by our numpy versions)."""
    return sp.lambdify(
        X,
        _for_printing(expr),
        modules=[
            {"gp_abs": _np_abs_real_branch, "gp_sign": _np_sign_real, "gp_erf": _np_erf},
            "numpy",
        ],
    )


@functools.lru_cache(maxsize=256)
def _user_numpy_functions(expr: Expr) -> tuple[Callable, Callable]:
    printable = _for_printing(expr)
    np_fn = _np_lambdify(expr)
    mp_fn = sp.lambdify(
        X,
        printable,
        modules=[
            {"gp_abs": _mp_abs_real_branch, "gp_sign": _mp_sign_real, "gp_erf": _mp_erf},
            "mpmath",
        ],
    )
    return np_fn, mp_fn


@dataclass(frozen=True)
class _UserTorch:
    """torch version of a SymPy expression in X; torch is imported on the first call."""

    expr: Expr

    def __call__(self, z: Any) -> Any:
        return _user_torch_function(self.expr)(z)


@functools.lru_cache(maxsize=256)
def _user_torch_function(expr: Expr) -> Callable:
    import torch

    def lift(fn: Callable) -> Callable:
        def apply(a: Any) -> Any:
            return fn(a if isinstance(a, torch.Tensor) else torch.tensor(a, dtype=torch.float64))

        return apply

    names = ("exp", "log", "log1p", "tanh", "sinh", "cosh", "sin", "cos", "atan", "sqrt")
    namespace: dict[str, Any] = {name: lift(getattr(torch, name)) for name in names}
    namespace.update(
        gp_abs=lift(torch.abs), gp_sign=lift(torch.sign), gp_erf=lift(torch.erf), pi=math.pi, E=math.e, e=math.e
    )
    return sp.lambdify(X, _for_printing(expr), modules=[namespace])


def _user_activation(expr: Expr) -> Activation:
    derivative = sp.diff(expr, X)
    return Activation(
        name=str(expr),
        expr=expr,
        derivative=derivative,
        latex_name=sp.latex(expr),
        output_derivative=None,
        numpy=_UserNumpy(expr),
        numpy_derivative=_UserNumpy(derivative),
        torch=_UserTorch(expr),
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
    expr = _parse(text)
    for act in _BUILTINS.values():
        if expr == act.expr:
            return act
    return _user_activation(expr)


# ---------------------------------------------------------------------------------------------
# γ = sup |σ'| by calculus
# ---------------------------------------------------------------------------------------------
def gamma(spec: Activation | str) -> Expr:
    r"""γ = sup_x |σ'(x)|, derived exactly (docs/math.md §1).

    .. math::

        \gamma = \max\Big( \{|\sigma'(c)| : \sigma''(c) = 0\}
        \cup \{|\sigma'(k)|, |\sigma'(k^\pm)| : k \text{ a kink}\}
        \cup \{|\lim_{x\to\pm\infty} \sigma'(x)|\} \Big)

    Parameters
    ----------
    spec : Activation or str
        Anything :func:`activation` accepts.

    Returns
    -------
    sympy.Expr
        An exact SymPy number (Rational, or e.g. ``2/sqrt(pi)``).

    Raises
    ------
    GradproofError
        If σ' is unbounded (then no finite γ exists, e.g. ``"x**2"``, ``"exp(x)"``), or if the
        supremum cannot be expressed exactly.

    Examples
    --------
    >>> [gamma(name) for name in BUILTIN_NAMES]
    [1/4, 1, 1, 1/6, 1]
    >>> gamma("erf(x)")
    2/sqrt(pi)
    """
    act = activation(spec)
    return _gamma_of(act.derivative, act.name)


_NONSMOOTH = (sp.Piecewise, sp.Abs, sp.sign)
_TRIG = (sp.sin, sp.cos, sp.tan, sp.cot, sp.sec, sp.csc)
#: Where σ'' is searched numerically when SymPy cannot solve σ'' = 0: fine steps on [-50, 50],
#: then steps growing like |x| out to ±1e4.
_GRID = np.unique(
    np.concatenate(
        [
            np.linspace(-50.0, 50.0, 20001),
            np.sinh(np.linspace(-np.arcsinh(1e4), np.arcsinh(1e4), 8001)),
        ]
    )
)


@dataclass(frozen=True)
class _Root:
    """A root of σ'' found numerically: bracket [left, right] and |σ'| there (float)."""

    size: float
    left: float
    right: float
    g: Expr
    gp: Expr


@functools.lru_cache(maxsize=256)
def _gamma_of(derivative: Expr, name: str) -> Expr:
    """sup |σ'| for σ' = ``derivative``; cached on the (immutable) SymPy expression."""
    d = derivative
    if d.has(sp.Max, sp.Min):
        d = d.rewrite(sp.Piecewise)
    unsupported = [f for f in (sp.Heaviside, sp.DiracDelta, sp.floor, sp.ceiling) if d.has(f)]
    if unsupported:
        raise GradproofError(
            f"γ for {name!r}: σ' = {d} contains {unsupported[0].__name__}, which gamma() cannot "
            "analyse. Write σ with Piecewise or abs instead."
        )
    lo, hi = sp.S.NegativeInfinity, sp.S.Infinity
    period = _period(d)
    if period is not None:  # sup over R = max over one closed period
        lo, hi = sp.S.Zero, period
    points = [lo, *_kinks(d, lo, hi, name), hi]
    exact: list[tuple[Expr, str]] = []
    tails: list[tuple[Expr, str]] = []
    roots: list[_Root] = []
    for k in points:
        if k.is_finite:  # a kink, or an end of the closed period: σ' is evaluated there
            value = d.subs(X, k)
            if value.is_finite:
                exact.append((value, f"σ'({k})"))
    for a, b in zip(points[:-1], points[1:]):
        _piece_candidates(d, a, b, name, exact, tails, roots)
    return _supremum(d, name, exact, tails, roots)


def _period(d: Expr) -> Expr | None:
    """The period of σ' if SymPy finds one (only tried for trigonometric σ')."""
    if not d.has(*_TRIG) or d.has(*_NONSMOOTH):
        return None
    others = [f for f in d.atoms(sp.Function) if X in f.free_symbols and not isinstance(f, _TRIG)]
    if others:  # e.g. tanh(x) + cos(x): not periodic, and periodicity() is slow to say so
        return None
    try:
        period = sp.periodicity(d, X)
    except Exception:  # noqa: BLE001 - periodicity raises on forms it does not handle
        return None
    if period is not None and period.is_positive and period.is_finite:
        return period
    return None


def _kinks(d: Expr, lo: Expr, hi: Expr, name: str) -> list[Expr]:
    """Sorted points in (lo, hi) where σ' may fail to be smooth.

    These are the boundaries of Piecewise conditions and the zeros of the arguments of ``Abs``
    and ``sign``.
    """
    arguments: list[Expr] = []
    for node in sp.preorder_traversal(d):
        if isinstance(node, sp.Piecewise):
            for _, cond in node.args:
                for rel in cond.atoms(sp.core.relational.Relational):
                    arguments.append(rel.lhs - rel.rhs)
        elif isinstance(node, (sp.Abs, sp.sign)):
            arguments.append(node.args[0])
    found: set[Expr] = set()
    for u in arguments:
        if X not in u.free_symbols:
            continue
        zeros = sp.solveset(u, X, sp.Interval.open(lo, hi))
        if not isinstance(zeros, sp.FiniteSet) and zeros is not sp.S.EmptySet:
            raise GradproofError(
                f"γ for {name!r}: cannot locate the points where σ' is not smooth (zeros of {u} "
                f"are {zeros}). Use a formula whose kinks are finitely many explicit points."
            )
        found.update(zeros)
    return sorted(found, key=lambda k: float(k.evalf(30)))


def _sample(a: Expr, b: Expr) -> Expr:
    """A point strictly inside (a, b)."""
    if a.is_infinite and b.is_infinite:
        return sp.S.Zero
    if a.is_infinite:
        return b - 1
    if b.is_infinite:
        return a + 1
    return (a + b) / 2


def _sign_at(u: Expr, s: Expr) -> int:
    value = u.subs(X, s)
    if value.is_positive:
        return 1
    if value.is_negative:
        return -1
    number = value.evalf(50)
    if number.is_comparable and number != 0:
        return 1 if number > 0 else -1
    raise GradproofError(f"internal: cannot decide the sign of {u} at x = {s}.")


def _specialize(d: Expr, s: Expr) -> Expr:
    """The smooth expression that equals σ' on the open piece containing s."""

    def resolve(node: Expr) -> Expr:
        if isinstance(node, sp.Piecewise):
            for piece, cond in node.args:
                if bool(cond.subs(X, s)):
                    return piece
            return sp.nan
        if isinstance(node, sp.Abs):
            return _sign_at(node.args[0], s) * node.args[0]
        return sp.Integer(_sign_at(node.args[0], s))  # sign

    for _ in range(50):  # sign(-x) re-canonicalises to -sign(x) after a pass: repeat
        if not d.has(*_NONSMOOTH):
            return d
        d = d.replace(lambda node: isinstance(node, _NONSMOOTH), resolve)
    raise GradproofError(f"internal: cannot resolve the pieces of {d} at x = {s}.")


def _one_sided(g: Expr, point: Expr, direction: str) -> Expr:
    """lim g(x) as x → point from one side; g is smooth on the open piece.

    At ±∞ SymPy's extended arithmetic is tried first (tanh(∞) = 1, e^{-∞} = 0); any indeterminate
    form (∞ - ∞, 0·∞, ∞/∞) gives NaN there, and then ``sympy.limit`` (Gruntz) decides.
    """
    value = g.subs(X, point)
    if not isinstance(value, sp.AccumBounds) and value.is_finite and not value.has(sp.nan):
        return value
    if point.is_finite:
        return sp.limit(g, X, point, direction)
    return sp.limit(g, X, point)


def _piece_candidates(
    d: Expr,
    a: Expr,
    b: Expr,
    name: str,
    exact: list[tuple[Expr, str]],
    tails: list[tuple[Expr, str]],
    roots: list[_Root],
) -> None:
    """Candidates for sup |σ'| on the open piece (a, b) where σ' is smooth."""
    s = _sample(a, b)
    g = _specialize(d, s)
    if g.has(sp.nan):
        raise GradproofError(f"γ for {name!r}: σ' is undefined on ({a}, {b}).")
    gp = sp.diff(g, X)
    if gp.is_zero:  # constant piece
        exact.append((g, f"σ' on ({a}, {b})"))
        return
    lo, hi, open_ends = a, b, True
    if (a.is_infinite or b.is_infinite) and g.has(*_TRIG):
        p = _period(g)
        if p is not None:  # a ray holds a whole period: take one closed period from s
            lo, hi, open_ends = s, s + p, False
            exact.extend([(g.subs(X, lo), f"σ'({lo})"), (g.subs(X, hi), f"σ'({hi})")])
    if open_ends:
        for point, direction in ((a, "+"), (b, "-")):
            where = f"lim σ'(x) as x → {point}{direction if point.is_finite else ''}"
            value = _one_sided(g, point, direction)
            (tails if isinstance(value, sp.AccumBounds) else exact).append((value, where))
    interval = sp.Interval.open(lo, hi) if open_ends else sp.Interval(lo, hi)
    try:
        solutions = sp.solveset(sp.factor(gp), X, interval)
    except (NotImplementedError, ValueError, TypeError):
        solutions = None
    if solutions is sp.S.EmptySet:
        return
    if isinstance(solutions, sp.FiniteSet) and all(r.is_real for r in solutions):
        exact.extend((g.subs(X, r), f"σ'({r}) with σ''({r}) = 0") for r in solutions)
        return
    roots.extend(_numeric_roots(g, gp, lo, hi))


def _numeric_roots(g: Expr, gp: Expr, lo: Expr, hi: Expr) -> list[_Root]:
    """Sign changes of σ'' on :data:`_GRID` ∩ (lo, hi), bisected in float64 to a bracket."""
    import mpmath

    flo = float(lo) if lo.is_finite else -np.inf
    fhi = float(hi) if hi.is_finite else np.inf
    grid = _GRID[(_GRID > flo) & (_GRID < fhi)]
    if lo.is_finite and hi.is_finite:
        grid = np.union1d(grid, np.linspace(flo, fhi, 4001))
    f = _np_lambdify(gp)

    def evaluate(points: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.broadcast_to(np.asarray(f(points), dtype=float), points.shape)

    values = evaluate(grid)
    keep = np.isfinite(values) & (values != 0)  # exact zeros are mostly underflow
    xs, signs = grid[keep], np.sign(values[keep])
    change = np.flatnonzero(signs[:-1] != signs[1:])
    left, right, sign_left = xs[change], xs[change + 1], signs[change]
    for _ in range(80):
        mid = 0.5 * (left + right)
        sign_mid = np.sign(evaluate(mid))
        same = sign_mid == sign_left
        left = np.where(same, mid, left)
        right = np.where(same | np.isnan(sign_mid), right, mid)
    g_mp = sp.lambdify(X, g, "mpmath")
    found = []
    with mpmath.workdps(30):
        for a, b in zip(left, right):
            size = float(abs(g_mp(mpmath.mpf(0.5 * (a + b)))))
            found.append(_Root(size=size, left=float(a), right=float(b), g=g, gp=gp))
    return found


def _exact_root(root: _Root) -> Expr | None:
    """Refine a numeric root to 45 digits; return its closed form if σ'' vanishes there exactly."""
    import mpmath

    gp_mp = sp.lambdify(X, root.gp, "mpmath")
    with mpmath.workdps(50):
        a, b = mpmath.mpf(root.left), mpmath.mpf(root.right)
        fa = gp_mp(a)
        for _ in range(200):
            m = (a + b) / 2
            fm = gp_mp(m)
            if fm == 0 or b - a < mpmath.mpf(10) ** -47 * max(1, abs(m)):
                a = b = m
                break
            if (fm > 0) == (fa > 0):
                a, fa = m, fm
            else:
                b = m
        text = mpmath.nstr((a + b) / 2, 45)
    candidate = sp.nsimplify(sp.Float(text, 45), [sp.pi, sp.E], tolerance=1e-30)
    residual = root.gp.subs(X, candidate)
    if residual == 0:
        return candidate
    if abs(residual.evalf(60)) > 1e-45:  # cheap disproof before the costly simplify
        return None
    return candidate if sp.simplify(residual) == 0 else None


def _unbounded(name: str, where: str, value: Expr) -> GradproofError:
    return GradproofError(
        f"σ' of {name!r} is unbounded ({where} is {value}), so no finite γ = sup|σ'| exists and "
        "the Pascanu bound does not apply. Use an activation with a bounded derivative, e.g. "
        "tanh, sigmoid or relu."
    )


def _size(value: Expr, name: str, where: str) -> float:
    """|value| as a float, after checking that value is a finite real number."""
    if value.has(sp.nan):
        raise GradproofError(f"γ for {name!r}: σ' has no value or limit at {where}.")
    if value.is_infinite or value.has(sp.oo, -sp.oo, sp.zoo):
        raise _unbounded(name, where, value)
    number = sp.Abs(value).evalf(30)
    if not number.is_comparable:
        raise GradproofError(f"γ for {name!r}: cannot evaluate {value} ({where}) to a number.")
    return float(number)


def _supremum(
    d: Expr,
    name: str,
    exact: list[tuple[Expr, str]],
    tails: list[tuple[Expr, str]],
    roots: list[_Root],
) -> Expr:
    """The largest |candidate|, exact; numeric roots only matter if they could beat it."""
    best: Expr | None = None
    best_size = -math.inf

    def offer(value: Expr, where: str) -> None:
        nonlocal best, best_size
        size = _size(value, name, where)
        if size > best_size * (1 + 1e-13):
            best, best_size = value, size

    for value, where in exact:
        offer(value, where)
    for bounds, where in tails:  # oscillating limits: bounds on the tail, never a value
        for end in (bounds.min, bounds.max):
            if end.is_infinite:
                raise _unbounded(name, where, bounds)
    for root in sorted(roots, key=lambda r: -r.size):
        if root.size <= best_size * (1 + 1e-9):
            break  # this and every later root is no larger than a proven candidate
        closed_form = _exact_root(root)
        if closed_form is None:
            raise GradproofError(
                f"γ for {name!r}: sup|σ'| ≈ {root.size:.15g} is attained near x ≈ "
                f"{root.left:.15g}, a root of σ'' with no closed form SymPy can verify, so γ "
                "cannot be given exactly."
            )
        offer(root.g.subs(X, closed_form), f"σ'({closed_form}) with σ''({closed_form}) = 0")
    for bounds, where in tails:
        tail = max(_size(bounds.min, name, where), _size(bounds.max, name, where))
        if tail > best_size * (1 + 1e-12):
            raise GradproofError(
                f"γ for {name!r}: |σ'| is only bounded by {tail:.15g} ({where} oscillates within "
                f"{bounds}), above every value attained ({best_size:.15g}); the supremum cannot "
                "be given exactly."
            )
    if best is None:
        raise GradproofError(f"γ for {name!r}: no candidate values found for σ' = {d}.")
    result = sp.simplify(sp.Abs(best))
    _check_on_grid(d, name, result)
    return result


def _check_on_grid(d: Expr, name: str, result: Expr) -> None:
    """Safety net: |σ'| on a dense grid may not exceed the derived γ."""
    f = _np_lambdify(d)
    with np.errstate(all="ignore"):
        values = np.abs(np.broadcast_to(np.asarray(f(_GRID), dtype=float), _GRID.shape))
    finite = values[np.isfinite(values)]
    if finite.size and finite.max() > float(result) * (1 + 1e-9) + 1e-12:
        raise GradproofError(
            f"internal: derived γ = {result} for {name!r}, but |σ'| reaches {finite.max():.15g} on "
            "a numeric grid. Please report this activation."
        )
