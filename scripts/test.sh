#!/usr/bin/env bash
# Run the whole test suite: installs what the tests need (Debian's Chromium and clang, PyTorch
# CPU for the reference model), sets up the Pyodide runtime, then runs pytest.
# Extra arguments go to pytest (e.g. -k tokenizer, -m "not browser").
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
ensure_system_packages
ensure_venv test
"$PY" scripts/setup_runtime.py
"$PY" scripts/build_wheel.py
bash scripts/setup_axe.sh  # axe-core for the accessibility scans (build/axe/)
exec "$PY" -m pytest "$@"
