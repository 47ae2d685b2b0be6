"""TikZ diagrams drawn from a cell's own definitions: the cell's graph and the unrolled recurrence.

Nothing here is drawn by hand. :func:`cell_graph` reads a :class:`~gradproof.derive.Cell`'s ordered
definitions: one node per previous state block, the input and each defined symbol (gates,
intermediates, new state blocks, in the order of the definitions), one edge ``u -> v`` for each
symbol ``u`` the definition of ``v`` uses. A direct state-to-state edge ``s_i^{(t-1)} -> s_i^{(t)}``
is labelled with the derivative along that edge alone, computed by gradproof's chain rule
(:func:`gradproof.derive.algebra.jacobian` with every other symbol held fixed), e.g.
``diag(f^{(t)})`` on the LSTM's cell path; when that edge is the only way from ``s_i^{(t-1)}`` to
``s_i^{(t)}`` it is the whole block of the step Jacobian and the label says so. So a user-defined
cell (:func:`gradproof.derive.define_cell`) gets the same diagram as the built-in ones.

:func:`unrolled_tikz` draws the recurrence unrolled over time (Goodfellow, Bengio and Courville
2016, §10.1, unfolding a computational graph): states ``s^{(0)} -> s^{(1)} -> … ->
s^{(T)}`` named after the cell's state blocks, inputs ``x^{(t)}``, losses ``J^{(t)}``, and the
backward flow: ``∂J^{(t)}/∂s^{(t)}`` into each state and the step Jacobian
``∂s^{(t)}/∂s^{(t-1)}`` on each backward edge.

The pictures need ``\\usepackage{tikz}`` and the libraries in :data:`TIKZ_LIBRARIES`
(Debian: texlive-pictures); :func:`tikz_document` wraps pictures in a small compilable document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import sympy as sp

from ..derive.algebra import Diag, JacobianSymbol, jacobian, latex, terms_to_expr
from ..derive.cells import Cell, cell as _cell
from ..derive.errors import GradproofError
from ..derive.jacobians import state_symbols

__all__ = [
    "TIKZ_LIBRARIES",
    "CellGraph",
    "cell_graph",
    "cell_tikz",
    "unrolled_tikz",
    "tikz_document",
]

#: The TikZ libraries the pictures use (each must load with ``\usetikzlibrary``).
TIKZ_LIBRARIES: tuple[str, ...] = ("arrows.meta",)

# Styles, self-contained (named xcolor colours only), so a picture compiles in any document.
_STYLES = (
    r">={Stealth[length=1.6mm]}, font=\small, baseline=(current bounding box.north),"
    r" state/.style={draw, rounded corners=2pt, fill=blue!8, minimum height=6mm, inner sep=2pt},"
    r" inner/.style={draw, circle, fill=orange!12, minimum size=7mm, inner sep=1pt},"
    r" input/.style={draw, dashed, rounded corners=2pt, minimum height=6mm, inner sep=2pt},"
    r" loss/.style={draw, fill=black!6, minimum height=6mm, inner sep=2pt},"
    r" dep/.style={->, black!70},"
    r" path/.style={->, line width=1.6pt, teal!75!black},"
    r" back/.style={->, dashed, red!70!black},"
    r" lab/.style={font=\scriptsize, fill=white, inner sep=1pt}"
)


@dataclass(frozen=True)
class CellGraph:
    """The dependency graph of a cell's definitions.

    Attributes
    ----------
    cell : the cell drawn.
    nodes : every node, in order: the previous state blocks, the input, then each defined symbol in
        the order of the definitions.
    kinds : node -> ``"previous"``, ``"input"``, ``"intermediate"`` or ``"state"`` (a new state block).
    edges : ``(u, v)`` for each node ``u`` the definition of ``v`` uses, in definition order.
    marked : the direct state-to-state edges ``s_i^{(t-1)} -> s_i^{(t)}`` (the LSTM's cell path).
    labels : marked edge -> the derivative along that edge alone (a SymPy matrix expression).
    whole_block : the marked edges whose label is the whole block of the step Jacobian.
    positions : node -> (column, row) of the drawing (column = longest chain from the inputs).
    """

    cell: Cell
    nodes: tuple[sp.MatrixSymbol, ...]
    kinds: dict[sp.MatrixSymbol, str]
    edges: tuple[tuple[sp.MatrixSymbol, sp.MatrixSymbol], ...]
    marked: frozenset[tuple[sp.MatrixSymbol, sp.MatrixSymbol]]
    labels: dict[tuple[sp.MatrixSymbol, sp.MatrixSymbol], sp.Expr]
    whole_block: frozenset[tuple[sp.MatrixSymbol, sp.MatrixSymbol]]
    positions: dict[sp.MatrixSymbol, tuple[int, float]]


def cell_graph(cell: Cell | str) -> CellGraph:
    """The dependency graph of ``cell``'s definitions (see :class:`CellGraph`).

    Parameters
    ----------
    cell : a :class:`~gradproof.derive.Cell` or a cell name (``"lstm"``, ``"gru"``, ``"mgu"``, …).

    Returns
    -------
    CellGraph : nodes in definition order, edges ``u -> v`` for ``u`` a free symbol of the definition
        of ``v`` (parameters are not nodes), marked state-to-state edges with their Jacobians.

    Examples
    --------
    >>> from gradproof.derive import latex
    >>> g = cell_graph("lstm")
    >>> [(u.name, v.name) for u, v in g.marked]
    [('c^{(t-1)}', 'c^{(t)}')]
    >>> print(latex(g.labels[next(iter(g.marked))]))
    \\operatorname{diag}\\left(f^{(t)}\\right)
    >>> [u.name for u, v in g.edges if v.name == "h^{(t)}"]
    ['o^{(t)}', 'c^{(t)}']
    """
    return _cell_graph(_cell(cell))


@lru_cache(maxsize=None)
def _cell_graph(c: Cell) -> CellGraph:
    prev, nxt = tuple(c.state_previous), tuple(c.state_next)
    defs = tuple(c.definitions)
    if not defs:
        raise GradproofError(f"cell {c.name!r} has no definitions to draw; define at least its state")
    kinds: dict[sp.MatrixSymbol, str] = {s: "previous" for s in prev}
    kinds[c.input] = "input"
    for lhs, _ in defs:
        kinds[lhs] = "state" if lhs in nxt else "intermediate"
    nodes = tuple(kinds)
    edges: list[tuple[sp.MatrixSymbol, sp.MatrixSymbol]] = []
    column: dict[sp.MatrixSymbol, int] = {s: 0 for s in (*prev, c.input)}
    for lhs, rhs in defs:
        used = rhs.atoms(sp.MatrixSymbol)
        srcs = [u for u in nodes if u in used and u in column]  # node order, defined before lhs
        edges += [(u, lhs) for u in srcs]
        column[lhs] = 1 + max((column[u] for u in srcs), default=0)
    # direct state-to-state edges, their own derivative, and whether that is the whole block: it is
    # when the edge is the only path from s_i^{(t-1)} to s_i^{(t)} (the chain rule sums over paths)
    marked, labels, whole = set(), {}, set()
    rhs_of = dict(defs)
    for p, s in zip(prev, nxt):
        if (p, s) in edges:
            marked.add((p, s))
            labels[(p, s)] = terms_to_expr(jacobian(rhs_of[s], p, {}, gate_form=c.gate_form), s.shape[0],
                                           p.shape[0])  # fmt: skip
            if not _other_path(edges, p, s):
                whole.add((p, s))
    return CellGraph(c, nodes, kinds, tuple(edges), frozenset(marked), labels, frozenset(whole),
                     _layout(nodes, kinds, column, prev, nxt, marked))  # fmt: skip


def _is_diagonal(e: sp.Expr) -> bool:
    """Whether a structured Jacobian is a sum/product of diag(·), I and numbers (no weight matrix)."""
    if isinstance(e, Diag | sp.Identity):
        return True
    if isinstance(e, sp.MatMul | sp.MatAdd):
        return all(a.is_number or _is_diagonal(a) for a in e.args)
    return False


def _other_path(edges: list[tuple[sp.MatrixSymbol, sp.MatrixSymbol]], a: sp.MatrixSymbol,
                b: sp.MatrixSymbol) -> bool:
    """Whether ``b`` is reachable from ``a`` other than by the edge ``a -> b`` itself."""
    seen, todo = set(), [v for u, v in edges if u == a and v != b]
    while todo:
        v = todo.pop()
        if v == b:
            return True
        if v not in seen:
            seen.add(v)
            todo += [w for u, w in edges if u == v]
    return False


def _layout(nodes, kinds, column, prev, nxt, marked) -> dict[sp.MatrixSymbol, tuple[int, float]]:
    """Columns by longest chain; a band of state rows on top (states with a direct path first, so
    that path is a straight line above everything else), the other nodes below it."""
    order = [i for i in range(len(prev)) if (prev[i], nxt[i]) in marked]
    order += [i for i in range(len(prev)) if i not in order]
    pos: dict[sp.MatrixSymbol, tuple[int, float]] = {}
    for row, i in enumerate(order):
        pos[prev[i]] = (0, float(row))
        if nxt[i] in column:
            pos[nxt[i]] = (column[nxt[i]], float(row))
    band = len(order)
    rest: dict[int, list[sp.MatrixSymbol]] = {}
    for v in nodes:
        if v not in pos and kinds[v] != "input":
            rest.setdefault(column[v], []).append(v)
    tallest = max((len(vs) for vs in rest.values()), default=1)
    for col, vs in rest.items():
        top = band + (tallest - len(vs)) / 2
        for k, v in enumerate(vs):
            pos[v] = (col, top + k)
    x = nodes[len(prev)]
    pos[x] = (0, band + (tallest - 1) / 2 if rest else float(band))
    return pos


def _route(g: CellGraph, u: sp.MatrixSymbol, v: sp.MatrixSymbol) -> str:
    """``--`` for a straight edge, or a bend away from a node the straight line would cross."""
    (c0, r0), (c1, r1) = g.positions[u], g.positions[v]
    for w, (c, r) in g.positions.items():
        if w in (u, v) or not min(c0, c1) < c < max(c0, c1):
            continue
        on_line = r0 + (r1 - r0) * (c - c0) / (c1 - c0)
        if abs(r - on_line) < 0.45:
            # rows grow downwards: a node at or above the line -> curve below it, else above
            below = r <= on_line
            return "to[bend right=22]" if below == (c1 > c0) else "to[bend left=22]"
    return "--"


def _node_id(i: int) -> str:
    return f"n{i}"


def cell_tikz(cell: Cell | str, *, column_width: float = 2.5, row_height: float = 1.05,
              legend: bool = True, title: str | None = None,
              names: Mapping[sp.MatrixSymbol, sp.MatrixSymbol] | None = None) -> str:
    r"""The cell's graph as a ``tikzpicture`` (LaTeX), drawn from :func:`cell_graph`.

    Parameters
    ----------
    cell : a cell or a cell name.
    column_width, row_height : spacing in cm.
    legend : add a legend under the picture explaining the marked path and the edges.
    title : LaTeX text set above the picture (e.g. which form of the cell), or None.
    names : symbols printed under another name (a report's notation, e.g. PyTorch's ``z`` as ``ζ``).

    Returns
    -------
    str : ``\begin{tikzpicture} … \end{tikzpicture}``; needs ``tikz`` with :data:`TIKZ_LIBRARIES`.
    """
    g = cell_graph(cell)
    rename = dict(names or {})

    def tex(e: sp.Expr) -> str:
        return latex(e.xreplace(rename))

    ids = {v: _node_id(i) for i, v in enumerate(g.nodes)}
    style = {"previous": "state", "state": "state", "input": "input", "intermediate": "inner"}
    lines = [rf"\begin{{tikzpicture}}[{_STYLES}]"]
    for v in g.nodes:
        col, row = g.positions[v]
        lines.append(rf"\node[{style[g.kinds[v]]}] ({ids[v]}) at ({col * column_width:.3f},{-row * row_height:.3f}) "
                     rf"{{${tex(v)}$}};")  # fmt: skip
    if title:
        right = max(c for c, _ in g.positions.values()) * column_width
        lines.append(rf"\node[font=\small\bfseries] at ({right / 2:.3f},{1.25 * row_height:.3f}) {{{title}}};")
    for u, v in g.edges:
        if (u, v) in g.marked:
            label = tex(g.labels[(u, v)])
            if (u, v) in g.whole_block:
                label = tex(JacobianSymbol(v, u)) + " = " + label
            lines.append(rf"\draw[path] ({ids[u]}) -- node[lab, above=1pt] {{$\displaystyle {label}$}} ({ids[v]});")
        else:
            lines.append(rf"\draw[dep] ({ids[u]}) {_route(g, u, v)} ({ids[v]});")
    if legend:
        bottom = max(r for _, r in g.positions.values()) + 0.9
        width = max(c for c, _ in g.positions.values()) * column_width
        y = -bottom * row_height
        if g.marked:
            diagonal = all(_is_diagonal(e) for e in g.labels.values())
            lines.append(rf"\draw[path] (0,{y:.3f}) -- (0.8,{y:.3f}) node[right, text=black, font=\scriptsize, "
                         rf"text width={max(width - 0.9, 8):.2f}cm, align=left] "
                         r"{direct state-to-state path, labelled with its Jacobian along that edge alone"
                         + (r" (a diagonal matrix: no weight matrix on it)}" if diagonal else "}") + ";")  # fmt: skip
            y -= 0.55
        y2 = y
        lines.append(rf"\draw[dep] (0,{y2:.3f}) -- (0.8,{y2:.3f}) node[right, font=\scriptsize] "
                     r"{$a \to b$: the definition of $b$ uses $a$ (parameters not drawn)};")  # fmt: skip
    lines.append(r"\end{tikzpicture}")
    return "\n".join(lines)


def _at(sym: sp.MatrixSymbol, index: str) -> sp.MatrixSymbol:
    """``h^{(t)}`` -> ``h^{(index)}`` (same block, another time step)."""
    base = sym.name.split("^")[0]
    return sp.MatrixSymbol(f"{base}^{{({index})}}", *sym.shape)


def unrolled_tikz(cell: Cell | str, *, spacing: float = 2.25) -> str:
    r"""The recurrence unrolled over time with its backward flow, as a ``tikzpicture``.

    Steps ``0, 1, …, t-1, t, …, T``; each state node shows the cell's state blocks at that step
    (``h^{(t)}``, or ``h^{(t)}, c^{(t)}`` for the LSTM). Forward edges ``s^{(t-1)} -> s^{(t)}``,
    ``x^{(t)} -> s^{(t)}``, ``s^{(t)} -> J^{(t)}``; backward (dashed) ``∂J^{(t)}/∂s^{(t)}`` into each
    state and ``∂s^{(t)}/∂s^{(t-1)}``, the step Jacobian (numerator layout), from ``s^{(t)}`` back to
    ``s^{(t-1)}``.

    Parameters
    ----------
    cell : a cell or a cell name.
    spacing : horizontal distance between steps in cm.

    Returns
    -------
    str : ``\begin{tikzpicture} … \end{tikzpicture}``.
    """
    c = _cell(cell)
    _, s = state_symbols(c)
    blocks = tuple(c.state_next)
    steps = ["0", "1", None, "t-1", "t", None, "T"]
    J = sp.MatrixSymbol("J^{(t)}", 1, 1)
    lines = [rf"\begin{{tikzpicture}}[{_STYLES}]"]
    for k, idx in enumerate(steps):
        x = k * spacing
        if idx is None:
            lines.append(rf"\node (s{k}) at ({x:.3f},0) {{$\cdots$}};")
            continue
        label = r"\\ ".join(f"${latex(_at(b, idx))}$" for b in blocks)
        lines.append(rf"\node[state, align=center] (s{k}) at ({x:.3f},0) {{{label}}};")
        if idx != "0":
            lines.append(rf"\node[input] (x{k}) at ({x:.3f},-1.7) {{${latex(_at(c.input, idx))}$}};")
            lines.append(rf"\node[loss] (J{k}) at ({x:.3f},1.7) {{${latex(_at(J, idx))}$}};")
            lines.append(rf"\draw[dep] (x{k}) -- (s{k});")
            lines.append(rf"\draw[dep] ([xshift=-3pt]s{k}.north) -- ([xshift=-3pt]J{k}.south);")
            lines.append(rf"\draw[back] ([xshift=3pt]J{k}.south) -- node[lab, right=1pt] "
                         rf"{{$\frac{{\partial {latex(_at(J, idx))}}}{{\partial {latex(_at(s, idx))}}}$}} "
                         rf"([xshift=3pt]s{k}.north);")  # fmt: skip
    for k in range(1, len(steps)):
        a, b = steps[k - 1], steps[k]
        lines.append(rf"\draw[dep] (s{k - 1}) -- (s{k});")
        jac = ""
        if a is not None and b is not None:
            jac = rf"node[lab, below=1pt] {{${latex(JacobianSymbol(_at(s, b), _at(s, a)))}$}}"
        lines.append(rf"\draw[back] (s{k}.south west) to[bend left=35] {jac} (s{k - 1}.south east);")
    y = -2.6
    lines.append(rf"\draw[dep] (0,{y}) -- (0.8,{y}) node[right, font=\scriptsize] {{forward pass}};")
    lines.append(rf"\draw[back] (4.2,{y}) -- (5.0,{y}) node[right, font=\scriptsize] "
                 r"{backward pass: the gradient flows back through the step Jacobians};")  # fmt: skip
    lines.append(r"\end{tikzpicture}")
    return "\n".join(lines)


def tikz_document(*pictures: str) -> str:
    """A small compilable LaTeX document holding ``pictures`` (for checks and for users)."""
    libs = ",".join(TIKZ_LIBRARIES)
    body = "\n\n\\bigskip\n\n".join(pictures)
    return (
        "\\documentclass{article}\n\\usepackage[a4paper,margin=2.2cm]{geometry}\n\\usepackage{amsmath}\n\\usepackage{tikz}\n"
        f"\\usetikzlibrary{{{libs}}}\n\\pagestyle{{empty}}\n\\begin{{document}}\n{body}\n\\end{{document}}\n"
    )
