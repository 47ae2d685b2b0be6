"""The ``gradproof`` command line.

Each sub-command lives in its own module (``reports/cmd_*.py``) and is registered here. Every
error a user can cause ends as one line on stderr and exit code 2; never a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from ..derive.errors import GradproofError

__all__ = ["main", "cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gradproof")
def cli() -> None:
    """Derive, verify and explain vanishing and exploding gradients in recurrent networks."""


#: The sub-command modules, each exposing ``command``.
COMMANDS = ("cmd_derive", "cmd_verify", "cmd_bound", "cmd_report", "cmd_bench")


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
    except GradproofError as exc:
        click.echo(f"{where}: error: {exc}", err=True)
        return 2
    except KeyboardInterrupt:
        click.echo(f"{where}: interrupted", err=True)
        return 130
    return rv if isinstance(rv, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
