"""Result objects render in Jupyter (issue 16 item 8): ``_repr_markdown_`` with their numbers."""

from __future__ import annotations

import numpy as np
import pytest

from gradproof import numeric
from gradproof.numeric.profile import GradientProfile
from gradproof.numeric.regime import regime


def test_verification_renders_as_a_markdown_table() -> None:
    p = numeric.init("gru", hidden=3, inputs=2, seed=0)
    v = numeric.verify("gru", p, numeric.random_sequence(4, 2, seed=1), reference="complex-step")
    md = v._repr_markdown_()
    rows = [line for line in md.splitlines() if line.startswith("| dJ/d") or line.startswith("| step") or line.startswith("| input")]
    assert len(rows) == len(v.checks)
    for c, row in zip(v.checks, rows):
        assert row.startswith(f"| {c.quantity} |") and row.endswith(f"| {c.status} |")
        assert f"{c.max_abs:.2e}" in row
    assert "rtol 1e-10, atol 1e-13" in md and "all within tolerance" in md


def test_profile_regime_trajectory_render() -> None:
    prof = GradientProfile(np.log([0.125, 0.25, 0.5, 1.0]), np.log([0.25, 0.5, 1.0, 2.0]))
    md = prof._repr_markdown_()
    assert "T = 4" in md
    assert f"| 0 | {np.log(0.125):.4g} | {np.log(0.25):.4g} |" in md
    assert f"| 3 | {0.0:.4g} | {np.log(2.0):.4g} |" in md

    r = regime("sigmoid", 2.0 * np.eye(3))  # γ = 1/4, σ_max = 2: η = 1/2 < 1
    md = r._repr_markdown_()
    assert "| 1/4 | 2 | 2 | 0.5 |" in md and r.verdict in md and r.explanation in md

    p = numeric.init("rnn-tanh", hidden=2, inputs=1, seed=0)
    xs = np.zeros((3, 1))
    t = numeric.unroll("rnn-tanh", p, xs, np.array([3.0, 4.0]))
    md = t._repr_markdown_()
    assert "T = 3 steps" in md and "‖h_0‖ = 5" in md


@pytest.mark.parametrize("obj", ["derivation"])
def test_derivation_renders(obj: str) -> None:
    from gradproof.derive import step_jacobian

    d = step_jacobian("gru")
    assert d._repr_latex_().startswith("$\\displaystyle \\begin{aligned}")
