"""Run every benchmark module in turn; a failing one is reported and the rest still run. Modules
whose names start with ``_`` serve the benchmarks (servers, readers they start) and are not run."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback
from pathlib import Path


def main(argv: list[str]) -> int:
    names = argv or sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)])
                           if not m.name.startswith("_"))
    failed = []
    for name in names:
        print(f"\n##### bench.{name}", flush=True)
        try:
            mod = importlib.import_module(f"bench.{name}")
            mod.main([])
        except SystemExit as e:
            if e.code not in (0, None):
                failed.append(name)
        except Exception:
            traceback.print_exc()
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
