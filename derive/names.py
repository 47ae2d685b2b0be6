"""The names of the built-in and shipped cells, without SymPy.

The command line needs these names to build its options (``--cell``, ``gradproof derive CELL``)
before it knows whether a command will run; importing :mod:`derive.cells` for them would cost
SymPy's import on every ``--help``. :data:`derive.cells.CELL_NAMES` and
:data:`derive.define.SHIPPED_CELL_NAMES` remain the definitions; a test checks these copies equal
them.

>>> CELL_NAMES[:2], SHIPPED_CELL_NAMES[0]
(('rnn-tanh', 'rnn-sigmoid'), 'lstm-peephole')
"""

from __future__ import annotations

__all__ = ["CELL_NAMES", "SHIPPED_CELL_NAMES"]

#: The built-in cells (:data:`derive.cells.CELL_NAMES`).
CELL_NAMES: tuple[str, ...] = ("rnn-tanh", "rnn-sigmoid", "rnn-relu", "lstm", "gru", "gru-torch")

#: The cells shipped as equations (:data:`derive.define.SHIPPED_CELL_NAMES`).
SHIPPED_CELL_NAMES: tuple[str, ...] = ("lstm-peephole", "lstm-coupled", "mgu", "indrnn")
