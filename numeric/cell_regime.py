r"""The Pascanu et al. (2013) argument for a cell defined by equations (:func:`derive.define_cell`).

The step Jacobian :math:`J_t = \partial s^{(t)}/\partial s^{(t-1)}` of any cell is derived by the
chain rule (:func:`derive.step_jacobian`), and :func:`derive.theorem.norm_bound` turns its
structure into an upper bound :math:`\beta` on :math:`\lVert J_t\rVert_2` — triangle inequality
over sums, submultiplicativity over products, :math:`\lVert\operatorname{diag}(v)\rVert_2 =
\max_k |v_k|` — a scalar expression in :math:`\max_k|v_k|` (gate values, :math:`\sigma'(z)`,
states) and :math:`\sigma_{\max}(W)`. This module evaluates that one derived expression two ways:

* **data free**, :math:`\eta = \sup \beta` over every state and input, by interval arithmetic on
  the vectors: a sigmoid gate lies in [0, 1], :math:`|\sigma'| \le \gamma` (the certified upper
  end of :func:`derive.gamma_enclosure`), a parameter vector within its entries, :math:`|W v|_k
  \le \lVert W\rVert_\infty \max|v|`, and a previous state is unbounded. Then
  :math:`\lVert \partial s_T/\partial s_k\rVert_2 \le \eta^{T-k}`: η < 1 guarantees vanishing,
  η > 1 is necessary for exploding, and η = ∞ means the bound depends on the state (an LSTM's
  :math:`c^{(t-1)}` enters :math:`\partial c/\partial h`), so only a trajectory decides.
  For :math:`h = \sigma(W h + U x + b)` it is exactly :math:`\gamma\,\sigma_{\max}(W)` (Pascanu
  et al. 2013), for IndRNN :math:`\gamma \max_k|u_k|` (Li et al. 2018).
* **along a trajectory**, :math:`\beta_t` with the actual values of step t, so
  :math:`\log\lVert J_T\cdots J_{k+1}\rVert_2 \le \sum_{t=k+1}^{T}\log\beta_t`.

Every recurrent parameter also gets the built-in per-block verdict (:func:`numeric.regime` of the
activation it feeds and its matrix, ``diag(u)`` for a vector u multiplying a state elementwise):
that bounds one gate's term alone, so the worst block is reported as "worst block", never as a
verdict on the cell.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import sympy as sp

from ..derive.algebra import Act, ActPrime, Diag, JacobianSymbol, OneMinus, Square
from ..derive.cells import Cell
from ..derive.errors import GradproofError
from ..derive.jacobians import step_jacobian
from ..derive.theorem import MaxAbs, Norm, SigmaMax, norm_bound, pascanu_bound

__all__ = ["CellRegime", "GammaValue", "cell_regime", "cell_bound_profile", "step_bounds", "UNDECIDED"]

#: The verdict when the data-free bound is infinite (it grows with an unbounded state).
UNDECIDED = "not decided (the bound depends on the state)"

# Activations that are nondecreasing (σ' ≥ 0), so σ([lo, hi]) = [σ(lo), σ(hi)] and σ' ∈ [0, γ].
_MONOTONE = frozenset(
    "sigmoid tanh relu hard_sigmoid identity leaky_relu elu selu celu softplus softsign hardtanh "
    "logsigmoid".split()
)


# --------------------------------------------------------------------------- γ of each activation


@dataclass(frozen=True)
class GammaValue:
    """γ = sup|σ'| of one activation of the cell: ``lo ≤ γ ≤ hi`` (exact rationals as strings).

    ``exact`` is the closed form when :func:`derive.gamma` derives one (then the text is that
    value), else None and the text is the certified enclosure ``γ ∈ [lo, hi]``.
    """

    activation: str
    lo: str
    hi: str
    exact: str | None
    hi_float: float

    @property
    def text(self) -> str:
        """``1/4`` or ``γ ∈ [lo, hi] (certified)``."""
        if self.exact is not None:
            return self.exact
        return f"γ ∈ [{float(sp.Rational(self.lo)):.15g}, {self.hi_float:.15g}] (certified)"

    def to_json(self) -> dict[str, Any]:
        return {"activation": self.activation, "lo": self.lo, "hi": self.hi, "exact": self.exact,
                "gamma_upper": self.hi_float}  # fmt: skip


def _gamma_value(name: str) -> GammaValue:
    from ..derive import gamma_enclosure

    e = gamma_enclosure(name)
    hi = sp.Rational(e.hi)
    # a float never below the rational hi: the bound must stay an upper bound
    hi_f = float(hi)
    if sp.Rational(hi_f) < hi:
        hi_f = math.nextafter(hi_f, math.inf)
    return GammaValue(name, str(e.lo), str(e.hi), None if e.exact is None else str(e.exact), hi_f)


def _activations(expr: sp.Basic) -> set[str]:
    return {str(a.args[0]) for a in sp.preorder_traversal(expr) if isinstance(a, Act | ActPrime)}


# --------------------------------------------------------------------------- the scalar bound


def _bound_expression(c: Cell) -> tuple[sp.Expr, dict[JacobianSymbol, sp.Expr]]:
    """β: the derived norm bound of the step Jacobian, and the named Jacobians it refers to."""
    d = step_jacobian(c)
    return pascanu_bound(c).bound, dict(d.references)


def _evaluate(expr: sp.Expr, leaf: Callable[[sp.Expr], Any], refs: Mapping[JacobianSymbol, sp.Expr]) -> Any:
    """A scalar bound expression (sums, products, powers of MaxAbs/SigmaMax/Norm) on numbers."""
    if isinstance(expr, MaxAbs | SigmaMax):
        return leaf(expr)
    if isinstance(expr, Norm):
        if isinstance(expr.arg, JacobianSymbol) and expr.arg in refs:
            return _evaluate(norm_bound(refs[expr.arg]), leaf, refs)
        raise GradproofError(f"cannot evaluate the norm of {expr.arg} in the cell's bound")
    if expr.is_Number:
        return float(expr)
    if isinstance(expr, sp.Add):
        return sum((_evaluate(a, leaf, refs) for a in expr.args), 0.0)
    if isinstance(expr, sp.Mul):
        out: Any = 1.0
        for a in expr.args:
            v = _evaluate(a, leaf, refs)
            with np.errstate(invalid="ignore"):
                prod = out * v
            # 0 · ∞ is 0 here: a factor that is exactly zero makes the whole term zero
            out = np.where((np.asarray(out) == 0) | (np.asarray(v) == 0), 0.0, prod)
        return out
    if isinstance(expr, sp.Pow) and expr.exp.is_Number:
        return np.asarray(_evaluate(expr.base, leaf, refs), dtype=np.float64) ** float(expr.exp)
    raise GradproofError(f"cannot evaluate {type(expr).__name__} in the cell's bound")


# --------------------------------------------------------------------------- data-free: intervals

Interval = tuple[float, float]
_ALL: Interval = (-math.inf, math.inf)


def _mul(a: Interval, b: Interval) -> Interval:
    products = []
    for x in a:
        for y in b:
            products.append(0.0 if x == 0 or y == 0 else x * y)
    return (min(products), max(products))


def _magnitude(a: Interval) -> float:
    return max(abs(a[0]), abs(a[1]))


@dataclass
class _Intervals:
    """Entrywise ranges of a cell's vectors over every state, input and step."""

    cell: Cell
    params: Mapping[str, np.ndarray]
    gammas: dict[str, GammaValue]
    states: Mapping[sp.Basic, Interval]  # previous state symbol -> range of its entries

    def __post_init__(self) -> None:
        self.by_symbol = {sym: name for name, sym in self.cell.parameter_symbols().items()}
        self.definitions = dict(self.cell.definitions)
        self.memo: dict[sp.Basic, Interval] = {}

    def of(self, e: sp.Expr) -> Interval:
        if e not in self.memo:
            self.memo[e] = self._of(e)
        return self.memo[e]

    def _gamma(self, name: str) -> float:
        if name not in self.gammas:
            self.gammas[name] = _gamma_value(name)
        return self.gammas[name].hi_float

    def _of(self, e: sp.Expr) -> Interval:
        if isinstance(e, sp.MatrixSymbol):
            if e in self.by_symbol:
                v = np.asarray(self.params[self.by_symbol[e]], dtype=np.float64)
                return (float(v.min()), float(v.max()))
            if e in self.definitions:
                return self.of(self.definitions[e])
            return self.states.get(e, _ALL)  # a previous state, or the input (unbounded)
        if isinstance(e, Act):
            name = str(e.args[0])
            lo, hi = self.of(e.vector)
            if name not in _MONOTONE:
                return _ALL
            from .activations import numpy_pair

            f = numpy_pair(e.activation)[0]
            with np.errstate(all="ignore"):
                ends = [float(f(np.array([x], dtype=np.float64))[0]) for x in (lo, hi)]
            if any(math.isnan(x) for x in ends):
                return _ALL
            return (ends[0], ends[1])
        if isinstance(e, ActPrime):
            name = str(e.args[0])
            g = self._gamma(name)
            return (0.0, g) if name in _MONOTONE else (-g, g)
        if isinstance(e, OneMinus):
            lo, hi = self.of(e.vector)
            return (1.0 - hi, 1.0 - lo)
        if isinstance(e, Square):
            lo, hi = self.of(e.vector)
            m = _magnitude((lo, hi))
            low = 0.0 if lo <= 0.0 <= hi else min(lo * lo, hi * hi)
            return (low, m * m)
        if isinstance(e, sp.HadamardProduct):
            return self._product(list(e.args))
        if isinstance(e, sp.MatAdd):
            convex = self._convex(e)
            if convex is not None:
                return convex
            lo = hi = 0.0
            for a in e.args:
                a_lo, a_hi = self.of(a)
                lo, hi = lo + a_lo, hi + a_hi
            return (lo, hi)
        if isinstance(e, sp.MatMul):
            coeff, mats = e.as_coeff_matrices()
            *left, vec = mats
            out = self.of(vec)
            for W in reversed(left):
                if isinstance(W, Diag):
                    out = _mul(self.of(W.vector), out)
                    continue
                if not (isinstance(W, sp.MatrixSymbol) and W in self.by_symbol):
                    raise GradproofError(f"cannot bound the product by {W} in the cell's bound")
                row = float(np.max(np.sum(np.abs(np.asarray(self.params[self.by_symbol[W]])), axis=1)))
                m = _magnitude(out)
                r = 0.0 if row == 0 or m == 0 else row * m
                out = (-r, r)
            return _mul((float(coeff), float(coeff)), out)
        raise GradproofError(f"cannot bound a {type(e).__name__} in the cell's bound")


    def _product(self, factors: list[sp.Expr]) -> Interval:
        """Range of a Hadamard product; a pair a ⊙ (1 - a) (σ' of a sigmoid gate) is bounded as
        the concave a - a², not as two independent factors."""
        rest = list(factors)
        out: Interval = (1.0, 1.0)
        for f in factors:
            if isinstance(f, OneMinus) and f in rest and f.vector in rest:
                rest.remove(f)
                rest.remove(f.vector)
                lo, hi = self.of(f.vector)
                if not (math.isfinite(lo) and math.isfinite(hi)):
                    return _ALL
                g = lambda a: a - a * a  # noqa: E731
                top = 0.25 if lo <= 0.5 <= hi else max(g(lo), g(hi))
                out = _mul(out, (min(g(lo), g(hi)), top))
        for a in rest:
            out = _mul(out, self.of(a))
        return out

    def _convex(self, e: sp.MatAdd) -> Interval | None:
        """(1 - a) ⊙ X + a ⊙ Y with a ∈ [0, 1] lies between X and Y: the hull of their ranges."""
        if len(e.args) != 2 or not all(isinstance(t, sp.HadamardProduct) for t in e.args):
            return None
        for first, second in (e.args, e.args[::-1]):
            for k, factor in enumerate(first.args):
                if not isinstance(factor, OneMinus) or factor.vector not in second.args:
                    continue
                a_lo, a_hi = self.of(factor.vector)
                if a_lo < 0.0 or a_hi > 1.0:
                    continue
                x = self._product([f for j, f in enumerate(first.args) if j != k])
                rest = list(second.args)
                rest.remove(factor.vector)
                y = self._product(rest)
                return (min(x[0], y[0]), max(x[1], y[1]))
        return None


