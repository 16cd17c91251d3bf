"""The converter and the `gpt2web` command, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gpt2web.engine import Engine
from gpt2web.host.convert import ConvertError, convert
from gpt2web.tokenizer import default_tokenizer

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args, stdin=None):
    env = {**os.environ, "PYTHONPATH": str(ROOT / "py")}
    return subprocess.run([sys.executable, "-m", "gpt2web.host.cli", *args], capture_output=True, text=True,
                          input=stdin, env=env, timeout=300)


def test_convert_reports_quantization_error(tiny_checkpoint, tmp_path):
    logs = []
    m = convert(str(tiny_checkpoint), tmp_path / "q", dtype="int8", log=logs.append)
    rep = m["quantization_error"]
    assert 0 < rep["max_logit_diff"] < 0.1 * rep["logit_scale"]
    assert rep["top1_agreement"] > 0.5 and rep["kl_divergence"] >= 0
    assert any("top-1 agreement" in line for line in logs)
    # The manifest on disk carries the report too, and the int8 model loads and runs.
    assert json.loads((tmp_path / "q" / "manifest.json").read_text())["quantization_error"] == rep
    assert Engine.load(tmp_path / "q").next_tokens("Hello", top=3)


def test_convert_reads_pytorch_bin(tiny_checkpoint, tmp_path):
    import torch
    from safetensors.torch import load_file

    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "config.json").write_bytes((tiny_checkpoint / "config.json").read_bytes())
    torch.save(load_file(str(tiny_checkpoint / "model.safetensors")), folder / "pytorch_model.bin")
    convert(str(folder), tmp_path / "out", dtype="float32", report=False, log=lambda m: None)
    a = Engine.load(tmp_path / "out").logits([10, 20])
    convert(str(tiny_checkpoint), tmp_path / "ref", dtype="float32", report=False, log=lambda m: None)
    np.testing.assert_array_equal(a, Engine.load(tmp_path / "ref").logits([10, 20]))


def test_convert_explains_bad_sources(tmp_path):
    with pytest.raises(ConvertError, match="no config.json"):
        convert(str(tmp_path), tmp_path / "out", log=lambda m: None)


def test_cli_tokenize_json_matches_reference():
    r = run_cli("tokenize", "--json", "PostgreSQL is great")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"ids": [6307, 47701, 318, 1049], "tokens": ["Post", "greSQL", " is", " great"]}
    r = run_cli("tokenize", "-", stdin="大语言模型 🙂")
    assert r.returncode == 0 and "32014" in r.stdout and "13 tokens" in r.stdout


def test_cli_next_matches_the_engine(tiny_model_dir):
    r = run_cli("next", "I wish you a happy New", "--model", str(tiny_model_dir), "--top", "5", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    ref = Engine.load(tiny_model_dir).next_tokens("I wish you a happy New", top=5)
    assert [x["id"] for x in rows] == [x["id"] for x in ref]
    assert [x["prob"] for x in rows] == pytest.approx([x["prob"] for x in ref], rel=1e-6)
    assert all(a["prob"] >= b["prob"] for a, b in zip(rows, rows[1:]))
    table = run_cli("next", "I wish you a happy New", "--model", str(tiny_model_dir), "--top", "3")
    assert "probability" in table.stdout and str(ref[0]["id"]) in table.stdout


def test_cli_generate_is_deterministic_and_matches_the_engine(tiny_model_dir):
    args = ["generate", "Once upon a time", "--model", str(tiny_model_dir), "--max-tokens", "12",
            "--seed", "7", "--top-k", "50", "--candidates", "3", "--json"]
    a, b = run_cli(*args), run_cli(*args)
    assert a.returncode == 0, a.stderr
    ja, jb = json.loads(a.stdout), json.loads(b.stdout)
    assert ja["ids"] == jb["ids"] and len(ja["ids"]) == 12
    assert ja["text"] == default_tokenizer().decode(ja["ids"])
    assert all(len(s["candidates"]) == 3 for s in ja["steps"])
    from gpt2web.sampling import SamplingParams
    gen = Engine.load(tiny_model_dir).generate("Once upon a time", SamplingParams(seed=7, top_k=50), max_tokens=12)
    assert [s["id"] for s in gen] == ja["ids"]


def test_cli_score(tiny_model_dir):
    r = run_cli("score", "Hello world", "--model", str(tiny_model_dir), "--json")
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout)
    assert [t["id"] for t in res["tokens"]] == [15496, 995]
    logp = sum(np.log(t["prob"]) for t in res["tokens"]) / 2
    assert res["perplexity"] == pytest.approx(np.exp(-logp), rel=1e-6)
    assert all(t["rank"] >= 1 for t in res["tokens"])


@pytest.mark.parametrize("args, match", [
    (["next", "", "--model", "{m}"], "prompt is empty"),
    (["generate", "hi", "--model", "{m}", "--temperature", "-1"], "temperature"),
    (["generate", "hi", "--model", "{m}", "--top-p", "2"], "top-p"),
    (["generate", "hi", "--model", "{m}", "--max-tokens", "0"], "max tokens"),
    (["next", "hi", "--model", "/nonexistent/model"], "no model at"),
    (["next", "word " * 600, "--model", "{m}"], "at most 512 tokens"),
])
def test_cli_errors_are_one_readable_line(tiny_model_dir, args, match):
    r = run_cli(*[a.replace("{m}", str(tiny_model_dir)) for a in args])
    assert r.returncode != 0
    assert match in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, match", [
    (["next", "hi", "--model", "{m}", "--top", "0"], "number of tokens to show must be a whole number from 1"),
    (["next", "hi", "--model", "{m}", "--top", "-3"], "from 1 to 50257"),
    (["tokenize", ""], "the text is empty"),
    (["tokenize", "-"], "the text is empty"),  # empty stdin
    (["generate", "hi", "--model", "{m}", "--seed", "abc"], "argument --seed: invalid int value: 'abc'"),
    (["generate", "hi", "--model", "{m}", "--max-tokens", "many"], "argument --max-tokens"),
    (["generate", "--model", "{m}"], "required: prompt"),
    (["score", "", "--model", "{m}"], "the text is empty"),
    (["frobnicate"], "invalid choice"),
])
def test_cli_slips_are_one_line_and_fail(tiny_model_dir, args, match):
    """Small slips: no NumPy error, no exit 0 on an empty text, no page of usage."""
    r = run_cli(*[a.replace("{m}", str(tiny_model_dir)) for a in args], stdin="")
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert match in r.stderr and "Traceback" not in r.stderr and "usage:" not in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stdout == ""


def test_cli_generate_output_ends_with_a_newline(tiny_model_dir):
    for extra in ([], ["--candidates", "2"]):
        r = run_cli("generate", "Once upon a time", "--model", str(tiny_model_dir), "--max-tokens", "5",
                    "--seed", "3", *extra)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith("Once upon a time") and r.stdout.endswith("\n"), repr(r.stdout)
        assert r.stderr.startswith("[5 tokens, stopped: max_tokens, seed 3]"), r.stderr
    text = run_cli("generate", "Once upon a time", "--model", str(tiny_model_dir), "--max-tokens", "5",
                   "--seed", "3", "--json")
    assert r.stdout.rstrip("\n").endswith(json.loads(text.stdout)["text"])


def test_export_makes_a_folder_that_serves_itself(tiny_model_dir, tmp_path):
    import shutil
    import socket
    import time
    import urllib.request

    from gpt2web.host.export import ExportError, export

    root = tmp_path / "root"
    (root / "web" / "runtime").mkdir(parents=True)
    (root / "web" / "wheels").mkdir()
    (root / "web" / "index.html").write_text("<h1>gpt2web</h1>")
    (root / "web" / "runtime" / "pyodide.mjs").write_text("export {}")
    (root / "web" / "runtime" / "pyodide.asm.wasm").write_bytes(b"\0asm\1\0\0\0")
    (root / "web" / "wheels" / "index.json").write_text("{}")
    (root / "weights").mkdir()
    shutil.copy(ROOT / "weights" / "gpt2.tiktoken", root / "weights")
    shutil.copytree(tiny_model_dir, root / "weights" / "tiny")
    with pytest.raises(ExportError, match="no model 'nope'"):
        export(root, tmp_path / "x", models=["nope"], log=lambda m: None)
    out = export(root, tmp_path / "offline", log=lambda m: None)
    assert json.loads((out / "models.json").read_text())["models"][0]["id"] == "tiny"
    assert Engine.load(out / "weights" / "tiny").next_tokens("Hi", top=1)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(out / "serve.py"), str(port)], stdout=subprocess.PIPE)
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for _ in range(50):
            try:
                r = opener.open(f"http://127.0.0.1:{port}/runtime/pyodide.asm.wasm", timeout=2)
                break
            except OSError:
                time.sleep(0.1)
        assert r.headers["Content-Type"] == "application/wasm"
        assert opener.open(f"http://127.0.0.1:{port}/", timeout=2).read() == b"<h1>gpt2web</h1>"
    finally:
        proc.terminate()
        proc.wait()
