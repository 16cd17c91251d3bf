"""`gpt2web bench` in quick mode on a tiny int8 model: real server, Chromium, worker; CPython.

No timing thresholds (these machines are noisy): the JSON must have every key, with sane values.

Run:  PYTHONPATH=py nice -n 15 python3 -m pytest tests/test_bench.py
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

import pytest

from gpt2web.host import bench
from gpt2web.host.cli import main
from gpt2web.tokenizer import default_tokenizer


def test_exact_prompts_and_decode_stats():
    tok = default_tokenizer()
    for n in (1, 16, 128, 480):
        assert len(tok.encode(bench.exact_prompt(tok, n))) == n
    # Arrivals at 100 (first token: prefill), then 10 ms apart with one slow step.
    times = [100, 110, 120, 130, 170, 180]
    s = bench.decode_stats(times, skip=1)  # the step 100 -> 110 is warm-up
    assert s["decode_tokens"] == 4
    assert s["decode_tok_s"] == pytest.approx(1000 * 4 / 70)
    assert s["decode_ms_median"] == 10
    assert 10 < s["decode_ms_p90"] <= 40
    assert bench.decode_stats([100], skip=0)["decode_tok_s"] is None


@pytest.fixture(scope="module")
def tiny_int8_dir(tiny_checkpoint, tmp_path_factory) -> Path:
    """The tiny model in int8, outside weights/ (the bench serves a linked copy with the vocabulary)."""
    from gpt2web.host.convert import convert

    out = tmp_path_factory.mktemp("bench-weights") / "tiny-int8"
    convert(str(tiny_checkpoint), out, dtype="int8", report=False, log=lambda m: None)
    return out


@pytest.mark.browser
def test_quick_bench_json_has_every_figure(tiny_int8_dir, capsys):
    pytest.importorskip("playwright")
    if not Path(bench.CHROMIUM).exists():
        pytest.skip(f"{bench.CHROMIUM} is not installed (apt-get install chromium)")
    assert main(["bench", "--model", str(tiny_int8_dir), "--quick", "--json"]) == 0
    out = capsys.readouterr()
    result = json.loads(out.out)

    assert set(result["browser"]) == set(bench.BROWSER_KEYS)
    assert set(result["cpython"]) == set(bench.CPYTHON_KEYS)
    for side in ("browser", "cpython"):
        for key, value in result[side].items():
            assert isinstance(value, (int, float)) and math.isfinite(value) and value > 0, (side, key, value)
    b = result["browser"]
    shard_bytes = sum(s["bytes"] for s in json.loads((tiny_int8_dir / "manifest.json").read_text())["shards"])
    assert shard_bytes / 1e6 < b["download_mb"] < shard_bytes / 1e6 + 2  # + manifest and vocabulary
    assert b["peak_wasm_mb"] > shard_bytes / 1e6  # the weights live in wasm memory
    assert b["decode_ms_p90"] < 60_000 and b["ttft_ms_16"] < 60_000  # ms, not seconds or microseconds
    assert result["kernel"] == "wasm-simd128-int8"
    assert result["details"]["cpython_backend"] == "numpy-float32"
    m = result["machine"]
    assert m["cores"] >= 1 and m["pyodide"] and "hromium" in m["chromium"]
    datetime.fromisoformat(result["date"])
    assert result["settings"]["quick"] and result["settings"]["runs"] == 1

    table = bench.format_table(result)
    for label in bench.LABELS.values():
        assert label in table
    assert "browser run 1/1" in out.err and "cpython run 1/1" in out.err  # progress goes to stderr


def test_missing_model_is_a_clear_error(tmp_path, capsys):
    assert main(["bench", "--model", str(tmp_path / "nothing"), "--quick"]) == 2
    err = capsys.readouterr().err
    assert "gpt2web bench: error:" in err and "manifest.json" in err


def test_cpython_side_alone_with_one_blas_thread(tiny_int8_dir):
    result = bench.run_bench(str(tiny_int8_dir), quick=True, only="cpython", blas_threads=1, log=lambda m: None)
    assert result["browser"] == {} and result["kernel"] is None
    assert set(result["cpython"]) == set(bench.CPYTHON_KEYS)
    assert all(v > 0 for v in result["cpython"].values())
    assert result["machine"]["blas_threads"]["OPENBLAS_NUM_THREADS"] == "1"
    assert "threads: OPENBLAS_NUM_THREADS=1" in bench.format_table(result)
