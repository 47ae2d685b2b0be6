"""Tests of derive.activations: σ, σ', kink conventions, the safe parser and γ = sup|σ'|.

Expected values come from docs/math.md §1 (γ of the built-ins and of tanh(3x)) or from the calculus
written next to each row; numeric references are PyTorch autograd (float64) and mpmath.
"""

from __future__ import annotations

import builtins
import subprocess
import sys
import dataclasses
import doctest
import math

import mpmath

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import gradproof.derive.activations as activations_module
from gradproof.derive.activations import (
    BUILTIN_NAMES,
    X,
    Activation,
    activation,
    gamma,
    gamma_interval,
    gamma_is_exact,
)
from gradproof.derive.errors import GradproofError
from gradproof.numeric.activations import numpy_pair


@pytest.fixture(autouse=True)
def _float64_torch():
    """float64 torch tensors inside this module's tests only (the default is process-wide)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


# ---------------------------------------------------------------------------------------------
# Reference table: spec, exact γ by hand, and the same σ written again in torch (independent of
# the code under test). γ sources: docs/math.md §1 for the built-ins and tanh(3x); calculus otherwise.
# ---------------------------------------------------------------------------------------------
F = torch.nn.functional


def _hard_sigmoid(t: torch.Tensor) -> torch.Tensor:
    """nn.Hardsigmoid written out: x/6 + 1/2 strictly inside (-3, 3), 0 below, 1 above.

    Used instead of F.hardsigmoid as the float64 reference because PyTorch's hardsigmoid backward
    multiplies by the float32 constant 1/6 (0.16666667163...), 5e-9 off in float64; see
    test_torch_hardsigmoid_backward_uses_float32_slope.
    """
    inside = (t > -3) & (t < 3)
    return torch.where(inside, t / 6 + 0.5, (t >= 3).to(t.dtype))

# fmt: off
CASES = [
    # spec               γ expected                       torch σ, written by hand          where γ comes from
    ("sigmoid",          sp.Rational(1, 4),               torch.sigmoid,                    "docs/math.md §1: σ' = σ(1-σ) ≤ 1/4, at 0"),
    ("tanh",             sp.Integer(1),                   torch.tanh,                       "docs/math.md §1: 1 - tanh² ≤ 1, at 0"),
    ("relu",             sp.Integer(1),                   torch.relu,                       "docs/math.md §1: slope 1 for x > 0"),
    ("hard_sigmoid",     sp.Rational(1, 6),               lambda t: _hard_sigmoid(t),       "docs/math.md §1: slope 1/6 on (-3, 3)"),
    ("identity",         sp.Integer(1),                   lambda t: t,                      "docs/math.md §1: slope 1"),
    ("tanh(3*x)",        sp.Integer(3),                   lambda t: torch.tanh(3 * t),      "docs/math.md §1: 3(1 - tanh²(3x)) ≤ 3"),
    ("x/(1+abs(x))",     sp.Integer(1),                   lambda t: t / (1 + t.abs()),      "softsign: 1/(1+|x|)² ≤ 1, at 0"),
    ("2*sigmoid(x)-1",   sp.Rational(1, 2),               lambda t: 2 * torch.sigmoid(t) - 1, "2 σ(1-σ) ≤ 1/2"),
    ("atan(x)",          sp.Integer(1),                   torch.atan,                       "1/(1+x²) ≤ 1"),
    ("sin(x)",           sp.Integer(1),                   torch.sin,                        "|cos| ≤ 1"),
    ("softplus(x)",      sp.Integer(1),                   F.softplus,                       "σ(x) → 1 as x → ∞, never attained"),
    ("erf(x)",           2 / sp.sqrt(sp.pi),              torch.erf,                        "(2/√π) e^{-x²}, at 0"),
    ("exp(-x**2)",       sp.sqrt(2) * sp.exp(-sp.Rational(1, 2)), lambda t: torch.exp(-t**2), "|2x e^{-x²}| peaks at x = 1/√2"),
    ("tanh(x)**2",       4 * sp.sqrt(3) / 9,              lambda t: torch.tanh(t) ** 2,     "2 t (1-t²), t = tanh x, peaks at t² = 1/3"),
]
# fmt: on
SPECS = [case[0] for case in CASES]
EXPECTED = {case[0]: case[1] for case in CASES}
TORCH_SIGMA = {case[0]: case[2] for case in CASES}
KINKS = np.array([-3.0, 0.0, 3.0])  # relu's and hard_sigmoid's kinks, tested for every case


def _case_id(spec: str) -> str:
    return spec.replace("*", "·")


def torch_derivative(fn, x: np.ndarray) -> np.ndarray:
    """σ'(x) by PyTorch autograd in float64, x: (N,)."""
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(fn(t).sum(), t)
    return grad.numpy()

