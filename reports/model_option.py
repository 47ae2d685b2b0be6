"""The options every ``--torch-model`` command shares: ``--nonlinearity`` and ``--prefix``.

A state_dict of ``nn.RNN`` does not record whether the model used tanh or relu, so the commands
never guess: they require ``--nonlinearity`` for such a file (issue 16). A model inside a larger
network is found by its key prefix (``--prefix rnn.``), automatically when there is only one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click

from ..derive.errors import GradproofError

__all__ = ["torch_model_options", "UserModel", "load_user_model"]


def torch_model_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--nonlinearity`` and ``--prefix`` to a command that takes ``--torch-model``."""
    f = click.option(
        "--prefix", default=None, metavar="PREFIX",
        help="Key prefix of the recurrent module inside a larger network's state_dict, e.g. "
        "'rnn.' for self.rnn; found automatically when the file holds only one.",
    )(f)  # fmt: skip
    f = click.option(
        "--nonlinearity", type=click.Choice(("tanh", "relu")), default=None,
        help="The nn.RNN nonlinearity; required for an nn.RNN state_dict, which does not record it.",
    )(f)  # fmt: skip
    return f


@dataclass(frozen=True)
class UserModel:
    """A user's model file, checked: the file, the float64 module and gradproof's model."""

    path: str
    file: Any  # numeric.convert.TorchFile
    module: Any  # torch.nn.Module
    model: Any  # numeric.StackedModel

    @property
    def single(self) -> bool:
        """One layer, one direction: the cell-level analysis applies as it is."""
        return self.model.num_layers == 1 and not self.model.bidirectional

    def describe(self) -> str:
        """``lstm, 2 layers, bidirectional, hidden 4, inputs 3``."""
        m = self.model
        parts = [m.cell.name, f"{m.num_layers} layer{'s' if m.num_layers > 1 else ''}"]
        if m.bidirectional:
            parts.append("bidirectional")
        if not m.bias:
            parts.append("no biases")
        return ", ".join(parts + [f"hidden {m.hidden}", f"inputs {m.inputs}"])


def load_user_model(path: str | os.PathLike[str], *, nonlinearity: str | None = None,
                    prefix: str | None = None) -> UserModel:  # fmt: skip
    """Read and check a ``--torch-model`` file; every problem is one GradproofError line."""
    from ..numeric.convert import from_torch_stacked, module_from_file, read_torch_file

    where = os.fspath(path)
    tf = read_torch_file(where, prefix=prefix)
    if tf.kind != "rnn":
        if nonlinearity is not None:
            raise GradproofError(
                f"--nonlinearity applies to an nn.RNN; {where!r} holds an "
                f"nn.{'LSTM' if tf.kind == 'lstm' else 'GRU'} (fixed sigmoid/tanh gates): drop it"
            )
    elif tf.nonlinearity is None and nonlinearity is None:
        raise GradproofError(
            f"{where!r} is an nn.RNN state_dict, which does not record its nonlinearity: pass "
            "--nonlinearity tanh or --nonlinearity relu (gradproof does not guess)"
        )
    elif tf.nonlinearity is not None and nonlinearity is not None and tf.nonlinearity != nonlinearity:
        raise GradproofError(
            f"{where!r} says nonlinearity={tf.nonlinearity!r} but --nonlinearity {nonlinearity} was "
            "passed; drop one of them"
        )
    module = module_from_file(tf, nonlinearity=nonlinearity)
    return UserModel(where, tf, module, from_torch_stacked(module))
