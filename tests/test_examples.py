"""The teaching notebook in examples/ runs from top to bottom and shows what it claims.

It is executed with nbclient in a real Jupyter kernel, so a change that breaks the README's
notebook (an API renamed, a repr that no longer renders as mathematics) fails the suite.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "lecture.ipynb"


# the notebook runs once: every test reading it is on one worker (pyproject: --dist loadgroup)
pytestmark = pytest.mark.xdist_group("notebook")


@pytest.fixture(scope="module")
def executed():
    import nbclient
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook without outputs"
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    return nb


def _outputs(nb, needle: str) -> list[dict]:
    cells = [c for c in nb.cells if c.cell_type == "code" and needle in c.source]
    assert cells, f"no cell contains {needle!r}"
    return cells[0].outputs


@pytest.mark.slow
def test_notebook_runs_without_errors(executed):
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors == []


@pytest.mark.slow
def test_derivations_render_as_mathematics(executed):
    (out,) = _outputs(executed, 'd = gp.step_jacobian("rnn-tanh")')
    latex = out["data"]["text/latex"]
    assert r"\operatorname{diag}" in latex and "W_{h}" in latex
    (out,) = _outputs(executed, "thm = gp.pascanu_bound")
    assert "text/latex" in out["data"]


@pytest.mark.slow
def test_notebook_shows_the_lecture_claims(executed):
    (out,) = _outputs(executed, "gp.gamma(name)")
    text = out["data"]["text/plain"]
    assert "'sigmoid': 1/4" in text and "'tanh(3*x)': 3" in text
    verdicts = "".join(o.get("text", "") for o in _outputs(executed, 'gp.regime("tanh", W)'))
    assert "sigma_max = 0.5: vanishing guaranteed" in verdicts
    assert "sigma_max = 3.0: exploding possible" in verdicts
    assert any("image/png" in o.get("data", {}) for o in _outputs(executed, "fig, ax = plt.subplots"))


def test_readme_links_the_notebook():
    assert "examples/lecture.ipynb" in (ROOT / "README.md").read_text(encoding="utf-8")
