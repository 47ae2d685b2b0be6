"""gradproof.numeric — the derived formulas evaluated on numbers, checked against references.

>>> import numpy as np
>>> from gradproof.numeric import init, random_sequence, gradient_profile
>>> p = init("rnn-tanh", hidden=4, inputs=2, seed=0, spectral_norm=0.5)
>>> prof = gradient_profile("rnn-tanh", p, random_sequence(50, 2, seed=0))
>>> bool(prof.log_spectral[0] < 50 * np.log(0.5) + 1e-9)   # the bound η^{T} with γ = 1
True

PyTorch is optional: ``from_torch``, ``from_torch_stacked``, ``to_torch``, ``load_torch_model`` and the ``torch`` references
import it when first used.
"""

from typing import Any

from .activations import numpy_pair, torch_function
from .clipping import clip_by_norm, clip_by_value
from .gradcheck import check_gradient, check_jacobian, check_jvp, check_recurrent_backward, check_vjp
from .deep import DepthProfile, feedforward_profile
from .gradients import gradient_profile, input_jacobians, parameter_gradients, step_jacobians
from .initialization import init, random_sequence
from .lyapunov import LyapunovSpectrum, lyapunov_spectrum
from .profile import GradientProfile
from .references import REFERENCES, get_reference
from .cell_regime import CellRegime
from .regime import Regime, bound_profile, regime
from .sensitivity import input_sensitivity
from .stacked import (
    StackedModel,
    StackedTrajectory,
    StackRegime,
    stack_regime,
    depth_profile,
    input_output_jacobians,
    layer_input_jacobians,
    stacked_step_jacobians,
    time_profiles,
    unroll_stacked,
)
from .trajectory import Trajectory, unroll
from .verify import Verification, verify

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

_TORCH = {"from_torch", "to_torch", "load_torch_model", "from_torch_stacked"}


def __getattr__(name: str) -> Any:
    if name in _TORCH:
        from . import convert

        return getattr(convert, name)
    raise AttributeError(f"module 'numeric' has no attribute {name!r}")