# ---------------------------------------------------------------------------------------------
# γ: exact values
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", SPECS, ids=_case_id)
def test_gamma_exact(spec: str) -> None:
    g = gamma(spec)
    assert isinstance(g, sp.Expr) and g.is_number
    assert sp.simplify(g - EXPECTED[spec]) == 0, (spec, g)
    assert activation(spec).gamma == g


@pytest.mark.parametrize("name", BUILTIN_NAMES)
def test_gamma_of_builtins_is_rational(name: str) -> None:
    # docs/math.md §1: 1/4, 1, 1, 1/6, 1 — exact rationals, not floats.
    assert gamma(name).is_Rational


def test_gamma_of_floats_in_text_is_exact() -> None:
    # 0.5*x is parsed as x/2 exactly, so γ = 1/2 as a Rational, not Float 0.5.
    assert gamma("0.5*x") == sp.Rational(1, 2)
    assert gamma("0.5*x").is_Rational


def test_gamma_numeric_fallback_finds_closed_form() -> None:
    # σ' = sech²x + cos(x)/10; σ'' = 0 has no closed form in general (SymPy returns a
    # ConditionSet), but the maximum is at x = 0: 1 + 1/10. The numeric search must find the
    # root 0, verify it exactly, and ignore the roots near 2πk where |σ'| ≈ 1/10.
    assert gamma("tanh(x)+sin(x)/10") == sp.Rational(11, 10)


@pytest.mark.slow
def test_gamma_without_closed_form_is_the_certified_upper_bound() -> None:
    # σ' = sech²(x-1) + cos(x)/10 peaks at a transcendental root of σ'' (x ≈ 0.959): there is no
    # exact value, so gamma returns the certified upper bound hi of gamma_interval and says so.
    spec = "tanh(x-1)+sin(x)/10"
    lo, hi = gamma_interval(spec)
    assert gamma(spec) == hi and hi.is_Rational and not gamma_is_exact(spec)
    f = lambda t: 1 - mpmath.tanh(t - 1) ** 2 + mpmath.cos(t) / 10  # noqa: E731
    with mpmath.workdps(50):
        peak = mpmath.findroot(lambda t: mpmath.diff(f, t), 0.96)
        true = f(peak)
    assert sp.Rational(lo) <= sp.Float(true, 50) <= sp.Rational(hi)
    assert hi - lo <= sp.Rational(1, 10**12) * hi


@pytest.mark.parametrize("spec", SPECS, ids=_case_id)
def test_gamma_against_dense_grid(spec: str) -> None:
    """Independent numeric evidence: max |σ'| on a grid of step 1e-4 over [-20, 20].

    σ' is PyTorch autograd of the hand-written torch σ of the table. The grid max may not exceed
    γ (1e-12 for rounding) and must come within 1e-6 of it: every supremum in the table is
    attained at 0, at 1/√2 or at a point of the grid (deficit ≤ ½ max|σ'''| (5e-5)² < 1e-8), or
    approached as x → ∞ (softplus: 1 - σ'(20) ≈ 2e-9).
    """
    x = np.linspace(-20.0, 20.0, 400_001)
    grid_max = np.abs(torch_derivative(TORCH_SIGMA[spec], x)).max()
    g = float(gamma(spec))
    assert grid_max <= g + 1e-12
    assert grid_max >= g - 1e-6


# ---------------------------------------------------------------------------------------------
# σ and σ': symbolic derivative, numpy rule, torch autograd, kink conventions
# ---------------------------------------------------------------------------------------------
def _grid() -> np.ndarray:
    return np.union1d(np.linspace(-10.0, 10.0, 2001), KINKS)


