"""gradproof — derive, verify and explain why gradients vanish or explode in recurrent networks.

One import name for the three layers, which stay separate folders in the source tree:

* :mod:`gradproof.derive`  — SymPy only: the cells, their Jacobians, BPTT, the theorem;
* :mod:`gradproof.numeric` — the derived formulas on numbers, checked against references;
* :mod:`gradproof.reports` — the LaTeX report, its figures and the ``gradproof`` command line.

The everyday API is re-exported here, so ``import gradproof as gp`` is enough:

>>> import gradproof as gp
>>> gp.gamma("sigmoid")
1/4
>>> p = gp.init("rnn-tanh", hidden=3, inputs=2, seed=0, spectral_norm=0.5)
>>> gp.step_jacobians("rnn-tanh", p, gp.random_sequence(4, 2, seed=1)).shape
(4, 3, 3)

Names are loaded on first use (PEP 562), so ``import gradproof`` itself is cheap and the command
line does not pay for SymPy, numpy or matplotlib before it needs them. ``parameter_gradients``
exists in both layers (the symbolic BPTT sums and their numeric values): use
``gp.derive.parameter_gradients`` or ``gp.numeric.parameter_gradients``.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

# In a source checkout the three layers are the folders beside this one (pyproject.toml maps them
# into the package when it is installed). Let them be found there too, so ``python -m gradproof``
# from a clone works whether or not the clone itself is the installed copy. An installed wheel has
# no pyproject.toml beside it, so nothing changes there.
# (os.path, not pathlib, and the version read on first use: ``gradproof --help`` pays for neither.)
_SOURCE_TREE = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
if os.path.isfile(os.path.join(_SOURCE_TREE, "pyproject.toml")) and os.path.isfile(
    os.path.join(_SOURCE_TREE, "derive", "__init__.py")
):
    __path__.append(_SOURCE_TREE)  # type: ignore[name-defined]


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("gradproof")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from an uninstalled tree
        return "0+unknown"

#: Re-exported name -> the subpackage that defines it.
_EXPORTS: dict[str, str] = {
    # derive: what the mathematics is
    **dict.fromkeys(
        (
            "GradproofError",
            "Activation",
            "activation",
            "gamma",
            "gamma_interval",
            "gamma_is_exact",
            "Cell",
            "RNN",
            "LSTM",
            "GRU",
            "cell",
            "CELL_NAMES",
            "Derivation",
            "step_jacobian",
            "input_jacobian",
            "bptt_product",
            "pascanu_bound",
            "Theorem",
            "imprecisions",
            "latex",
            "text",
        ),
        "derive",
    ),
    # numeric: what it gives on numbers
    **dict.fromkeys(
        (
            "init",
            "random_sequence",
            "unroll",
            "Trajectory",
            "step_jacobians",
            "input_jacobians",
            "gradient_profile",
            "GradientProfile",
            "lyapunov_spectrum",
            "LyapunovSpectrum",
            "verify",
            "Verification",
            "regime",
            "Regime",
            "bound_profile",
            "clip_by_norm",
            "clip_by_value",
            "from_torch",
            "to_torch",
            "load_torch_model",
            "from_torch_stacked",
            "StackedModel",
            "input_sensitivity",
        ),
        "numeric",
    ),
}

_SUBPACKAGES = ("derive", "numeric", "reports")

__all__ = ["__version__", *_SUBPACKAGES, *_EXPORTS]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    __version__: str
    from . import derive, numeric, reports
    from .derive import (
        CELL_NAMES,
        GRU,
        LSTM,
        RNN,
        Activation,
        Cell,
        Derivation,
        GradproofError,
        Theorem,
        activation,
        bptt_product,
        cell,
        gamma,
        gamma_interval,
        gamma_is_exact,
        imprecisions,
        input_jacobian,
        latex,
        pascanu_bound,
        step_jacobian,
        text,
    )
    from .numeric import (
        GradientProfile,
        LyapunovSpectrum,
        Regime,
        StackedModel,
        Trajectory,
        Verification,
        bound_profile,
        clip_by_norm,
        clip_by_value,
        from_torch,
        from_torch_stacked,
        gradient_profile,
        init,
        input_jacobians,
        input_sensitivity,
        load_torch_model,
        lyapunov_spectrum,
        random_sequence,
        regime,
        step_jacobians,
        to_torch,
        unroll,
        verify,
    )


def __getattr__(name: str) -> Any:
    if name == "__version__":
        globals()[name] = _version()
        return globals()[name]
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'gradproof' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
