"""The mathematical reference ships with the project (issue 16 item 5): docs/math.md.

Every citation in shipped text (derive, numeric, reports and its templates, README, benchmarks,
docs, tests) points to docs/math.md, and every cited section exists there.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ["derive", "numeric", "reports", "benchmarks", "docs", "tests", "gradproof", "scripts"]
OLD = "MATH" + ".md"  # the old file name, which is not in the repository


def shipped_files() -> list[Path]:
    files = [ROOT / "README.md"]
    for folder in SHIPPED:
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in {".py", ".md", ".tex", ".j2", ".txt", ".toml", ".sh", ".cfg"}:
                files.append(path)
    return files


def test_the_reference_is_in_the_repository() -> None:
    text = (ROOT / "docs" / "math.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (\d+)\. ", text, flags=re.M)
    assert headings == [str(k) for k in range(1, 8)]
    # the formulas a reader looks up (written from the lecture's sources, §1 and §3)
    assert "∂h_t/∂h_{t-1} = D(σ'(z_t)) W_h" in text
    assert "∂c_t/∂c_{t-1} = D(f_t)" in text


def test_no_shipped_text_cites_a_file_that_is_not_there() -> None:
    offenders = [
        f"{p.relative_to(ROOT)}:{i}"
        for p in shipped_files()
        for i, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if OLD in line
    ]
    assert offenders == []


def test_every_cited_section_exists() -> None:
    text = (ROOT / "docs" / "math.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^## (\d+)\. ", text, flags=re.M))
    cited = {
        (str(p.relative_to(ROOT)), m)
        for p in shipped_files()
        for m in re.findall(r"docs/math\.md,? §(\d+)", p.read_text(encoding="utf-8", errors="replace"))
    }
    assert cited, "no citation found: the scan is broken"
    assert {c for c in cited if c[1] not in sections} == set()


@pytest.mark.parametrize("argv", [["derive", "lstm"], ["bound", "--help"], ["verify", "--help"]])
def test_cli_output_cites_no_missing_file(capsys, argv) -> None:
    from gradproof.reports.cli import main

    main(argv)
    out, err = capsys.readouterr()
    assert OLD not in out + err
