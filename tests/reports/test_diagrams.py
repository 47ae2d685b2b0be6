"""The diagrams drawn from the cells (reports.diagrams): graph = the definitions' dependency structure,
labels = the chain rule along one edge (checked against Matrix.jacobian), and the TikZ compiles."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import sympy as sp

from gradproof import derive
from gradproof.derive.algebra import M, N, explicit
from gradproof.derive.define import shipped_cell
from gradproof.derive.errors import GradproofError
from gradproof.reports import diagrams
from gradproof.reports.latex import render_report

ROOT = Path(__file__).resolve().parents[2]
CELLS = ("rnn-tanh", "lstm", "gru", "gru-torch", "mgu", "lstm-peephole", "lstm-coupled", "indrnn")


def _cell(name: str) -> derive.Cell:
    return shipped_cell(name) if name in ("mgu", "lstm-peephole", "lstm-coupled", "indrnn") else derive.cell(name)


def _expected(c: derive.Cell):
    """Nodes and edges computed here from the SymPy definitions' free symbols."""
    known = [*c.state_previous, c.input]
    edges = set()
    for lhs, rhs in c.definitions:
        for s in rhs.free_symbols:
            if s in known:
                edges.add((s, lhs))
        known.append(lhs)
    return known, edges


@pytest.mark.parametrize("name", CELLS)
def test_nodes_and_edges_are_the_definitions_dependency_structure(name):
    c = _cell(name)
    g = diagrams.cell_graph(c)
    nodes, edges = _expected(c)
    assert list(g.nodes) == nodes
    assert set(g.edges) == edges
    assert len(g.edges) == len(edges)  # no edge twice
    assert {g.kinds[s] for s in c.state_next} == {"state"}
    assert all(s in g.positions for s in g.nodes)


def test_the_lstm_graph_is_the_lectures_cell():
    """Written out from the lecture's equations (docs/math.md §3), not from the code."""
    g = diagrams.cell_graph("lstm")
    name = {s: s.name for s in g.nodes}
    got = {(name[u], name[v]) for u, v in g.edges}
    gates = ("f^{(t)}", "i^{(t)}", "o^{(t)}", r"\tilde{c}^{(t)}")
    want = {(src, gate) for gate in gates for src in ("h^{(t-1)}", "x^{(t)}")}
    want |= {("c^{(t-1)}", "c^{(t)}"), ("f^{(t)}", "c^{(t)}"), ("i^{(t)}", "c^{(t)}"),
             (r"\tilde{c}^{(t)}", "c^{(t)}"), ("o^{(t)}", "h^{(t)}"), ("c^{(t)}", "h^{(t)}")}  # fmt: skip
    assert got == want
    assert [name[s] for s in g.nodes] == ["h^{(t-1)}", "c^{(t-1)}", "x^{(t)}", *gates, "c^{(t)}", "h^{(t)}"]


@pytest.mark.parametrize("name, marked, whole", [
    ("lstm", {("c^{(t-1)}", "c^{(t)}")}, True),
    ("gru", {("h^{(t-1)}", "h^{(t)}")}, False),
    ("gru-torch", {("h^{(t-1)}", "h^{(t)}")}, False),
    ("mgu", {("h^{(t-1)}", "h^{(t)}")}, False),
    ("lstm-peephole", {("c^{(t-1)}", "c^{(t)}")}, False),  # the peepholes add paths through f and i
    ("rnn-tanh", set(), False),
])  # fmt: skip
def test_the_marked_state_to_state_edges(name, marked, whole):
    g = diagrams.cell_graph(_cell(name))
    assert {(u.name, v.name) for u, v in g.marked} == marked
    assert bool(g.whole_block) == whole
    if name == "lstm":
        f = sp.MatrixSymbol("f^{(t)}", N, 1)
        (edge,) = g.marked
        assert g.labels[edge] == derive.algebra.Diag(f)
        assert g.labels[edge] == derive.step_jacobian("lstm").blocks[(edge[1], edge[0])]


@pytest.mark.parametrize("name", ["lstm", "gru", "gru-torch", "mgu", "lstm-peephole", "lstm-coupled"])
def test_edge_labels_are_the_jacobian_along_the_edge(name):
    """Brute force, n = m = 2: every symbol of the definition independent, Matrix.jacobian in the source."""
    c = _cell(name)
    g = diagrams.cell_graph(c)
    defs = dict(c.definitions)
    assert g.marked
    for u, v in g.marked:
        rhs, label = defs[v], g.labels[(u, v)]
        env: dict = {N: sp.Integer(2), M: sp.Integer(2)}
        for s in rhs.atoms(sp.MatrixSymbol) | label.atoms(sp.MatrixSymbol):
            rows, cols = (int(d.subs({N: 2, M: 2})) for d in s.shape)
            env[s] = sp.Matrix(rows, cols, lambda i, j, s=s: sp.Symbol(f"{s.name}[{i},{j}]", real=True))
        brute = explicit(rhs, env).jacobian(list(env[u]))
        assert sp.simplify(brute - explicit(label, env)) == sp.zeros(2, 2)