def _state_ranges(cell: Cell, params: Mapping[str, np.ndarray], gammas: dict[str, GammaValue],
                  *, start: Interval = (-1.0, 1.0), rounds: int = 64) -> dict[sp.Basic, Interval]:
    """Ranges every state entry keeps for all t from initial entries in ``start`` (interval
    arithmetic on the equations, iterated to a fixed point; ``(-inf, inf)`` where it grows)."""
    prev, nxt = cell.state_previous, cell.state_next
    ranges: dict[sp.Basic, Interval] = {s: start for s in prev}
    for _ in range(rounds):
        iv = _Intervals(cell, params, gammas, ranges)
        new = {}
        for s_prev, s_next in zip(prev, nxt):
            lo, hi = iv.of(s_next)
            old = ranges[s_prev]
            new[s_prev] = (min(old[0], lo), max(old[1], hi))
        if new == ranges:
            return ranges
        # a range still growing after many rounds is taken as unbounded
        ranges = new if _ < rounds // 2 else {k: (v if v == ranges[k] else _ALL) for k, v in new.items()}
    return {k: _ALL for k in ranges}  # no invariant range proved


def _sup_leaf(iv: _Intervals, culprits: set[str]) -> Callable[[sp.Expr], float]:
    unbounded = {s for s, r in iv.states.items() if not all(map(math.isfinite, r))} | {iv.cell.input}

    def leaf(e: sp.Expr) -> float:
        if isinstance(e, SigmaMax):
            return _sigma_max(iv.params[iv.by_symbol[e.arg]])
        m = _magnitude(iv.of(e.arg))
        if not math.isfinite(m):
            culprits.update(a.name for a in e.arg.atoms(sp.MatrixSymbol) if a in unbounded)
        return m

    return leaf


