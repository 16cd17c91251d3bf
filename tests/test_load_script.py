"""scripts/load_test.py runs against the real server and checks every answer (a smoke run:
the figures themselves go into the README, never into an assertion)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_load_test_runs_and_checks_every_answer(tiny_model_dir):
    r = subprocess.run([sys.executable, str(REPO / "scripts" / "load_test.py"), "--clients", "4", "--seconds", "1",
                        "--weights", str(tiny_model_dir.parent), "--model", tiny_model_dir.name,
                        "--range-kb", "16", "--full-every", "5", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads(r.stdout)
    assert result["requests"] > 0 and result["errors"] == 0
    assert result["p99_ms"] >= result["p50_ms"] > 0
