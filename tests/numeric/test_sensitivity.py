"""numeric.input_sensitivity, and the exact round trip of stacked/bidirectional torch modules."""

from __future__ import annotations

import doctest

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import gradproof as gp
from gradproof.derive.errors import GradproofError
from gradproof.numeric import StackedModel, input_sensitivity
from gradproof.numeric import sensitivity as sensitivity_module
from gradproof.numeric import stacked as stacked_module
from gradproof.numeric.convert import TORCH_CELLS, from_torch_stacked, to_torch
from gradproof.numeric.initialization import parameter_shapes

MODULE = {"rnn-tanh": nn.RNN, "rnn-relu": nn.RNN, "lstm": nn.LSTM, "gru-torch": nn.GRU}


def test_module_doctests() -> None:
    for mod in (stacked_module, sensitivity_module):
        result = doctest.testmod(mod)
        assert result.attempted > 0 and result.failed == 0


def _torch_module(name: str, **kw) -> nn.Module:
    torch.manual_seed(kw.pop("seed", 0))
    extra = {"nonlinearity": name[4:]} if name.startswith("rnn-") else {}
    return MODULE[name](dtype=torch.float64, **extra, **kw)


def _autograd_sensitivity(module: nn.Module, xs: np.ndarray) -> np.ndarray:
    """‖∂o_t/∂x_s‖₂ by torch autograd of the real module's whole-sequence call."""
    X = torch.from_numpy(xs)

    def f(x: torch.Tensor) -> torch.Tensor:
        if module.batch_first:
            return module(x[None])[0][0]
        return module(x[:, None])[0][:, 0]

    J = torch.autograd.functional.jacobian(f, X).numpy()  # (T, Dn, T, m)
    return np.linalg.norm(J.transpose(0, 2, 1, 3), ord=2, axis=(-2, -1))


@pytest.mark.parametrize("name", TORCH_CELLS)
@pytest.mark.parametrize("layers, bidirectional, bias, batch_first",
                         [(1, False, True, False), (2, True, False, True), (3, False, False, True),
                          (4, True, True, False)])  # fmt: skip
def test_input_sensitivity_of_a_torch_module(name, layers, bidirectional, bias, batch_first) -> None:
    module = _torch_module(name, input_size=2, hidden_size=3, num_layers=layers,
                           bidirectional=bidirectional, bias=bias, batch_first=batch_first, seed=layers)  # fmt: skip
    xs = np.random.default_rng(layers).normal(size=(5, 2))
    got = input_sensitivity(module, xs)
    expected = _autograd_sensitivity(module, xs)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10 * expected.max())
    if not bidirectional:
        assert np.all(got[np.triu_indices(5, 1)] == 0.0)
        assert np.all(np.diag(got) > 0) or name == "rnn-relu"
    else:  # the reverse direction reads the future: every entry can be nonzero
        assert np.all(got[np.triu_indices(5, 1)] > 0) or name == "rnn-relu"


def test_float32_module_is_read_in_float64() -> None:
    module = nn.GRU(2, 3, num_layers=2)  # float32
    xs = np.random.default_rng(0).normal(size=(4, 2))
    got = input_sensitivity(module, xs)
    expected = _autograd_sensitivity(module.double(), xs)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_public_name_and_bad_input() -> None:
    assert gp.input_sensitivity is input_sensitivity
    with pytest.raises(GradproofError, match="StackedModel or a torch.nn.RNN"):
        input_sensitivity({"W_h": np.eye(2)}, np.ones((3, 2)))
    with pytest.raises(GradproofError, match="proj_size"):
        input_sensitivity(nn.LSTM(2, 3, proj_size=2), np.ones((3, 2)))
    with pytest.raises(GradproofError, match=r"xs must have shape"):
        input_sensitivity(nn.GRU(2, 3), np.ones((3, 4)))


# -- round trip ----------------------------------------------------------------------------------
@st.composite
def stacked_models(draw: st.DrawFn) -> StackedModel:
    name = draw(st.sampled_from(TORCH_CELLS), label="cell")
    L = draw(st.integers(1, 3), label="layers")
    bidir = draw(st.booleans(), label="bidirectional")
    bias = draw(st.booleans(), label="bias")
    n = draw(st.integers(1, 3), label="hidden")
    m = draw(st.integers(1, 3), label="inputs")
    D = 2 if bidir else 1
    elements = st.floats(-3, 3, allow_nan=False, width=64)  # includes -0.0
    layers = []
    for l in range(L):
        dirs = []
        for _ in range(D):
            p = {}
            for k, shape in parameter_shapes(name, n, m if l == 0 else D * n).items():
                if len(shape) == 1 and not bias:
                    p[k] = np.zeros(shape)
                else:
                    p[k] = draw(hnp.arrays(np.float64, shape, elements=elements), label=k)
            dirs.append(p)
        layers.append(tuple(dirs))
    return StackedModel(name, tuple(layers), bidirectional=bidir, bias=bias,
                        batch_first=draw(st.booleans(), label="batch_first"))  # fmt: skip


def _outputs(module: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        out, hidden = module(x)
    return (out, *hidden) if isinstance(hidden, tuple) else (out, hidden)


@settings(max_examples=80, deadline=None)
@given(stacked_models(), st.integers(1, 4), st.integers(0, 2**16))
def test_round_trip_is_bit_for_bit(model: StackedModel, T: int, seed: int) -> None:
    m = to_torch(model)
    assert (m.num_layers, m.bidirectional, m.bias, m.batch_first) == (
        model.num_layers, model.bidirectional, model.bias, model.batch_first)
    back = from_torch_stacked(m)
    for l, d in model.blocks():  # parameters: bitwise
        a, b = model.layers[l][d], back.layers[l][d]
        assert list(a) == list(b) and all(a[k].tobytes() == b[k].tobytes() for k in a)
    m2 = to_torch(back)  # outputs: bit for bit
    x = torch.from_numpy(np.random.default_rng(seed).normal(size=(2, T, model.inputs)))
    if not model.batch_first:
        x = x.transpose(0, 1).contiguous()
    for u, v in zip(_outputs(m, x), _outputs(m2, x)):
        assert u.dtype == v.dtype == torch.float64
        assert u.numpy().tobytes() == v.numpy().tobytes()
    for (k1, t1), (k2, t2) in zip(m.state_dict().items(), m2.state_dict().items()):
        assert k1 == k2 and t1.numpy().tobytes() == t2.numpy().tobytes()


@pytest.mark.parametrize("name", TORCH_CELLS)
def test_torch_initialised_stack_round_trip(name: str) -> None:
    # torch's own init fills bias_hh too; gradproof keeps one bias per gate (the float64 sum), so
    # the rebuilt module agrees to one rounding of the bias, and exactly from then on.
    m = _torch_module(name, input_size=2, hidden_size=3, num_layers=2, bidirectional=True, seed=3)
    m2 = to_torch(from_torch_stacked(m))
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(4, 1, 2)))
    for u, v in zip(_outputs(m, x), _outputs(m2, x)):
        np.testing.assert_allclose(u.numpy(), v.numpy(), rtol=0, atol=1e-14)
    m3 = to_torch(from_torch_stacked(m2))
    for u, v in zip(_outputs(m2, x), _outputs(m3, x)):
        assert u.numpy().tobytes() == v.numpy().tobytes()
