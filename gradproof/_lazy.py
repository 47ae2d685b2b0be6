"""Lazy re-exports for the package ``__init__`` files (PEP 562).

``gradproof.derive``, ``gradproof.numeric`` and ``gradproof`` itself re-export names from their
modules; importing those modules eagerly would make ``import gradproof.derive.errors`` (which every
command line module does) pay for SymPy, numpy and matplotlib. :func:`lazy_exports` instead
imports a name's module when the name is first looked up.

One subtlety: some re-exported names equal a submodule's name (``numeric.verify`` the function and
``numeric/verify.py``, ``numeric.regime``, ``derive.gamma``). Importing such a submodule makes
Python bind it as an attribute of its package, over the function. An eager ``__init__`` hid this
by importing the submodule before binding the function; here the package's class keeps the
re-exported name instead, so ``from gradproof.numeric import verify`` is the function whatever was
imported before.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


class _LazyPackage(types.ModuleType):
    """A package module whose re-exported names win over same-named submodules."""

    def __setattr__(self, name: str, value: Any) -> None:
        exports = self.__dict__.get("_LAZY_EXPORTS", {})
        if name in exports and isinstance(value, types.ModuleType) and value.__name__ == f"{self.__name__}.{name}":
            return  # the import system binding submodule `name`; the re-exported object keeps the name
        super().__setattr__(name, value)


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` re-exporting ``name`` from ``.module``.

    Parameters
    ----------
    package : the package's ``__name__``; it must already be in ``sys.modules``.
    exports : re-exported name -> the module (relative to ``package``) that defines it.
    """
    module = sys.modules[package]
    table = dict(exports)
    module.__dict__["_LAZY_EXPORTS"] = table
    module.__class__ = _LazyPackage

    def __getattr__(name: str) -> Any:
        source = table.get(name)
        if source is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{source}", package), name)
        module.__dict__[name] = value  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(set(module.__dict__) | set(table))

    return __getattr__, __dir__
