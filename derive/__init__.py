"""gradproof.derive — the symbolic layer (SymPy only): what the mathematics is.

>>> from derive import gamma, step_jacobian, latex
>>> gamma("sigmoid")
1/4
>>> print(latex(step_jacobian("rnn-tanh").result))
\\operatorname{diag}\\left(\\tanh'\\left(z^{(t)}\\right)\\right) W_{h}
"""

from derive.activations import BUILTIN_NAMES, Activation, activation, gamma
from derive.algebra import latex, text
from derive.bptt import BPTTProduct, ParameterGradients, bptt_product, parameter_gradients
from derive.cells import CELL_NAMES, GRU, LSTM, RNN, Cell, cell
from derive.equality import difference_is_zero
from derive.errors import GradproofError
from derive.corrections import Imprecision, imprecisions
from derive.jacobians import Derivation, Step, input_jacobian, step_jacobian
from derive.theorem import Theorem, pascanu_bound

__all__ = [
    "GradproofError",
    "Activation",
    "activation",
    "gamma",
    "BUILTIN_NAMES",
    "Cell",
    "RNN",
    "LSTM",
    "GRU",
    "cell",
    "CELL_NAMES",
    "Derivation",
    "Step",
    "step_jacobian",
    "input_jacobian",
    "bptt_product",
    "BPTTProduct",
    "parameter_gradients",
    "ParameterGradients",
    "pascanu_bound",
    "Theorem",
    "imprecisions",
    "Imprecision",
    "latex",
    "text",
    "difference_is_zero",
]
