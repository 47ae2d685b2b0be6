"""gradproof.numeric — the derived formulas evaluated on numbers, checked against references.

>>> import numpy as np
>>> from gradproof.numeric import init, random_sequence, gradient_profile
>>> p = init("rnn-tanh", hidden=4, inputs=2, seed=0, spectral_norm=0.5)
>>> prof = gradient_profile("rnn-tanh", p, random_sequence(50, 2, seed=0))
>>> bool(prof.log_spectral[0] < 50 * np.log(0.5) + 1e-9)   # the bound η^{T} with γ = 1
True

PyTorch is optional: ``from_torch``, ``from_torch_stacked``, ``to_torch``, ``load_torch_model`` and the ``torch`` references
import it when first used.

Every name is imported on first use (PEP 562), so importing the package costs no numpy.
"""

from __future__ import annotations

from typing import Any

from .._lazy import lazy_exports

#: Re-exported name -> the module that defines it (imported on first use, PEP 562).
_EXPORTS: dict[str, str] = {
    "numpy_pair": "activations",
    "torch_function": "activations",
    "init": "initialization",
    "random_sequence": "initialization",
    "unroll": "trajectory",
    "Trajectory": "trajectory",
    "step_jacobians": "gradients",
    "input_jacobians": "gradients",
    "parameter_gradients": "gradients",
    "gradient_profile": "gradients",
    "GradientProfile": "profile",
    "lyapunov_spectrum": "lyapunov",
    "lyapunov_batch": "lyapunov_batch",
    "unroll_batch": "lyapunov_batch",
    "LyapunovSpectrum": "lyapunov",
    "verify": "verify",
    "Verification": "verify",
    "get_reference": "references",
    "REFERENCES": "references",
    "regime": "regime",
    "Regime": "regime",
    "bound_profile": "regime",
    "clip_by_norm": "clipping",
    "clip_by_value": "clipping",
    "check_jacobian": "gradcheck",
    "check_jvp": "gradcheck",
    "check_vjp": "gradcheck",
    "check_gradient": "gradcheck",
    "check_recurrent_backward": "gradcheck",
    "from_torch": "convert",
    "to_torch": "convert",
    "load_torch_model": "convert",
    "from_torch_stacked": "convert",
    "StackedModel": "stacked",
    "StackedTrajectory": "stacked",
    "unroll_stacked": "stacked",
    "stacked_step_jacobians": "stacked",
    "layer_input_jacobians": "stacked",
    "input_output_jacobians": "stacked",
    "time_profiles": "stacked",
    "depth_profile": "stacked",
    "StackRegime": "stacked",
    "stack_regime": "stacked",
    "input_sensitivity": "sensitivity",
    "feedforward_profile": "deep",
    "DepthProfile": "deep",
    "CellRegime": "cell_regime",
}

__all__ = [
    "numpy_pair",
    "torch_function",
    "init",
    "random_sequence",
    "unroll",
    "Trajectory",
    "step_jacobians",
    "input_jacobians",
    "parameter_gradients",
    "gradient_profile",
    "GradientProfile",
    "lyapunov_spectrum",
    "lyapunov_batch",
    "unroll_batch",
    "LyapunovSpectrum",
    "verify",
    "Verification",
    "get_reference",
    "REFERENCES",
    "regime",
    "Regime",
    "CellRegime",
    "bound_profile",
    "clip_by_norm",
    "clip_by_value",
    "check_jacobian",
    "check_jvp",
    "check_vjp",
    "check_gradient",
    "check_recurrent_backward",
    "from_torch",
    "to_torch",
    "load_torch_model",
    "from_torch_stacked",
    "StackedModel",
    "StackedTrajectory",
    "unroll_stacked",
    "stacked_step_jacobians",
    "layer_input_jacobians",
    "input_output_jacobians",
    "time_profiles",
    "depth_profile",
    "input_sensitivity",
    "StackRegime",
    "stack_regime",
    "feedforward_profile",
    "DepthProfile",
]

__getattr__: Any
__dir__: Any
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
