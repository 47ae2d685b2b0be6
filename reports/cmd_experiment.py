"""``gradproof experiment adding``: train a tanh RNN, an LSTM and a GRU on the adding problem.

Writes ``results.json`` (every number: learning curves, outcomes, gradient profiles and Lyapunov
spectra before and after training) and ``figures/adding_curves.{pdf,png}``,
``figures/adding_dynamics.{pdf,png}`` into ``--out``; ``gradproof report --experiments DIR``
puts them in the report. Needs PyTorch (``pip install 'gradproof[torch]'``).
"""

from __future__ import annotations

from pathlib import Path

import click
from tqdm import tqdm

from ..derive.errors import GradproofError

__all__ = ["command", "write_experiment"]


def _lengths(values: tuple[str, ...]) -> tuple[int, ...]:
    out: list[int] = []
    for v in values:
        for part in v.replace(",", " ").split():
            try:
                out.append(int(part))
            except ValueError:
                raise GradproofError(f"--lengths: expected integers such as 10,50,100, got {part!r}") from None
    return tuple(sorted(set(out)))


def write_experiment(results: dict, out: Path) -> Path:
    """results.json and the two figures into ``out`` (atomically); returns the JSON's path."""
    from . import plots_dynamics
    from .figures import save, use_style
    from .output import AtomicDirectory, write_json

    use_style()
    with AtomicDirectory(out) as tmp:
        figures = tmp / "figures"
        save(plots_dynamics.adding_curves(results["runs"], baseline=results["baseline_mse"],
                                          solved=results["solved_mse"]), figures, "adding_curves")  # fmt: skip
        save(plots_dynamics.adding_dynamics(results["runs"]), figures, "adding_dynamics")
        write_json(tmp / "results.json", results)
    return Path(out) / "results.json"


@click.group("experiment", short_help="Run a training experiment (PyTorch) for the report.")
def command() -> None:
    """Training experiments (PyTorch) whose results the report can include."""


@command.command("adding")
@click.option("--out", type=click.Path(path_type=Path), default=Path("experiment-adding"), show_default=True,
              help="Folder for results.json and figures/.")
@click.option("--lengths", multiple=True, default=("10,50,100",), show_default=True,
              help="Sequence lengths T, comma-separated or repeated.")
@click.option("--steps", type=click.IntRange(1), default=1200, show_default=True, help="Adam steps per model.")
@click.option("--batch", type=click.IntRange(1), default=64, show_default=True, help="Batch size.")
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=1e-2, show_default=True,
              help="Adam learning rate.")
@click.option("--clip", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Norm-clipping threshold on all gradients together.")
@click.option("--budget", type=click.IntRange(10), default=1200, show_default=True,
              help="Trainable parameters per model; each cell gets the hidden size closest to it.")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed of every random draw.")
@click.option("--lyapunov-steps", type=click.IntRange(2), default=400, show_default=True,
              help="Length of the input the Lyapunov spectra are measured on.")
@click.option("--threads", type=click.IntRange(1), default=None, help="torch threads (default: torch's).")
def adding(out: Path, lengths: tuple[str, ...], steps: int, batch: int, lr: float, clip: float, budget: int,
           seed: int, lyapunov_steps: int, threads: int | None) -> None:
    """The adding problem (Hochreiter & Schmidhuber 1997): tanh RNN, LSTM and GRU, same budget."""  # fmt: skip
    from ..numeric.adding import AddingConfig, run_adding

    cfg = AddingConfig(lengths=_lengths(lengths), steps=steps, batch=batch, lr=lr, clip=clip, budget=budget,
                       seed=seed, lyapunov_steps=lyapunov_steps, threads=threads)  # fmt: skip
    total = len(cfg.lengths) * len(cfg.cells) * cfg.steps
    with tqdm(total=total, desc="adding", unit="step", disable=None, leave=False) as bar:
        def progress(message: str) -> None:
            bar.set_postfix_str(message)
            if bar.disable:
                click.echo(f"gradproof experiment adding: {message}", err=True)

        results = run_adding(cfg, progress=progress, tick=lambda: bar.update(1))
    path = write_experiment(results, out)
    for T, outcomes in results["summary"].items():
        click.echo(f"T = {T}: " + ", ".join(f"{c} {o}" for c, o in outcomes.items()))
    click.echo(f"wrote {path}")