def _drawn_edges(tikz: str) -> tuple[list[str], set[tuple[int, int]]]:
    nodes = re.findall(r"\\node\[[^\]]*\] \(n(\d+)\)", tikz)
    edges = {(int(a), int(b)) for a, b in re.findall(r"\\draw\[(?:dep|path)\] \(n(\d+)\).*?\(n(\d+)\);", tikz)}
    return nodes, edges


@pytest.mark.parametrize("name", CELLS)
def test_the_tikz_draws_exactly_the_graph(name):
    c = _cell(name)
    g = diagrams.cell_graph(c)
    tikz = diagrams.cell_tikz(c)
    nodes, edges = _drawn_edges(tikz)
    assert nodes == [str(i) for i in range(len(g.nodes))]
    index = {s: i for i, s in enumerate(g.nodes)}
    assert edges == {(index[u], index[v]) for u, v in g.edges}
    assert tikz.count(r"\draw[path] (n") == len(g.marked)
    for s in g.nodes:
        assert "{$" + derive.latex(s) + "$}" in tikz


def test_the_lstm_cell_path_is_marked_labelled_and_explained():
    tikz = diagrams.cell_tikz("lstm")
    g = diagrams.cell_graph("lstm")
    ((u, v),) = g.marked
    i, j = g.nodes.index(u), g.nodes.index(v)
    line = next(ln for ln in tikz.splitlines() if ln.startswith(rf"\draw[path] (n{i})"))
    assert line.endswith(f"(n{j});")
    assert derive.latex(derive.algebra.Diag(sp.MatrixSymbol("f^{(t)}", N, 1))) in line
    assert r"\frac{\partial c^{(t)}}{\partial c^{(t-1)}}" in line
    assert "direct state-to-state path" in tikz  # the legend
    assert "no weight matrix on it" in tikz
    assert "direct state-to-state path" not in diagrams.cell_tikz("rnn-tanh")  # nothing to explain
    # a cell whose state feeds itself through a weight matrix: marked, but not called diagonal
    plain = derive.define_cell("plain", ("h",), "h = tanh(W @ h + U @ x + b)")
    assert "direct state-to-state path" in diagrams.cell_tikz(plain)
    assert "no weight matrix" not in diagrams.cell_tikz(plain)
    assert "no weight matrix on it" in diagrams.cell_tikz(shipped_cell("indrnn"))  # u ⊙ h: diagonal


def test_a_printing_map_renames_symbols_in_the_picture():
    zeta = sp.MatrixSymbol(r"\zeta^{(t)}", N, 1)
    tikz = diagrams.cell_tikz("gru-torch", names={sp.MatrixSymbol("z^{(t)}", N, 1): zeta})
    assert r"\zeta^{(t)}" in tikz and "z^{(t)}" not in tikz.replace(r"\zeta^{(t)}", "")


def test_the_unrolled_graph_takes_its_nodes_from_the_state_names():
    two = derive.define_cell("two", ("a", "b"), "a = tanh(W @ a + U @ x + q * b)\nb = sigmoid(V @ b + p)")
    tikz = diagrams.unrolled_tikz(two)
    for k in ("0", "1", "t-1", "t", "T"):
        assert f"$a^{{({k})}}$" in tikz and f"$b^{{({k})}}$" in tikz
    # the backward edge carries the step Jacobian of the whole state s = [a; b]
    assert r"\frac{\partial s^{(t)}}{\partial s^{(t-1)}}" in tikz
    rnn = diagrams.unrolled_tikz("rnn-tanh")
    assert r"\frac{\partial h^{(t)}}{\partial h^{(t-1)}}" in rnn
    assert r"\frac{\partial J^{(t)}}{\partial h^{(t)}}" in rnn
    assert "$x^{(T)}$" in rnn and "$J^{(T)}$" in rnn
    # 6 backward steps (0 1 ⋯ t-1 t ⋯ T), 4 losses (none at step 0), 1 legend entry
    assert rnn.count(r"\draw[back]") == 6 + 4 + 1


