"""reports/section_user_cell.py: the report's section for a cell defined by equations.

The section is built directly (fast) for each shipped cell; the LaTeX it holds is compared with
``derive.latex`` of the derived objects, its numbers with results computed here by numeric.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from gradproof import derive, reports
from gradproof.derive.algebra import JacobianSymbol, latex
from gradproof.derive.define import SHIPPED
from gradproof.reports.latex import render_report
from gradproof.reports.output import to_jsonable
from gradproof.reports.section_user_cell import section_user_cell
from gradproof.reports.sections import Context, refer_to_figures

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "cells"


def _build(tmp_path: Path, name: str):
    state, _ = SHIPPED[name]
    path = EXAMPLES / f"{name}.txt"
    text = path.read_text()
    cell = derive.define_cell(name, state, text)
    (tmp_path / "figures").mkdir()
    ctx = Context(figures=tmp_path / "figures", seed=0, cells=("rnn-tanh",))
    section, results = section_user_cell(ctx, cell=cell, source=text, origin=f"examples/cells/{name}.txt")
    return cell, text, section, results


def _math(section) -> str:
    return "\n".join(b.get("math", "") + "\n".join(b.get("lines", [])) for b in section["blocks"])


@pytest.mark.parametrize("name", list(SHIPPED))
def test_section_prints_every_jacobian_block_and_the_numbers(tmp_path, name):
    cell, text, section, results = _build(tmp_path, name)
    math = _math(section)
    d = derive.step_jacobian(cell)
    # every block of the step Jacobian appears, printed by derive.latex from the derived object
    for (out, var), expr in d.blocks.items():
        lhs = latex(JacobianSymbol(out, var)) if len(d.blocks) > 1 else latex(d.lhs)
        assert lhs in math
        first = next(iter(expr.args)) if hasattr(expr, "args") and type(expr).__name__ == "MatAdd" else expr
        assert latex(first) in math
    for eq in cell.equations:
        assert latex(eq.rhs) in math
    # the equations as typed, escaped: every assignment line appears in typewriter type
    body = " ".join(b.get("text", "") for b in section["blocks"])
    assert r"\texttt{" in body and "@" in body
    assert r"\_" in body or "_" not in text
    # the numbers: verification against both references within 1e-10, from results.json
    for ref in ("torch", "complex-step"):
        v = results["verification"][ref]
        assert v["ok"] is True and max(v["max_rel"].values()) <= 1e-10
    assert results["regime"]["regime"] in ("vanishing guaranteed", "exploding possible", "boundary",
                                           "not decided (the bound depends on the state)")
    assert results["profile"]["data_bound_holds"] is True
    prof = results["profile"]
    assert np.all(np.asarray(prof["log_spectral"]) <= np.asarray(prof["log_data_bound"]) + 1e-9)
    # every figure is referenced, the file exists, and the whole thing renders and serialises
    fig = [b for b in section["blocks"] if b["kind"] == "figure"]
    assert len(fig) == 1 and (tmp_path / fig[0]["path"]).is_file()
    assert refer_to_figures(section["blocks"]) == section["blocks"]  # already referenced in the text
    tex = render_report({"title": "t", "date": "d", "version": "v", "seed": 0, "sections": [section]})
    assert "Your cell: " + name in tex
    json.dumps(to_jsonable(results))


def test_gamma_of_a_cell_without_closed_form_is_an_enclosure(tmp_path):
    text = "h = silu(W @ h + U @ x + b)\n"
    cell = derive.define_cell("swish_rnn", ("h",), text)
    (tmp_path / "figures").mkdir()
    ctx = Context(figures=tmp_path / "figures", seed=1, cells=("rnn-tanh",))
    section, results = section_user_cell(ctx, cell=cell, source=text, origin="mine.txt")
    g = results["regime"]["gamma"]["silu"]
    assert g["exact"] is None
    lines = [ln for b in section["blocks"] if b["kind"] == "align" for ln in b["lines"] if r"\gamma_{\mathrm{silu}}" in ln]
    assert len(lines) == 1 and r"\in" in lines[0] and "1.0998" in lines[0]
    # the vanilla form: eta = gamma_hi * sigma_max(W) (docs/math.md §1), shown in the text
    W = np.asarray(results["regime"]["blocks"]["W"]["sigma_max"])
    assert results["regime"]["eta"] == pytest.approx(g["gamma_upper"] * float(W), rel=1e-14)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SHIPPED))
def test_section_compiles_without_overfull_lines(tmp_path, name):
    """The typed equations, every Jacobian block and the bounds fit the page (no overfull box)."""
    from gradproof.reports.figures import use_style
    from gradproof.reports.latex import compile_pdf, overfull_boxes

    use_style()
    _, _, section, _ = _build(tmp_path, name)
    tex = tmp_path / "report.tex"
    # with the report's bibliography, as the report compiles it (the section cites with natbib)
    shutil.copy(Path(reports.__file__).parent / "templates" / "refs.bib", tmp_path / "refs.bib")
    tex.write_text(render_report({"title": "t", "date": "d", "version": "v", "seed": 0, "sections": [section],
                                  "bibliography": "refs"}))
    compile_pdf(tex)
    assert (tmp_path / "report.pdf").is_file()
    assert overfull_boxes(tmp_path / "report.log", min_pt=1.0) == []
    log = (tmp_path / "report.log").read_text(errors="replace")
    assert not re.search(r"Citation `[^']*' on page \d+ undefined", log)