def _sigma_max(W: Any) -> float:
    return float(np.linalg.norm(np.asarray(W, dtype=np.float64), 2))


# --------------------------------------------------------------------------- blocks


def _recurrent_parameters(c: Cell) -> list[tuple[str, str, str]]:
    """(parameter, activation it feeds, "matrix" | "diagonal") for every recurrent parameter:
    an n×n matrix, or a vector multiplying a state or an intermediate elementwise."""
    kinds = dict(c.param_kinds)
    out: dict[str, tuple[str, str, str]] = {}

    def walk(node: tuple, fn: str) -> None:
        tag = node[0]
        if tag == "call":
            walk(node[2], node[1])
            return
        if tag == "matmul" and kinds.get(node[1]) == "hidden":
            out.setdefault(node[1], (node[1], fn, "matrix"))
        if tag == "mul":
            a, b = node[1], node[2]
            for p, other in ((a, b), (b, a)):
                if p[0] == "param" and other[0] in ("state", "var"):
                    out.setdefault(p[1], (p[1], fn, "diagonal"))
        for child in node[1:]:
            if isinstance(child, tuple):
                walk(child, fn)

    for _, _, node in c.program:
        walk(node, "identity")
    return list(out.values())


# --------------------------------------------------------------------------- the verdict


@dataclass(frozen=True)
class CellRegime:
    """The theorem for a defined cell with given parameters (see the module docstring).

    Attributes
    ----------
    model : the cell's name.
    kind : ``"defined"``.
    hidden : n.
    state : the state names, in order.
    gammas : activation name → :class:`GammaValue`, every activation of the cell.
    bound : the derived per-step bound β ≥ ‖∂s_t/∂s_{t-1}‖₂ (SymPy, printable by ``derive.latex``).
    eta : sup of β over every state and input (``inf`` when it depends on an unbounded state).
    unbounded : the quantities with no data-free bound that made η infinite.
    state_ranges : (state, (lo, hi)) every entry of that state keeps for all t from an initial
        state with entries in [-1, 1] (interval arithmetic on the equations; ``inf`` where it grows).
    verdict : ``"vanishing guaranteed"`` (η < 1), ``"exploding possible"`` (η > 1),
        ``"boundary"`` or :data:`UNDECIDED`.
    explanation : one sentence saying why.
    blocks : parameter → :class:`numeric.regime.Regime` of that recurrent term alone.
    main : the worst block (largest η), or None without recurrent parameters.
    note : what the block verdicts mean.
    """

    model: str
    kind: str
    hidden: int
    state: tuple[str, ...]
    gammas: Mapping[str, GammaValue]
    bound: sp.Expr
    eta: float
    unbounded: tuple[str, ...]
    state_ranges: tuple[tuple[str, Interval], ...]
    verdict: str
    explanation: str
    blocks: Mapping[str, Any]
    main: str | None
    note: str

    @property
    def main_regime(self) -> Any:
        """The worst block's :class:`numeric.regime.Regime` (None without blocks)."""
        return None if self.main is None else self.blocks[self.main]

    @property
    def regime(self) -> str:
        """Alias of :attr:`verdict` (the JSON key)."""
        return self.verdict

    def to_json(self) -> dict[str, Any]:
        """gamma, eta, regime, explanation, the blocks and the worst block, JSON-ready."""
        return {
            "model": self.model,
            "kind": self.kind,
            "hidden": self.hidden,
            "state": list(self.state),
            "gamma": {k: g.to_json() for k, g in self.gammas.items()},
            "bound": str(self.bound),
            "eta": self.eta if math.isfinite(self.eta) else None,
            "eta_unbounded_by": list(self.unbounded),
            "state_ranges": {k: [lo if math.isfinite(lo) else None, hi if math.isfinite(hi) else None]
                             for k, (lo, hi) in self.state_ranges},
            "regime": self.verdict,
            "explanation": self.explanation,
            "blocks": {k: r.to_json() for k, r in self.blocks.items()},
            "worst_block": self.main,
            "note": self.note,
        }


