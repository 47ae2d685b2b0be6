"""Settings for the whole test session."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def _latex_cache_of_this_session(tmp_path_factory: pytest.TempPathFactory):
    """The LaTeX cache (precompiled preamble formats, the last build's .aux state; reports/latex_format.py)
    in this test process's temporary folder, not the user's ``~/.cache``: the tests neither depend on
    what earlier runs left there nor fill it. Commands the tests start inherit it; a test that needs
    another cache sets ``GRADPROOF_LATEX_CACHE`` itself (monkeypatch)."""
    previous = os.environ.get("GRADPROOF_LATEX_CACHE")
    os.environ["GRADPROOF_LATEX_CACHE"] = str(tmp_path_factory.mktemp("latex-cache"))
    yield
    if previous is None:
        os.environ.pop("GRADPROOF_LATEX_CACHE", None)
    else:
        os.environ["GRADPROOF_LATEX_CACHE"] = previous
