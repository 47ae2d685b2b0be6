"""``gradproof derive CELL [--latex]``: a cell's equations and its derived step Jacobian."""

from __future__ import annotations

import click
import sympy as sp

from ..derive import CELL_NAMES, Cell, GradproofError, cell, input_jacobian, step_jacobian
from ..derive.algebra import latex, text
from .cell_option import SHIPPED_CELL_NAMES, equations_options, user_cell

__all__ = ["command", "render"]


def render(name: str | Cell, *, as_latex: bool = False, steps: bool = True) -> str:
    """The text ``gradproof derive`` prints for the cell ``name``."""
    c = cell(name)
    d = step_jacobian(c)
    show = latex if as_latex else text
    parts: list[tuple[str, list[sp.Basic]]] = [("equations", list(c.equations))]
    if steps:
        parts.append(("chain rule, one intermediate at a time", [s.equation for s in d.steps]))
    parts.append(("step Jacobian", [d.equation]))
    if d.references:
        parts.append(("where", [sp.Eq(ref, expr, evaluate=False) for ref, expr in d.references.items()]))
    parts.append(("input Jacobian", [input_jacobian(c).equation]))
    out = []
    for heading, equations in parts:
        out.append(f"% {c.name}: {heading}" if as_latex else f"{c.name}: {heading}:")
        out += [show(e) if as_latex else "  " + show(e) for e in equations]
    return "\n".join(out)


@click.command("derive")
@click.argument("cell_name", metavar="CELL", required=False,
                type=click.Choice(CELL_NAMES + SHIPPED_CELL_NAMES, case_sensitive=False))
@click.option("--latex", "as_latex", is_flag=True, help="Print LaTeX instead of plain text.")
@click.option("--no-steps", is_flag=True, help="Only the equations and the Jacobians.")
@equations_options
def command(cell_name: str | None, as_latex: bool, no_steps: bool, eq_file: str | None = None,
            eq_state: str | None = None, eq_name: str | None = None) -> None:
    """Print CELL's equations and its step Jacobian, derived by the chain rule.

    CELL is one of rnn-tanh, rnn-sigmoid, rnn-relu, lstm, gru (the lecture's GRU) and gru-torch
    (PyTorch's nn.GRU).
    """
    mine = user_cell(eq_file, eq_state, eq_name)
    if (mine is None) == (cell_name is None):
        raise GradproofError("pass a CELL name or --equations FILE --state NAMES (one of them)")
    click.echo(render(mine or cell_name, as_latex=as_latex, steps=not no_steps))  # type: ignore[arg-type]
