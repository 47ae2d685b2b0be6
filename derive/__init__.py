"""gradproof.derive — the symbolic layer (SymPy only): what the mathematics is.

>>> from gradproof.derive import gamma, step_jacobian, latex
>>> gamma("sigmoid")
1/4
>>> print(latex(step_jacobian("rnn-tanh").result))
\\operatorname{diag}\\left(\\tanh'\\left(z^{(t)}\\right)\\right) W_{h}
"""

from .activations import BUILTIN_NAMES, Activation, activation, gamma
from .gamma_interval import GammaEnclosure, gamma_enclosure, gamma_interval, gamma_is_exact
from .algebra import latex, text
from .bptt import BPTTProduct, ParameterGradients, bptt_product, parameter_gradients
from .cells import CELL_NAMES, GRU, LSTM, RNN, Cell, cell
from .define import SHIPPED_CELL_NAMES, DefinedCell, define_cell
from .equality import difference_is_zero
from .errors import GradproofError
from .corrections import Imprecision, imprecisions
from .jacobians import Derivation, Step, input_jacobian, step_jacobian
from .theorem import Theorem, pascanu_bound
from .scalar import ScalarChain, scalar_chain
from .architectures import (
    bidirectional_step,
    causal_pattern,
    grid_paths,
    path_count,
    stack_jacobian,
    stack_steps,
)
from .skip import (
    DenseStack,
    Layer,
    SkipDerivation,
    dense,
    dense_stack,
    highway,
    highway_limit,
    residual,
    skip_block,
)

__all__ = [
    "GradproofError",
    "Activation",
    "activation",
    "gamma",
    "gamma_interval",
    "gamma_is_exact",
    "gamma_enclosure",
    "GammaEnclosure",
    "BUILTIN_NAMES",
    "Cell",
    "RNN",
    "LSTM",
    "GRU",
    "cell",
    "CELL_NAMES",
    "define_cell",
    "DefinedCell",
    "SHIPPED_CELL_NAMES",
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
    "scalar_chain",
    "ScalarChain",
    "imprecisions",
    "Imprecision",
    "latex",
    "text",
    "difference_is_zero",
    "Layer",
    "SkipDerivation",
    "residual",
    "highway",
    "highway_limit",
    "dense",
    "DenseStack",
    "dense_stack",
    "skip_block",
    "path_count",
    "grid_paths",
    "stack_jacobian",
    "stack_steps",
    "causal_pattern",
    "bidirectional_step",
]
