"""The ``gradproof`` command line.

Each sub-command lives in its own module (``reports/cmd_*.py``) and is registered here. Every
error a user can cause ends as one line on stderr and exit code 2; never a traceback.

The group is lazy: a command's module is imported only when that command runs or its own help is
asked for. ``gradproof --help`` prints the commands' one-line summaries from :data:`SHORT_HELP`
(a test checks the table against the commands themselves), so it imports neither SymPy, numpy,
torch nor matplotlib.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator, MutableMapping, Sequence

import click

from ..derive.errors import GradproofError
from .budget import (
    ENV_VAR, TooCostly, expired, forget_expired, limit_from_environment, parse_limit, time_limit,
)  # fmt: skip

__all__ = ["main", "cli", "DEFAULT_TIME_LIMIT", "COMMAND_TIME_LIMITS", "COMMANDS", "SHORT_HELP", "LazyGroup"]

#: Seconds any command may take by default before it stops with one line (``TooCostly``).
DEFAULT_TIME_LIMIT = 5.0

#: Commands whose default budget differs: verify's work grows with --hidden/--steps (and it
#: imports torch); bound certifies γ by interval arithmetic when it has no closed form (SiLU's
#: enclosure alone takes about 5 s); report builds a whole document and bench is a benchmark,
#: both long by design.
# report, bench and experiment are long jobs by nature (a build, a benchmark, a training run): no default limit.
COMMAND_TIME_LIMITS: dict[str, float | None] = {"verify": 60.0, "bound": 60.0, "report": None, "bench": None, "experiment": None}


def _time_limit_option(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_limit(value, source="--time-limit") or 0.0
    except GradproofError as exc:
        raise click.BadParameter(str(exc).removeprefix("--time-limit: ")) from None


#: The sub-command modules, each exposing ``command``; module ``cmd_NAME`` holds command ``NAME``.
COMMANDS = ("cmd_derive", "cmd_verify", "cmd_bound", "cmd_report", "cmd_bench", "cmd_experiment")

#: What ``gradproof --help`` prints for each command without importing it: the commands'
#: ``short_help``, word for word (tests/reports/test_cli_lazy.py checks it). A command missing
#: here still works; ``--help`` then imports its module to read the summary.
SHORT_HELP: dict[str, str] = {
    "derive": "Print a cell's equations and its step Jacobian, by the chain rule.",
    "verify": "Check the derived Jacobians and gradients against a reference.",
    "bound": "Pascanu et al. (2013) regime of a weight matrix or a torch model.",
    "report": "Write the derivation report: LaTeX, PDF, figures, results.json.",
    "bench": "Time the gradient-norm profile against torch and a numpy floor.",
    "experiment": "Run a training experiment (PyTorch) for the report.",
}


class _Commands(MutableMapping[str, click.Command]):
    """name -> command, importing a command's module on first access.

    Iterating lists every name without importing anything; ``commands[name]`` imports
    ``reports/cmd_NAME.py``. Commands added with ``add_command`` are kept as given.
    """

    def __init__(self, modules: Sequence[str]) -> None:
        self._modules = {m.removeprefix("cmd_"): m for m in modules}
        self._loaded: dict[str, click.Command] = {}

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    def __getitem__(self, name: str) -> click.Command:
        if name not in self._loaded:
            if name not in self._modules:
                raise KeyError(name)
            module = importlib.import_module(f".{self._modules[name]}", __package__)
            self._loaded[name] = module.command
        return self._loaded[name]

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._loaded[name] = command

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)
        self._loaded.pop(name, None)
        self._modules.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*self._modules, *self._loaded]))

    def __len__(self) -> int:
        return len(set(self._modules) | set(self._loaded))

    def __contains__(self, name: object) -> bool:
        return name in self._modules or name in self._loaded


class LazyGroup(click.Group):
    """A click group whose commands are imported when run (or their help is asked for).

    ``--help`` lists them with :data:`SHORT_HELP`, so listing imports none of them.
    """

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.commands: _Commands = _Commands(COMMANDS)  # type: ignore[assignment]

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        rows: list[tuple[str, str]] = []
        limit = formatter.width - 6 - max((len(n) for n in names), default=0)
        for name in names:
            if name in SHORT_HELP and not self.commands.is_loaded(name):
                rows.append((name, SHORT_HELP[name]))
                continue
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gradproof")
@click.option(
    "--time-limit",
    "limit",
    metavar="SECONDS",
    default=None,
    callback=_time_limit_option,
    help=f"Stop any command that runs longer than this, with one line (0 for no limit) "
    f"[default: {ENV_VAR}, else {DEFAULT_TIME_LIMIT:g} s; verify 60 s; report and bench none].",
)
@click.pass_context
def cli(ctx: click.Context, limit: float | None) -> None:
    """Derive, verify and explain vanishing and exploding gradients in recurrent networks."""
    name = ctx.invoked_subcommand or ""
    if limit is not None:
        seconds = limit or None
    elif os.environ.get(ENV_VAR, "").strip():
        seconds = limit_from_environment()
    else:
        seconds = COMMAND_TIME_LIMITS.get(name, DEFAULT_TIME_LIMIT)
    # Every command, whoever adds it, runs inside the budget; it ends when the command does.
    ctx.with_resource(time_limit(seconds, command=f"gradproof {name}".rstrip()))


def _register() -> None:
    """Import every command (the group imports them on demand; this is for code that wants all)."""
    for name in list(cli.commands):
        cli.commands[name]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 1 a check failed, 2 bad input).

    Without ``argv`` (the ``gradproof`` program itself, which exits next) the objects left are
    frozen (``gc.freeze``) once the command is done: the interpreter's last garbage collections
    at exit then skip them, about 0.5 s of CPU after ``import torch``; nothing else changes (exit
    handlers and finalizers still run).
    """
    code = _main(list(sys.argv[1:] if argv is None else argv))
    if argv is None:
        import gc

        gc.freeze()
    return code


def _main(args: list[str]) -> int:
    forget_expired()
    # every message starts "gradproof <command>: " (or "gradproof: " before a command is named)
    where = next((f"gradproof {a}" for a in args if a in cli.commands), "gradproof")
    try:
        rv = cli.main(args=args, prog_name="gradproof", standalone_mode=False)
    except click.UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError" and exc.ctx is not None:
            click.echo(exc.ctx.get_help())
            return 0
        name = exc.ctx.command_path if exc.ctx is not None else where
        message = " ".join(exc.format_message().split())  # one line, whatever click wraps
        click.echo(f"{name}: error: {message}", err=True)
        return 2
    except click.Abort:
        click.echo(f"{where}: interrupted", err=True)
        return 130
    except click.ClickException as exc:
        click.echo(f"{where}: error: {exc.format_message()}", err=True)
        return exc.exit_code if exc.exit_code else 2
    except TooCostly as exc:
        click.echo(str(exc), err=True)
        return 2
    except GradproofError as exc:
        stop = expired()  # the budget ran out and some code turned its stop into another error
        click.echo(str(stop) if stop is not None else f"{where}: error: {exc}", err=True)
        return 2
    except KeyboardInterrupt:
        click.echo(f"{where}: interrupted", err=True)
        return 130
    except Exception:
        stop = expired()  # the budget's stop, turned into another exception by some library
        if stop is None:
            raise
        click.echo(str(stop), err=True)
        return 2
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
