"""Tests of reports.figures: headless style, reproducible files, image checks."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from gradproof.derive.errors import GradproofError
from gradproof.reports import figures


@pytest.fixture(autouse=True)
def _restore_rcparams() -> Iterator[None]:
    """use_style() changes global settings: give them back after each test."""
    with matplotlib.rc_context():
        yield


def draw() -> matplotlib.figure.Figure:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    steps = np.arange(1, 41)
    for rate in (0.9, 1.0, 1.1):
        ax.semilogy(steps, rate**steps, label=rf"$\rho = {rate}$")
    ax.set_xlabel("steps back")
    ax.set_ylabel(r"$\|\partial h_T / \partial h_t\|$")
    ax.legend()
    return fig


def test_use_style_is_headless_and_fixed() -> None:
    figures.use_style()
    assert matplotlib.get_backend().lower() == "agg"
    rc = matplotlib.rcParams
    assert rc["pdf.fonttype"] == 42
    assert rc["svg.hashsalt"] == "gradproof"
    assert rc["figure.constrained_layout.use"] is True
    assert 9 <= rc["font.size"] <= 10
    assert rc["axes.grid"] is True


def test_style_context_restores_settings() -> None:
    before = matplotlib.rcParams["font.size"]
    matplotlib.rcParams["font.size"] = 17.0
    with figures.style():
        assert matplotlib.rcParams["font.size"] == figures.RC["font.size"]
    assert matplotlib.rcParams["font.size"] == 17.0
    matplotlib.rcParams["font.size"] = before


def test_save_writes_valid_pdf_and_png_and_closes(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    figures.use_style()
    fig = draw()
    paths = figures.save(fig, tmp_path / "figures", "norms")
    assert paths == {
        "pdf": tmp_path / "figures" / "norms.pdf",
        "png": tmp_path / "figures" / "norms.png",
    }
    assert all(figures.is_valid_image(p) for p in paths.values())
    assert not plt.fignum_exists(fig.number)
    # 150 dpi: the PNG is figsize * 150 pixels
    width, height = struct.unpack(">II", paths["png"].read_bytes()[16:24])
    fw, fh = matplotlib.rcParams["figure.figsize"]
    assert (width, height) == (round(fw * 150), round(fh * 150))
    # no date or version stamps
    pdf = paths["pdf"].read_bytes()
    assert b"CreationDate" not in pdf and b"ModDate" not in pdf and b"Matplotlib v" not in pdf
    assert b"Software" not in paths["png"].read_bytes()


def test_same_figure_twice_gives_identical_bytes(tmp_path: Path) -> None:
    figures.use_style()
    first = figures.save(draw(), tmp_path / "one", "norms")
    second = figures.save(draw(), tmp_path / "two", "norms")
    assert first["pdf"].read_bytes() == second["pdf"].read_bytes()
    assert first["png"].read_bytes() == second["png"].read_bytes()


@pytest.mark.parametrize(
    "stem", ["", "a b", "../x", "x.pdf", "-lead"], ids=["empty", "space", "parent", "dot", "dash"]
)
def test_save_rejects_unsafe_names_and_still_closes(tmp_path: Path, stem: str) -> None:
    import matplotlib.pyplot as plt

    fig = draw()
    with pytest.raises(GradproofError, match="figure name"):
        figures.save(fig, tmp_path, stem)
    assert not plt.fignum_exists(fig.number)
    assert list(tmp_path.iterdir()) == []


def png_bytes(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    raw = b"".join(b"\x00" + b"\x00" * width for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize(
    ("name", "data", "expected"),
    [
        ("ok.png", png_bytes(2, 3), True),
        ("zero-width.png", png_bytes(0, 3), False),
        ("truncated.png", png_bytes(2, 3)[:-12], False),
        ("bad-signature.png", b"\x89PNX" + png_bytes(2, 3)[4:], False),
        ("ok.pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n", True),
        ("no-eof.pdf", b"%PDF-1.4\n1 0 obj<<>>endobj\n", False),
        ("not-pdf.pdf", b"<html>%%EOF", False),
        ("other.svg", b"<svg/>", False),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_is_valid_image(tmp_path: Path, name: str, data: bytes, expected: bool) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    assert figures.is_valid_image(path) is expected


def test_is_valid_image_missing_file(tmp_path: Path) -> None:
    assert figures.is_valid_image(tmp_path / "missing.png") is False


def test_save_pdf_only_writes_the_same_pdf_and_no_png(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    figures.use_style()
    both = figures.save(draw(), tmp_path / "both", "norms")
    fig = draw()
    only = figures.save(fig, tmp_path / "pdf", "norms", formats=("pdf",))
    assert only == {"pdf": tmp_path / "pdf" / "norms.pdf"}
    assert [p.name for p in (tmp_path / "pdf").iterdir()] == ["norms.pdf"]
    assert only["pdf"].read_bytes() == both["pdf"].read_bytes()  # one drawing fewer, same file
    assert not plt.fignum_exists(fig.number)


@pytest.mark.parametrize("formats", [(), ("svg",), ["pdf"], ("pdf", "eps")])
def test_save_rejects_unknown_formats_and_still_closes(tmp_path: Path, formats: object) -> None:
    import matplotlib.pyplot as plt

    fig = draw()
    with pytest.raises(GradproofError, match="figure formats"):
        figures.save(fig, tmp_path, "norms", formats=formats)  # type: ignore[arg-type]
    assert not plt.fignum_exists(fig.number)
    assert list(tmp_path.iterdir()) == []


def test_pdf_embeds_the_cheap_bundled_text_font_as_truetype(tmp_path: Path) -> None:
    """Text in STIXGeneral (bundled with matplotlib, ~3x cheaper to subset than DejaVu Sans), fonts embedded."""
    from matplotlib.font_manager import FontProperties, findfont

    figures.use_style()
    path = findfont(FontProperties(family=matplotlib.rcParams["font.family"]), fallback_to_default=False)
    assert Path(path).name == "STIXGeneral.ttf"
    assert Path(path).is_relative_to(Path(matplotlib.get_data_path()))  # no system font: same bytes everywhere
    pdf = figures.save(draw(), tmp_path, "norms", formats=("pdf",))["pdf"].read_bytes()
    assert b"+STIXGeneral-Regular" in pdf  # a subset (ABCDEF+ prefix) of the text font
    assert b"DejaVu" not in pdf
    assert pdf.count(b"/FontFile2") >= 2  # TrueType (Type 42) programs embedded: text and mathtext
    assert b"/Subtype /Type3" not in pdf
