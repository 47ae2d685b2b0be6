"""A precompiled LaTeX format of a document's preamble, built once and cached per user.

Every pdflatex pass of the report reads the same preamble (TikZ, hyperref, microtype, fonts...):
about a third of a pass. ``mylatexformat`` (TeX Live, by F. Chervet after D. Carlisle's
``mylatex``) dumps the state after the preamble into a ``.fmt`` file; a pass started from that
format skips the preamble lines and begins at ``\\begin{document}``.

The format lives in a per-user cache (the report folder is replaced on every run), one folder per
*key*: a SHA-256 of the preamble text, the job name, the pdflatex binary and the TeX search
variables of the environment. Next to the ``.fmt`` a manifest records the size and modification
time of every file pdflatex read while dumping it (its ``-recorder`` list: the base format, the
packages, the fonts); a format whose files changed since (a TeX Live update) is rebuilt, never
used. Whenever something does not fit (no ``mylatexformat``, a preamble the scanner could
misread, a failed dump, an unwritable cache), :func:`preamble_format` returns None and the caller
runs plain pdflatex: the PDF looks the same either way (the same pages, glyphs and positions; only
the internal font resource names differ).

The cache folder is ``$GRADPROOF_LATEX_CACHE`` when set (the value ``off`` disables the cache),
else ``$XDG_CACHE_HOME/gradproof/latex``, else ``~/.cache/gradproof/latex``; the formats are in its
``formats`` subfolder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["CACHE_ENV", "format_cache_dir", "preamble_format", "split_preamble"]

#: environment variable naming the cache folder; ``off`` disables the precompiled format
CACHE_ENV = "GRADPROOF_LATEX_CACHE"
#: bump when the way formats are built changes, so old cache entries are never used
_LAYOUT = "1"
#: formats kept in the cache (most recently used first); each is ~7 MB
_KEEP = 4
#: TeX search variables that change which files a dump reads
_TEX_VARIABLES = ("TEXINPUTS", "TEXMF", "TEXMFHOME", "TEXMFCNF", "TEXMFVAR", "TEXMFCONFIG",
                  "TEXMFLOCAL", "TEXFORMATS", "TFMFONTS", "TEXFONTMAPS", "SOURCE_DATE_EPOCH")  # fmt: skip
_STEM_RE = re.compile(r"[A-Za-z0-9_-]+\Z")
#: paths that may go into latexmk's command string (run by sh) unquoted: the cache folder and pdflatex
SAFE_PATH_RE = re.compile(r"[A-Za-z0-9/._+-]+\Z")
_BEGIN_DOCUMENT = "\\begin{document}"

Runner = Callable[[list[str], Path, float], tuple[int, str]]


def format_cache_dir() -> Path | None:
    """gradproof's per-user LaTeX cache folder, or None when ``$GRADPROOF_LATEX_CACHE`` is ``off``."""
    value = os.environ.get(CACHE_ENV)
    if value is not None:
        return None if value.strip().lower() in ("off", "0", "no", "") else Path(value)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gradproof" / "latex"


def split_preamble(text: str) -> str | None:
    r"""The preamble of a LaTeX document (up to its ``\begin{document}`` line), if a format can hold it.

    A format is only safe when ``mylatexformat``'s line scanner stops exactly where this function
    does: the document has exactly one line that is ``\begin{document}`` alone, no earlier line
    mentions both ``\begin`` and ``document`` or ``endofdump``, and the first line does not ask
    for a format itself (``%&``).

    Parameters
    ----------
    text : str
        The whole ``.tex`` source.

    Returns
    -------
    str or None
        The lines before ``\begin{document}`` (each ending in a newline), or None when the
        document does not qualify.
    """
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.strip() == _BEGIN_DOCUMENT]
    if len(starts) != 1 or text.startswith("%&"):
        return None
    preamble = lines[: starts[0]]
    for line in preamble:
        if "endofdump" in line or ("\\begin" in line and "document" in line):
            return None
    if not any("\\documentclass" in line for line in preamble):
        return None
    return "".join(preamble)


def _key(preamble: str, stem: str, pdflatex: str) -> str:
    digest = hashlib.sha256()
    for part in (_LAYOUT, stem, os.path.realpath(pdflatex), preamble,
                 *(f"{v}={os.environ.get(v, '')}" for v in _TEX_VARIABLES)):  # fmt: skip
        digest.update(part.encode("utf-8", errors="surrogateescape") + b"\0")
    return digest.hexdigest()[:32]


def _stamp(path: str) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _valid(entry: Path, stem: str) -> bool:
    """The entry holds a complete format and none of the files it was built from changed."""
    try:
        manifest = json.loads((entry / "manifest.json").read_text(encoding="utf-8"))
        files = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if not isinstance(files, dict) or not files or _stamp(str(entry / f"{stem}.fmt")) != manifest.get("fmt"):
        return False  # the format itself was replaced or damaged after it was dumped
    return all(_stamp(path) == stamp for path, stamp in files.items())


