"""``gradproof bench``: the gradient-profile benchmark (runs from a source checkout).

The benchmark lives in ``benchmarks/bench_profile.py``, which is not part of the installed
package; this command loads it from the repository next to this ``reports`` package.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import click

__all__ = ["command"]

_BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_profile.py"


def _load_benchmark() -> ModuleType:
    if not _BENCH.is_file():
        raise click.ClickException(
            "gradproof bench runs from a source checkout: benchmarks/ not found"
        )
    spec = importlib.util.spec_from_file_location("gradproof_bench_profile", _BENCH)
    if spec is None or spec.loader is None:  # pragma: no cover - a file that exists always loads
        raise click.ClickException(f"cannot load {_BENCH}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


@click.option(
    "--hidden",
    type=click.IntRange(min=1),
    default=128,
    show_default=True,
    help="Hidden size n of the tanh RNN.",
)
@click.option(
    "--steps", type=click.IntRange(min=1), default=512, show_default=True, help="Horizon T."
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Timed runs per row (median and minimum are reported).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the JSON results [default: benchmarks/results/profile.json when run "
    "inside the source checkout, else bench_profile.json in the current folder].",
)
def _bench(hidden: int, steps: int, repeats: int, json_path: Path | None) -> None:
    """Time the full gradient-norm profile: gradproof against torch and a numpy floor."""
    bench = _load_benchmark()
    bench.run_benchmark(
        hidden=hidden,
        steps=steps,
        repeats=repeats,
        json_path=json_path if json_path is not None else default_json(bench.DEFAULT_JSON),
        echo=click.echo,
    )


def default_json(in_checkout: Path, cwd: Path | None = None) -> Path:
    """Where results go by default: the checkout's ``benchmarks/results/`` when the command runs
    inside the checkout, else ``bench_profile.json`` in the current folder (never into a source
    tree the user is not working in)."""
    here = (cwd or Path.cwd()).resolve()
    root = _BENCH.parent.parent.resolve()
    if here == root or root in here.parents:
        return Path(in_checkout)
    return here / "bench_profile.json"


command = click.command(
    "bench", short_help="Time the gradient-norm profile against torch and a numpy floor."
)(_bench)

