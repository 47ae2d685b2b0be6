"""numeric.references: the references behind one interface, chosen by name.

The perturbation references differentiate the cell's forward definitions: complex-step,
f'(x) = Im f(x + ih)/h with h = 1e-20, has no subtractive cancellation and is exact to rounding
for analytic functions (Squire & Trapp 1998, SIAM Review 40(1)); central differences have a
truncation error O(h²) and a rounding error O(ε/h). The ground truth here is torch autograd of the
cells typed in from docs/math.md (:mod:`numeric.torch_reference`), which is independent of both.
"""

from __future__ import annotations

import numpy as np
import pytest

from gradproof import numeric
from gradproof.derive.cells import CELL_NAMES, RNN, cell
from gradproof.derive.errors import GradproofError
from gradproof.numeric.references import (
    REFERENCES,
    TOLERANCES,
    ComplexStepReference,
    FiniteDifferenceReference,
    _Perturbation,
    get_reference,
)

NAMES = ("torch", "torch.nn", "complex-step", "finite-diff")
METHODS = ("forward", "step_jacobians", "input_jacobians", "parameter_gradients")


def problem(name: str, n: int = 3, m: int = 2, T: int = 6, seed: int = 0):  # noqa: N803
    p = numeric.init(name, hidden=n, inputs=m, seed=seed)
    xs = numeric.random_sequence(T, m, seed=seed + 1)
    rng = np.random.default_rng(seed + 2)
    s0 = rng.uniform(-0.9, 0.9, cell(name).state_size(n))
    return p, xs, s0, rng.standard_normal((T, n))


def close(a: np.ndarray, b: np.ndarray, rtol: float, what: str = "") -> None:
    """Entrywise rtol with an absolute floor rtol · max|b| (cancelling sums)."""
    assert a.shape == b.shape, what
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * float(np.max(np.abs(b))), err_msg=what)


# -- the registry -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_get_reference_by_name(name: str) -> None:
    ref = get_reference(name)
    assert ref.name == name
    for method in METHODS:
        assert callable(getattr(ref, method)), method
    assert name in TOLERANCES


def test_registry_and_tolerances_cover_the_same_names() -> None:
    assert tuple(REFERENCES) == NAMES
    assert set(TOLERANCES) == set(NAMES)
    assert isinstance(get_reference("complex-step"), ComplexStepReference)
    assert isinstance(get_reference("finite-diff"), FiniteDifferenceReference)
    for exact in ("torch", "torch.nn", "complex-step"):
        assert TOLERANCES[exact][0] <= 1e-10  # the acceptance threshold


def test_a_reference_object_is_passed_through() -> None:
    ref = ComplexStepReference()
    assert get_reference(ref) is ref


@pytest.mark.parametrize("bad", ["autograd", "Torch", "complex_step", ""])
def test_unknown_reference_lists_the_names(bad: str) -> None:
    with pytest.raises(GradproofError) as info:
        get_reference(bad)
    message = str(info.value)
    assert f"unknown reference {bad!r}" in message
    for name in NAMES:
        assert name in message


def test_torch_nn_reference_refuses_cells_without_a_module() -> None:
    p, xs, s0, _ = problem("gru")
    with pytest.raises(GradproofError, match=r"torch\.nn.*'gru'.*'torch' reference"):
        get_reference("torch.nn").step_jacobians("gru", p, xs, s0)


# -- complex step is exact ------------------------------------------------------------------------
def test_complex_step_is_exact_on_rnn_tanh() -> None:
    p, xs, s0, w = problem("rnn-tanh", n=5, m=3, T=10)
    cs, torch_ref = get_reference("complex-step"), get_reference("torch")
    close(cs.forward("rnn-tanh", p, xs, s0), torch_ref.forward("rnn-tanh", p, xs, s0), 1e-13, "states")
    close(
        cs.step_jacobians("rnn-tanh", p, xs, s0), torch_ref.step_jacobians("rnn-tanh", p, xs, s0),
        1e-13, "step Jacobians",
    )  # fmt: skip
    close(
        cs.input_jacobians("rnn-tanh", p, xs, s0), torch_ref.input_jacobians("rnn-tanh", p, xs, s0),
        1e-13, "input Jacobians",
    )  # fmt: skip
    g = cs.parameter_gradients("rnn-tanh", p, xs, s0, loss_weights=w)
    g_ref = torch_ref.parameter_gradients("rnn-tanh", p, xs, s0, loss_weights=w)
    assert list(g) == ["W_h", "W_x", "b"]
    for k in g:
        assert g[k].dtype == np.float64
        close(g[k], g_ref[k], 1e-13, f"dJ/d{k}")


