"""numeric.initialization: names, shapes, distribution, spectral rescaling, seeds, bad arguments.

Expected names and shapes are the contract's table (CONTRACT.md "Parameter dicts"), written out
here by hand; the spectral quantities are measured with numpy's own SVD/eigvals (docs/math.md §1).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from gradproof.derive.cells import cell
from gradproof.derive.errors import GradproofError
from gradproof.numeric.initialization import check_parameters, init, random_sequence, recurrent_names

N, M = 5, 3

# name -> ((parameter, shape), ...) with n = 5, m = 3, typed in from the contract.
EXPECTED = {
    "rnn-tanh": (("W_h", (5, 5)), ("W_x", (5, 3)), ("b", (5,))),
    "rnn-sigmoid": (("W_h", (5, 5)), ("W_x", (5, 3)), ("b", (5,))),
    "rnn-relu": (("W_h", (5, 5)), ("W_x", (5, 3)), ("b", (5,))),
    "lstm": (
        ("W_f", (5, 5)), ("W_i", (5, 5)), ("W_o", (5, 5)), ("W_c", (5, 5)),
        ("U_f", (5, 3)), ("U_i", (5, 3)), ("U_o", (5, 3)), ("U_c", (5, 3)),
        ("b_f", (5,)), ("b_i", (5,)), ("b_o", (5,)), ("b_c", (5,)),
    ),
    "gru": (
        ("W_u", (5, 5)), ("W_r", (5, 5)), ("W_h", (5, 5)),
        ("U_u", (5, 3)), ("U_r", (5, 3)), ("U_h", (5, 3)),
        ("b_u", (5,)), ("b_r", (5,)), ("b_h", (5,)),
    ),
    "gru-torch": (
        ("W_r", (5, 5)), ("W_z", (5, 5)), ("W_n", (5, 5)),
        ("U_r", (5, 3)), ("U_z", (5, 3)), ("U_n", (5, 3)),
        ("b_r", (5,)), ("b_z", (5,)), ("b_in", (5,)), ("b_hn", (5,)),
    ),
}  # fmt: skip

# The matrices multiplying h^{(t-1)} (docs/math.md §1, §3, §4).
RECURRENT = {
    "rnn-tanh": ("W_h",),
    "rnn-sigmoid": ("W_h",),
    "rnn-relu": ("W_h",),
    "lstm": ("W_f", "W_i", "W_o", "W_c"),
    "gru": ("W_u", "W_r", "W_h"),
    "gru-torch": ("W_r", "W_z", "W_n"),
}


def _sigma_max(W: np.ndarray) -> float:
    return float(np.linalg.svd(W, compute_uv=False)[0])


def _rho(W: np.ndarray) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(W))))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_names_shapes_and_dtype(name: str) -> None:
    p = init(name, hidden=N, inputs=M, seed=0)
    assert [(k, v.shape) for k, v in p.items()] == list(EXPECTED[name])
    assert all(v.dtype == np.float64 for v in p.values())
    assert check_parameters(name, p) == (N, M)
    assert recurrent_names(name) == RECURRENT[name]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_accepts_a_cell_object(name: str) -> None:
    a = init(cell(name), hidden=2, inputs=4, seed=7)
    b = init(name, hidden=2, inputs=4, seed=7)
    assert list(a) == list(b)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_default_distribution_is_pytorch_uniform() -> None:
    # torch.nn.RNN/LSTM/GRU draw every weight from U(-1/sqrt(hidden), 1/sqrt(hidden)).
    n = 16
    p = init("lstm", hidden=n, inputs=8, seed=3)
    values = np.concatenate([v.ravel() for v in p.values()])
    bound = 1.0 / math.sqrt(n)
    assert np.all(np.abs(values) <= bound)
    # 1536 draws: the extremes come within 1 % of the bound, the mean and variance are uniform's.
    assert values.max() > 0.99 * bound and values.min() < -0.99 * bound
    assert abs(values.mean()) < 0.05 * bound
    np.testing.assert_allclose(values.var(), bound**2 / 3, rtol=0.1)


def test_scale_sets_the_half_width() -> None:
    p = init("rnn-tanh", hidden=30, inputs=30, seed=1, scale=2.5)
    values = np.concatenate([v.ravel() for v in p.values()])
    assert np.all(np.abs(values) <= 2.5)
    assert values.max() > 2.4 and values.min() < -2.4


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("target", [0.25, 1.0, 3.7])
def test_spectral_norm_is_exact(name: str, target: float) -> None:
    n = 6
    p = init(name, hidden=n, inputs=n, seed=11, spectral_norm=target)  # m = n: W_x is square too
    raw = init(name, hidden=n, inputs=n, seed=11)
    with np.errstate(all="raise"):
        for k in RECURRENT[name]:
            assert abs(_sigma_max(p[k]) - target) <= 1e-12 * target
            # rescaled, not redrawn: a positive multiple of the default draw
            factor = p[k][0, 0] / raw[k][0, 0]
            assert factor > 0
            np.testing.assert_allclose(p[k], factor * raw[k], rtol=1e-13, atol=0)
    for k in set(p) - set(RECURRENT[name]):
        assert np.array_equal(p[k], raw[k]), k  # the input matrices and biases are untouched


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("target", [0.5, 1.0, 2.0])
def test_spectral_radius_is_exact(name: str, target: float) -> None:
    p = init(name, hidden=7, inputs=2, seed=5, spectral_radius=target)
    raw = init(name, hidden=7, inputs=2, seed=5)
    with np.errstate(all="raise"):
        for k in RECURRENT[name]:
            assert abs(_rho(p[k]) - target) <= 1e-12 * target
            # a non-normal random matrix: sigma_max > rho (docs/math.md §1, "ρ(W) ≤ σ_max(W)")
            assert _sigma_max(p[k]) > target
    for k in set(p) - set(RECURRENT[name]):
        assert np.array_equal(p[k], raw[k]), k


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sizes_one_stay_two_dimensional(name: str) -> None:
    p = init(name, hidden=1, inputs=1, seed=0, spectral_norm=0.8)
    for k, shape in EXPECTED[name]:
        assert p[k].shape == tuple(1 for _ in shape), k
    for k in RECURRENT[name]:
        assert abs(abs(p[k][0, 0]) - 0.8) <= 1e-15
    q = init(name, hidden=3, inputs=1, seed=0)
    for k, shape in EXPECTED[name]:
        assert q[k].shape == tuple(3 if d == 5 else 1 for d in shape), k


def test_seed_determinism() -> None:
    a = init("gru-torch", hidden=4, inputs=3, seed=123)
    b = init("gru-torch", hidden=4, inputs=3, seed=123)
    c = init("gru-torch", hidden=4, inputs=3, seed=124)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not any(np.array_equal(a[k], c[k]) for k in a)
    assert np.array_equal(a["W_r"], init("gru-torch", hidden=4, inputs=3, seed=np.int64(123))["W_r"])


def test_random_sequence() -> None:
    xs = random_sequence(2000, 3, seed=4, scale=0.5)
    assert xs.shape == (2000, 3) and xs.dtype == np.float64
    assert np.array_equal(xs, random_sequence(2000, 3, seed=4, scale=0.5))
    assert not np.array_equal(xs, random_sequence(2000, 3, seed=5, scale=0.5))
    # N(0, 0.25): sample standard deviation within 5 % for 6000 draws
    np.testing.assert_allclose(xs.std(), 0.5, rtol=0.05)
    assert abs(xs.mean()) < 0.05


BAD_INIT = [
    pytest.param(dict(cell="lstmx"), "unknown cell", id="unknown-cell"),
    pytest.param(dict(cell=3), "cell name must be a string", id="cell-not-string"),
    pytest.param(dict(hidden=0), "hidden must be a positive integer", id="hidden-zero"),
    pytest.param(dict(hidden=-2), "hidden must be a positive integer", id="hidden-negative"),
    pytest.param(dict(hidden=2.0), "hidden must be a positive integer", id="hidden-float"),
    pytest.param(dict(hidden=True), "hidden must be a positive integer", id="hidden-bool"),
    pytest.param(dict(inputs=0), "inputs must be a positive integer", id="inputs-zero"),
    pytest.param(dict(inputs="3"), "inputs must be a positive integer", id="inputs-string"),
    pytest.param(dict(seed=1.5), "seed must be a non-negative integer", id="seed-float"),
    pytest.param(dict(seed=-1), "seed must be a non-negative integer", id="seed-negative"),
    pytest.param(dict(seed=None), "seed must be a non-negative integer", id="seed-none"),
    pytest.param(
        dict(spectral_norm=1.0, spectral_radius=1.0), "mutually exclusive", id="both-spectral"
    ),
    pytest.param(dict(spectral_norm=0.0), "spectral_norm must be a positive", id="norm-zero"),
    pytest.param(dict(spectral_norm=-1.0), "spectral_norm must be a positive", id="norm-negative"),
    pytest.param(dict(spectral_norm=math.inf), "spectral_norm must be a positive", id="norm-inf"),
    pytest.param(dict(spectral_norm=math.nan), "spectral_norm must be a positive", id="norm-nan"),
    pytest.param(dict(spectral_norm="1"), "spectral_norm must be a positive", id="norm-string"),
    pytest.param(dict(spectral_radius=0), "spectral_radius must be a positive", id="rho-zero"),
    pytest.param(dict(spectral_radius=math.inf), "spectral_radius must be a positive", id="rho-inf"),
    pytest.param(dict(scale=0.0), "scale must be a positive", id="scale-zero"),
    pytest.param(dict(scale=-0.1), "scale must be a positive", id="scale-negative"),
]


@pytest.mark.parametrize("override, message", BAD_INIT)
def test_bad_init_arguments(override: dict, message: str) -> None:
    kwargs = dict(cell="rnn-tanh", hidden=3, inputs=2, seed=0) | override
    c = kwargs.pop("cell")
    with pytest.raises(GradproofError, match=message) as info:
        init(c, **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "args, kwargs, message",
    [
        pytest.param((0, 2), dict(seed=0), "T must be a positive integer", id="T-zero"),
        pytest.param((3, 0), dict(seed=0), "inputs must be a positive integer", id="inputs-zero"),
        pytest.param((3, 2), dict(seed="x"), "seed must be", id="seed-string"),
        pytest.param((3, 2), dict(seed=0, scale=0.0), "scale must be a positive", id="scale-zero"),
    ],
)
def test_bad_sequence_arguments(args: tuple, kwargs: dict, message: str) -> None:
    with pytest.raises(GradproofError, match=message):
        random_sequence(*args, **kwargs)


@pytest.mark.parametrize(
    "mutate, message",
    [
        pytest.param(lambda p: p.pop("b"), "missing", id="missing"),
        pytest.param(lambda p: p.update(extra=np.zeros(3)), "unexpected", id="extra"),
        pytest.param(lambda p: p.update(W_x=np.zeros((4, 2))), "W_x .* must have shape", id="shape"),
        pytest.param(lambda p: p.update(b=np.zeros((3, 1))), "b .* must have shape", id="bias-2d"),
        pytest.param(lambda p: p.update(W_h=np.zeros(3)), "square", id="W_h-vector"),
        pytest.param(lambda p: p.update(b=np.array(["a", "b", "c"])), "real numbers", id="dtype"),
    ],
)
def test_check_parameters_rejects(mutate, message: str) -> None:
    p = init("rnn-tanh", hidden=3, inputs=2, seed=0)
    mutate(p)
    with pytest.raises(GradproofError, match=message):
        check_parameters("rnn-tanh", p)
