"""Writing a benchmark's JSON result (every bench_*.py ends with it)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_json(path: Path, result: Any) -> None:
    """Write ``result`` as indented JSON to ``path`` (its folder made if missing) and say where."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {path}")
