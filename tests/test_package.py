"""The package as a user gets it: build the sdist and the wheel, install the wheel into a fresh
virtual environment outside the source tree, and use it from there.

A file missing from the package data (a template, ``py.typed``, a module) fails here, and so does a
top-level name other than ``gradproof`` leaking into site-packages. The venv has no access to the
developer's site-packages (where an editable install could mask a missing file).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# one worker builds the wheel and its venv, and runs every test of this module (pyproject: --dist loadgroup)
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("package")]

#: Runs every doctest of every installed gradproof module; prints "attempted failed".
DOCTESTS = """
import doctest, importlib, pkgutil, gradproof
attempted = failed = 0
names = ["gradproof"] + [m.name for m in pkgutil.walk_packages(gradproof.__path__, "gradproof.")]
for name in names:
    if name.endswith("__main__") or name == "gradproof.pytest_plugin":  # the plugin needs pytest itself
        continue
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    attempted += result.attempted
    failed += result.failed
print(attempted, failed)
"""


def _run(args: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, env=env, timeout=900, **kw)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    """Build sdist + wheel (the wheel from the sdist), and install the wheel into a fresh venv."""
    tmp = tmp_path_factory.mktemp("package")
    dist = tmp / "dist"
    # Built from a copy: setuptools writes gradproof.egg-info and a gradproof-<version>/ release tree
    # into the source folder, and with pytest-xdist each worker that runs a test of this module builds
    # at the same time, so two builds in one folder delete each other's files (seen in CI).
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".hypothesis", ".pytest_cache",
        "gradproof-*", "results"))  # fmt: skip
    built = _run([sys.executable, "-m", "build", "--outdir", str(dist), str(source)], cwd=tmp)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = dist.glob("gradproof-*.whl")
    (sdist,) = dist.glob("gradproof-*.tar.gz")
    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    # torch pinned to the CPU build, as the README does; hypothesis for numeric.testing's strategies
    # (their doctests run below); then the wheel with its own dependencies.
    pip = _run([str(python), "-m", "pip", "install", "-q", "torch==2.13.0", "hypothesis", str(wheel)], cwd=tmp)
    assert pip.returncode == 0, pip.stderr[-3000:]
    away = tmp / "elsewhere"
    away.mkdir()
    return {"wheel": wheel, "sdist": sdist, "python": python, "bin": venv / "bin", "cwd": away}


def test_wheel_installs_one_top_level_name(installed):
    with zipfile.ZipFile(installed["wheel"]) as whl:
        names = whl.namelist()
        top_level = whl.read(next(n for n in names if n.endswith(".dist-info/top_level.txt"))).decode().split()
    assert top_level == ["gradproof"]
    roots = {n.split("/", 1)[0] for n in names if not n.split("/", 1)[0].endswith(".dist-info")}
    assert roots == {"gradproof"}
    for needed in ("gradproof/py.typed", "gradproof/reports/templates/report.tex.j2", "gradproof/__main__.py"):
        assert needed in names


def test_sdist_holds_the_sources_and_the_tests(installed):
    with tarfile.open(installed["sdist"]) as tar:
        names = {n.split("/", 1)[1] for n in tar.getnames() if "/" in n}
    for needed in ("pyproject.toml", "README.md", "gradproof/__init__.py", "derive/cells.py",
                   "numeric/verify.py", "reports/templates/report.tex.j2"):  # fmt: skip
        assert needed in names


def test_import_gradproof_and_not_the_generic_names(installed):
    code = (
        "import importlib, gradproof\n"
        "print(gradproof.__file__)\n"
        "for name in ('derive', 'numeric', 'reports'):\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError:\n"
        "        print('absent', name)\n"
        "print(gradproof.gamma('sigmoid'), gradproof.derive.gamma('tanh'))\n"
    )
    out = _run([str(installed["python"]), "-c", code], cwd=installed["cwd"])
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(str(installed["python"].parent.parent)), lines[0]  # the venv's copy
    assert lines[1:4] == ["absent derive", "absent numeric", "absent reports"]
    assert lines[4] == "1/4 1"


def test_version_matches_the_metadata(installed):
    meta = _run([str(installed["python"]), "-c", "import importlib.metadata as m; print(m.version('gradproof'))"],
                cwd=installed["cwd"])  # fmt: skip
    for args in ([str(installed["bin"] / "gradproof"), "--version"], [str(installed["python"]), "-m", "gradproof", "--version"]):
        out = _run(args, cwd=installed["cwd"])
        assert out.returncode == 0, out.stderr
        assert out.stdout.split()[-1] == meta.stdout.strip()


def test_a_users_own_reports_package_does_not_shadow_gradproof(installed, tmp_path):
    """A data-science project's ``reports/`` package in the current directory changes nothing."""
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "__init__.py").write_text("raise RuntimeError('the user package was imported')\n")
    (tmp_path / "derive.py").write_text("raise RuntimeError('the user module was imported')\n")
    out = _run([str(installed["python"]), "-c", "import gradproof, gradproof.reports.cli; print('ok')"], cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    report = _run([str(installed["python"]), "-m", "gradproof", "report", "--no-pdf", "--out", "R"], cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    tex = (tmp_path / "R" / "report.tex").read_text(encoding="utf-8")
    assert r"\begin{document}" in tex and r"\end{document}" in tex
    assert (tmp_path / "R" / "results.json").is_file()


def test_doctests_pass_from_the_installed_wheel(installed):
    out = _run([str(installed["python"]), "-c", DOCTESTS], cwd=installed["cwd"])
    assert out.returncode == 0, out.stderr[-3000:]
    attempted, failed = map(int, out.stdout.split()[-2:])
    assert failed == 0, out.stdout[-3000:]
    assert attempted >= 20  # the modules' examples really ran
