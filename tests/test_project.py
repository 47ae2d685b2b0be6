"""The project contract: the README's two commands, and .ci/run running exactly the second."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def quick_start_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Quick start", 1)[1]
    block = re.search(r"```(?:sh|bash|console)?\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_quick_start_has_exactly_two_commands():
    main_job, tests = quick_start_commands()
    assert "gradproof report" in main_job and "--out" in main_job
    assert "pytest" in tests
    for command in (main_job, tests):
        # the CPU build of torch is installed first, never an unpinned torch
        assert "torch==2.13.0" in command
        assert command.index("torch==2.13.0") < command.index("pip install .") if "pip install ." in command else True


def test_ci_runs_the_readme_test_command():
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "README.md" in script and "lines[1]" in script
    # the parser in .ci/run extracts the same line as this test
    code = script.split("test_command=$(python3 - <<'PY'\n", 1)[1].split("PY\n)", 1)[0]
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == quick_start_commands()[1]


def test_torch_is_an_optional_extra_with_a_lower_bound_only():
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    core = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    assert "torch" not in core
    assert re.search(r'torch = \["torch>=[0-9.]+"\]', text)
    assert re.search(r'test = \[[^\]]*"torch>=[0-9.]+"', text)


def test_derive_and_numeric_import_without_torch():
    code = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'): raise ImportError('no torch')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from gradproof import derive, numeric\n"
        "import numpy as np\n"
        "p = numeric.init('lstm', hidden=2, inputs=1, seed=0)\n"
        "assert numeric.verify('lstm', p, np.ones((3, 1)), reference='complex-step').ok\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
