"""``gradproof derive CELL [--latex | --standalone]``: a cell's equations and its derived Jacobians."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..derive.errors import GradproofError
from ..derive.names import CELL_NAMES, SHIPPED_CELL_NAMES
from .cell_option import equations_options, user_cell

if TYPE_CHECKING:  # SymPy is imported where the equations are derived, not for --help
    import sympy as sp

    from ..derive import Cell

__all__ = ["command", "render", "sections", "STANDALONE_PREAMBLE"]

#: What a document needs around ``--latex`` output (amsmath for align* and matrix).
STANDALONE_PREAMBLE = (
    "\\documentclass[landscape]{article}\n"
    "\\usepackage[margin=1.5cm]{geometry}\n"
    "\\usepackage{amsmath,amssymb}\n"
    "\\allowdisplaybreaks\n"
)


def sections(name: str | Cell, *, steps: bool = True) -> list[tuple[str, list[sp.Basic]]]:
    """(heading, equations) in the order ``gradproof derive`` prints them.

    Every named Jacobian a result uses (the LSTM's ∂c/∂h and ∂c/∂x) is defined under a "where"
    right after that result.
    """
    from ..derive import cell, input_jacobian, step_jacobian

    c = cell(name)
    d, di = step_jacobian(c), input_jacobian(c)
    parts: list[tuple[str, list[sp.Basic]]] = [("equations", list(c.equations))]
    if steps:
        parts.append(("chain rule, one intermediate at a time", [s.equation for s in d.steps]))
    parts.append(("step Jacobian", [d.equation]))
    if d.where:
        parts.append(("where", list(d.where)))
    parts.append(("input Jacobian", [di.equation]))
    if di.where:
        parts.append(("where", list(di.where)))
    return parts


def _align(equations: list[sp.Basic]) -> str:
    from ..derive.algebra import latex

    rows = [f"{latex(e.lhs)} &= {latex(e.rhs)}" for e in equations]
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"


def render(name: str | Cell, *, as_latex: bool = False, steps: bool = True, standalone: bool = False) -> str:
    """The text ``gradproof derive`` prints for the cell ``name``.

    Plain text by default; with ``as_latex`` one ``align*`` environment per part, ready to paste
    into a document that loads amsmath; with ``standalone`` a complete document for pdflatex.
    """
    from ..derive import cell
    from ..derive.algebra import text

    c = cell(name)
    parts = sections(c, steps=steps)
    if standalone:
        body = []
        for heading, equations in parts:
            body.append(f"\\paragraph{{{c.name}: {heading}}}")
            body.append(_align(equations))
        return STANDALONE_PREAMBLE + "\\begin{document}\n" + "\n".join(body) + "\n\\end{document}"
    out = []
    for heading, equations in parts:
        if as_latex:
            out.append(f"% {c.name}: {heading} (needs \\usepackage{{amsmath}})")
            out.append(_align(equations))
        else:
            out.append(f"{c.name}: {heading}:")
            out += ["  " + text(e) for e in equations]
    return "\n".join(out)


@click.command("derive", short_help="Print a cell's equations and its step Jacobian, by the chain rule.")
@click.argument("cell_name", metavar="CELL", required=False,
                type=click.Choice(CELL_NAMES + SHIPPED_CELL_NAMES, case_sensitive=False))
@click.option("--latex", "as_latex", is_flag=True,
              help="Print LaTeX: one align* environment per part, ready to paste (needs amsmath).")
@click.option("--standalone", is_flag=True, help="Print a complete LaTeX document (compile with pdflatex).")
@click.option("--no-steps", is_flag=True, help="Only the equations and the Jacobians.")
@equations_options
def command(cell_name: str | None, as_latex: bool, standalone: bool, no_steps: bool, eq_file: str | None = None,
            eq_state: str | None = None, eq_name: str | None = None) -> None:
    """Print CELL's equations and its step Jacobian, derived by the chain rule.

    CELL is one of rnn-tanh, rnn-sigmoid, rnn-relu, lstm, gru (the lecture's GRU) and gru-torch
    (PyTorch's nn.GRU).
    """  # fmt: skip
    mine = user_cell(eq_file, eq_state, eq_name)
    if (mine is None) == (cell_name is None):
        raise GradproofError("pass a CELL name or --equations FILE --state NAMES (one of them)")
    click.echo(render(mine or cell_name, as_latex=as_latex, steps=not no_steps,  # type: ignore[arg-type]
                      standalone=standalone))
