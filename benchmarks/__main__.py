"""Run every benchmark (or those named) and write their figures to bench-results/.

Usage: ``python -m benchmarks [name ...]`` where a name is a module
``benchmarks/<name>_bench.py`` (e.g. ``merkle``, ``policy``, ``ingest``).
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path

OUT = Path("bench-results")


def _available() -> list[str]:
    here = Path(__file__).parent
    return sorted(p.stem.removesuffix("_bench") for p in here.glob("*_bench.py"))


def main(argv: list[str]) -> int:
    names = argv or _available()
    OUT.mkdir(exist_ok=True)
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}_bench")
        print(f"\n== {name} ==", flush=True)
        started = time.perf_counter()
        figures = module.main()
        record = {
            "benchmark": name,
            "figures": figures,
            "wall_s": round(time.perf_counter() - started, 3),
            "machine": {"python": platform.python_version(), "cpu": platform.processor()},
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (OUT / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
