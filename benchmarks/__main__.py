"""Run every `benchmarks/bench_*.py` (or those named on the command line) and print their reports.

Each module defines `run() -> dict[str, float]`; it prints its own table and returns
the figures, which are also written to `benchmarks/results.json` (not committed).
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from pathlib import Path

import benchmarks


def main(argv: list[str]) -> int:
    names = argv or sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    results = {}
    for name in names:
        module = importlib.import_module(f"benchmarks.{name.removesuffix('.py')}")
        print(f"\n=== {name} ===", flush=True)
        results[name] = module.run()
    out = Path(__file__).with_name("results.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
