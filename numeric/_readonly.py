"""One helper shared by the result dataclasses of numeric/: a read-only float64 copy."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["frozen"]


def frozen(a: Any) -> np.ndarray:
    """``a`` as a new float64 array that cannot be written (results stay what was computed).

    >>> v = frozen([1, 2]); v.dtype, v.flags.writeable
    (dtype('float64'), False)
    """
    out = np.array(a, dtype=np.float64, copy=True)
    out.setflags(write=False)
    return out
