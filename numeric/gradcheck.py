r"""Check *your* derivative code: gradproof computes the reference, you give the function.

Four checks for any function of arrays (or nested dicts/tuples/lists of arrays, numpy or torch),
one for a recurrent step and its hand-written backward pass:

* :func:`check_jacobian` — ``jacobian(*args)`` against :math:`\partial f/\partial x`;
* :func:`check_jvp` — ``jvp(*args, *tangents)`` against :math:`J v`;
* :func:`check_vjp` — ``vjp(*args, g)`` against :math:`J^\top g`;
* :func:`check_gradient` — ``grad(params)`` against :math:`\nabla_\theta \ell`;
* :func:`check_recurrent_backward` — BPTT run with your ``step_backward`` against the gradient of
  a random linear loss :math:`\ell = \sum_t w_t^\top s_t`, with the first wrong time step.

The reference is the **complex step** :math:`\operatorname{Im} f(x + i h v)/h`, :math:`h = 10^{-20}`
(Squire & Trapp, SIAM Review 40, 1998), exact to rounding, whenever ``f`` accepts complex input
(tried once, and confirmed against a central difference); otherwise a **Richardson-extrapolated
central difference** (three step sizes, error :math:`O(h^6)`), whose error estimate (the last
extrapolation's change plus rounding :math:`\epsilon |f| / h`) sets the tolerance unless ``rtol`` /
``atol`` are given. By default the checks compare along a few random directions (like the fast
mode of ``torch.autograd.gradcheck``); on a failure, or with ``full=True``, the failing blocks are
computed entry by entry so the message can name the entry and the likely cause (a transpose, a
sign, a factor, one step off in time).

>>> import numpy as np
>>> from gradproof.numeric.gradcheck import check_jacobian
>>> W = np.array([[1.0, 2.0], [3.0, 4.0]])
>>> check_jacobian(lambda x: np.tanh(W @ x), lambda x: (1 - np.tanh(W @ x) ** 2)[:, None] * W,
...                np.array([0.1, -0.2]))
>>> check_jacobian(lambda x: np.tanh(W @ x), lambda x: (1 - np.tanh(W @ x) ** 2)[:, None] * W.T,
...                np.array([0.1, -0.2]))          # doctest: +ELLIPSIS
Traceback (most recent call last):
...
AssertionError: Jacobian of f w.r.t. argument 'x' differs at row 0, column 1: ...
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .threads import single_blas_thread

__all__ = [
    "check_jacobian",
    "check_jvp",
    "check_vjp",
    "check_gradient",
    "check_recurrent_backward",
]

EPS = np.finfo(np.float64).eps
#: relative slack for the user's own rounding, on top of the reference's error estimate
ROUNDING = 1e-8
SAFETY = 10.0
CS_STEP = 1e-20


# ----------------------------------------------------------------------------------------------
# Trees of arrays (numpy or torch): flatten to one float64 vector and back
# ----------------------------------------------------------------------------------------------


def _is_torch(a: Any) -> bool:
    mod = type(a).__module__
    return mod.startswith("torch") and hasattr(a, "detach")


def _is_leaf(a: Any) -> bool:
    if _is_torch(a):
        return bool(a.is_floating_point() or a.is_complex())
    if isinstance(a, np.ndarray):
        return a.dtype.kind in "fc"
    return isinstance(a, float | np.floating)


def _to_numpy(a: Any) -> np.ndarray:
    if _is_torch(a):
        a = a.detach().cpu().resolve_conj().numpy()
    return np.asarray(a)


@dataclass(frozen=True)
class _Leaf:
    path: str
    shape: tuple[int, ...]
    offset: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class _Tree:
    """The structure of a nested argument: leaves (float arrays) in order, the rest kept as is."""

    def __init__(self, tree: Any, root: str) -> None:
        self.torch = False
        self.leaves: list[_Leaf] = []
        values: list[np.ndarray] = []
        self.spec = self._walk(tree, root, values)
        self.values = np.concatenate([v.ravel() for v in values]) if values else np.zeros(0)
        self.dtype = np.float64

    def _walk(self, t: Any, path: str, values: list[np.ndarray]) -> Any:
        if isinstance(t, Mapping):
            return ("dict", type(t), [(k, self._walk(v, f"{path}[{k!r}]", values)) for k, v in t.items()])
        if isinstance(t, tuple | list):
            return ("seq", type(t), [self._walk(v, f"{path}[{i}]", values) for i, v in enumerate(t)])
        if _is_leaf(t):
            if _is_torch(t):
                self.torch = True
            a = _to_numpy(t)
            if a.dtype.kind == "c":
                raise AssertionError(f"{path}: complex arrays cannot be checked (give real inputs)")
            a = a.astype(np.float64)
            offset = sum(leaf.size for leaf in self.leaves)
            self.leaves.append(_Leaf(path, a.shape, offset))
            values.append(a)
            return ("leaf", len(self.leaves) - 1, np.ndim(t) == 0 and not isinstance(t, np.ndarray) and not _is_torch(t))
        return ("static", t)

    @property
    def size(self) -> int:
        return int(self.values.shape[0])

    def build(self, flat: np.ndarray, *, torch: bool | None = None) -> Any:
        """The tree with its leaves taken from ``flat`` (real or complex), as numpy or torch."""
        as_torch = self.torch if torch is None else torch

        def make(spec: Any) -> Any:
            kind = spec[0]
            if kind == "dict":
                return spec[1]((k, make(s)) for k, s in spec[2])
            if kind == "seq":
                items = [make(s) for s in spec[2]]
                return spec[1](items) if spec[1] in (tuple, list) else spec[1](*items)
            if kind == "static":
                return spec[1]
            leaf = self.leaves[spec[1]]
            a = flat[leaf.offset : leaf.offset + leaf.size].reshape(leaf.shape)
            if as_torch:
                import torch as _torch

                return _torch.from_numpy(np.ascontiguousarray(a).copy())
            if spec[2]:
                return a.item() if a.dtype.kind == "f" else complex(a.item())
            return a.copy()

        return make(self.spec)

    def flatten_like(self, other: Any, what: str) -> np.ndarray:
        """``other`` (structured like this tree) as one float64 vector; a clear error otherwise."""
        __tracebackhide__ = True
        t = _Tree(other, self.leaves[0].path.split("[")[0] if self.leaves else "")
        shapes = [leaf.shape for leaf in self.leaves]
        got = [leaf.shape for leaf in t.leaves]
        if shapes != got:
            raise AssertionError(
                f"{what}: expected arrays of shapes {shapes} (structured like the argument), got {got}"
            )
        return t.values

    def locate(self, i: int) -> tuple[_Leaf, tuple[int, ...]]:
        for leaf in self.leaves:
            if leaf.offset <= i < leaf.offset + leaf.size:
                return leaf, tuple(int(k) for k in np.unravel_index(i - leaf.offset, leaf.shape))
        raise IndexError(i)  # pragma: no cover


def _flat_output(out: Any) -> np.ndarray:
    """A function's output (array, scalar, tensor or a tree of them) as one flat vector."""
    if isinstance(out, Mapping):
        parts = [_flat_output(v) for v in out.values()]
    elif isinstance(out, tuple | list):
        parts = [_flat_output(v) for v in out]
    else:
        a = _to_numpy(out)
        return a.ravel() if a.dtype.kind == "c" else a.astype(np.float64).ravel()
    return np.concatenate(parts) if parts else np.zeros(0)