def _plain(symbol: sp.Basic) -> str:
    return str(getattr(symbol, "name", symbol)).split("^")[0]


def _hidden(c: Cell, params: Mapping[str, Any]) -> int:
    from .initialization import check_parameters

    return check_parameters(c, params)[0]


def cell_regime(cell: Cell, params: Mapping[str, Any]) -> CellRegime:
    """The theorem's verdict for a defined cell (module docstring).

    Parameters
    ----------
    cell : Cell
        A cell from :func:`derive.define_cell` (or a shipped one, ``derive.cell("mgu")``).
    params : mapping str → ndarray
        The cell's parameters, as from :func:`numeric.init`: n×n matrices ``(n, n)``, input
        matrices ``(n, m)``, vectors ``(n,)``.

    Returns
    -------
    CellRegime

    Examples
    --------
    IndRNN's step Jacobian is diag(relu'(z) ⊙ u), so η = max|u| (γ of relu is 1):

    >>> import numpy as np
    >>> from gradproof.derive import cell
    >>> from gradproof.numeric import init
    >>> p = {**init(cell("indrnn"), hidden=3, inputs=2, seed=0), "u": np.array([0.5, -0.8, 0.1])}
    >>> r = cell_regime(cell("indrnn"), p)
    >>> r.eta, r.verdict
    (0.8, 'vanishing guaranteed')
    """
    from .regime import BOUNDARY, EXPLODING, VANISHING, _RTOL_SINGULAR, regime

    n = _hidden(cell, params)
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    beta, refs = _bound_expression(cell)
    gammas: dict[str, GammaValue] = {}
    used = {a for _, rhs in cell.definitions for a in _activations(rhs)} | _activations(step_jacobian(cell).result)
    for name in sorted(used):
        gammas[name] = _gamma_value(name)
    ranges = _state_ranges(cell, p, gammas)
    unbounded: set[str] = set()
    iv = _Intervals(cell, p, gammas, ranges)
    eta = float(_evaluate(beta, _sup_leaf(iv, unbounded), refs))
    if math.isnan(eta):
        eta = math.inf
    shown = tuple(sorted(s.replace("^{(t-1)}", "(t-1)").replace("^{(t)}", "(t)") for s in unbounded))
    state_ranges = tuple((_plain(s), r) for s, r in ranges.items())
    finite = [f"{k} in [{lo:.4g}, {hi:.4g}]" for k, (lo, hi) in state_ranges if math.isfinite(lo) and math.isfinite(hi)]
    assumption = (
        f" (with {', '.join(finite)} for every t, which interval arithmetic on the equations proves for "
        "an initial state with entries in [-1, 1])" if finite and math.isfinite(eta) else ""
    )
    if not math.isfinite(eta):
        verdict = UNDECIDED
        explanation = (
            f"the derived bound on ||ds(t)/ds(t-1)|| grows with {', '.join(shown) or 'the state'}, which no "
            "weight bounds, so the weights alone decide nothing; the bound along a trajectory "
            "(bound_profile) decides for that trajectory"
        )
    elif math.isclose(eta, 1.0, rel_tol=_RTOL_SINGULAR, abs_tol=0.0):
        verdict, explanation = BOUNDARY, f"the derived bound eta = {eta:.6g} sits on the threshold 1"
    elif eta < 1.0:
        verdict = VANISHING
        explanation = (
            f"the derived bound eta = {eta:.6g} < 1 holds for every input{assumption}, so "
            "||ds_i/ds_j|| <= eta^(i-j) shrinks geometrically whatever the data"
        )
    else:
        verdict = EXPLODING
        explanation = (
            f"the derived bound eta = {eta:.6g} > 1{assumption}, so the theorem does not rule out exploding "
            "gradients (eta > 1 is necessary for them, not sufficient)"
        )
    blocks: dict[str, Any] = {}
    if hasattr(cell, "program"):
        for pname, fn, how in _recurrent_parameters(cell):
            W = p[pname] if how == "matrix" else np.diag(p[pname])
            blocks[pname] = regime(fn, W)
    else:  # a built-in cell: its blocks as numeric.model_regime reads them
        from .regime import model_regime

        blocks = dict(model_regime(cell, p).blocks)
    main = max(blocks, key=lambda k: blocks[k].eta) if blocks else None
    note = (
        "each block's verdict bounds that parameter's recurrent term diag(sigma'(.)) W alone; the step "
        "Jacobian sums such terms and gated products, so the worst block is not a verdict on the cell"
    )
    return CellRegime(
        model=cell.name, kind=cell.kind, hidden=n, state=tuple(getattr(cell, "state", ())),
        gammas=MappingProxyType(gammas), bound=beta, eta=eta, unbounded=shown, state_ranges=state_ranges,
        verdict=verdict,
        explanation=explanation + ".", blocks=MappingProxyType(blocks), main=main, note=note + ".",
    )  # fmt: skip