@pytest.mark.parametrize("name", ["lstm", "gru", "gru-torch", "rnn-relu"])
def test_complex_step_is_exact_on_other_cells(name: str) -> None:
    # relu: branch on the real part, so away from the kink the complex step is exact too
    p, xs, s0, w = problem(name, n=3, m=2, T=5, seed=1)
    cs, torch_ref = get_reference("complex-step"), get_reference("torch")
    close(cs.step_jacobians(name, p, xs, s0), torch_ref.step_jacobians(name, p, xs, s0), 1e-13)
    close(cs.input_jacobians(name, p, xs, s0), torch_ref.input_jacobians(name, p, xs, s0), 1e-13)
    g = cs.parameter_gradients(name, p, xs, s0, loss_weights=w)
    g_ref = torch_ref.parameter_gradients(name, p, xs, s0, loss_weights=w)
    for k in g:
        close(g[k], g_ref[k], 1e-12, f"dJ/d{k}")  # T-step sums: a few more roundings


def test_complex_step_with_a_linear_cell_is_the_matrix() -> None:
    # identity activation (docs/math.md §1, linear case): ∂h_t/∂h_{t-1} = W_h, ∂h_t/∂x_t = W_x
    lin = RNN(activation="identity")
    p = numeric.init(lin, hidden=3, inputs=2, seed=0)
    xs = numeric.random_sequence(4, 2, seed=1)
    cs = get_reference("complex-step")
    J = cs.step_jacobians(lin, p, xs)
    np.testing.assert_allclose(J, np.broadcast_to(p["W_h"], J.shape), rtol=1e-15, atol=0)
    Jx = cs.input_jacobians(lin, p, xs)
    np.testing.assert_allclose(Jx, np.broadcast_to(p["W_x"], Jx.shape), rtol=1e-15, atol=0)


# -- finite differences are accurate to about 1e-8 --------------------------------------------------
@pytest.mark.parametrize("name", CELL_NAMES)
def test_finite_differences_within_documented_accuracy(name: str) -> None:
    p, xs, s0, w = problem(name, n=2, m=2, T=4, seed=2)
    fd, torch_ref = get_reference("finite-diff"), get_reference("torch")
    rtol, atol = TOLERANCES["finite-diff"]
    a, b = fd.step_jacobians(name, p, xs, s0), torch_ref.step_jacobians(name, p, xs, s0)
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)
    assert np.max(np.abs(a - b)) < 1e-8 * max(1.0, np.max(np.abs(b)))  # the docstring's "about 1e-8"
    np.testing.assert_allclose(
        fd.input_jacobians(name, p, xs, s0), torch_ref.input_jacobians(name, p, xs, s0), rtol=rtol, atol=atol
    )
    g = fd.parameter_gradients(name, p, xs, s0, loss_weights=w)
    g_ref = torch_ref.parameter_gradients(name, p, xs, s0, loss_weights=w)
    for k in g:
        np.testing.assert_allclose(g[k], g_ref[k], rtol=rtol, atol=atol, err_msg=k)


def test_finite_differences_are_not_exact() -> None:
    # the references differ in kind: central differences carry truncation/rounding error that the
    # complex step does not (guards against the two silently being the same code path)
    p, xs, s0, _ = problem("lstm", n=2, m=2, T=3)
    fd = get_reference("finite-diff").step_jacobians("lstm", p, xs, s0)
    cs = get_reference("complex-step").step_jacobians("lstm", p, xs, s0)
    err = np.max(np.abs(fd - cs))
    assert 1e-14 < err < 1e-8


