"""numeric.testing: ``assert_jacobian_close`` for users' suites, the Hypothesis strategies, and
the doctests of the numeric and derive modules.

The planted wrong derivative is docs/math.md §3's ∂c_t/∂c_{t-1} = D(f_t) replaced by D(f_t ⊙ f_t)
(STYLE.md practice 8); the expected step, block and entry of the failure are computed here from
the torch reference's Jacobians, where the dc/dc block is D(f_t).
"""

from __future__ import annotations

import dataclasses
import doctest
import importlib
import subprocess
import sys

import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradproof import numeric
from gradproof.derive.algebra import Diag, hadamard
from gradproof.derive.cells import CELL_NAMES
from gradproof.derive.jacobians import step_jacobian
from gradproof.numeric.references import get_reference
from gradproof.numeric.testing import assert_jacobian_close, cells, parameters, sequences

HYPOTHESIS = settings(
    max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

#: The recurrent matrices (those multiplying h_{t-1}), from the cell definitions in CONTRACT.md.
RECURRENT = {
    "rnn-tanh": ("W_h",), "rnn-sigmoid": ("W_h",), "rnn-relu": ("W_h",),
    "lstm": ("W_f", "W_i", "W_o", "W_c"), "gru": ("W_u", "W_r", "W_h"),
    "gru-torch": ("W_r", "W_z", "W_n"),
}  # fmt: skip


def lstm_step_with_f_squared():
    """The LSTM step Jacobian with the ∂c/∂c block D(f) replaced by D(f ⊙ f) (test-only)."""
    d = step_jacobian("lstm")
    blocks = d.result.blocks
    f = blocks[1, 1].vector
    grid = [[blocks[i, j] for j in range(2)] for i in range(2)]
    grid[1][1] = Diag(hadamard([f, f]))
    return dataclasses.replace(d, result=sp.BlockMatrix(grid))


# -- assert_jacobian_close ---------------------------------------------------------------------------
def test_planted_lstm_derivative_is_caught_with_step_block_and_sides() -> None:
    n, m, T = 3, 2, 8
    p = numeric.init("lstm", hidden=n, inputs=m, seed=0)
    xs = numeric.random_sequence(T, m, seed=1)
    s0 = np.random.default_rng(2).uniform(-0.9, 0.9, 2 * n)
    reference = get_reference("torch").step_jacobians("lstm", p, xs, s0)
    # the correct derivation passes at the default 1e-10
    assert_jacobian_close(numeric.step_jacobians("lstm", p, xs, s0), reference, cell="lstm")

    yours = numeric.step_jacobians("lstm", p, xs, s0, step=lstm_step_with_f_squared())
    with pytest.raises(AssertionError) as info:
        assert_jacobian_close(yours, reference, cell="lstm", quantity="step Jacobian")
    message = str(info.value)

    # where it must point: the largest |f - f²| / (atol + rtol f) over steps and units
    f = np.einsum("tii->ti", reference[:, n:, n:])
    ratio = f * (1 - f) / (1e-12 + 1e-10 * f)
    t, i = np.unravel_index(int(np.argmax(ratio)), ratio.shape)
    assert message.startswith(f"step Jacobian differs at step {t + 1}, block dc/dc, entry ({i}, {i})")
    assert "actual (yours)" in message and "expected (reference)" in message
    assert message.index("actual (yours)") < message.index("expected (reference)")
    # both values are printed, each on its side: yours is f², the reference f
    j = n + i
    assert yours[t, j, j] == pytest.approx(f[t, i] ** 2, rel=1e-15)
    assert f"actual (yours) = {float(yours[t, j, j])!r}, expected (reference) = {float(reference[t, j, j])!r}" in message
    # and the count of bad entries is that of the changed diagonal
    assert f"{T * n} of {T * (2 * n) ** 2} entries out of tolerance" in message


def test_first_step_offsets_the_reported_step() -> None:
    a = np.zeros((3, 2, 2))
    b = a.copy()
    b[0, 1, 0] = 1.0
    with pytest.raises(AssertionError, match=r"differs at step 11, entry \(1, 0\): "):
        assert_jacobian_close(a, b, first_step=11)


def test_within_tolerance_passes_and_just_outside_fails() -> None:
    b = np.full((2, 2, 2), 3.0)
    assert_jacobian_close(b * (1 + 0.9e-10), b)  # |Δ| = 2.7e-10 ≤ 1e-12 + 3e-10
    with pytest.raises(AssertionError):
        assert_jacobian_close(b * (1 + 2e-10), b)  # 6e-10 > 3.01e-10
    assert_jacobian_close(b * (1 + 1e-6), b, rtol=1e-5)  # explicit tolerances are honoured
    assert_jacobian_close(np.eye(2), np.eye(2))  # a single (S, k) Jacobian


def test_nan_and_shape_mismatch_fail() -> None:
    b = np.ones((2, 2, 2))
    a = b.copy()
    a[1, 1, 1] = np.nan
    with pytest.raises(AssertionError, match=r"step 2, .*entry \(1, 1\)"):
        assert_jacobian_close(a, b)
    with pytest.raises(AssertionError, match=r"shapes differ: actual \(yours\) \(2, 2, 3\), "
                       r"expected \(reference\) \(2, 2, 2\)"):  # fmt: skip
        assert_jacobian_close(np.ones((2, 2, 3)), b)
    with pytest.raises(AssertionError, match=r"\(T, S, k\), \(S, k\) or \(k,\)"):
        assert_jacobian_close(np.ones((1, 1, 1, 3)), np.ones((1, 1, 1, 3)))


def test_rnn_blocks_and_input_jacobian_blocks() -> None:
    a = np.zeros((2, 3, 3))
    b = a.copy()
    b[1, 2, 0] = 1.0
    with pytest.raises(AssertionError, match=r"block dh/dh, entry \(2, 0\)"):
        assert_jacobian_close(a, b, cell="rnn-tanh")
    # an LSTM input Jacobian (S = 4, m = 3): columns are the input
    a = np.zeros((2, 4, 3))
    b = a.copy()
    b[0, 3, 2] = 1.0
    with pytest.raises(AssertionError, match=r"step 1, block dc/dx, entry \(1, 2\)"):
        assert_jacobian_close(a, b, cell="lstm", quantity="input Jacobian")


def test_square_input_jacobian_is_named_dx() -> None:
    a = np.zeros((2, 4, 4))  # LSTM, hidden 2, inputs 4
    b = a.copy()
    b[1, 0, 3] = 1.0
    with pytest.raises(AssertionError, match=r"block dh/dx, entry \(0, 3\)"):
        assert_jacobian_close(a, b, cell="lstm", quantity="input Jacobian")


# -- issue 16 item 6: biases, parameter gradients, first failing step, hidden frames ---------------
def test_a_bias_gradient_is_accepted_when_equal_and_located_when_not() -> None:
    g = np.array([0.5, -1.25, 3.0])
    assert_jacobian_close(g, g.copy(), quantity="gradient of b")
    wrong = g.copy()
    wrong[1] = -1.0
    with pytest.raises(AssertionError) as info:
        assert_jacobian_close(wrong, g, quantity="gradient of b")
    assert str(info.value).startswith(
        "gradient of b differs at entry (1): actual (yours) = -1.0, expected (reference) = -1.25"
    )


def test_a_parameter_gradient_names_no_step_and_no_block() -> None:
    ref = np.arange(6.0).reshape(2, 3)
    yours = ref.copy()
    yours[1, 2] += 1.0
    with pytest.raises(AssertionError) as info:
        assert_jacobian_close(yours, ref, quantity="gradient of W_h")
    message = str(info.value)
    assert message.startswith("gradient of W_h differs at entry (1, 2): actual (yours) = 6.0")
    assert "step" not in message and "only block" not in message


def test_the_first_failing_step_is_named_besides_the_worst() -> None:
    ref = np.ones((5, 2, 2))
    yours = ref.copy()
    yours[1, 0, 1] += 1e-3  # first failing step: 2
    yours[3, 1, 0] += 1.0  # worst: step 4
    with pytest.raises(AssertionError) as info:
        assert_jacobian_close(yours, ref)
    message = str(info.value)
    assert message.startswith("Jacobian differs at step 4, entry (1, 0): ")
    assert message.endswith("the first failing step is step 2 (the worst is step 4), 2 of 5 steps fail")


def test_pytest_hides_the_helper_frames(tmp_path) -> None:
    test = tmp_path / "test_user.py"
    test.write_text(
        "import numpy as np\n"
        "from gradproof.numeric.testing import assert_jacobian_close\n\n"
        "def test_mine():\n"
        "    assert_jacobian_close(np.zeros((2, 2)), np.eye(2))\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120, check=False,
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "assert_jacobian_close(np.zeros((2, 2)), np.eye(2))" in out.stdout  # the user's line
    assert "Jacobian differs at entry (0, 0)" in out.stdout
    assert "bad = ~(diff <= allowed)" not in out.stdout  # not the helper's source
    assert "numeric/testing.py" not in out.stdout


# -- the strategies --------------------------------------------------------------------------------
@HYPOTHESIS
@given(data=st.data(), norm=st.floats(0.05, 10.0))
def test_parameters_have_the_asked_spectral_norm(data, norm: float) -> None:
    c, p = data.draw(parameters(cells(), spectral_norm=norm), label="cell, params")
    assert list(p) == list(c.parameter_names)
    n = p[RECURRENT[c.name][0]].shape[0]
    for name in RECURRENT[c.name]:
        W = p[name]
        assert W.shape == (n, n) and W.dtype == np.float64
        np.testing.assert_allclose(np.linalg.svd(W, compute_uv=False)[0], norm, rtol=1e-12)


@HYPOTHESIS
@given(data=st.data(), radius=st.floats(0.05, 10.0))
def test_parameters_have_the_asked_spectral_radius(data, radius: float) -> None:
    c, p = data.draw(parameters(cells(), spectral_radius=radius), label="cell, params")
    for name in RECURRENT[c.name]:
        rho = np.max(np.abs(np.linalg.eigvals(p[name])))
        np.testing.assert_allclose(rho, radius, rtol=1e-10)
        # σ_max ≥ ρ always (docs/math.md §1, lecture imprecision 1)
        assert np.linalg.norm(p[name], 2) >= rho * (1 - 1e-12)


@HYPOTHESIS
@given(
    drawn=parameters("lstm", hidden=st.integers(1, 9), inputs=st.integers(2, 3), spectral_norm=0.7)
)
def test_parameters_accept_strategies_for_sizes(drawn) -> None:
    c, p = drawn
    n, m = p["W_f"].shape[0], p["U_f"].shape[1]
    assert c.name == "lstm" and 1 <= n <= 9 and m in (2, 3)
    assert {k: v.shape for k, v in p.items()} == {
        **{f"W_{g}": (n, n) for g in "fioc"}, **{f"U_{g}": (n, m) for g in "fioc"},
        **{f"b_{g}": (n,) for g in "fioc"},
    }  # fmt: skip
    for g in "fioc":
        np.testing.assert_allclose(np.linalg.norm(p[f"W_{g}"], 2), 0.7, rtol=1e-12)


@HYPOTHESIS
@given(xs=sequences(st.integers(1, 30), 3, scale=0.5))
def test_sequences_shape_and_range(xs: np.ndarray) -> None:
    assert xs.dtype == np.float64 and xs.ndim == 2 and 1 <= xs.shape[0] <= 30 and xs.shape[1] == 3
    assert np.all(np.abs(xs) <= 0.5)


@settings(max_examples=30, deadline=None, database=None)
@given(c=cells())
def test_cells_draws_the_six_cells(c) -> None:
    assert c.name in CELL_NAMES


def test_cells_can_be_restricted() -> None:
    @settings(max_examples=20, deadline=None, database=None)
    @given(c=cells(["lstm", "gru"]))
    def inner(c) -> None:
        assert c.name in ("lstm", "gru")

    inner()


def test_parameters_without_norm_are_the_default_init() -> None:
    # no spectral_norm/radius: PyTorch's U(-1/√n, 1/√n) (numeric.init's documented default)
    @settings(max_examples=20, deadline=None, database=None)
    @given(drawn=parameters("gru-torch", hidden=4, inputs=2))
    def inner(drawn) -> None:
        c, p = drawn
        assert c.name == "gru-torch"
        assert all(np.all(np.abs(v) <= 0.5) for v in p.values())  # 1/√4

    inner()


# -- doctests ----------------------------------------------------------------------------------------
DOCTEST_MODULES = [
    "gradproof.numeric",
    "gradproof.numeric.trajectory",
    "gradproof.numeric.gradients",
    "gradproof.numeric.verify",
    "gradproof.numeric.testing",
    "gradproof.numeric.gradcheck",
    "gradproof.numeric.references",
    "gradproof.numeric.initialization",
    "gradproof.derive",
    "gradproof.derive.jacobians",
    "gradproof.derive.algebra",
    "gradproof.derive.cells",
    "gradproof.derive.activations",
    "gradproof.derive.bptt",
]


@pytest.mark.parametrize("module", DOCTEST_MODULES)
def test_doctests(module: str) -> None:
    mod = importlib.import_module(module)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {module}"
    if module.removeprefix("gradproof.") in ("numeric", "numeric.trajectory", "numeric.gradients", "numeric.verify", "numeric.testing"):
        assert result.attempted > 0, f"{module} has no doctest"
