"""``gradproof verify``: every derived quantity against a reference, as a table of errors."""

from __future__ import annotations

import json
import sys

import click

from ..derive.names import CELL_NAMES, SHIPPED_CELL_NAMES
from .model_option import load_user_model, torch_model_options
from .cell_option import equations_options, user_cell

__all__ = ["command", "run"]

#: Cells the real torch.nn modules implement.
TORCH_NN_CELLS = ("rnn-tanh", "rnn-relu", "lstm", "gru-torch")

#: The names of :data:`numeric.references.REFERENCES`, for ``--reference`` without importing
#: numpy (tests/reports/test_cli_lazy.py checks they are the same).
REFERENCE_NAMES = ("torch", "torch.nn", "complex-step", "finite-diff")


def run(cells: tuple[str, ...], *, hidden: int, inputs: int, steps: int, seed: int, reference: str,
        quiet: bool = False):
    """Verify each cell; returns ``(reports, skipped)``.

    A progress bar (cell and stage) goes to stderr when it is a terminal and not ``quiet``.
    """  # fmt: skip
    from tqdm import tqdm

    from ..derive import cell
    from ..numeric import init, random_sequence, verify
    from ..numeric.verify import VERIFY_STAGES

    reports, skipped = [], []
    total = len(cells) * len(VERIFY_STAGES)
    with tqdm(total=total, desc="verify", unit="stage", disable=True if quiet else None, leave=False,
              file=sys.stderr) as bar:  # fmt: skip
        for name in cells:
            if reference == "torch.nn" and name not in TORCH_NN_CELLS:
                skipped.append(name)
                bar.update(len(VERIFY_STAGES))
                continue
            c = cell(name)
            params = init(c, hidden=hidden, inputs=inputs, seed=seed)
            xs = random_sequence(steps, inputs, seed=seed + 1)

            def progress(stage: str, name: str = name) -> None:
                # a new stage moves the bar; "stage: W_h 40/1024" only says how far within it
                if stage in VERIFY_STAGES[1:]:
                    bar.update(1)
                bar.set_postfix_str(f"{name}: {stage}")

            reports.append(verify(c, params, xs, reference=reference, progress=progress))
            bar.update(1)
    return reports, skipped


@click.command("verify", short_help="Check the derived Jacobians and gradients against a reference.")
@click.option("--cell", "cells", multiple=True,
              type=click.Choice(CELL_NAMES + SHIPPED_CELL_NAMES, case_sensitive=False),
              help="A cell to check (repeatable); all six by default.")
@click.option("--hidden", type=click.IntRange(1, 512), default=4, show_default=True, help="Hidden size n.")
@click.option("--inputs", type=click.IntRange(1, 512), default=3, show_default=True, help="Input size m.")
@click.option("--steps", type=click.IntRange(1, 100000), default=10, show_default=True, help="Sequence length T.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed of weights and inputs.")
@click.option("--reference", type=click.Choice(REFERENCE_NAMES), default="torch", show_default=True,
              help="What the derived formulas are compared with.")
@click.option("--torch-model", "torch_model", metavar="FILE.pt", default=None,
              help="Check your saved nn.RNN/LSTM/GRU (any num_layers, bidirectional) against its own autograd.")
@torch_model_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of tables.")
@equations_options
@click.pass_context
def command(ctx: click.Context, cells: tuple[str, ...], hidden: int, inputs: int, steps: int,
            seed: int, reference: str, torch_model: str | None, nonlinearity: str | None,
            prefix: str | None, as_json: bool, eq_file: str | None = None,
            eq_state: str | None = None, eq_name: str | None = None) -> int:
    """Check step Jacobians, input Jacobians and BPTT gradients against a reference.

    With --torch-model: every derived Jacobian of that model (all layers, both directions: step,
    input and depth Jacobians, do_t/dx_s, do_T/dh0) against torch.autograd of the module itself,
    in float64, on a seeded random sequence of --steps steps and random initial states.

    Exit code 0 when every quantity of every cell is within tolerance, 1 when one is not.
    """  # fmt: skip
    if torch_model is not None:
        ctx.exit(_verify_torch_model(ctx, torch_model, nonlinearity=nonlinearity, prefix=prefix,
                                     steps=steps, seed=seed, as_json=as_json))  # fmt: skip
    if nonlinearity is not None or prefix is not None:
        raise click.UsageError("--nonlinearity and --prefix go with --torch-model")
    mine = user_cell(eq_file, eq_state, eq_name)
    names = tuple(c.lower() for c in cells) or (() if mine else CELL_NAMES)
    names = names + ((mine,) if mine else ())  # type: ignore[operator]
    reports, skipped = run(names, hidden=hidden, inputs=inputs, steps=steps, seed=seed, reference=reference,
                           quiet=as_json)
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
        unsure = sum(c.not_judged for r in reports for c in r.checks)
        judged = f"; {unsure} entries not judged (the reference cannot tell there)" if unsure else ""
        verdict = "all within tolerance" + judged if ok else "FAILED: " + "; ".join(
            f"{r.cell}: {r.worst.describe()}" for r in reports if not r.ok
        )
        click.echo(verdict)
    ctx.exit(0 if ok else 1)


def _verify_torch_model(ctx: click.Context, path: str, *, nonlinearity: str | None, prefix: str | None,
                        steps: int, seed: int, as_json: bool) -> int:  # fmt: skip
    """``verify --torch-model``: the user's module against its own autograd; the exit code."""
    import numpy as np

    from ..numeric import random_sequence
    from ..numeric.stacked_verify import verify_torch_module

    for name in ("cells", "hidden", "inputs", "reference"):
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE:
            flag = "--cell" if name == "cells" else f"--{name}"
            raise click.UsageError(f"{flag} does not go with --torch-model (the model fixes the cell and sizes, "
                                   "and the reference is its own autograd)")  # fmt: skip
    user = load_user_model(path, nonlinearity=nonlinearity, prefix=prefix)
    mdl = user.model
    xs = random_sequence(steps, mdl.inputs, seed=seed + 1)
    s0 = np.random.default_rng(seed).normal(scale=0.5, size=(mdl.num_layers, mdl.directions, mdl.state_size))
    rep = verify_torch_module(user.module, xs, s0)
    if as_json:
        click.echo(json.dumps({"ok": rep.ok, "seed": seed, "torch_model": path, "model": user.describe(),
                               "prefix": user.file.prefix, "verification": rep.to_json()}, indent=2))  # fmt: skip
    else:
        click.echo(f"{path}: {user.describe()}" + (f" (keys under {user.file.prefix!r})" if user.file.prefix else ""))
        click.echo(rep.table())
        click.echo("")
        click.echo("all within tolerance" if rep.ok else f"FAILED: {rep.worst.describe()}")
    return 0 if rep.ok else 1
