"""``gradproof verify``: every derived quantity against a reference, as a table of errors."""

from __future__ import annotations

import json

import click
from tqdm import tqdm

from ..derive import CELL_NAMES, cell
from ..numeric import init, random_sequence, verify
from ..numeric.references import REFERENCES
from .cell_option import SHIPPED_CELL_NAMES, equations_options, user_cell

__all__ = ["command", "run"]

#: Cells the real torch.nn modules implement.
TORCH_NN_CELLS = ("rnn-tanh", "rnn-relu", "lstm", "gru-torch")


def run(cells: tuple[str, ...], *, hidden: int, inputs: int, steps: int, seed: int, reference: str):
    """Verify each cell; returns ``(reports, skipped)``."""
    reports, skipped = [], []
    for name in tqdm(cells, desc="verify", unit="cell", disable=None, leave=False):
        if reference == "torch.nn" and name not in TORCH_NN_CELLS:
            skipped.append(name)
            continue
        c = cell(name)
        params = init(c, hidden=hidden, inputs=inputs, seed=seed)
        xs = random_sequence(steps, inputs, seed=seed + 1)
        reports.append(verify(c, params, xs, reference=reference))
    return reports, skipped


@click.command("verify")
@click.option("--cell", "cells", multiple=True,
              type=click.Choice(CELL_NAMES + SHIPPED_CELL_NAMES, case_sensitive=False),
              help="A cell to check (repeatable); all six by default.")
@click.option("--hidden", type=click.IntRange(1, 512), default=4, show_default=True, help="Hidden size n.")
@click.option("--inputs", type=click.IntRange(1, 512), default=3, show_default=True, help="Input size m.")
@click.option("--steps", type=click.IntRange(1, 100000), default=10, show_default=True, help="Sequence length T.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed of weights and inputs.")
@click.option("--reference", type=click.Choice(tuple(REFERENCES)), default="torch", show_default=True,
              help="What the derived formulas are compared with.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@equations_options
@click.pass_context
def command(ctx: click.Context, cells: tuple[str, ...], hidden: int, inputs: int, steps: int,
            seed: int, reference: str, as_json: bool, eq_file: str | None = None,
            eq_state: str | None = None, eq_name: str | None = None) -> int:
    """Check step Jacobians, input Jacobians and BPTT gradients against a reference.

    Exit code 0 when every quantity of every cell is within tolerance, 1 when one is not.
    """  # fmt: skip
    mine = user_cell(eq_file, eq_state, eq_name)
    names = tuple(c.lower() for c in cells) or (() if mine else CELL_NAMES)
    names = names + ((mine,) if mine else ())  # type: ignore[operator]
    reports, skipped = run(names, hidden=hidden, inputs=inputs, steps=steps, seed=seed, reference=reference)
    ok = all(r.ok for r in reports)
    if as_json:
        click.echo(json.dumps({"ok": ok, "seed": seed, "skipped": skipped,
                               "cells": [r.to_json() for r in reports]}, indent=2))  # fmt: skip
    else:
        for r in reports:
            click.echo(r.table())
            click.echo("")
        for name in skipped:
            click.echo(f"{name}: skipped (no torch.nn module implements it; use --reference torch)")
        verdict = "all within tolerance" if ok else "FAILED: " + "; ".join(
            f"{r.cell}: {r.worst.describe()}" for r in reports if not r.ok
        )
        click.echo(verdict)
    ctx.exit(0 if ok else 1)
