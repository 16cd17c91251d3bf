"""Export a self-contained folder for offline demos (host only).

The folder has the same URL layout as `gpt2web serve`: the page, worker, Pyodide runtime,
engine wheel and kernels at the top, the chosen models under `weights/`, a static
`models.json`, and `serve.py`, a standard-library server (browsers refuse module workers
and WebAssembly from file:// pages, so a local server is still needed; any static server
that sends `.wasm` as application/wasm and `.mjs` as text/javascript works too).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..weights import parse_manifest
from .offline import write_listing
from .policy import SECURITY_HEADERS
from .server import list_models

SERVE_PY = '''#!/usr/bin/env python3
"""Serve this folder on http://127.0.0.1:8000/ (standard library only): python3 serve.py [PORT]"""
import functools, http.server, sys
from pathlib import Path

HEADERS = @HEADERS@  # the same security headers as `gpt2web serve`

class Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map,
                      ".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript",
                      ".json": "application/json", ".bin": "application/octet-stream",
                      ".whl": "application/zip", ".tiktoken": "text/plain"}

    def list_directory(self, path):  # no directory listings
        self.send_error(404)

    def end_headers(self):
        for name, value in HEADERS.items():
            self.send_header(name, value)
        super().end_headers()

port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
handler = functools.partial(Handler, directory=str(Path(__file__).resolve().parent))
with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as httpd:
    print(f"Serving the offline gpt2web demo at http://127.0.0.1:{httpd.server_address[1]}/", flush=True)
    httpd.serve_forever()
'''


class ExportError(ValueError):
    pass


def export(root: Path, out: Path, models: list[str] | None = None, log=print,
           runtime_dir: Path | None = None, wheels_dir: Path | None = None) -> Path:
    """Copy the page, runtime and models into `out`; return it.

    `runtime_dir` / `wheels_dir`: the Pyodide runtime and the engine wheel, when they are not
    in `root/web` (an installed package keeps the runtime in the user's cache).
    """
    web, weights = root / "web", root / "weights"
    runtime = Path(runtime_dir) if runtime_dir is not None else web / "runtime"
    wheels = Path(wheels_dir) if wheels_dir is not None else web / "wheels"
    for needed in (runtime / "pyodide.mjs", wheels / "index.json"):
        if not needed.is_file():
            raise ExportError(f"{needed} is missing: run scripts/setup_runtime.py and scripts/build_wheel.py first")
    available = {m["id"]: m for m in list_models(weights)}
    chosen = models or sorted(available)
    unknown = [m for m in chosen if m not in available]
    if unknown:
        raise ExportError(f"no model {unknown[0]!r} in {weights} (have: {', '.join(sorted(available)) or 'none'})")
    if not chosen:
        raise ExportError(f"no models in {weights}: convert or train one first")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} exists and is not empty: choose a new folder")
    shutil.copytree(web, out, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "*.map"))
    for folder, name in ((runtime, "runtime"), (wheels, "wheels")):
        if folder.resolve() != (web / name).resolve():
            shutil.copytree(folder, out / name, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".*"))
    (out / "weights").mkdir(exist_ok=True)
    shutil.copy2(weights / "gpt2.tiktoken", out / "weights" / "gpt2.tiktoken")
    total = 0
    for name in chosen:
        src = weights / name
        manifest = parse_manifest((src / "manifest.json").read_bytes(), str(src / "manifest.json"))
        dst = out / "weights" / name
        dst.mkdir()
        shutil.copy2(src / "manifest.json", dst / "manifest.json")
        for s in manifest["shards"]:
            shutil.copy2(src / s["file"], dst / s["file"])
            total += s["bytes"]
        log(f"  model {name}: {len(manifest['shards'])} shards, {sum(s['bytes'] for s in manifest['shards']) / 1e6:.1f} MB")
    (out / "models.json").write_text(json.dumps({"models": list_models(out / "weights")}, indent=2) + "\n")
    (out / "serve.py").write_text(SERVE_PY.replace("@HEADERS@", repr(SECURITY_HEADERS)))
    write_listing(out)  # offline.json: what the service worker keeps for offline visits
    log(f"exported to {out} ({total / 1e6:.1f} MB of weights). Run: python3 {out / 'serve.py'}")
    return out
