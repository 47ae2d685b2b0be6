r"""How much each output of a recurrent model depends on each input: ‖∂o_t/∂x_s‖₂.

For a unidirectional model o_t cannot depend on a later input, so the entries with s > t are
exactly zero — the reason a bidirectional RNN, whose reverse direction reads the whole future,
cannot serve language modelling (docs/math.md §5; Schuster & Paliwal 1997).

>>> import numpy as np
>>> from gradproof.numeric import StackedModel, input_sensitivity
>>> uni = StackedModel.init("lstm", hidden=3, inputs=2, num_layers=2, seed=0)
>>> S = input_sensitivity(uni, np.ones((4, 2)))
>>> S.shape, bool(np.all(S[np.triu_indices(4, 1)] == 0.0)), bool(np.all(np.diag(S) > 0))
((4, 4), True, True)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .stacked import as_stacked_model, input_output_jacobians

__all__ = ["input_sensitivity"]


def input_sensitivity(model: Any, xs: object) -> np.ndarray:
    r"""The (T, T) array whose entry [t-1, s-1] is ‖∂o_t/∂x_s‖₂ (largest singular value).

    Parameters
    ----------
    model : a :class:`numeric.StackedModel`, or a ``torch.nn.RNN``/``LSTM``/``GRU`` module with
        any ``num_layers``, ``bidirectional``, ``bias`` and ``batch_first`` (``proj_size = 0``).
        A module's weights are read in float64 (:func:`numeric.from_torch_stacked`) and the
        derived formulas evaluated; torch does not differentiate anything here.
    xs : (T, m) one input sequence (no batch axis, whatever ``batch_first`` says).

    Returns
    -------
    (T, T) float64. o_t is the model's output at step t — for a bidirectional model both
    directions concatenated, as ``torch.nn`` returns it. The Jacobians are chained from the
    derived step and input Jacobians (:func:`numeric.stacked.input_output_jacobians`); entries
    that no path of the grid can make nonzero (s > t for a unidirectional model) are never
    computed and are exactly 0.0.
    """
    jac, reach = input_output_jacobians(as_stacked_model(model), xs)
    T = reach.shape[0]
    out = np.zeros((T, T))
    if reach.any():
        out[reach] = np.linalg.norm(jac[reach], ord=2, axis=(-2, -1))
    return out
