#!/usr/bin/env python3
"""Fetch the pinned Pyodide runtime into ``web/runtime/`` (see ``gpt2web.host.runtime``).

Usage:
  python3 scripts/setup_runtime.py                 # fetch / verify into web/runtime/, snapshot
  python3 scripts/setup_runtime.py --no-snapshot   # the same, without the snapshot step
  python3 scripts/setup_runtime.py --check         # only verify, never fetch
Other scripts: ``from setup_runtime import ensure_runtime; ensure_runtime(dest)``: importing
this script gives the module ``gpt2web.host.runtime`` itself. Stdlib only.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "py"))
from gpt2web.host import runtime  # noqa: E402

if __name__ == "__main__":
    sys.exit(runtime.main())
sys.modules[__name__] = runtime
