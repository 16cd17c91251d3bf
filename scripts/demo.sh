#!/usr/bin/env bash
# Run the demo: set up (once; quick afterwards) and serve the page on http://127.0.0.1:8000/
# Extra arguments go to `gpt2web serve` (e.g. --port 8080).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
ensure_venv host
"$PY" scripts/setup_runtime.py
"$PY" scripts/build_wheel.py
exec "$VENV/bin/gpt2web" serve "$@"
