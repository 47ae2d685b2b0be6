"""gradproof's pytest plugin: a seed option and seeded fixtures for gradient tests.

Registered through the ``pytest11`` entry point, so installing gradproof is enough. It lives in
the top-level package (whose import is cheap) rather than in :mod:`gradproof.numeric`, so a test
run that never asks for these fixtures does not pay for importing SymPy and numpy.

* ``pytest --gradproof-seed N`` — the seed of every fixture below (default 0); the header of the
  run shows it when given, and a failing test that used a fixture names it.
* ``gradproof_seed`` — that seed (an int).
* ``gradproof_rng`` — ``numpy.random.default_rng(seed)``.
* ``gradproof_params(cell, *, hidden=4, inputs=3, torch=False, **kw)`` — a factory:
  :func:`gradproof.numeric.init` with the seed (``kw`` e.g. ``spectral_norm=0.9``); with
  ``torch=True`` a dict of float64 tensors.
* ``gradproof_sequence(T=10, inputs=3, *, scale=1.0, torch=False)`` — a factory:
  :func:`gradproof.numeric.random_sequence` ``(T, inputs)`` with the seed + 1.

The Hypothesis strategies ``parameters``, ``sequences`` and ``cells`` are in
:mod:`gradproof.numeric.testing`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

_USED = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradproof", "gradproof gradient checks")
    group.addoption(
        "--gradproof-seed",
        action="store",
        type=int,
        default=None,
        dest="gradproof_seed",
        help="seed for gradproof's fixtures (gradproof_rng, gradproof_params, gradproof_sequence); default 0",
    )


def pytest_report_header(config: pytest.Config) -> str | None:
    seed = config.getoption("gradproof_seed", default=None)
    return None if seed is None else f"gradproof: --gradproof-seed={seed}"


@pytest.fixture
def gradproof_seed(request: pytest.FixtureRequest) -> int:
    """The seed of gradproof's fixtures: ``--gradproof-seed`` or 0."""
    seed = request.config.getoption("gradproof_seed", default=None)
    seed = 0 if seed is None else int(seed)
    request.node.stash[_USED] = seed
    return seed


@pytest.fixture
def gradproof_rng(gradproof_seed: int) -> Any:
    """``numpy.random.default_rng(gradproof_seed)``."""
    import numpy as np

    return np.random.default_rng(gradproof_seed)


def _maybe_torch(value: Any, as_torch: bool) -> Any:
    if not as_torch:
        return value
    import torch

    if isinstance(value, dict):
        return {k: torch.from_numpy(v.copy()) for k, v in value.items()}
    return torch.from_numpy(value.copy())


@pytest.fixture
def gradproof_params(gradproof_seed: int) -> Callable[..., Any]:
    """Factory: seeded parameters of a cell, ``dict[str, (shape)]`` as :func:`gradproof.numeric.init`."""

    def make(cell: Any = "rnn-tanh", *, hidden: int = 4, inputs: int = 3, torch: bool = False, **kw: Any) -> Any:
        from gradproof.numeric import init

        return _maybe_torch(init(cell, hidden=hidden, inputs=inputs, seed=gradproof_seed, **kw), torch)

    return make


@pytest.fixture
def gradproof_sequence(gradproof_seed: int) -> Callable[..., Any]:
    """Factory: a seeded input sequence ``xs: (T, inputs)`` of N(0, scale²) entries."""

    def make(T: int = 10, inputs: int = 3, *, scale: float = 1.0, torch: bool = False) -> Any:  # noqa: N803
        from gradproof.numeric import random_sequence

        return _maybe_torch(random_sequence(T, inputs, seed=gradproof_seed + 1, scale=scale), torch)

    return make


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed and _USED in item.stash:
        seed = item.stash[_USED]
        report.sections.append(("gradproof", f"gradproof fixtures used seed {seed}: rerun with --gradproof-seed {seed}"))
    return report