def _manifest(build: Path, stem: str, pdflatex: str) -> dict[str, list[int]] | None:
    """Size and mtime of the binary and of every absolute path the dump read (its ``.fls``)."""
    try:
        recorded = (build / f"{stem}.fls").read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return None
    files: dict[str, list[int]] = {}
    for path in [os.path.realpath(pdflatex)] + [
        line[6:] for line in recorded.splitlines() if line.startswith("INPUT /")
    ]:
        stamp = _stamp(path)
        if stamp is None:
            return None
        files[path] = stamp
    return files if any(p.endswith(".fmt") for p in files) else None


def _prune(root: Path, keep: str) -> None:
    """Remove all but the :data:`_KEEP` most recently used entries (and stale build folders)."""
    entries = []
    for child in root.iterdir():
        if child.name.startswith("build-") and time.time() - child.stat().st_mtime > 3600:
            shutil.rmtree(child, ignore_errors=True)
        elif child.is_dir() and not child.name.startswith("build-") and child.name != keep:
            entries.append((child.stat().st_mtime, child))
    for _, child in sorted(entries, reverse=True)[_KEEP - 1 :]:
        shutil.rmtree(child, ignore_errors=True)


def preamble_format(tex_path: Path, *, pdflatex: str, run: Runner, deadline: float,
                    cache_dir: Path | None) -> Path | None:  # fmt: skip
    """A format holding the preamble of ``tex_path``: from the cache, else dumped now.

    Parameters
    ----------
    tex_path : Path
        The document. Its stem is the dump's job name (so ``\\jobname`` in the preamble is the
        document's).
    pdflatex : str
        Path of the pdflatex binary that will use the format.
    run : callable
        ``run(cmd, cwd, deadline) -> (returncode, output)``: how the dump is run (the caller's
        process-group runner, with its timeout and environment).
    deadline : float
        ``time.monotonic()`` value by which the dump must end.
    cache_dir : Path or None
        The cache folder (:func:`format_cache_dir`); None disables the format.

    Returns
    -------
    Path or None
        The format's path without the ``.fmt`` suffix (what ``pdflatex -fmt=`` takes), or None
        when no format can be used: the caller then runs plain pdflatex.
    """
    stem = tex_path.stem
    if cache_dir is None or not _STEM_RE.match(stem):
        return None
    try:
        preamble = split_preamble(tex_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None
    if preamble is None or shutil.which("kpsewhich") is None:
        return None
    try:
        root = Path(cache_dir).expanduser().resolve() / "formats"
        if not SAFE_PATH_RE.match(str(root)):
            return None
        key = _key(preamble, stem, pdflatex)
        entry = root / key
        if _valid(entry, stem):
            os.utime(entry)  # most recently used
            return entry / stem
        if not _has_mylatexformat():
            return None
        root.mkdir(parents=True, exist_ok=True)
        build = Path(tempfile.mkdtemp(prefix="build-", dir=root))
        try:
            (build / f"{stem}.tex").write_text(
                preamble + _BEGIN_DOCUMENT + "\n\\end{document}\n", encoding="utf-8"
            )
            rc, _ = run([pdflatex, "-ini", "-interaction=batchmode", "-halt-on-error",
                         "-no-shell-escape", "-recorder", f"-jobname={stem}", "&pdflatex",
                         "mylatexformat.ltx", f"{stem}.tex"], build, deadline)  # fmt: skip
            files = _manifest(build, stem, pdflatex) if rc == 0 else None
            if files is None or not (build / f"{stem}.fmt").is_file():
                return None
            manifest = {"fmt": _stamp(str(build / f"{stem}.fmt")), "files": files}
            (build / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
            if entry.exists():  # stale (its files changed) or written meanwhile by another build
                shutil.rmtree(entry, ignore_errors=True)
            try:
                build.rename(entry)
            except OSError:  # another process put its complete entry there first
                pass
        finally:
            if build.exists():
                shutil.rmtree(build, ignore_errors=True)
        _prune(root, key)
        return entry / stem if _valid(entry, stem) else None
    except (OSError, ValueError):
        return None
    except subprocess.TimeoutExpired:
        raise


_MYLATEXFORMAT: list[bool] = []


def _has_mylatexformat() -> bool:
    if not _MYLATEXFORMAT:
        try:
            found = subprocess.run(["kpsewhich", "mylatexformat.ltx"], capture_output=True,
                                   text=True, timeout=30, check=False).stdout.strip()  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            found = ""
        _MYLATEXFORMAT.append(bool(found))
    return _MYLATEXFORMAT[0]