# -- forward and validation -------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_forward_of_every_reference_is_the_trajectory(name: str) -> None:
    p, xs, s0, _ = problem("lstm", n=3, m=2, T=5)
    states = numeric.unroll("lstm", p, xs, s0).states
    np.testing.assert_allclose(get_reference(name).forward("lstm", p, xs, s0), states, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_references_validate_loss_weights(name: str) -> None:
    p, xs, s0, _ = problem("rnn-tanh", n=3, m=2, T=6)
    with pytest.raises(GradproofError, match=r"loss_weights must have shape \(T, hidden\) = \(6, 3\)"):
        get_reference(name).parameter_gradients("rnn-tanh", p, xs, s0, loss_weights=np.ones((6, 2)))


@pytest.mark.parametrize("name", NAMES)
def test_references_validate_s0(name: str) -> None:
    p, xs, _, _ = problem("lstm", n=3, m=2, T=2)
    with pytest.raises(GradproofError, match=r"s0 must have shape \(S,\) = \(6,\)"):
        get_reference(name).step_jacobians("lstm", p, xs, np.zeros(3))


def test_finite_differences_report_their_own_uncertainty_at_a_kink() -> None:
    # relu(z) at z = ±1e-9: the central difference of relu is 1/2, the one-sided slopes 0 and 1
    ref = get_reference("finite-diff")
    p = dict(numeric.init("rnn-relu", hidden=2, inputs=1, seed=0))
    p["W_h"] = np.zeros((2, 2))
    p["W_x"] = np.array([[1.0], [1.0]])
    p["b"] = np.array([0.0, 0.0])
    xs = np.array([[1e-9], [0.5]])
    J = ref.input_jacobians("rnn-relu", p, xs, np.zeros(2))
    u = ref.uncertainty["input"]
    assert J[0, :, 0] == pytest.approx([0.5005, 0.5005], rel=1e-9)  # (1e-6 + 1e-9) / 2e-6
    # one-sided slopes: 1 above; (1e-9 - 0) / 1e-6 = 1e-3 below, so u = 1 - 1e-3
    assert u[0, :, 0] == pytest.approx([0.999, 0.999], rel=1e-6)
    assert J[1, :, 0] == pytest.approx([1.0, 1.0], rel=1e-9) and np.all(u[1] < 1e-8)
    # complex step is exact on the same input and reports no uncertainty
    cs = get_reference("complex-step")
    cs.input_jacobians("rnn-relu", p, xs, np.zeros(2))
    assert np.all(cs.uncertainty["input"] == 0.0)


# -- batched complex step: the same numbers as one pass per parameter entry ---------------------
class _OnePassPerEntry(ComplexStepReference):
    """The complex step perturbing one parameter entry per forward pass (the unbatched loop)."""

    parameter_gradients = _Perturbation.parameter_gradients


@pytest.mark.parametrize("name", CELL_NAMES)
@pytest.mark.parametrize("seed", [0, 7])
def test_batched_complex_step_equals_one_pass_per_entry(name: str, seed: int) -> None:
    p, xs, s0, w = problem(name, n=4, m=3, T=6, seed=seed)
    loop = _OnePassPerEntry().parameter_gradients(name, p, xs, s0, loss_weights=w)
    batched = ComplexStepReference()
    batched.chunk_entries = 40  # several chunks per matrix (16 entries -> chunks of 2)
    seen: list[str] = []
    batched.progress = seen.append
    g = batched.parameter_gradients(name, p, xs, s0, loss_weights=w)
    assert list(g) == list(loop) == list(cell(name).parameter_names)
    for k in g:
        assert g[k].shape == p[k].shape and g[k].dtype == np.float64
        scale = float(np.max(np.abs(loop[k])))
        # same arithmetic per entry; only the order of the sums inside a matrix product differs
        np.testing.assert_allclose(g[k], loop[k], rtol=0, atol=2e-15 * scale, err_msg=f"dJ/d{k}")
        assert not np.any(batched.uncertainty[k])
    assert seen[-1] == f"{cell(name).parameter_names[-1]} {p[cell(name).parameter_names[-1]].size}/" \
                       f"{p[cell(name).parameter_names[-1]].size}"


def test_batched_complex_step_overflow_is_a_gradproof_error() -> None:
    p, xs, s0, w = problem("rnn-relu", n=3, m=2, T=400, seed=0)
    p = {k: v * 40.0 for k, v in p.items()}
    with pytest.raises(GradproofError, match="overflowed"):
        ComplexStepReference().parameter_gradients("rnn-relu", p, xs, s0, loss_weights=w)
