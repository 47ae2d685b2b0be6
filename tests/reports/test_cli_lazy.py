"""The lazy command line: each command imports only what it uses (issue 13).

Every import check runs in a fresh interpreter (``sys.modules`` of the test process already holds
everything), which calls ``gradproof.reports.cli.main([...])`` and prints the heavy modules it
finds loaded afterwards.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from gradproof.reports import cli as cli_module
from gradproof.reports.cli import COMMANDS, SHORT_HELP, cli

HEAVY = ("sympy", "numpy", "torch", "matplotlib", "scipy")

#: Runs the CLI with argv[1:] and prints {"code": ..., "loaded": [heavy modules in sys.modules]}.
PROBE = f"""
import json, sys
from gradproof.reports.cli import main
code = main(sys.argv[1:])
print(json.dumps({{"code": code, "loaded": sorted(m for m in {HEAVY!r} if m in sys.modules)}}))
"""


def probe(*args: str, cwd: Path | None = None) -> tuple[int, set[str]]:
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=300, cwd=cwd)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["code"], set(result["loaded"])


# ----------------------------------------------------------------------------- the static table


def test_the_help_table_is_the_commands_own_short_help():
    names = [m.removeprefix("cmd_") for m in COMMANDS]
    assert list(SHORT_HELP) == names
    for module_name in COMMANDS:
        command = importlib.import_module(f"gradproof.reports.{module_name}").command
        assert command.name == module_name.removeprefix("cmd_")  # cmd_NAME holds command NAME
        assert SHORT_HELP[command.name] == command.short_help


def test_help_prints_the_static_table_without_loading_the_commands(capsys):
    group = cli_module.LazyGroup(name="probe")  # a fresh group: no command imported yet
    ctx = group.make_context("gradproof", ["--help"], resilient_parsing=True)
    text = group.get_help(ctx)
    assert not any(group.commands.is_loaded(n) for n in group.commands)
    rows = text.split("Commands:\n", 1)[1]
    for name, summary in SHORT_HELP.items():
        assert f"  {name}" in rows and summary.split()[0] in rows
    assert group.commands["derive"] is cli.commands["derive"]  # looked up on demand, the same object
    assert group.commands.is_loaded("derive")


def test_the_group_still_accepts_added_commands():
    import click

    group = cli_module.LazyGroup(name="probe")

    @click.command("extra", short_help="An extra command added at run time.")
    def extra() -> None:
        click.echo("extra ran")

    group.add_command(extra)
    assert "extra" in group.commands and list(group.commands)[-1] == "extra"
    assert len(group.commands) == len(COMMANDS) + 1
    del group.commands["extra"]
    assert "extra" not in group.commands and len(group.commands) == len(COMMANDS)
    with pytest.raises(KeyError):
        group.commands["nope"]


def test_the_light_name_tables_equal_the_definitions():
    from gradproof.derive import cells, define, names
    from gradproof.numeric.references import REFERENCES
    from gradproof.reports.cmd_verify import REFERENCE_NAMES

    assert names.CELL_NAMES == cells.CELL_NAMES
    assert names.SHIPPED_CELL_NAMES == define.SHIPPED_CELL_NAMES
    assert REFERENCE_NAMES == tuple(REFERENCES)


# ----------------------------------------------------------------------------- imports, fresh


@pytest.mark.parametrize("args", [("--help",), *((name, "--help") for name in SHORT_HELP), ("experiment", "adding", "--help")])
def test_help_imports_nothing_heavy(args):
    code, loaded = probe(*args)
    assert code == 0
    assert loaded == set(), args


def test_derive_imports_sympy_only():
    code, loaded = probe("derive", "lstm")
    assert code == 0
    assert loaded == {"sympy"}


def test_bound_on_a_weight_file_imports_no_torch_or_matplotlib(tmp_path):
    np.save(tmp_path / "W.npy", 0.5 * np.eye(3))
    code, loaded = probe("bound", "--activation", "tanh", "--weights", str(tmp_path / "W.npy"))
    assert code == 0
    assert "numpy" in loaded and not loaded & {"torch", "matplotlib", "scipy"}


def test_verify_complex_step_imports_no_torch():
    code, loaded = probe("verify", "--reference", "complex-step", "--cell", "lstm", "--cell", "gru", "--steps", "3")
    assert code == 0
    assert {"numpy", "sympy"} <= loaded and not loaded & {"torch", "matplotlib", "scipy"}


def test_importing_the_packages_imports_nothing_heavy():
    code = (
        "import sys, gradproof, gradproof.derive, gradproof.numeric, gradproof.reports, gradproof.derive.errors\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


# ----------------------------------------------------------------------------- the lazy re-exports


@pytest.mark.parametrize("package", ["gradproof", "gradproof.derive", "gradproof.numeric"])
def test_every_public_name_is_the_defining_modules_object(package):
    pkg = importlib.import_module(package)
    for name in pkg.__all__:
        value = getattr(pkg, name)
        if isinstance(value, types.ModuleType):
            assert value.__name__ == f"{package}.{name}"  # gradproof.derive, ...
            continue
        if name == "__version__":
            continue  # test_version_is_read_on_first_use
        source = pkg._EXPORTS[name]
        defining = importlib.import_module(f"gradproof.{source}" if package == "gradproof" else f"{package}.{source}")
        assert getattr(defining, name) is value, (package, name)
        assert name in dir(pkg)
    with pytest.raises(AttributeError):
        getattr(pkg, "no_such_name")


def test_a_function_named_like_its_module_stays_the_function():
    # importing numeric/verify.py binds the submodule on the package; the function must win
    code = (
        "import gradproof.numeric.verify, gradproof.numeric.regime, gradproof.derive.gamma,"
        " gradproof.derive.gamma_interval\n"
        "import gradproof.numeric as n, gradproof.derive as d\n"
        "from gradproof.numeric import verify, regime\n"
        "from gradproof.derive import gamma, gamma_interval\n"
        "print(all(callable(f) and f.__name__ == k for f, k in ((verify, 'verify'), (regime, 'regime'),"
        " (gamma, 'gamma'), (gamma_interval, 'gamma_interval'), (n.verify, 'verify'), (d.gamma, 'gamma'))))\n"
        "print(d.gamma('sigmoid'), gradproof.numeric.verify.__module__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["True", "1/4 gradproof.numeric.verify"]


def test_version_is_read_on_first_use():
    from importlib.metadata import version

    import gradproof

    assert gradproof.__version__ == version("gradproof")
    assert "__version__" in dir(gradproof)


# ----------------------------------------------------------------------------- exit


def test_only_the_program_itself_freezes_the_objects_before_exit(monkeypatch, capsys):
    import gc

    frozen: list[bool] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    assert cli_module.main(["derive", "rnn-tanh", "--no-steps"]) == 0  # called from Python: untouched
    assert frozen == []
    monkeypatch.setattr(sys, "argv", ["gradproof", "derive", "rnn-tanh", "--no-steps"])
    assert cli_module.main() == 0  # the program: it exits next
    assert frozen == [True]
    out = capsys.readouterr().out
    assert out.count("rnn-tanh: step Jacobian:") == 2


def test_report_title_default_is_the_report_options_default():
    from gradproof.reports.cmd_report import command
    from gradproof.reports.report import ReportOptions

    ctx = command.make_context("report", ["--no-pdf"])
    assert ctx.params["title"] == ReportOptions.title == "Vanishing and exploding gradients in recurrent networks"
    assert "Vanishing" not in command.get_help(ctx)  # read when the report is built, not for --help
