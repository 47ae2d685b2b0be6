"""``--equations FILE --state h,c [--name NAME]``: a user's cell on the command line.

The commands add these options with :func:`equations_options` and turn them into a cell with
:func:`user_cell`; the text is parsed by :func:`derive.define_cell` (a whitelist parser; errors
name the line and column and end as one line on stderr, exit code 2).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ..derive.errors import GradproofError
from ..derive.names import SHIPPED_CELL_NAMES

if TYPE_CHECKING:
    from ..derive.cells import Cell

__all__ = ["equations_options", "user_cell", "read_user_cell", "SHIPPED_CELL_NAMES"]


def equations_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--equations FILE``, ``--state NAMES`` and ``--name NAME`` to a click command."""
    f = click.option("--name", "eq_name", default=None, metavar="NAME",
                     help="The name of the cell from --equations (default: the file's stem).")(f)  # fmt: skip
    f = click.option("--state", "eq_state", default=None, metavar="h,c",
                     help="The state names of --equations, in order (e.g. h,c).")(f)  # fmt: skip
    f = click.option("--equations", "eq_file", default=None, metavar="FILE",
                     help="A text file of assignments defining your own cell (see README).")(f)  # fmt: skip
    return f


def user_cell(eq_file: str | None, eq_state: str | None, eq_name: str | None) -> Cell | None:  # noqa: F821
    """The cell of ``--equations FILE --state ...`` (None when no file was given)."""
    read = read_user_cell(eq_file, eq_state, eq_name)
    return None if read is None else read[0]


def read_user_cell(eq_file: str | None, eq_state: str | None, eq_name: str | None) -> tuple[Cell, str] | None:
    """``(cell, the file's text)`` of ``--equations FILE --state ...`` (None when no file was given)."""
    if eq_file is None:
        if eq_state is not None or eq_name is not None:
            raise GradproofError("--state and --name go with --equations FILE; pass the file too")
        return None
    if not eq_state:
        raise GradproofError("--equations needs --state NAMES, the state names in order, e.g. --state h,c")
    try:
        with open(eq_file, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise GradproofError(f"cannot read the equations file {eq_file!r} ({type(exc).__name__})") from None
    name = eq_name or eq_file.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0] or "cell"
    from ..derive import define_cell  # SymPy: only when a cell is read

    try:
        return define_cell(name, eq_state, text), text
    except GradproofError as exc:
        raise GradproofError(f"{eq_file}: {exc}") from None
