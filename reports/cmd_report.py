"""``gradproof report``: the derivation report a teacher could hand out."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from ..derive.names import CELL_NAMES
from .cell_option import equations_options
from .model_option import torch_model_options

__all__ = ["command"]


def _default_title() -> str:
    from .report import ReportOptions  # matplotlib and SymPy: imported when the report is built

    return ReportOptions.title


@click.command("report", short_help="Write the derivation report: LaTeX, PDF, figures, results.json.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("report"), show_default=True,
              help="Folder to write report.tex, report.pdf, figures/ and results.json into.")
@click.option("--cells", "cells", multiple=True, type=click.Choice(CELL_NAMES, case_sensitive=False),
              help="Cells for the verification appendix (repeatable); all six by default.")
@click.option("--torch-model", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="A saved nn.RNN/LSTM/GRU state_dict (torch.save; any num_layers, bidirectional) to "
              "analyse in its own section.")
@torch_model_options
@click.option("--experiments", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="A folder written by gradproof experiment adding, for the trained models' curves.")
@click.option("--title", default=_default_title, show_default=False, help="The report's title.")
@click.option("--no-pdf", is_flag=True, help="Write the .tex and figures only; do not run LaTeX.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed of every random draw.")
@equations_options
def command(out: Path, cells: tuple[str, ...], torch_model: Path | None, nonlinearity: str | None,
            prefix: str | None, title: str, no_pdf: bool, seed: int, experiments: Path | None = None,
            eq_file: str | None = None, eq_state: str | None = None, eq_name: str | None = None) -> None:
    """Write the derivation report (LaTeX, PDF, figures, results.json) into OUT; with
    --equations FILE --state h,c it has a section for your own cell."""  # fmt: skip
    from .report import ReportOptions, build_report

    if torch_model is None and (nonlinearity is not None or prefix is not None):
        raise click.UsageError("--nonlinearity and --prefix go with --torch-model")
    options = ReportOptions(
        out=out, cells=tuple(c.lower() for c in cells) or CELL_NAMES, torch_model=torch_model,
        nonlinearity=nonlinearity, prefix=prefix,
        experiments=experiments, title=title, pdf=not no_pdf, seed=seed,
        equations=None if eq_file is None else Path(eq_file), state=eq_state, cell_name=eq_name,
    )  # fmt: skip
    # progress on stderr when it is a terminal (tqdm's disable=None), quiet otherwise
    with tqdm(total=None, desc="report", unit="part", disable=None, leave=False, file=sys.stderr) as bar:
        def progress(message: str) -> None:
            # messages read "[k/N] what": N is the bar's total
            head, _, rest = message.partition("] ")
            if head.startswith("[") and "/" in head:
                bar.total = int(head.split("/")[1])
                message = rest
            bar.set_postfix_str(message)
            bar.update(1)

        result = build_report(options, progress=progress)
    for message in result.messages:
        click.echo(f"gradproof report: {message}", err=True)
    target = result.pdf if result.pdf is not None else result.tex
    click.echo(f"wrote {target}")
