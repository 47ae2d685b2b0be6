"""``gradproof derive CELL [--latex]``: a cell's equations and its derived step Jacobian."""

from __future__ import annotations

import click
import sympy as sp

from ..derive import CELL_NAMES, cell, input_jacobian, step_jacobian
from ..derive.algebra import latex, text

__all__ = ["command", "render"]


def render(name: str, *, as_latex: bool = False, steps: bool = True) -> str:
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


@click.command("derive", short_help="Print a cell's equations and its step Jacobian, by the chain rule.")
@click.argument("cell_name", metavar="CELL", type=click.Choice(CELL_NAMES, case_sensitive=False))
@click.option("--latex", "as_latex", is_flag=True, help="Print LaTeX instead of plain text.")
@click.option("--no-steps", is_flag=True, help="Only the equations and the Jacobians.")
def command(cell_name: str, as_latex: bool, no_steps: bool) -> None:
    """Print CELL's equations and its step Jacobian, derived by the chain rule.

    CELL is one of rnn-tanh, rnn-sigmoid, rnn-relu, lstm, gru (the lecture's GRU) and gru-torch
    (PyTorch's nn.GRU).
    """
    click.echo(render(cell_name, as_latex=as_latex, steps=not no_steps))
