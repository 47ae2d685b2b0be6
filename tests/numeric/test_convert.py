"""numeric.convert: parameter dicts <-> torch.nn modules, and model files.

The gate orders are PyTorch's documented ones (torch.nn.LSTM: weight_ih_l0 = (W_ii|W_if|W_ig|W_io);
torch.nn.GRU: (W_ir|W_iz|W_in)), docs/math.md §3-§4. The hand-written torch cells of
numeric.torch_reference are checked against the real modules' forward pass here.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from gradproof.derive.cells import cell
from gradproof.derive.errors import GradproofError
from gradproof.numeric.convert import TORCH_CELLS, from_torch, load_torch_model, to_torch
from gradproof.numeric.initialization import init, parameter_shapes, random_sequence
from gradproof.numeric.torch_reference import TorchReference

MODULE_OF = {"rnn-tanh": nn.RNN, "rnn-relu": nn.RNN, "lstm": nn.LSTM, "gru-torch": nn.GRU}


def _bitwise_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return list(a) == list(b) and all(
        a[k].dtype == b[k].dtype == np.float64
        and a[k].shape == b[k].shape
        and a[k].tobytes() == b[k].tobytes()
        for k in a
    )


# -- round trip ----------------------------------------------------------------------------------
@st.composite
def cells_and_params(draw: st.DrawFn) -> tuple[str, dict[str, np.ndarray]]:
    name = draw(st.sampled_from(TORCH_CELLS), label="cell")
    n = draw(st.integers(1, 6), label="hidden")
    m = draw(st.integers(1, 6), label="inputs")
    elements = st.floats(allow_nan=False, allow_infinity=False, width=64)  # includes -0.0, huge
    params = {
        k: draw(hnp.arrays(np.float64, shape, elements=elements), label=k)
        for k, shape in parameter_shapes(name, n, m).items()
    }
    return name, params


@settings(max_examples=150, deadline=None)
@given(cells_and_params())
def test_from_torch_inverts_to_torch_bitwise(case: tuple[str, dict[str, np.ndarray]]) -> None:
    name, params = case
    module = to_torch(name, params)
    assert type(module) is MODULE_OF[name]
    c, back = from_torch(module)
    assert c.name == name
    assert _bitwise_equal(params, back)


@pytest.mark.parametrize("name", TORCH_CELLS)
def test_module_configuration(name: str) -> None:
    p = init(name, hidden=3, inputs=2, seed=0)
    module = to_torch(name, p)
    assert type(module) is MODULE_OF[name]
    assert module.num_layers == 1 and not module.bidirectional and not module.batch_first
    assert module.input_size == 2 and module.hidden_size == 3
    assert all(t.dtype == torch.float64 for t in module.parameters())
    if name.startswith("rnn-"):
        assert module.nonlinearity == name[4:]


def test_lstm_chunks_follow_pytorch_order() -> None:
    # PyTorch docs: weight_hh_l0 = (W_hi|W_hf|W_hg|W_ho); g is the lecture's candidate c̃ (docs/math.md §3).
    n = 3
    p = init("lstm", hidden=n, inputs=2, seed=1)
    module = to_torch("lstm", p)
    W, U = module.weight_hh_l0.detach().numpy(), module.weight_ih_l0.detach().numpy()
    b = (module.bias_ih_l0 + module.bias_hh_l0).detach().numpy()
    for j, gate in enumerate("ifco"):
        rows = slice(j * n, (j + 1) * n)
        assert np.array_equal(W[rows], p[f"W_{gate}"])
        assert np.array_equal(U[rows], p[f"U_{gate}"])
        assert np.array_equal(b[rows], p[f"b_{gate}"])


def test_gru_chunks_follow_pytorch_order() -> None:
    # PyTorch docs: weight_hh_l0 = (W_hr|W_hz|W_hn); b_hn sits inside r ⊙ (W_hn h + b_hn) (docs/math.md §4).
    n = 2
    p = init("gru-torch", hidden=n, inputs=3, seed=2)
    module = to_torch("gru-torch", p)
    W, U = module.weight_hh_l0.detach().numpy(), module.weight_ih_l0.detach().numpy()
    b_ih, b_hh = module.bias_ih_l0.detach().numpy(), module.bias_hh_l0.detach().numpy()
    for j, gate in enumerate("rzn"):
        assert np.array_equal(W[j * n : (j + 1) * n], p[f"W_{gate}"])
        assert np.array_equal(U[j * n : (j + 1) * n], p[f"U_{gate}"])
    assert np.array_equal(b_ih[: 2 * n], np.concatenate([p["b_r"], p["b_z"]]))
    assert np.array_equal(b_hh[: 2 * n], np.zeros(2 * n))
    assert np.array_equal(b_ih[2 * n :], p["b_in"]) and np.array_equal(b_hh[2 * n :], p["b_hn"])


# -- the hand-written cells against the real modules ---------------------------------------------
def _module_states(module: nn.Module, name: str, xs: np.ndarray, s0: np.ndarray) -> np.ndarray:
    """h_1..h_T from one whole-sequence call, and the final c for the LSTM."""
    n = module.hidden_size
    x = torch.from_numpy(xs)[:, None, :]
    h0 = torch.from_numpy(s0[:n]).reshape(1, 1, n)
    with torch.no_grad():
        if name == "lstm":
            out, (_, c_T) = module(x, (h0, torch.from_numpy(s0[n:]).reshape(1, 1, n)))
            return out[:, 0, :].numpy(), c_T.reshape(n).numpy()
        out, _ = module(x, h0)
        return out[:, 0, :].numpy(), None


@pytest.mark.parametrize("name", TORCH_CELLS)
@pytest.mark.parametrize(
    "seed, spectral_norm, x_scale",
    [(0, None, 1.0), (1, 0.5, 0.3), (2, 3.0, 3.0)],  # default, contracting, saturating
)
def test_handwritten_cells_match_torch_nn(name: str, seed: int, spectral_norm, x_scale) -> None:
    n, m, T = 4, 3, 25
    p = init(name, hidden=n, inputs=m, seed=seed, spectral_norm=spectral_norm)
    xs = random_sequence(T, m, seed=seed + 10, scale=x_scale)
    S = cell(name).state_size(n)
    s0 = np.random.default_rng(seed).uniform(-0.9, 0.9, S)
    ours = TorchReference().forward(name, p, xs, s0)
    h, c_T = _module_states(to_torch(name, p), name, xs, s0)
    assert ours.shape == (T + 1, S)
    np.testing.assert_array_equal(ours[0], s0)
    np.testing.assert_allclose(ours[1:, :n], h, rtol=0, atol=1e-12)
    if c_T is not None:
        np.testing.assert_allclose(ours[-1, n:], c_T, rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", TORCH_CELLS)
def test_from_torch_of_a_torch_initialised_module(name: str) -> None:
    # PyTorch's own init puts nonzero values in bias_hh: the sums (and b_hn) must carry over.
    torch.manual_seed(5)
    kwargs = dict(nonlinearity=name[4:]) if name.startswith("rnn-") else {}
    module = MODULE_OF[name](input_size=2, hidden_size=5, dtype=torch.float64, **kwargs)
    assert torch.count_nonzero(module.bias_hh_l0) > 0
    c, p = from_torch(module)
    assert c.name == name
    xs = random_sequence(15, 2, seed=3, scale=2.0)
    s0 = np.zeros(c.state_size(5))
    h, _ = _module_states(module, name, xs, s0)
    np.testing.assert_allclose(TorchReference().forward(c, p, xs)[1:, :5], h, rtol=0, atol=1e-12)


def test_batch_first_float32_and_biasless_modules() -> None:
    torch.manual_seed(0)
    bf = nn.GRU(input_size=3, hidden_size=2, batch_first=True, dtype=torch.float64)
    c, p = from_torch(bf)
    assert c.name == "gru-torch"
    assert np.array_equal(p["W_z"], bf.weight_hh_l0[2:4].detach().numpy())

    f32 = nn.LSTM(input_size=2, hidden_size=3)
    _, p32 = from_torch(f32)
    assert all(v.dtype == np.float64 for v in p32.values())
    assert np.array_equal(p32["W_i"], f32.weight_hh_l0[0:3].detach().double().numpy())

    nob = nn.RNN(input_size=2, hidden_size=3, bias=False, dtype=torch.float64)
    _, p0 = from_torch(nob)
    assert np.array_equal(p0["b"], np.zeros(3))


# -- files ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TORCH_CELLS)
def test_state_dict_file_round_trip(name: str, tmp_path: Path) -> None:
    p = init(name, hidden=3, inputs=4, seed=8)
    path = tmp_path / "model.pt"
    torch.save(to_torch(name, p).state_dict(), path)
    nl = {"nonlinearity": name[4:]} if name.startswith("rnn-") else {}
    module = load_torch_model(path, **nl)
    assert all(t.dtype == torch.float64 for t in module.parameters())
    c, back = from_torch(module)
    assert c.name == name
    assert _bitwise_equal(p, back)


@pytest.mark.parametrize("name", TORCH_CELLS)
def test_described_file_round_trip(name: str, tmp_path: Path) -> None:
    p = init(name, hidden=2, inputs=2, seed=9)
    kind = cell(name).kind
    payload = {"type": kind, "state_dict": to_torch(name, p).state_dict()}
    if kind == "rnn":
        payload["nonlinearity"] = name[4:]
    path = tmp_path / "described.pt"
    torch.save(payload, path)
    c, back = from_torch(load_torch_model(str(path)))
    assert c.name == name
    assert _bitwise_equal(p, back)


def test_rnn_state_dict_defaults_to_tanh_and_float32_is_upcast(tmp_path: Path) -> None:
    torch.manual_seed(1)
    module = nn.RNN(input_size=2, hidden_size=3, nonlinearity="relu")  # float32
    path = tmp_path / "relu.pt"
    torch.save(module.state_dict(), path)
    assert from_torch(load_torch_model(path))[0].name == "rnn-tanh"  # a state_dict cannot tell
    c, p = from_torch(load_torch_model(path, nonlinearity="relu"))
    assert c.name == "rnn-relu"
    _, expected = from_torch(module)
    assert _bitwise_equal(expected, p)


def _save(obj, tmp_path: Path, name: str = "bad.pt") -> Path:
    path = tmp_path / name
    torch.save(obj, path)
    return path


def _sd(module: nn.Module) -> dict:
    return module.state_dict()


BAD_FILES = [
    pytest.param(lambda d: d / "missing.pt", "no model file", id="missing"),
    pytest.param(lambda d: d, "no model file", id="directory"),
    pytest.param(
        lambda d: (d / "junk.pt").write_bytes(b"not a torch file at all") and d / "junk.pt",
        "cannot read",
        id="garbage",
    ),
    pytest.param(
        lambda d: (d / "pickle.pt").write_bytes(pickle.dumps({"a": 1})) and d / "pickle.pt",
        "cannot read",
        id="plain-pickle",
    ),
    pytest.param(lambda d: _save(nn.GRU(2, 3), d), "such as a whole nn.Module", id="whole-module"),
    pytest.param(lambda d: _save(torch.zeros(3), d), "holds a Tensor", id="tensor"),
    pytest.param(lambda d: _save(_sd(nn.Linear(2, 3)), d), "not the state_dict", id="linear"),
    pytest.param(
        lambda d: _save(_sd(nn.LSTM(2, 3, num_layers=2)) | {"weight_ih_l1": torch.zeros(12, 4)}, d),
        "mismatched layer shapes: weight_ih_l1 must have shape \\(12, 3\\)",
        id="layer-shapes",
    ),
    pytest.param(
        lambda d: _save(_sd(nn.GRU(2, 3, bidirectional=True)) | {"weight_hh_l0_reverse": torch.zeros(9, 2)}, d),
        "mismatched layer shapes: weight_hh_l0_reverse",
        id="reverse-shapes",
    ),
    pytest.param(
        lambda d: _save({k: v for k, v in _sd(nn.RNN(2, 3, bidirectional=True)).items() if k != "weight_hh_l0_reverse"}, d),
        "not the state_dict",
        id="reverse-missing",
    ),
    pytest.param(
        lambda d: _save({k: v for k, v in _sd(nn.RNN(2, 3, num_layers=2)).items() if k != "bias_ih_l1"}, d),
        "not the state_dict",
        id="bias-missing-in-one-layer",
    ),
    pytest.param(lambda d: _save(_sd(nn.LSTM(2, 3, proj_size=2)), d), "proj_size != 0 is not supported yet", id="proj"),
    pytest.param(
        lambda d: _save({"type": "lstm", "state_dict": _sd(nn.GRU(2, 3))}, d),
        "says type='lstm'",
        id="type-mismatch",
    ),
    pytest.param(lambda d: _save({"type": "gru"}, d), "needs keys", id="no-state-dict"),
    pytest.param(
        lambda d: _save({"type": "gru", "state_dict": _sd(nn.GRU(2, 3)), "extra": 1}, d),
        "needs keys",
        id="extra-key",
    ),
    pytest.param(
        lambda d: _save({"type": "transformer", "state_dict": {}}, d),
        "'type' must be one of",
        id="unknown-type",
    ),
    pytest.param(
        lambda d: _save({"type": "rnn", "nonlinearity": "sigmoid", "state_dict": _sd(nn.RNN(2, 3))}, d),
        "must be 'tanh' or 'relu'",
        id="sigmoid-rnn",
    ),
    pytest.param(
        lambda d: _save({"weight_ih_l0": torch.zeros(5, 2), "weight_hh_l0": torch.zeros(5, 2)}, d),
        "do not have n, 4n",
        id="rows-not-multiple",
    ),
    pytest.param(
        lambda d: _save({"weight_ih_l0": torch.zeros(6, 2), "weight_hh_l0": torch.zeros(9, 3)}, d),
        "do not have n, 4n",
        id="ih-hh-disagree",
    ),
    pytest.param(
        lambda d: _save(_sd(nn.RNN(2, 3)) | {"bias_hh_l0": torch.zeros(4)}, d),
        "bias_hh_l0 must have shape",
        id="bias-shape",
    ),
    pytest.param(
        lambda d: _save(_sd(nn.RNN(2, 3)) | {"weight_hh_l0": torch.zeros(3, 3, dtype=torch.int64)}, d),
        "floating-point tensor",
        id="integer-weights",
    ),
]


@pytest.mark.parametrize("make, message", BAD_FILES)
def test_bad_model_files(make, message: str, tmp_path: Path) -> None:
    path = make(tmp_path)
    with pytest.raises(GradproofError, match=message) as info:
        load_torch_model(path)
    assert "\n" not in str(info.value) and "\x1b" not in str(info.value)


def test_nonlinearity_conflict(tmp_path: Path) -> None:
    path = _save({"type": "rnn", "nonlinearity": "relu", "state_dict": _sd(nn.RNN(2, 3))}, tmp_path)
    assert from_torch(load_torch_model(path, nonlinearity="relu"))[0].name == "rnn-relu"
    with pytest.raises(GradproofError, match="says nonlinearity='relu'"):
        load_torch_model(path, nonlinearity="tanh")
    plain = _save(_sd(nn.RNN(2, 3)), tmp_path, "plain.pt")
    with pytest.raises(GradproofError, match="must be 'tanh' or 'relu'"):
        load_torch_model(plain, nonlinearity="sigmoid")


def _sigmoid_rnn() -> nn.Module:
    module = nn.RNN(2, 3)
    module.nonlinearity = "sigmoid"  # not constructible, but an attribute can be overwritten
    return module


BAD_MODULES = [
    pytest.param(lambda: nn.Linear(2, 3), {}, "expects torch.nn.RNN, LSTM or GRU", id="linear"),
    pytest.param(lambda: nn.RNN(2, 3, num_layers=2), {}, "num_layers=2", id="two-layers"),
    pytest.param(lambda: nn.GRU(2, 3, bidirectional=True), {}, "bidirectional=True", id="bidir"),
    pytest.param(lambda: nn.LSTM(2, 3, proj_size=1), {}, "proj_size=1", id="proj"),
    pytest.param(_sigmoid_rnn, {}, "nonlinearity must be 'tanh' or 'relu'", id="sigmoid"),
    pytest.param(lambda: nn.GRU(2, 3), {"cell": "gru"}, "'gru-torch'", id="gru-as-lecture"),
    pytest.param(lambda: nn.LSTM(2, 3), {"cell": "rnn-tanh"}, "not 'rnn-tanh'", id="mismatch"),
]


@pytest.mark.parametrize("make, kwargs, message", BAD_MODULES)
def test_bad_modules(make, kwargs: dict, message: str) -> None:
    with pytest.raises(GradproofError, match=message) as info:
        from_torch(make(), **kwargs)
    assert "\n" not in str(info.value)


def test_expected_cell_accepted() -> None:
    c, _ = from_torch(nn.GRU(2, 3), cell="gru-torch")
    assert c.name == "gru-torch"


@pytest.mark.parametrize(
    "name, params, message",
    [
        pytest.param("gru", init("gru", hidden=2, inputs=2, seed=0), "gru-torch", id="lecture-gru"),
        pytest.param(
            "rnn-sigmoid", init("rnn-sigmoid", hidden=2, inputs=2, seed=0), "supported", id="sigmoid"
        ),
        pytest.param(
            "lstm", init("gru-torch", hidden=2, inputs=2, seed=0), "must be exactly", id="wrong-names"
        ),
        pytest.param(
            "rnn-tanh",
            {"W_h": np.zeros((2, 2)), "W_x": np.zeros((3, 2)), "b": np.zeros(2)},
            "must have shape",
            id="wrong-shape",
        ),
    ],
)
def test_to_torch_rejects(name: str, params: dict, message: str) -> None:
    with pytest.raises(GradproofError, match=message) as info:
        to_torch(name, params)
    assert "\n" not in str(info.value)


# -- stacked and bidirectional files, models inside a larger network ------------------------------
@pytest.mark.parametrize("name", TORCH_CELLS)
@pytest.mark.parametrize("layers, bidirectional, bias", [(2, False, True), (1, True, False), (3, True, True)])
def test_stacked_state_dict_file_round_trip(name: str, layers: int, bidirectional: bool, bias: bool,
                                            tmp_path: Path) -> None:  # fmt: skip
    from gradproof.numeric.convert import from_torch_stacked

    torch.manual_seed(layers)
    kw = dict(nonlinearity=name[4:]) if name.startswith("rnn-") else {}
    module = MODULE_OF[name](2, 3, num_layers=layers, bidirectional=bidirectional, bias=bias, **kw)
    path = tmp_path / "stack.pt"
    torch.save(module.state_dict(), path)
    loaded = load_torch_model(path, **({"nonlinearity": name[4:]} if kw else {}))
    assert (loaded.num_layers, loaded.bidirectional, loaded.bias) == (layers, bidirectional, bias)
    a, b = from_torch_stacked(module), from_torch_stacked(loaded)
    assert a.cell.name == b.cell.name == name
    for l, d in a.blocks():
        assert _bitwise_equal(dict(a.layers[l][d]), dict(b.layers[l][d]))


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Linear(3, 2)
        self.rnn = nn.LSTM(2, 4, num_layers=2)
        self.head = nn.Linear(4, 1)


class _TwoRnns(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.GRU(2, 3)
        self.decoder = nn.Sequential(nn.GRU(3, 3))


def test_a_module_inside_a_larger_network(tmp_path: Path) -> None:
    from gradproof.numeric.convert import from_torch_stacked, read_torch_file

    net = _Net()
    path = _save(net.state_dict(), tmp_path, "net.pt")
    for prefix in (None, "rnn."):  # found automatically, or given
        tf = read_torch_file(path, prefix=prefix)
        assert tf.prefix == "rnn." and tf.kind == "lstm" and tf.num_layers == 2
        loaded = load_torch_model(path, prefix=prefix)
        a, b = from_torch_stacked(net.rnn), from_torch_stacked(loaded)
        assert all(_bitwise_equal(dict(a.layers[l][0]), dict(b.layers[l][0])) for l in range(2))
    with pytest.raises(GradproofError, match="no key starting with prefix 'lstm.'"):
        load_torch_model(path, prefix="lstm.")
    with pytest.raises(GradproofError, match="not the state_dict of an nn.RNN/LSTM/GRU.*prefix"):
        load_torch_model(path, prefix="embed.")

    two = _save(_TwoRnns().state_dict(), tmp_path, "two.pt")
    with pytest.raises(GradproofError, match=r"several recurrent modules.*'decoder\.0\.', 'encoder\.'") as info:
        load_torch_model(two)
    assert "\n" not in str(info.value)
    assert load_torch_model(two, prefix="decoder.0.").input_size == 3


def test_the_file_says_whether_it_records_the_nonlinearity(tmp_path: Path) -> None:
    from gradproof.numeric.convert import read_torch_file

    plain = _save(_sd(nn.RNN(2, 3, nonlinearity="relu")), tmp_path, "plain.pt")
    assert not read_torch_file(plain).records_nonlinearity
    described = _save({"type": "rnn", "nonlinearity": "relu", "state_dict": _sd(nn.RNN(2, 3))}, tmp_path, "d.pt")
    tf = read_torch_file(described)
    assert tf.records_nonlinearity and tf.nonlinearity == "relu"
    assert read_torch_file(_save(_sd(nn.GRU(2, 3)), tmp_path, "g.pt")).records_nonlinearity


def test_to_torch_of_a_stacked_model_and_misuse() -> None:
    from gradproof.numeric import StackedModel

    model = StackedModel.init("lstm", hidden=2, inputs=3, num_layers=2, bidirectional=True, seed=0)
    module = to_torch(model)
    assert isinstance(module, nn.LSTM) and module.num_layers == 2 and module.bidirectional
    assert module.weight_ih_l1_reverse.shape == (8, 4)
    with pytest.raises(GradproofError, match="takes no params"):
        to_torch(model, {})
    with pytest.raises(GradproofError, match="needs the parameter dict"):
        to_torch("lstm")
    with pytest.raises(GradproofError, match="no torch.nn module"):
        to_torch(StackedModel.init("gru", hidden=2, inputs=2, seed=0))
