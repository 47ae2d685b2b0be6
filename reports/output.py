"""Writing a report directory safely: all or nothing, never over an unrelated folder.

A report is written into a hidden temporary directory next to its destination and moved into
place only when everything has been written, so an error or Ctrl-C halfway leaves the previous
report (or nothing) behind, never half a report.

A run killed outright (SIGKILL, power loss) cannot clean up, so the temporary directory's name
records its owner: ``.R.tmp-<pid>-<start>-<boot>-<random>`` (process id, the process's start
time in clock ticks since boot from ``/proc/<pid>/stat``, and the first 8 hex digits of the boot
id). The next run into ``R`` removes every such directory whose owner is no longer alive (no such
pid, or a pid reused by a later process, or another boot); a live run's directory is never
touched. Concurrent runs into one folder each build in their own temporary directory; the
clean-up and the final swap into place are serialised by ``fcntl.flock`` on the parent
directory, so both runs finish and the folder always holds one complete report (the last to
finish). Where the kernel offers it, the swap is one ``renameat2(RENAME_EXCHANGE)``: at every
instant ``R`` is the old report or the new one.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import json
import math
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from ..derive.errors import GradproofError

__all__ = ["LEGACY_STALE_SECONDS", "MARKER", "AtomicDirectory", "looks_like_report", "to_jsonable", "write_json"]

MARKER = ".gradproof-report"
"""Name of the marker file written into every report directory."""

_MARKER_TEXT = "This directory was written by gradproof and is replaced by `gradproof report`.\n"
# What gradproof itself puts in a report directory (LaTeX leaves report.* auxiliary files).
_REPORT_FILES = frozenset({MARKER, "results.json", "figures"})


def looks_like_report(path: Path) -> bool:
    """Whether ``path`` is a directory that gradproof wrote earlier (and may replace).

    True if it holds the marker file, or if it holds ``report.tex`` or ``results.json`` and
    nothing else than what a report holds (``report.*``, ``results.json``, ``figures/``).
    """
    path = Path(path)
    if not path.is_dir() or path.is_symlink():
        return False
    if (path / MARKER).is_file():
        return True
    names = {p.name for p in path.iterdir()}
    if "report.tex" not in names and "results.json" not in names:
        return False
    return all(n in _REPORT_FILES or n.startswith("report.") for n in names)


# --------------------------------------------------------------------------------------------
# Owners of temporary directories
# --------------------------------------------------------------------------------------------

#: Directories without an owner in their name (written by gradproof before owners were
#: recorded) are removed once untouched for this long.
LEGACY_STALE_SECONDS = 3600.0


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            return fh.read().strip().replace("-", "")[:8] or "0"
    except OSError:
        return "0"


def _start_ticks(pid: int) -> int:
    """Start time of process ``pid`` in clock ticks since boot (0 where /proc is missing)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return 0
    # Field 22; the command name (field 2) is in parentheses and may hold spaces.
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return 0


def _owner_tag() -> str:
    pid = os.getpid()
    return f"{pid}-{_start_ticks(pid)}-{_boot_id()}"


_OWNED = re.compile(r"^(?P<pid>\d+)-(?P<start>\d+)-(?P<boot>[0-9a-f]+)-")


def _owner_alive(pid: int, start: int, boot: str) -> bool:
    """Whether the process that made a directory tagged ``pid-start-boot`` still runs."""
    if boot != _boot_id():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, belongs to someone else
    except OSError:
        return True  # cannot tell: keep it
    now = _start_ticks(pid)
    return start == 0 or now == 0 or now == start


def _stale(path: Path) -> bool:
    """Whether ``path`` (a ``.R.tmp-*`` or ``.R.old-*`` directory) belongs to no live run."""
    tail = path.name.split(".tmp-", 1)[-1] if ".tmp-" in path.name else path.name.split(".old-", 1)[-1]
    m = _OWNED.match(tail)
    if m is not None:
        return not _owner_alive(int(m["pid"]), int(m["start"]), m["boot"])
    try:
        age = time.time() - path.lstat().st_mtime
    except OSError:
        return False
    return age > LEGACY_STALE_SECONDS


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``directory`` (the parent of a report) for the body."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` in one step (Linux ``renameat2``); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err))


