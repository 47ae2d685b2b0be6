r"""The vanishing/exploding theorem of Pascanu, Mikolov & Bengio (2013), derived from a cell.

The proof is generated from the cell's derived step Jacobian, not written out per cell:

* a norm bound is built from the structure of the Jacobian by three rules — the triangle inequality
  for sums, submultiplicativity for products, and :math:`\lVert\operatorname{diag}(v)\rVert_2 =
  \max_i |v_i|` for diagonal factors (:func:`norm_bound`);
* where the Jacobian is :math:`\operatorname{diag}(\sigma'(z))\,W` (the vanilla RNN, docs/math.md §1) the
  diagonal is bounded by :math:`\gamma = \sup|\sigma'|`, derived by :func:`derive.gamma`, giving
  :math:`\eta = \gamma\,\sigma_{\max}(W)` and the chain bound :math:`\eta^{i-j}`;
* the terms without a weight matrix form the *direct path* (LSTM: :math:`\partial c_t/\partial
  c_{t-1} = \operatorname{diag}(f_t)`; GRU: :math:`\operatorname{diag}(1 - u_t)`, or
  :math:`\operatorname{diag}(z_t)` in PyTorch's form), whose product along the sequence is the
  "shortcut" of the lecture and only a truncation of the total derivative (docs/math.md §3).

>>> from gradproof.derive import pascanu_bound
>>> thm = pascanu_bound("rnn-sigmoid")
>>> thm.gamma, thm.threshold
(1/4, 4)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import sympy as sp
from sympy.printing.latex import LatexPrinter

from .activations import activation, gamma as _gamma
from .algebra import ActPrime, Diag, JacobianSymbol, OrderedProduct
from .cells import Cell, cell as _cell
from .jacobians import Step, state_symbols, step_jacobian

__all__ = [
    "Norm",
    "MaxAbs",
    "SigmaMax",
    "SpectralRadius",
    "Theorem",
    "pascanu_bound",
    "norm_bound",
    "direct_path",
]


class _Scalar(sp.Expr):
    """A nonnegative real scalar built from a matrix or vector (printed, not evaluated)."""

    is_extended_real = True
    is_real = True
    is_extended_nonnegative = True
    is_nonnegative = True
    is_commutative = True

    def __new__(cls, arg: sp.Basic):
        return sp.Expr.__new__(cls, arg)

    @property
    def arg(self) -> sp.Basic:
        return self.args[0]


class Norm(_Scalar):
    """‖A‖₂, the spectral norm (largest singular value) of a matrix."""

    def _latex(self, printer: LatexPrinter) -> str:
        return rf"\left\|{printer._print(self.arg)}\right\|_2"


class MaxAbs(_Scalar):
    """max_i |v_i| = ‖diag(v)‖₂."""

    def _latex(self, printer: LatexPrinter) -> str:
        return rf"\max_k \left|\left({printer._print(self.arg)}\right)_k\right|"


class SigmaMax(_Scalar):
    """σ_max(W): the largest singular value, equal to ‖W‖₂."""

    def _latex(self, printer: LatexPrinter) -> str:
        return rf"\sigma_{{\max}}\left({printer._print(self.arg)}\right)"


class SpectralRadius(_Scalar):
    """ρ(W) = max |λ_k(W)|, the largest eigenvalue modulus."""

    def _latex(self, printer: LatexPrinter) -> str:
        return rf"\rho\left({printer._print(self.arg)}\right)"


GAMMA = sp.Symbol(r"\gamma", positive=True)
ETA = sp.Symbol(r"\eta", positive=True)
I_, J_ = sp.symbols("i j", integer=True)


def norm_bound(expr: sp.Expr) -> sp.Expr:
    r"""An upper bound on ‖expr‖₂ from its structure (triangle inequality, submultiplicativity).

    ``diag(v)`` gives max|v|, a weight matrix σ_max(W), a named Jacobian ‖J‖₂, and a block matrix
    :math:`\sqrt{\sum_{ij}\lVert B_{ij}\rVert^2}` (the 2-norm is at most the Frobenius norm of the
    matrix of block norms).
    """
    if isinstance(expr, sp.MatAdd):
        return sp.Add(*[norm_bound(a) for a in expr.args])
    if isinstance(expr, sp.MatMul):
        coeff, mats = expr.as_coeff_matrices()
        return abs(coeff) * sp.Mul(*[norm_bound(m) for m in mats])
    if isinstance(expr, Diag):
        return MaxAbs(expr.vector)
    if isinstance(expr, sp.MatrixSymbol):
        return SigmaMax(expr)
    if isinstance(expr, JacobianSymbol):
        return Norm(expr)
    if isinstance(expr, sp.Identity):
        return sp.S.One
    if isinstance(expr, sp.ZeroMatrix):
        return sp.S.Zero
    if isinstance(expr, sp.BlockMatrix):
        b = expr.blocks
        return sp.sqrt(sp.Add(*[norm_bound(b[i, j]) ** 2 for i in range(b.rows) for j in range(b.cols)]))
    raise NotImplementedError(f"norm_bound: {type(expr).__name__}")


def direct_path(expr: sp.Expr) -> sp.Expr | None:
    """The terms of a Jacobian with no weight matrix: diag(...) alone (the gated shortcut)."""
    terms = expr.args if isinstance(expr, sp.MatAdd) else (expr,)
    direct = [t for t in terms if isinstance(t, Diag | sp.Identity)]
    if not direct:
        return None
    return direct[0] if len(direct) == 1 else sp.MatAdd(*direct)


@dataclass(frozen=True)
class Theorem:
    """The theorem for one cell: statements a student can read, each a SymPy relation.

    Attributes
    ----------
    cell : the cell.
    gamma : γ = sup|σ'| of the RNN's activation (exact), or None for gated cells.
    threshold : 1/γ, the σ_max(W_h) below which vanishing is guaranteed (None for gated cells).
    eta : γ σ_max(W_h) as an expression (None for gated cells).
    statements : the proof, in order: (text, relation).
    linear_case : the spectral-radius statements for σ = identity.
    direct : the direct-path statements (gated cells), with the LSTM's cell-path product.
    bound : the structural per-step bound on ‖∂s_t/∂s_{t-1}‖₂ (data dependent).
    """

    cell: Cell
    gamma: sp.Expr | None
    threshold: sp.Expr | None
    eta: sp.Expr | None
    statements: tuple[Step, ...]
    linear_case: tuple[Step, ...]
    direct: tuple[Step, ...]
    bound: sp.Expr

    def latex(self) -> str:
        """All statements as an ``aligned``-free list of display lines."""
        return r" \\ ".join(s.latex() for s in self.statements + self.direct + self.linear_case)

    def _latex(self, printer: object) -> str:
        return self.latex()

    def _repr_latex_(self) -> str:
        return "$\\begin{gathered}" + self.latex() + "\\end{gathered}$"


def _rnn_statements(c: Cell, v: sp.Expr, W: sp.MatrixSymbol) -> tuple[tuple[Step, ...], sp.Expr, sp.Expr, sp.Expr]:
    act = activation(v.activation.name)
    g = _gamma(act)
    s_prev, s = state_symbols(c)
    J = JacobianSymbol(s, s_prev)
    d = step_jacobian(c)
    eta = g * SigmaMax(W)
    dJi = sp.MatrixSymbol(r"\frac{\partial J^{(i)}}{\partial h^{(i)}}", 1, s.shape[0])
    dJj = sp.MatrixSymbol(r"\frac{\partial J^{(i)}}{\partial h^{(j)}}", 1, s.shape[0])
    threshold = 1 / g
    steps = (
        Step("the step Jacobian, derived by the chain rule", d.equation),
        Step(
            "submultiplicativity of the spectral norm",
            sp.Le(Norm(J), Norm(Diag(v)) * Norm(W), evaluate=False),
        ),
        Step(
            "the norm of a diagonal matrix is its largest entry in absolute value",
            sp.Eq(Norm(Diag(v)), MaxAbs(v), evaluate=False),
        ),
        Step(
            f"$\\gamma = \\sup_x |\\sigma'(x)|$ for $\\sigma$ = {act.name}, derived by calculus "
            "(critical points of $\\sigma'$, limits at $\\pm\\infty$, kinks)",
            sp.Eq(GAMMA, g, evaluate=False),
        ),
        Step("so every diagonal entry is at most $\\gamma$", sp.Le(MaxAbs(v), GAMMA, evaluate=False)),
        Step(
            "per step, with $\\eta = \\gamma\\,\\sigma_{\\max}(W_h)$ ($\\sigma_{\\max}$ is the largest singular value)",
            sp.Le(Norm(J), GAMMA * SigmaMax(W), evaluate=False),
        ),
        Step("the definition of $\\eta$", sp.Eq(ETA, sp.Mul(GAMMA, SigmaMax(W), evaluate=False), evaluate=False)),
        Step(
            "along the ordered product of $i - j$ step Jacobians (submultiplicativity again)",
            sp.Le(Norm(dJj), Norm(dJi) * ETA ** (I_ - J_), evaluate=False),
        ),
        Step(
            "sufficient for vanishing: then $\\eta < 1$ and the bound decays like $\\eta^{i-j}$",
            sp.Implies(sp.Lt(SigmaMax(W), threshold), sp.Lt(ETA, 1)),
        ),
        Step(
            "necessary for exploding (otherwise $\\eta \\le 1$ and the norm cannot grow)",
            sp.Gt(SigmaMax(W), threshold),
        ),
    )
    return steps, g, threshold, eta


def _linear_case(W: sp.MatrixSymbol) -> tuple[Step, ...]:
    k = sp.Symbol("k", integer=True, positive=True)
    return (
        Step(
            "linear case $\\sigma$ = identity ($\\gamma = 1$): the product is exactly a matrix power",
            sp.Eq(Norm(sp.MatrixSymbol(r"\frac{\partial h^{(t+k)}}{\partial h^{(t)}}", *W.shape)),
                  Norm(sp.MatPow(W, k)), evaluate=False),
        ),  # fmt: skip
        Step(
            "Gelfand's formula: the growth rate is the spectral radius",
            sp.Eq(sp.Limit(Norm(sp.MatPow(W, k)) ** (1 / k), k, sp.oo), SpectralRadius(W), evaluate=False),
        ),
        Step(
            "so the gradient vanishes exactly when $\\rho(W_h) < 1$, and explodes when $\\rho(W_h) > 1$",
            sp.Equivalent(sp.Lt(SpectralRadius(W), 1), sp.Eq(sp.Limit(Norm(sp.MatPow(W, k)), k, sp.oo), 0)),
        ),
        Step(
            "$\\rho$ never exceeds $\\sigma_{\\max}$ (equal for normal $W$): the eigenvalue test is weaker than the norm test",
            sp.Le(SpectralRadius(W), SigmaMax(W), evaluate=False),
        ),
    )


def _gated_direct(c: Cell) -> tuple[Step, ...]:
    d = step_jacobian(c)
    t = sp.Symbol("t", integer=True)
    out: list[Step] = []
    if c.kind == "lstm":
        h, cc = c.state_next
        hp, cp = c.state_previous
        block = d.blocks[(cc, cp)]
        f = block.vector
        out.append(Step("the cell path: $c^{(t)}$ depends on $c^{(t-1)}$ only through the forget gate",
                        sp.Eq(JacobianSymbol(cc, cp), block, evaluate=False)))  # fmt: skip
        prod = OrderedProduct(block, t, J_, I_)
        out.append(
            Step(
                "along the cell path alone the product is diagonal; its norm is at most the product "
                "of the largest forget-gate entries (equal to the identity when $f = 1$)",
                sp.Le(Norm(prod), sp.Product(MaxAbs(f), (t, J_ + 1, I_)), evaluate=False),
            )
        )
        out.append(
            Step(
                "this is a truncation: the total derivative of $c^{(i)}$ with respect to $c^{(j)}$ also "
                "runs through $h$ (the blocks $\\partial c/\\partial h$ and $\\partial h/\\partial c$), so it is "
                "the ordered product of the whole $2 \\times 2$ block Jacobians, not of $\\operatorname{diag}(f)$",
                sp.Eq(
                    JacobianSymbol(
                        sp.MatrixSymbol("c^{(i)}", *cc.shape), sp.MatrixSymbol("c^{(j)}", *cp.shape)
                    ),
                    sp.MatMul(
                        sp.MatrixSymbol(r"\begin{bmatrix}0 & I\end{bmatrix}", cc.shape[0], 2 * cc.shape[0]),
                        OrderedProduct(d.lhs, t, J_, I_),
                        sp.MatrixSymbol(r"\begin{bmatrix}0 \\ I\end{bmatrix}", 2 * cc.shape[0], cc.shape[0]),
                    ),
                    evaluate=False,
                ),
            )
        )
        return tuple(out)
    path = direct_path(d.result)
    if path is None:
        return tuple(out)
    if isinstance(path, sp.Identity):  # an ungated skip (h = h + ...): the state is always kept
        out.append(Step("the direct path: the identity, with no weight matrix and no gate (an ungated skip)",
                        sp.Eq(sp.Symbol(r"\text{direct}"), path, evaluate=False)))  # fmt: skip
        out.append(Step("its product over steps is the identity, of norm 1",
                        sp.Eq(Norm(OrderedProduct(path, t, J_, I_)), sp.Integer(1), evaluate=False)))  # fmt: skip
        return tuple(out)
    out.append(
        Step(
            "the direct path: the term without a weight matrix, a gated identity "
            "(the state is kept where the gate says so)",
            sp.Eq(sp.Symbol(r"\text{direct}"), path, evaluate=False),
        )
    )
    if isinstance(path, Diag):  # a sum of several diagonal terms gets no product statement
        out.append(
            Step(
                "its product over steps is diagonal and bounded by the product of the gate's largest entries",
                sp.Le(Norm(OrderedProduct(path, t, J_, I_)),
                      sp.Product(MaxAbs(path.vector), (t, J_ + 1, I_)), evaluate=False),
            )  # fmt: skip
        )
    return tuple(out)


@lru_cache(maxsize=None)
def _pascanu_bound(c: Cell) -> Theorem:
    d = step_jacobian(c)
    bound = norm_bound(d.result)
    r = d.result
    if (
        isinstance(r, sp.MatMul)
        and len(r.args) == 2
        and isinstance(r.args[0], Diag)
        and isinstance(r.args[0].vector, ActPrime)
        and isinstance(r.args[1], sp.MatrixSymbol)
    ):
        v, W = r.args[0].vector, r.args[1]
        steps, g, threshold, eta = _rnn_statements(c, v, W)
        return Theorem(c, g, threshold, eta, steps, _linear_case(W), (), bound)
    steps = (
        Step("the step Jacobian, derived by the chain rule", d.equation),
        Step(
            "triangle inequality and submultiplicativity, term by term (a data-dependent bound; "
            "the gates' values enter through max|·|)",
            sp.Le(Norm(d.lhs), bound, evaluate=False),
        ),
    )
    return Theorem(c, None, None, None, steps, (), _gated_direct(c), bound)


def pascanu_bound(cell: Cell | str) -> Theorem:
    """The theorem of Pascanu et al. (2013) for a cell (docs/math.md §1; gated cells: §3, §4)."""
    return _pascanu_bound(_cell(cell))