# --------------------------------------------------------------------------- along a trajectory


def step_bounds(cell: Cell, params: Mapping[str, Any], xs: Any, s0: Any = None) -> np.ndarray:
    """β_t ≥ ‖∂s_t/∂s_{t-1}‖₂ for t = 1..T: the derived bound with the values of step t.

    Parameters
    ----------
    cell : a cell; params : its parameters; xs : (T, inputs); s0 : (S,) or None (zeros).

    Returns
    -------
    (T,) array.
    """
    from .compiled import compile_expression
    from .trajectory import unroll

    traj = unroll(cell, params, xs, s0)
    env = traj.environment()
    beta, refs = _bound_expression(traj.cell)
    by_symbol = {sym: name for name, sym in traj.cell.parameter_symbols().items()}

    def leaf(e: sp.Expr) -> Any:
        if isinstance(e, SigmaMax):
            return _sigma_max(traj.params[by_symbol[e.arg]])
        v = np.abs(np.asarray(compile_expression(e.arg)(env), dtype=np.float64))
        return np.max(v, axis=-1)

    out = np.broadcast_to(np.asarray(_evaluate(beta, leaf, refs), dtype=np.float64), (traj.T,))
    return np.array(out)


def cell_bound_profile(cell: Cell, params: Mapping[str, Any], xs: Any, s0: Any = None) -> Any:
    """:class:`numeric.regime.BoundProfile` of a defined cell along the trajectory of ``xs``.

    Entry k bounds log ‖∂s_T/∂s_k‖₂: ``log_eta_bound`` = (T − k) log η (data free, ``inf`` when
    η is), ``log_data_bound`` = Σ_{t>k} log β_t (:func:`step_bounds`). ``gamma`` is the largest
    certified γ of the cell's activations, ``sigma_max`` the worst block's (nan without blocks).

    Parameters
    ----------
    cell : a cell; params : its parameters; xs : (T, inputs); s0 : (S,) or None (zeros).
    """
    from ._readonly import frozen
    from .regime import BoundProfile

    r = cell_regime(cell, params)
    beta = step_bounds(cell, params, xs, s0)
    T = beta.shape[0]
    spans = np.arange(T, 0, -1, dtype=np.float64)
    with np.errstate(divide="ignore"):
        log_beta = np.log(beta)
        log_eta = math.log(r.eta) if r.eta > 0 else -math.inf
    log_data = np.cumsum(log_beta[::-1])[::-1]
    log_eta_bound = spans * log_eta
    gamma = max((g.hi_float for g in r.gammas.values()), default=math.nan)
    return BoundProfile(
        log_eta_bound=frozen(log_eta_bound),
        log_data_bound=frozen(log_data),
        eta=r.eta,
        gamma=gamma,
        sigma_max=r.main_regime.sigma_max if r.main_regime is not None else math.nan,
        activation=cell.name,
    )