@pytest.mark.parametrize("spec", SPECS, ids=_case_id)
def test_sympy_derivative_matches_torch_autograd(spec: str) -> None:
    act = activation(spec)
    x = _grid()
    assert sp.simplify(act.derivative - sp.diff(act.expr, X)) == 0
    with np.errstate(all="raise"):
        symbolic = np.broadcast_to(sp.lambdify(X, act.derivative, "numpy")(x), x.shape)
    np.testing.assert_allclose(symbolic, torch_derivative(TORCH_SIGMA[spec], x), rtol=0, atol=1e-12)




def test_output_derivatives() -> None:
    # docs/math.md §3: σ' = σ(1-σ) and tanh' = 1 - tanh², written through the output y.
    for name in ("sigmoid", "tanh"):
        act = activation(name)
        assert sp.simplify(act.output_derivative(act.expr) - act.derivative) == 0
    for name in ("relu", "hard_sigmoid", "identity"):
        assert activation(name).output_derivative is None
    assert activation("tanh(3*x)").output_derivative is None


# ---------------------------------------------------------------------------------------------
# Lookup, names, printing, immutability
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "name"),
    [
        ("Sigmoid", "sigmoid"),
        ("  TANH ", "tanh"),
        ("hardsigmoid", "hard_sigmoid"),
        ("hard-sigmoid", "hard_sigmoid"),
        ("Hard_Sigmoid", "hard_sigmoid"),
        ("1/(1+exp(-x))", "sigmoid"),  # same σ as a built-in: the stable built-in is returned
        ("sigmoid(x)", "sigmoid"),
        ("x", "identity"),
        ("tanh(3 * x)", "tanh(3*x)"),  # user names are str() of the SymPy expression
        ("x/(1+abs(x))", "x/(Abs(x) + 1)"),
    ],
)
def test_lookup(spec: str, name: str) -> None:
    assert activation(spec).name == name


def test_activation_passes_through_and_is_frozen() -> None:
    act = activation("relu")
    assert activation(act) is act
    assert tuple(BUILTIN_NAMES) == ("sigmoid", "tanh", "relu", "hard_sigmoid", "identity")
    with pytest.raises(dataclasses.FrozenInstanceError):
        act.name = "other"  # type: ignore[misc]
    assert activation("tanh(3*x)") == activation("tanh(3 * x)")
    assert hash(activation("tanh(3*x)")) == hash(activation("tanh(3 * x)"))


def test_activation_validates_direct_construction() -> None:
    y = sp.Symbol("y")
    base = activation("tanh")
    with pytest.raises(GradproofError, match="depend on X"):
        dataclasses.replace(base, expr=sp.tanh(y))


def test_latex_of_builtins() -> None:
    assert activation("sigmoid").latex_of("z") == r"\sigma\left(z\right)"
    assert activation("sigmoid").latex_prime_of("z") == r"\sigma'\left(z\right)"
    assert activation("tanh").latex_prime_of("z") == r"\tanh'\left(z\right)"
    assert activation("relu").latex_of("z") == r"\operatorname{relu}\left(z\right)"
    assert activation("hard_sigmoid").latex_name == r"\operatorname{hardsigmoid}"
    assert activation("identity").latex_name == r"\operatorname{id}"
    assert sp.latex(activation("sigmoid")) == r"\sigma\left(x\right)"  # printer hook
    assert activation("sigmoid")._repr_latex_().startswith("$")


def test_latex_of_user_expression_is_printed_by_sympy() -> None:
    act = activation("tanh(3*x)")
    z = sp.Symbol("z")
    assert act.latex_of("z") == sp.latex(sp.tanh(3 * z))
    assert act.latex_prime_of("z") == sp.latex(sp.diff(sp.tanh(3 * z), z))
    a, b = sp.symbols("a b")
    # a compound argument keeps its parentheses: tanh(3 (a + b)), not tanh(3 a + b)
    assert act.latex_of("a + b") == sp.latex(sp.tanh(3 * sp.Symbol(r"\left(a + b\right)")))
    assert act.latex_name == sp.latex(sp.tanh(3 * X))


