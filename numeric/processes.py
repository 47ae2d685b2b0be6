"""Worker processes that never outlive the process that started them.

gradproof starts processes in two places: the report's second section process and the phase
diagram's worker pool. When the starting process is killed with SIGKILL (a user's ``kill -9``, a
time limit, a test), its children are re-parented to init; a pool worker waiting on its task queue
then waits forever (the queue's pipe stays open in its sibling), so every such child asks Linux to
kill it together with its parent.
"""

from __future__ import annotations

import os
import signal

__all__ = ["die_with_parent"]


def die_with_parent(parent: int) -> None:
    """Ask Linux to kill this process when ``parent`` dies (``PR_SET_PDEATHSIG``); exit at once if
    ``parent`` is gone already. Call it first thing in a child, e.g. as a pool's ``initializer``.
    Elsewhere than Linux it does nothing but the check (the children then end by their pipes)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)