def _directory_mode() -> int:
    """Permissions of a new directory under the current umask (0o755 with the usual 022)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o777 & ~mask


class AtomicDirectory:
    """Context manager that writes a directory completely or not at all.

    ``with AtomicDirectory(out_dir) as tmp:`` yields a fresh hidden directory next to
    ``out_dir`` (same parent, so the final rename stays on one file system), holding only the
    marker file :data:`MARKER`; its name records the owner process (see the module docstring).
    On entry, temporary and backup directories of ``out_dir`` left by runs that are no longer
    alive are removed (a backup is put back as ``out_dir`` if ``out_dir`` is missing). On a
    clean exit ``tmp`` replaces ``out_dir``: swapped in one step where the kernel can, otherwise
    the existing ``out_dir`` is renamed to a hidden backup, ``tmp`` is renamed to ``out_dir``
    (the backup is put back if that fails); then the old report is deleted. Clean-up and swap
    hold an ``flock`` on the parent directory, so concurrent runs into one folder do not race.
    On any exception, KeyboardInterrupt included, ``tmp`` is deleted, ``out_dir`` is left
    untouched and the exception propagates.

    Parameters
    ----------
    out_dir : Path
        The report directory. Missing parents are created. Refused (``GradproofError``) if it
        is a file, a symbolic link, or a non-empty directory that is not an earlier report
        (see :func:`looks_like_report`), so an unrelated folder is never lost.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> with AtomicDirectory(root / "report") as tmp:
    ...     _ = (tmp / "report.tex").write_text("hello")
    >>> sorted(p.name for p in (root / "report").iterdir())
    ['.gradproof-report', 'report.tex']
    """

    def __init__(self, out_dir: Path | str) -> None:
        if not isinstance(out_dir, (str, os.PathLike)) or not str(out_dir).strip():
            raise GradproofError(f"report directory: expected a path, got {out_dir!r}")
        self.out_dir = Path(os.path.abspath(out_dir))
        self._tmp: Path | None = None
        self._used = False

    # ---- checks -----------------------------------------------------------------------------

    def _check_destination(self) -> None:
        out = self.out_dir
        if out.parent == out:
            raise GradproofError(
                f"report directory: {str(out)!r} is a file system root; choose a sub-directory"
            )
        if out.is_symlink():
            raise GradproofError(
                f"report directory {str(out)!r} is a symbolic link; pass the directory it points to "
                "or another path"
            )
        if out.exists() and not out.is_dir():
            raise GradproofError(
                f"report directory {str(out)!r} exists and is not a directory; choose another --out"
            )
        if out.is_dir() and any(out.iterdir()) and not looks_like_report(out):
            raise GradproofError(
                f"report directory {str(out)!r} is not empty and holds no earlier gradproof report "
                f"(no {MARKER}, report.tex or results.json); refusing to replace it: choose another "
                "--out or an empty directory"
            )

    # ---- context manager --------------------------------------------------------------------

    def __enter__(self) -> Path:
        if self._used:
            raise GradproofError("AtomicDirectory can be entered only once; create a new one")
        self._used = True
        self._check_destination()
        parent = self.out_dir.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            with _locked(parent):
                self._remove_stale()
            tmp = Path(
                tempfile.mkdtemp(prefix=f".{self.out_dir.name}.tmp-{_owner_tag()}-", dir=parent)
            )
        except OSError as exc:
            raise GradproofError(
                f"cannot create a temporary directory in {str(parent)!r}: {exc.strerror}; "
                "choose a writable --out"
            ) from None
        self._tmp = tmp
        try:
            # mkdtemp makes the directory private (0700); a report gets the usual permissions.
            os.chmod(tmp, _directory_mode())
            (tmp / MARKER).write_text(_MARKER_TEXT, encoding="utf-8")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return tmp

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        tmp = self._tmp
        assert tmp is not None
        self._tmp = None
        if exc_type is not None:
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        try:
            self._commit(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return False

    def _leftovers(self) -> list[Path]:
        name = self.out_dir.name
        return sorted(
            p
            for p in self.out_dir.parent.iterdir()
            if p.name.startswith((f".{name}.tmp-", f".{name}.old-"))
            and p.is_dir()
            and not p.is_symlink()
        )

    def _remove_stale(self) -> None:
        """Remove the temporary and backup directories of runs that are no longer alive."""
        for path in self._leftovers():
            if not _stale(path):
                continue
            if ".old-" in path.name and not os.path.lexists(self.out_dir):
                # Killed between moving the old report aside and moving the new one in.
                with contextlib.suppress(OSError):
                    os.rename(path, self.out_dir)
                    continue
            shutil.rmtree(path, ignore_errors=True)

    def _commit(self, tmp: Path) -> None:
        with _locked(self.out_dir.parent):
            self._commit_locked(tmp)

    def _commit_locked(self, tmp: Path) -> None:
        out = self.out_dir
        # The destination may have changed while the report was written: check again.
        self._check_destination()
        if out.exists():
            try:
                swapped = _exchange(tmp, out)
            except OSError as exc:
                raise GradproofError(
                    f"cannot move the new report to {str(out)!r}: {exc.strerror}; the earlier "
                    "report is unchanged"
                ) from None
            if swapped:  # tmp now holds the earlier report
                shutil.rmtree(tmp, ignore_errors=True)
                return
        if not out.exists():
            try:
                os.rename(tmp, out)
            except OSError as exc:
                raise GradproofError(
                    f"cannot move the new report to {str(out)!r}: {exc.strerror}"
                ) from None
            return
        backup = self._backup_name()
        try:
            os.rename(out, backup)
        except OSError as exc:
            raise GradproofError(
                f"cannot move the earlier report {str(out)!r} aside: {exc.strerror}; it is unchanged"
            ) from None
        try:
            os.rename(tmp, out)
        except BaseException as exc:
            os.rename(backup, out)
            if isinstance(exc, OSError):
                raise GradproofError(
                    f"cannot move the new report to {str(out)!r}: {exc.strerror}; the earlier "
                    "report is unchanged"
                ) from None
            raise
        shutil.rmtree(backup, ignore_errors=True)

    def _backup_name(self) -> Path:
        while True:
            candidate = self.out_dir.with_name(
                f".{self.out_dir.name}.old-{_owner_tag()}-{secrets.token_hex(4)}"
            )
            if not os.path.lexists(candidate):
                return candidate


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def _float(x: float) -> float | str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def to_jsonable(obj: Any, *, where: str = "$") -> Any:
    """Convert ``obj`` to plain JSON types, deterministically.

    NaN and infinities become the strings ``"nan"``, ``"inf"``, ``"-inf"``; numpy scalars and
    arrays become Python numbers and (nested) lists; tuples become lists; paths become strings.
    Mapping keys must be strings. Anything else raises ``GradproofError`` naming its place
    (``$.cells[2].error``).
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return _float(float(obj))
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biuf":
            raise GradproofError(
                f"results JSON {where}: cannot store an array of dtype {obj.dtype}; "
                "store real numbers (e.g. np.abs or .real) or strings"
            )
        return to_jsonable(obj.tolist(), where=where)
    if isinstance(obj, os.PathLike):
        return Path(obj).as_posix()
    if isinstance(obj, Mapping):
        out = {}
        for key, value in obj.items():
            if not isinstance(key, str):
                raise GradproofError(
                    f"results JSON {where}: keys must be str, got {type(key).__name__} {key!r}; "
                    "convert the key with str()"
                )
            out[key] = to_jsonable(value, where=f"{where}.{key}")
        return out
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v, where=f"{where}[{i}]") for i, v in enumerate(obj)]
    raise GradproofError(
        f"results JSON {where}: cannot store a value of type {type(obj).__name__}; "
        "convert it to a number, str, list or dict first"
    )


def write_json(path: Path | str, obj: Any) -> Path:
    """Write ``obj`` as deterministic JSON (sorted keys, indent 2, UTF-8, final newline).

    Parameters
    ----------
    path : Path
        Destination file; its directory must exist.
    obj : Any
        Data converted by :func:`to_jsonable` (NaN -> ``"nan"``, numpy -> Python).

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "r.json"
    >>> _ = write_json(p, {"b": np.float64("nan"), "a": np.arange(2)})
    >>> print(p.read_text(), end="")
    {
      "a": [
        0,
        1
      ],
      "b": "nan"
    }
    """
    path = Path(path)
    text = json.dumps(
        to_jsonable(obj), sort_keys=True, indent=2, allow_nan=False, ensure_ascii=False
    )
    path.write_text(text + "\n", encoding="utf-8")
    return path
