"""The command-line fuzz, longer: N argument lists drawn by the CI fuzz's strategy.

Every argument list is run in-process (``reports.cli.main``) under the fuzz budget; the table
gives the exit codes, the contract violations (exit code not 0/1/2, a traceback, an error that is
not one line, longer than the budget) and the slowest inputs. Run from the repository root::

    python -m benchmarks.fuzz_cli [--examples 2000] [--seed 0] [--json PATH]

Exit code 1 when any violation was found. Results go to ``benchmarks/results/fuzz_cli.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.reports.test_cli_fuzz import _FILES, FUZZ_LIMIT, Outcome, argument_lists, problems, run_cli, warm_up

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "fuzz_cli.json"


def fuzz(examples: int, seed: int) -> list[Outcome]:
    """Run ``examples`` argument lists (seeded); return every outcome."""
    outcomes: list[Outcome] = []
    warm_up()

    @settings(max_examples=examples, deadline=None, database=None, phases=["generate"],
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(argument_lists(_FILES))
    def one(argv: list[str]) -> None:
        outcomes.append(run_cli(argv))

    one._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
    one()
    return outcomes


def _command(argv: Sequence[str]) -> str:
    rest = list(argv[2:] if argv[:1] == ("--time-limit",) else argv)
    return rest[0] if rest and not rest[0].startswith("-") else "(none)"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slowest", type=int, default=10)
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON)
    args = parser.parse_args(argv)

    start = time.monotonic()
    outcomes = fuzz(args.examples, args.seed)
    total = time.monotonic() - start
    codes = collections.Counter(o.code for o in outcomes)
    commands = collections.Counter(_command(o.argv) for o in outcomes)
    bad = [(o, problems(o)) for o in outcomes if problems(o)]
    slowest = sorted(outcomes, key=lambda o: o.seconds, reverse=True)[: args.slowest]

    print(f"CLI fuzz: {len(outcomes)} argument lists in {total:.1f} s, budget {FUZZ_LIMIT:g} s each")
    print(f"{'exit code':>10}  {'count':>6}")
    for code, count in sorted(codes.items()):
        print(f"{code:>10}  {count:>6}")
    print("first word:", ", ".join(f"{k} {v}" for k, v in commands.most_common()))
    print(f"contract violations: {len(bad)}")
    for o, found in bad[:20]:
        print(f"  {' '.join(o.argv)[:150]}  ->  {'; '.join(found)}")
    print(f"slowest {len(slowest)}:")
    print(f"{'seconds':>8} {'code':>5}  arguments")
    for o in slowest:
        stopped = "  (stopped by the budget)" if "stopped after" in o.stderr else ""
        print(f"{o.seconds:>8.2f} {o.code:>5}  {' '.join(o.argv)[:140]}{stopped}")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "examples": len(outcomes),
        "seed": args.seed,
        "budget_seconds": FUZZ_LIMIT,
        "total_seconds": total,
        "exit_codes": {str(k): v for k, v in sorted(codes.items())},
        "commands": dict(commands),
        "violations": [{"argv": list(o.argv), "code": o.code, "problems": f,
                        "stderr": o.stderr[-2000:]} for o, f in bad],  # fmt: skip
        "slowest": [{"argv": list(o.argv), "code": o.code, "seconds": o.seconds,
                     "stderr_last_line": (o.stderr.strip().splitlines() or [""])[-1][:300]}
                    for o in slowest],  # fmt: skip
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }
    args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
