"""Figure helpers for the report: one style, byte-reproducible files. No mathematics here.

The plots themselves are drawn by the report's sections; this module only sets the look, saves
each figure as PDF (for LaTeX) and, unless asked for PDF only, PNG (for the README and notebooks) without dates or version
stamps that would change from run to run, and checks that a written file is a real image.
"""

from __future__ import annotations

import contextlib
import logging
import re
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..derive.errors import GradproofError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["FORMATS", "PNG_DPI", "RC", "is_valid_image", "save", "style", "use_style"]

PNG_DPI = 150

FORMATS: tuple[str, ...] = ("pdf", "png")
"""The formats :func:`save` can write, in the order it writes them."""

# Okabe & Ito (2008) colour-blind-safe palette, black first dropped.
_PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")

RC: Mapping[str, Any] = MappingProxyType(
    {
        "figure.figsize": (5.2, 3.2),
        "figure.dpi": 100,
        "figure.constrained_layout.use": True,
        # bundled with matplotlib, every glyph the figures write (µ, –, ∏, −), a serif like the
        # report's text, and its PDF subset costs ~0.04 s CPU per figure against ~0.12 s for
        # DejaVu Sans (benchmarks/bench_figures.py); math stays in Computer Modern ("cm")
        "font.family": "STIXGeneral",
        "font.size": 9.5,
        "axes.titlesize": 10,
        "axes.labelsize": 9.5,
        "xtick.labelsize": 9,
        "ytick.labelsize": 9,
        "legend.fontsize": 9,
        "legend.frameon": False,
        "axes.grid": True,
        "grid.color": "#b0b0b0",
        "grid.alpha": 0.35,
        "grid.linewidth": 0.5,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.linewidth": 0.8,
        "lines.linewidth": 1.5,
        "lines.markersize": 4,
        "image.cmap": "viridis",
        "mathtext.fontset": "cm",
        "text.usetex": False,
        "savefig.dpi": PNG_DPI,
        "savefig.bbox": None,
        "pdf.fonttype": 42,
        "ps.fonttype": 42,
        "svg.hashsalt": "gradproof",
        "svg.fonttype": "path",
        "path.simplify": True,
    }
)
"""The rcParams of report figures (read-only); ``axes.prop_cycle`` is added by :func:`use_style`."""

_PDF_METADATA = {"CreationDate": None, "ModDate": None, "Producer": None, "Creator": None}
_PNG_METADATA = {"Software": None}
_STEM_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\Z")


def _rc() -> dict[str, Any]:
    from cycler import cycler

    return {**RC, "axes.prop_cycle": cycler(color=list(_PALETTE))}


def use_style() -> None:
    """Switch matplotlib to the headless Agg backend and the report style, globally.

    For a script or the command line. In a notebook, prefer ``with style():`` which leaves the
    notebook's backend and settings alone.
    """
    import matplotlib

    matplotlib.use("Agg", force=True)
    matplotlib.rcParams.update(_rc())


@contextlib.contextmanager
def style() -> Iterator[None]:
    """Context manager: the report style inside, the previous settings restored after."""
    import matplotlib

    with matplotlib.rc_context(_rc()):
        yield


@contextlib.contextmanager
def _quiet_font_subsetting() -> Iterator[None]:
    """Silence fontTools' log chatter about the zeroed font timestamps of embedded subsets."""
    logger = logging.getLogger("fontTools")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)


def save(fig: Figure, figures_dir: Path, stem: str, *, formats: tuple[str, ...] = FORMATS) -> dict[str, Path]:
    """Save ``fig`` as ``stem.pdf`` and ``stem.png`` (150 dpi), or only the ``formats`` asked for, and close it.

    The files carry no creation date or software version, so the same figure gives the same
    bytes on every run.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure; it is closed even when saving fails.
    figures_dir : Path
        Directory, created if missing.
    stem : str
        File name without extension: letters, digits, ``_`` and ``-`` (safe in LaTeX).
    formats : tuple of str
        A non-empty subset of :data:`FORMATS`. The report writes ``("pdf",)``: LaTeX reads only
        the PDFs, and each format is one more full drawing of the figure.

    Returns
    -------
    dict[str, Path]
        format -> path, e.g. ``{"pdf": ..., "png": ...}``.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    try:
        if not isinstance(stem, str) or not _STEM_RE.match(stem):
            raise GradproofError(
                f"figure name: expected letters, digits, '_' or '-' (e.g. 'gradient_norms'), got {stem!r}"
            )
        figures_dir = Path(figures_dir)
        figures_dir.mkdir(parents=True, exist_ok=True)
        if not formats or not isinstance(formats, tuple) or not set(formats) <= set(FORMATS):
            raise GradproofError(f"figure formats: expected a non-empty tuple from {FORMATS}, got {formats!r}")
        paths = {f: figures_dir / f"{stem}.{f}" for f in FORMATS if f in formats}
        # savefig puts back the figure's layout engine when it ends; a figure frozen without one
        # (plots._finish) gets None back, which matplotlib turns into a new constrained-layout engine
        # where the global style asks for one (use_style): the next format would be laid out and
        # drawn again, and colour bars moved. Inside this context None stays None.
        with matplotlib.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
            if "pdf" in paths:
                with _quiet_font_subsetting():
                    # dpi: the resolution of rasterized artists inside the PDF (vector parts do not use it)
                    fig.savefig(paths["pdf"], format="pdf", dpi=PNG_DPI, metadata=_PDF_METADATA)
            if "png" in paths:
                fig.savefig(paths["png"], format="png", dpi=PNG_DPI, metadata=_PNG_METADATA)
    finally:
        plt.close(fig)
    return paths


def is_valid_image(path: Path) -> bool:
    """Whether ``path`` is a PNG with a non-empty IHDR or a complete PDF (``%PDF-`` ... ``%%EOF``).

    The type is taken from the suffix (``.png`` or ``.pdf``); a missing file, another suffix or
    a truncated file gives False.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError:
        return False
    suffix = path.suffix.lower()
    if suffix == ".png":
        # signature, then the IHDR chunk: length 13, type, width, height (big-endian)
        if len(data) < 33 or data[:8] != b"\x89PNG\r\n\x1a\n":
            return False
        length, ctype, width, height = struct.unpack(">I4sII", data[8:24])
        return (
            length == 13
            and ctype == b"IHDR"
            and width > 0
            and height > 0
            and data.endswith(b"IEND\xaeB`\x82")
        )
    if suffix == ".pdf":
        return data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:]
    return False
