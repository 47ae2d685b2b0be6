"""The ``gradproof`` command line.

Each sub-command lives in its own module (``reports/cmd_*.py``) and is registered here. Every
error a user can cause ends as one line on stderr and exit code 2; never a traceback.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import click

from ..derive.errors import GradproofError
from .budget import (
    ENV_VAR, TooCostly, expired, forget_expired, limit_from_environment, parse_limit, time_limit,
)  # fmt: skip

__all__ = ["main", "cli", "DEFAULT_TIME_LIMIT", "COMMAND_TIME_LIMITS"]

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


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


#: The sub-command modules, each exposing ``command``.
COMMANDS = ("cmd_derive", "cmd_verify", "cmd_bound", "cmd_report", "cmd_bench", "cmd_experiment")


def _register() -> None:
    import importlib

    for name in COMMANDS:
        module = importlib.import_module(f".{name}", __package__)
        if module.command.name not in cli.commands:
            cli.add_command(module.command)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 ok, 1 a check failed, 2 bad input)."""
    _register()
    args = list(sys.argv[1:] if argv is None else argv)
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
