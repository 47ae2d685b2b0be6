"""The story elements of the report (issue 15): the one-unit chain, near vs far signal, the
summary table and the exercises, each value checked independently of the code under test."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gradproof import derive
from gradproof.derive.scalar import B, U, W, scalar_chain
from gradproof.numeric import gradient_profile
from gradproof.reports.section_exercises import exercises
from gradproof.reports.section_story import (
    MOTIVATION_MARK,
    PRACTICAL,
    _lookup,
    motivation,
    near_far,
    scalar_products,
    takeaway,
)


# -- the one-unit chain (derive/scalar.py) -----------------------------------------------------


def test_scalar_step_is_the_matrix_step_jacobian_at_n_1() -> None:
    ch = scalar_chain("tanh")
    ex = derive.cell("rnn-tanh").explicit(1, 1)
    matrix = derive.step_jacobian("rnn-tanh").explicit(1, 1)[0]
    pre = ex.parameters["W_h"][0] * ex.state[0] + ex.parameters["W_x"][0] * ex.x[0] + ex.parameters["b"][0]
    by_hand = ex.parameters["W_h"][0] * (1 - sp.tanh(pre) ** 2)
    assert sp.simplify(matrix - by_hand) == 0
    assert derive.latex(ch.step) == r"\frac{\partial h^{(k)}}{\partial h^{(k - 1)}} = w \tanh'\left(z^{(k)}\right)"
    assert derive.latex(ch.product).endswith(r"\prod_{k=t + 1}^{T} w \tanh'\left(z^{(k)}\right)")
    assert (ch.gamma, ch.threshold) == (1, 1)
    assert scalar_chain("sigmoid").threshold == 4


@pytest.mark.parametrize("act", ["tanh", "sigmoid"])
def test_scalar_product_equals_brute_force_jacobian(act: str) -> None:
    brute, formula = scalar_chain(act).explicit_chain(3)
    assert derive.difference_is_zero(sp.Matrix([brute]), sp.Matrix([formula]))


def test_scalar_product_matches_torch_autodiff() -> None:
    rng = np.random.default_rng(3)
    w, u, b = 1.3, 0.7, -0.2
    xs = rng.normal(size=12)
    h0 = torch.tensor(0.4, dtype=torch.float64, requires_grad=True)
    h = h0
    for x in xs:
        h = torch.tanh(w * h + u * float(x) + b)
    (grad,) = torch.autograd.grad(h, h0)
    # the derived formula, evaluated: ∏ w σ'(z_k) with σ' from derive
    slope = sp.lambdify(derive.activations.X, scalar_chain("tanh").activation.derivative)
    state, prod = 0.4, 1.0
    for x in xs:
        z = w * state + u * x + b
        prod *= w * slope(z)
        state = math.tanh(z)
    assert prod == pytest.approx(float(grad), rel=1e-12)
    p = {"W_h": np.array([[w]]), "W_x": np.array([[u]]), "b": np.array([b])}
    prof = gradient_profile("rnn-tanh", p, xs[:, None], np.array([0.4]))
    assert math.exp(prof.log_spectral[0]) == pytest.approx(abs(float(grad)), rel=1e-10)


@settings(max_examples=30, deadline=None)
@given(w=st.floats(-3, 3), u=st.floats(-2, 2), b=st.floats(-1, 1), seed=st.integers(0, 1000))
def test_scalar_bound_holds(w: float, u: float, b: float, seed: int) -> None:
    xs = np.random.default_rng(seed).normal(size=(15, 1))
    p = {"W_h": np.array([[w]]), "W_x": np.array([[u]]), "b": np.array([b])}
    log_meas = gradient_profile("rnn-tanh", p, xs).log_spectral
    spans = np.arange(15, 0, -1)
    with np.errstate(divide="ignore"):
        log_bound = spans * np.log(abs(w))  # γ = 1 for tanh
    assert np.all(log_meas <= log_bound + 1e-9)


def test_scalar_products_at_rest_attain_the_bound() -> None:
    data = scalar_products(weights=(0.5, 2.0), steps=10, seed=0)
    for w, row in data["rows"].items():
        assert row["log10_rest"] == pytest.approx(10 * math.log10(float(w)), abs=1e-12)
        assert row["log10_driven"] <= row["log10_bound"] + 1e-12


def test_scalar_chain_rejects_a_bad_span() -> None:
    with pytest.raises(derive.GradproofError, match="span"):
        scalar_chain("tanh").explicit_chain(0)


# -- near vs far --------------------------------------------------------------------------------


def test_near_far_shares_are_fractions_that_shrink_with_distance() -> None:
    data = near_far(seed=0)
    for c, r in data["cells"].items():
        shares = [r["share_far"][str(k)] for k in data["back"]]
        assert all(0.0 <= s <= 1.0 for s in shares), c
        assert shares == sorted(shares, reverse=True), c
        assert r["subject_over_current"] > 0


def test_near_far_share_against_torch_autodiff() -> None:
    """The RNN's share for k = 1 recomputed from torch.nn.RNN's autograd (float64)."""
    from gradproof.numeric import StackedModel, random_sequence
    from gradproof.numeric.convert import to_torch

    from gradproof.reports.section_story import WHY_SIZES

    data = near_far(seed=0)
    model = StackedModel.init("rnn-tanh", hidden=WHY_SIZES["hidden"], inputs=WHY_SIZES["inputs"], seed=0)
    module = to_torch(model).double()
    xs = torch.tensor(random_sequence(WHY_SIZES["steps"], WHY_SIZES["inputs"], seed=5), dtype=torch.float64)
    T = xs.shape[0]
    jac = torch.autograd.functional.jacobian(lambda x: module(x)[0][-1], xs)  # (n, T, m)
    norms = np.array([np.linalg.norm(jac[:, s, :].numpy(), 2) for s in range(T)])
    for k in (1, 5):
        assert data["cells"]["rnn-tanh"]["share_far"][str(k)] == pytest.approx(norms[: T - k].sum() / norms.sum(),
                                                                               rel=1e-9)


# -- summary and boxes --------------------------------------------------------------------------


def test_every_practical_row_points_somewhere_and_looks_up_a_number() -> None:
    fake = {"why": {"cells": {"rnn-tanh": {"share_far": {"10": 0.25}}}}}
    assert _lookup(fake, PRACTICAL[0].measured) == 0.25
    assert _lookup(fake, ("why", "missing")) is None
    labels = {"sec:scalar", "sec:rnn", "sec:why", "sec:clipping", "sec:lstm", "sec:gru", "sec:beyond", "sec:gates"}
    for p in PRACTICAL:
        assert p.where and set(p.where) <= labels


def test_motivation_and_takeaway_blocks() -> None:
    assert motivation("Why.")["text"] == f"{MOTIVATION_MARK}\nWhy."
    assert takeaway("So.")["text"] == "\\begin{gptakeaway}\nSo.\n\\end{gptakeaway}"


# -- exercises ----------------------------------------------------------------------------------


def test_exercise_values_checked_independently() -> None:
    got = {e.key: e.value for e in exercises()}
    expected = {
        "scalar_rest": 0.5**5,  # w^5 at z = 0 where tanh'(0) = 1
        "gamma_tanh3x": 3.0,  # d/dx tanh(3x) = 3 sech²(3x) <= 3
        "threshold_sigmoid": 4.0,  # 1 / (1/4)
        "bound_tanh": 0.9**20,
        "lstm_cell_path": 0.95**50,
        "gru_direct_path": 0.98**100,
        "clipping_cosine": 7 / (5 * math.sqrt(2)),  # (1,1)·(3,4) / (|(1,1)| |(3,4)|)
    }
    assert set(got) == set(expected)
    for k, v in expected.items():
        assert got[k] == pytest.approx(v, rel=1e-12), k
    assert 5 <= len(got) <= 8


def test_exercise_solutions_print_the_derived_objects() -> None:
    ex = {e.key: e for e in exercises()}
    assert derive.latex(scalar_chain("tanh").product) in ex["scalar_rest"].solution
    assert derive.latex(derive.pascanu_bound("gru").direct[0].equation) in ex["gru_direct_path"].solution
    assert r"\frac{1}{3}" in ex["gamma_tanh3x"].solution and "0.1216" in ex["bound_tanh"].solution
    assert W.name == "w" and U.name == "u" and B.name == "b"


# -- the bibliography compiles with latexmk and with plain pdflatex -----------------------------


@pytest.mark.parametrize("engine", ["latexmk", "pdflatex"])
def test_bibliography_compiles_with_either_engine(tmp_path, monkeypatch, engine: str) -> None:
    import re
    import shutil
    from pathlib import Path

    from gradproof.reports import latex as latex_mod

    path = shutil.which(engine)
    assert path, f"{engine} is needed (scripts/install-latex.sh)"
    monkeypatch.setattr(latex_mod, "find_engine", lambda: path)
    bib = Path(latex_mod.__file__).parent / "templates" / "refs.bib"
    shutil.copy(bib, tmp_path / "refs.bib")
    ctx = {"title": "T", "date": "", "version": "0", "seed": 0, "bibliography": "refs",
           "sections": [{"title": "S", "label": "sec:s", "blocks": [
               {"kind": "text", "text": r"As \citet{bengio1994learning} showed \citep{pascanu2013difficulty}."},
               takeaway("Boxed."),
           ]}]}  # fmt: skip
    tex = tmp_path / "report.tex"
    tex.write_text(latex_mod.render_report(ctx), encoding="utf-8")
    latex_mod.compile_pdf(tex)
    log = (tmp_path / "report.log").read_text(errors="replace")
    assert not re.search(r"Citation `[^']*' .*undefined", log) and "There were undefined" not in log
    assert "Bengio" in (tmp_path / "report.bbl").read_text()
    from gradproof.reports.report import FOLDER_README

    for p in tmp_path.iterdir():  # the report folder's README names every file BibTeX adds
        assert p.name in FOLDER_README, p.name
