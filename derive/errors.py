"""The one exception type of gradproof."""

from __future__ import annotations

__all__ = ["GradproofError"]


class GradproofError(ValueError):
    """Raised on invalid input: says what was expected, what came, and how to fix it.

    The command line turns it into one line on stderr and exit code 2.
    """