# ----------------------------------------------------------------------------------------------
# The reference: complex step where possible, else Richardson-extrapolated central differences
# ----------------------------------------------------------------------------------------------


class _Reference:
    """Directional derivatives of ``f(tree)`` along flat tangents, with an error estimate."""

    def __init__(self, f: Callable[[Any], Any], tree: _Tree, *, method: str = "auto") -> None:
        self.f = f
        self.tree = tree
        self.x = tree.values
        self.f0 = self._call(self.x)
        self.method = method if method != "auto" else None

    def _call(self, flat: np.ndarray) -> np.ndarray:
        return _flat_output(self.f(self.tree.build(flat)))

    def _complex_step(self, v: np.ndarray) -> np.ndarray:
        h = CS_STEP / max(float(np.max(np.abs(v))), 1e-300)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            out = self._call(self.x + 1j * h * v)
        if out.dtype.kind != "c":
            raise TypeError("the function returned a real result for a complex input")
        return out.imag / h

    def _central(self, v: np.ndarray, h: float) -> np.ndarray:
        return (self._call(self.x + h * v) - self._call(self.x - h * v)).real / (2 * h)

    def _richardson(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vmax = max(float(np.max(np.abs(v))), 1e-300)
        h = 1e-3 * max(1.0, float(np.max(np.abs(self.x))) if self.x.size else 1.0) / vmax
        d = [self._central(v, h / 2**k) for k in range(3)]
        r1 = [(4 * d[k + 1] - d[k]) / 3 for k in range(2)]
        r = (16 * r1[1] - r1[0]) / 15
        rounding = 8 * EPS * (np.abs(self.f0) + np.max(np.abs(self.f0), initial=0.0)) / (h / 4)
        return r, np.abs(r - r1[1]) + rounding

    def jvp(self, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(J v, error estimate)``, both flat over the outputs."""
        if self.method is None:
            self.method = "richardson"
            try:
                cs = self._complex_step(v)
            except Exception:  # noqa: BLE001 - any failure on complex input means "not complex-safe"
                cs = None
            if cs is not None and np.all(np.isfinite(cs)):
                fd, err = self._richardson(v)
                scale = np.max(np.abs(fd), initial=0.0)
                if np.all(np.abs(cs - fd) <= 1e3 * err + 1e-6 * (np.abs(fd) + scale) + 1e-300):
                    self.method = "complex-step"
                    return cs, self._cs_error(cs)
                return fd, err
        if self.method == "complex-step":
            cs = self._complex_step(v)
            return cs, self._cs_error(cs)
        return self._richardson(v)

    @staticmethod
    def _cs_error(cs: np.ndarray) -> np.ndarray:
        return 16 * EPS * (np.abs(cs) + np.max(np.abs(cs), initial=0.0))

    def jacobian(self, cols: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Columns ``cols`` of the Jacobian (p, len(cols)) and their error estimates."""
        vals, errs = [], []
        for j in cols:
            e = np.zeros(self.x.shape[0])
            e[j] = 1.0
            val, err = self.jvp(e)
            vals.append(val)
            errs.append(err)
        p = self.f0.shape[0]
        if not vals:
            return np.zeros((p, 0)), np.zeros((p, 0))
        return np.stack(vals, axis=1), np.stack(errs, axis=1)


# ----------------------------------------------------------------------------------------------
# Comparison, location and diagnosis
# ----------------------------------------------------------------------------------------------


def _allowed(ref: np.ndarray, err: np.ndarray, rtol: float | None, atol: float | None) -> np.ndarray:
    if rtol is not None or atol is not None:
        return (atol or 0.0) + (rtol or 0.0) * np.abs(ref)
    scale = np.max(np.abs(ref), initial=0.0)
    return SAFETY * err + ROUNDING * (np.abs(ref) + scale) + 1e-300


_FACTORS = (2.0, 0.5, -2.0, -0.5, 4.0, 0.25, 3.0, 1 / 3)


def _close(a: np.ndarray, b: np.ndarray) -> bool:
    scale = max(float(np.max(np.abs(b), initial=0.0)), 1e-300)
    return bool(np.all(np.abs(a - b) <= 1e-6 * scale))


def _diagnose(yours: np.ndarray, ref: np.ndarray, *, time_axis: bool = False) -> str:
    """The likely cause when ``yours`` is a simple transformation of ``ref`` (else "")."""
    if not np.any(ref) or not np.all(np.isfinite(yours)):
        return ""
    if yours.ndim == 2 and yours.shape == ref.T.shape and not _close(ref, ref.T) and _close(yours, ref.T):
        return "a transpose: yours equals the reference transposed (the error vanishes on Jᵀ)"
    if _close(yours, -ref):
        return "a sign: yours equals minus the reference"
    c = float(np.vdot(yours, ref) / np.vdot(ref, ref))
    for k in _FACTORS:
        if abs(c - k) < 1e-6 * abs(k) and _close(yours, k * ref):
            return f"a factor of {k:g}: yours equals {k:g} × the reference"
    if time_axis and ref.ndim >= 1 and ref.shape[0] >= 3:
        if _close(yours[1:], ref[:-1]) and np.any(ref[:-1]):
            return "one step off in time: your entry for step t is the reference's for step t-1"
        if _close(yours[:-1], ref[1:]) and np.any(ref[1:]):
            return "one step off in time: your entry for step t is the reference's for step t+1"
    return ""


def _entry(index: tuple[int, ...]) -> str:
    return f"({', '.join(map(str, index))})" if index else "(the scalar)"


def _worst(yours: np.ndarray, ref: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The mask of bad entries, the first and the worst bad (flat) index."""
    diff = np.abs(yours - ref)
    bad = ~(diff <= allowed)
    ratio = np.where(bad, np.nan_to_num(diff / allowed, nan=np.inf, posinf=np.inf), 0.0)
    return bad, int(np.argmax(bad)), int(np.argmax(ratio))


def _relerr(a: float, b: float) -> str:
    d = abs(a - b)
    return f"{d / abs(b):.3g}" if b != 0 else ("inf" if d else "0")


def _values(a: float, b: float, allowed: float) -> str:
    return (
        f"yours = {a!r}, reference = {b!r}, relative error {_relerr(a, b)} "
        f"(|difference| = {abs(a - b):.3e} > tolerance {allowed:.3e})"
    )


def _argnames(f: Callable[..., Any], n: int) -> list[str]:
    try:
        params = [
            p.name
            for p in inspect.signature(f).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    if len(params) >= n:
        return params[:n]
    if n == 1:
        return ["x"]
    return [f"argument {i}" for i in range(n)]


def _fname(f: Callable[..., Any]) -> str:
    name = getattr(f, "__name__", "f")
    return "f" if name == "<lambda>" else name


class _Args:
    """Several positional arguments seen as one tree (a tuple) whose leaves are named by argument."""

    def __init__(self, f: Callable[..., Any], args: Sequence[Any]) -> None:
        names = _argnames(f, len(args))
        self.names = names
        self.trees = [_Tree(a, nm) for nm, a in zip(names, args, strict=True)]
        self.offsets = np.cumsum([0] + [t.size for t in self.trees])
        self.torch = any(t.torch for t in self.trees)
        for t in self.trees:
            t.torch = self.torch
        self.values = np.concatenate([t.values for t in self.trees])

    def build(self, flat: np.ndarray) -> list[Any]:
        return [t.build(flat[self.offsets[i] : self.offsets[i + 1]]) for i, t in enumerate(self.trees)]


class _ArgsTree(_Tree):
    """Adapter so that :class:`_Reference` can call ``f(*args)`` from one flat vector."""

    def __init__(self, args: _Args) -> None:  # noqa: D107 - no super().__init__: a view
        self.args = args
        self.values = args.values
        self.leaves = [
            _Leaf(leaf.path, leaf.shape, int(args.offsets[i]) + leaf.offset)
            for i, t in enumerate(args.trees)
            for leaf in t.leaves
        ]
        self.torch = args.torch

    def build(self, flat: np.ndarray, *, torch: bool | None = None) -> Any:
        return self.args.build(flat)


def _rng(seed: int | None) -> np.random.Generator:
    return np.random.default_rng(0 if seed is None else seed)


# ----------------------------------------------------------------------------------------------
# The public checks
# ----------------------------------------------------------------------------------------------


def _full_jacobian_message(
    what: str, yours: np.ndarray, ref: np.ndarray, err: np.ndarray, leaf_label: str,
    rtol: float | None, atol: float | None, out_shape: tuple[int, ...] | None, leaf_shape: tuple[int, ...],
) -> str | None:
    allowed = _allowed(ref, err, rtol, atol)
    bad, first, worst = _worst(yours, ref, allowed)
    if not bad.any():
        return None
    i, j = np.unravel_index(worst, ref.shape)
    fi, fj = np.unravel_index(first, ref.shape)
    where = ""
    if out_shape is not None and len(out_shape) > 1:
        where += f"; row {i} is output entry {_entry(tuple(int(k) for k in np.unravel_index(i, out_shape)))}"
    if len(leaf_shape) > 1:
        where += f"; column {j} is entry {_entry(tuple(int(k) for k in np.unravel_index(j, leaf_shape)))} of the argument"
    msg = (
        f"{what} w.r.t. {leaf_label} differs at row {i}, column {j}{where}: "
        + _values(float(yours[i, j]), float(ref[i, j]), float(allowed[i, j]))
        + f"; {int(bad.sum())} of {bad.size} entries out of tolerance"
    )
    if (fi, fj) != (i, j):
        msg += f" (the first, in row-major order, is row {fi}, column {fj})"
    cause = _diagnose(yours, ref)
    if cause:
        msg += f"; likely cause: {cause}"
    return msg


@single_blas_thread
def check_jacobian(
    f: Callable[..., Any],
    jacobian: Callable[..., Any],
    *args: Any,
    full: bool = False,
    rtol: float | None = None,
    atol: float | None = None,
    seed: int | None = 0,
    tangents: int = 3,
    method: str = "auto",
) -> None:
    r"""Assert that ``jacobian(*args)`` is :math:`\partial f/\partial x` for each argument.

    Parameters
    ----------
    f : ``f(*args) -> y``; y an array (or a tree of arrays) of p entries in all.
    jacobian : ``jacobian(*args)``: for one argument x of shape (k,), an array (p, k); for an
        argument of any shape, ``y.shape + x.shape`` or (p, x.size) also work; for several
        arguments a tuple with one such block per argument. An argument that is a dict (a
        ``params`` dict) takes a dict of blocks keyed alike.
    *args : the point (numpy arrays, torch tensors, or nested dicts/tuples of them).
    full : compare every entry (k evaluations of f); by default ``tangents`` random directions
        :math:`J v` are compared and the entries are computed only for a failing argument.
    rtol, atol : tolerances ``|yours - ref| <= atol + rtol·|ref|``; by default from the
        reference's error estimate (see the module docstring).
    seed : the random directions' seed.
    method : ``"auto"`` (complex step when f accepts complex input), ``"complex-step"`` or
        ``"richardson"``.

    Raises
    ------
    AssertionError
        naming the argument, the row and column, both values, the relative error and the likely
        cause (a transpose, a sign, a factor).
    """
    __tracebackhide__ = True
    A = _Args(f, args)
    tree = _ArgsTree(A)
    ref = _Reference(lambda a: f(*a), tree, method=method)
    p = ref.f0.shape[0]
    point = A.build(A.values)
    raw = f(*point)
    out_shape = tuple(np.shape(_to_numpy(raw))) if _is_leaf(raw) or isinstance(raw, np.ndarray) else None
    got = jacobian(*point)
    blocks = list(got) if len(args) > 1 else [got]
    if len(blocks) != len(args):
        raise AssertionError(f"jacobian returned {len(blocks)} blocks for {len(args)} arguments")
    yours_cols = []
    for nm, t, b in zip(A.names, A.trees, blocks, strict=True):
        if isinstance(b, Mapping) or (isinstance(b, tuple | list) and t.spec[0] != "leaf"):
            sub = _flatten_blocks(b, t, p, nm)
        else:
            sub = _to_numpy(b).astype(np.float64)
            leaf_shape = t.leaves[0].shape if len(t.leaves) == 1 else None
            ok = [(p, t.size)] + ([out_shape + leaf_shape] if out_shape is not None and leaf_shape is not None else [])
            if sub.shape not in ok:
                hint = " (the transpose's shape: rows are outputs, columns inputs)" if sub.shape == (t.size, p) else ""
                raise AssertionError(
                    f"jacobian w.r.t. argument {nm!r}: expected shape ({p}, {t.size}) (outputs, "
                    f"entries of the argument), got {sub.shape}{hint}"
                )
            sub = sub.reshape(p, t.size)
        yours_cols.append(sub)
    J = np.concatenate(yours_cols, axis=1) if yours_cols else np.zeros((p, 0))
    _compare_jacobian(ref, tree, J, full=full, rtol=rtol, atol=atol, seed=seed, tangents=tangents,
                      what=f"Jacobian of {_fname(f)}", out_shape=out_shape)


def _flatten_blocks(b: Any, t: _Tree, p: int, name: str) -> np.ndarray:
    """A dict/tuple of blocks (one per leaf of the argument) as one (p, size) matrix."""
    blocks = _Tree(b, name)
    cols = []
    for leaf, bl in zip(t.leaves, blocks.leaves, strict=False):
        v = blocks.values[bl.offset : bl.offset + bl.size]
        if v.size != p * leaf.size:
            raise AssertionError(f"jacobian block {leaf.path}: expected ({p}, {leaf.size}), got {bl.shape}")
        cols.append(v.reshape(p, leaf.size))
    if len(cols) != len(t.leaves):
        raise AssertionError(f"jacobian w.r.t. {name!r}: {len(t.leaves)} blocks expected, got {len(cols)}")
    return np.concatenate(cols, axis=1)


def _compare_jacobian(
    ref: _Reference, tree: _Tree, J: np.ndarray, *, full: bool, rtol: float | None, atol: float | None,
    seed: int | None, tangents: int, what: str, out_shape: tuple[int, ...] | None = None,
) -> None:
    __tracebackhide__ = True
    rng = _rng(seed)
    suspects = list(tree.leaves)
    if not full:
        suspects = []
        for leaf in tree.leaves:
            for _ in range(tangents):
                v = np.zeros(tree.size)
                v[leaf.offset : leaf.offset + leaf.size] = rng.standard_normal(leaf.size)
                r, e = ref.jvp(v)
                if np.any(~(np.abs(J @ v - r) <= _allowed(r, e, rtol, atol))):
                    suspects.append(leaf)
                    break
    for leaf in suspects:
        cols = range(leaf.offset, leaf.offset + leaf.size)
        R, E = ref.jacobian(cols)
        msg = _full_jacobian_message(what, J[:, cols.start : cols.stop], R, E, _label(leaf), rtol, atol, out_shape, leaf.shape)
        if msg:
            raise AssertionError(msg)
    if suspects and not full:
        raise AssertionError(f"{what}: a random direction J·v differed, but no single entry did (tolerance too tight?)")


def _label(leaf: _Leaf) -> str:
    if "[" in leaf.path:
        return leaf.path
    return leaf.path if leaf.path.startswith("argument") else f"argument {leaf.path!r}"


@single_blas_thread
def check_jvp(
    f: Callable[..., Any],
    jvp: Callable[..., Any],
    *args: Any,
    rtol: float | None = None,
    atol: float | None = None,
    seed: int | None = 0,
    tangents: int = 3,
    method: str = "auto",
) -> None:
    r"""Assert that ``jvp(*args, *vs)`` is :math:`J v = \sum_a \partial f/\partial x_a \, v_a`.

    Parameters
    ----------
    f : ``f(*args) -> y``.
    jvp : ``jvp(*args, *vs) -> ẏ``: the arguments, then one tangent per argument (each shaped
        like its argument); returns ẏ shaped like y.
    *args : the point (numpy arrays, torch tensors, or nested dicts/tuples of them).
    rtol, atol, seed, method : as in :func:`check_jacobian`; ``tangents`` random directions are
        tried, each argument alone, and on a failure the columns of J for that argument.

    Raises
    ------
    AssertionError
        naming the argument, the output entry, both values and the relative error.
    """
    __tracebackhide__ = True
    A = _Args(f, args)
    tree = _ArgsTree(A)
    ref = _Reference(lambda a: f(*a), tree, method=method)
    rng = _rng(seed)
    point = A.build(A.values)
    for leaf in tree.leaves:
        for _ in range(tangents):
            v = np.zeros(tree.size)
            v[leaf.offset : leaf.offset + leaf.size] = rng.standard_normal(leaf.size)
            r, e = ref.jvp(v)
            yours = _flat_output(jvp(*point, *A.build(v)))
            if yours.shape != r.shape:
                raise AssertionError(f"jvp returned {yours.size} entries, f returns {r.size}")
            allowed = _allowed(r, e, rtol, atol)
            bad, first, worst = _worst(yours, r, allowed)
            if bad.any():
                # the entries of J for this argument tell which column and the likely cause
                cols = range(leaf.offset, leaf.offset + leaf.size)
                R, _E = ref.jacobian(cols)
                Jy = _columns_of(lambda u: _flat_output(jvp(*point, *A.build(u))), tree.size, cols)
                cause = _diagnose(Jy, R)
                msg = (
                    f"JVP of {_fname(f)} along a random tangent of {_label(leaf)} differs at output "
                    f"entry {worst}: " + _values(float(yours[worst]), float(r[worst]), float(allowed[worst]))
                    + f"; {int(bad.sum())} of {bad.size} entries out of tolerance"
                )
                col = _worst(Jy, R, _allowed(R, _E, rtol, atol))[2]
                i, j = np.unravel_index(col, R.shape)
                _, idx = tree.locate(cols.start + j)
                msg += f"; column by column, the worst is output {i}, entry {_entry(idx)} of the argument"
                if cause:
                    msg += f"; likely cause: {cause}"
                raise AssertionError(msg)


def _columns_of(lin: Callable[[np.ndarray], np.ndarray], size: int, cols: range) -> np.ndarray:
    out = []
    for j in cols:
        e = np.zeros(size)
        e[j] = 1.0
        out.append(lin(e))
    return np.stack(out, axis=1)


@single_blas_thread
def check_vjp(
    f: Callable[..., Any],
    vjp: Callable[..., Any],
    *args: Any,
    full: bool = False,
    rtol: float | None = None,
    atol: float | None = None,
    seed: int | None = 0,
    tangents: int = 3,
    method: str = "auto",
) -> None:
    r"""Assert that ``vjp(*args, g)`` is :math:`J^\top g` for each argument.

    Parameters
    ----------
    f : ``f(*args) -> y``.
    vjp : ``vjp(*args, g) -> ḡ``: g shaped like y; ḡ one cotangent per argument (a tuple; the
        bare cotangent for one argument), each shaped like its argument.
    *args : the point (numpy arrays, torch tensors, or nested dicts/tuples of them).
    full : compare every entry of :math:`J^\top g` (k evaluations of f); by default
        :math:`\langle J^\top g, v\rangle = \langle g, J v\rangle` is checked for ``tangents``
        random (g, v) and the entries are computed only for a failing argument.
    rtol, atol, seed, method : as in :func:`check_jacobian`.

    Raises
    ------
    AssertionError
        naming the argument, the entry, both values, the relative error and the likely cause.
    """
    __tracebackhide__ = True
    A = _Args(f, args)
    tree = _ArgsTree(A)
    ref = _Reference(lambda a: f(*a), tree, method=method)
    rng = _rng(seed)
    point = A.build(A.values)
    out = f(*point)
    out_tree = _Tree(out, "y")
    out_tree.torch = A.torch
    for _ in range(1 if full else tangents):
        g = rng.standard_normal(out_tree.size)
        got = vjp(*point, out_tree.build(g))
        if len(args) == 1:
            got = (got,)
        yours = np.concatenate(
            [t.flatten_like(c, f"vjp's cotangent for argument {nm!r}") for nm, t, c in zip(A.names, A.trees, got, strict=True)]
        )
        for leaf in tree.leaves:
            sl = slice(leaf.offset, leaf.offset + leaf.size)
            v = np.zeros(tree.size)
            v[sl] = rng.standard_normal(leaf.size)
            r, e = ref.jvp(v)
            lhs, rhs = float(yours @ v), float(g @ r)
            scale = float(np.abs(yours) @ np.abs(v) + np.abs(g) @ np.abs(r))
            tol = _scalar_tol(float(np.abs(g) @ e), scale, rtol, atol)
            if full or not abs(lhs - rhs) <= tol:
                extra = ""
                if g.size == leaf.size and leaf.size <= SQUARE_BUDGET:
                    R, E = ref.jacobian(range(sl.start, sl.stop))
                    refv, errv, rows = g @ R, np.abs(g) @ E, None
                    if not _close(R, R.T) and _close(yours[sl], R @ g):
                        extra = "a transpose: yours equals J g, not Jᵀ g (the error vanishes on Jᵀ)"
                else:
                    refv, errv, rows = _cotangent_entries(ref, g, yours[sl], leaf, tree.size, rng, rtol, atol)
                msg = _vector_message(
                    f"VJP of {_fname(f)} (Jᵀg, random g)", _label(leaf), leaf, yours[sl], refv, errv, rtol, atol,
                    cause=extra, rows=rows,
                )
                if msg:
                    raise AssertionError(msg)


def _scalar_tol(err: float, scale: float, rtol: float | None, atol: float | None) -> float:
    if rtol is not None or atol is not None:
        return (atol or 0.0) + (rtol or 0.0) * scale
    return SAFETY * err + 10 * ROUNDING * scale + 1e-300


#: the most entries of one parameter computed one by one on a failure (a square matrix: up to 4096,
#: so that a transpose can be recognised); above it, rows are checked first and only a few computed
ENTRY_BUDGET = 1024
SQUARE_BUDGET = 4096


@dataclass(frozen=True)
class _Rows:
    computed: np.ndarray  # row indices whose entries were computed
    bad: np.ndarray  # (rows,) bool: the row failed its random-direction check
    note: str


def _cotangent_entries(
    ref: _Reference, g: np.ndarray, yours: np.ndarray, leaf: _Leaf, total: int, rng: np.random.Generator,
    rtol: float | None, atol: float | None,
) -> tuple[np.ndarray, np.ndarray, _Rows | None]:
    """The reference ``(gᵀ J)`` restricted to ``leaf``: every entry, or for a large leaf the rows
    that fail a one-direction check (the first and the worst), the others set equal to yours."""
    square = len(leaf.shape) == 2 and leaf.shape[0] == leaf.shape[1]
    budget = SQUARE_BUDGET if square else ENTRY_BUDGET
    cols = range(leaf.offset, leaf.offset + leaf.size)
    if leaf.size <= budget or not leaf.shape:
        R, E = ref.jacobian(cols)
        return g @ R, np.abs(g) @ E, None
    n_rows = leaf.shape[0]
    width = leaf.size // n_rows
    ratios = np.zeros(n_rows)
    for r in range(n_rows):
        v = np.zeros(total)
        lo = leaf.offset + r * width
        v[lo : lo + width] = rng.standard_normal(width)
        jv, e = ref.jvp(v)
        lhs, rhs = float(yours[r * width : (r + 1) * width] @ v[lo : lo + width]), float(g @ jv)
        scale = float(np.abs(yours[r * width : (r + 1) * width]) @ np.abs(v[lo : lo + width]) + np.abs(g) @ np.abs(jv))
        ratios[r] = abs(lhs - rhs) / _scalar_tol(float(np.abs(g) @ e), scale, rtol, atol)
    bad = ~(ratios <= 1.0)
    order = [int(np.argmax(bad))] if bad.any() else []
    order += [int(r) for r in np.argsort(-ratios) if bad[r] and int(r) not in order]
    chosen = np.array(sorted(order[: max(1, budget // width)]), dtype=int)
    refv, errv = yours.copy(), np.zeros(leaf.size)
    for r in chosen:
        R, E = ref.jacobian(range(leaf.offset + r * width, leaf.offset + (r + 1) * width))
        refv[r * width : (r + 1) * width] = g @ R
        errv[r * width : (r + 1) * width] = np.abs(g) @ E
    note = (
        f" [{leaf.size} entries: each of the {n_rows} rows was checked along one random direction, "
        f"{int(bad.sum())} of {n_rows} rows wrong; entries computed in {chosen.size} of them, the first and the worst]"
    )
    return refv, errv, _Rows(chosen, bad, note)


def _vector_message(
    what: str, label: str, leaf: _Leaf, yours: np.ndarray, ref: np.ndarray, err: np.ndarray,
    rtol: float | None, atol: float | None, *, extra: str = "", gate_rows: int | None = None,
    cause: str = "", rows: _Rows | None = None,
) -> str | None:
    allowed = _allowed(ref, err, rtol, atol)
    bad, first, worst = _worst(yours, ref, allowed)
    if not bad.any():
        return None
    shape = leaf.shape
    idx = np.unravel_index(worst, shape) if shape else ()
    fidx = np.unravel_index(first, shape) if shape else ()
    msg = (
        f"{what} w.r.t. {label}{extra} differs at entry {_entry(tuple(map(int, idx)))}"
        + _gate(shape, tuple(map(int, idx)), gate_rows)
        + ": " + _values(float(yours[worst]), float(ref[worst]), float(allowed[worst]))
        + (f"; {int(bad.sum())} of {bad.size} entries out of tolerance" if rows is None else
           f"; {int(bad.sum())} of the {rows.computed.size * (bad.size // shape[0])} computed entries out of tolerance")
    )
    if first != worst:
        msg += f" (the first is entry {_entry(tuple(map(int, fidx)))})"
    if rows is not None:
        msg += rows.note
        cause = cause or _diagnose(yours.reshape(shape)[rows.computed].ravel(), ref.reshape(shape)[rows.computed].ravel())
    else:
        cause = cause or _diagnose(yours.reshape(shape), ref.reshape(shape), time_axis=True)
    if not cause and gate_rows and len(shape) >= 1 and shape[0] % gate_rows == 0 and shape[0] > gate_rows:
        row_bad = rows.bad if rows is not None else bad.reshape(shape[0], -1).any(axis=1)
        wrong_blocks = [
            b for b in range(shape[0] // gate_rows) if row_bad[b * gate_rows : (b + 1) * gate_rows].any()
        ]
        if len(wrong_blocks) < shape[0] // gate_rows:
            cause = f"only gate block(s) {wrong_blocks} are wrong: look at that gate's derivative"
    if cause:
        msg += f"; likely cause: {cause}"
    return msg


def _gate(shape: tuple[int, ...], idx: tuple[int, ...], gate_rows: int | None) -> str:
    if not gate_rows or not shape or shape[0] <= gate_rows or shape[0] % gate_rows:
        return ""
    b, r = divmod(idx[0], gate_rows)
    return f" (gate block {b} of 0..{shape[0] // gate_rows - 1}, row {r} of that block)"


@single_blas_thread
def check_gradient(
    loss: Callable[[Any], Any],
    grad: Callable[[Any], Any],
    params: Any,
    *,
    full: bool = False,
    rtol: float | None = None,
    atol: float | None = None,
    seed: int | None = 0,
    tangents: int = 3,
    method: str = "auto",
) -> None:
    r"""Assert that ``grad(params)`` is :math:`\nabla_\theta \ell(\theta)` for a scalar loss.

    Parameters
    ----------
    loss : ``loss(params) -> ℓ`` (a scalar, a 0-d array or a 0-d tensor).
    grad : ``grad(params)`` structured like ``params`` (e.g. a dict of arrays keyed alike).
    params : an array, a tensor, or a (nested) dict/tuple of them.
    full, rtol, atol, seed, method : as in :func:`check_jacobian` (``tangents`` random directions
        per parameter; every entry of a failing parameter is then computed).

    Raises
    ------
    AssertionError
        naming the parameter, the entry (and gate block), both values, the relative error and
        the likely cause.
    """
    __tracebackhide__ = True
    tree = _Tree(params, "params")
    ref = _Reference(loss, tree, method=method)
    if ref.f0.shape != (1,):
        raise AssertionError(f"loss must return a scalar, got {ref.f0.size} values")
    yours = tree.flatten_like(grad(tree.build(tree.values)), "grad(params)")
    rng = _rng(seed)
    for leaf in tree.leaves:
        sl = slice(leaf.offset, leaf.offset + leaf.size)
        suspect = full
        for _ in range(0 if full else tangents):
            v = np.zeros(tree.size)
            v[sl] = rng.standard_normal(leaf.size)
            r, e = ref.jvp(v)
            scale = float(np.abs(yours) @ np.abs(v) + abs(r[0]))
            if not abs(float(yours @ v) - float(r[0])) <= _scalar_tol(float(e[0]), scale, rtol, atol):
                suspect = True
                break
        if suspect:
            refv, errv, rows = _cotangent_entries(ref, np.ones(1), yours[sl], leaf, tree.size, rng, rtol, atol)
            msg = _vector_message(f"gradient of {_fname(loss)}", leaf.path, leaf, yours[sl], refv, errv, rtol, atol, rows=rows)
            if msg:
                raise AssertionError(msg)


# ----------------------------------------------------------------------------------------------
# Recurrent: BPTT with the user's one-step VJP
# ----------------------------------------------------------------------------------------------


@single_blas_thread
def check_recurrent_backward(
    step: Callable[[Any, Any, Any], Any],
    step_backward: Callable[[Any, Any, Any, Any], Any],
    params: Any,
    xs: Any,
    s0: Any,
    *,
    rtol: float | None = None,
    atol: float | None = None,
    seed: int | None = 0,
    method: str = "auto",
) -> None:
    r"""Assert that BPTT with your ``step_backward`` gives :math:`\partial\ell/\partial\theta` and :math:`\partial\ell/\partial s_0`.

    With :math:`s_t = \mathrm{step}(\theta, s_{t-1}, x_t)` and a random linear loss
    :math:`\ell = \sum_{t=1}^{T} w_t^\top s_t`, gradproof runs back-propagation through time
    (Werbos, Proc. IEEE 78, 1990) with your VJP:

    .. math::
        \bar s_T = w_T,\quad (\bar s_{t-1} - w_{t-1}, \bar\theta_t) = \mathrm{step\_backward}(\theta, s_{t-1}, x_t, \bar s_t),
        \quad \partial\ell/\partial\theta = \textstyle\sum_t \bar\theta_t,

    and checks every step's VJP against the reference (the complex step, or Richardson, through
    your forward ``step``): :math:`\langle \bar s_t, J_t v\rangle = \langle (g_s, g_\theta), v\rangle`
    for a random v, then the totals along a random direction through the whole sequence.

    Parameters
    ----------
    step : ``step(params, s, x) -> s_next``; s an array (hidden,) or a tuple such as (h, c).
    step_backward : ``step_backward(params, s, x, g) -> (g_s, g_params)``: g shaped like s_next,
        g_s like s, g_params keyed like params.
    params : a dict (or any tree) of arrays or tensors.
    xs : (T, inputs) array or tensor (or a sequence of T inputs).
    s0 : the initial state, shaped like s.
    rtol, atol, seed, method : as in :func:`check_jacobian`.

    Raises
    ------
    AssertionError
        naming the parameter (or the state), the entry and its gate block, the first wrong time
        step (and the worst), both values, the relative error and the likely cause.
    """
    __tracebackhide__ = True
    P = _Tree(params, "params")
    S = _Tree(s0, "s")
    torch_mode = P.torch or S.torch or _is_torch(xs)
    P.torch = S.torch = torch_mode
    xs_np = [_to_numpy(x).astype(np.float64) for x in xs]
    T = len(xs_np)

    def as_user_x(x: np.ndarray) -> Any:
        if torch_mode:
            import torch as _torch

            return _torch.from_numpy(x.copy())
        return x

    xs_user = [as_user_x(x) for x in xs_np]
    params_user = P.build(P.values)
    n_state = S.size
    n_first = S.leaves[0].size if S.leaves else n_state

    # the forward pass (the user's step, real)
    states = [S.values]
    for t in range(T):
        nxt = _flat_output(step(params_user, S.build(states[-1]), xs_user[t]))
        if nxt.shape != (n_state,):
            raise AssertionError(f"step returned {nxt.size} numbers for a state of {n_state}")
        states.append(nxt.real.astype(np.float64))
    rng = _rng(seed)
    w = rng.standard_normal((T, n_state))

    # BPTT with the user's step_backward
    g_in: list[np.ndarray] = [np.zeros(0)] * T
    g_s_out: list[np.ndarray] = [np.zeros(0)] * T
    g_p_out: list[np.ndarray] = [np.zeros(0)] * T
    carry = np.zeros(n_state)
    for t in range(T - 1, -1, -1):
        g = w[t] + carry
        g_in[t] = g
        res = step_backward(params_user, S.build(states[t]), xs_user[t], S.build(g))
        if not isinstance(res, tuple | list) or len(res) != 2:
            raise AssertionError("step_backward must return a pair (g_s, g_params)")
        g_s_out[t] = S.flatten_like(res[0], "step_backward's g_s")
        g_p_out[t] = P.flatten_like(res[1], "step_backward's g_params")
        carry = g_s_out[t]
    total_p = np.sum(g_p_out, axis=0) if T else np.zeros(P.size)
    total_s0 = carry

    # the reference, one step at a time: f_t(params, s) = step(params, s, x_t)
    joint = np.concatenate([P.values, np.zeros(n_state)])

    class _StepTree(_Tree):
        def __init__(self) -> None:  # noqa: D107 - a view over (params, s)
            self.values = joint
            self.leaves = list(P.leaves) + [_Leaf(leaf.path, leaf.shape, P.size + leaf.offset) for leaf in S.leaves]
            self.torch = torch_mode

        def build(self, flat: np.ndarray, *, torch: bool | None = None) -> Any:
            return P.build(flat[: P.size]), S.build(flat[P.size :])

    def reference_at(t: int) -> _Reference:
        tree = _StepTree()
        tree.values = np.concatenate([P.values, states[t]])
        r = _Reference(lambda ps, t=t: step(ps[0], ps[1], xs_user[t]), tree, method=chosen[0])
        return r

    chosen = [method if method != "auto" else "auto"]
    per_step_bad: list[tuple[int, float]] = []
    for t in range(T):
        ref = reference_at(t)
        v = rng.standard_normal(P.size + n_state)
        r, e = ref.jvp(v)
        if chosen[0] == "auto":
            chosen[0] = ref.method or "auto"
        yours_dot = float(g_p_out[t] @ v[: P.size] + g_s_out[t] @ v[P.size :])
        ref_dot = float(g_in[t] @ r)
        scale = float(np.abs(g_p_out[t]) @ np.abs(v[: P.size]) + np.abs(g_s_out[t]) @ np.abs(v[P.size :])
                      + np.abs(g_in[t]) @ np.abs(r))
        tol = _scalar_tol(float(np.abs(g_in[t]) @ e), scale, rtol, atol)
        if not abs(yours_dot - ref_dot) <= tol:
            per_step_bad.append((t, abs(yours_dot - ref_dot) / max(tol, 1e-300)))

    if per_step_bad:
        first = per_step_bad[0][0]
        worst = max(per_step_bad, key=lambda p: p[1])[0]
        ref = reference_at(first)
        tree = _StepTree()
        steps_txt = (
            f"first wrong at step {first + 1} of {T} (steps counted from 1; "
            f"{len(per_step_bad)} of {T} steps wrong, the worst is step {worst + 1})"
        )
        for leaf in tree.leaves:
            is_state = leaf.offset >= P.size
            sl = slice(leaf.offset, leaf.offset + leaf.size)
            v = np.zeros(P.size + n_state)
            v[sl] = rng.standard_normal(leaf.size)
            r, e = ref.jvp(v)
            yours_flat = np.concatenate([g_p_out[first], g_s_out[first]])
            lhs, rhs = float(yours_flat @ v), float(g_in[first] @ r)
            scale = float(np.abs(yours_flat) @ np.abs(v) + np.abs(g_in[first]) @ np.abs(r))
            if abs(lhs - rhs) <= _scalar_tol(float(np.abs(g_in[first]) @ e), scale, rtol, atol):
                continue
            refv, errv, rows = _cotangent_entries(ref, g_in[first], yours_flat[sl], leaf, P.size + n_state, rng, rtol, atol)
            label = (f"the state {leaf.path} (g_s)" if is_state else f"{leaf.path}")
            msg = _vector_message(
                f"step_backward's gradient at step {first + 1}", label, leaf, yours_flat[sl], refv, errv,
                rtol, atol, gate_rows=None if is_state else n_first, rows=rows,
            )
            if msg is None:
                continue
            shift = _off_by_one(first, per_step_bad, reference_at, g_in, yours_flat_of=lambda t: np.concatenate([g_p_out[t], g_s_out[t]]),
                                rng=rng, size=P.size + n_state, rtol=rtol, atol=atol)
            loss_what = "∂loss/∂s0" if is_state else f"∂loss/∂{leaf.path}"
            text = f"{loss_what} is wrong: {steps_txt}. " + msg
            if shift and "likely cause" not in text:
                text += f"; likely cause: {shift}"
            raise AssertionError(text)
        raise AssertionError(f"step_backward is wrong: {steps_txt}, though no single entry exceeded the tolerance")

    # the totals, end to end, along one random direction through the whole sequence
    def whole(ps: Any) -> Any:
        p_, s_ = ps
        out = 0.0
        for t in range(T):
            s_ = step(p_, s_, xs_user[t])
            out = out + w[t] @ _flat_output(s_)
        return out

    tree = _StepTree()
    tree.values = np.concatenate([P.values, S.values])
    ref = _Reference(lambda ps: whole(ps), tree, method=chosen[0] if chosen[0] != "auto" else "auto")
    v = rng.standard_normal(P.size + n_state)
    r, e = ref.jvp(v)
    yours_total = np.concatenate([total_p, total_s0])
    lhs = float(yours_total @ v)
    scale = float(np.abs(yours_total) @ np.abs(v) + abs(r[0]))
    if not abs(lhs - float(r[0])) <= _scalar_tol(float(e[0]), scale, rtol, atol):
        raise AssertionError(
            f"BPTT totals ∂loss/∂(params, s0) along a random direction: yours = {lhs!r}, reference = "
            f"{float(r[0])!r}, relative error {_relerr(lhs, float(r[0]))}, though every step's VJP passed "
            "(does step depend on something that changes between calls?)"
        )


def _off_by_one(first, per_step_bad, reference_at, g_in, *, yours_flat_of, rng, size, rtol, atol) -> str:
    """Does your VJP at a wrong step t match the reference VJP at step t-1 or t+1 (same g)?"""
    bad_steps = [t for t, _ in per_step_bad]
    T = len(g_in)
    for t in bad_steps[:3]:
        v = rng.standard_normal(size)
        lhs = float(yours_flat_of(t) @ v)
        for d, word in ((-1, "previous"), (1, "next")):
            u = t + d
            if not 0 <= u < T:
                continue
            r, e = reference_at(u).jvp(v)
            rhs = float(g_in[t] @ r)
            scale = abs(lhs) + float(np.abs(g_in[t]) @ np.abs(r))
            if abs(lhs - rhs) <= _scalar_tol(float(np.abs(g_in[t]) @ e), scale, rtol, atol):
                return (
                    f"one step off in time: your step_backward at step {t + 1} equals the derivative at "
                    f"the {word} step ({u + 1}); does it use the {word} step's state or input?"
                )
    return ""