def test_module_doctests() -> None:
    result = doctest.testmod(activations_module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 5
    assert result.failed == 0


# ---------------------------------------------------------------------------------------------
# Bad input: one table, readable ids, one exception type with a helpful message
# ---------------------------------------------------------------------------------------------
# fmt: off
BAD = [
    # id                    spec                          message must contain          lists allowed names
    ("second-variable",     "x*y",                        "the name 'y'",               True),
    ("dunder-import",       "__import__('os')",           "the function '__import__'",  True),
    ("os-system",           "__import__('os').system('true')", "calling anything but",  True),
    ("attribute",           "x.real",                     "attribute access",           True),
    ("lambda",              "lambda: 1",                  "lambda",                     True),
    ("subscript",           "x[0]",                       "indexing",                   True),
    ("comparison",          "x > 0",                      "comparison",                 True),
    ("empty",               "",                           "empty",                      False),
    ("blank",               "   ",                        "empty",                      False),
    ("syntax",              "tanh(3*x",                   "not a valid formula",        True),
    ("unknown-function",    "foo(x)",                     "the function 'foo'",         True),
    ("bare-function",       "exp",                        "call it",                    True),
    ("two-arguments",       "log(x, 2)",                  "exactly one positional",     True),
    ("keyword-argument",    "exp(x=1)",                   "exactly one positional",     True),
    ("xor-for-power",       "x^2",                        "write ** for a power",       True),
    ("complex-literal",     "x*1j",                       "complex number",             True),
    ("string-literal",      "'x'",                        "the literal 'x'",            True),
    ("huge-number",         "9**9**9**9",                 "a number this large",        True),
    ("division-by-zero",    "1/0",                        "division by zero",           True),
    ("zero-denominator",    "x/(x-x)",                    "division by zero",           True),
    ("log-of-zero",         "x*log(0)",                   "not a finite function",      False),
    ("constant",            "tanh(3)",                    "does not depend on x",       False),
    ("sqrt-of-negative",    "sqrt(x)",                    "defined and real for every real x", False),
    ("pole",                "1/x",                        "defined and real for every real x", False),
    ("unbounded-square",    "x**2",                       "is unbounded",               False),
    ("unbounded-exp",       "exp(x)",                     "is unbounded",               False),
    ("unbounded-at-kink",   "sqrt(abs(x))",               "is unbounded",               False),
    ("unbounded-oscillating", "x*sin(x)",                 "is unbounded",               False),
    ("infinitely-many-kinks", "abs(sin(x))",              "not smooth",                 False),
]
# fmt: on


@pytest.mark.parametrize(
    ("spec", "fragment", "lists_allowed"),
    [row[1:] for row in BAD],
    ids=[row[0] for row in BAD],
)
def test_bad_input(spec: str, fragment: str, lists_allowed: bool) -> None:
    with pytest.raises(GradproofError) as info:
        gamma(spec)
    message = str(info.value)
    assert fragment in message
    if lists_allowed:
        assert "Allowed:" in message and "softplus" in message and "pi" in message


@pytest.mark.parametrize("spec", [3.0, None, ["tanh"]], ids=["float", "none", "list"])
def test_bad_spec_type(spec: object) -> None:
    with pytest.raises(GradproofError, match="expects an Activation"):
        activation(spec)  # type: ignore[arg-type]


def test_parser_never_evaluates_user_text(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "atan(7*x)/7 + x/1000 + cosh(0)*x"  # new text, not in any cache
    seen: list[object] = []

    def spy(original):
        def wrapper(*args, **kwargs):
            seen.append(args[0] if args else None)
            return original(*args, **kwargs)

        return wrapper

    monkeypatch.setattr(builtins, "eval", spy(builtins.eval))
    monkeypatch.setattr(builtins, "exec", spy(builtins.exec))
    monkeypatch.setattr(sp, "sympify", spy(sp.sympify))
    monkeypatch.setattr(sp, "parse_expr", spy(sp.parse_expr))
    act = activation(text)
    numpy_pair(act)[0](np.array([0.1]))  # the numeric layer does not evaluate text either
    assert all(not (isinstance(arg, str) and arg.strip() == text) for arg in seen)
    assert sp.simplify(act.expr - (sp.atan(7 * X) / 7 + X / 1000 + X)) == 0



def test_derive_imports_without_numpy() -> None:
    # derive/ is SymPy only (issue 8): importing it, building activations and deriving γ must work
    # with numpy unimportable (SymPy itself does not need numpy).
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'numpy' or name.startswith('numpy.'): raise ImportError('no numpy')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from gradproof import derive\n"
        "assert derive.gamma('sigmoid') == 1/derive.activation('x').gamma/4\n"
        "assert str(derive.gamma('tanh(x)+sin(x)/10')) == '11/10'\n"
        "assert 'numpy' not in sys.modules\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr
