"""A wall-clock time budget for a command: answer in bounded time or stop with one line.

A short input can be very costly: SymPy needs tens of seconds for γ = sup|σ'| of a 400-character
sum of sines. The command line therefore runs every command inside :func:`time_limit`, which
arms a ``SIGALRM`` timer (``signal.setitimer(ITIMER_REAL, ...)``); when it fires, the handler
raises :class:`TooCostly` (a :class:`GradproofError`, so the CLI prints it as one line and exits
with code 2). SymPy and the rest of gradproof are Python code, so the exception lands within
milliseconds; only a module import under way is let finish first (a module broken halfway would
poison later calls in the same process). Should some library swallow it (``except Exception``), the timer fires again every
:data:`REFIRE` seconds until the budget is left, so a command never runs on past its budget by
more than a moment.

The limit is a process-wide setting of the main thread; in another thread, or where ``SIGALRM``
does not exist, :func:`time_limit` does nothing.
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from ..derive.errors import GradproofError

__all__ = [
    "ENV_VAR", "REFIRE", "TooCostly", "expired", "forget_expired", "limit_from_environment", "parse_limit", "time_limit",
]  # fmt: skip

ENV_VAR = "GRADPROOF_TIME_LIMIT"
"""Environment variable holding the time limit in seconds (``0`` turns the limit off)."""

REFIRE = 0.05
"""Seconds between repeated alarms once the budget is spent (in case one was swallowed)."""


class TooCostly(GradproofError):
    """Raised when a command exceeds its time budget.

    ``str(exc)`` is the whole line the CLI prints: ``gradproof CMD: error: stopped after ...``,
    what to do included.
    """


_expired: list[TooCostly] = []


def expired() -> TooCostly | None:
    """The stop of the last budget left, if it ran out (else ``None``).

    Code that catches every exception may turn :class:`TooCostly` into another error; the CLI
    asks this to tell the user the true reason: the budget ran out.
    """
    return _expired[-1] if _expired else None


def forget_expired() -> None:
    """Forget an earlier run-out budget (the CLI calls it before each command)."""
    _expired.clear()


def parse_limit(text: str | float | None, *, source: str = ENV_VAR) -> float | None:
    """Read a time limit in seconds; ``None`` or ``0`` means no limit.

    Raises
    ------
    GradproofError
        When the value is not a finite number >= 0.
    """
    if text is None:
        return None
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise GradproofError(
            f"{source}: expected a time limit in seconds (a number >= 0, 0 for none), got {text!r}"
        )
    return value or None


def _message(command: str, seconds: float) -> str:
    return (
        f"{command}: error: stopped after {seconds:g} s: this input is too costly to answer in time "
        "(usually a long activation or equation expression, or large sizes); simplify the "
        "expression (fewer terms, smaller constants) or use smaller sizes, or allow more time "
        f"with --time-limit SECONDS or {ENV_VAR}=SECONDS (0 for no limit)"
    )


@contextmanager
def time_limit(seconds: float | None, *, command: str = "gradproof") -> Iterator[None]:
    """Run the body with a wall-clock budget of ``seconds``; ``None`` means unlimited.

    When the budget is spent, :class:`TooCostly` is raised inside the body (and again every
    :data:`REFIRE` seconds until the body is left). Any earlier ``SIGALRM`` handler and timer
    are restored on exit; a budget nested inside another never outlives the outer one.

    Parameters
    ----------
    seconds : float or None
        The budget; ``None`` or ``0`` for none.
    command : str
        Named in the message, e.g. ``"gradproof bound"``.

    Examples
    --------
    >>> with time_limit(5.0, command="gradproof demo"):
    ...     1 + 1
    2
    """
    usable = (
        seconds is not None
        and seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return
    assert seconds is not None
    outer_remaining, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    previous = signal.getsignal(signal.SIGALRM)
    budget = seconds if outer_remaining <= 0 else min(seconds, outer_remaining)
    start = time.monotonic()

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        # Never raise inside this function's own clean-up (the finally below): it must run
        # to the end to disarm the timer and put the previous handler back.
        if frame is not None and frame.f_code is _CLEANUP_CODE:
            return
        # Never break a module import halfway: a half-initialised module (torch, say) would
        # poison every later call in this process. The alarm fires again in REFIRE seconds.
        if _inside_import(frame):
            return
        stop = TooCostly(_message(command, seconds))
        _expired[:] = [stop]
        raise stop

    _expired.clear()
    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, budget, REFIRE)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_remaining > 0:
            left = outer_remaining - (time.monotonic() - start)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3), outer_interval)


def _inside_import(frame: FrameType | None) -> bool:
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


_CLEANUP_CODE = time_limit.__wrapped__.__code__  # type: ignore[attr-defined]


def limit_from_environment() -> float | None:
    """The limit set by :data:`ENV_VAR`, or ``None`` when it is unset or empty."""
    text = os.environ.get(ENV_VAR, "").strip()
    return parse_limit(text) if text else None
