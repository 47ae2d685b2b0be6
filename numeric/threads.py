"""BLAS threads for the per-step loops.

The recurrences are evaluated one step (or one small chunk) at a time, on matrices of a few dozen
to a few hundred rows. On such sizes a multi-threaded BLAS gains little on an idle machine and
loses badly on a busy one: with one of two cores taken by another process, OpenBLAS's two threads
wait on each other at every call, and an LSTM gradient profile ran 8x slower than with one thread
(``python -m benchmarks.bench_threads``). The loops therefore run with BLAS limited to one thread,
through threadpoolctl (about 0.4 ms to enter and leave, nothing beside a loop of many steps).
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from threadpoolctl import threadpool_limits

__all__ = ["single_blas_thread"]

P = ParamSpec("P")
R = TypeVar("R")


def single_blas_thread(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` with the BLAS libraries numpy loaded limited to one thread.

    The previous limits are restored on return, also on an exception.
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        __tracebackhide__ = True  # pytest shows the caller's frame, not this one
        with warnings.catch_warnings():  # threadpoolctl may warn about mixed OpenMP runtimes
            warnings.simplefilter("ignore")
            limits = threadpool_limits(limits=1, user_api="blas")
        with limits:
            return fn(*args, **kwargs)

    return wrapper