def test_the_pictures_compile_with_pdflatex(tmp_path):
    assert shutil.which("pdflatex"), "pdflatex is needed (scripts/install-latex.sh)"
    zeta = {sp.MatrixSymbol("z^{(t)}", N, 1): sp.MatrixSymbol(r"\zeta^{(t)}", N, 1)}
    pictures = [diagrams.cell_tikz(n) for n in ("lstm", "gru", "rnn-tanh")]
    pictures += [diagrams.cell_tikz("gru-torch", names=zeta, title="PyTorch", legend=False)]
    pictures += [diagrams.cell_tikz(shipped_cell("mgu")), diagrams.unrolled_tikz("rnn-tanh"),
                 diagrams.unrolled_tikz("lstm")]  # fmt: skip
    (tmp_path / "d.tex").write_text(diagrams.tikz_document(*pictures))
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "d.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)  # fmt: skip
    log = (tmp_path / "d.log").read_text(errors="replace")
    assert run.returncode == 0, log[-2000:]
    assert (tmp_path / "d.pdf").stat().st_size > 5000
    assert "Overfull" not in log and "Undefined control sequence" not in log


def test_the_libraries_exist_and_their_debian_packages_are_installed_by_the_script():
    assert shutil.which("kpsewhich")
    files = {"tikz.sty": "texlive-pictures", "placeins.sty": "texlive-latex-extra"}
    for lib in diagrams.TIKZ_LIBRARIES:
        files[f"pgflibrary{lib}.code.tex" if lib == "arrows.meta" else f"tikzlibrary{lib}.code.tex"] = "texlive-pictures"
    script = (ROOT / "scripts" / "install-latex.sh").read_text()
    packages = re.search(r'PACKAGES="([^"]+)"', script).group(1).split()
    for name, package in files.items():
        path = subprocess.run(["kpsewhich", name], capture_output=True, text=True).stdout.strip()
        assert path, f"{name} not found by kpsewhich"
        owner = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True).stdout.split(":")[0]
        assert owner == package and package in packages
    template = (ROOT / "reports" / "templates" / "report.tex.j2").read_text()
    assert r"\usetikzlibrary{" + ",".join(diagrams.TIKZ_LIBRARIES) + "}" in template
    assert r"\usepackage{tikz}" in template and r"\usepackage[section]{placeins}" in template


def _context(block: dict) -> dict:
    return {"title": "t", "date": "d", "version": "v", "seed": 0,
            "sections": [{"title": "S", "blocks": [{"kind": "text", "text": "x"}, block]}]}  # fmt: skip


def test_a_tikz_figure_is_rendered_and_bad_ones_are_refused():
    tikz = diagrams.cell_tikz("gru")
    tex = render_report(_context({"kind": "figure", "tikz": tikz, "caption": "c", "label": "fig:g"}))
    assert tikz in tex and r"\label{fig:g}" in tex
    with pytest.raises(GradproofError, match="exactly one of 'path', 'panels' or 'tikz'"):
        render_report(_context({"kind": "figure", "tikz": tikz, "path": "figures/a.pdf"}))
    with pytest.raises(GradproofError, match="a tikzpicture environment"):
        render_report(_context({"kind": "figure", "tikz": r"\input{/etc/passwd}"}))


@st.composite
def _programs(draw):
    """A random cell as equations, and the dependency edges it was written with (by node name)."""
    states = draw(st.sampled_from([("h",), ("h", "c")]))
    current = {s: f"{s}^{{(t-1)}}" for s in states}  # name in the equations -> node name now
    current["x"] = "x^{(t)}"
    lines, edges = [], set()

    unused: set[str] = set()  # the language refuses an intermediate nobody uses

    def rhs(target: str, k: int, *, last: bool = False) -> str:
        used = draw(st.lists(st.sampled_from(sorted(current)), min_size=1, max_size=3, unique=True))
        used += sorted(unused - set(used)) if last else []
        unused.difference_update(used)
        terms = [f"U{k} @ x" if u == "x" else f"A{k}{j} @ {u}" for j, u in enumerate(used)]
        edges.update((current[u], target) for u in used)
        return f"{draw(st.sampled_from(['tanh', 'sigmoid']))}({' + '.join(terms)} + b{k})"

    for k in range(draw(st.integers(0, 3))):
        lines.append(f"g{k} = {rhs(f'g{k}^{{(t)}}', k)}")
        current[f"g{k}"] = f"g{k}^{{(t)}}"
        unused.add(f"g{k}")
    for i, s in enumerate(states):
        lines.append(f"{s} = {rhs(f'{s}^{{(t)}}', 10 + i, last=i == len(states) - 1)}")
        current[s] = f"{s}^{{(t)}}"
    return derive.define_cell("random", states, "\n".join(lines)), edges


@settings(max_examples=30, deadline=None)
@given(_programs())
def test_property_any_defined_cell_is_drawn_with_the_edges_it_was_written_with(program):
    c, edges = program
    g = diagrams.cell_graph(c)
    assert {(u.name, v.name) for u, v in g.edges} == edges
    nodes, drawn = _drawn_edges(diagrams.cell_tikz(c))
    assert len(nodes) == len(g.nodes) and len(drawn) == len(edges)
