"""gradproof.derive — the symbolic layer (SymPy only): what the mathematics is.

>>> from gradproof.derive import gamma, step_jacobian, latex
>>> gamma("sigmoid")
1/4
>>> print(latex(step_jacobian("rnn-tanh").result))
\\operatorname{diag}\\left(\\tanh'\\left(z^{(t)}\\right)\\right) W_{h}

Names are imported on first use (PEP 562): ``import gradproof.derive.errors`` costs no SymPy.
"""

from __future__ import annotations

from typing import Any

from .._lazy import lazy_exports

#: Re-exported name -> the module that defines it (imported on first use, PEP 562).
_EXPORTS: dict[str, str] = {
    "GradproofError": "errors",
    "Activation": "activations",
    "activation": "activations",
    "gamma": "activations",
    "BUILTIN_NAMES": "activations",
    "gamma_interval": "gamma_interval",
    "gamma_is_exact": "gamma_interval",
    "gamma_enclosure": "gamma_interval",
    "GammaEnclosure": "gamma_interval",
    "Cell": "cells",
    "RNN": "cells",
    "LSTM": "cells",
    "GRU": "cells",
    "cell": "cells",
    "CELL_NAMES": "cells",
    "define_cell": "define",
    "DefinedCell": "define",
    "SHIPPED_CELL_NAMES": "define",
    "Derivation": "jacobians",
    "Step": "jacobians",
    "step_jacobian": "jacobians",
    "input_jacobian": "jacobians",
    "bptt_product": "bptt",
    "BPTTProduct": "bptt",
    "parameter_gradients": "bptt",
    "ParameterGradients": "bptt",
    "pascanu_bound": "theorem",
    "Theorem": "theorem",
    "imprecisions": "corrections",
    "Imprecision": "corrections",
    "latex": "algebra",
    "text": "algebra",
    "difference_is_zero": "equality",
    "Layer": "skip",
    "SkipDerivation": "skip",
    "residual": "skip",
    "highway": "skip",
    "highway_limit": "skip",
    "dense": "skip",
    "DenseStack": "skip",
    "dense_stack": "skip",
    "skip_block": "skip",
    "path_count": "architectures",
    "grid_paths": "architectures",
    "stack_jacobian": "architectures",
    "stack_steps": "architectures",
    "causal_pattern": "architectures",
    "bidirectional_step": "architectures",
    "scalar_chain": "scalar",
    "ScalarChain": "scalar",
}

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

__getattr__: Any
__dir__: Any
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
